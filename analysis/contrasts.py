"""Contrasts: any difference a grid can answer, with the interval its design allows.

Three kinds, each a table with one row per group of the other varying axes:

* **modes on the same chips**: ``metric[a] − metric[b]`` per trial. The rows of a trial
  share its key, hence its chip, initial phases and data order, so the contrast is
  **paired**: a Student t interval over chips, ``mean ± t_{n−1} sd / √n``.
* **two values of an axis**: ``metric[axis = value] − metric[axis = reference]`` per mode.
  When the store shares chips along the axis (``store.json``'s ``shares_chips``: the rows
  of a seed at both values carry one stream key), each chip is its own control and the
  contrast is **paired** over chips. Otherwise the two values ran on other chips and the
  contrast is **unpaired**: Welch's interval over the two groups of seeds,
  ``d ± t_ν se``, ``se² = s_a²/n_a + s_b²/n_b``, ν by Welch–Satterthwaite.
* **difference in differences**: how a paired mode gap changes along an axis,
  ``(a − b)[value] − (a − b)[reference]``; the gaps are per trial, and their difference is
  paired over chips when the axis shares chips, Welch otherwise.

Each row says its ``design`` ("paired" or "Welch"), the number of chips or seeds on each
side, the estimate, its 95 % interval, the degrees of freedom and a two-sided p-value;
``holm=True`` adds Holm-adjusted p-values over the table's rows (a family of contrasts).
Pooled axes are averaged per seed first (and per chip: a seed's chip is the same across
a shared axis) and named in ``attrs["pooled"]``. The test set is fixed: every interval is
over chips, initial phases and data orders, not over test sets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.grouping import (check_replicates, one_chip_per_seed, per_seed, require_columns,
                                      resolve_grouping, value_text)
from insitu.analysis.summary import default_metric
from insitu.analysis.vocabulary import vocabulary

__all__ = ["CONTRAST_COLUMNS", "axis_contrast", "chips_shared", "difference_in_differences",
           "holm", "mode_contrast", "paired_interval", "welch_interval"]

CONTRAST_COLUMNS = ["contrast", "metric", "design", "n", "n_reference", "estimate", "ci_low",
                    "ci_high", "df", "p", "n_nonfinite"]


def paired_interval(differences: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean of paired differences with its Student t interval and two-sided p-value;
    ``n_nonfinite`` counts the differences left out (NaN or infinite: a diverged trial)."""
    d = np.asarray(differences, dtype=float)
    nonfinite = int(d.size - np.isfinite(d).sum())
    d = d[np.isfinite(d)]
    n = int(d.size)
    out = {"n": n, "n_reference": n, "estimate": float(d.mean()) if n else math.nan,
           "n_nonfinite": nonfinite}
    if n < 2:
        return {**out, "ci_low": math.nan, "ci_high": math.nan, "df": math.nan, "p": math.nan}
    sd = float(d.std(ddof=1))
    df = n - 1
    if sd == 0:
        p = 0.0 if out["estimate"] != 0 else 1.0
        return {**out, "ci_low": out["estimate"], "ci_high": out["estimate"], "df": df, "p": p}
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * stats.t.sf(abs(out["estimate"]) / se, df))
    return {**out, "ci_low": out["estimate"] - half, "ci_high": out["estimate"] + half, "df": df, "p": p}


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """``mean(a) − mean(b)`` with Welch's interval and two-sided p-value (NaN below 2 per side);
    ``n_nonfinite`` counts the values of both sides left out (NaN or infinite)."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    nonfinite = int(x.size + y.size - np.isfinite(x).sum() - np.isfinite(y).sum())
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    out = {"n": int(x.size), "n_reference": int(y.size),
           "estimate": float(x.mean() - y.mean()) if x.size and y.size else math.nan,
           "n_nonfinite": nonfinite}
    if x.size < 2 or y.size < 2:
        return {**out, "ci_low": math.nan, "ci_high": math.nan, "df": math.nan, "p": math.nan}
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se2 = va + vb
    if se2 == 0:
        p = 0.0 if out["estimate"] != 0 else 1.0
        return {**out, "ci_low": out["estimate"], "ci_high": out["estimate"], "df": math.inf, "p": p}
    df = se2**2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    se = math.sqrt(se2)
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * stats.t.sf(abs(out["estimate"]) / se, df))
    return {**out, "ci_low": out["estimate"] - half, "ci_high": out["estimate"] + half, "df": float(df), "p": p}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def chips_shared(frame: pd.DataFrame, axis: str, value, reference, keys: Sequence[str]) -> bool:
    """Whether every seed of every group (``keys``) ran on one chip at both values of
    ``axis``: its rows there carry one stream key (a store without stream keys shares none)."""
    return one_chip_per_seed(frame[frame[axis].isin([value, reference])], [k for k in keys if k != axis])


def _finish(records: list[dict], by: Sequence[str], pooled: Sequence[str], holm_family: bool,
            vocab=None, **attrs) -> pd.DataFrame:
    columns = [*by, *CONTRAST_COLUMNS]
    table = pd.DataFrame.from_records(records, columns=columns)
    if "mode" in by and len(table) and vocab is not None:  # modes in the store's order
        rank = table["mode"].map(lambda m: vocab.mode_rank(m)[0])
        others = [b for b in by if b != "mode"]
        table = table.assign(_r=rank).sort_values([*others, "_r"], kind="stable").drop(columns="_r")
        table = table.reset_index(drop=True)
    if holm_family:
        table["p_holm"] = holm(table["p"].to_numpy(dtype=float)) if len(table) else []
    table.attrs.update(pooled=list(pooled), by=list(by), holm=holm_family, **attrs)
    return table


def _prepare(frame, params, metric, axis, pool, what):
    vocab = vocabulary(params)
    metric = metric or default_metric(frame, vocab)
    require_columns(frame, [metric, "mode", "seed"], "column")
    exclude = [axis] if axis else []
    if axis:
        require_columns(frame, [axis], "axis")
    by, pooled = resolve_grouping(frame, vocab, None, pool, exclude=exclude, what=what)
    return vocab, metric, by, pooled


def _check_modes(frame: pd.DataFrame, modes: Sequence[str]) -> None:
    present = frame["mode"].dropna().unique().tolist()
    for m in modes:
        if m not in present:
            raise AnalysisInputError(f"mode {m!r} is not in the rows (modes: {', '.join(map(str, present))})")


def _check_levels(frame: pd.DataFrame, axis: str, *values) -> None:
    levels = frame[axis].dropna().unique().tolist()
    for v in values:
        if v not in levels:
            raise AnalysisInputError(f"{axis} = {value_text(v)} is not in the rows; they hold "
                                     + ", ".join(value_text(x) for x in sorted(levels, key=str)))


def mode_contrast(frame: pd.DataFrame, a: str, b: str, metric: str | None = None,
                  pool: Sequence[str] = (), confidence: float = 0.95, holm_family: bool = False,
                  *, params: Sequence[str]) -> pd.DataFrame:
    """``metric[a] − metric[b]`` per group of the varying axes, paired per trial (module
    docstring)."""
    vocab, metric, by, pooled = _prepare(frame, params, metric, None, pool, "this contrast")
    _check_modes(frame, [a, b])
    check_replicates(frame, [*by, "mode"], pooled)
    left = frame.loc[frame["mode"] == a, ["key", "seed", *by, *pooled, metric]]
    right = frame.loc[frame["mode"] == b, ["key", metric]]
    pairs = left.merge(right, on="key", suffixes=("", "_b"))
    pairs["d"] = pd.to_numeric(pairs[metric], errors="coerce") - pd.to_numeric(pairs[f"{metric}_b"], errors="coerce")
    seeds = per_seed(pairs, by, ["d"])
    records = []
    for group, part in (seeds.groupby(by, sort=True, dropna=False) if by else [((), seeds)]):
        group = group if isinstance(group, tuple) else (group,)
        records.append({**dict(zip(by, group)), "contrast": f"{a} − {b}", "metric": metric,
                        "design": "paired", **paired_interval(part["d"], confidence)})
    return _finish(records, by, pooled, holm_family, kind="modes", a=a, b=b)


def axis_contrast(frame: pd.DataFrame, axis: str, reference, value, metric: str | None = None,
                  pool: Sequence[str] = (), confidence: float = 0.95, holm_family: bool = False,
                  *, params: Sequence[str]) -> pd.DataFrame:
    """``metric[axis = value] − metric[axis = reference]`` per mode and group of the other
    varying axes: paired over chips where the axis shares them, Welch otherwise."""
    vocab, metric, by, pooled = _prepare(frame, params, metric, axis, pool, "this contrast")
    _check_levels(frame, axis, reference, value)
    keys = [*by, "mode"]
    check_replicates(frame, [*keys, axis], pooled)
    paired = chips_shared(frame, axis, value, reference, [*keys, *pooled])
    seeds = per_seed(frame[frame[axis].isin([value, reference])], [*keys, axis], [metric])
    records = []
    name = f"{vocab.label(axis)}: {value_text(value)} − {value_text(reference)}"
    for group, part in (seeds.groupby(keys, sort=True, dropna=False)):
        group = group if isinstance(group, tuple) else (group,)
        at_v = part[part[axis] == value].set_index("seed")[metric]
        at_r = part[part[axis] == reference].set_index("seed")[metric]
        if paired:
            both = at_v.index.intersection(at_r.index)
            result = paired_interval(at_v[both] - at_r[both], confidence)
        else:
            result = welch_interval(at_v, at_r, confidence)
        records.append({**dict(zip(keys, group)), "contrast": name, "metric": metric,
                        "design": "paired" if paired else "Welch", **result})
    return _finish(records, keys, pooled, holm_family, vocab, kind="axis", axis=axis, value=value,
                   reference=reference)


def difference_in_differences(frame: pd.DataFrame, a: str, b: str, axis: str, reference, value,
                              metric: str | None = None, pool: Sequence[str] = (),
                              confidence: float = 0.95, holm_family: bool = False, *,
                              params: Sequence[str]) -> pd.DataFrame:
    """How the paired gap ``a − b`` changes from ``axis = reference`` to ``axis = value``:
    ``(a − b)[value] − (a − b)[reference]``, paired over chips where the axis shares them,
    Welch over the two groups of per-trial gaps otherwise."""
    vocab, metric, by, pooled = _prepare(frame, params, metric, axis, pool, "this contrast")
    _check_modes(frame, [a, b])
    _check_levels(frame, axis, reference, value)
    check_replicates(frame, [*by, axis, "mode"], pooled)
    paired = chips_shared(frame, axis, value, reference, [*by, "mode", *pooled])
    at = frame[frame[axis].isin([value, reference])]
    left = at.loc[at["mode"] == a, ["key", "seed", axis, *by, *pooled, metric]]
    right = at.loc[at["mode"] == b, ["key", metric]]
    gaps = left.merge(right, on="key", suffixes=("", "_b"))
    gaps["gap"] = pd.to_numeric(gaps[metric], errors="coerce") - pd.to_numeric(gaps[f"{metric}_b"], errors="coerce")
    seeds = per_seed(gaps, [*by, axis], ["gap"])
    records = []
    name = f"({a} − {b}) at {vocab.label(axis)} {value_text(value)} − at {value_text(reference)}"
    for group, part in (seeds.groupby(by, sort=True, dropna=False) if by else [((), seeds)]):
        group = group if isinstance(group, tuple) else (group,)
        at_v = part[part[axis] == value].set_index("seed")["gap"]
        at_r = part[part[axis] == reference].set_index("seed")["gap"]
        if paired:
            both = at_v.index.intersection(at_r.index)
            result = paired_interval(at_v[both] - at_r[both], confidence)
        else:
            result = welch_interval(at_v, at_r, confidence)
        records.append({**dict(zip(by, group)), "contrast": name, "metric": metric,
                        "design": "paired" if paired else "Welch", **result})
    return _finish(records, by, pooled, holm_family, kind="did", axis=axis, value=value,
                   reference=reference, a=a, b=b)
