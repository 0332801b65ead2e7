"""Aggregates over seeds: means, spreads, Student-t intervals and paired mode gaps.

Seeds are device replicates: every seed samples a new erroneous chip, and all training modes
of one trial share that chip. Two consequences shape this module:

* Per grid point and mode the seeds give a mean with a 95 % **Student t** interval
  ``mean ± t_{0.975, n-1} · sd / sqrt(n)`` (sd with ``ddof = 1``); with one seed the spread
  and interval are NaN rather than zero.
* Device-to-device spread is large (docs/design.md, section 6), so modes are compared **paired**: the
  gap ``insitu − digital`` is taken per trial (same grid point, same seed, same chip: the
  rows share their ``key``) and its own mean and interval are reported.
* Gradient error ``1 − cos`` (metrics ``grad_error_*``) spans decades, so it is summarised on
  a log scale: the geometric mean, and the t interval of the log10 values mapped back, so no
  bound is ever negative. Values below :data:`EXACT_BELOW` are exact up to rounding; they are
  counted (``n_exact``) and left out of the logarithms, and a group of exact values only is
  reported as "exact".
* Nothing is pooled silently (:mod:`analysis.grouping`): tables group by every axis that
  varies unless ``pool`` names axes, and pooled values are averaged per seed first, so ``n``
  always counts seeds.

Tables are tidy (one row per group and metric) and can be written as CSV and Markdown; the
Markdown writer is local so that no extra dependency (tabulate) is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.grouping import (check_replicates, one_chip_per_seed, per_seed, require_columns,
                                      resolve_grouping)
from insitu.analysis.load import IDENTITY_COLUMNS
from insitu.analysis.vocabulary import vocabulary

__all__ = [
    "EXACT_BELOW",
    "is_log_metric",
    "log_interval",
    "default_comparisons",
    "default_metric",
    "format_table",
    "gap_summary",
    "interval",
    "metric_columns",
    "nonfinite_note",
    "paired_differences",
    "reporting_modes",
    "summarize",
    "t_quantile",
    "to_markdown",
    "write_table",
]

STAT_COLUMNS = ["n", "mean", "sd", "ci_low", "ci_high", "ci_half_width", "n_nonfinite"]
LOG_COLUMNS = ["scale", "n_exact"]
DROP_COLUMNS = ["drop", "drop_ci_low", "drop_ci_high", "drop_design"]
# 1 − cos below this is exact up to floating-point rounding (about 1e-16 in practice).
EXACT_BELOW = 1e-12


def is_log_metric(name: str, params: Iterable[str] = ()) -> bool:
    """True for metrics the store declares on a log scale (the gradient errors ``1 − cos``)."""
    return vocabulary(params).is_log(name)


def t_quantile(n: int, confidence: float = 0.95) -> float:
    """Two-sided Student t quantile for ``n`` samples (``n - 1`` degrees of freedom)."""
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1))


def _finite(values: Iterable[float]) -> tuple[np.ndarray, int]:
    """The finite values given, and how many were not (NaN, ±inf or None)."""
    x = np.asarray([math.nan if v is None else v for v in values], dtype=float)
    finite = np.isfinite(x)
    return x[finite], int(x.size - finite.sum())


def interval(values: Iterable[float], confidence: float = 0.95) -> dict[str, float]:
    """n, mean, sd (ddof 1) and the Student t interval of the finite values given;
    ``n_nonfinite`` counts the values left out (NaN or infinite: a diverged trial)."""
    x, nonfinite = _finite(values)
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    half = t_quantile(n, confidence) * sd / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half,
            "ci_half_width": half, "n_nonfinite": nonfinite}


def log_interval(values: Iterable[float], confidence: float = 0.95) -> dict[str, float]:
    """Geometric mean and the t interval of log10 values, mapped back (never negative).

    Returns ``n`` (finite values), ``n_exact`` (values below :data:`EXACT_BELOW`, left out of
    the logarithms), ``mean`` = 10**mean(log10 x), ``sd`` = sd of log10 x (decades),
    ``ci_low``/``ci_high`` = 10**(mean ± t sd / sqrt(k)) over the k inexact values,
    ``ci_half_width`` in decades and ``n_nonfinite`` (values left out: NaN or infinite).
    With only exact values every statistic is NaN.
    """
    x, nonfinite = _finite(values)
    exact = x < EXACT_BELOW
    logs = np.log10(x[~exact])
    stats_ = interval(logs, confidence)
    out = {"n": int(x.size), "n_exact": int(exact.sum()), "n_nonfinite": nonfinite}
    if not logs.size:
        return {**out, "mean": math.nan, "sd": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "ci_half_width": math.nan}
    return {**out, "mean": 10 ** stats_["mean"], "sd": stats_["sd"],
            "ci_low": 10 ** stats_["ci_low"], "ci_high": 10 ** stats_["ci_high"],
            "ci_half_width": stats_["ci_half_width"]}


def metric_columns(frame: pd.DataFrame, params: Iterable[str]) -> list[str]:
    """Scalar numeric columns that are neither identity columns, the declared ``params``,
    nor columns the store declares descriptive (the chip's ports, set by its task, stand
    for an axis, never for a metric)."""
    vocab = vocabulary(params)
    skip = set(IDENTITY_COLUMNS) | set(vocab)
    out = []
    for name in frame.columns:
        if name in skip or vocab.is_descriptive(name):
            continue
        if pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name]):
            out.append(name)
    return out


def default_metric(frame: pd.DataFrame, params: Iterable[str], experiment: str | None = None) -> str:
    """The headline metric of the rows, chosen here for every table, figure and report.

    The store's headline metric (``params``: its vocabulary) when its column is present,
    else the experiment's in the fallback table (``experiment`` defaults to the rows'
    ``experiment`` column), else the first metric column (:func:`metric_columns`).
    """
    from insitu.analysis.vocabulary import FALLBACK_HEADLINE

    if experiment is None and "experiment" in frame.columns and len(frame):
        experiment = str(frame["experiment"].iloc[0])
    for name in (vocabulary(params).headline, FALLBACK_HEADLINE.get(experiment or ""),
                 *FALLBACK_HEADLINE.values()):
        if name and name in frame.columns:
            return name
    metrics = metric_columns(frame, params)
    if not metrics:
        raise AnalysisInputError("the rows hold no numeric metric column to summarise")
    return metrics[0]


def seed_statistics(
    seeds: pd.DataFrame, keys: Sequence[str], metric: str, confidence: float = 0.95,
    log: bool | None = None,
) -> pd.DataFrame:
    """Statistics over seeds of a per-seed table (:func:`analysis.grouping.per_seed`).

    One row per ``keys`` group: ``*keys, n, mean, sd, ci_low, ci_high, ci_half_width,
    n_nonfinite`` (seeds whose value is NaN or infinite, left out of the others), and for a
    log-scale metric also ``scale`` ("log10") and ``n_exact`` (see :func:`log_interval`).
    Figures and tables both call this, so they always show the same numbers.
    """
    log = is_log_metric(metric) if log is None else log
    keys = list(keys)
    columns = [*keys, *STAT_COLUMNS, *(LOG_COLUMNS if log else [])]
    records = []
    if len(seeds):
        groups = seeds.groupby(keys, sort=True, dropna=False) if keys else [((), seeds)]
        for group, part in groups:
            group = group if isinstance(group, tuple) else (group,)
            stats_ = log_interval(part[metric], confidence) if log else interval(part[metric], confidence)
            if log:
                stats_["scale"] = "log10"
            records.append({**dict(zip(keys, group)), **stats_})
    return pd.DataFrame.from_records(records, columns=columns)


def summarize(
    frame: pd.DataFrame,
    by: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
    pool: Sequence[str] = (),
    drop: bool = False,
    *,
    params: Sequence[str],
) -> pd.DataFrame:
    """Statistics over seeds per group, mode and metric.

    ``params`` are the rows' declared parameters (``LoadedStore.params``,
    :func:`analysis.load.load_params`). ``by`` are the grouping parameters (default: every
    declared parameter that varies among the rows, except those in ``pool``); an explicit ``by`` that leaves out a varying axis
    not named in ``pool`` raises (nothing is pooled silently). Pooled axes are averaged per
    seed first, so ``n`` counts seeds. ``mode`` is always added. ``metrics`` default to every
    scalar metric column. Returns a tidy table: ``*by, mode, metric, n, mean, sd, ci_low,
    ci_high, ci_half_width, n_nonfinite``; 95 % Student t intervals for linear metrics,
    geometric means with ``scale`` and ``n_exact`` for gradient errors (:func:`log_interval`).
    A seed whose value is NaN or infinite (a diverged trial) is counted in ``n_nonfinite``
    and left out of the other statistics; a mode that never reports the metric (digital
    training measures no gradient error) gets no row for it.
    ``table.attrs["pooled"]`` lists the pooled axes.

    With ``drop``, linear metrics also get the mean **drop against the error-free cell**
    (every error axis in ``by`` at its error-free end, the other axes as in the row),
    ``drop = metric[error-free] − metric``, positive when the cell lost, with its 95 %
    interval: paired over chips when the store shares chips along the error axes (each
    seed's rows carry one stream key), Welch's interval over the two groups of seeds
    otherwise, never paired by seed index alone. The columns are ``drop, drop_ci_low,
    drop_ci_high, drop_design`` ("paired" or "Welch").
    """
    vocab = vocabulary(params)
    by, pooled = resolve_grouping(frame, vocab, by, pool, what="summary")
    require_columns(frame, by, "axis")
    metrics = list(metrics) if metrics is not None else metric_columns(frame, vocab)
    require_columns(frame, metrics, "metric")
    keys = [*by, "mode"]
    check_replicates(frame, keys, pooled)
    errs = vocab.error_axes(by)
    tables = []
    for metric in metrics:
        seeds = per_seed(frame, keys, [metric])
        if len(seeds):
            seeds = seeds[seeds["mode"].isin(reporting_modes(frame, metric))]
        table = seed_statistics(seeds, keys, metric, confidence, log=vocab.is_log(metric))
        table.insert(len(keys), "metric", metric)
        if drop and errs and not vocab.is_log(metric):
            table = table.merge(_drops(frame, seeds, by, errs, metric, confidence, vocab, pooled),
                                on=keys, how="left")
        tables.append(table)
    columns = [*keys, "metric", *STAT_COLUMNS]
    if any(vocab.is_log(m) for m in metrics):
        columns += LOG_COLUMNS
    if drop and errs and any(not vocab.is_log(m) for m in metrics):
        columns += DROP_COLUMNS
    table = pd.concat([t.reindex(columns=columns) for t in tables], ignore_index=True) if tables \
        else pd.DataFrame(columns=columns)
    table = _sort_modes(table, [*by, "metric"] if len(metrics) > 1 else by, "mode", vocab)
    table.attrs["pooled"] = list(pooled)
    table.attrs["by"] = list(by)
    return table


def reporting_modes(frame: pd.DataFrame, metric: str) -> list:
    """The modes whose rows report ``metric``: at least one value that is not NaN (a mode
    with NaN everywhere does not measure it; an infinite value is a diverged trial)."""
    values = pd.to_numeric(frame[metric], errors="coerce")
    return frame.loc[values.notna(), "mode"].dropna().unique().tolist()


def nonfinite_note(table: pd.DataFrame, by: Sequence[str], metric_label: str,
                   label=lambda name: name) -> str:
    """One sentence naming the cells whose seeds gave NaN or infinite values, or ``""``.

    ``table`` is a :func:`summarize` or :func:`gap_summary` table; its ``n_nonfinite``
    counts, per row, the seeds left out of the statistics.
    """
    if "n_nonfinite" not in table.columns or not len(table):
        return ""
    bad = table[table["n_nonfinite"].fillna(0) > 0]
    if not len(bad):
        return ""
    column = "comparison" if "comparison" in table.columns else "mode"
    cells = []
    for _, row in bad.head(6).iterrows():
        at = ", ".join(f"{label(b)} = {_value(row[b])}" for b in by)
        seeds = int(row["n"]) + int(row["n_nonfinite"])
        cells.append(f"{row[column]}{' at ' + at if at else ''} ({int(row['n_nonfinite'])} of {seeds})")
    more = f" and {len(bad) - 6} more cells" if len(bad) > 6 else ""
    total = int(bad["n_nonfinite"].sum())
    return (f"{total} seed value{'s' if total != 1 else ''} of {metric_label} "
            f"{'are' if total != 1 else 'is'} NaN or infinite (a diverged trial) and left out of n, "
            f"mean and interval: {'; '.join(cells)}{more}")


def _value(v) -> str:
    from insitu.analysis.grouping import value_text

    return value_text(v)


def _drops(frame: pd.DataFrame, seeds: pd.DataFrame, by: list[str], errs: list[str], metric: str,
           confidence: float, vocab, pooled: Sequence[str]) -> pd.DataFrame:
    """Per group: the drop against the error-free cell (every error axis of ``by`` at its
    error-free end, the other axes as in the row) with its interval: paired over chips when
    each seed's rows carry one stream key across the error axes (a store that shares chips
    along them), Welch over the two groups of seeds otherwise; ``drop_design`` says which."""
    from insitu.analysis.contrasts import paired_interval, welch_interval

    keys = [*by, "mode"]
    ref = seeds
    for axis in errs:
        ref = ref[ref[axis] == vocab.error_free_value(axis, seeds[axis].unique())]
    rest = [k for k in keys if k not in errs]
    paired = one_chip_per_seed(frame, [*rest, *pooled])
    records = []
    for cell, part in seeds.groupby(keys, sort=False, dropna=False):
        cell = cell if isinstance(cell, tuple) else (cell,)
        where = dict(zip(keys, cell))
        base = ref
        for k in rest:
            base = base[base[k] == where[k]] if where[k] == where[k] else base[base[k].isna()]
        if all(where[a] == vocab.error_free_value(a, seeds[a].unique()) for a in errs):
            result = {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0}
        elif paired:
            both = base.set_index("seed")[metric].align(part.set_index("seed")[metric], join="inner")
            result = paired_interval(both[0] - both[1], confidence)
        else:
            result = welch_interval(base[metric], part[metric], confidence)
        records.append({**where, "drop": result["estimate"], "drop_ci_low": result["ci_low"],
                        "drop_ci_high": result["ci_high"], "drop_design": "paired" if paired else "Welch"})
    return pd.DataFrame.from_records(records, columns=[*keys, *DROP_COLUMNS])


def _sort_modes(table: pd.DataFrame, by: list[str], mode_col: str, vocab) -> pd.DataFrame:
    """Keep the group order, with modes in the store's order within each group."""
    if not len(table):
        return table
    rank = table[mode_col].map(lambda m: vocab.mode_rank(m)[0])
    order = table.assign(_g=table.groupby(by, sort=False, dropna=False).ngroup() if by else 0,
                         _r=rank, _m=table[mode_col].astype(str))
    order = order.sort_values(["_g", "_r", "_m"], kind="stable")
    return table.loc[order.index].reset_index(drop=True)


def default_comparisons(modes: Iterable[str], params: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Which paired gaps make sense for the modes present: (mode, reference) pairs
    (:meth:`insitu.analysis.vocabulary.Vocabulary.default_comparisons`)."""
    return vocabulary(params).default_comparisons(modes)


def paired_differences(
    frame: pd.DataFrame,
    metric: str,
    mode: str = "insitu",
    reference: str = "digital",
    by: Sequence[str] = (),
    keep_nonfinite: bool = False,
) -> pd.DataFrame:
    """Per-trial gaps ``metric[mode] − metric[reference]``, one row per paired trial.

    Rows pair when they share ``key`` (one trial: same grid point, same seed, same sampled
    device). Returns ``*by, seed, key, comparison, metric, gap``; a trial lacking one of the
    two modes gives no row, nor (unless ``keep_nonfinite``) one whose gap is NaN or
    infinite. ``by`` are the columns kept beside each gap (a grouping is chosen by
    :func:`gap_summary`).
    """
    by = list(by)
    require_columns(frame, [*by, metric, "key", "mode"], "column")
    cols = list(dict.fromkeys(["key", "seed", *by]))
    cols = [c for c in cols if c in frame.columns]
    left = frame.loc[frame["mode"] == mode, [*cols, metric]]
    right = frame.loc[frame["mode"] == reference, ["key", metric]]
    paired = left.merge(right, on="key", suffixes=("", "_ref"))
    paired["gap"] = paired[metric] - paired[f"{metric}_ref"]
    if not keep_nonfinite:
        paired = paired[np.isfinite(paired["gap"].astype(float))]
    paired["comparison"] = f"{mode} - {reference}"
    paired["metric"] = metric
    return paired[[*cols, "comparison", "metric", "gap"]].reset_index(drop=True)


def gap_summary(
    frame: pd.DataFrame,
    metric: str,
    by: Sequence[str] | None = None,
    comparisons: Sequence[tuple[str, str]] | None = None,
    confidence: float = 0.95,
    pool: Sequence[str] = (),
    *,
    params: Sequence[str],
) -> pd.DataFrame:
    """Mean paired gap with its Student t interval over seeds per group and comparison.

    The gap is taken per trial (same grid point, seed and device); axes in ``pool`` are then
    averaged per seed, so ``n`` counts seeds. As in :func:`summarize`, ``params`` are the
    declared parameters and an explicit ``by`` must cover every varying axis not in ``pool``. Returns ``*by, comparison, metric, n,
    mean, sd, ci_low, ci_high, ci_half_width``; empty when no comparison applies.
    """
    by, pooled = resolve_grouping(frame, params, by, pool, what="the paired-gap table")
    if comparisons is None:
        comparisons = default_comparisons(frame["mode"].dropna().unique() if "mode" in frame else [],
                                          params)
    check_replicates(frame, [*by, "mode"], pooled)
    tables = []
    for mode, reference in comparisons:
        diffs = paired_differences(frame, metric, mode, reference, [*by, *pooled], keep_nonfinite=True)
        if not len(diffs):
            continue
        seeds = per_seed(diffs, by, ["gap"])
        table = seed_statistics(seeds, by, "gap", confidence, log=False)
        table.insert(len(by), "comparison", f"{mode} - {reference}")
        table.insert(len(by) + 1, "metric", metric)
        tables.append(table)
    columns = [*by, "comparison", "metric", *STAT_COLUMNS]
    out = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
    out = out[(out["n"] > 0) | (out["n_nonfinite"] > 0)].reset_index(drop=True) if len(out) else out
    out.attrs["pooled"] = list(pooled)
    out.attrs["by"] = list(by)
    return out


# ---------------------------------------------------------------------------------------
# Export


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned, 4 significant digits)."""
    columns = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if num else ":---" for num in numeric) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def format_table(frame: pd.DataFrame) -> str:
    """Plain text for a terminal: aligned columns, 4 significant digits, no index."""
    if not len(frame):
        return "(no rows)"
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")


def write_table(frame: pd.DataFrame, path_stem: str | Path) -> list[Path]:
    """Write ``<stem>.csv`` and ``<stem>.md``, each whole or not at all; returns both paths."""
    from insitu.sweeps.store.fsutil import write_bytes_atomic

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, md = stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".md")
    write_bytes_atomic(csv, frame.to_csv(index=False).encode("utf-8"))
    write_bytes_atomic(md, to_markdown(frame).encode("utf-8"))
    return [csv, md]
