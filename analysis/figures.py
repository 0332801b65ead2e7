"""Figures of a store's results, drawn with seaborn on matplotlib's Agg canvas.

Each public function takes a tidy DataFrame (rows as :func:`analysis.load.load` returns
them), the rows' declared parameters (``params=``: ``LoadedStore.params`` or
:func:`analysis.load.load_params`, the axes that may vary) and the names of the axes to
show, and returns a :class:`matplotlib.figure.Figure`;
:func:`save_figure` writes it as PNG and PDF. Figures are built on a ``Figure`` with an Agg
canvas attached, never through ``pyplot``, so no global figure registry grows and no
interactive backend is needed (a notebook still displays the returned figure).

Conventions shared by every figure, so that a reader can compare them:

* one fixed colour, marker and dash pattern per training mode / protocol
  (:data:`MODE_COLORS`, :data:`MODE_MARKERS`, :data:`MODE_DASHES`), the same everywhere, so
  two modes whose curves coincide stay visible, and the foot says they coincide;
* an x axis of two or three values gets points with error bars, moved sideways per mode so
  none hides another, not lines with bands;
* axis labels with units from the store's description (:mod:`insitu.analysis.vocabulary`);
* bands and error bars are 95 % Student t intervals over seeds, computed by
  :func:`analysis.summary.seed_statistics`, so a figure shows the numbers of the table;
  gradient errors ``1 − cos`` are geometric means with log-scale intervals; a log axis stops
  two decades below the smallest inexact mean, and exact values (below
  :data:`analysis.summary.EXACT_BELOW`) are drawn there as hollow ▽ and named in the foot,
  not at 1e-16;
* nothing is pooled silently: a figure shows every axis that varies (x, panels, rows) or
  names the ones it pools (``pool=``) in its title; pooled values are averaged per seed;
* panel grids wrap at :data:`MAX_COLUMNS` columns and no figure is wider than
  :data:`MAX_WIDTH_IN` inches (1950 px at the 150 dpi of :func:`save_figure`);
* constrained layout, a single figure legend outside the panels and notes in the figure's
  foot, so no text overlaps other text or the data.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.grouping import per_seed
from insitu.analysis.vocabulary import vocabulary
from insitu.analysis.summary import EXACT_BELOW, default_metric, gap_summary, seed_statistics
from insitu.analysis.tolerance import tolerance_axes

# The parts the figures are built from; MODE_COLORS and mode_palette are public here too.
from insitu.analysis.figure_parts import (
    MODE_COLORS,
    MODE_DASHES,
    MODE_MARKERS,
    MAX_COLUMNS,
    MAX_WIDTH_IN,
    mode_palette,
    styled,
    new_figure,
    require_rows,
    levels,
    value_text,
    panel_title,
    seed_count,
    set_title,
    suptitle,
    set_scale,
    figure_legend,
    mode_title,
    grid_shape,
    shown,
    pooled_axes,
    facet_lines,
    mode_styles,
    MIN_FONT_PT,
    figure_width,
    fit_width,
    add_foot,
    coinciding,
    coincide_note,
    log_floor,
    log_limits,
    exact_note,
    exact_markers,
    data_ticks,
    stat_name,
)

# Figures of the arrays a trial stores (curves, probability grids), public here too.
from insitu.analysis.array_figures import decision_boundaries, learning_curves

__all__ = [
    "MODE_COLORS",
    "MODE_DASHES",
    "MODE_MARKERS",
    "decision_boundaries",
    "figure_png",
    "figure_width",
    "fit_width",
    "gap_heatmap",
    "gradient_error",
    "learning_curves",
    "metric_by_mode",
    "metric_vs_axis",
    "mode_palette",
    "save_figure",
    "tolerance_vs_axis",
]



@styled
def metric_vs_axis(
    frame: pd.DataFrame,
    x: str,
    facet: str | None = None,
    row: str | None = None,
    metric: str | None = None,
    log_x: bool | None = None,
    pool: Sequence[str] = (),
    *,
    params: Sequence[str],
) -> Figure:
    """A metric (default: the headline metric) against one parameter, one line per mode
    with 95 % t bands over seeds.

    Panels: one per value of ``facet`` (wrapped at :data:`MAX_COLUMNS`) and one row per
    value of ``row`` (both optional). Every other axis that varies must be named in ``pool``;
    it is then averaged per seed and named in the title.
    """
    vocab = vocabulary(params)
    metric = metric or default_metric(frame, vocab)
    require_rows(frame, [x, facet, row, metric, "mode"])
    data = frame[frame[metric].notna()]
    if not len(data):
        raise AnalysisInputError(f"metric {metric!r} has no values to plot")
    pooled = pooled_axes(data, params, shown(x, facet, row), pool, "this figure")
    log = vocab.is_log(metric)
    fig, axes, stats = facet_lines(data, x, metric, facet, row, log=log, params=vocab,
                                   x_scale={"log": log_x, "symlog": log})
    for ax in axes:
        data_ticks(ax, data[x])
    set_title(fig, f"{vocab.label(metric)}: {stat_name(metric, vocab)} over {seed_count(stats)}", data, pooled,
              params=vocab)
    return fig


@styled
def metric_by_mode(frame: pd.DataFrame, metric: str | None = None, facet: str | None = None,
                   log_y: bool | None = None, pool: Sequence[str] = (), *,
                   params: Sequence[str]) -> Figure:
    """Mean of a metric (default: the headline metric) per mode with a 95 % t interval: the
    figure when no numeric axis varies.

    One dot per seed; gradient errors (or ``log_y``) on a log scale with geometric means,
    exact seed values drawn at the axis's floor (▽) and named in the foot. Modes whose means
    coincide are named in the foot.
    """
    vocab = vocabulary(params)
    metric = metric or default_metric(frame, vocab)
    require_rows(frame, [metric, facet, "mode"])
    data = frame[frame[metric].notna()]
    if not len(data):
        raise AnalysisInputError(f"metric {metric!r} has no values to plot")
    pooled = pooled_axes(data, params, shown(facet), pool, "this figure")
    log = vocab.is_log(metric) if log_y is None else log_y
    modes, colors = mode_palette(data["mode"].dropna().unique())
    styles = mode_styles(modes)
    keys = [*shown(facet), "mode"]
    seeds = per_seed(data, keys, [metric])
    stats = seed_statistics(seeds, keys, metric, log=log)
    values = seeds[metric].to_numpy(dtype=float)
    any_exact = log and bool((values < EXACT_BELOW).any())
    floor = log_floor(stats) if log else None
    cols = levels(data, facet)
    n_rows, n_cols, _ = grid_shape(1, len(cols)) if len(cols) > MAX_COLUMNS else (1, len(cols), False)
    fig, axes = new_figure(n_rows, n_cols, sharex=False)
    exact_at, found = [], {}
    for k, fvalue in enumerate(cols):
        ax = axes.flat[k]
        title = panel_title(vocab, facet, fvalue, None, None)
        part = stats if facet is None else stats[stats[facet] == fvalue]
        dots = seeds if facet is None else seeds[seeds[facet] == fvalue]
        if log:  # limits from log_limits, not from autoscaling
            ax.set_yscale("log")
            ax.set_autoscaley_on(False)
        for i, mode in enumerate(modes):
            s = part[part["mode"] == mode]
            d = dots[dots["mode"] == mode][metric].to_numpy(dtype=float)
            jitter = np.linspace(-0.12, 0.12, d.size) if d.size > 1 else np.zeros(d.size)
            if log:
                exact = d < EXACT_BELOW
                if exact.any():
                    exact_markers(ax, i + jitter[exact], floor, colors[mode], size=6, alpha=0.8)
                    exact_at.append(f"{exact.sum()} of {d.size} seeds of {mode}"
                                    + (f" ({' '.join(title.split())})" if title else ""))
                d, jitter = d[~exact], jitter[~exact]
            ax.scatter(i + jitter, d, color=colors[mode], alpha=0.35, s=9)
            if len(s) and np.isfinite(s["mean"].iloc[0]):
                m, lo, hi = (float(s[c].iloc[0]) for c in ("mean", "ci_low", "ci_high"))
                err = [[m - lo if np.isfinite(lo) else 0], [hi - m if np.isfinite(hi) else 0]]
                ax.errorbar([i], [m], yerr=err, color=colors[mode], marker=styles[mode][0],
                            markersize=6, capsize=4, lw=1.8)
        for pair in coinciding(part, modes, None, log):
            found.setdefault(pair, []).append(title)
        ax.set_xticks(range(len(modes)), modes)
        ax.set_xlim(-0.6, len(modes) - 0.4)
        ax.set_title(title)
        ax.set_xlabel(mode_title(data, vocab))
        ax.set_ylabel(vocab.label(metric) if k % n_cols == 0 else "")
        if log:
            log_limits(ax, stats, exact=any_exact, extra=values)
    for ax in list(axes.flat)[len(cols):]:
        ax.remove()
    add_foot(fig, coincide_note(found, len(cols), "their intervals are the same"))
    add_foot(fig, exact_note(exact_at, floor) if log else "")
    set_title(fig, f"{vocab.label(metric)}: {stat_name(metric, vocab)} over {seed_count(stats)}, one dot per seed",
           data, pooled, params=vocab)
    return fig


@styled
def gap_heatmap(
    frame: pd.DataFrame,
    x: str,
    y: str | None = None,
    metric: str | None = None,
    mode: str = "insitu",
    reference: str = "digital",
    facet: str | None = None,
    pool: Sequence[str] = (),
    *,
    params: Sequence[str],
) -> Figure:
    """Mean paired gap ``metric[mode] − metric[reference]`` over two axes (cells annotated);
    ``metric`` defaults to the headline metric.

    The gap is taken per trial (same grid point and seed) and averaged over seeds; ``y`` may
    be None for a single row, ``facet`` gives one heatmap per value (wrapped at
    :data:`MAX_COLUMNS`). Other varying axes must be in ``pool`` (named in the title).
    Diverging colours centred on zero: blue where ``mode`` wins.
    """
    vocab = vocabulary(params)
    metric = metric or default_metric(frame, vocab)
    require_rows(frame, [x, y, facet, metric, "mode"])
    drawn = shown(x, y, facet)
    pooled = pooled_axes(frame, params, drawn, pool, "this figure")
    gaps = gap_summary(frame, metric, by=drawn, comparisons=[(mode, reference)], pool=pooled, params=params)
    if not len(gaps):
        raise AnalysisInputError(f"no paired {mode}/{reference} trials with {metric!r} to compare")
    y_name = y if y is not None else "_row"
    if y is None:
        gaps = gaps.assign(_row="all")
    facets = levels(gaps, facet)
    limit = float(np.nanmax(np.abs(gaps["mean"].to_numpy(dtype=float)))) or 1.0
    n_x = gaps[x].nunique()
    n_y = gaps[y_name].nunique()
    n_rows, n_cols, _ = grid_shape(1, len(facets)) if len(facets) > MAX_COLUMNS else (1, len(facets), False)
    cell = min(0.9, (MAX_WIDTH_IN - 2.8) / max(1, n_x * n_cols))
    fig = Figure(figsize=(min(MAX_WIDTH_IN, max(4.5, cell * n_x * n_cols + 1.2 * n_cols + 1.6)),
                          max(2.7 if y is None else 3.1, (0.6 * n_y + 1.6) * n_rows + 0.5)),
                 layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    font = 8 if cell >= 0.6 else 6
    for k, fvalue in enumerate(facets):
        ax = axes.flat[k]
        part = gaps if facet is None else gaps[gaps[facet] == fvalue]
        table = part.pivot(index=y_name, columns=x, values="mean").sort_index(ascending=False)
        sns.heatmap(table, ax=ax, cmap="RdBu", vmin=-limit, vmax=limit, annot=cell >= 0.45,
                    fmt=".3f", linewidths=0.5, annot_kws={"fontsize": font},
                    cbar=k == len(facets) - 1,
                    cbar_kws={"label": f"{vocab.label(metric)} gap\n{mode} − {reference}"})
        ax.set_xlabel(vocab.label(x))
        ax.set_ylabel("" if y is None or k % n_cols else vocab.label(y))
        ax.set_xticklabels([value_text(v) for v in table.columns],
                           rotation=0 if cell >= 0.6 else 90)
        if y is None:
            ax.set_yticks([])
        else:
            ax.set_yticklabels([value_text(v) for v in table.index], rotation=0)
        ax.set_title(panel_title(vocab, facet, fvalue, None, None))
    for ax in list(axes.flat)[len(facets):]:
        ax.remove()
    set_title(fig, f"paired gap {mode} − {reference}, mean over {seed_count(gaps)}", frame, pooled,
              params=vocab)
    return fig


@styled
def gradient_error(
    frame: pd.DataFrame,
    x: str,
    facet: str | None = None,
    metric: str = "grad_error_mean",
    log_x: bool | None = None,
    row: str | None = None,
    pool: Sequence[str] = (),
    *,
    params: Sequence[str],
) -> Figure:
    """Gradient error ``1 − cos`` against a parameter per protocol (``mode``), log axes.

    The paper's Fig. 2D-F style: geometric means over seeds with log-scale 95 % t bands
    (error bars on an axis of two or three values), y on a log scale; x on a log scale when
    it spans a decade (symlog when it includes zero), linear for quantities already in dB.
    Exact values are drawn at the axis's floor (▽) and named in the foot.
    """
    vocab = vocabulary(params)
    require_rows(frame, [x, facet, row, metric, "mode"])
    data = frame[np.isfinite(pd.to_numeric(frame[metric], errors="coerce"))]
    if not len(data):
        raise AnalysisInputError(f"metric {metric!r} has no finite values to plot")
    pooled = pooled_axes(data, params, shown(x, facet, row), pool, "this figure")
    fig, axes, stats = facet_lines(data, x, metric, facet, row, log=True, params=vocab,
                                   x_scale={"log": log_x, "symlog": True})
    for ax in axes:
        data_ticks(ax, data[x])
    set_title(fig, f"{vocab.label(metric)}: geometric mean and 95 % log-scale t interval over "
                   f"{seed_count(stats)}", data, pooled, params=vocab)
    return fig


@styled
def tolerance_vs_axis(table: pd.DataFrame, x: str, facet: str | None = None,
                      log_x: bool | None = None, log_y: bool | None = None,
                      params: Sequence[str] = ()) -> Figure:
    """Tolerances (:func:`analysis.tolerance.tolerance`) against a second axis, per mode.

    Points are the tolerances with their bootstrap intervals as bars. A tolerance that is
    not reached is drawn as an open triangle at the axis's far end (the dashed line); a bar
    reaching that line means the interval's bound is beyond the grid. Log axes where the
    values span a decade or more (``log_x``/``log_y`` force or forbid). Other grouping axes
    of the table besides ``x`` and ``facet`` must not vary (pass a filtered table).
    ``params``: the store's vocabulary, which names the axes.
    """
    vocab = vocabulary(params)
    if not len(table):
        raise AnalysisInputError("no tolerances to plot")
    for name in shown(x, facet):
        if name not in table.columns:
            raise AnalysisInputError(f"unknown axis {name!r} for the tolerance figure")
    others = [b for b in tolerance_axes(table) if b not in (x, facet) and table[b].nunique() > 1]
    if others:
        raise AnalysisInputError(
            f"the tolerance table varies in {others[0]!r} too; facet by it or filter it")
    r0 = table.iloc[0]
    axis, largest = r0["axis"], float(r0["largest"])
    modes, colors = mode_palette(table["mode"].dropna().unique())
    cols = levels(table, facet)
    n_rows, n_cols, _ = grid_shape(1, len(cols)) if len(cols) > MAX_COLUMNS else (1, len(cols), False)
    fig, axes = new_figure(n_rows, n_cols, sharey=True, extra_width=2.6)
    offsets = np.linspace(-0.03, 0.03, len(modes)) if len(modes) > 1 else np.zeros(1)
    finite = pd.concat([table["tolerance"], table["ci_low"]]).replace(np.inf, np.nan).dropna()
    values_y = np.append(finite.to_numpy(dtype=float), largest)
    for k, fvalue in enumerate(cols):
        ax = axes.flat[k]
        part = table if facet is None else table[table[facet] == fvalue]
        xs_all = np.asarray(sorted(part[x].unique()), dtype=float)
        spread = (np.ptp(xs_all) or 1.0)
        log_scale_x = _would_log(xs_all, log_x, x)
        for mode, off in zip(modes, offsets):
            line = part[part["mode"] == mode].sort_values(x)
            if not len(line):
                continue
            xs = line[x].to_numpy(dtype=float)
            xs = xs * 10 ** (off * 2) if log_scale_x else xs + off * spread
            tol = line["tolerance"].to_numpy(dtype=float)
            lo = np.minimum(line["ci_low"].to_numpy(dtype=float), largest)
            hi = np.minimum(line["ci_high"].to_numpy(dtype=float), largest)
            reached = line["reached"].to_numpy(dtype=bool)
            y = np.where(reached, tol, largest)
            ax.errorbar(xs, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)], color=colors[mode],
                        fmt="none", capsize=3, lw=1.4)
            ax.plot(xs[reached], y[reached], "o", color=colors[mode])
            ax.plot(xs[~reached], y[~reached], "^", markerfacecolor="white", color=colors[mode],
                    markersize=8)
            ax.plot(xs, y, color=colors[mode], lw=1, alpha=0.5)
        ax.axhline(largest, color="0.4", ls="--", lw=1)
        ax.set_title(panel_title(vocab, facet, fvalue, None, None))
        ax.set_xlabel(vocab.label(x))
        ax.set_ylabel(f"tolerance: {vocab.label(axis)}" if k % n_cols == 0 else "")
        if log_scale_x:
            ax.set_xscale("log")
        set_scale(ax, values_y, "y", axis, log_y)
        data_ticks(ax, xs_all)
    for ax in list(axes.flat)[len(cols):]:
        ax.remove()
    figure_legend(fig, modes, colors, mode_title(table, vocab))
    how = f"{r0['drop'] * 100:g} %" if r0["relative"] else f"{r0['drop']:g}"
    seeds = table["n_seeds"]
    n = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    text = (f"{vocab.label(axis)} at which {vocab.label(r0['metric'])} falls {how} below its value at "
            f"{value_text(r0['error_free'])}\n95 % bootstrap intervals over {n} seeds; "
            f"△ not reached (dashed: largest value {largest:g})")
    if table.attrs.get("pooled_text"):
        text += "\n" + table.attrs["pooled_text"]
    suptitle(fig, text)
    return fig


def _would_log(values, log: bool | None, name: str) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if log is False or v.size < 2 or name.endswith("_db") or (v <= 0).any():
        return False
    return bool(log) or v.max() / v.min() >= 10


# ---------------------------------------------------------------------------------------
# Output


PAPER_FONTS = {"pdf.fonttype": 42, "ps.fonttype": 42}
def figure_files(fig: Figure, dpi: int = 150) -> dict[str, bytes]:
    """The figure as PNG (``dpi``) and PDF bytes, keyed by suffix; drawn in memory, so a
    failure writes nothing."""
    import matplotlib

    files = {}
    # TrueType (Type 42) fonts in the PDF: many venues reject matplotlib's default Type 3
    with matplotlib.rc_context(PAPER_FONTS):
        for suffix, options in ((".png", {"dpi": dpi}), (".pdf", {})):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=suffix[1:], **options)
            files[suffix] = buffer.getvalue()
    return files


def save_figure(fig: Figure, path_stem: str | Path, dpi: int = 150) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` (parents created), each whole or not at all
    (temporary name, fsync, rename); returns both paths."""
    from insitu.sweeps.store.fsutil import write_bytes_atomic

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, data in figure_files(fig, dpi).items():
        paths.append(stem.with_name(stem.name + suffix))
        write_bytes_atomic(paths[-1], data)
    return paths


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (for embedding in a report)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
