"""A synthetic insitu store writer, following docs/store.md (format 1) to the letter.

The analysis package is tested against stores written here with pyarrow, not by the sweep
engine, so the tests pin the contract rather than one implementation of it. Values are
seeded (``numpy.random.default_rng``), so every test sees the same numbers.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

KIND_TYPES = {"float": pa.float64(), "int": pa.int64(), "str": pa.string(), "bool": pa.bool_()}
IDENTITY_TYPES = {
    "key": pa.string(),
    "stream_key": pa.string(),
    "trial_seed": pa.int64(),
    "seed": pa.int64(),
    "experiment": pa.string(),
    "experiment_version": pa.string(),
    "launch_id": pa.string(),
    "status": pa.string(),
    "error": pa.string(),
    "mode": pa.string(),
    "elapsed_s": pa.float64(),
}
INT_LISTS = {"epoch", "points_label"}

# Parameters of the real experiments as a synthetic store declares them: the ones analysis
# reads, not every one the registry holds (the control layer's and lr_reference_ports are
# left out), with the fixed values of a small store.
CLASSIFY_PARAMS = {
    "task": "str", "mnist_path": "str", "feature_norm": "str", "topology": "str",
    "depth": "int", "n_layers": "int", "launch": "str", "noise_draws": "str", "modes": "str", "optimizer": "str",
    "lr": "float", "sgd_lr": "float", "epochs": "int", "batch_size": "int",
    "eval_every": "int", "boundary_grid": "int", "loss": "str", "logit_scale": "float",
    "record_gradient_error": "bool", "calibration_error": "float", "twin": "str",
    "spsa_delta": "float", "spsa_samples": "int", "bs_error": "float", "loss_db": "float",
    "loss_imbalance_db": "float", "phase_error": "float", "crosstalk": "float",
    "dac_bits": "int", "tap_noise": "float", "io_amp_error": "float",
    "io_phase_error": "float", "tap_fraction": "float", "loss_std_db": "float",
    "idle_loss_db": "float", "io_placement": "str",
}
CLASSIFY_FIXED = {
    "task": "moons", "mnist_path": "", "feature_norm": "per_feature",
    "topology": "rectangular", "depth": 4, "n_layers": 3, "launch": "per_example", "noise_draws": "fresh",
    "modes": "digital,insitu,analog", "optimizer": "adam", "lr": 0.02, "sgd_lr": 0.0,
    "epochs": 10, "batch_size": 16, "eval_every": 2, "boundary_grid": 6,
    "loss": "cross_entropy", "logit_scale": 0.0, "record_gradient_error": True,
    "calibration_error": 0.0, "twin": "calibrated", "spsa_delta": 0.05, "spsa_samples": 1,
    "bs_error": 0.0, "loss_db": 0.0, "loss_imbalance_db": 0.0, "phase_error": 0.0,
    "crosstalk": 0.0, "dac_bits": 0, "tap_noise": 0.0, "io_amp_error": 0.0,
    "io_phase_error": 0.0, "tap_fraction": 0.0, "loss_std_db": 0.0, "idle_loss_db": 0.0,
    "io_placement": "generate_and_read",
}
GRADIENT_PARAMS = {
    "n_ports": "int", "topology": "str", "depth": "int", "n_layers": "int", "launch": "str",
    "modes": "str", "batch_size": "int", "n_repeats": "int", "input_power": "float",
    "bs_error": "float", "loss_db": "float", "loss_imbalance_db": "float",
    "phase_error": "float", "crosstalk": "float", "dac_bits": "int", "tap_noise": "float",
    "io_amp_error": "float", "io_phase_error": "float", "tap_fraction": "float",
    "loss_std_db": "float", "idle_loss_db": "float", "io_placement": "str",
}
GRADIENT_FIXED = {
    "n_ports": 4, "topology": "triangular", "depth": 4, "n_layers": 0, "launch": "per_example",
    "modes": "three_pass,analog", "batch_size": 1, "n_repeats": 8, "input_power": 9.0,
    "bs_error": 0.0, "loss_db": 0.0, "loss_imbalance_db": 0.0, "phase_error": 0.0,
    "crosstalk": 0.0, "dac_bits": 0, "tap_noise": 0.0, "io_amp_error": 0.0,
    "io_phase_error": 0.0, "tap_fraction": 0.0, "loss_std_db": 0.0, "idle_loss_db": 0.0,
    "io_placement": "generate_and_read",
}


class SyntheticStore:
    """Writes spec.json, spec.toml, store.json, launches.jsonl and Parquet parts."""

    def __init__(self, root: Path, experiment: str, params: dict, fixed: dict, grid: dict,
                 seeds, name: str = "synthetic", version: str = "1", defaults: dict | None = None,
                 omit_at_default: list | None = None, sharing: list | None = None):
        self.root = Path(root)
        self.experiment, self.version = experiment, version
        self.params, self.fixed, self.grid, self.seeds = params, dict(fixed), grid, list(seeds)
        for axis in grid:
            self.fixed.pop(axis, None)
        (self.root / "parts").mkdir(parents=True, exist_ok=True)
        spec = {"name": name, "experiment": experiment, "experiment_version": version,
                "fixed": self.fixed, "grid": grid, "seeds": self.seeds, "ray": {}}
        (self.root / "spec.json").write_text(json.dumps(spec, sort_keys=True))
        toml = [f'name = "{name}"', f'experiment = "{experiment}"', "seeds = " + json.dumps(self.seeds)]
        toml += ["[fixed]"] + [f"{k} = {json.dumps(v)}" for k, v in self.fixed.items()]
        toml += ["[grid]"] + [f"{k} = {json.dumps(v)}" for k, v in grid.items()]
        (self.root / "spec.toml").write_text("\n".join(toml) + "\n")
        store = {"format": 1, "experiment": experiment, "experiment_version": version,
                 "params": params, "created": "2024-01-01T00:00:00+00:00"}
        if defaults is not None:
            store["defaults"] = defaults
        if omit_at_default is not None:
            store["omit_at_default"] = omit_at_default
        if sharing is not None:  # a store that describes its parameters and shares chips
            errors = ("bs_error", "loss_imbalance_db", "tap_noise", "crosstalk", "loss_db")
            store["parameters"] = {n: {"label": n, "unit": "", "doc": n,
                                       "role": "error" if n in errors else "setting",
                                       **({"error_free": "low"} if n in errors else {}),
                                       "shares_chips": n in sharing} for n in params}
        (self.root / "store.json").write_text(json.dumps(store))
        self.defaults, self.omitted = dict(defaults or {}), set(omit_at_default or ())
        self.sharing = None if sharing is None else set(sharing)
        self.launches: list[str] = []

    def points(self):
        """Every (parameters, seed) of the spec's grid, in spec order."""
        axes = list(self.grid)
        for values in itertools.product(*(self.grid[a] for a in axes)):
            for seed in self.seeds:
                yield {**self.fixed, **dict(zip(axes, values))}, seed

    def key(self, params: dict, seed: int, leave_out=()) -> str:
        """The trial key as docs/store.md defines it: the first 16 hex digits of the sha256
        of the canonical JSON of experiment, every parameter with the seed, and version
        (a parameter listed in omit_at_default left out at its default); ``leave_out``
        (the sharing parameters) makes it the stream key."""
        every = {**self.defaults, **params}
        hashed = {k: v for k, v in every.items()
                  if not (k in self.omitted and k in self.defaults and v == self.defaults[k])
                  and k not in leave_out}
        canon = json.dumps({"experiment": self.experiment, "params": {**hashed, "seed": seed},
                            "version": self.version}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=True)
        return hashlib.sha256(canon.encode("ascii")).hexdigest()[:16]

    def row(self, params, seed, mode, metrics=None, status="ok", error=None) -> dict:
        key = self.key(params, seed)
        stream = {} if self.sharing is None else {"stream_key": self.key(params, seed, self.sharing)}
        return {"key": key, **stream, "trial_seed": int(key[:8], 16), "seed": seed,
                "experiment": self.experiment, "experiment_version": self.version,
                "status": status, "error": error, "mode": mode, "elapsed_s": 1.5,
                **params, **(metrics or {})}

    def add_launch(self, launch_id: str) -> None:
        self.launches.append(launch_id)
        with open(self.root / "launches.jsonl", "a") as fh:
            fh.write(json.dumps({"launch_id": launch_id, "started": "2024-01-01T00:00:00",
                                 "host": "test", "backend": "serial", "workers": 1}) + "\n")

    def schema_for(self, rows) -> pa.Schema:
        names = list(IDENTITY_TYPES) + list(self.params)
        seen = set(names)
        for r in rows:
            for k in r:
                if k not in seen:
                    names.append(k)
                    seen.add(k)
        fields = []
        for n in names:
            if n in IDENTITY_TYPES:
                t = IDENTITY_TYPES[n]
            elif n in self.params:
                t = KIND_TYPES[self.params[n]]
            else:
                sample = next((r[n] for r in rows if r.get(n) is not None), None)
                if isinstance(sample, (list, np.ndarray)):
                    t = pa.list_(pa.int64() if n in INT_LISTS else pa.float64())
                else:
                    t = pa.float64()
            fields.append(pa.field(n, t))
        return pa.schema(fields)

    def write_part(self, rows, launch_id: str, chunk: int = 0, mtime: float | None = None) -> Path:
        """One part, exactly as the driver does: temp name, then rename."""
        if launch_id not in self.launches:
            self.add_launch(launch_id)
        rows = [{**r, "launch_id": launch_id} for r in rows]
        table = pa.Table.from_pylist(rows, schema=self.schema_for(rows))
        final = self.root / "parts" / f"part-{launch_id}-{chunk:06d}.parquet"
        tmp = self.root / "parts" / f".part-{launch_id}-{chunk:06d}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, final)
        if mtime is not None:
            os.utime(final, (mtime, mtime))
        return final


def classify_metrics(rng, params, seed, mode, with_boundary=True) -> dict:
    """Plausible classify metrics: digital falls with splitting error, in situ does not."""
    bs = params["bs_error"]
    base = {"digital": 0.95 - 1.5 * bs, "insitu": 0.95 - 0.1 * bs, "analog": 0.94 - 0.1 * bs}[mode]
    acc = float(np.clip(base + 0.02 * rng.standard_normal(), 0, 1))
    epochs = [0, 2, 4, 6, 8, 10]
    curve = [float(np.clip(0.5 + (acc - 0.5) * (1 - np.exp(-e / 3)), 0, 1)) for e in epochs]
    out = {"test_accuracy": acc, "train_accuracy": min(1.0, acc + 0.01),
           "test_loss": 1 - acc, "train_loss": 0.99 - acc,
           "ideal_test_accuracy": 0.95, "train_seconds": 0.3,
           "grad_error_mean": np.nan if mode == "digital" else 0.01 + bs,
           "grad_error_median": np.nan if mode == "digital" else 0.008 + bs,
           "epoch": epochs, "curve_test_accuracy": curve,
           "curve_train_accuracy": curve, "curve_test_loss": [1 - c for c in curve]}
    if with_boundary:
        x1 = np.linspace(-3, 3, 6)
        x2 = np.linspace(-3, 3, 5)
        xx1, xx2 = np.meshgrid(x1, x2)  # rows over x2, columns over x1: row-major (x2, x1)
        prob = 1 / (1 + np.exp(-(xx1 + 0.5 * xx2)))
        pts = rng.uniform(-3, 3, size=(12, 2))
        out.update(grid_x1=x1.tolist(), grid_x2=x2.tolist(), grid_prob=prob.ravel().tolist(),
                   points_x1=pts[:, 0].tolist(), points_x2=pts[:, 1].tolist(),
                   points_label=[int(a + 0.5 * b > 0) for a, b in pts])
    return out


def gradient_metrics(rng, params, mode) -> dict:
    loss = params["loss_imbalance_db"]
    scale = {"three_pass": 1.0, "analog": 0.6}[mode]
    err = scale * (1e-3 + 0.05 * loss) / np.sqrt(params["batch_size"]) * (1 + 0.1 * rng.random())
    return {"grad_error_mean": err, "grad_error_median": 0.9 * err, "grad_error_std": 0.2 * err,
            "grad_norm_true": 1.0}


@pytest.fixture
def make_store(tmp_path):
    """Factory: ``make_store(name, experiment, grid, seeds, ...)`` -> an empty SyntheticStore."""
    def make(name="store", experiment="classify", grid=None, seeds=(0, 1, 2), fixed=None,
             params=None, defaults=None, omit_at_default=None, sharing=None):
        if params is not None:
            fixed = dict(fixed or {})
        elif experiment == "classify":
            params, fixed = CLASSIFY_PARAMS, {**CLASSIFY_FIXED, **(fixed or {})}
        else:
            params, fixed = GRADIENT_PARAMS, {**GRADIENT_FIXED, **(fixed or {})}
        return SyntheticStore(tmp_path / name, experiment, params, fixed, grid or {}, seeds, defaults=defaults,
                              omit_at_default=omit_at_default, sharing=sharing)
    return make


def fill_classify(store: SyntheticStore, seed=0, modes=("digital", "insitu", "analog"),
                  launch="L1", per_part=6) -> SyntheticStore:
    rng = np.random.default_rng(seed)
    rows = [store.row(p, s, m, classify_metrics(rng, p, s, m))
            for p, s in store.points() for m in modes]
    for i in range(0, len(rows), per_part):
        store.write_part(rows[i:i + per_part], launch, i // per_part)
    return store


def fill_gradient(store: SyntheticStore, seed=0, launch="L1") -> SyntheticStore:
    rng = np.random.default_rng(seed)
    rows = [store.row(p, s, m, gradient_metrics(rng, p, m))
            for p, s in store.points() for m in ("three_pass", "analog")]
    store.write_part(rows, launch, 0)
    return store


def plan_figures(store, **options):
    """The figures a store's plan holds, and its notes."""
    from insitu.analysis.plan import Plan

    plan = Plan.build(store, **options)
    return plan.figures, plan.notes


def build_figures(store, **options):
    """The figures of a store's plan, drawn, and the notes."""
    from insitu.analysis.plan import Plan

    return Plan.build(store, **options).draw()


@pytest.fixture
def fill():
    """The row writers, as a fixture so tests never import this module by name
    (several ``conftest`` modules share one name in a test session)."""
    class Fill:
        classify = staticmethod(fill_classify)
        gradient = staticmethod(fill_gradient)
    return Fill


@pytest.fixture
def classify_store(make_store) -> SyntheticStore:
    """classify over bs_error x depth, three seeds, modes digital / insitu / analog."""
    store = make_store("classify", "classify",
                       grid={"bs_error": [0.0, 0.05, 0.1], "depth": [2, 4]}, seeds=(0, 1, 2))
    return fill_classify(store)


@pytest.fixture
def gradient_store(make_store) -> SyntheticStore:
    """gradient over loss_imbalance_db x batch_size, three seeds, three_pass / analog."""
    store = make_store("gradient", "gradient",
                       grid={"loss_imbalance_db": [0.0, 0.1, 0.3, 1.0], "batch_size": [1, 4]},
                       seeds=(0, 1, 2))
    return fill_gradient(store)


@pytest.fixture
def classify_rows(classify_store):
    """The classify store's rows, as ``analysis.load.load`` reads them."""
    from insitu.analysis.load import load
    return load(classify_store.root)


@pytest.fixture
def gradient_rows(gradient_store):
    from insitu.analysis.load import load
    return load(gradient_store.root)


@pytest.fixture
def cp(classify_store):
    """The declared parameters of the classify store."""
    from insitu.analysis.load import load_params
    return load_params(classify_store.root)
