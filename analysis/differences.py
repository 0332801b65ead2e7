"""Unpaired differences between two values of one grid axis (Welch intervals).

A trial's seed derives from its key, and its key from every parameter: the trials of two
values of a grid axis (``noise_draws = "frozen"`` against ``"fresh"``, two splitting
errors) train on *other* chips, with other initial phases and data orders, even at the same
seed index. Their difference is unpaired, and its interval is Welch's:

    d = mean_a - mean_b,    se^2 = s_a^2 / n_a + s_b^2 / n_b,
    nu = se^4 / ((s_a^2 / n_a)^2 / (n_a - 1) + (s_b^2 / n_b)^2 / (n_b - 1)),
    d +- t_{nu, 1 - alpha/2} se,

over seeds (each seed's metric first averaged over any pooled axes), in the metric's units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.grouping import check_replicates, per_seed, require_columns, resolve_grouping
from insitu.analysis.summary import default_metric

DIFFERENCE_COLUMNS = ("n", "n_reference", "mean", "mean_reference", "difference", "ci_low", "ci_high", "df")


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """``mean(a) - mean(b)`` with its Welch t interval (finite values; NaN below 2 per side)."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    out = {"n": int(x.size), "n_reference": int(y.size),
           "mean": float(x.mean()) if x.size else math.nan,
           "mean_reference": float(y.mean()) if y.size else math.nan}
    out["difference"] = out["mean"] - out["mean_reference"]
    if x.size < 2 or y.size < 2:
        return {**out, "ci_low": math.nan, "ci_high": math.nan, "df": math.nan}
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se2 = va + vb
    if se2 == 0:
        return {**out, "ci_low": out["difference"], "ci_high": out["difference"], "df": math.inf}
    df = se2**2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(se2)
    return {**out, "ci_low": out["difference"] - half, "ci_high": out["difference"] + half, "df": float(df)}


def unpaired_difference(
    frame: pd.DataFrame,
    axis: str,
    value,
    reference,
    metric: str | None = None,
    pool: Sequence[str] = (),
    confidence: float = 0.95,
    *,
    params: Sequence[str],
) -> pd.DataFrame:
    """``metric`` at ``axis = value`` minus at ``axis = reference``, per group of the other
    varying axes and mode, with the Welch interval over seeds (module docstring).

    ``params`` are the rows' declared parameters; every other varying axis is a group
    unless named in ``pool`` (averaged per seed first, and named in ``attrs["pooled"]``).
    Returns ``*by, mode, metric, n, n_reference, mean, mean_reference, difference, ci_low,
    ci_high, df``.
    """
    require_columns(frame, [axis], "axis")
    levels = set(frame[axis].dropna().unique().tolist())
    for name, v in (("value", value), ("reference", reference)):
        if v not in levels:
            raise AnalysisInputError(f"{axis} = {v!r} ({name}) is not in the rows; they hold "
                                     + ", ".join(map(repr, sorted(levels, key=str))))
    metric = metric or default_metric(frame, params)
    require_columns(frame, [metric], "metric")
    by, pooled = resolve_grouping(frame, params, None, pool, exclude=[axis], what="this difference")
    keys = [*by, "mode"]
    check_replicates(frame, [*keys, axis], pooled)
    seeds = per_seed(frame, [*keys, axis], [metric])
    records = []
    groups = seeds.groupby(keys, sort=True, dropna=False) if keys else [((), seeds)]
    for group, part in groups:
        group = group if isinstance(group, tuple) else (group,)
        stats_ = welch_interval(part.loc[part[axis] == value, metric],
                                part.loc[part[axis] == reference, metric], confidence)
        records.append({**dict(zip(keys, group)), "metric": metric, **stats_})
    table = pd.DataFrame.from_records(records, columns=[*keys, "metric", *DIFFERENCE_COLUMNS])
    table.attrs.update(pooled=pooled, axis=axis, value=value, reference=reference)
    return table
