"""A self-contained HTML report of one store: one file that opens in a browser, no server.

Figures are embedded as base64 PNG, tables are plain HTML (``DataFrame.to_html``, which
needs no template engine), and the spec is included verbatim, so the file can be mailed or
archived next to a paper draft. The page shows what a reader must know before trusting a
figure: how many trials finished, how many failed and why (messages grouped), how many rows
a resumed launch superseded.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from datetime import datetime, timezone

import pandas as pd
from matplotlib.figure import Figure

from analysis.axes import label, spec_seeds
from analysis.figures import figure_png
from analysis.load import LoadedStore
from analysis.plan import FigurePlan
from analysis.summary import default_metric, gap_summary, summarize

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
"""


def _table(frame: pd.DataFrame) -> str:
    if not len(frame):
        return '<p class="muted">(no rows)</p>'
    return frame.to_html(index=False, border=0, na_rep="", float_format=lambda v: f"{v:.4g}",
                         escape=True)


def _img(fig: Figure) -> str:
    data = base64.b64encode(figure_png(fig)).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _overview(store: LoadedStore) -> pd.DataFrame:
    spec, meta = store.spec, store.meta
    axes = store.varying_axes()
    items = [
        ("store", str(store.path)),
        ("experiment", f"{meta.get('experiment', '')} (version {meta.get('experiment_version', '')})"),
        ("created", str(meta.get("created", ""))),
        ("launches", str(len(store.launches))),
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


def render_report(
    store: LoadedStore,
    built: Sequence[tuple[FigurePlan, Figure]],
    notes: Sequence[str] = (),
) -> str:
    """The report page as one HTML string (figures drawn by :func:`analysis.plan.build_figures`)."""
    spec = store.spec
    title = f"{spec.get('name') or store.path.name}: {store.meta.get('experiment', '')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="muted">insitu analysis report, generated '
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</p>",
        "<h2>Overview</h2>",
        _table(_overview(store)),
    ]

    parts.append("<h2>Errors</h2>")
    if store.n_trials_error:
        parts.append(f'<p class="err">{store.n_trials_error} trial(s) ended in an error; '
                     "messages grouped (most frequent first):</p>")
        parts.append(_table(_error_groups(store)))
    else:
        parts.append('<p class="muted">No trial ended in an error.</p>')

    rows = store.rows
    if len(rows):
        metric = default_metric(rows, store.meta.get("experiment"))
        axes = store.varying_axes()
        parts.append(f"<h2>Summary: {html.escape(label(metric))}</h2>")
        parts.append('<p class="muted">Per grid point and mode over seeds: mean, sd and the 95 % '
                     "Student t interval mean ± t<sub>0.975, n−1</sub>·sd/√n.</p>")
        parts.append(_table(summarize(rows, by=axes, metrics=[metric]).drop(columns="metric")))
        gaps = gap_summary(rows, metric, by=axes)
        if len(gaps):
            parts.append("<h2>Paired gaps</h2>")
            parts.append('<p class="muted">Per trial (same grid point, seed and sampled device), '
                         "then mean and 95 % t interval over the pairs.</p>")
            parts.append(_table(gaps.drop(columns="metric")))

    parts.append("<h2>Figures</h2>")
    if not built:
        parts.append('<p class="muted">No figure could be drawn from this store.</p>')
    for plan, fig in built:
        parts.append(f'<figure id="{html.escape(plan.name)}">{_img(fig)}'
                     f"<figcaption><b>{html.escape(plan.name)}</b>: {html.escape(plan.caption)}"
                     "</figcaption></figure>")
    if notes:
        parts.append("<ul>" + "".join(f'<li class="muted">{html.escape(n)}</li>' for n in notes) + "</ul>")

    parts.append("<h2>Spec</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(spec, indent=2, sort_keys=True, default=str))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
