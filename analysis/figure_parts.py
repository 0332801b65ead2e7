"""The parts every figure of :mod:`analysis.figures` is built from: the mode colours, the
seaborn style, panel grids and their sizes, titles that name what is pooled, scales and
ticks, the figure legend, and the faceted line plot with t bands.

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
_PANEL = (4.0, 3.1)  # inches per panel
MAX_COLUMNS = 4  # panel grids wrap after this many columns
MAX_WIDTH_IN = 13.0  # no figure is wider (1950 px at 150 dpi)


def mode_palette(modes: Sequence[str], params: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """Modes in the store's order (``params``: its vocabulary) and their colours; modes
    without a colour of their own get spare colours in that order."""
    ordered = vocabulary(params).mode_order(modes)
    spare = iter(_SPARE_COLORS * 4)
    return ordered, {m: MODE_COLORS.get(m) or next(spare) for m in ordered}


def styled(func):
    """Build the figure inside seaborn's whitegrid style without touching global rcParams."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
            return func(*args, **kwargs)

    return wrapper


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


def figure_legend(fig, modes: list[str], colors: dict[str, str], title: str) -> None:
    handles = [Line2D([], [], color=colors[m], marker="o", lw=2) for m in modes]
    fig.legend(handles, modes, title=title, loc="outside right center", frameon=False)


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


def facet_lines(frame, x, y, facet, row, markers=True, sharey=True, log=False, params=()):
    """Draw ``y`` against ``x`` per mode, one panel per (row, facet) value.

    Statistics are over seeds (pooled axes averaged per seed first): the mean, or the
    geometric mean when ``log``, and its 95 % interval as a band. Returns fig, panels, stats.
    """
    vocab = vocabulary(params)
    modes, colors = mode_palette(frame["mode"].dropna().unique(), vocab)
    panel_keys = shown(row, facet)
    keys = [*panel_keys, x, "mode"]
    seeds = per_seed(frame, keys, [y])
    seeds = seeds[np.isfinite(seeds[y])]
    stats = seed_statistics(seeds, keys, y, log=log)
    rows, cols = levels(frame, row), levels(frame, facet)
    n_rows, n_cols, wrapped = grid_shape(len(rows), len(cols))
    fig, axes = new_figure(n_rows, n_cols, sharey=sharey)
    combos = [(r, f) for r in rows for f in cols]
    panels = []
    for k, (rvalue, fvalue) in enumerate(combos):
        i, j = (k // n_cols, k % n_cols) if wrapped else (rows.index(rvalue), cols.index(fvalue))
        ax = axes[i, j]
        part = stats
        if row is not None:
            part = part[part[row] == rvalue]
        if facet is not None:
            part = part[part[facet] == fvalue]
        exact_at = []
        for mode in modes:
            line = part[part["mode"] == mode].sort_values(x)
            if not len(line):
                continue
            if log:
                exact = line["mean"].isna() & (line["n_exact"] > 0)
                if exact.any():
                    exact_at.append(f"{mode} at {x} = "
                                    + ", ".join(value_text(v) for v in line.loc[exact, x]))
                line = line[~line["mean"].isna()]
            xs = line[x].to_numpy(dtype=float)
            ax.plot(xs, line["mean"].to_numpy(dtype=float), color=colors[mode],
                    marker="o" if markers else None, markersize=5, lw=1.8)
            ax.fill_between(xs, line["ci_low"].to_numpy(dtype=float),
                            line["ci_high"].to_numpy(dtype=float), color=colors[mode], alpha=0.2,
                            lw=0)
        if exact_at:
            ax.text(0.02, 0.02, f"exact (1 − cos < {EXACT_BELOW:.0e}):\n" + "\n".join(exact_at),
                    transform=ax.transAxes, fontsize="x-small", va="bottom", wrap=True)
        ax.set_title(panel_title(vocab, facet, fvalue, row, rvalue))
        below = k + n_cols < len(combos) if wrapped else i < n_rows - 1
        ax.set_xlabel("" if below else vocab.label(x))
        ax.tick_params(labelbottom=not below)
        ax.set_ylabel(vocab.label(y) if j == 0 else "")
        panels.append(ax)
    for ax in axes.flat:
        if ax not in panels:
            ax.remove()
    figure_legend(fig, modes, colors, mode_title(frame, vocab))
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
