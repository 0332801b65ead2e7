"""Figures of a store's results, drawn with seaborn on matplotlib's Agg canvas.

Each public function takes a tidy DataFrame (rows as :func:`analysis.load.load` returns
them) plus the names of the axes to show, and returns a :class:`matplotlib.figure.Figure`;
:func:`save_figure` writes it as PNG and PDF. Figures are built on a ``Figure`` with an Agg
canvas attached, never through ``pyplot``, so no global figure registry grows and no
interactive backend is needed (a notebook still displays the returned figure).

Conventions shared by every figure, so that a reader can compare them:

* one fixed colour per training mode / protocol (:data:`MODE_COLORS`), the same everywhere;
* axis labels with units from :data:`analysis.axes.LABELS` (unknown names stay raw);
* bands and error bars are 95 % Student t intervals over seeds (as in :mod:`analysis.summary`);
* constrained layout and a single figure legend outside the panels, so no text overlaps.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from analysis.axes import MODE_ORDER, label
from analysis.errors import AnalysisInputError
from analysis.summary import gap_summary, t_quantile

__all__ = [
    "MODE_COLORS",
    "MODE_ORDER",
    "accuracy_vs_error",
    "decision_boundaries",
    "figure_png",
    "gap_heatmap",
    "gradient_error",
    "learning_curves",
    "metric_by_mode",
    "metric_vs_axis",
    "mode_palette",
    "save_figure",
]

# One colour per training mode (classify) and protocol (gradient), Okabe-Ito colour-blind
# safe. ``analog`` is the analog toggle protocol in both experiments, hence one colour.
MODE_COLORS: dict[str, str] = {
    "digital": "#0072b2",
    "insitu": "#d55e00",
    "analog": "#009e73",
    "three_pass": "#cc79a7",
    "ideal": "#000000",
}
_SPARE_COLORS = ("#e69f00", "#56b4e9", "#f0e442", "#999999", "#882255", "#44aa99")
_PANEL = (4.0, 3.1)  # inches per panel


def mode_palette(modes: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Modes in canonical order and their colours; unknown modes get spare colours by name."""
    present = [m for m in dict.fromkeys(str(m) for m in modes)]
    ordered = [m for m in MODE_ORDER if m in present] + sorted(m for m in present if m not in MODE_ORDER)
    spare = iter(_SPARE_COLORS * 4)
    return ordered, {m: MODE_COLORS.get(m) or next(spare) for m in ordered}


def _styled(func):
    """Build the figure inside seaborn's whitegrid style without touching global rcParams."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
            return func(*args, **kwargs)

    return wrapper


def _figure(n_rows: int, n_cols: int, sharex=True, sharey=True, extra_width=1.3, panel=_PANEL):
    fig = Figure(figsize=(panel[0] * n_cols + extra_width, panel[1] * n_rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, sharex=sharex, sharey=sharey, squeeze=False)
    return fig, axes


def _t_band(values) -> tuple[float, float]:
    """95 % Student t interval of the mean, for seaborn's ``errorbar``; a point when n < 2."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (math.nan, math.nan)
    mean = float(x.mean())
    if x.size < 2:
        return (mean, mean)
    half = t_quantile(x.size) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return (mean - half, mean + half)


def _t_band_positive(values) -> tuple[float, float]:
    """As :func:`_t_band`, the lower end kept above zero so a log axis can show the band."""
    lo, hi = _t_band(values)
    x = np.asarray(values, dtype=float)
    pos = x[np.isfinite(x) & (x > 0)]
    if pos.size and not lo > 0:
        lo = float(pos.min()) / 2
    return (lo, hi)


def _require(frame: pd.DataFrame, names: Sequence[str | None], what="column") -> None:
    for name in names:
        if name is not None and name not in frame.columns:
            raise AnalysisInputError(f"unknown {what} {name!r} for this figure")
    if not len(frame):
        raise AnalysisInputError("no rows to plot")


def _levels(frame: pd.DataFrame, name: str | None) -> list:
    if name is None:
        return [None]
    values = frame[name].dropna().unique().tolist()
    try:
        return sorted(values)
    except TypeError:
        return values


def _value_text(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


def _panel_title(facet, fvalue, row, rvalue) -> str:
    parts = []
    if row is not None:
        parts.append(f"{label(row)} = {_value_text(rvalue)}")
    if facet is not None:
        parts.append(f"{label(facet)} = {_value_text(fvalue)}")
    return "\n".join(parts)


def _set_scale(ax, values, axis: str, name: str | None, log: bool | None = None,
               symlog: bool = False) -> None:
    """Choose a linear, log or symlog scale for one axis from the data it shows.

    ``log=None`` (auto) takes a log scale for positive data spanning a decade or more
    (ports 4..128, batch 1..64); ``log=True`` takes one whenever the data allow it. Data
    that include zero get a symlog scale (linear up to the smallest positive value) only with
    ``symlog``, else stay linear: an error axis from 0 to 0.3 rad reads best linearly.
    Quantities already in decibels (names ending in ``_db``) always stay linear.
    """
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    v = v[np.isfinite(v)]
    if log is False or v.size < 2 or (name or "").endswith("_db"):
        return
    pos = v[v > 0]
    if pos.size < 2 or (v < 0).any():
        return
    span = pos.max() / pos.min()
    if not log and span < 10:
        return
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    if (v == 0).any():
        if symlog:
            setter("symlog", linthresh=float(pos.min()))
    elif span > 1:
        setter("log")


def _figure_legend(fig, modes: list[str], colors: dict[str, str], title: str) -> None:
    handles = [Line2D([], [], color=colors[m], marker="o", lw=2) for m in modes]
    fig.legend(handles, modes, title=title, loc="outside right upper", frameon=False)


def _mode_title(frame: pd.DataFrame) -> str:
    return "protocol" if set(frame["mode"].dropna()) <= {"three_pass", "analog"} else "training mode"


def _grid_shape(n_rows: int, n_cols: int) -> tuple[int, int, bool]:
    """Panel grid for (row, facet) levels; a single long facet row wraps to stay readable."""
    if n_rows == 1 and n_cols > 3:
        cols = math.ceil(math.sqrt(n_cols))
        return math.ceil(n_cols / cols), cols, True
    return n_rows, n_cols, False


def _facet_lines(frame, x, y, facet, row, errorbar, markers=True, sharey=True):
    """Draw ``y`` against ``x`` per mode, one panel per (row, facet) value. Returns fig, panels."""
    modes, colors = mode_palette(frame["mode"].dropna().unique())
    rows, cols = _levels(frame, row), _levels(frame, facet)
    n_rows, n_cols, wrapped = _grid_shape(len(rows), len(cols))
    fig, axes = _figure(n_rows, n_cols, sharey=sharey)
    combos = [(r, f) for r in rows for f in cols]
    panels = []
    for k, (rvalue, fvalue) in enumerate(combos):
        i, j = (k // n_cols, k % n_cols) if wrapped else (rows.index(rvalue), cols.index(fvalue))
        ax = axes[i, j]
        part = frame
        if row is not None:
            part = part[part[row] == rvalue]
        if facet is not None:
            part = part[part[facet] == fvalue]
        if len(part):
            present = set(part["mode"])
            sns.lineplot(data=part, x=x, y=y, hue="mode", hue_order=[m for m in modes if m in present],
                         palette=colors, errorbar=errorbar, marker="o" if markers else None,
                         markersize=5, ax=ax, legend=False, err_kws={"alpha": 0.2})
        ax.set_title(_panel_title(facet, fvalue, row, rvalue))
        below = k + n_cols < len(combos) if wrapped else i < n_rows - 1
        ax.set_xlabel("" if below else label(x))
        if below:
            ax.tick_params(labelbottom=False)
        else:
            ax.tick_params(labelbottom=True)
        ax.set_ylabel(label(y) if j == 0 else "")
        panels.append(ax)
    for ax in axes.flat:
        if ax not in panels:
            ax.remove()
    _figure_legend(fig, modes, colors, _mode_title(frame))
    return fig, np.asarray(panels)


def _data_ticks(ax, values, axis: str = "x") -> None:
    """Put ticks at the data values when they are few and far enough apart to be read."""
    v = np.unique(np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float))
    v = v[np.isfinite(v)]
    if not 1 < v.size <= 8:
        return
    target = ax.xaxis if axis == "x" else ax.yaxis
    pos = target.get_transform().transform(v)
    if not np.all(np.isfinite(pos)) or np.min(np.diff(pos)) < 0.09 * (pos.max() - pos.min()):
        return
    target.set_major_locator(FixedLocator(v))
    target.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    target.set_minor_locator(NullLocator())


@_styled
def metric_vs_axis(
    frame: pd.DataFrame,
    x: str,
    facet: str | None = None,
    row: str | None = None,
    metric: str = "test_accuracy",
    log_x: bool | None = None,
) -> Figure:
    """A metric against one parameter, one line per mode with 95 % t bands over seeds.

    Panels: one column per value of ``facet`` and one row per value of ``row`` (both
    optional). Rows at other settings of unshown axes are pooled into the band.
    """
    _require(frame, [x, facet, row, metric, "mode"])
    data = frame[frame[metric].notna()]
    if not len(data):
        raise AnalysisInputError(f"metric {metric!r} has no values to plot")
    fig, axes = _facet_lines(data, x, metric, facet, row, _t_band)
    for ax in axes:
        _set_scale(ax, data[x], "x", x, log_x)
        _data_ticks(ax, data[x])
    return fig


def accuracy_vs_error(
    frame: pd.DataFrame,
    x: str,
    facet: str | None = None,
    row: str | None = None,
    metric: str = "test_accuracy",
) -> Figure:
    """Test accuracy against an error axis per training mode, faceted by a second axis."""
    return metric_vs_axis(frame, x, facet=facet, row=row, metric=metric)


@_styled
def metric_by_mode(frame: pd.DataFrame, metric: str = "test_accuracy", facet: str | None = None,
                   log_y: bool = False) -> Figure:
    """Mean of a metric per mode with a 95 % t interval: the figure when no numeric axis varies."""
    _require(frame, [metric, facet, "mode"])
    data = frame[frame[metric].notna()]
    modes, colors = mode_palette(data["mode"].dropna().unique())
    cols = _levels(data, facet)
    fig, axes = _figure(1, len(cols), sharex=False)
    for j, fvalue in enumerate(cols):
        ax = axes[0, j]
        part = data if facet is None else data[data[facet] == fvalue]
        sns.pointplot(data=part, x="mode", y=metric, hue="mode", order=modes, hue_order=modes,
                      palette=colors, errorbar=_t_band_positive if log_y else _t_band,
                      capsize=0.15, linestyle="none", ax=ax, legend=False)
        sns.stripplot(data=part, x="mode", y=metric, hue="mode", order=modes, hue_order=modes,
                      palette=colors, alpha=0.35, size=3, ax=ax, legend=False)
        ax.set_title(_panel_title(facet, fvalue, None, None))
        ax.set_xlabel(_mode_title(data))
        ax.set_ylabel(label(metric) if j == 0 else "")
        if log_y:
            ax.set_yscale("log")
    return fig


@_styled
def gap_heatmap(
    frame: pd.DataFrame,
    x: str,
    y: str | None = None,
    metric: str = "test_accuracy",
    mode: str = "insitu",
    reference: str = "digital",
) -> Figure:
    """Mean paired gap ``metric[mode] − metric[reference]`` over two axes (cells annotated).

    The gap is taken per trial (same grid point and seed) and averaged over seeds; ``y`` may
    be None for a single row. Diverging colours centred on zero: blue where ``mode`` wins.
    """
    _require(frame, [x, y, metric, "mode"])
    by = [x] if y is None else [x, y]
    gaps = gap_summary(frame, metric, by=by, comparisons=[(mode, reference)])
    if not len(gaps):
        raise AnalysisInputError(f"no paired {mode}/{reference} trials with {metric!r} to compare")
    if y is None:
        gaps = gaps.assign(_row="all")
        y_name = "_row"
    else:
        y_name = y
    table = gaps.pivot(index=y_name, columns=x, values="mean").sort_index(ascending=False)
    counts = gaps.pivot(index=y_name, columns=x, values="n").reindex_like(table)
    limit = float(np.nanmax(np.abs(table.to_numpy()))) or 1.0
    n_rows, n_cols = table.shape
    fig = Figure(figsize=(max(4.5, 0.9 * n_cols + 2.8), max(2.2 if y is None else 2.6, 0.6 * n_rows + 1.8)),
                 layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    sns.heatmap(table, ax=ax, cmap="RdBu", vmin=-limit, vmax=limit, annot=True,
                fmt=".3f", linewidths=0.5, annot_kws={"fontsize": 8},
                cbar_kws={"label": f"{label(metric)} gap\n{mode} − {reference}"})
    ax.set_xlabel(label(x))
    ax.set_ylabel("" if y is None else label(y))
    ax.set_xticklabels([_value_text(v) for v in table.columns], rotation=0)
    if y is None:
        ax.set_yticks([])
    else:
        ax.set_yticklabels([_value_text(v) for v in table.index], rotation=0)
    n_min, n_max = int(np.nanmin(counts.to_numpy())), int(np.nanmax(counts.to_numpy()))
    seeds = f"{n_min}" if n_min == n_max else f"{n_min}-{n_max}"
    ax.set_title(f"paired gap, mean over {seeds} seeds")
    return fig


@_styled
def gradient_error(
    frame: pd.DataFrame,
    x: str,
    facet: str | None = None,
    metric: str = "grad_error_mean",
    log_x: bool | None = None,
) -> Figure:
    """Gradient error ``1 − cos`` against a parameter per protocol (``mode``), log axes.

    The paper's Fig. 2D-F style: y on a log scale; x on a log scale when it spans a decade
    (symlog when it includes zero), linear for quantities already in dB.
    """
    _require(frame, [x, facet, metric, "mode"])
    data = frame[np.isfinite(pd.to_numeric(frame[metric], errors="coerce"))]
    if not len(data):
        raise AnalysisInputError(f"metric {metric!r} has no finite values to plot")
    fig, axes = _facet_lines(data, x, metric, facet, None, _t_band_positive)
    for ax in axes:
        if (data[metric] > 0).any():
            ax.set_yscale("log")
        _set_scale(ax, data[x], "x", x, log_x, symlog=True)
        _data_ticks(ax, data[x])
    return fig


def _explode_curves(frame: pd.DataFrame, metric: str, keep: Sequence[str]) -> pd.DataFrame:
    cols = list(dict.fromkeys(["key", "seed", "mode", *keep]))
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


@_styled
def learning_curves(
    frame: pd.DataFrame,
    noise_axis: str | None = None,
    metric: str = "curve_test_accuracy",
    as_error: bool = True,
    log_y: bool = False,
) -> Figure:
    """Test error (1 − accuracy) against epoch per mode, one panel per level of a noise axis.

    The paper's Fig. 4 style: the band is the 95 % t interval over seeds and over any other
    axis that varies (mean and spread over the other errors). Curves are the list columns
    ``epoch`` and ``metric``, exploded to long form.
    """
    _require(frame, [noise_axis, metric, "epoch", "mode"])
    long = _explode_curves(frame, metric, [noise_axis] if noise_axis else [])
    if not len(long):
        raise AnalysisInputError(f"no learning curves ({metric!r} with 'epoch') in these rows")
    y = metric
    if as_error:
        y = "test_error" if metric == "curve_test_accuracy" else f"1 - {metric}"
        long[y] = 1.0 - long[metric]
    fig, axes = _facet_lines(long, "epoch", y, noise_axis, None, _t_band_positive if log_y else _t_band,
                             markers=False)
    for ax in axes:
        if as_error and y != "test_error" and ax.get_ylabel():
            ax.set_ylabel(f"1 − {label(metric)}")
        if log_y:
            ax.set_yscale("log")
    return fig


def _has_grid(value) -> bool:
    return value is not None and hasattr(value, "__len__") and len(value) > 0


@_styled
def decision_boundaries(
    frame: pd.DataFrame,
    seed: int | None = None,
    modes: Sequence[str] | None = None,
    where: dict | None = None,
) -> Figure:
    """Decision boundaries of 2-D tasks with their test points, one panel per (task, mode).

    Uses the stored probability grids (``grid_prob`` row-major over (x2, x1) on the axes
    ``grid_x1``, ``grid_x2``) of one seed (default: the smallest with a grid). ``where``
    fixes other axes (``{axis: value}``); with several rows left per panel the first is used.
    The black line is P(class 1) = 0.5; the title gives the row's test accuracy.
    """
    _require(frame, ["grid_prob", "grid_x1", "grid_x2", "mode"])
    data = frame[frame["grid_prob"].map(_has_grid)]
    for name, value in (where or {}).items():
        _require(frame, [name])
        data = data[data[name] == value]
    if not len(data):
        raise AnalysisInputError("no decision-boundary grids (grid_prob) in these rows")
    seed = int(data["seed"].min()) if seed is None else seed
    data = data[data["seed"] == seed]
    if not len(data):
        raise AnalysisInputError(f"no decision-boundary grids for seed {seed}")
    tasks = _levels(data, "task") if "task" in data.columns else [None]
    present, colors = mode_palette(data["mode"].dropna().unique())
    modes = [m for m in (modes or present) if m in present]
    fig, axes = _figure(len(tasks), len(modes), sharex=False, sharey=False, extra_width=1.0,
                        panel=(3.2, 3.3))
    mappable = None
    for i, task in enumerate(tasks):
        for j, mode in enumerate(modes):
            ax = axes[i, j]
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
            if "points_x1" in r.index and _has_grid(r["points_x1"]):
                lab = np.asarray(r["points_label"], int)
                ax.scatter(r["points_x1"], r["points_x2"], c=np.where(lab == 1, "#B2182B", "#2166AC"),
                           s=14, edgecolors="white", linewidths=0.5)
            acc = r.get("test_accuracy")
            suffix = f" (acc {acc:.2f})" if isinstance(acc, (float, np.floating)) and np.isfinite(acc) else ""
            ax.set_title(name + suffix, color=colors[mode])
            ax.set_aspect("equal")
            ax.grid(False)
            ax.set_xlabel("x1" if i == len(tasks) - 1 else "")
            ax.set_ylabel("x2" if j == 0 else "")
    if mappable is not None:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), label="P(class 1)", shrink=0.8)
    fig.suptitle(f"decision boundaries, seed {seed}")
    return fig


# ---------------------------------------------------------------------------------------
# Output


def save_figure(fig: Figure, path_stem: str | Path, dpi: int = 150) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` (parents created); returns both paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    fig.savefig(paths[0], dpi=dpi)
    fig.savefig(paths[1])
    return paths


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (for embedding in a report)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
