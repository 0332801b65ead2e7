"""Which figures a store supports, with axes chosen from what varies in it.

The ``figures`` and ``report`` commands draw the same set of figures; this module decides
that set once. The choice depends only on the store: its experiment, the grid axes that take
more than one value among the successful rows, and which metric and curve columns hold data.

Defaults, per experiment:

* ``classify``: test accuracy against each varying numeric axis (error axes first, at most
  :data:`MAX_X_AXES`), faceted by the next varying axis and, in rows, the one after; the
  paired in situ − digital (and analog − digital) gap as a heatmap over the first two axes;
  the measured gradient error during training against the first axis; learning curves
  grouped by the first axis; decision boundaries of one seed where grids were stored.
* ``gradient``: gradient error against each varying numeric axis (loss imbalance, tap noise
  and batch size first), per protocol, faceted by the next axis.
* when no numeric axis varies (only seeds, or only a categorical axis such as ``task``), a
  per-mode interval plot replaces the line plots, faceted by the categorical axis if any.

A figure that cannot be drawn from the rows (no curves, no pairs) is skipped with a note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import figures
from analysis.axes import ERROR_AXES, label, order_axes
from analysis.errors import AnalysisInputError
from analysis.load import LoadedStore
from analysis.summary import default_comparisons, default_metric

__all__ = ["FigurePlan", "MAX_FACET_LEVELS", "MAX_X_AXES", "build_figures", "plan_figures"]

MAX_X_AXES = 4
MAX_FACET_LEVELS = 12  # an axis with more levels is pooled rather than given a panel each
# Preferred x axes of the gradient experiment (the paper's Fig. 2D-F and S4G-H).
_GRADIENT_X = ("loss_imbalance_db", "tap_noise", "batch_size")


@dataclass
class FigurePlan:
    """One figure to draw: a file stem, a caption for the report, and a deferred builder."""

    name: str
    caption: str
    build: Callable[[], Figure] = field(repr=False)


def _numeric(frame: pd.DataFrame, name: str) -> bool:
    col = frame[name]
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _has_values(frame: pd.DataFrame, name: str) -> bool:
    if name not in frame.columns:
        return False
    col = frame[name]
    if col.dtype == object:
        return bool(col.map(lambda v: v is not None and hasattr(v, "__len__") and len(v) > 0).any())
    return bool(np.isfinite(pd.to_numeric(col, errors="coerce")).any())


def _pooled_note(axes: list[str]) -> str:
    return f" Pooled over {', '.join(label(a) for a in axes)}." if axes else ""


def plan_figures(store: LoadedStore) -> tuple[list[FigurePlan], list[str]]:
    """The figures this store supports and notes on the ones skipped (never raises for data)."""
    rows = store.rows
    notes: list[str] = []
    if not len(rows):
        return [], ["no successful rows: nothing to plot"]
    experiment = str(store.meta.get("experiment") or store.spec.get("experiment") or "")
    axes = order_axes(store.varying_axes())
    numeric = [a for a in axes if _numeric(rows, a)]
    categorical = [a for a in axes if a not in numeric]
    if experiment == "gradient":
        numeric = [a for a in _GRADIENT_X if a in numeric] + [a for a in numeric if a not in _GRADIENT_X]
    xs = numeric[:MAX_X_AXES]
    if len(numeric) > MAX_X_AXES:
        notes.append(f"only the first {MAX_X_AXES} varying numeric axes are used as x axes")
    metric = "grad_error_mean" if experiment == "gradient" else default_metric(rows, experiment)
    plans: list[FigurePlan] = []

    facetable = [a for a in axes if rows[a].nunique(dropna=False) <= MAX_FACET_LEVELS]
    # Headline metric against each varying axis (or per mode when nothing numeric varies).
    for x in xs:
        panels = [a for a in facetable if a != x][: 1 if experiment == "gradient" else 2]
        facet = panels[0] if panels else None
        row = panels[1] if len(panels) > 1 else None
        pooled = [a for a in axes if a not in (x, *panels)]
        stem = f"{metric}_vs_{x}" + (f"_by_{facet}" if facet else "") + (f"_{row}" if row else "")
        if experiment == "gradient":
            build = _bind(figures.gradient_error, rows, x, facet=facet, metric=metric)
            what = f"{label(metric)} against {label(x)} per protocol (log scale)"
        else:
            build = _bind(figures.metric_vs_axis, rows, x, facet=facet, row=row, metric=metric)
            what = f"{label(metric)} against {label(x)} per training mode"
        plans.append(FigurePlan(stem, f"{what}; 95 % t bands over seeds.{_pooled_note(pooled)}", build))
    if not xs:
        facet = next((a for a in categorical if a in facetable), None)
        log_y = experiment == "gradient"
        plans.append(FigurePlan(
            f"{metric}_by_mode" + (f"_by_{facet}" if facet else ""),
            f"{label(metric)} per mode: mean with 95 % t interval, one dot per seed."
            + _pooled_note([a for a in categorical if a != facet]),
            _bind(figures.metric_by_mode, rows, metric, facet=facet, log_y=log_y)))

    if experiment != "gradient":
        plans += _classify_extras(store, rows, axes, xs, notes)
    return plans, notes


def _classify_extras(store, rows, axes, xs, notes) -> list[FigurePlan]:
    plans = []
    x = xs[0] if xs else None
    # Paired gaps over two axes.
    comparisons = default_comparisons(rows["mode"].dropna().unique())
    if comparisons and "test_accuracy" in rows.columns:
        # with only categorical axes varying (e.g. task) the heatmap is drawn over them
        hx = x if x is not None else (axes[0] if axes else None)
        if hx is None:
            notes.append("no axis varies: the paired gap is in the summary table only")
        else:
            hy = next((a for a in axes if a != hx), None)
            for mode, reference in comparisons:
                stem = f"gap_{mode}_minus_{reference}_{hx}" + (f"_x_{hy}" if hy else "")
                over = label(hx) + (f" × {label(hy)}" if hy else "")
                plans.append(FigurePlan(
                    stem,
                    f"Paired test-accuracy gap {mode} − {reference} (same device and seed), "
                    f"mean over seeds, over {over}.{_pooled_note([a for a in axes if a not in (hx, hy)])}",
                    _bind(figures.gap_heatmap, rows, hx, hy, metric="test_accuracy", mode=mode,
                          reference=reference)))
    # Gradient error measured during training (in situ modes only).
    measured = rows[rows["mode"] != "digital"] if "mode" in rows else rows
    if x is not None and _has_values(measured, "grad_error_mean"):
        facet = next((a for a in axes if a != x and rows[a].nunique() <= MAX_FACET_LEVELS), None)
        plans.append(FigurePlan(
            f"training_grad_error_vs_{x}" + (f"_by_{facet}" if facet else ""),
            f"Mean gradient error 1 − cos over the training steps against {label(x)}, "
            "per in situ mode (log scale).",
            _bind(figures.gradient_error, measured, x, facet=facet, metric="grad_error_mean")))
    # Learning curves, grouped by the first numeric axis, else by a categorical one (a task).
    if _has_values(rows, "epoch") and _has_values(rows, "curve_test_accuracy"):
        group = x if x is not None else next(
            (a for a in axes if rows[a].nunique(dropna=False) <= MAX_FACET_LEVELS), None)
        stem = "learning_curves" + (f"_by_{group}" if group else "")
        plans.append(FigurePlan(
            stem,
            "Test error (1 − accuracy) against epoch per training mode"
            + (f", one panel per {label(group)}" if group else "")
            + "; 95 % t bands over seeds" + _pooled_note([a for a in axes if a != group]),
            _bind(figures.learning_curves, rows, group)))
    else:
        notes.append("no learning curves stored (columns epoch / curve_test_accuracy)")
    # Decision boundaries for 2-D tasks, one seed, at one setting of the other axes.
    if _has_values(rows, "grid_prob"):
        grids = rows[rows["grid_prob"].map(lambda v: v is not None and hasattr(v, "__len__") and len(v) > 0)]
        where = {}
        first_error = next((a for a in axes if a in ERROR_AXES), None)
        for a in axes:
            if a == "task":
                continue
            values = sorted(grids[a].dropna().unique())
            if values:
                where[a] = values[-1] if a == first_error else values[0]
        seed = int(grids["seed"].min())
        at = ", ".join(f"{label(k)} = {v:g}" if isinstance(v, (float, np.floating)) else f"{label(k)} = {v}"
                       for k, v in where.items())
        plans.append(FigurePlan(
            f"decision_boundaries_seed{seed}",
            f"Decision boundaries (P(class 1), black line at 0.5) and test points, seed {seed}"
            + (f", at {at}" if at else "") + ".",
            _bind(figures.decision_boundaries, rows, seed=seed, where=where)))
    return plans


def _bind(func, *args, **kwargs) -> Callable[[], Figure]:
    return lambda: func(*args, **kwargs)


def build_figures(store: LoadedStore) -> tuple[list[tuple[FigurePlan, Figure]], list[str]]:
    """Draw every planned figure in memory; a figure the data cannot support becomes a note."""
    plans, notes = plan_figures(store)
    built = []
    for plan in plans:
        try:
            built.append((plan, plan.build()))
        except AnalysisInputError as exc:
            notes.append(f"skipped {plan.name}: {exc}")
    return built, notes
