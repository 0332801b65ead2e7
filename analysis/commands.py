"""The entry points the ``insitu`` CLI calls: ``summary``, ``figures`` and ``report``.

Each validates its input completely before it writes anything. A path that is not a store,
a store without results, an axis that does not exist or an output path that cannot be used
raises :class:`analysis.errors.AnalysisInputError` with one line naming the problem; the CLI
prints it and exits with status 2.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from analysis.axes import label
from analysis.errors import AnalysisInputError
from analysis.load import LoadedStore, read_store
from analysis.plan import build_figures
from analysis.report import render_report
from analysis.figures import save_figure
from analysis.summary import default_metric, format_table, gap_summary, summarize

__all__ = ["figures_command", "report_command", "summary_command"]


def _open(store_dir: str) -> LoadedStore:
    store = read_store(store_dir)
    if store.is_empty:
        raise AnalysisInputError(f"store {store.path} has no results yet (no rows in parts/)")
    return store


def _check_axes(store: LoadedStore, by: Sequence[str]) -> list[str]:
    known = [*store.params, "seed", "mode"]
    for name in by:
        if name not in known or name not in store.rows.columns:
            raise AnalysisInputError(
                f"unknown axis {name!r}; this store's axes are: {', '.join(known)}"
            )
    return [b for b in dict.fromkeys(by) if b != "mode"]


def summary_command(store_dir: str, by: list[str] | None) -> str:
    """The aggregated table (headline metric per grid point and mode), as terminal text.

    ``by`` defaults to the grid axes that vary. The text also gives the paired gaps and the
    counts of finished, failed and superseded trials, with error messages grouped.
    """
    store = _open(store_dir)
    axes = store.varying_axes() if by is None else _check_axes(store, by)
    meta, spec = store.meta, store.spec
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
    if len(store.rows):
        metric = default_metric(store.rows, meta.get("experiment"))
        table = summarize(store.rows, by=axes, metrics=[metric]).drop(columns="metric")
        lines += ["", f"{label(metric)} ({metric}) over seeds: mean, sd, 95 % Student t interval",
                  format_table(table)]
        gaps = gap_summary(store.rows, metric, by=axes)
        if len(gaps):
            lines += ["", f"paired gaps in {metric} (same grid point and seed)",
                      format_table(gaps.drop(columns="metric"))]
    else:
        lines += ["", "no successful rows yet"]
    errors = store.error_summary()
    if len(errors):
        lines += ["", "errors (trials, rows, message):"]
        lines += [f"  {t:>5} {r:>5}  {m}" for m, t, r in errors[["error", "trials", "rows"]].head(20).itertuples(index=False)]
        if len(errors) > 20:
            lines.append(f"  ... and {len(errors) - 20} more distinct messages")
    return "\n".join(lines)


def _usable_dir(path: pathlib.Path) -> None:
    if path.exists() and not path.is_dir():
        raise AnalysisInputError(f"output directory is a file: {path}")
    parent = next((p for p in [path, *path.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise AnalysisInputError(f"cannot create output directory under a file: {parent}")


def figures_command(store_dir: str, out_dir: str | None) -> list[pathlib.Path]:
    """Write every figure the store supports (PNG and PDF); default ``<store>/figures``.

    All figures are drawn in memory first, so an error leaves nothing half-written.
    """
    store = _open(store_dir)
    if not len(store.rows):
        raise AnalysisInputError(
            f"store {store.path} has no successful trials to plot "
            f"({store.n_trials_error} trials ended in an error; see `insitu summary`)"
        )
    out = pathlib.Path(out_dir) if out_dir is not None else store.path / "figures"
    _usable_dir(out)
    built, _notes = build_figures(store)
    paths: list[pathlib.Path] = []
    for plan, fig in built:
        paths += save_figure(fig, out / plan.name)
    return paths


def report_command(store_dir: str, out_path: str | None) -> pathlib.Path:
    """Write one self-contained HTML report; default ``<store>/report.html``.

    An existing directory as ``out_path`` receives ``report.html`` inside it.
    """
    store = _open(store_dir)
    out = pathlib.Path(out_path) if out_path is not None else store.path / "report.html"
    if out.is_dir():
        out = out / "report.html"
    _usable_dir(out.parent)
    built, notes = build_figures(store)
    page = render_report(store, built, notes)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
