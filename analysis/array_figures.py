"""Figures of the arrays a trial stores beside its scalar metrics: learning curves (the
per-epoch list columns) and decision boundaries (the probability grid of a 2-D task).

Both follow the conventions of :mod:`analysis.figures` (where they are public too) and are
built from :mod:`analysis.figure_parts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.figure_parts import (
    MAX_COLUMNS,
    facet_lines,
    new_figure,
    pooled_axes,
    levels,
    require_rows,
    seed_count,
    shown,
    styled,
    set_title,
    value_text,
    mode_palette,
)
from insitu.analysis.grouping import has_items
from insitu.analysis.vocabulary import vocabulary

__all__ = ["decision_boundaries", "learning_curves"]


def _explode_curves(frame: pd.DataFrame, metric: str, keep: Sequence[str]) -> pd.DataFrame:
    cols = list(dict.fromkeys(["key", "seed", "mode", "experiment", *keep]))
    data = frame[[c for c in cols if c in frame.columns] + ["epoch", metric]]
    data = data[data["epoch"].map(lambda v: v is not None and len(v) > 0 if hasattr(v, "__len__") else False)]
    same = data["epoch"].map(len) == data[metric].map(lambda v: len(v) if hasattr(v, "__len__") else -1)
    data = data[same]
    if not len(data):
        return data
    long = data.explode(["epoch", metric], ignore_index=True)
    long["epoch"] = pd.to_numeric(long["epoch"])
    long[metric] = pd.to_numeric(long[metric])
    return long


@styled
def learning_curves(
    frame: pd.DataFrame,
    noise_axis: str | None = None,
    metric: str = "curve_test_accuracy",
    as_error: bool = True,
    log_y: bool = False,
    row: str | None = None,
    pool: Sequence[str] = (),
    *,
    params: Sequence[str],
) -> Figure:
    """Test error (1 − accuracy) against epoch per mode, one panel per level of a noise axis.

    The paper's Fig. 4 style: the band is the 95 % t interval over seeds. ``row`` adds a row
    of panels per value of a second axis; every other varying axis must be in ``pool``
    (averaged per seed, named in the title). Curves are the list columns ``epoch`` and
    ``metric``, exploded to long form.
    """
    vocab = vocabulary(params)
    require_rows(frame, [noise_axis, row, metric, "epoch", "mode"])
    pooled = pooled_axes(frame, params, shown(noise_axis, row), pool, "this figure")
    long = _explode_curves(frame, metric, [*shown(noise_axis, row), *pooled])
    if not len(long):
        raise AnalysisInputError(f"no learning curves ({metric!r} with 'epoch') in these rows")
    y = metric
    if as_error:
        y = "test_error" if metric == "curve_test_accuracy" else f"1 - {metric}"
        long[y] = 1.0 - long[metric]
    fig, axes, stats = facet_lines(long, "epoch", y, noise_axis, row, markers=False, params=vocab)
    for ax in axes:
        if as_error and y != "test_error" and ax.get_ylabel():
            ax.set_ylabel(f"1 − {vocab.label(metric)}")
        if log_y:
            ax.set_yscale("log")
    set_title(fig, f"{vocab.label(y) if y == 'test_error' else y}: mean and 95 % t interval over "
                   f"{seed_count(stats)}", frame, pooled, params=vocab)
    return fig


@styled
def decision_boundaries(
    frame: pd.DataFrame,
    seed: int | None = None,
    modes: Sequence[str] | None = None,
    where: dict | None = None,
    *,
    params: Sequence[str],
) -> Figure:
    """Decision boundaries of 2-D tasks with their test points, one panel per (task, mode).

    Uses the stored probability grids (``grid_prob`` row-major over (x2, x1) on the axes
    ``grid_x1``, ``grid_x2``) of one seed (default: the smallest with a grid). ``where``
    fixes other axes (``{axis: value}``); a declared parameter (``params``) that still
    varies is fixed at its first value. The title names the seed and every value so fixed (the grid point shown). The
    black line is P(class 1) = 0.5; panel titles give the row's test accuracy.
    """
    vocab = vocabulary(params)
    require_rows(frame, ["grid_prob", "grid_x1", "grid_x2", "mode"])
    data = frame[frame["grid_prob"].map(has_items)]
    fixed = {}
    for name, value in (where or {}).items():
        require_rows(frame, [name])
        data = data[data[name] == value]
        fixed[name] = value
    if not len(data):
        raise AnalysisInputError("no decision-boundary grids (grid_prob) in these rows")
    seed = int(data["seed"].min()) if seed is None else seed
    data = data[data["seed"] == seed]
    if not len(data):
        raise AnalysisInputError(f"no decision-boundary grids for seed {seed}")
    for name in [p for p in params if p in data.columns and p != "task"]:
        if name not in fixed and data[name].nunique(dropna=False) > 1:
            fixed[name] = levels(data, name)[0]
            data = data[data[name] == fixed[name]]
    tasks = levels(data, "task") if "task" in data.columns else [None]
    present, colors = mode_palette(data["mode"].dropna().unique())
    modes = [m for m in (modes or present) if m in present]
    n_cols = min(len(modes), MAX_COLUMNS)
    per_task = math.ceil(len(modes) / n_cols)
    fig, axes = new_figure(len(tasks) * per_task, n_cols, sharex=False, sharey=False, extra_width=1.0,
                        panel=(3.2, 3.3))
    mappable = None
    used = []
    for i, task in enumerate(tasks):
        for j, mode in enumerate(modes):
            ax = axes[i * per_task + j // n_cols, j % n_cols]
            used.append(ax)
            part = data[data["mode"] == mode]
            if task is not None:
                part = part[part["task"] == task]
            name = f"{task} · {mode}" if task is not None else mode
            if not len(part):
                ax.set_title(f"{name}\n(no grid)")
                ax.set_axis_off()
                continue
            r = part.iloc[0]
            x1, x2 = np.asarray(r["grid_x1"], float), np.asarray(r["grid_x2"], float)
            prob = np.asarray(r["grid_prob"], float).reshape(len(x2), len(x1))
            mappable = ax.contourf(x1, x2, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r",
                                   alpha=0.75)
            ax.contour(x1, x2, prob, levels=[0.5], colors="k", linewidths=1.2)
            if "points_x1" in r.index and has_items(r["points_x1"]):
                lab = np.asarray(r["points_label"], int)
                ax.scatter(r["points_x1"], r["points_x2"], c=np.where(lab == 1, "#B2182B", "#2166AC"),
                           s=14, edgecolors="white", linewidths=0.5)
            acc = r.get("test_accuracy")
            suffix = f" (acc {acc:.2f})" if isinstance(acc, (float, np.floating)) and np.isfinite(acc) else ""
            ax.set_title(name + suffix, color=colors[mode])
            ax.set_aspect("equal")
            ax.grid(False)
            ax.set_xlabel("x1" if i == len(tasks) - 1 else "")
            ax.set_ylabel("x2" if j % n_cols == 0 else "")
    for ax in axes.flat:
        if ax not in used:
            ax.remove()
    if mappable is not None:
        fig.colorbar(mappable, ax=used, label="P(class 1)", shrink=0.8)
    at = ", ".join(f"{vocab.label(k)} = {value_text(v)}" for k, v in fixed.items())
    fig.suptitle(f"decision boundaries, seed {seed}" + (f"\nat {at}" if at else ""))
    return fig
