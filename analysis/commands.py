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

Their shared input checks and writers are in :mod:`analysis.command_io`.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

import pandas as pd

from insitu.analysis.command_io import (
    FORMATS,
    apply_where,
    check_axes,
    check_format,
    check_metric,
    nonfinite_shown,
    open_store,
    read_results,
    records,
    state_of,
    usable_dir,
    usable_file,
    write_output,
    write_text,
)
from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.figures import figure_files, figure_width, fit_width, tolerance_vs_axis
from insitu.analysis.grouping import value_text
from insitu.analysis.plan import Plan
from insitu.analysis.report import render_report
from insitu.analysis.scaling import size_axis
from insitu.analysis.summary import format_table, nonfinite_note, to_markdown
from insitu.analysis.tolerance import tolerance, tolerance_axes, tolerance_header, tolerance_text
from insitu.sweeps.store.outputs import record_output, stale_notices

__all__ = ["FORMATS", "apply_where", "figures_command", "report_command", "summary_command", "tolerance_command"]

# ---------------------------------------------------------------------------------------
# summary


def _drop_note(table: pd.DataFrame, by: list[str], vocab) -> str:
    errs = vocab.error_axes(by)
    if "drop" not in table.columns or not errs:
        return ""
    at = ", ".join(f"{a} = {value_text(vocab.error_free_value(a, table[a].unique()))}" for a in errs)
    designs = set(table["drop_design"].dropna()) if "drop_design" in table.columns else set()
    how = ("paired over chips (the store shares them along the error axes)" if designs == {"paired"}
           else "unpaired (Welch): each cell ran on chips of its own")
    return (f"; drop = mean loss against the error-free cell ({at}, same mode and other axes) "
            f"with its 95 % interval, {how} (drop_design); the test set is fixed: intervals are "
            "over chips, initial phases and data orders")


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """A copy for text and Markdown: all-exact gradient errors shown as "exact", the
    ``n_nonfinite`` column only when a seed value was left out."""
    table = nonfinite_shown(table)
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
    tidy table), ``md`` (header line and tables), ``json`` or ``latex`` (booktabs tables,
    their captions saying the statistic and what was pooled: :mod:`insitu.analysis.latex`). With ``out`` the result is
    written there and the returned text says so.
    """
    if fmt != "latex":
        check_format(fmt)
    store = open_store(store_dir, where)
    if out is not None:
        usable_file(pathlib.Path(out))
    pool = check_axes(store, pool, "axis to pool")
    axes = None if by is None else check_axes(store, by)
    meta, spec = store.meta, store.spec
    if not len(store.rows):
        if fmt != "text":
            raise AnalysisInputError(f"store {store.path} has no successful rows to summarise")
        table = gaps = None
        metric_name = None
        plan = None
    else:
        metric_name = check_metric(store, metric)
        plan = Plan.build(store, metric_name, pool, where, by=axes)
        table = plan.summary_table(axes).drop(columns="metric")
        gaps = plan.gap_table(table.attrs["by"])
    pooled = table.attrs["pooled"] if table is not None else []
    by_axes = table.attrs["by"] if table is not None else []
    pooled_line = plan.pooled_line([p for p in pooled if p not in plan.user_pool]) if plan else ""
    if metric_name is not None:
        label = plan.label
        stat = ("geometric mean over seeds, sd of log10 (decades), 95 % t interval of log10 values "
                "mapped back; n_exact = seeds with 1 − cos below 1e-12" if plan.params.is_log(metric_name)
                else "mean over seeds, sd, 95 % Student t interval")
        header = (f"{label(metric_name)} ({metric_name}) per "
                  + (", ".join(by_axes + ["mode"])) + f": {stat} (n = seeds)"
                  + (f"; {pooled_line}, averaged per seed" if pooled_line else "")
                  + _drop_note(table, by_axes, plan.params))
        left_out = nonfinite_note(table, by_axes, label(metric_name), label)
        header += f"; {left_out}" if left_out else ""
        gap_left_out = nonfinite_note(gaps, by_axes, f"the gap in {label(metric_name)}", label)
        gap_header = (f"paired gaps in {metric_name} (same grid point and seed), mean over seeds, "
                      f"95 % t interval" + (f"; {pooled_line}" if pooled_line else "")
                      + (f"; {gap_left_out}" if gap_left_out else ""))
    if fmt == "csv":
        csv = table.assign(metric=metric_name)
        if pooled:
            csv = csv.assign(pooled_over=",".join(pooled))
        return write_text(out, csv.to_csv(index=False))
    if fmt == "json":
        doc = {"store": str(store.path), "experiment": meta.get("experiment"), "where": where,
               "metric": metric_name, "grouped_by": by_axes, "pooled_over": pooled,
               "statistic": header, "rows": records(table), "paired_gaps": records(gaps),
               "paired_gaps_statistic": gap_header}
        return write_text(out, json.dumps(doc, indent=1))
    if fmt == "latex":
        from insitu.analysis.latex import label_of, summary_latex

        where_text = f"; rows where {where}" if where else ""
        gap_caption = (f"Paired gaps in {plan.label(metric_name)} ({metric_name}) of each mode "
                       f"against its reference on the same chips (same grid point and seed): mean "
                       f"over seeds, sd, 95 % Student t interval (n = seeds)"
                       + (f"; {pooled_line}, averaged per seed" if pooled_line else "") + where_text)
        text = summary_latex(table, gaps, plan.params, metric_name, header[0].upper() + header[1:]
                             + where_text, gap_caption, label_of(spec.get("name"), metric_name))
        return write_text(out, f"% insitu summary of {' '.join(str(store.path).split())}; "
                               "needs \\usepackage{booktabs}\n" + text)
    if fmt == "md":
        text = ([f"rows where `{where}`", ""] if where else []) + [f"**{header}**", "", to_markdown(_display(table))]
        if len(gaps):
            text += [f"**{gap_header}**", "",
                     to_markdown(nonfinite_shown(gaps.drop(columns="metric")))]
        return write_text(out, "\n".join(text))
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
            lines += ["", gap_header, format_table(nonfinite_shown(gaps.drop(columns="metric")))]
    else:
        lines += ["", "no successful rows yet"]
    design = spec.get("precision")
    if design and table is not None:
        from insitu.analysis.precision import two_stage_table

        sized = two_stage_table(store.rows, design, params=plan.params)
        if len(sized):
            lines += ["", f"two-stage design (Stein): every cell ran the seeds its pilot of "
                          f"{design['pilot_seeds']} asked for; the interval it was sized for is the mean "
                          f"± {design['half_width']:g} (95 %) of {design.get('contrast') or 'each mode'} "
                          f"({design['metric']}), not the t interval above",
                      format_table(sized)]
        else:
            lines += ["", f"two-stage design: stage 1 (a pilot of {design['pilot_seeds']} seeds per cell) "
                          "is not complete; run the spec again"]
    errors = store.error_summary()
    if len(errors):
        lines += ["", "errors (trials, rows, message):"]
        lines += [f"  {t:>5} {r:>5}  {m}" for m, t, r in errors[["error", "trials", "rows"]].head(20).itertuples(index=False)]
        if len(errors) > 20:
            lines.append(f"  ... and {len(errors) - 20} more distinct messages")
    return write_text(out, "\n".join(lines))


# ---------------------------------------------------------------------------------------
# tolerance


def _tolerance_display(table: pd.DataFrame, vocab) -> pd.DataFrame:
    by = tolerance_axes(table)
    texts = [tolerance_text(r) for _, r in table.iterrows()]
    axis = table["axis"].iloc[0]
    unit = vocab.label(axis)
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
    check_format(fmt)
    store = open_store(store_dir, where)
    if not len(store.rows):
        raise AnalysisInputError(f"store {store.path} has no successful rows")
    if out is not None:
        usable_file(pathlib.Path(out))
    check_axes(store, [axis])
    pool = check_axes(store, pool, "axis to pool")
    metric = check_metric(store, metric)
    rows, params, sized = store.rows, store.params, None
    if figure is not None and against is not None and against not in store.params:
        # a result column standing for an axis: n_ports for task
        rows, params, sized = size_axis(rows, params, against)
    table = tolerance(rows, axis, drop, metric, relative=relative, pool=pool,
                      n_resamples=n_resamples, params=params)
    by = tolerance_axes(table)
    written = []
    if figure is not None:
        fig_x = against if against is not None else (by[0] if by else None)
        if fig_x is None:
            raise AnalysisInputError("no second axis varies to draw the tolerance against")
        if fig_x not in by:
            raise AnalysisInputError(f"--against {fig_x!r} is not an axis the tolerance varies with "
                                     f"(those are: {', '.join(by) or 'none'})")
        stem = pathlib.Path(figure)
        usable_dir(stem.parent)
        rest = [b for b in by if b != fig_x]
        facet = rest[0] if rest else None
        if len(rest) > 1:
            raise AnalysisInputError(f"the tolerance varies with {', '.join(by)}; the figure shows "
                                     f"two of them: filter the others with --where or --pool them")
        # against a size (n_ports for the task): log-log, the axes of a power law
        log = True if sized is not None and fig_x not in store.params else None
        fig = tolerance_vs_axis(table, fig_x, facet=facet, log_x=log, log_y=log, params=params)
        files = {stem.with_name(stem.name + suffix): data for suffix, data in figure_files(fig).items()}
        for path, data in files.items():
            write_output(path, data)
        written = list(files)
    header = tolerance_header(table)
    if fmt == "csv":
        text = table.to_csv(index=False)
    elif fmt == "json":
        text = json.dumps({"store": str(store.path), "where": where, "statistic": header,
                           "pooled_over": table.attrs["pooled"], "rows": records(table)}, indent=1)
    elif fmt == "md":
        text = (f"rows where `{where}`\n\n" if where else "") + f"**{header}**\n\n" \
            + to_markdown(_tolerance_display(table, params))
    else:
        text = header + "\n" + format_table(_tolerance_display(table, params))
        if where:
            text = f"rows where {where}\n" + text
    result = write_text(out, text)
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
    width: str | float | None = None,
) -> list[pathlib.Path]:
    """Write every figure the store supports (PNG and PDF); default ``<store>/figures``;
    ``width``: ``single``, ``double`` or inches (:func:`insitu.analysis.figures.fit_width`).

    All figures are drawn in memory first, so an error leaves nothing half-written. The
    output is recorded (:mod:`insitu.sweeps.store.outputs`); notices about other outputs
    that no longer match the store are appended to ``notices``.
    """
    full = read_results(store_dir)
    if not len(full.rows):
        raise AnalysisInputError(
            f"store {full.path} has no successful trials to plot "
            f"({full.n_trials_error} trials ended in an error; see `insitu summary`)"
        )
    if width is not None:
        figure_width(width)  # checked before anything is drawn
    store = apply_where(full, where)
    metric = None if metric is None else check_metric(store, metric)
    pool = check_axes(store, pool, "axis to pool")
    out = pathlib.Path(out_dir) if out_dir is not None else store.path / "figures"
    usable_dir(out)
    built, _notes = Plan.build(store, metric, pool, where).draw()
    if width is not None:
        built = [(plan, fit_width(fig, width)) for plan, fig in built]
    if notices is not None:
        notices += stale_notices(full.path, skip=("figures", out))
    files = {out / (plan.name + suffix): data  # every file rendered before the first is written
             for plan, fig in built for suffix, data in figure_files(fig).items()}
    for path, data in files.items():
        write_output(path, data)
    paths = list(files)
    problem = record_output(full.path, "figures", out, state_of(full), where=where, metric=metric,
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
    full = read_results(store_dir)
    store = apply_where(full, where) if len(full.rows) else full
    metric = None if metric is None or not len(store.rows) else check_metric(store, metric)
    pool = check_axes(store, pool, "axis to pool") if len(store.rows) else []
    out = pathlib.Path(out_path) if out_path is not None else store.path / "report.html"
    if out.is_dir():
        out = out / "report.html"
    usable_dir(out.parent)
    plan = Plan.build(store, metric, pool, where)
    built, notes = plan.draw()
    page = render_report(plan, built, notes)
    if notices is not None:
        notices += stale_notices(full.path, skip=("report", out))
    write_output(out, page.encode("utf-8"))
    problem = record_output(full.path, "report", out, state_of(full), where=where, metric=metric,
                            pool=list(pool))
    if problem and notices is not None:
        notices.append(problem)
    return out
