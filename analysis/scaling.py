"""How a training mode's error tolerance scales with the chip size N.

A store that sweeps a task family (``digits4`` ... ``digits64``, ``mnist128``, ...) varies
the task, a categorical axis; every classify row also carries ``n_ports``, the ports of its
chip (docs/store.md). :func:`size_axis` puts the sizes on a numeric axis by substituting
``n_ports`` for the task wherever the two are one-to-one, so tolerances, figures and fits
order the tasks by size. Nothing here knows task names: the size comes from the rows.

Fitted exponent (:func:`fit_exponents`): per mode and combination of the other axes, the
least-squares line through ``(log N, log t(N))`` of the tolerances ``t`` of
:func:`analysis.tolerance.tolerance`, so ``t ~ a N^p``. Only sizes whose tolerance *and*
whole bootstrap interval lie on the grid enter the fit; a size whose tolerance is not
reached (or whose interval reaches beyond the grid) is listed as left out, never fitted
through. The interval of ``p`` is a percentile bootstrap over seeds: resample ``b`` draws
the same seed indices for every size and mode (the tolerance table's ``draws``), the fit
is repeated on that resample's tolerances, and a resample in which a fitted size's
tolerance is not reached is dropped and counted (``n_dropped``).

Onset of an advantage (:func:`advantage_onset`): the smallest error at which the paired
gap ``mode - reference`` (same chip and seed) has a 95 % Student t interval over seeds
above zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.summary import gap_summary
from insitu.analysis.tolerance import tolerance, tolerance_axes
from insitu.analysis.vocabulary import vocabulary

__all__ = ["EXPONENT_COLUMNS", "SIZE_COLUMN", "advantage_onset", "fit_exponents", "power_law",
           "size_axis", "tolerance_vs_size"]

SIZE_COLUMN = "n_ports"
EXPONENT_COLUMNS = ["mode", "exponent", "ci_low", "ci_high", "prefactor", "sizes_fitted",
                    "sizes_left_out", "n_resamples", "n_dropped"]


def size_axis(rows: pd.DataFrame, params: Sequence[str],
              size: str = SIZE_COLUMN) -> tuple[pd.DataFrame, list[str], str | None]:
    """``(rows, params, replaced)``: the rows and their declared parameters with ``size``
    an axis in place of the one varying parameter it is a function of, one-to-one
    (``task`` -> ``n_ports``).

    ``params`` are the rows' declared parameters (``LoadedStore.params``). ``replaced`` names
    the parameter ``size`` stands for, or is None when ``size`` is already an axis, is
    missing, or maps onto no parameter one-to-one (then rows and parameters come back as
    they are). Raises :class:`AnalysisInputError` when the rows of one parameter value
    disagree on it only in part (some rows of a task without a size: stored before the
    column existed), naming the value.
    """
    vocab = params
    params = list(params)
    if size in params or size not in rows.columns or not len(rows):
        return rows, vocab, None
    values = pd.to_numeric(rows[size], errors="coerce")
    for name in params:
        if name not in rows.columns or rows[name].nunique(dropna=False) < 2:
            continue
        per_value = values.groupby(rows[name], dropna=False)
        if per_value.nunique(dropna=True).max() > 1:
            continue  # not a function of this parameter
        counts = per_value.count()
        partial = counts[(counts > 0) & (counts < per_value.size())]
        if len(partial):
            raise AnalysisInputError(
                f"some rows of {name} = {partial.index[0]!r} have no {size} (stored before the "
                f"column existed); rerun them or filter them with --where")
        sizes = per_value.first()
        if sizes.isna().any() or sizes.nunique() != len(sizes):
            continue
        out = rows.copy()
        out[size] = values.astype("int64")
        return out, vocabulary(vocab).replaced(name, size), name
    return rows, vocab, None


def _require_size(rows: pd.DataFrame, params: Sequence[str], size: str) -> tuple[pd.DataFrame, list[str]]:
    out, sized_params, replaced = size_axis(rows, params, size)
    if replaced is None and size not in sized_params:
        if size not in rows.columns:
            raise AnalysisInputError(f"the rows have no {size!r} column (stores written before it "
                                     f"existed do not); there is no size axis")
        raise AnalysisInputError(f"{size!r} does not vary one-to-one with any axis of the rows "
                                 f"(two tasks of one size? filter one with --where)")
    return out, sized_params


def tolerance_vs_size(rows: pd.DataFrame, axis: str = "bs_error", drop: float = 0.05,
                      metric: str | None = None, size: str = SIZE_COLUMN,
                      pool: Sequence[str] = (), n_resamples: int = 2000,
                      seed: int = 0, *, params: Sequence[str]) -> pd.DataFrame:
    """Tolerances along ``axis`` per size, mode and other varying axis, with their draws.

    :func:`analysis.tolerance.tolerance` on :func:`size_axis` rows (``keep_draws``), so the
    table has a numeric ``size`` column among its groups (``attrs["by"]``). ``params``: the
    rows' declared parameters.
    """
    frame, sized_params = _require_size(rows, params, size)
    return tolerance(frame, axis, drop, metric, pool=pool, n_resamples=n_resamples, seed=seed,
                     keep_draws=True, params=sized_params)


def _slope(log_n: np.ndarray, log_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept of ``log_t`` (..., k) against ``log_n`` (k,)."""
    x = log_n - log_n.mean()
    slope = (log_t - log_t.mean(axis=-1, keepdims=True)) @ x / (x @ x)
    return slope, log_t.mean(axis=-1) - slope * log_n.mean()


def fit_exponents(table: pd.DataFrame, size: str = SIZE_COLUMN,
                  confidence: float = 0.95) -> pd.DataFrame:
    """Exponent ``p`` of ``tolerance ~ a N^p`` per mode and combination of the other groups.

    ``table`` is :func:`tolerance_vs_size`'s (it needs ``draws``). Returns one row per group
    and mode: the group's columns, ``mode``, ``exponent`` (NaN when fewer than two sizes can
    be fitted), ``ci_low``, ``ci_high`` (percentile interval over the kept resamples),
    ``prefactor`` ``a``, ``sizes_fitted`` and ``sizes_left_out`` (text, with the reason per
    size), ``n_resamples``, ``n_dropped`` (resamples left out because a fitted size's
    tolerance was not reached in them). See the module docstring.
    """
    for column in (size, "draws", "tolerance", "reached", "ci_high", "mode"):
        if column not in table.columns:
            raise AnalysisInputError(f"the tolerance table has no {column!r} column "
                                     f"(make it with tolerance_vs_size)")
    groups = [b for b in tolerance_axes(table) if b != size]  # read off the columns, not attrs
    repeated = table.groupby([*groups, "mode", size], dropna=False).size()
    if (repeated > 1).any():
        raise AnalysisInputError(f"a size repeats within one group of the tolerance table "
                                 f"(groups: {', '.join(groups) or 'none'}); fit one table per group")
    alpha = (1.0 - confidence) / 2.0
    records = []
    keyed = table.groupby([*groups, "mode"], sort=False, dropna=False) if groups \
        else table.groupby("mode", sort=False)
    for key, part in keyed:
        key = key if isinstance(key, tuple) else (key,)
        part = part.sort_values(size)
        fit = part["reached"].to_numpy(bool) & np.isfinite(part["ci_high"].to_numpy(float))
        left_out = []
        for _, r in part[~fit].iterrows():
            why = "not reached" if not r["reached"] else "interval beyond the grid"
            left_out.append(f"{int(r[size])} ({why}, > {r['largest']:g})")
        sizes = part.loc[fit, size].to_numpy(float)
        record = {**dict(zip([*groups, "mode"], key)),
                  "sizes_fitted": ", ".join(str(int(n)) for n in sizes),
                  "sizes_left_out": "; ".join(left_out),
                  "n_resamples": int(len(part["draws"].iloc[0])), "n_dropped": 0,
                  "exponent": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                  "prefactor": math.nan}
        if len(sizes) >= 2:
            log_n = np.log(sizes)
            slope, icpt = _slope(log_n, np.log(part.loc[fit, "tolerance"].to_numpy(float)))
            draws = np.stack([np.asarray(d, dtype=float) for d in part.loc[fit, "draws"]], axis=1)
            ok = np.all(np.isfinite(draws) & (draws > 0), axis=1)
            boot, _ = _slope(log_n, np.log(np.where(ok[:, None], draws, 1.0)))
            boot = boot[ok]
            record.update(exponent=float(slope), prefactor=float(np.exp(icpt)),
                          n_dropped=int((~ok).sum()))
            if boot.size:
                record.update(ci_low=float(np.quantile(boot, alpha)),
                              ci_high=float(np.quantile(boot, 1 - alpha)))
        records.append(record)
    out = pd.DataFrame.from_records(records, columns=[*groups, *EXPONENT_COLUMNS])
    out.attrs["by"] = groups
    out.attrs["confidence"] = confidence
    return out


EXACT = 1e-12  # a metric below this is exact (rounding), not a point on a power law


def power_law(rows: pd.DataFrame, x: str, metric: str, by: Sequence[str] = (),
              n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """Exponent ``p`` of ``mean(metric) ~ a x^p`` per mode and group of ``by``.

    The mean over seeds at each value of ``x`` is fitted by least squares in ``(log x,
    log mean)``. Values of ``x`` whose mean is at most 1e-12 (exact: the method removed the
    error) are left out of the fit and named. The interval is a percentile bootstrap over
    seeds: each resample draws seed indices once and uses them at every ``x`` (the chips
    of a seed are shared along ``x``, so the resample keeps them paired). Returns one row
    per group and mode: the group, ``mode``, ``exponent``, ``ci_low``, ``ci_high``,
    ``prefactor``, ``x_fitted``, ``x_left_out``, ``n_seeds``.
    """
    for column in (x, metric, "seed", "mode", *by):
        if column not in rows.columns:
            raise AnalysisInputError(f"the rows have no {column!r} column")
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    records = []
    for key, part in rows.groupby([*by, "mode"], sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        table = part.pivot_table(index="seed", columns=x, values=metric, aggfunc="mean")
        table = table.sort_index(axis=1)
        means = table.mean(axis=0)
        fit = (means > EXACT).to_numpy() & np.isfinite(means.to_numpy(float))
        xs = table.columns.to_numpy(float)
        record = {**dict(zip([*by, "mode"], key)), "exponent": math.nan, "ci_low": math.nan,
                  "ci_high": math.nan, "prefactor": math.nan,
                  "x_fitted": ", ".join(f"{v:g}" for v in xs[fit]),
                  "x_left_out": ", ".join(f"{v:g} (exact)" for v in xs[~fit]),
                  "n_seeds": int(len(table))}
        if fit.sum() >= 2:
            log_x = np.log(xs[fit])
            values = table.to_numpy(float)[:, fit]
            slope, icpt = _slope(log_x, np.log(means.to_numpy(float)[fit]))
            draws = rng.integers(0, len(table), size=(n_resamples, len(table)))
            boot_means = np.nanmean(values[draws], axis=1)  # (resamples, x)
            ok = np.all(boot_means > EXACT, axis=1)
            boot, _ = _slope(log_x, np.log(np.where(ok[:, None], boot_means, 1.0)))
            record.update(exponent=float(slope), prefactor=float(np.exp(icpt)))
            if ok.any():
                record.update(ci_low=float(np.quantile(boot[ok], alpha)),
                              ci_high=float(np.quantile(boot[ok], 1 - alpha)))
        records.append(record)
    return pd.DataFrame.from_records(records, columns=[*by, "mode", "exponent", "ci_low", "ci_high",
                                                      "prefactor", "x_fitted", "x_left_out", "n_seeds"])


def advantage_onset(rows: pd.DataFrame, axis: str = "bs_error", mode: str = "insitu",
                    references: Sequence[str] | None = None, metric: str = "test_accuracy",
                    size: str = SIZE_COLUMN, confidence: float = 0.95, *,
                    params: Sequence[str]) -> pd.DataFrame:
    """Where ``mode`` starts to beat each reference: the smallest ``axis`` value whose paired
    gap ``mode - reference`` has its t interval over seeds above zero, per combination of
    the other varying axes (sizes as numbers where :func:`size_axis` applies).

    ``params``: the rows' declared parameters. Returns the groups, ``reference``, ``onset``
    (the first such value; NaN: never on the grid), ``sustained`` (the smallest value from
    which the interval stays above zero at every larger grid value; NaN when it is not above
    zero at the largest), ``gap``, ``ci_low``, ``ci_high`` (of the gap at the onset), ``n``.
    A first onset without a sustained one is an isolated cell, which with many cells can be
    chance.
    """
    frame, sized_params, _ = size_axis(rows, params, size)
    present = [m for m in frame["mode"].dropna().unique()]
    if mode not in present:
        raise AnalysisInputError(f"mode {mode!r} is not in the rows (modes: {', '.join(map(str, present))})")
    refs = [r for r in (references or present) if r != mode and r in present]
    gaps = gap_summary(frame, metric, comparisons=[(mode, r) for r in refs], confidence=confidence,
                       params=sized_params)
    by = [b for b in gaps.columns if b not in ("comparison", "metric", "n", "mean", "sd", "ci_low",
                                                 "ci_high", "ci_half_width")]
    groups = [b for b in by if b != axis]
    records = []
    for key, part in gaps.groupby([*groups, "comparison"], sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        order = vocabulary(sized_params).error_order(axis, part[axis].unique())
        part = part.set_index(axis).loc[order]
        above = part[part["ci_low"] > 0]
        first = above.iloc[0] if len(above) else None
        significant = (part["ci_low"] > 0).to_numpy()
        held = [i for i in range(len(significant)) if significant[i:].all()]
        records.append({
            **dict(zip(groups, key[:-1])), "reference": key[-1].split(" - ", 1)[1],
            "onset": float(above.index[0]) if first is not None else math.nan,
            "sustained": float(part.index[held[0]]) if held else math.nan,
            "gap": float(first["mean"]) if first is not None else math.nan,
            "ci_low": float(first["ci_low"]) if first is not None else math.nan,
            "ci_high": float(first["ci_high"]) if first is not None else math.nan,
            "n": int(first["n"]) if first is not None else int(part["n"].max()),
        })
    return pd.DataFrame.from_records(records, columns=[*groups, "reference", "onset", "sustained", "gap",
                                                       "ci_low", "ci_high", "n"])
