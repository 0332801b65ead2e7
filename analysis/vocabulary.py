"""What a store's parameters, modes and metrics are called, and what they are.

A store describes itself (docs/store.md, ``store.json``): every parameter's label, unit
and role (an error axis, with its error-free end), the modes in order with their kind (a
training mode or a measurement protocol), the metrics with their label, unit and scale, and
the headline metric. :class:`Vocabulary` carries that description through every table and
figure: it is the tuple of the declared parameter names (what ``params=`` takes
everywhere), with methods for labels, error axes, mode order and log-scale metrics.

Stores written before ``store.json`` described itself get the same from the tables below
(:data:`FALLBACK_LABELS`, :data:`FALLBACK_ERROR_AXES`, ...), which are used for nothing
else; a name neither knows keeps its raw name and counts as a setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = ["Vocabulary", "spec_seeds", "varying_axes", "vocabulary"]

# --------------------------------------------------------------------------- fallbacks
# For stores written before store.json described its parameters, modes and metrics.
FALLBACK_ERROR_AXES: tuple[str, ...] = (
    "bs_error", "loss_imbalance_db", "loss_db", "tap_noise", "phase_error", "io_amp_error",
    "io_phase_error", "crosstalk", "dac_bits", "loss_std_db", "idle_loss_db", "tap_fraction",
    "calibration_error",
)
FALLBACK_LARGER_IS_BETTER = frozenset({"dac_bits"})
FALLBACK_MODES: tuple[tuple[str, str, str | None], ...] = (  # name, kind, protocol
    ("digital", "training mode", None), ("calibrated", "training mode", None),
    ("corrected", "training mode", None), ("pat", "training mode", None),
    ("spsa", "training mode", None), ("insitu", "training mode", "three_pass"),
    ("three_pass", "protocol", None), ("analog", "training mode", "analog"),
)
FALLBACK_HEADLINE = {"classify": "test_accuracy", "gradient": "grad_error_mean"}
FALLBACK_LABELS: dict[str, str] = {
    "bs_error": "splitting error σ (rad)",
    "loss_db": "insertion loss (dB per MZI)",
    "loss_imbalance_db": "loss imbalance (dB)",
    "phase_error": "phase error σ (rad)",
    "crosstalk": "thermal crosstalk κ (fraction)",
    "dac_bits": "DAC resolution (bits)",
    "tap_noise": "tap noise s (√(launch power))",
    "tap_fraction": "tap power fraction",
    "loss_std_db": "loss variation σ (dB per arm)",
    "idle_loss_db": "idle-position loss (dB)",
    "calibration_error": "calibration error σ (rad, dB)",
    "io_amp_error": "I/O amplitude error s_a",
    "io_phase_error": "I/O phase error s_φ (rad)",
    "n_ports": "ports N",
    "n_layers": "layers",
    "depth": "mesh depth (MZI columns)",
    "topology": "mesh topology",
    "task": "task",
    "optimizer": "optimizer",
    "lr": "learning rate (rad)",
    "sgd_lr": "learning rate with SGD (rad)",
    "launch": "launch scheme",
    "noise_draws": "measurement noise draws",
    "io_placement": "I/O error placement",
    "feature_norm": "feature normalisation",
    "mnist_path": "MNIST directory",
    "boundary_grid": "decision-boundary grid points per axis",
    "loss": "training loss",
    "record_gradient_error": "gradient error recorded",
    "twin": "digital twin",
    "spsa_delta": "SPSA perturbation (rad)",
    "spsa_samples": "SPSA estimates per step",
    "batch_size": "batch size M",
    "epochs": "epochs",
    "eval_every": "epochs between evaluations",
    "logit_scale": "logit scale",
    "n_repeats": "measurements per trial",
    "input_power": "input power",
    "modes": "modes run",
    "test_accuracy": "test accuracy",
    "train_accuracy": "train accuracy",
    "ideal_test_accuracy": "test accuracy of trained phases, error-free model",
    "test_loss": "test loss",
    "train_loss": "train loss",
    "grad_error_mean": "gradient error 1 − cos",
    "grad_error_median": "gradient error 1 − cos (median)",
    "grad_error_std": "std of gradient error 1 − cos",
    "grad_norm_true": "true gradient norm",
    "train_seconds": "training time (s)",
    "curve_test_accuracy": "test accuracy",
    "curve_train_accuracy": "train accuracy",
}
FALLBACK_DESCRIPTIVE = frozenset({"n_ports"})
# Labels of the columns every store has, whatever its description.
COLUMN_LABELS = {"epoch": "epoch", "seed": "seed", "mode": "mode", "elapsed_s": "trial wall time (s)",
                 "test_error": "test error (1 − accuracy)"}


class Vocabulary(tuple):
    """A store's declared parameter names, in order, with its description (module
    docstring). Build it with :meth:`of_meta`; :func:`vocabulary` turns a plain list of
    names into one described by the fallback tables."""

    parameters: dict[str, dict]
    modes: list[dict]
    metrics: dict[str, dict]
    headline: str | None
    experiment: str | None
    described: bool

    def __new__(cls, names: Iterable[str] = (), *, parameters: Mapping | None = None,
                modes: Sequence[Mapping] | None = None, metrics: Mapping | None = None,
                headline: str | None = None, experiment: str | None = None) -> "Vocabulary":
        self = super().__new__(cls, tuple(names))
        self.described = parameters is not None
        self.parameters = {n: dict(d) for n, d in (parameters or {}).items()}
        self.modes = [dict(m) for m in modes] if modes is not None else [
            {"name": n, "kind": k, "label": n, "protocol": p} for n, k, p in FALLBACK_MODES]
        self.metrics = {n: dict(d) for n, d in (metrics or {}).items()}
        self.headline = headline or FALLBACK_HEADLINE.get(experiment or "")
        self.experiment = experiment
        return self

    def __reduce__(self):
        return (_rebuild, (tuple(self), self.parameters if self.described else None, self.modes,
                           self.metrics, self.headline, self.experiment))

    @classmethod
    def of_meta(cls, meta: Mapping) -> "Vocabulary":
        """The vocabulary of a store's ``store.json``."""
        return cls(list(meta.get("params") or {}), parameters=meta.get("parameters"),
                   modes=meta.get("modes"), metrics=meta.get("metrics"),
                   headline=meta.get("headline_metric"), experiment=meta.get("experiment"))

    def replaced(self, old: str, new: str) -> "Vocabulary":
        """The same vocabulary with parameter ``old`` replaced by the column ``new`` (a size
        standing for a task: :func:`insitu.analysis.scaling.size_axis`)."""
        out = Vocabulary([new if n == old else n for n in self],
                         parameters=self.parameters if self.described else None, modes=self.modes,
                         metrics=self.metrics, headline=self.headline, experiment=self.experiment)
        return out

    # ------------------------------------------------------------------------- labels
    def label(self, name: str) -> str:
        """A parameter's or metric's display label with its unit."""
        described = self.parameters.get(name) or self.metrics.get(name)
        if described:
            text, unit = described.get("label") or name, described.get("unit") or ""
            return f"{text} ({unit})" if unit else text
        return FALLBACK_LABELS.get(name) or COLUMN_LABELS.get(name) or name

    def is_log(self, metric: str) -> bool:
        """Metrics that span decades (``1 − cos``): summarised on a log scale."""
        if metric in self.metrics:
            return self.metrics[metric].get("scale") == "log"
        return str(metric).startswith("grad_error") or str(metric).startswith("curve_grad_error")

    def is_descriptive(self, name: str) -> bool:
        """A result column that describes the trial (its chip's ports), not a measurement."""
        if name in self.metrics:
            return bool(self.metrics[name].get("descriptive"))
        return name in FALLBACK_DESCRIPTIVE

    # ------------------------------------------------------------------------- errors
    def is_error(self, name: str) -> bool:
        """A fabrication error or noise source: an axis a study is about."""
        if self.described and name in self.parameters:
            return self.parameters[name].get("role") == "error"
        return name in FALLBACK_ERROR_AXES

    def error_axes(self, axes: Iterable[str]) -> list[str]:
        """The error axes among ``axes``: the usual ones first (splitting error, losses,
        tap noise: the paper's main axes), then any other in the order given."""
        given = [a for a in dict.fromkeys(axes) if self.is_error(a)]
        return [a for a in FALLBACK_ERROR_AXES if a in given] + [a for a in given if a not in FALLBACK_ERROR_AXES]

    def order_axes(self, axes: Iterable[str]) -> list[str]:
        """``axes`` with error axes first (:meth:`error_axes`), then the rest as given."""
        given = list(axes)
        errs = self.error_axes(given)
        return errs + [a for a in given if a not in errs]

    def larger_is_better(self, axis: str) -> bool:
        """An error axis whose error-free end is its largest value (DAC bits; 0 = off)."""
        if self.described and axis in self.parameters:
            return self.parameters[axis].get("error_free") == "high"
        return axis in FALLBACK_LARGER_IS_BETTER

    def error_order(self, axis: str, values: Iterable) -> list:
        """Distinct ``values`` of an axis from the error-free end: ascending, or, where
        larger is better (DAC bits), 0 ("off") first, then descending."""
        vals = sorted({v for v in values if v is not None and v == v})
        if not self.larger_is_better(axis):
            return vals
        return [v for v in vals if v == 0] + sorted((v for v in vals if v != 0), reverse=True)

    def error_free_value(self, axis: str, values: Iterable):
        """The value of an axis closest to an ideal chip among ``values``."""
        return self.error_order(axis, values)[0]

    # -------------------------------------------------------------------------- modes
    def mode_rank(self, mode) -> tuple[int, str]:
        """Sort key placing modes in the store's order, unknown ones after, alphabetically."""
        names = [m["name"] for m in self.modes]
        text = "" if mode is None else str(mode)
        return (names.index(text) if text in names else len(names), text)

    def mode_order(self, modes: Iterable) -> list[str]:
        return sorted({str(m) for m in modes if m is not None}, key=self.mode_rank)

    def mode_title(self, modes: Iterable) -> str:
        """``"protocol"`` when every mode shown is a measurement protocol, else
        ``"training mode"`` (``analog`` is both: a protocol, and the mode training with it;
        the store's description says which its rows are)."""
        kinds = {m["name"]: m.get("kind") for m in self.modes}
        present = [str(m) for m in modes if m is not None]
        if self.described or self.experiment:
            if self.experiment == "gradient" or (present and all(kinds.get(m) == "protocol" for m in present)):
                return "protocol"
            return "training mode"
        return "protocol" if set(present) <= {"three_pass", "analog"} and present else "training mode"

    def default_comparisons(self, modes: Iterable) -> list[tuple[str, str]]:
        """The paired gaps that make sense for the modes present: every mode against
        ``digital`` (training modes), else every protocol against ``three_pass``."""
        present = self.mode_order(modes)
        for reference in ("digital", "three_pass"):
            if reference in present:
                return [(m, reference) for m in present if m != reference]
        return []


def _rebuild(names, parameters, modes, metrics, headline, experiment) -> Vocabulary:
    return Vocabulary(names, parameters=parameters, modes=modes, metrics=metrics,
                      headline=headline, experiment=experiment)


def vocabulary(params: Iterable[str]) -> Vocabulary:
    """``params`` as a :class:`Vocabulary`: itself when it is one (a store's), else the
    names described by the fallback tables."""
    return params if isinstance(params, Vocabulary) else Vocabulary(params)


def varying_axes(spec: Mapping, rows: pd.DataFrame | None = None, include_seed: bool = False) -> list[str]:
    """The grid axes that take more than one value, in the spec's order.

    With ``rows`` (a loaded table) an axis must also take more than one value among the
    rows, so a partly finished or filtered store does not report axes it cannot show.
    With ``include_seed``, ``"seed"`` is appended when the spec (and the rows) hold more than
    one seed: seeds are replicates, not a grid axis, and most callers average over them.
    """
    axes = []
    for name, values in (spec.get("grid") or {}).items():
        if len({_hashable(v) for v in values}) < 2:
            continue
        if rows is not None and (name not in rows.columns or rows[name].nunique(dropna=False) < 2):
            continue
        axes.append(name)
    if include_seed:
        many = len(spec_seeds(spec)) > 1
        if rows is not None:
            many = "seed" in rows.columns and rows["seed"].nunique() > 1
        if many:
            axes.append("seed")
    return axes


def spec_seeds(spec: Mapping) -> list[int]:
    """The spec's seeds as a list (spec.json holds a list; a bare count n means 0..n-1)."""
    seeds = spec.get("seeds")
    if isinstance(seeds, int):
        return list(range(seeds))
    return list(dict.fromkeys(seeds or []))


def _hashable(value: Any):
    return tuple(value) if isinstance(value, list) else value
