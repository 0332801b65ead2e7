"""How many seeds a question needs: the interval formula inverted, and Stein's two stages.

For a cell (a grid point and mode) or a paired contrast whose per-chip values have standard
deviation ``s``, the 95 % Student t interval over ``n`` chips has half-width

    h(n) = t_{0.975, n−1} · s / √n.

:func:`seeds_for_half_width` is its inverse: the smallest ``n ≥ 2`` with ``h(n) ≤ h``, from
a spread estimated on the seeds a store already holds (:func:`precision_table`). That is a
planning number: the spread is itself estimated, so a study sized this way reaches the
half-width only on average.

A spec can ask for a precision instead of a seed count (``[precision]``). It is run in two
fixed stages (Stein, Ann. Math. Statist. 16, 243 (1945)): a pilot of ``n0`` seeds per cell
estimates ``s0``; each cell then gets ``n = max(n0, ⌈(t_{0.975, n0−1} s0 / h)²⌉)`` seeds
in all (:func:`stein_seeds`), and its interval is ``mean ± h`` over all ``n``
(:func:`stein_interval`), which covers the true mean with probability at least 95 % because
``s0`` is independent of the second stage's mean. Why not "add seeds until the interval is
narrow enough": the stopping time then depends on the very spreads the interval is made
of, so the intervals of such a sequential rule undercover (the stop favours draws whose
spread happened to look small). The two-stage rule fixes the sample size from the pilot
alone, before the data it will be judged on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from insitu.analysis.grouping import check_replicates, per_seed, resolve_grouping
from insitu.analysis.summary import default_metric

__all__ = ["half_width", "precision_table", "seeds_for_half_width", "stein_interval", "stein_seeds",
           "two_stage_table"]


def half_width(sd: float, n: int, confidence: float = 0.95) -> float:
    """``t_{(1+c)/2, n−1} sd / √n``; NaN below 2."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)


def seeds_for_half_width(sd: float, target: float, confidence: float = 0.95, limit: int = 1_000_000) -> int:
    """The smallest ``n ≥ 2`` whose t interval has half-width ``≤ target`` for spread ``sd``."""
    if not (target > 0 and math.isfinite(target)):
        raise ValueError(f"the half-width must be a positive number, got {target!r}")
    if not math.isfinite(sd):
        return -1
    if sd == 0:
        return 2
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    n = max(2, math.ceil((z * sd / target) ** 2))  # the normal value: a lower bound for t
    while half_width(sd, n, confidence) > target:
        n += 1
        if n > limit:
            return -1
    while n > 2 and half_width(sd, n - 1, confidence) <= target:
        n -= 1
    return n


def stein_seeds(pilot: Sequence[float], target: float, confidence: float = 0.95) -> int:
    """Stein's total sample size from a pilot: ``max(n0, ⌈(t_{n0−1} s0 / h)²⌉)``."""
    x = np.asarray(pilot, dtype=float)
    x = x[np.isfinite(x)]
    n0 = int(x.size)
    if n0 < 2:
        raise ValueError(f"a two-stage design needs a pilot of 2 or more seeds, got {n0}")
    t = float(stats.t.ppf(0.5 + confidence / 2, n0 - 1))
    return max(n0, math.ceil((t * float(x.std(ddof=1)) / target) ** 2))


def stein_interval(values: Sequence[float], target: float) -> dict:
    """The two-stage interval: the mean over all seeds ± the target half-width."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    mean = float(x.mean()) if x.size else math.nan
    return {"n": int(x.size), "mean": mean, "ci_low": mean - target, "ci_high": mean + target,
            "ci_half_width": float(target)}


def precision_table(frame: pd.DataFrame, target: float, metric: str | None = None,
                    contrast: tuple[str, str] | None = None, pool: Sequence[str] = (),
                    confidence: float = 0.95, *, params: Sequence[str]) -> pd.DataFrame:
    """Per cell (grid point and mode, or grid point for a paired ``contrast = (a, b)``):
    the seeds held, their spread, the half-width they give, and the seeds an interval of
    half-width ``target`` needs (:func:`seeds_for_half_width`, from the held spread).

    Columns: ``*by, [mode | contrast], metric, n, sd, half_width, target, seeds_needed,
    more_seeds``. Pooled axes are averaged per seed first (``attrs["pooled"]``).
    """
    metric = metric or default_metric(frame, params)
    by, pooled = resolve_grouping(frame, params, None, pool, what="the precision table")
    if contrast is None:
        keys = [*by, "mode"]
        check_replicates(frame, keys, pooled)
        seeds = per_seed(frame, keys, [metric])
        value, label_col = metric, "mode"
    else:
        a, b = contrast
        check_replicates(frame, [*by, "mode"], pooled)
        left = frame.loc[frame["mode"] == a, ["key", "seed", *by, *pooled, metric]]
        right = frame.loc[frame["mode"] == b, ["key", metric]]
        pairs = left.merge(right, on="key", suffixes=("", "_b"))
        pairs["gap"] = pairs[metric] - pairs[f"{metric}_b"]
        seeds = per_seed(pairs, by, ["gap"]).assign(contrast=f"{a} − {b}")
        keys, value, label_col = [*by, "contrast"], "gap", "contrast"
    records = []
    for group, part in seeds.groupby(keys, sort=True, dropna=False):
        group = group if isinstance(group, tuple) else (group,)
        x = part[value].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        sd = float(x.std(ddof=1)) if x.size > 1 else math.nan
        needed = seeds_for_half_width(sd, target, confidence) if x.size > 1 else -1
        records.append({**dict(zip(keys, group)), "metric": metric, "n": int(x.size), "sd": sd,
                        "half_width": half_width(sd, int(x.size), confidence), "target": float(target),
                        "seeds_needed": needed, "more_seeds": max(0, needed - int(x.size)) if needed > 0 else -1})
    table = pd.DataFrame.from_records(
        records, columns=[*keys, "metric", "n", "sd", "half_width", "target", "seeds_needed", "more_seeds"])
    table.attrs.update(pooled=list(pooled), by=list(by), kind=label_col)
    return table


def two_stage_table(frame: pd.DataFrame, design: dict, *, params: Sequence[str]) -> pd.DataFrame:
    """The intervals a two-stage store was sized for (``spec.json``'s ``precision``): per
    cell and mode (or the paired ``contrast``), the mean over the cell's seeds ± the
    design's half-width (:func:`stein_interval`). Empty before stage 2 is allocated."""
    if not design or design.get("allocation") is None:
        return pd.DataFrame()
    metric, h = design["metric"], float(design["half_width"])
    by, pooled = resolve_grouping(frame, params, None, (), what="the two-stage table")
    if design.get("contrast"):
        a, b = design["contrast"].split("-")
        left = frame.loc[frame["mode"] == a, ["key", "seed", *by, metric]]
        right = frame.loc[frame["mode"] == b, ["key", metric]]
        pairs = left.merge(right, on="key", suffixes=("", "_b"))
        data = pairs.assign(value=pairs[metric] - pairs[f"{metric}_b"], mode=f"{a} − {b}")
    else:
        data = frame.assign(value=pd.to_numeric(frame[metric], errors="coerce"))
    records = []
    for group, part in data.groupby([*by, "mode"], sort=True, dropna=False):
        group = group if isinstance(group, tuple) else (group,)
        records.append({**dict(zip([*by, "mode"], group)), "metric": metric,
                        **stein_interval(part["value"], h)})
    table = pd.DataFrame.from_records(records)
    table.attrs.update(by=list(by), design="two-stage (Stein)")
    return table
