"""What a table or figure groups by, what it pools, and the per-seed values it averages.

docs/design.md, section 7: a statistic "over seeds" is over seeds only, and every table and figure
groups by every axis that varies unless the user names the axes to pool. This module is
where that rule is enforced, once for every summary, figure, tolerance and report:

* :func:`resolve_grouping` takes the axes a caller shows (``by``) and the axes it names to
  pool (``pool``), and refuses a grouping that would average over a varying axis nobody
  named. The axes that vary are the declared parameters (``params``, passed by every
  caller: the store's ``LoadedStore.params`` or :func:`analysis.load.load_params`) with more
  than one value among the rows.
* :func:`check_replicates` catches the case the declared parameters cannot: rows loaded
  without one of their varying columns. Within a group and mode every seed must then occur
  once per combination of pooled values; a seed that repeats means an unnamed axis varies.
* :func:`per_seed` collapses the pooled axes first: per group, mode and seed the mean over
  the pooled values. Every statistic is then over seeds (``n`` = seeds), pooled or not.
* :func:`pooled_text` names what was pooled, with its values, for titles, captions and
  table headers;
* :func:`require_columns` is the one check that named columns exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.vocabulary import vocabulary

__all__ = [
    "check_replicates",
    "one_chip_per_seed",
    "require_columns",
    "has_items",
    "has_values",
    "per_seed",
    "pooled_text",
    "resolve_grouping",
    "value_text",
    "varying_params",
]


def has_items(value) -> bool:
    """A list-valued cell (a curve, a boundary grid) that holds at least one item."""
    return value is not None and hasattr(value, "__len__") and len(value) > 0


def has_values(frame: pd.DataFrame, name: str) -> bool:
    """Column ``name`` exists and holds a finite number, or (list columns) a non-empty list."""
    if name not in frame.columns:
        return False
    col = frame[name]
    if col.dtype == object:
        return bool(col.map(has_items).any())
    return bool(np.isfinite(pd.to_numeric(col, errors="coerce")).any())


def value_text(value) -> str:
    """A grid value as text: floats in ``%g`` form, everything else as ``str``."""
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


def require_columns(frame: pd.DataFrame, names: Sequence[str | None], what: str = "column") -> None:
    """Raise :class:`AnalysisInputError` for the first of ``names`` that is not a column of
    ``frame``, listing the columns it has (None entries are skipped)."""
    for name in names:
        if name is not None and name not in frame.columns:
            shown = ", ".join(str(c) for c in frame.columns[:40])
            raise AnalysisInputError(f"unknown {what} {name!r}; the rows have: {shown}")


def one_chip_per_seed(frame: pd.DataFrame, keys: Sequence[str]) -> bool:
    """Whether every seed of every group of ``keys`` ran on one chip across the rows' other
    axes: its rows carry one stream key (docs/store.md). A store without stream keys, or
    with rows that lack one, shares no chips."""
    if "stream_key" not in frame.columns or frame["stream_key"].isna().any() or not len(frame):
        return False
    cols = [k for k in dict.fromkeys([*keys, "seed"]) if k in frame.columns]
    return bool((frame.groupby(cols, dropna=False)["stream_key"].nunique() == 1).all())


def varying_params(frame: pd.DataFrame, params: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """Declared parameters with more than one value among the rows (error axes first)."""
    skip = set(exclude)
    vocab = vocabulary(params)
    return vocab.order_axes(p for p in vocab if p in frame.columns and p not in skip
                            and frame[p].nunique(dropna=False) > 1)


def _levels(frame: pd.DataFrame, name: str) -> list:
    values = frame[name].dropna().unique().tolist()
    try:
        return sorted(values)
    except TypeError:
        return values


def pooled_text(frame: pd.DataFrame, pooled: Sequence[str], params: Iterable[str] = ()) -> str:
    """``"pooled over tap noise s (√(launch power)) (0, 0.02)"``, or ``""`` when nothing is
    pooled; ``params`` (the store's vocabulary) names the axes."""
    if not pooled:
        return ""
    label = vocabulary(params).label
    parts = []
    for name in pooled:
        values = _levels(frame, name) if name in frame.columns else []
        shown = ", ".join(value_text(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
        parts.append(f"{label(name)} ({shown})" if shown else label(name))
    return "pooled over " + "; ".join(parts)


def resolve_grouping(
    frame: pd.DataFrame,
    params: Sequence[str],
    by: Sequence[str] | None = None,
    pool: Sequence[str] | None = (),
    exclude: Sequence[str] = (),
    what: str = "this summary",
) -> tuple[list[str], list[str]]:
    """``(by, pooled)``: the axes to group by and the varying axes that are pooled.

    ``params`` are the declared parameters of the rows (the candidate axes). ``by=None``
    groups by every varying parameter not in ``pool`` or ``exclude`` (axes a
    caller handles itself, such as a figure's x axis). An explicit ``by`` must cover every
    varying parameter except those in ``pool`` and ``exclude``; otherwise this raises
    :class:`AnalysisInputError` naming the axis that would be pooled silently. ``mode`` and
    ``seed`` are never grouping axes here (every table is per mode; seeds are replicates).
    """
    label = vocabulary(params).label
    params = list(params)
    pool = [p for p in dict.fromkeys(pool or ())]
    for name in [*pool, *(by or ())]:
        if name in ("mode", "seed"):
            continue
        if name not in frame.columns:
            shown = ", ".join(params or [str(c) for c in frame.columns[:30]])
            raise AnalysisInputError(f"unknown axis {name!r}; the rows' axes are: {shown}")
    both = [p for p in pool if p in (by or ()) or p in exclude]
    if both:
        raise AnalysisInputError(f"axis {both[0]!r} cannot be both shown and pooled")
    pool = [p for p in pool if p not in ("mode", "seed")]
    varying = varying_params(frame, params, exclude=[*exclude])
    if by is None:
        by = [a for a in varying if a not in pool]
    else:
        by = [b for b in dict.fromkeys(by) if b not in ("mode", "seed") and b not in exclude]
        missing = [a for a in varying if a not in by and a not in pool]
        if missing:
            n = frame[missing[0]].nunique(dropna=False)
            raise AnalysisInputError(
                f"{what} would pool over {missing[0]!r} ({label(missing[0])}, {n} values) "
                f"without saying so; show it, filter it with --where, or pool it by name "
                f"(--pool {missing[0]}; pool=[{missing[0]!r}] in Python)")
    pooled = [p for p in pool if frame[p].nunique(dropna=False) > 1]
    return list(by), pooled


def check_replicates(frame: pd.DataFrame, keys: Sequence[str], pooled: Sequence[str] = ()) -> None:
    """Raise when a seed repeats within a group more often than the pooled axes explain.

    ``keys`` are the grouping columns including ``mode``. A repeated seed means the rows
    vary in an axis that is neither shown nor pooled (for instance a column left out when
    loading), so a "mean over seeds" would silently be over something else too.
    """
    if "seed" not in frame.columns or not len(frame):
        return
    cols = [k for k in dict.fromkeys([*keys, *pooled, "seed"]) if k in frame.columns]
    if frame.duplicated(cols).any():
        raise AnalysisInputError(
            "rows repeat a seed within one group of " + ", ".join(k for k in keys)
            + ": an axis that varies is neither shown nor pooled (is its column loaded?)")


def per_seed(frame: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Per group (``keys``, which include ``mode``) and seed: the mean of each metric.

    Pooled axes are the ones not in ``keys``; their rows of one seed become that seed's
    mean, so statistics over the result are over seeds only. NaN metrics are skipped.
    """
    keys = list(dict.fromkeys(keys))
    cols = [*keys, "seed"] if "seed" in frame.columns else keys
    data = frame[[*cols, *metrics]].copy()
    for m in metrics:
        data[m] = pd.to_numeric(data[m], errors="coerce").astype(float)
    if not len(data):
        return data
    return data.groupby(cols, sort=True, dropna=False)[list(metrics)].mean().reset_index()
