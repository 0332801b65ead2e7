"""The entry points the ``insitu`` CLI calls: ``summary``, ``tolerance``, ``figures``, ``report``.

Each validates its input completely before it writes anything. A path that is not a store,
a store without results, an axis or metric that does not exist, a ``where`` expression that
pandas cannot evaluate, or an output path that cannot be used raises
:class:`analysis.exceptions.AnalysisInputError` with one line naming the problem; the CLI prints
it and exits with status 2.

Shared options:

* ``where``: a :meth:`pandas.DataFrame.query` expression on the rows
  (``"topology == 'triangular' and tap_noise == 0"``); axes it fixes no longer vary.
* ``metric``: the metric to summarise or plot instead of the experiment's headline one.
* ``pool``: axes to average over (per seed), named wherever they are pooled. Without it
  every table and figure groups by every axis that varies.

About 430 lines: the four entry points share their argument checks and output
writing; each is short.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.labels import error_axes, error_free_value, label
from analysis.exceptions import AnalysisInputError
from analysis.figures import save_figure, tolerance_vs_axis
from analysis.grouping import pooled_text, value_text
from analysis.load import LoadedStore, read_store
from analysis.outputs import record_output, stale_notices, store_state
from analysis.plan import build_figures
from analysis.report import render_report
from analysis.scaling import size_axis
from analysis.summary import (
    default_metric,
    format_table,
    gap_summary,
    is_log_metric,
    metric_columns,
    summarize,
    to_markdown,
)
from analysis.tolerance import tolerance, tolerance_header, tolerance_text

__all__ = ["FORMATS", "apply_where", "figures_command", "report_command", "summary_command", "tolerance_command"]

FORMATS = ("text", "csv", "md", "json")


def _read_results(store_dir: str) -> LoadedStore:
    """The store, refused in one line when it holds no row that counts."""
    store = read_store(store_dir)
    if store.is_empty:
        why = (f"its {store.n_foreign} stored rows are not trials of its spec; "
               f"`insitu verify {store.path}` quarantines their parts") if store.n_foreign \
            else "no rows in parts/"
        raise AnalysisInputError(f"store {store.path} has no results yet ({why})")
    return store


def _open(store_dir: str, where: str | None = None) -> LoadedStore:
    return apply_where(_read_results(store_dir), where)


def apply_where(store: LoadedStore, where: str | None) -> LoadedStore:
    """The store with its rows (and error rows) filtered by a pandas query expression."""
    if where is None or not str(where).strip():
        return store
    rows = _query(store.rows, where, store)
    if not len(rows):
        raise AnalysisInputError(f"--where {where!r} selects no successful rows")
    try:
        errors = store.errors.query(where) if len(store.errors) else store.errors
    except Exception:  # noqa: BLE001 - error rows lack metric columns; keep them all
        errors = store.errors
    rows.attrs.update(store.rows.attrs)
    return dataclasses.replace(store, rows=rows.reset_index(drop=True),
                               errors=errors.reset_index(drop=True))


def _query(frame: pd.DataFrame, where: str, store: LoadedStore) -> pd.DataFrame:
    if not len(frame):
        return frame
    try:
        out = frame.query(where, local_dict={}, global_dict={})
    except Exception as exc:  # noqa: BLE001 - any failure of the expression is bad input
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise AnalysisInputError(f"bad --where expression {where!r}: {detail}") from None
    if not isinstance(out, pd.DataFrame):
        raise AnalysisInputError(f"bad --where expression {where!r}: it does not select rows")
    return out


def _metric(store: LoadedStore, metric: str | None) -> str:
    if metric is None:
        return default_metric(store.rows, store.meta.get("experiment"))
    known = metric_columns(store.rows, store.params)
    if metric not in known:
        raise AnalysisInputError(f"unknown metric {metric!r}; this store's metrics are: {', '.join(known)}")
    return metric


def _check_axes(store: LoadedStore, names: Sequence[str], what: str = "axis") -> list[str]:
    known = [*store.params, "seed", "mode"]
    for name in names:
        if name not in known or name not in store.rows.columns:
            raise AnalysisInputError(
                f"unknown {what} {name!r}; this store's axes are: {', '.join(store.params)}"
            )
    return [b for b in dict.fromkeys(names) if b != "mode"]


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise AnalysisInputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def _usable_dir(path: pathlib.Path) -> None:
    if path.exists() and not path.is_dir():
        raise AnalysisInputError(f"output directory is a file: {path}")
    parent = next((p for p in [path, *path.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise AnalysisInputError(f"cannot create output directory under a file: {parent}")


def _usable_file(path: pathlib.Path) -> None:
    if path.is_dir():
        raise AnalysisInputError(f"output file is a directory: {path}")
    _usable_dir(path.parent)


def _write_text(out: str | None, text: str) -> str:
    """``text`` itself, or (with ``out``) write it there and return a line saying so."""
    if out is None:
        return text
    path = pathlib.Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return f"wrote {path}"


def _json_value(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


# ---------------------------------------------------------------------------------------
# summary


def _drop_note(table: pd.DataFrame, by: list[str]) -> str:
    errs = error_axes(by)
    if "drop" not in table.columns or not errs:
        return ""
    at = ", ".join(f"{a} = {value_text(error_free_value(a, table[a].unique()))}" for a in errs)
    return (f"; drop = mean loss against the error-free cell ({at}, same mode and other axes) "
            "with its 95 % t interval over seeds, paired by seed index")


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """A copy for text and Markdown: all-exact gradient errors shown as "exact"."""
    if "n_exact" not in table.columns or not len(table):
        return table
    shown = table.astype({c: object for c in ("mean", "ci_low", "ci_high")})
    exact = (table["n_exact"] == table["n"]) & (table["n"] > 0)
    for c in ("mean", "ci_low", "ci_high"):
        shown.loc[exact, c] = "exact"
    return shown


def summary_command(
    store_dir: str,
    by: list[str] | None = None,
    where: str | None = None,
    metric: str | None = None,
    pool: Sequence[str] = (),
    fmt: str = "text",
    out: str | None = None,
) -> str:
    """The aggregated table (a metric per grid point and mode, over seeds), as text.

    ``by`` defaults to every axis that varies; an explicit ``by`` must cover every varying
    axis not named in ``pool`` (nothing is pooled silently). ``fmt`` is ``text`` (with the
    paired gaps and the counts of finished, failed and superseded trials), ``csv`` (the
    tidy table), ``md`` (header line and tables) or ``json``. With ``out`` the result is
    written there and the returned text says so.
    """
    _check_format(fmt)
    store = _open(store_dir, where)
    if out is not None:
        _usable_file(pathlib.Path(out))
    pool = _check_axes(store, pool, "axis to pool")
    axes = None if by is None else _check_axes(store, by)
    meta, spec = store.meta, store.spec
    if not len(store.rows):
        if fmt != "text":
            raise AnalysisInputError(f"store {store.path} has no successful rows to summarise")
        table = gaps = None
        metric_name = None
    else:
        metric_name = _metric(store, metric)
        table = summarize(store.rows, by=axes, metrics=[metric_name], pool=pool, drop=True).drop(columns="metric")
        gaps = gap_summary(store.rows, metric_name, by=table.attrs["by"], pool=pool)
    pooled = table.attrs["pooled"] if table is not None else []
    by_axes = table.attrs["by"] if table is not None else []
    pooled_line = pooled_text(store.rows, pooled)
    if metric_name is not None:
        stat = ("geometric mean over seeds, sd of log10 (decades), 95 % t interval of log10 values "
                "mapped back; n_exact = seeds with 1 − cos below 1e-12" if is_log_metric(metric_name)
                else "mean over seeds, sd, 95 % Student t interval")
        header = (f"{label(metric_name)} ({metric_name}) per "
                  + (", ".join(by_axes + ["mode"])) + f": {stat} (n = seeds)"
                  + (f"; {pooled_line}, averaged per seed" if pooled_line else "")
                  + _drop_note(table, by_axes))
    if fmt == "csv":
        csv = table.assign(metric=metric_name)
        if pooled:
            csv = csv.assign(pooled_over=",".join(pooled))
        return _write_text(out, csv.to_csv(index=False))
    if fmt == "json":
        doc = {"store": str(store.path), "experiment": meta.get("experiment"), "where": where,
               "metric": metric_name, "grouped_by": by_axes, "pooled_over": pooled,
               "statistic": header, "rows": _records(table), "paired_gaps": _records(gaps)}
        return _write_text(out, json.dumps(doc, indent=1))
    if fmt == "md":
        text = ([f"rows where `{where}`", ""] if where else []) + [f"**{header}**", "", to_markdown(_display(table))]
        if len(gaps):
            text += [f"**paired gaps in {metric_name} (same grid point and seed), mean over seeds, "
                     f"95 % t interval{'; ' + pooled_line if pooled_line else ''}**", "",
                     to_markdown(gaps.drop(columns="metric"))]
        return _write_text(out, "\n".join(text))
    lines = [
        f"store {store.path}: {spec.get('name', '')} ({meta.get('experiment', '')}, "
        f"version {meta.get('experiment_version', '')})",
        f"trials ok: {store.n_trials_ok}   trials with an error: {store.n_trials_error}   "
        f"rows superseded by a newer launch: {store.n_superseded}",
    ]
    if store.n_foreign:
        lines.append(f"ignored {store.n_foreign} rows that are not trials of this store's spec "
                     f"(copied in from another sweep?); `insitu verify {store.path}` "
                     f"quarantines their parts")
    if where:
        lines.append(f"rows where {where}")
    if table is not None:
        lines += ["", header, format_table(_display(table))]
        if len(gaps):
            lines += ["", f"paired gaps in {metric_name} (same grid point and seed), mean over seeds, "
                          f"95 % t interval" + (f"; {pooled_line}" if pooled_line else ""),
                      format_table(gaps.drop(columns="metric"))]
    else:
        lines += ["", "no successful rows yet"]
    errors = store.error_summary()
    if len(errors):
        lines += ["", "errors (trials, rows, message):"]
        lines += [f"  {t:>5} {r:>5}  {m}" for m, t, r in errors[["error", "trials", "rows"]].head(20).itertuples(index=False)]
        if len(errors) > 20:
            lines.append(f"  ... and {len(errors) - 20} more distinct messages")
    return _write_text(out, "\n".join(lines))


# ---------------------------------------------------------------------------------------
# tolerance


def _tolerance_display(table: pd.DataFrame) -> pd.DataFrame:
    by = table.attrs.get("by", [])
    texts = [tolerance_text(r) for _, r in table.iterrows()]
    axis = table["axis"].iloc[0]
    unit = label(axis)
    shown = table[[*by, "mode"]].copy()
    shown[f"value at {value_text(table['error_free'].iloc[0])}"] = [f"{v:.3f}" for v in table["baseline"]]
    shown[f"tolerance: {unit}"] = [t for t, _ in texts]
    shown["95 % interval"] = [i for _, i in texts]
    shown["seeds"] = table["n_seeds"].to_numpy()
    return shown


def tolerance_command(
    store_dir: str,
    axis: str,
    drop: float = 0.05,
    metric: str | None = None,
    relative: bool = False,
    where: str | None = None,
    pool: Sequence[str] = (),
    fmt: str = "text",
    out: str | None = None,
    figure: str | None = None,
    against: str | None = None,
    n_resamples: int = 2000,
) -> str:
    """Tolerances along ``axis`` per mode and combination of the other varying axes.

    ``fmt`` as for :func:`summary_command`. With ``figure`` (a path stem) the tolerance is
    also drawn against ``against`` (default: the first other varying axis) as PNG and PDF.
    ``against`` may also be a result column that stands one-to-one for a varying axis
    (``n_ports`` for ``task``: :func:`analysis.scaling.size_axis`); the figure then has log
    axes and the table lists that column instead of the axis.
    """
    _check_format(fmt)
    store = _open(store_dir, where)
    if not len(store.rows):
        raise AnalysisInputError(f"store {store.path} has no successful rows")
    if out is not None:
        _usable_file(pathlib.Path(out))
    _check_axes(store, [axis])
    pool = _check_axes(store, pool, "axis to pool")
    metric = _metric(store, metric)
    rows = store.rows
    if figure is not None and against is not None and against not in store.params:
        rows, _ = size_axis(rows, against)  # a result column standing for an axis: n_ports for task
    table = tolerance(rows, axis, drop, metric, relative=relative, pool=pool,
                      n_resamples=n_resamples)
    by = table.attrs["by"]
    written = []
    if figure is not None:
        fig_x = against if against is not None else (by[0] if by else None)
        if fig_x is None:
            raise AnalysisInputError("no second axis varies to draw the tolerance against")
        if fig_x not in by:
            raise AnalysisInputError(f"--against {fig_x!r} is not an axis the tolerance varies with "
                                     f"(those are: {', '.join(by) or 'none'})")
        stem = pathlib.Path(figure)
        _usable_dir(stem.parent)
        rest = [b for b in by if b != fig_x]
        facet = rest[0] if rest else None
        if len(rest) > 1:
            raise AnalysisInputError(f"the tolerance varies with {', '.join(by)}; the figure shows "
                                     f"two of them: filter the others with --where or --pool them")
        # against a size (n_ports for the task): log-log, the axes of a power law
        log = True if rows.attrs.get("size_of") and fig_x not in store.params else None
        fig = tolerance_vs_axis(table, fig_x, facet=facet, log_x=log, log_y=log)
        written = save_figure(fig, stem)
    header = tolerance_header(table)
    if fmt == "csv":
        text = table.to_csv(index=False)
    elif fmt == "json":
        text = json.dumps({"store": str(store.path), "where": where, "statistic": header,
                           "pooled_over": table.attrs["pooled"], "rows": _records(table)}, indent=1)
    elif fmt == "md":
        text = (f"rows where `{where}`\n\n" if where else "") + f"**{header}**\n\n" \
            + to_markdown(_tolerance_display(table))
    else:
        text = header + "\n" + format_table(_tolerance_display(table))
        if where:
            text = f"rows where {where}\n" + text
    result = _write_text(out, text)
    if written:
        result += "\n" + "\n".join(f"wrote {p}" for p in written)
    return result


# ---------------------------------------------------------------------------------------
# figures and report


def figures_command(
    store_dir: str,
    out_dir: str | None,
    where: str | None = None,
    metric: str | None = None,
    pool: Sequence[str] = (),
    notices: list[str] | None = None,
) -> list[pathlib.Path]:
    """Write every figure the store supports (PNG and PDF); default ``<store>/figures``.

    All figures are drawn in memory first, so an error leaves nothing half-written. The
    output is recorded (:mod:`analysis.outputs`); notices about other outputs that no
    longer match the store are appended to ``notices``.
    """
    full = _read_results(store_dir)
    if not len(full.rows):
        raise AnalysisInputError(
            f"store {full.path} has no successful trials to plot "
            f"({full.n_trials_error} trials ended in an error; see `insitu summary`)"
        )
    store = apply_where(full, where)
    metric = None if metric is None else _metric(store, metric)
    pool = _check_axes(store, pool, "axis to pool")
    out = pathlib.Path(out_dir) if out_dir is not None else store.path / "figures"
    _usable_dir(out)
    built, _notes = build_figures(store, metric=metric, pool=pool)
    if notices is not None:
        notices += stale_notices(full, skip=("figures", out))
    paths: list[pathlib.Path] = []
    for plan, fig in built:
        paths += save_figure(fig, out / plan.name)
    problem = record_output(full, "figures", out, store_state(full), where=where, metric=metric,
                            pool=list(pool))
    if problem and notices is not None:
        notices.append(problem)
    return paths


def report_command(
    store_dir: str,
    out_path: str | None,
    where: str | None = None,
    metric: str | None = None,
    pool: Sequence[str] = (),
    notices: list[str] | None = None,
) -> pathlib.Path:
    """Write one self-contained HTML report; default ``<store>/report.html``.

    An existing directory as ``out_path`` receives ``report.html`` inside it. Recorded and
    with notices as for :func:`figures_command`.
    """
    full = _read_results(store_dir)
    store = apply_where(full, where) if len(full.rows) else full
    metric = None if metric is None or not len(store.rows) else _metric(store, metric)
    pool = _check_axes(store, pool, "axis to pool") if len(store.rows) else []
    out = pathlib.Path(out_path) if out_path is not None else store.path / "report.html"
    if out.is_dir():
        out = out / "report.html"
    _usable_dir(out.parent)
    built, notes = build_figures(store, metric=metric, pool=pool)
    page = render_report(store, built, notes, metric=metric, pool=pool, where=where)
    if notices is not None:
        notices += stale_notices(full, skip=("report", out))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    problem = record_output(full, "report", out, store_state(full), where=where, metric=metric,
                            pool=list(pool))
    if problem and notices is not None:
        notices.append(problem)
    return out
