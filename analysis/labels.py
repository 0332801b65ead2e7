"""What the parameters of a sweep are called on a figure, and which of them vary.

The store names parameters by their code names (``bs_error``, ``tap_noise``...). Figures and
tables need readable labels with units, and the figure defaults need to know which grid axes
actually vary and which of them are error axes (the quantities the study is about). Both are
learnt from the store alone: the spec's grid and the rows' columns, never from ``photonics``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

# Parameters that model a fabrication error or a noise source, in the order a default figure
# prefers them as its x axis (the paper's main axes first).
ERROR_AXES: tuple[str, ...] = (
    "bs_error",
    "loss_imbalance_db",
    "loss_db",
    "tap_noise",
    "phase_error",
    "io_amp_error",
    "io_phase_error",
    "crosstalk",
    "dac_bits",
    "loss_std_db",
    "idle_loss_db",
    "tap_fraction",
    "calibration_error",
)

# Canonical order of training modes (classify) and gradient protocols (gradient) in tables
# and legends; modes not listed follow in alphabetical order.
MODE_ORDER: tuple[str, ...] = ("digital", "calibrated", "corrected", "pat", "spsa", "insitu",
                               "three_pass", "analog", "ideal")

# Labels with units for known parameter and metric names; anything else keeps its raw name.
LABELS: dict[str, str] = {
    "bs_error": "splitting error σ (rad)",
    "loss_db": "insertion loss (dB per MZI)",
    "loss_imbalance_db": "loss imbalance (dB)",
    "phase_error": "phase error σ (rad)",
    "crosstalk": "thermal crosstalk (fraction)",
    "dac_bits": "DAC resolution (bits)",
    "tap_noise": "tap noise s",
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
    "lr": "learning rate",
    "sgd_lr": "learning rate with SGD",
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
    "epoch": "epoch",
    "seed": "seed",
    "mode": "training mode",
    "test_accuracy": "test accuracy",
    "train_accuracy": "train accuracy",
    "ideal_test_accuracy": "test accuracy of trained phases, error-free model",
    "test_loss": "test loss",
    "train_loss": "train loss",
    "test_error": "test error (1 − accuracy)",
    "grad_error_mean": "gradient error 1 − cos",
    "grad_error_median": "gradient error 1 − cos (median)",
    "grad_error_std": "std of gradient error 1 − cos",
    "grad_norm_true": "true gradient norm",
    "train_seconds": "training time (s)",
    "elapsed_s": "trial wall time (s)",
    "curve_test_accuracy": "test accuracy",
    "curve_train_accuracy": "train accuracy",
}


def label(name: str) -> str:
    """The display label of a parameter or metric: a known label with units, else the name."""
    return LABELS.get(name, name)


def mode_rank(mode) -> tuple[int, str]:
    """Sort key placing modes in :data:`MODE_ORDER`, unknown ones after, alphabetically."""
    text = "" if mode is None else str(mode)
    return (MODE_ORDER.index(text) if text in MODE_ORDER else len(MODE_ORDER), text)


def varying_axes(
    spec: Mapping, rows: pd.DataFrame | None = None, include_seed: bool = False
) -> list[str]:
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
        if rows is not None:
            if name not in rows.columns or rows[name].nunique(dropna=False) < 2:
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


def error_axes(axes: Iterable[str]) -> list[str]:
    """The error axes among ``axes``, in the preferred order of :data:`ERROR_AXES`."""
    given = list(axes)
    return [a for a in ERROR_AXES if a in given]


# Error axes whose error-free end is their largest value (more DAC bits, less rounding);
# for ``dac_bits`` the value 0 means a continuous DAC and comes first.
LARGER_IS_BETTER: frozenset[str] = frozenset({"dac_bits"})


def error_order(axis: str, values: Iterable) -> list:
    """Distinct ``values`` of an axis ordered from the error-free end: ascending, except for
    axes in :data:`LARGER_IS_BETTER` (descending, with 0 = "off" first)."""
    vals = sorted({v for v in values if v is not None and v == v})
    if axis not in LARGER_IS_BETTER:
        return vals
    return [v for v in vals if v == 0] + sorted((v for v in vals if v != 0), reverse=True)


def error_free_value(axis: str, values: Iterable):
    """The value of an axis closest to an ideal chip among ``values`` (see :func:`error_order`)."""
    return error_order(axis, values)[0]


def order_axes(axes: Iterable[str]) -> list[str]:
    """``axes`` with error axes first (preferred order), then the rest in their given order."""
    given = list(axes)
    errs = error_axes(given)
    return errs + [a for a in given if a not in errs]


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value
