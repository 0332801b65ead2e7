"""The ``classify`` experiment: train the chosen modes of one network on one sampled chip.

A trial trains the requested training modes (:data:`insitu.photonics.modes.MODES`) on
one sampled device and returns one row per mode with final metrics, per-epoch curves and,
for 2-D tasks, a decision-boundary grid. All modes of a trial share the device, the initial
phases, the minibatch order and the calibration (they derive from the trial seed).

Its parameters are the task's (``task``, ``mnist_path``, ``feature_norm``), ``modes``, and
the declared settings of :class:`~insitu.photonics.training.NetworkConfig`,
:class:`~insitu.photonics.training.TrainConfig`, every mode's own settings and
:class:`~insitu.photonics.errors.ErrorModel`, by the same names and with the same defaults:
:func:`build` derives them when the experiment is registered.
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from insitu.photonics import ErrorModel
from insitu.photonics.datasets import FEATURE_NORMS, MNIST_TASKS, TASKS, load_task
from insitu.photonics.modes import MODES, mode_settings
from insitu.photonics.training import NetworkConfig, TrainConfig, train_ensemble
from insitu.sweeps.engine.registry import Experiment, MetricInfo, ModeInfo, Param, register
from insitu.sweeps.engine.runner import PROGRESS_KEY
from insitu.sweeps.experiments.declared import keyed_since_first, param_of, params_of, settings_of
from insitu.sweeps.experiments.modes import mode_list_problems, parse_modes

# 5: chips shared along the parameters declared to share them (common random numbers: a
# trial's streams derive from its stream key, not its key); 4: training modes of the
# baselines (3) and the restructured measurement with launch schemes, the paper's loss and
# I/O models and feature normalisation (3 on its own branch).
VERSION = "5"

# The parameters every classify key has hashed since version 4; any parameter declared
# since is left out of keys while at its default (noise_draws was the first).
KEYED = ("task", "mnist_path", "feature_norm", "topology", "depth", "n_layers", "launch",
         "modes", "optimizer", "lr", "sgd_lr", "epochs", "batch_size", "eval_every",
         "boundary_grid", "loss", "logit_scale", "record_gradient_error", "calibration_error",
         "twin", "spsa_delta", "spsa_samples", "bs_error", "loss_db", "loss_imbalance_db",
         "phase_error", "crosstalk", "dac_bits", "tap_noise", "io_amp_error", "io_phase_error",
         "tap_fraction", "loss_std_db", "idle_loss_db", "io_placement")

METRICS = (
    MetricInfo("test_accuracy", "test accuracy"),
    MetricInfo("train_accuracy", "train accuracy"),
    MetricInfo("test_loss", "test loss"),
    MetricInfo("train_loss", "train loss"),
    MetricInfo("ideal_test_accuracy", "test accuracy of trained phases, error-free model"),
    MetricInfo("grad_error_mean", "gradient error 1 − cos", scale="log"),
    MetricInfo("grad_error_median", "gradient error 1 − cos (median)", scale="log"),
    MetricInfo("train_seconds", "training time", unit="s"),
    MetricInfo("n_ports", "ports N", descriptive=True),
    MetricInfo("epoch", "epoch"),
    MetricInfo("curve_test_accuracy", "test accuracy"),
    MetricInfo("curve_train_accuracy", "train accuracy"),
    MetricInfo("curve_test_loss", "test loss"),
    MetricInfo("curve_train_loss", "train loss"),
    MetricInfo("curve_grad_error_mean", "gradient error 1 − cos", scale="log"),
    MetricInfo("curve_grad_error_median", "gradient error 1 − cos (median)", scale="log"),
)

TASK_PARAMS = (
    Param("task", "str", "moons", choices=TASKS, label="task",
          doc="data set: 2-D tasks, or N Fourier features of digits (digitsN, N = 4 ... 64), MNIST (mnistN, N = 4 ... 256, IDX files at mnist_path) or the 5000 bundled MNIST images (mnist5k-N, N = 4 ... 256)"),
    Param("mnist_path", "str", "", label="MNIST directory", doc="directory of MNIST IDX files (tasks mnistN)"),
    Param("feature_norm", "str", FEATURE_NORMS[0], choices=FEATURE_NORMS, label="feature normalisation",
          doc="image tasks: Fourier features normalised per feature then per example, or per example only (the paper's)",
          shares_chips=True),
)


def _params() -> tuple[Param, ...]:
    own = mode_settings()
    params = (
        *TASK_PARAMS,
        *params_of(NetworkConfig),
        Param("modes", "str", "digital,insitu", label="modes run", doc="comma list of " + ", ".join(MODES),
              shares_chips=True),
        *params_of(TrainConfig, exclude=("mode",)),
        *(param_of(f) for f, _ in own.values()),
        *params_of(ErrorModel),
    )
    return keyed_since_first(params, KEYED)


def _users(name: str, values: dict | None = None) -> tuple[str, ...]:
    """The modes that read a parameter (empty: every mode reads it); the calibration error
    is also read by the modes that compensate crosstalk when a spec asks for it."""
    own = mode_settings()
    if name in own:
        return own[name][1]
    users = tuple(m for m, mode in MODES.items() if name in mode.uses)
    if name == "calibration_error" and values and "calibrated" in values.get("crosstalk_compensation", ()):
        users += tuple(m for m in _users("crosstalk_compensation") if m not in users)
    return users


def validate(values: dict, set_in_spec: frozenset) -> list[tuple[str, str]]:
    """Combinations a ``classify`` spec may not hold (each value is valid alone): empty or
    unknown modes, an MNIST task (``mnist64``, ...) without ``mnist_path`` (or a path
    without one), a parameter set in the spec that no chosen mode reads, a calibration
    error for an ideal twin, and an analog update with Adam or (comparator) with batches."""
    problems = mode_list_problems(values, MODES)
    if problems:
        return problems
    mnist = [t for t in values["task"] if t in MNIST_TASKS]
    if mnist and "" in values["mnist_path"]:
        problems.append(("task", f"{mnist[0]!r} needs mnist_path (a directory of MNIST IDX files)"))
    if "mnist_path" in set_in_spec and not mnist:
        problems.append(("mnist_path", "is set, but no task reads MNIST (mnist4 ... mnist256)"))
    chosen = {m.strip() for text in values["modes"] for m in text.split(",") if m.strip()}
    for name in sorted(set_in_spec):
        users = _users(name, values)
        if users and not chosen & set(users):
            problems.append((name, f"is set, but no chosen mode uses it (used by {', '.join(users)})"))
    twin_modes = set(_users("twin"))
    if "calibration_error" in set_in_spec and values["twin"] == ["ideal"] and chosen & twin_modes:
        problems.append(("calibration_error", "is set, but twin = 'ideal' uses no calibration"))
    if "analog" in chosen and any(u != "digital" for u in values.get("update", ["digital"])):
        circuit = next(u for u in values["update"] if u != "digital")
        if any(o != "sgd" for o in values["optimizer"]):
            problems.append(("optimizer", f"must be 'sgd' with the analog update (update = {circuit!r}): "
                                          "Adam needs per-shifter memory the circuits do not have"))
        if "comparator" in values["update"] and any(b != 1 for b in values["batch_size"]):
            problems.append(("batch_size", "must be 1 with update = 'comparator' (the single-example "
                                           "circuit); use update = 'sample_hold' for batches"))
    return problems


def _task(params: dict, cache: dict):
    key = ("task", params["task"], params["mnist_path"], params["feature_norm"])
    if key not in cache:
        cache[key] = load_task(params["task"], mnist_path=params["mnist_path"] or None,
                               feature_norm=params["feature_norm"])
    return cache[key]


def network(params: dict, task):
    """The network a trial trains (the task's recipe unless overridden)."""
    return NetworkConfig(**settings_of(NetworkConfig, params)).build(task)


def config(params: dict) -> TrainConfig:
    """The :class:`TrainConfig` of a trial (its mode set per mode), with every mode's own
    settings."""
    common = settings_of(TrainConfig, params, exclude=("mode",))
    own = {name: params[name] for name in mode_settings() if name in params}
    return TrainConfig.of(**common, **own)


def rows(results, n_ports: int) -> list[dict]:
    """Store rows (docs/store.md) of the training results of one trial; ``n_ports`` (the
    chip's ports, set by the task) goes into every row, so analysis can put tasks of
    different sizes on one numeric axis."""
    out = []
    for result in results:
        row = {"mode": result.mode, "n_ports": int(n_ports), **result.summary()}
        row.update(
            epoch=result.epoch.astype(np.int64).tolist(),
            curve_train_accuracy=result.train_accuracy.tolist(),
            curve_test_accuracy=result.test_accuracy.tolist(),
            curve_train_loss=result.train_loss.tolist(),
            curve_test_loss=result.test_loss.tolist(),
            curve_grad_error_mean=result.grad_error_mean.tolist(),
            curve_grad_error_median=result.grad_error_median.tolist(),
        )
        for name, values in result.boundary.items():
            values = np.asarray(values)
            row[name] = values.astype(np.int64 if name == "points_label" else float).tolist()
        out.append(row)
    return out


def run_group(params: dict, trial_seeds: list[int], cache: dict) -> list[list[dict]]:
    """Rows of several trials that differ only in their seed, trained as one ensemble.

    Each device keeps its own random streams, so the rows equal those of running the trials
    one by one (apart from wall-time columns).
    """
    task = _task(params, cache)
    net = network(params, task)
    model = ErrorModel(**settings_of(ErrorModel, params))
    base = config(params)
    modes = parse_modes(params["modes"], MODES)
    report = cache.get(PROGRESS_KEY)  # the worker's progress: the share of this unit done
    per_mode = [train_ensemble(task, trial_seeds, replace(base, mode=mode), network=net, errors=model,
                               on_epoch=None if report is None else
                               (lambda epoch, epochs, i=i: report((i + epoch / max(epochs, 1)) / len(modes))))
                for i, mode in enumerate(modes)]
    return [rows([results[i] for results in per_mode], task.n_ports) for i in range(len(trial_seeds))]


def run_trial(params: dict, trial_seed: int, cache: dict) -> list[dict]:
    return run_group(params, [trial_seed], cache)[0]


def build() -> Experiment:
    """The experiment as the modes registered now declare it (not registered)."""
    return Experiment(
        "classify", VERSION, _params(), run_trial,
        summary="train the chosen modes (digital, in situ, analog and offline / hybrid baselines) on one sampled device per trial",
        run_group=run_group, validate=validate,
        modes=tuple(ModeInfo(m.name, "training mode", m.label, m.protocol) for m in MODES.values()),
        metrics=METRICS, headline_metric="test_accuracy", module=__name__)


register(build())
