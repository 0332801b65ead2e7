"""Error tolerance: how much of an error a training mode takes before it loses a given drop.

docs/design.md, section 7. For a mode and one combination of the other varying axes, let ``m(x)`` be
the mean over seeds of the metric at value ``x`` of the error axis, and ``x_0`` the axis's
error-free end (its smallest value; see :meth:`insitu.analysis.vocabulary.Vocabulary.error_order` for DAC bits),
grid values taken in that order. The tolerance is the first ``x`` at which

    m(x) <= m(x_0) − drop            (absolute drop, in the metric's units), or
    m(x) <= m(x_0) · (1 − drop)      (``relative``),

found by linear interpolation between the two grid points that bracket the crossing. When
``m`` never falls that far on the grid the tolerance is "not reached": it lies beyond the
largest value.

Interval: a percentile bootstrap over chips. The modes of a trial share its chip, so a
resample always draws a chip for every mode at once. Where the store shares chips along
the axis (each seed's rows carry one stream key across its values), a seed is one chip at
every value and a resample draws seeds once for the whole curve, so comparisons between
values stay paired too; otherwise every value ran on chips of its own and a resample draws
the seeds of each value independently (``design`` says which: "paired" or "independent").
A resample whose curve never crosses counts as "beyond the largest value" (+inf), so an
upper bound can be "not reached" while the point estimate is finite. With only two grid
values the crossing is reported as lying between them, with no point and no interval.
Resampling uses ``numpy.random.default_rng(seed)``, the same stream for every group, so a
table is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.grouping import (check_replicates, one_chip_per_seed, per_seed, pooled_text,
                                      resolve_grouping, value_text)
from insitu.analysis.summary import default_metric
from insitu.analysis.vocabulary import vocabulary

__all__ = ["TOLERANCE_COLUMNS", "crossing", "tolerance", "tolerance_axes", "tolerance_header", "tolerance_text"]

DRAWS_COLUMN = "draws"  # keep_draws: each row's bootstrap tolerances
TOLERANCE_COLUMNS = [
    "mode", "metric", "axis", "drop", "relative", "baseline", "threshold", "tolerance",
    "reached", "ci_low", "ci_high", "n_values", "error_free", "largest", "descending", "design",
    "n_seeds", "n_resamples",
]


def tolerance_axes(table: pd.DataFrame) -> list[str]:
    """The axes a tolerance table (:func:`tolerance`) is grouped by: its columns other than
    :data:`TOLERANCE_COLUMNS`, read off the columns so that a filtered or rebuilt table
    (which may have lost its ``attrs``) still says what it varies in (``draws``, the
    bootstrap tolerances of ``keep_draws``, is not an axis)."""
    return [c for c in table.columns if c not in TOLERANCE_COLUMNS and c != DRAWS_COLUMN]


def crossing(xs: np.ndarray, curves: np.ndarray, drop: float, relative: bool = False) -> np.ndarray:
    """First axis value where each curve falls ``drop`` below its first point.

    ``xs`` (k,) are the axis values ordered from the error-free end; ``curves`` (..., k) the
    mean metric at each. Linear interpolation between the bracketing grid points; +inf where
    a curve never falls that far, NaN where its first point is NaN. NaN points inside a
    curve are skipped (the interpolation bridges them).
    """
    xs = np.asarray(xs, dtype=float)
    c = np.asarray(curves, dtype=float)
    base = c[..., 0]
    threshold = base * (1.0 - drop) if relative else base - drop
    out = np.full(base.shape, np.inf)
    flat_c = c.reshape(-1, c.shape[-1])
    flat_t = np.asarray(threshold).reshape(-1)
    flat_out = out.reshape(-1)
    for i in range(flat_c.shape[0]):
        row, t = flat_c[i], flat_t[i]
        if not np.isfinite(t):
            flat_out[i] = np.nan
            continue
        ok = np.isfinite(row)
        x, y = xs[ok], row[ok]
        below = np.nonzero(y[1:] <= t)[0]
        if not below.size:
            continue
        j = below[0] + 1
        x0, x1, y0, y1 = x[j - 1], x[j], y[j - 1], y[j]
        flat_out[i] = x1 if y1 == y0 else x0 + (t - y0) / (y1 - y0) * (x1 - x0)
    return flat_out.reshape(base.shape)


def _quantile(values: np.ndarray, q: float) -> float:
    """An order statistic of the resamples (``inverted_cdf``: no interpolation into inf)."""
    v = values[~np.isnan(values)]
    if not v.size:
        return math.nan
    return float(np.quantile(v, q, method="inverted_cdf"))


def tolerance(
    frame: pd.DataFrame,
    axis: str,
    drop: float = 0.05,
    metric: str | None = None,
    relative: bool = False,
    by: Sequence[str] | None = None,
    pool: Sequence[str] = (),
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    keep_draws: bool = False,
    *,
    params: Sequence[str],
) -> pd.DataFrame:
    """Tolerance of every mode along ``axis``, per combination of the other varying axes.

    See the module docstring for the definition. ``params`` are the rows' declared
    parameters (``LoadedStore.params``, :func:`analysis.load.load_params`); ``metric``
    defaults to the headline metric (:func:`analysis.summary.default_metric`). ``by`` (default: every other axis that
    varies) and ``pool`` follow :func:`analysis.grouping.resolve_grouping`: nothing is pooled
    unless named, and pooled axes are averaged per seed first. Returns one row per group and
    mode: ``*by, mode, metric, axis, drop, relative, baseline`` (mean at the error-free
    end), ``threshold``, ``tolerance`` (NaN when not reached), ``reached``, ``ci_low``,
    ``ci_high`` (+inf: beyond the largest value in more than the interval's tail of the
    resamples), ``error_free``, ``largest`` (the far end of the axis), ``n_seeds``,
    ``n_resamples``. ``attrs["pooled"]`` lists pooled axes. With ``keep_draws`` a column
    ``draws`` holds each row's bootstrap tolerances (one per resample, +inf beyond the grid),
    resample ``b`` drawing the same seed indices in every row (for statistics of several
    tolerances, such as :func:`analysis.scaling.fit_exponents`).
    """
    if axis not in frame.columns:
        raise AnalysisInputError(f"unknown axis {axis!r} for the tolerance")
    if not len(frame):
        raise AnalysisInputError("no rows to compute a tolerance from")
    values = pd.to_numeric(frame[axis], errors="coerce")
    if values.isna().any() or not pd.api.types.is_numeric_dtype(frame[axis]) \
            or pd.api.types.is_bool_dtype(frame[axis]):
        raise AnalysisInputError(f"axis {axis!r} is not numeric; a tolerance needs a numeric axis")
    if values.nunique() < 2:
        raise AnalysisInputError(f"axis {axis!r} takes one value only; a tolerance needs two or more")
    if not (drop > 0 and math.isfinite(drop)) or (relative and drop >= 1):
        raise AnalysisInputError(f"drop must be positive{' and below 1 when relative' if relative else ''}, got {drop}")
    if n_resamples < 1:
        raise AnalysisInputError(f"n_resamples must be positive, got {n_resamples}")
    vocab = vocabulary(params)
    metric = metric or default_metric(frame, vocab)
    if metric not in frame.columns:
        raise AnalysisInputError(f"unknown metric {metric!r} for the tolerance")
    by, pooled = resolve_grouping(frame, vocab, by, pool, exclude=[axis], what="the tolerance table")
    keys = [*by, axis, "mode"]
    check_replicates(frame, keys, pooled)
    seeds_table = per_seed(frame, keys, [metric])
    seeds_table = seeds_table[np.isfinite(seeds_table[metric])]
    alpha = (1.0 - confidence) / 2.0
    records = []
    groups = seeds_table.groupby(by, sort=True, dropna=False) if by else [((), seeds_table)]
    for group, part in groups:
        group = group if isinstance(group, tuple) else (group,)
        xs = np.array(vocab.error_order(axis, part[axis].unique()), dtype=float)
        modes = vocab.mode_order(part["mode"].dropna().unique())
        seeds = np.array(sorted(part["seed"].unique())) if "seed" in part else np.array([0])
        cube = np.full((len(modes), len(xs), len(seeds)), np.nan)
        m_index = {m: i for i, m in enumerate(modes)}
        x_index = {x: i for i, x in enumerate(xs)}
        s_index = {s: i for i, s in enumerate(seeds)}
        seed_col = part["seed"] if "seed" in part else pd.Series(0, index=part.index)
        cube[part["mode"].map(m_index).to_numpy(), part[axis].astype(float).map(x_index).to_numpy(),
             seed_col.map(s_index).to_numpy()] = part[metric].to_numpy(dtype=float)
        rows_here = frame
        for name, value in zip(by, group):
            rows_here = rows_here[rows_here[name] == value] if value == value else rows_here[rows_here[name].isna()]
        shared = one_chip_per_seed(rows_here, pooled)
        with np.errstate(invalid="ignore"), _quiet():
            curves = np.nanmean(cube, axis=2)
            point = crossing(xs, curves, drop, relative)
            rng = np.random.default_rng(seed)
            n_x, n_s = len(xs), len(seeds)
            if shared:  # one draw of seeds (chips) for the whole curve
                draws = np.broadcast_to(rng.integers(0, n_s, size=(n_resamples, 1, n_s)), (n_resamples, n_x, n_s))
            else:  # every value's chips drawn on their own
                draws = rng.integers(0, n_s, size=(n_resamples, n_x, n_s))
            counts = np.zeros((n_resamples, n_x, n_s))
            np.add.at(counts, (np.arange(n_resamples)[:, None, None], np.arange(n_x)[None, :, None], draws), 1.0)
            finite = np.isfinite(cube)
            # mean over each resample's chips (with multiplicity), NaN cells skipped
            boot = (np.einsum("mxs,rxs->mxr", np.where(finite, cube, 0.0), counts)
                    / np.einsum("mxs,rxs->mxr", finite.astype(float), counts))
            boot_tol = crossing(xs, np.moveaxis(boot, 1, 2), drop, relative)  # (modes, resamples)
        for mode, i in m_index.items():
            base = curves[i, 0]
            reached = bool(np.isfinite(point[i]))
            ci = (_quantile(boot_tol[i], alpha), _quantile(boot_tol[i], 1 - alpha))
            if reached and len(xs) == 2:
                # two values only: the crossing is somewhere between them, nothing more
                point[i], ci = math.nan, (float(min(xs)), float(max(xs)))
            records.append({
                **dict(zip(by, group)), "mode": mode, "metric": metric, "axis": axis,
                "drop": float(drop), "relative": bool(relative), "baseline": float(base),
                "threshold": float(base * (1 - drop) if relative else base - drop),
                "tolerance": float(point[i]) if reached else math.nan, "reached": reached,
                "ci_low": ci[0], "ci_high": ci[1], "n_values": len(xs),
                "error_free": float(xs[0]), "largest": float(xs[-1]),
                "descending": vocab.larger_is_better(axis), "design": "paired" if shared else "independent",
                "n_seeds": int(np.isfinite(cube[i]).any(axis=0).sum()), "n_resamples": int(n_resamples),
                **({DRAWS_COLUMN: boot_tol[i]} if keep_draws else {}),
            })
    columns = [*by, *TOLERANCE_COLUMNS, *([DRAWS_COLUMN] if keep_draws else [])]
    table = pd.DataFrame.from_records(records, columns=columns)
    table.attrs["pooled"] = list(pooled)
    table.attrs["by"] = list(by)
    table.attrs["pooled_text"] = pooled_text(frame, pooled, vocab)
    table.attrs["confidence"] = confidence
    table.attrs["labels"] = {axis: vocab.label(axis), metric: vocab.label(metric)}
    return table


class _quiet:
    """Silence numpy's "mean of empty slice" warnings (an all-NaN cell is a NaN mean)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def _beyond(row) -> str:
    sign = "<" if row.get("descending", False) else ">"
    return f"{sign} {value_text(row['largest'])}"


def tolerance_text(row, digits: int = 3) -> tuple[str, str]:
    """(tolerance, interval) as text with fixed decimals: ``"0.043"``, ``"(0.031, 0.061)"``;
    beyond the grid ``"not reached (> 0.1)"`` and bounds like ``"> 0.1"``."""
    fmt = f"{{:.{digits}f}}"
    tol = fmt.format(row["tolerance"]) if row["reached"] else f"not reached ({_beyond(row)})"
    if row["reached"] and row.get("n_values", 3) == 2:
        between = f"between {value_text(row['error_free'])} and {value_text(row['largest'])}"
        return between, "(two grid values: no interpolation)"
    if row["baseline"] != row["baseline"]:
        tol = "no value at the error-free end"

    def bound(v):
        if v != v:
            return "?"
        return _beyond(row) if math.isinf(v) else fmt.format(v)

    return tol, f"({bound(row['ci_low'])}, {bound(row['ci_high'])})"


def tolerance_header(table: pd.DataFrame) -> str:
    """One line saying what the tolerance table holds and what it is over."""
    if not len(table):
        return "tolerance: no rows"
    r = table.iloc[0]
    how = f"{r['drop'] * 100:g} % of its value" if r["relative"] else f"{r['drop']:g}"
    conf = table.attrs.get("confidence", 0.95)
    seeds = table["n_seeds"]
    n = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    labels = table.attrs.get("labels") or {}
    label = lambda name: labels.get(name, name)  # noqa: E731
    text = (f"tolerance of {label(r['metric'])} ({r['metric']}) along {label(r['axis'])}: the value where "
            f"the mean over seeds falls {how} below its value at {r['axis']} = "
            f"{value_text(r['error_free'])} (linear interpolation); {conf * 100:g} % bootstrap interval "
            f"over {n} chips per value ({r['n_resamples']} resamples, the same for every mode; "
            + ("chips shared along the axis, resampled once per curve"
               if set(table.get("design", ["independent"])) == {"paired"} else
               "each value's chips resampled on their own: they are other chips")
            + "; with two grid values only, the value lies between them)")
    pooled = table.attrs.get("pooled_text")
    return text + (f"; {pooled}" if pooled else "")
