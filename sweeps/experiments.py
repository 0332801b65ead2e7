"""The physics experiments of a sweep: ``classify`` and ``gradient``.

``classify`` trains the requested modes (``photonics.modes.MODES``: ``digital``,
``insitu``, ``analog``, ``calibrated``, ``corrected``, ``pat``, ``spsa``) of one network on one
sampled device and returns one row per mode with final metrics, per-epoch curves and, for
2-D tasks, a decision-boundary grid. All modes of a trial share the device, the initial
phases, the minibatch order and the calibration (they derive from the trial seed).

``gradient`` measures the gradient error ``1 - cos(measured, exact device gradient)`` of
each protocol over random inputs (random labels, cross-entropy with logits of order one) on
one sampled device: cheap enough for dense error grids. Its physics (inputs, streams,
measurements) is :func:`photonics.insitu.protocol_gradient_errors`; this module maps
parameters to the network and the results to rows.

Conventions for integer switches: ``dac_bits = 0`` is a continuous DAC, ``depth = 0`` the
topology's natural depth, ``n_layers = 0`` and ``logit_scale = 0`` the task's recipe.
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from photonics import ErrorModel
from photonics.datasets import FEATURE_NORMS, MNIST_TASKS, TASKS, load_task
from photonics.errors import NOISE_DRAWS
from photonics.insitu import protocol_gradient_errors
from photonics.modes import MODES
from photonics.network import build_network
from photonics.protocols import LAUNCHES
from photonics.training import NetworkConfig, TrainConfig, train_ensemble
from sweeps.registry import Param, register

# classify 4: training modes of the baselines (3) and the restructured measurement with
# launch schemes, the paper's loss and I/O models and feature normalisation (3 on its own
# branch); gradient 4: the measurement restructure (tap-noise draw order changed).
CLASSIFY_VERSION = "4"
GRADIENT_VERSION = "4"
GRADIENT_PROTOCOLS = ("three_pass", "analog")


def _error_param(f) -> Param:
    """The sweep parameter of an :class:`ErrorModel` field, from the field's metadata
    (``doc``, ``low``/``high`` or ``choices``, ``none_as``: see :class:`ErrorModel`); a
    ``None`` default is written as ``none_as``."""
    meta = f.metadata
    default = meta["none_as"] if f.default is None else f.default
    return Param(f.name, _KINDS[type(default)], default, low=meta.get("low"), high=meta.get("high"),
                 choices=meta.get("choices"), doc=meta["doc"])


_KINDS = {float: "float", int: "int", str: "str", bool: "bool"}
# One parameter per ErrorModel field, in field order.
ERROR_PARAMS = tuple(_error_param(f) for f in fields(ErrorModel))

LAUNCH_PARAM = Param("launch", "str", "per_example", choices=LAUNCHES,
                     doc="launch scheme of measured gradients: per_example, balanced, cotangent")

MESH_PARAMS = (
    Param("topology", "str", "rectangular", choices=("rectangular", "triangular"),
          doc="mesh layout: rectangular (Clements) or triangular (Reck)"),
    Param("depth", "int", 0, low=0, high=4096, doc="mesh columns (0 = N for rectangular)"),
    Param("n_layers", "int", 0, low=0, high=16, doc="layers (0: classify uses the task recipe, gradient 1)"),
)


def error_model(params: dict) -> ErrorModel:
    """The :class:`ErrorModel` of a parameter dict: every field is a declared parameter of
    the same name; a field's ``none_as`` value means ``None`` (``dac_bits = 0`` is a
    continuous DAC)."""
    values = {}
    for f in fields(ErrorModel):
        value = params[f.name]
        none_as = f.metadata.get("none_as")
        values[f.name] = None if none_as is not None and value == none_as else value
    return ErrorModel(**values)


def _modes(text: str, allowed) -> list[str]:
    problem = _modes_problem(text, allowed)
    if problem:
        raise ValueError(f"modes {text!r}: {problem}")
    return [m.strip() for m in text.split(",") if m.strip()]


def _modes_problem(text: str, allowed) -> str | None:
    """Why a comma list of modes is not valid (``None``: it is)."""
    modes = [m.strip() for m in text.split(",") if m.strip()]
    if not modes:
        return f"no mode given (expected a comma list of {', '.join(allowed)})"
    unknown = [m for m in modes if m not in allowed]
    if unknown:
        return f"unknown mode {unknown[0]!r} (expected a comma list of {', '.join(allowed)})"
    if len(set(modes)) != len(modes):
        return f"mode {next(m for m in modes if modes.count(m) > 1)!r} is listed twice"
    return None


def _mode_list_problems(values: dict, allowed) -> list[tuple[str, str]]:
    return [("modes", f"{text!r}: {why}") for text in values["modes"]
            if (why := _modes_problem(text, allowed))]


# Spec parameters read only by some training modes (the modes' ``uses``, plus ``twin``,
# which chooses what ``calibration_error`` describes).
_TWIN_MODES = tuple(name for name, mode in MODES.items() if "calibration_error" in mode.uses)


def _users(name: str) -> tuple[str, ...]:
    if name == "twin":
        return _TWIN_MODES
    return tuple(m for m, mode in MODES.items() if name in mode.uses)


def validate_classify(values: dict, set_in_spec: frozenset) -> list[tuple[str, str]]:
    """Combinations a ``classify`` spec may not hold (each value is valid alone):
    empty or unknown modes, an MNIST task (``mnist64``, ``mnist128``, ...) without
    ``mnist_path`` (or a path without one), and a parameter set in the spec that no chosen
    mode reads."""
    problems = _mode_list_problems(values, MODES)
    if problems:
        return problems
    mnist = [t for t in values["task"] if t in MNIST_TASKS]
    if mnist and "" in values["mnist_path"]:
        problems.append(("task", f"{mnist[0]!r} needs mnist_path (a directory of MNIST IDX files)"))
    if "mnist_path" in set_in_spec and not mnist:
        problems.append(("mnist_path", "is set, but no task reads MNIST (mnist4 ... mnist256)"))
    chosen = {m.strip() for text in values["modes"] for m in text.split(",") if m.strip()}
    for name in sorted(set_in_spec):
        users = _users(name)
        if users and not chosen & set(users):
            problems.append((name, f"is set, but no chosen mode uses it (used by {', '.join(users)})"))
    if "calibration_error" in set_in_spec and values["twin"] == ["ideal"] and chosen & set(_TWIN_MODES):
        problems.append(("calibration_error", "is set, but twin = 'ideal' uses no calibration"))
    return problems


def validate_gradient(values: dict, set_in_spec: frozenset) -> list[tuple[str, str]]:
    """Combinations a ``gradient`` spec may not hold: empty or unknown protocols."""
    return _mode_list_problems(values, GRADIENT_PROTOCOLS)


def _task(params: dict, cache: dict):
    key = ("task", params["task"], params.get("mnist_path", ""), params.get("feature_norm", "per_feature"))
    if key not in cache:
        cache[key] = load_task(params["task"], mnist_path=params.get("mnist_path") or None,
                               feature_norm=params.get("feature_norm", "per_feature"))
    return cache[key]


def classify_network(params: dict, task):
    """The network a ``classify`` trial trains (task recipe unless overridden)."""
    return NetworkConfig(**{f.name: params[f.name] for f in fields(NetworkConfig)}).build(task)


def classify_rows(params: dict, results, n_ports: int) -> list[dict]:
    """Store rows (docs/store.md) of the training results of one trial; ``n_ports`` (the
    chip's ports, set by the task) goes into every row, so analysis can put tasks of
    different sizes on one numeric axis."""
    rows = []
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
        rows.append(row)
    return rows


def classify_lr(params: dict) -> float:
    """The learning rate of a trial: ``sgd_lr`` for SGD when set (> 0), else ``lr``."""
    if params["optimizer"] == "sgd" and params["sgd_lr"] > 0:
        return params["sgd_lr"]
    return params["lr"]


def classify_config(params: dict) -> TrainConfig:
    """The :class:`TrainConfig` of a ``classify`` trial (its mode set per mode).

    ``twin = "ideal"`` is the Python API's ``calibration_error = "none"``: no calibration,
    the ideal model serves as twin (of ``pat``; ``calibrated`` and ``corrected`` then equal
    ``digital``).
    """
    return TrainConfig(
        optimizer=params["optimizer"],
        lr=classify_lr(params),
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        eval_every=params["eval_every"],
        boundary_grid=params["boundary_grid"],
        record_gradient_error=params["record_gradient_error"],
        calibration_error=params["calibration_error"],
        twin=params["twin"],
        spsa_delta=params["spsa_delta"],
        spsa_samples=params["spsa_samples"],
        launch=params["launch"],
        noise_draws=params["noise_draws"],
    )


def run_classify_group(params: dict, trial_seeds: list[int], cache: dict) -> list[list[dict]]:
    """Rows of several trials that differ only in their seed, trained as one ensemble.

    Each device keeps its own random streams, so the rows equal those of running the trials
    one by one (apart from wall-time columns).
    """
    task = _task(params, cache)
    net = classify_network(params, task)
    model = error_model(params)
    config = classify_config(params)
    per_mode = [
        train_ensemble(task, trial_seeds, replace(config, mode=mode), network=net, errors=model)
        for mode in _modes(params["modes"], MODES)
    ]
    return [classify_rows(params, [results[i] for results in per_mode], task.n_ports)
            for i in range(len(trial_seeds))]


def run_classify(params: dict, trial_seed: int, cache: dict) -> list[dict]:
    return run_classify_group(params, [trial_seed], cache)[0]


CLASSIFY_PARAMS = (
    Param("task", "str", "moons", choices=TASKS,
          doc="data set: 2-D tasks, or N Fourier features of digits (digitsN, N = 4 ... 64) or MNIST (mnistN, N = 4 ... 256)"),
    Param("mnist_path", "str", "", doc="directory of MNIST IDX files (tasks mnistN)"),
    Param("feature_norm", "str", "per_feature", choices=FEATURE_NORMS,
          doc="image tasks: Fourier features normalised per feature then per example, or per example only (the paper's)"),
    *MESH_PARAMS,
    LAUNCH_PARAM,
    Param("noise_draws", "str", "fresh", choices=NOISE_DRAWS, omit_at_default=True,
          doc="measurement noise of training steps: fresh draws, or one frozen pattern every step (the paper's jit-compiled simulation)"),
    Param("modes", "str", "digital,insitu", doc="comma list of " + ", ".join(MODES)),
    Param("optimizer", "str", "adam", choices=("adam", "sgd"), doc="optimiser of the phases"),
    Param("lr", "float", 0.02, low=1e-9, high=100.0, doc="learning rate (rad per unit gradient)"),
    Param("sgd_lr", "float", 0.0, low=0.0, high=100.0,
          doc="learning rate when optimizer = sgd (0: lr); lets one grid compare SGD and Adam each at its own rate"),
    Param("epochs", "int", 25, low=0, high=100_000, doc="passes over the training set"),
    Param("batch_size", "int", 16, low=1, high=1_000_000, doc="examples per gradient step"),
    Param("eval_every", "int", 1, low=1, high=100_000, doc="epochs between points of the learning curves"),
    Param("boundary_grid", "int", 0, low=0, high=400, doc="decision-boundary grid points per axis (2-D tasks)"),
    Param("loss", "str", "cross_entropy", choices=("cross_entropy", "mse"), doc="training loss on the output powers"),
    Param("logit_scale", "float", 0.0, low=0.0, high=1e6, doc="0 = task recipe (3 for 2-D, 30 for images)"),
    Param("record_gradient_error", "bool", True, doc="record 1 - cos of measured vs exact gradients (in situ modes)"),
    Param("calibration_error", "float", 0.0, low=0.0, high=1.0,
          doc="std of the calibration of every static error (rad, dB): calibrated, corrected, pat"),
    Param("twin", "str", "calibrated", choices=("calibrated", "ideal"),
          doc="twin of calibrated / corrected / pat: the calibrated chip, or the ideal model"),
    Param("spsa_delta", "float", 0.05, low=1e-6, high=3.2, doc="SPSA perturbation of every phase (rad)"),
    Param("spsa_samples", "int", 1, low=1, high=10_000, doc="SPSA estimates averaged per step"),
    *ERROR_PARAMS,
)


def run_gradient(params: dict, trial_seed: int, cache: dict) -> list[dict]:
    """Rows of one ``gradient`` trial: the network its parameters describe, measured by
    :func:`photonics.insitu.protocol_gradient_errors` from a generator of the trial seed."""
    # Logits of order one (logit scale = 1 / input power): a saturated softmax would make the
    # true gradient of confidently classified inputs vanish and its direction meaningless.
    net = build_network(params["n_ports"], params["n_layers"] or 1, 2, params["topology"], params["depth"] or None,
                        "grouped", 1.0 / params["input_power"])
    protocols = _modes(params["modes"], GRADIENT_PROTOCOLS)
    repeats = params["n_repeats"]
    study = protocol_gradient_errors(net, error_model(params), np.random.default_rng(trial_seed), protocols,
                                     repeats, params["batch_size"], params["input_power"], params["launch"])
    grad_norm_true = float(np.mean(study.true_norms))
    return [{
        "mode": protocol,
        "grad_error_mean": float(errs.mean()),
        "grad_error_median": float(np.median(errs)),
        "grad_error_std": float(errs.std(ddof=1)) if repeats > 1 else float("nan"),
        "grad_norm_true": grad_norm_true,
        "grad_errors": errs.tolist(),
    } for protocol, errs in zip(protocols, study.errors)]


GRADIENT_PARAMS = (
    Param("n_ports", "int", 4, low=2, high=1024, doc="ports of each mesh"),
    *MESH_PARAMS,
    LAUNCH_PARAM,
    Param("modes", "str", "three_pass,analog", doc="comma list of protocols: three_pass, analog"),
    Param("batch_size", "int", 1, low=1, high=100_000, doc="examples per measurement (summed digitally by three_pass, integrated by analog)"),
    Param("n_repeats", "int", 20, low=1, high=100_000, doc="measurements (random inputs) per trial"),
    Param("input_power", "float", 9.0, low=1e-9, high=1e9, doc="power of every input vector"),
    *ERROR_PARAMS,
)

register(
    "classify",
    version=CLASSIFY_VERSION,
    params=CLASSIFY_PARAMS,
    run_trial=run_classify,
    run_group=run_classify_group,
    validate=validate_classify,
    description="train the chosen modes (digital, in situ, analog and offline / hybrid baselines) on one sampled device per trial",
)
register(
    "gradient",
    version=GRADIENT_VERSION,
    params=GRADIENT_PARAMS,
    run_trial=run_gradient,
    validate=validate_gradient,
    description="gradient error of each measurement protocol on one sampled device per trial",
)
