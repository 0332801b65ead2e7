"""The parts every figure of :mod:`analysis.figures` is built from: the mode colours, markers
and dashes, the seaborn style, panel grids and their sizes, titles that name what is pooled,
scales and ticks, log axes that do not reach down to exact values, the figure legend and
foot, and the faceted plot of a metric per mode (lines with t bands, or dodged points with
error bars on an axis of two or three values).

Kept apart from the figure functions so that each module holds one concept; the
conventions they implement are listed in :mod:`analysis.figures`.
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.grouping import (check_replicates, per_seed, pooled_text, require_columns,
                                      resolve_grouping, value_text)
from insitu.analysis.summary import EXACT_BELOW, seed_statistics
from insitu.analysis.vocabulary import Vocabulary, vocabulary

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
# One marker and one dash pattern per mode as well, so that two modes whose curves coincide
# (``analog`` drawn exactly over ``insitu``) stay distinguishable, in grey print too.
MODE_MARKERS: dict[str, str] = {"digital": "o", "insitu": "s", "analog": "^", "three_pass": "D",
                                "ideal": "*"}
_SPARE_MARKERS = ("P", "X", "h", "<", ">", "p")
MODE_DASHES: dict[str, object] = {"digital": "-", "insitu": "--", "analog": ":",
                                  "three_pass": "-.", "ideal": (0, (3, 1, 1, 1, 1, 1))}
_SPARE_DASHES = ((0, (3, 1)), (0, (8, 2, 1, 2, 1, 2)), (0, (2, 2)), (0, (6, 3)))
EXACT_MARKER = "v"  # exact values (below EXACT_BELOW), drawn hollow at a log axis's floor
FEW_VALUES = 3  # an x axis with at most this many values gets dodged points with error bars
COINCIDE_WITHIN = 1e-9  # two modes whose means differ by no more than this coincide
FLOOR_DECADES = 2.0  # a log axis reaches this many decades below its smallest inexact mean
_PANEL = (4.0, 3.1)  # inches per panel
MAX_COLUMNS = 4  # panel grids wrap after this many columns
MAX_WIDTH_IN = 13.0  # no figure is wider (1950 px at 150 dpi)


def mode_palette(modes: Sequence[str], params: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """Modes in the store's order (``params``: its vocabulary) and their colours; modes
    without a colour of their own get spare colours in that order."""
    ordered = vocabulary(params).mode_order(modes)
    spare = iter(_SPARE_COLORS * 4)
    return ordered, {m: MODE_COLORS.get(m) or next(spare) for m in ordered}


def mode_styles(modes: Sequence[str]) -> dict[str, tuple[str, object]]:
    """The marker and the dash pattern of each mode (``modes`` in the figure's order); modes
    without their own get spare ones in that order."""
    markers, dashes = iter(_SPARE_MARKERS * 4), iter(_SPARE_DASHES * 6)
    return {m: (MODE_MARKERS.get(m) or next(markers), MODE_DASHES.get(m) or next(dashes))
            for m in modes}


def styled(func):
    """Build the figure inside seaborn's whitegrid style without touching global rcParams;
    every figure function so wrapped takes ``width=`` (``"single"``, ``"double"`` or inches:
    :func:`fit_width`)."""

    @functools.wraps(func)
    def wrapper(*args, width: str | float | None = None, **kwargs):
        if width is not None:
            figure_width(width)  # refused before anything is drawn
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
            fig = func(*args, **kwargs)
            return fig if width is None else fit_width(fig, width)

    return wrapper


# Column widths of two-column journals (inches): IEEE, APS and Optica within 0.1 in
COLUMN_WIDTHS = {"single": 3.5, "double": 7.16}
MIN_FONT_PT = 5.5  # no text is shrunk below this


def figure_width(width: str | float) -> float:
    """``"single"`` (3.5 in), ``"double"`` (7.16 in) or a width in inches (1 to 20)."""
    if isinstance(width, str) and width in COLUMN_WIDTHS:
        return COLUMN_WIDTHS[width]
    try:
        inches = float(width)
    except (TypeError, ValueError):
        raise AnalysisInputError(f"figure width {width!r}: give single, double or inches (1 to 20)") from None
    if not 1.0 <= inches <= 20.0:
        raise AnalysisInputError(f"figure width {inches:g} in is out of range: give 1 to 20 inches")
    return inches


def fit_width(fig: Figure, width: str | float) -> Figure:
    """Resize ``fig`` to ``width`` (see :func:`figure_width`) as a journal would print it:
    the height follows the aspect ratio (panels stay as tall as they are wide, at least
    60 % of it), and every font and line shrinks with the width (fonts to no less than
    5.5 pt), so the constrained layout fits titles and legends again instead of clipping."""
    inches = figure_width(width)
    old_w, old_h = fig.get_size_inches()
    scale = inches / old_w
    fig.set_size_inches(inches, old_h * max(scale, 0.6))
    if scale < 1:
        from matplotlib.lines import Line2D
        from matplotlib.text import Text

        for text in fig.findobj(Text):
            text.set_fontsize(max(MIN_FONT_PT, text.get_fontsize() * max(scale, 0.55)))
        for line in fig.findobj(Line2D):
            line.set_linewidth(line.get_linewidth() * max(scale, 0.5))
            line.set_markersize(line.get_markersize() * max(scale, 0.5))
        for ax in fig.axes:  # tick labels are made on drawing: set their size, not theirs
            size = ax.xaxis.get_ticklabels()[0].get_fontsize() if ax.xaxis.get_ticklabels() else 9.0
            ax.tick_params(labelsize=max(MIN_FONT_PT, size * max(scale, 0.55)))
        fit_titles(fig)
    return fig




def new_figure(n_rows: int, n_cols: int, sharex=True, sharey=True, extra_width=1.3, panel=_PANEL):
    width = min(panel[0] * n_cols + extra_width, MAX_WIDTH_IN)
    height = panel[1] * n_rows + 0.5  # room for the title that names seeds and pooling
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, sharex=sharex, sharey=sharey, squeeze=False)
    return fig, axes


def require_rows(frame: pd.DataFrame, names: Sequence[str | None], what="column") -> None:
    """The one column check (:func:`insitu.analysis.grouping.require_columns`), and rows to plot."""
    require_columns(frame, names, what)
    if not len(frame):
        raise AnalysisInputError("no rows to plot")


def levels(frame: pd.DataFrame, name: str | None) -> list:
    if name is None:
        return [None]
    values = frame[name].dropna().unique().tolist()
    try:
        return sorted(values)
    except TypeError:
        return values


def panel_title(vocab: Vocabulary, facet, fvalue, row, rvalue) -> str:
    parts = []
    if row is not None:
        parts.append(f"{vocab.label(row)} = {value_text(rvalue)}")
    if facet is not None:
        parts.append(f"{vocab.label(facet)} = {value_text(fvalue)}")
    return "\n".join(parts)


def seed_count(stats: pd.DataFrame) -> str:
    n = pd.to_numeric(stats["n"], errors="coerce").dropna() if len(stats) else pd.Series([], dtype=float)
    if not len(n):
        return "no seeds"
    lo, hi = int(n.min()), int(n.max())
    return f"{lo} seed{'s' if hi != 1 else ''}" if lo == hi else f"{lo}-{hi} seeds"


def set_title(fig: Figure, what: str, frame: pd.DataFrame, pooled: Sequence[str], extra: str = "",
              params: Sequence[str] = ()) -> str:
    """Set and return the figure title: what is shown, over what, and what is pooled."""
    parts = [what] + ([extra] if extra else [])
    pooled_line = pooled_text(frame, pooled, params)
    if pooled_line:
        parts.append(pooled_line)
    text = "\n".join(parts)
    suptitle(fig, text)
    return text


def suptitle(fig: Figure, text: str) -> None:
    """A figure title wrapped to the figure's width (the full text stays in the report)."""
    width = max(30, int(fig.get_figwidth() * 10.5))
    lines = [w for line in text.split("\n") for w in (textwrap.wrap(line, width) or [""])]
    fig.suptitle("\n".join(lines), fontsize="medium")


def set_scale(ax, values, axis: str, name: str | None, log: bool | None = None,
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


def figure_legend(fig, modes: list[str], colors: dict[str, str], title: str,
                  styles: dict[str, tuple[str, object]] | None = None, lines: bool = True,
                  exact: bool = False, markers: bool = True) -> None:
    """One legend for the figure, beside the panels: each mode's colour, (with ``markers``)
    marker and (with ``lines``) dash pattern; with ``exact`` an entry for exact values
    drawn at the floor."""
    styles = styles or {m: ("o", "-") for m in modes}
    handles = [Line2D([], [], color=colors[m], marker=styles[m][0] if markers else None, markersize=5,
                      ls=styles[m][1] if lines else "none", lw=1.6) for m in modes]
    labels = list(modes)
    if exact:
        handles.append(Line2D([], [], color="0.3", marker=EXACT_MARKER, markerfacecolor="white",
                              markersize=6, ls="none"))
        labels.append("exact")
    fig.legend(handles, labels, title=title, loc="outside right center", frameon=False)


def mode_title(frame: pd.DataFrame, params: Sequence[str] = ()) -> str:
    """The legend title of the ``mode`` column: "protocol" or "training mode", as the
    store says (``analog`` is both: a protocol, and the mode training with it)."""
    vocab = vocabulary(params)
    if not vocab.experiment and "experiment" in frame.columns and frame["experiment"].notna().any():
        return "protocol" if set(frame["experiment"].dropna()) == {"gradient"} else "training mode"
    return vocab.mode_title(frame["mode"].dropna().unique())


def grid_shape(n_rows: int, n_cols: int) -> tuple[int, int, bool]:
    """Panel grid for (row, facet) levels: at most :data:`MAX_COLUMNS` columns.

    A grid with more facet levels than that is flattened into (row, facet) panels wrapped at
    :data:`MAX_COLUMNS` per line, each panel titled with both values.
    """
    if n_cols <= MAX_COLUMNS:
        return n_rows, n_cols, False
    total = n_rows * n_cols
    return math.ceil(total / MAX_COLUMNS), MAX_COLUMNS, True


def shown(*names) -> list[str]:
    return [n for n in dict.fromkeys(names) if n is not None]


def pooled_axes(frame: pd.DataFrame, params: Sequence[str], shown: Sequence[str], pool: Sequence[str], what: str):
    """The pooled axes of a figure showing ``shown`` (``params``: the declared parameters);
    raises if it would pool silently."""
    by, pooled = resolve_grouping(frame, params, list(shown), pool, what=what)
    check_replicates(frame, [*by, "mode"], pooled)
    return pooled


def facet_lines(frame, x, y, facet, row, markers=True, sharey=True, log=False, params=(),
                x_scale: dict | None = None):
    """Draw ``y`` against ``x`` per mode, one panel per (row, facet) value.

    Statistics are over seeds (pooled axes averaged per seed first): the mean, or the
    geometric mean when ``log``, and its 95 % interval. An x axis of at most
    :data:`FEW_VALUES` values gets points with error bars, moved sideways per mode (in the
    axis's scale) so that none hides another; a longer one gets lines with bands. Every
    mode has its own colour, marker and dash pattern; modes whose means coincide are named
    in the figure's foot. With ``log`` the y axis is logarithmic and stops
    :data:`FLOOR_DECADES` below the smallest inexact mean, where exact values are drawn
    (hollow ▽, named in the foot). ``x_scale`` (keywords of :func:`set_scale`) chooses the
    x axis's scale from the data. Returns fig, panels, stats.
    """
    vocab = vocabulary(params)
    modes, colors = mode_palette(frame["mode"].dropna().unique(), vocab)
    styles = mode_styles(modes)
    panel_keys = shown(row, facet)
    keys = [*panel_keys, x, "mode"]
    seeds = per_seed(frame, keys, [y])
    seeds = seeds[np.isfinite(seeds[y])]
    stats = seed_statistics(seeds, keys, y, log=log)
    few = frame[x].nunique() <= FEW_VALUES
    floor = log_floor(stats) if log else None
    any_exact = log and bool((stats["mean"].isna() & (stats["n_exact"] > 0)).any())
    rows, cols = levels(frame, row), levels(frame, facet)
    n_rows, n_cols, wrapped = grid_shape(len(rows), len(cols))
    fig, axes = new_figure(n_rows, n_cols, sharey=sharey)
    combos = [(r, f) for r in rows for f in cols]
    panels, exact_at, found = [], [], {}
    for k, (rvalue, fvalue) in enumerate(combos):
        i, j = (k // n_cols, k % n_cols) if wrapped else (rows.index(rvalue), cols.index(fvalue))
        ax = axes[i, j]
        title = panel_title(vocab, facet, fvalue, row, rvalue)
        if x_scale is not None:
            set_scale(ax, frame[x], "x", x, **x_scale)
        if log:  # limits from log_limits, not from autoscaling (constant values would warn)
            ax.set_yscale("log")
            ax.set_autoscaley_on(False)
        part = stats
        if row is not None:
            part = part[part[row] == rvalue]
        if facet is not None:
            part = part[part[facet] == fvalue]
        present = [m for m in modes if (part["mode"] == m).any()]
        spacing = scaled_spacing(ax, frame[x]) if few else 0.0
        pairs = coinciding(part, present, x, log)
        for pair in pairs:
            found.setdefault(pair, []).append(title)
        over = {b for _, b in pairs}  # drawn over a mode it coincides with: hollow, larger
        for mode in present:
            line = part[part["mode"] == mode].sort_values(x)
            marker, dashes = styles[mode]
            shift = present.index(mode) if few else 0
            if log:
                exact = line["mean"].isna() & (line["n_exact"] > 0)
                if exact.any():
                    where = ", ".join(value_text(v) for v in line.loc[exact, x])
                    exact_at.append(f"{mode} at {vocab.label(x)} = {where}"
                                    + (f" ({' '.join(title.split())})" if title else ""))
                    xe = line.loc[exact, x].to_numpy(dtype=float)
                    if few:
                        xe = dodge(ax, xe, shift, len(present), spacing)
                    exact_markers(ax, xe, floor, colors[mode], size=7)
                line = line[~line["mean"].isna()]
            if not len(line):
                continue
            xs = line[x].to_numpy(dtype=float)
            mean = line["mean"].to_numpy(dtype=float)
            low, high = line["ci_low"].to_numpy(dtype=float), line["ci_high"].to_numpy(dtype=float)
            if few:
                err = np.nan_to_num(np.maximum([mean - low, high - mean], 0), nan=0.0)
                ax.errorbar(dodge(ax, xs, shift, len(present), spacing), mean, yerr=err,
                            color=colors[mode], marker=marker, markersize=5.5, ls="none",
                            capsize=3, elinewidth=1.4, label=mode)
            else:
                ax.plot(xs, mean, color=colors[mode], marker=marker if markers else None,
                        markersize=6.5 if mode in over else 4.5, lw=1.6, ls=dashes, label=mode,
                        markerfacecolor="none" if mode in over else colors[mode])
                ax.fill_between(xs, low, high, color=colors[mode], alpha=0.18, lw=0)
        if log:  # the same limits for every panel, from every panel's statistics
            log_limits(ax, stats, exact=any_exact)
        ax.set_title(title)
        below = k + n_cols < len(combos) if wrapped else i < n_rows - 1
        ax.set_xlabel("" if below else vocab.label(x))
        ax.tick_params(labelbottom=not below)
        ax.set_ylabel(vocab.label(y) if j == 0 else "")
        panels.append(ax)
    for ax in axes.flat:
        if ax not in panels:
            ax.remove()
    figure_legend(fig, modes, colors, mode_title(frame, vocab), styles, lines=not few, exact=any_exact,
                  markers=markers or few)
    how = ("drawn side by side with their own markers" if few
           else "drawn one over the other with their own markers and dashes, the later hollow")
    add_foot(fig, coincide_note(found, len(combos), how))
    add_foot(fig, exact_note(exact_at, floor) if log else "")
    return fig, np.asarray(panels), stats


def data_ticks(ax, values, axis: str = "x") -> None:
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


def stat_name(metric: str, params: Sequence[str] = ()) -> str:
    return "geometric mean and 95 % log-scale t interval" if vocabulary(params).is_log(metric) \
        else "mean and 95 % t interval"


FOOT_COLOR, WARN_COLOR = "0.25", "#a00000"


def add_foot(fig: Figure, text: str, warn: bool = False) -> None:
    """Add a note to the figure's foot (its figure-level x label, which constrained layout
    keeps clear of the panels, so a note never covers data); a warning turns the foot red."""
    if not text:
        return
    width = max(60, int(fig.get_figwidth() * 16))
    old = fig.get_supxlabel()
    label = getattr(fig, "_supxlabel", None)  # the Text supxlabel made, to keep its colour
    was_warning = bool(old) and label is not None and label.get_color() == WARN_COLOR
    body = "\n".join(filter(None, [old, textwrap.fill(text, width)]))
    fig.supxlabel(body, fontsize=6.5, color=WARN_COLOR if warn or was_warning else FOOT_COLOR)


def foot_text(fig: Figure) -> str:
    """The figure's foot notes as one line (for a caption), or ``""``."""
    return " ".join(fig.get_supxlabel().split())


def coinciding(stats: pd.DataFrame, modes: Sequence[str], x: str | None, log: bool) -> list[tuple[str, str]]:
    """Pairs of modes whose means coincide (within :data:`COINCIDE_WITHIN`, relative for a
    log metric) at every value of ``x`` in ``stats`` (one panel's statistics)."""
    means = {}
    for mode in modes:
        part = stats[stats["mode"] == mode]
        if len(part):
            key = part[x].tolist() if x is not None else [None] * len(part)
            means[mode] = dict(zip(key, part["mean"].to_numpy(dtype=float)))
    present = list(means)
    pairs = []
    for i, a in enumerate(present):
        for b in present[i + 1:]:
            if means[a].keys() != means[b].keys():
                continue
            va = np.array([means[a][k] for k in means[a]])
            vb = np.array([means[b][k] for k in means[a]])
            both = np.isfinite(va) & np.isfinite(vb)
            if not both.any() or (np.isfinite(va) != np.isfinite(vb)).any():
                continue
            scale = np.maximum(np.abs(va[both]), np.abs(vb[both])) if log else 1.0
            if np.all(np.abs(va[both] - vb[both]) <= COINCIDE_WITHIN * scale):
                pairs.append((a, b))
    return pairs


def coincide_note(found: dict[tuple[str, str], list[str]], n_panels: int, how: str) -> str:
    """``"insitu and analog coincide (means within 1e-09) ..."`` for the pairs ``found``
    (each with the titles of the panels where they coincide), or ``""``."""
    notes = []
    for (a, b), where in found.items():
        named = [" ".join(w.split()) for w in where if w]
        at = "" if len(where) == n_panels or not named else " in " + "; ".join(named)
        notes.append(f"{a} and {b} coincide (means within {COINCIDE_WITHIN:.0e}){at}")
    return "; ".join(notes) + (f": {how}." if notes else "")


def dodge(ax, xs, k: int, n: int, spacing: float) -> np.ndarray:
    """``xs`` moved sideways for the ``k``-th of ``n`` modes in the x axis's scale (a log
    axis moves points by a factor), the outermost by at most 15 % of ``spacing``, the
    smallest gap between x values in that scale."""
    xs = np.asarray(xs, dtype=float)
    if n < 2:
        return xs
    step = min(0.1, 0.3 / (n - 1)) * spacing
    transform = ax.xaxis.get_transform()
    t = transform.transform(xs.reshape(-1, 1)).ravel() + (k - (n - 1) / 2) * step
    return transform.inverted().transform(t.reshape(-1, 1)).ravel()


def scaled_spacing(ax, values) -> float:
    """The smallest gap between the distinct ``values`` in the x axis's scale (1 for one)."""
    v = np.unique(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    if v.size < 2:
        return 1.0
    t = np.sort(ax.xaxis.get_transform().transform(v.reshape(-1, 1)).ravel())
    gaps = np.diff(t)
    gaps = gaps[np.isfinite(gaps) & (gaps > 0)]
    return float(gaps.min()) if gaps.size else 1.0


def log_floor(stats: pd.DataFrame) -> float:
    """The floor of a log axis: :data:`FLOOR_DECADES` below the smallest inexact mean (or
    :data:`EXACT_BELOW` when every value is exact); exact values are drawn there."""
    means = pd.to_numeric(stats["mean"], errors="coerce").to_numpy(dtype=float)
    means = means[np.isfinite(means) & (means >= EXACT_BELOW)]
    return float(means.min()) / 10 ** FLOOR_DECADES if means.size else EXACT_BELOW


def log_limits(ax, stats: pd.DataFrame, exact: bool, extra=()) -> None:
    """Y limits of a log axis from the means and intervals of ``stats`` (and ``extra``
    values, such as seed dots), never below :func:`log_floor` nor more than
    :data:`FLOOR_DECADES` above the largest mean: exact values (1e-16) or an interval of two
    seeds reaching from 1e-14 to 1e10 do not stretch the axis over a dozen decades (such a
    bar runs off the panel). With ``exact`` the floor itself is shown, since the exact
    values are drawn there."""
    floor = log_floor(stats)
    means = pd.to_numeric(stats["mean"], errors="coerce").to_numpy(dtype=float)
    means = means[np.isfinite(means) & (means >= EXACT_BELOW)]
    ceiling = float(means.max()) * 10 ** FLOOR_DECADES if means.size else floor * 100
    values = np.concatenate([pd.to_numeric(stats[c], errors="coerce").to_numpy(dtype=float)
                             for c in ("mean", "ci_low", "ci_high")] + [np.asarray(extra, dtype=float)])
    values = values[np.isfinite(values) & (values >= EXACT_BELOW)]
    if not values.size:
        values = np.array([floor])
    low = floor if exact else max(floor, float(values.min()))
    high = max(min(float(values.max()), ceiling), low * 10)
    margin = 0.04 * (np.log10(high) - np.log10(low)) + 0.08
    ax.set_ylim(low / 10 ** margin, high * 10 ** margin)


def exact_markers(ax, xs, floor: float, color: str, size: float, alpha: float = 1.0) -> None:
    """Exact values at ``xs``, drawn as hollow ▽ at the log axis's ``floor`` (not clipped)."""
    xs = np.asarray(xs, dtype=float)
    ax.plot(xs, np.full(xs.size, floor), ls="none", marker=EXACT_MARKER, markerfacecolor="white",
            color=color, markersize=size, alpha=alpha, clip_on=False)


def exact_note(exact_at: Sequence[str], floor: float) -> str:
    """The foot note naming the exact values drawn at the floor of a log axis, or ``""``."""
    if not exact_at:
        return ""
    return (f"▽ exact (below {EXACT_BELOW:.0e}), drawn at the floor {floor:.0e}: "
            + "; ".join(exact_at))


def fit_titles(fig: Figure) -> None:
    """Rewrap every panel title and axis label longer than its panel, and the figure's title
    and foot if wider than the figure, so that neighbouring texts never run into each other (a
    figure shrunk to a journal's column); draws the figure to measure."""
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = []  # (text, room, measured along its height: a y label is turned)
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        texts += [(ax.title, box.width, False), (ax.xaxis.label, box.width, False),
                  (ax.yaxis.label, box.height, True)]
    for label in (getattr(fig, "_suptitle", None), getattr(fig, "_supxlabel", None)):  # title, foot
        if label is not None:
            texts.append((label, 0.97 * fig.bbox.width, False))
    changed = False
    for text, room, turned in texts:
        content = text.get_text()
        extent = text.get_window_extent(renderer)
        length = extent.height if turned else extent.width
        if not content or not text.get_visible() or length <= room:
            continue
        longest = max(len(line) for line in content.split("\n"))
        chars = max(8, int(longest * room / length))
        text.set_text("\n".join(w for line in content.split("\n")
                                for w in (textwrap.wrap(line, chars) or [""])))
        changed = True
    if changed:
        canvas.draw()
