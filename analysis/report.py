"""A self-contained HTML report of one store: one file that opens in a browser, no server.

Figures are embedded as base64 PNG (each with its caption as alt text), tables are plain
HTML (``DataFrame.to_html``, which needs no template engine), and the spec is included as
TOML, so the file can be mailed or archived next to a paper draft. The answer comes first:
the headline figure, the paired gaps (``*`` where the 95 % interval excludes 0), the
tolerances along the first error axis and a one-line setup; then the other figures, the
per-mode summary (modes in columns, "0.940 ± 0.008"), the bookkeeping a reader needs before
trusting a figure (launches, parts, failed trials and why, superseded rows), and the spec.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.figures import figure_png
from insitu.analysis.grouping import value_text
from insitu.analysis.load import LoadedStore
from insitu.analysis.plan import FigurePlan, Plan
from insitu.analysis.summary import nonfinite_note
from insitu.analysis.tolerance import tolerance_axes, tolerance_header, tolerance_text
from insitu.analysis.vocabulary import spec_seeds
from insitu.sweeps.store.metadata import spec_toml

__all__ = ["render_report"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #444; margin-top: 0.3rem; }
pre { background: #f7f7f7; padding: 0.8rem; overflow-x: auto; font-size: 0.8rem; }
.muted { color: #666; } .err { color: #a00; }
div.scroll { overflow-x: auto; max-width: 100%; }
p.headline { font-size: 1.05rem; }
"""


def _table(frame: pd.DataFrame) -> str:
    if not len(frame):
        return '<p class="muted">(no rows)</p>'
    # wrapped so that a wide table scrolls on its own on a narrow screen, not the page
    return '<div class="scroll">' + frame.to_html(
        index=False, border=0, na_rep="", float_format=lambda v: f"{v:.4g}", escape=True) + "</div>"


def _img(fig: Figure, alt: str) -> str:
    data = base64.b64encode(figure_png(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{data}">'


def _figure_html(plan: FigurePlan, fig: Figure) -> str:
    return (f'<figure id="{html.escape(plan.name)}">{_img(fig, plan.caption)}'
            f"<figcaption><b>{html.escape(plan.name)}</b>: {html.escape(plan.caption)}"
            "</figcaption></figure>")


def _overview(store: LoadedStore) -> pd.DataFrame:
    spec, meta = store.spec, store.meta
    axes = store.varying_axes()
    label = store.params.label
    items = [
        ("store", str(store.path)),
        ("experiment", f"{meta.get('experiment', '')} (version {meta.get('experiment_version', '')})"),
        ("created", str(meta.get("created", ""))),
        ("launches", str(len(store.launches))),
        ("last launch", store.launches[-1] if store.launches else ""),
        ("parts", str(store.n_parts)),
        ("trials done (ok)", str(store.n_trials_ok)),
        ("trials with an error", str(store.n_trials_error)),
        ("rows ok / error", f"{len(store.rows)} / {len(store.errors)}"),
        ("rows superseded by a newer launch", str(store.n_superseded)),
        ("rows ignored: not trials of the store's spec", str(store.n_foreign)),
        ("varying axes", ", ".join(f"{a} ({label(a)})" for a in axes) or "none"),
        ("seeds", str(len(spec_seeds(spec)))),
    ]
    return pd.DataFrame(items, columns=["item", "value"])


def _error_groups(store: LoadedStore) -> pd.DataFrame:
    groups = store.error_summary()
    if not len(groups):
        return groups
    axes = [a for a in (store.spec.get("grid") or {}) if a in store.errors.columns]
    examples = []
    for message in groups["error"]:
        first = store.errors[store.errors["error"].fillna("(no message)") == message].iloc[0]
        parts = [f"{a}={first[a]}" for a in axes] + [f"seed={first['seed']}"]
        examples.append(", ".join(parts))
    return groups.assign(example=examples)


def headline_sentence(gaps: pd.DataFrame, log: bool, metric_label: str, label) -> str:
    """One sentence of the finding, from the paired-gap table: the largest gap (mean over
    seeds and its 95 % interval, at which cell) and at how many cells the interval of each
    comparison excludes 0. Empty without gaps (a single mode) or on a log scale (the gap
    table is on the linear scale there; the figure says more)."""
    if gaps is None or not len(gaps) or log:
        return ""
    finite = gaps[np.isfinite(gaps["mean"].astype(float))]
    if not len(finite):
        return ""
    by = [b for b in gaps.attrs.get("by", []) if b in finite.columns]
    top = finite.loc[finite["mean"].abs().idxmax()]
    where = ", ".join(f"{label(b)} {top[b]:g}" if isinstance(top[b], (int, float, np.number))
                      else f"{label(b)} {top[b]}" for b in by)
    comparison = str(top["comparison"]).replace(" - ", " − ")
    n_cells = finite.groupby("comparison").size()
    excludes = finite[(finite["ci_low"] > 0) | (finite["ci_high"] < 0)].groupby("comparison").size()
    counts = "; ".join(f"{c.replace(' - ', ' − ')} at {int(excludes.get(c, 0))} of {int(n)}"
                       for c, n in n_cells.items())
    interval = (f" (95 % interval {top['ci_low']:+.3f} to {top['ci_high']:+.3f}, {int(top['n'])} seeds)"
                if top["n"] > 1 else " (one seed)")
    return (f"Largest paired gap in {metric_label}: {comparison} {top['mean']:+.3f}{interval}"
            + (f" at {where}" if where else "")
            + f". The gap's interval excludes 0 for {counts} grid points.")


def provenance_line(created_by) -> str:
    """Who made the store: the first launch's insitu version, git commit and libraries."""
    if not isinstance(created_by, dict):
        return ""
    v = created_by.get("versions") or {}
    git = created_by.get("git") or {}
    code = f"insitu {v.get('insitu', '?')}"
    if git.get("commit"):
        code += f" (git {git['commit'][:10]}{', with uncommitted changes' if git.get('dirty') else ''})"
    libs = ", ".join(f"{name} {v[name]}" for name in ("python", "numpy", "scipy", "ray", "pyarrow", "pandas")
                     if v.get(name))
    host = f" on {created_by['host']}" if created_by.get("host") else ""
    return f"Created by {code} with {libs}{host} (the store's first launch; launches.jsonl has every launch's)."


def _stat_text(row, log: bool, signed: bool = False) -> str:
    """``"0.940 ± 0.008"`` (mean ± half-width of the 95 % interval); log scale: geometric
    mean and interval ``"0.0123 (0.0101, 0.0150)"``, or "exact"; seeds whose value was NaN
    or infinite are counted beside it ("[2 NaN/inf]")."""
    text = _finite_stat_text(row, log, signed)
    bad = int(row.get("n_nonfinite", 0) or 0)
    if not bad:
        return text
    return f"{text} [{bad} NaN/inf]" if text else f"all {bad} NaN/inf"


def _finite_stat_text(row, log: bool, signed: bool = False) -> str:
    if log:
        if row.get("n_exact", 0) == row["n"] and row["n"] > 0:
            return "exact"
        if row["mean"] != row["mean"]:
            return ""
        return f"{row['mean']:.3g} ({row['ci_low']:.3g}, {row['ci_high']:.3g})"
    if row["mean"] != row["mean"]:
        return ""
    sign = "+" if signed else ""
    half = row["ci_half_width"]
    # three decimals for accuracies; significant digits for small gaps (of a log-scale metric,
    # say), which three decimals would show as "-0.000 ± 0.000"
    scale = max(abs(row["mean"]), abs(half) if half == half else 0.0)
    digits = ".3f" if scale == 0 or scale >= 0.01 else ".2e"
    return f"{row['mean']:{sign}{digits}}" + (f" ± {half:{digits}}" if half == half else " (one seed)")


def _wide(table: pd.DataFrame, by: list[str], column: str, cell, label) -> pd.DataFrame:
    """Grid points in rows, one column per value of ``column`` (modes, comparisons)."""
    values = list(dict.fromkeys(table[column]))
    rows = table[by].drop_duplicates() if by else pd.DataFrame(index=[0])
    out = rows.reset_index(drop=True).copy()
    for v in values:
        part = table[table[column] == v]
        texts = {tuple(r[b] for b in by): cell(r) for _, r in part.iterrows()}
        out[v] = [texts.get(tuple(r[b] for b in by), "") for _, r in out.iterrows()]
    return out.rename(columns={b: label(b) for b in by})


def _setup_line(store: LoadedStore) -> str:
    """Task, mesh, epochs, optimiser and seeds, from the rows (fixed) and the spec (grid)."""
    rows = store.rows if len(store.rows) else store.errors
    grid = store.spec.get("grid") or {}

    def value(name):
        auto = name in ("depth", "n_layers")  # 0 = the layout's or the task's default
        if name in grid and len(grid[name]) > 1:
            return f"{'/'.join(value_text(v) for v in grid[name])}"
        if name in rows.columns and len(rows) and rows[name].notna().any():
            first = rows[name].dropna().iloc[0]
            return None if auto and first == 0 else value_text(first)
        fixed = (store.spec.get("fixed") or {}).get(name)
        return None if fixed is None else value_text(fixed)

    parts = []
    if value("task"):
        parts.append(f"task {value('task')}")
    mesh = [f"{value('topology')} mesh" if value("topology") else None,
            f"{value('n_ports')} ports" if value("n_ports") else None,
            f"{value('n_layers')} layers" if value("n_layers") else None,
            f"depth {value('depth')}" if value("depth") else None]
    if any(mesh):
        parts.append(", ".join(m for m in mesh if m))
    train = [f"{value('epochs')} epochs" if value("epochs") else None,
             value("optimizer"), f"lr {value('lr')}" if value("lr") else None,
             f"batch {value('batch_size')}" if value("batch_size") else None]
    if any(train):
        parts.append(" ".join(t for t in train if t))
    modes = store.params.mode_order(rows["mode"].dropna().unique()) if "mode" in rows else []
    if modes:
        parts.append("modes " + ", ".join(modes))
    fixed_errors = _fixed_errors(store, grid, value)
    if fixed_errors:
        parts.append("fixed errors " + ", ".join(fixed_errors))
    parts.append(f"{len(spec_seeds(store.spec))} seeds")
    return "; ".join(parts)


def _fixed_errors(store: LoadedStore, grid: dict, value) -> list[str]:
    """The error settings that are not axes and not at the experiment's default, labelled
    with their units: the chip every cell shares."""
    defaults = store.meta.get("defaults") or {}
    out = []
    for name in (store.meta.get("params") or {}):
        if not store.params.is_error(name) or (name in grid and len(grid[name]) > 1):
            continue
        shown = value(name)
        if shown is None or name not in defaults or shown == value_text(defaults[name]):
            continue
        out.append(f"{store.params.label(name)} {shown}")
    return out


CONTRAST_AXES = 2  # error axes given a contrasts table in the report, at most


def _contrasts_html(plan: Plan) -> list[str]:
    """The report's contrasts, chosen from the grid: along each error axis (its error-free
    value against its largest), per mode, and how the first paired gap between modes changes
    there (difference in differences); paired where the axis shares chips, Welch otherwise."""
    from insitu.analysis.contrasts import axis_contrast, difference_in_differences

    store, metric, label = plan.store, plan.metric, plan.label
    rows = plan.rows
    if plan.params.is_log(metric):
        return []  # contrasts of a log-scale metric are read from the figures and summary
    axes = [a for a in plan.params.error_axes(plan.axes) if rows[a].nunique() > 1][:CONTRAST_AXES]
    if not axes:
        return []
    tables = []
    modes = plan.params.mode_order(rows["mode"].dropna().unique())
    for axis in axes:
        levels = plan.params.error_order(axis, rows[axis].unique())
        free, worst = levels[0], levels[-1]
        try:
            tables.append(axis_contrast(rows, axis, free, worst, metric, plan.user_pool, params=store.params))
            if len(modes) >= 2:
                tables.append(difference_in_differences(rows, modes[1], modes[0], axis, free, worst, metric,
                                                        plan.user_pool, params=store.params))
        except AnalysisInputError:
            continue  # a grid this contrast cannot read (an axis not crossed with the others)
    tables = [t for t in tables if len(t)]
    if not tables:
        return []
    out = [f"<h2>Contrasts: {html.escape(label(metric))}</h2>",
           '<p class="muted">Each error axis from its error-free value to its largest, per mode, '
           "and how the paired gap between the first two modes changes there (difference in "
           "differences); estimate and 95 % interval over chips, paired where the axis shares "
           "chips (same seed, same chip), Welch otherwise (the design column says which); * marks "
           "an interval that excludes 0, not corrected for multiple comparisons "
           "(<code>insitu compare --holm</code> corrects).</p>"]
    for table in tables:
        shown = table.copy()
        shown["estimate (95 % CI)"] = [
            f"{r.estimate:+.3f} ({r.ci_low:+.3f}, {r.ci_high:+.3f})"
            + (" *" if (r.ci_low > 0 or r.ci_high < 0) else "") for r in shown.itertuples()]
        keep = [c for c in shown.columns if c not in ("metric", "estimate", "ci_low", "ci_high", "df",
                                                      "p", "n_nonfinite", "n_reference")]
        shown = shown[keep].rename(columns={c: label(c) for c in keep if c in rows.columns})
        out.append(_table(shown))
    return out


def _spec_toml(store: LoadedStore) -> str:
    path = store.path / "spec.toml"
    return path.read_text(encoding="utf-8") if path.is_file() else spec_toml(store.spec)


def render_report(plan: Plan, built: Sequence[tuple[FigurePlan, Figure]],
                  notes: Sequence[str] = ()) -> str:
    """The report page of a :class:`~insitu.analysis.plan.Plan` as one HTML string (its
    figures drawn by :meth:`~insitu.analysis.plan.Plan.draw`).

    The answer comes first: the headline figure, the paired-gap table, the tolerances, a
    one-line setup; then the other figures, the per-mode summary, bookkeeping and the spec.
    """
    store, where = plan.store, plan.where
    spec = store.spec
    label = plan.label
    title = f"{spec.get('name') or store.path.name}: {store.meta.get('experiment', '')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="muted">insitu analysis report, generated '
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}"
        + (f"; rows where <code>{html.escape(where)}</code>" if where else "") + "</p>",
    ]
    rows, metric = plan.rows, plan.metric
    gaps = plan.gap_table() if len(rows) else None
    if gaps is not None:
        headline = headline_sentence(gaps, plan.params.is_log(metric), label(metric), label)
        if headline:
            parts.append(f'<p class="headline">{html.escape(headline)}</p>')
    built = list(built)
    if built:
        parts.append(_figure_html(*built[0]))
    else:
        parts.append('<p class="muted">No figure could be drawn from this store.</p>')

    if gaps is not None:
        log = plan.params.is_log(metric)
        by = gaps.attrs.get("by", [])
        pooled_line = plan.pooled_line(gaps.attrs.get("pooled", []))
        if len(gaps):
            parts.append(f"<h2>Paired gaps: {html.escape(label(metric))}</h2>")
            parts.append('<p class="muted">Per trial (same grid point, seed and sampled device), '
                         "then the mean ± the half-width of its 95 % Student t interval over seeds; "
                         "* marks an interval that excludes 0."
                         + (f" {html.escape(pooled_line)}, averaged per seed." if pooled_line else "")
                         + "</p>")

            def gap_cell(r):
                text = _stat_text(r, False, signed=True)
                excludes = r["ci_low"] > 0 or r["ci_high"] < 0
                return text + (" *" if excludes and r["n"] > 1 else "")

            left_out = nonfinite_note(gaps, by, f"the gap in {label(metric)}", label)
            if left_out:
                parts.append(f'<p class="err">{html.escape(left_out[0].upper() + left_out[1:])}.</p>')
            gaps = gaps.assign(comparison=gaps["comparison"].str.replace(" - ", " − ")
                               + f": {label(metric)} gap")
            parts.append(_table(_wide(gaps, by, "comparison", gap_cell, label)))
        if plan.tolerance_axis() is not None:
            try:
                table = plan.tolerance_table()
            except AnalysisInputError as exc:
                parts.append(f'<h2>Tolerances</h2><p class="muted">{html.escape(str(exc))}</p>')
            else:
                def tolerance_cell(r):
                    tol, ci = tolerance_text(r)
                    return tol if not r["reached"] and ci.startswith("(>") else f"{tol} {ci}"

                parts.append("<h2>Tolerances</h2>")
                parts.append(f'<p class="muted">{html.escape(tolerance_header(table))}.</p>')
                parts.append(_table(_wide(table, tolerance_axes(table), "mode", tolerance_cell, label)))
    if len(rows):
        parts += _contrasts_html(plan)
    parts.append(f"<p><b>Setup:</b> {html.escape(_setup_line(store))}.</p>")

    if len(built) > 1:
        parts.append("<h2>Figures</h2>")
        for figure_plan, fig in built[1:]:
            parts.append(_figure_html(figure_plan, fig))
    if notes:
        parts.append("<ul>" + "".join(f'<li class="muted">{html.escape(n)}</li>' for n in notes) + "</ul>")

    if len(rows):
        table = plan.summary_table()
        by = table.attrs["by"]
        pooled_line = plan.pooled_line(table.attrs["pooled"])
        parts.append(f"<h2>Summary: {html.escape(label(metric))}</h2>")
        parts.append('<p class="muted">'
                     + ("Per grid point and mode: geometric mean over seeds and the 95 % t interval "
                        "of the log10 values, mapped back; exact = every seed below 1e-12."
                        if log else
                        "Per grid point and mode: mean over seeds ± the half-width of the 95 % "
                        "Student t interval mean ± t<sub>0.975, n−1</sub>·sd/√n.")
                     + (" Columns “drop” give the mean loss against the error-free cell: "
                        + ("paired over chips (shared along the error axes)."
                           if set(table["drop_design"].dropna()) == {"paired"} else
                           "unpaired (Welch), each cell having run on chips of its own.")
                        if "drop" in table.columns else "")
                     + " The test set is fixed: intervals are over chips, initial phases and data orders."
                     + (f" {html.escape(pooled_line)}, averaged per seed." if pooled_line else "")
                     + "</p>")
        left_out = nonfinite_note(table, by, label(metric), label)
        if left_out:
            parts.append(f'<p class="err">{html.escape(left_out[0].upper() + left_out[1:])}.</p>')
        wide = _wide(table, by, "mode", lambda r: _stat_text(r, log), label)
        if "drop" in table.columns:
            drops = table.assign(mean=table["drop"], ci_half_width=(table["drop_ci_high"] - table["drop_ci_low"]) / 2)
            drops = drops.assign(mode="drop " + drops["mode"].astype(str))
            extra = _wide(drops, by, "mode", lambda r: _stat_text(r, False, signed=True), label)
            wide = pd.concat([wide, extra.drop(columns=[label(b) for b in by])], axis=1)
        parts.append(_table(wide))

    parts.append("<h2>Bookkeeping</h2>")
    made_by = provenance_line(store.meta.get("created_by"))
    if made_by:
        parts.append(f'<p class="muted">{html.escape(made_by)}</p>')
    parts.append(_table(_overview(store)))
    if store.n_trials_error:
        parts.append(f'<p class="err">{store.n_trials_error} trial(s) ended in an error; '
                     "messages grouped (most frequent first):</p>")
        parts.append(_table(_error_groups(store)))
    else:
        parts.append('<p class="muted">No trial ended in an error.</p>')

    parts.append("<h2>Spec</h2>")
    parts.append(f"<pre>{html.escape(_spec_toml(store))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
