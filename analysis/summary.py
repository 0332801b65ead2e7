"""Aggregates over seeds: means, spreads, Student-t intervals and paired mode gaps.

Seeds are device replicates: every seed samples a new erroneous chip, and all training modes
of one trial share that chip. Two consequences shape this module:

* Per grid point and mode the seeds give a mean with a 95 % **Student t** interval
  ``mean ± t_{0.975, n-1} · sd / sqrt(n)`` (sd with ``ddof = 1``); with one seed the spread
  and interval are NaN rather than zero.
* Device-to-device spread is large (docs/design.md, section 6), so modes are compared **paired**: the
  gap ``insitu − digital`` is taken per trial (same grid point, same seed, same chip: the
  rows share their ``key``) and its own mean and interval are reported.

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

from analysis.axes import mode_rank, order_axes
from analysis.errors import AnalysisInputError
from analysis.load import IDENTITY_COLUMNS

__all__ = [
    "DEFAULT_METRICS",
    "default_comparisons",
    "default_metric",
    "format_table",
    "gap_summary",
    "interval",
    "metric_columns",
    "paired_differences",
    "summarize",
    "t_quantile",
    "to_markdown",
    "write_table",
]

# The metric a study of each experiment is about, used when a caller names none.
DEFAULT_METRICS = {"classify": "test_accuracy", "gradient": "grad_error_mean"}
STAT_COLUMNS = ["n", "mean", "sd", "ci_low", "ci_high", "ci_half_width"]


def t_quantile(n: int, confidence: float = 0.95) -> float:
    """Two-sided Student t quantile for ``n`` samples (``n - 1`` degrees of freedom)."""
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1))


def interval(values: Iterable[float], confidence: float = 0.95) -> dict[str, float]:
    """n, mean, sd (ddof 1) and the Student t interval of the finite values given."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    half = t_quantile(n, confidence) * sd / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half,
            "ci_half_width": half}


def metric_columns(frame: pd.DataFrame, params: Iterable[str] = ()) -> list[str]:
    """Scalar numeric columns that are neither identity columns nor parameters."""
    skip = set(IDENTITY_COLUMNS) | set(params) | set(frame.attrs.get("params", ()))
    out = []
    for name in frame.columns:
        if name in skip:
            continue
        if pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name]):
            out.append(name)
    return out


def default_metric(frame: pd.DataFrame, experiment: str | None = None) -> str:
    """The experiment's headline metric when present, else the first metric column."""
    if experiment is None and "experiment" in frame.columns and len(frame):
        experiment = str(frame["experiment"].iloc[0])
    preferred = DEFAULT_METRICS.get(experiment or "")
    if preferred and preferred in frame.columns:
        return preferred
    for name in ("test_accuracy", "grad_error_mean"):
        if name in frame.columns:
            return name
    metrics = metric_columns(frame)
    if not metrics:
        raise AnalysisInputError("the rows hold no numeric metric column to summarise")
    return metrics[0]


def _check_columns(frame: pd.DataFrame, names: Sequence[str], what: str) -> None:
    for name in names:
        if name not in frame.columns:
            shown = ", ".join(str(c) for c in frame.columns[:40])
            raise AnalysisInputError(f"unknown {what} {name!r}; the rows have: {shown}")


def _default_by(frame: pd.DataFrame) -> list[str]:
    """Declared parameters (``attrs['params']``, set by :func:`analysis.load.load`) that vary."""
    params = frame.attrs.get("params", ())
    return order_axes(p for p in params if p in frame.columns and frame[p].nunique(dropna=False) > 1)


def summarize(
    frame: pd.DataFrame,
    by: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Mean, sd, count and Student t interval over seeds per group, mode and metric.

    ``by`` are the grouping parameters (default: the declared parameters that vary among the
    rows); ``mode`` is always added. ``metrics`` default to every scalar metric column.
    Returns a tidy table: ``*by, mode, metric, n, mean, sd, ci_low, ci_high, ci_half_width``.
    """
    by = list(_default_by(frame) if by is None else by)
    _check_columns(frame, by, "axis")
    metrics = list(metrics) if metrics is not None else metric_columns(frame, by)
    _check_columns(frame, metrics, "metric")
    keys = [*[b for b in by if b != "mode"], "mode"]
    records = []
    if len(frame):
        for group, part in frame.groupby(keys, sort=True, dropna=False):
            group = group if isinstance(group, tuple) else (group,)
            for metric in metrics:
                records.append({**dict(zip(keys, group)), "metric": metric,
                                **interval(part[metric], confidence)})
    table = pd.DataFrame.from_records(records, columns=[*keys, "metric", *STAT_COLUMNS])
    return _sort_modes(table, keys[:-1], "mode")


def _sort_modes(table: pd.DataFrame, by: list[str], mode_col: str) -> pd.DataFrame:
    """Keep the group order, with modes in the canonical order within each group."""
    if not len(table):
        return table
    rank = table[mode_col].map(lambda m: mode_rank(m)[0])
    order = table.assign(_g=table.groupby(by, sort=False, dropna=False).ngroup() if by else 0,
                         _r=rank, _m=table[mode_col].astype(str))
    order = order.sort_values(["_g", "_r", "_m"], kind="stable")
    return table.loc[order.index].reset_index(drop=True)


def default_comparisons(modes: Iterable[str]) -> list[tuple[str, str]]:
    """Which paired gaps make sense for the modes present: (mode, reference) pairs.

    classify: ``insitu − digital`` and ``analog − digital``; gradient protocols:
    ``analog − three_pass``.
    """
    present = set(modes)
    if "digital" in present:
        return [(m, "digital") for m in ("insitu", "analog") if m in present]
    if "three_pass" in present and "analog" in present:
        return [("analog", "three_pass")]
    return []


def paired_differences(
    frame: pd.DataFrame,
    metric: str,
    mode: str = "insitu",
    reference: str = "digital",
    by: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-trial gaps ``metric[mode] − metric[reference]``, one row per paired trial.

    Rows pair when they share ``key`` (one trial: same grid point, same seed, same sampled
    device). Returns ``*by, seed, key, comparison, metric, gap``; a trial lacking one of the
    two modes (or with a NaN metric) gives no row.
    """
    by = list(_default_by(frame) if by is None else by)
    _check_columns(frame, [*by, metric, "key", "mode"], "column")
    cols = list(dict.fromkeys(["key", "seed", *by]))
    left = frame.loc[frame["mode"] == mode, [*cols, metric]]
    right = frame.loc[frame["mode"] == reference, ["key", metric]]
    paired = left.merge(right, on="key", suffixes=("", "_ref"))
    paired["gap"] = paired[metric] - paired[f"{metric}_ref"]
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
) -> pd.DataFrame:
    """Mean paired gap with its Student t interval per group and comparison.

    Returns ``*by, comparison, metric, n, mean, sd, ci_low, ci_high, ci_half_width``, where
    ``n`` counts paired trials (seeds). Empty when no comparison applies.
    """
    by = list(_default_by(frame) if by is None else by)
    by = [b for b in by if b != "mode"]
    if comparisons is None:
        comparisons = default_comparisons(frame["mode"].dropna().unique() if "mode" in frame else [])
    records = []
    for mode, reference in comparisons:
        diffs = paired_differences(frame, metric, mode, reference, by)
        groups = diffs.groupby(by, sort=True, dropna=False) if by else [((), diffs)]
        for group, part in groups:
            if not len(part):
                continue
            group = group if isinstance(group, tuple) else (group,)
            records.append({**dict(zip(by, group)), "comparison": f"{mode} - {reference}",
                            "metric": metric, **interval(part["gap"], confidence)})
    return pd.DataFrame.from_records(records, columns=[*by, "comparison", "metric", *STAT_COLUMNS])


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
    """Write ``<stem>.csv`` and ``<stem>.md``; returns both paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, md = stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".md")
    frame.to_csv(csv, index=False)
    md.write_text(to_markdown(frame))
    return [csv, md]
