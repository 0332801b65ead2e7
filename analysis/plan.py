"""The plan of a store's analysis, built once: what is shown and how, for every output.

:class:`Plan` decides, from the store alone, the metric (the headline one unless named),
the size substitution (tasks of one family drawn by their ports), the axes that vary and
those a user pooled, the figures (:class:`FigurePlan`: a file stem, a caption, a deferred
builder) and the tables (summary, paired gaps, tolerance). ``insitu figures`` draws its
figures, ``insitu report`` renders its figures and tables into one page, and ``insitu
summary`` prints its tables: one plan rendered three ways.

Figures, per experiment:

* ``classify``: test accuracy against each varying numeric axis (error axes first, at most
  :data:`MAX_X_AXES`), faceted by the next varying axis and, in rows, the one after; the
  paired gap of every mode against digital as a heatmap over the first two axes (one panel
  per value of a third); the tolerance along the first error axis (5 points of the metric)
  against the next axis; the measured gradient error during training against the first
  axis; learning curves grouped by the first axis; decision boundaries of one seed where
  grids were stored.
* ``gradient``: gradient error against each varying numeric axis (loss imbalance, tap noise
  and batch size first), per protocol, faceted by the next axis.
* when no numeric axis varies (only seeds, or only a categorical axis such as ``task``), a
  per-mode interval plot replaces the line plots, faceted by the categorical axis if any.

Every figure shows every axis that varies, or names in its title and caption the ones it
pools (averaged per seed). A figure that cannot be drawn from the rows (no curves, no
pairs) is skipped with a note.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from insitu.analysis import figures
from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.figure_parts import FEW_VALUES, add_foot, foot_text
from insitu.analysis.grouping import has_items, has_values, pooled_text, value_text
from insitu.analysis.load import LoadedStore
from insitu.analysis.scaling import SIZE_COLUMN, size_axis
from insitu.analysis.summary import default_metric, gap_summary, reporting_modes, summarize
from insitu.analysis.tolerance import tolerance
from insitu.analysis.vocabulary import Vocabulary

# The drop (in the metric's units) of the tolerance figure and table: 5 points of accuracy.
TOLERANCE_DROP = 0.05

__all__ = ["FigurePlan", "MAX_FACET_LEVELS", "MAX_X_AXES", "Plan", "TOLERANCE_DROP"]

MAX_X_AXES = 4
MAX_FACET_LEVELS = 12  # an axis with more levels is pooled rather than given a panel each
# Preferred x axes of the gradient experiment (the paper's Fig. 2D-F and S4G-H).
_GRADIENT_X = ("loss_imbalance_db", "tap_noise", "batch_size")


@dataclass
class FigurePlan:
    """One figure to draw: a file stem, a caption for the report, and a deferred builder."""

    name: str
    caption: str
    build: Callable[[], Figure] = field(repr=False)
    metric: str | None = None  # the metric drawn, whose NaN or infinite values are counted


def _numeric(frame: pd.DataFrame, name: str) -> bool:
    col = frame[name]
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _split(facetable: list[str], axes: list[str], shown: list[str], n: int) -> tuple[list[str], list[str]]:
    """The next ``n`` panel axes after ``shown``, and the axes left to pool (named)."""
    panels = [a for a in facetable if a not in shown][:n]
    pooled = [a for a in axes if a not in (*shown, *panels)]
    return panels, pooled


@dataclass
class Plan:
    """What every output of one store shows (module docstring); :meth:`build` makes it."""

    store: LoadedStore
    rows: pd.DataFrame  # the store's successful rows, tasks replaced by their size if one-to-one
    params: Vocabulary  # the declared parameters (and their description), likewise
    replaced: str | None  # the parameter the size column stands for (``task``), if any
    experiment: str
    axes: list[str]  # varying axes, not pooled by the user, in display order
    xs: list[str]  # the numeric ones used as x axes
    categorical: list[str]
    facetable: list[str]  # axes with few enough values for a panel each
    user_pool: list[str]
    metric: str | None  # None: no successful rows
    where: str | None = None
    notes: list[str] = field(default_factory=list)
    figures: list[FigurePlan] = field(default_factory=list)

    @classmethod
    def build(cls, store: LoadedStore, metric: str | None = None, pool: Sequence[str] = (),
              where: str | None = None, by: Sequence[str] | None = None) -> "Plan":
        """The plan of ``store`` (already filtered by ``where``, which is only recorded).

        ``metric`` replaces the headline metric; ``pool`` names axes to average over (per
        seed) everywhere; ``by`` (a table's explicit grouping) keeps a parameter it names
        instead of substituting its size. Never raises for data: what cannot be drawn is a
        note.
        """
        rows, params = store.rows, store.params
        experiment = str(store.meta.get("experiment") or store.spec.get("experiment") or "")
        notes: list[str] = []
        if not len(rows):
            return cls(store, rows, params, None, experiment, [], [], [], [], [], None, where,
                       ["no successful rows: nothing to plot"])
        user_pool = [a for a in dict.fromkeys(pool) if a in rows.columns and rows[a].nunique(dropna=False) > 1]
        axes = [a for a in params.order_axes(store.varying_axes()) if a not in user_pool]
        # tasks of different sizes (digits4 ... digits64): shown by their ports, a numeric
        # axis put first, so outputs order them by size and draw the tolerance against it
        replaced = None
        try:
            sized, sized_params, replaced = size_axis(rows, params)
        except AnalysisInputError as exc:
            notes.append(f"tasks are not drawn by size: {exc}")
        if replaced is not None and replaced in axes and replaced not in (by or ()):
            rows, params = sized, sized_params
            axes = [SIZE_COLUMN, *(a for a in axes if a != replaced)]
        else:
            replaced = None
        numeric = [a for a in axes if _numeric(rows, a)]
        categorical = [a for a in axes if a not in numeric]
        if experiment == "gradient":
            numeric = [a for a in _GRADIENT_X if a in numeric] + [a for a in numeric if a not in _GRADIENT_X]
        xs = numeric[:MAX_X_AXES]
        if len(numeric) > MAX_X_AXES:
            notes.append(f"only the first {MAX_X_AXES} varying numeric axes are used as x axes")
        facetable = [a for a in axes if rows[a].nunique(dropna=False) <= MAX_FACET_LEVELS]
        plan = cls(store, rows, params, replaced, experiment, axes, xs, categorical, facetable,
                   user_pool, metric or default_metric(rows, params, experiment), where, notes)
        for planner in FIGURES.get(experiment, FIGURES["classify"]):
            plan.figures += planner(plan)
        for figure in plan.figures:  # a value not drawn is said in the caption and the figure
            left_out = plan.nonfinite_text(figure.metric)
            if left_out:
                figure.caption += f" {left_out}."
        return plan

    def nonfinite_text(self, metric: str | None) -> str:
        """``"3 seed values of test accuracy are NaN or infinite ..."`` for the cells whose
        seeds gave a non-finite value of ``metric`` (modes that never report it aside)."""
        if metric is None or metric not in self.rows.columns:
            return ""
        values = pd.to_numeric(self.rows[metric], errors="coerce")
        reporting = self.rows["mode"].isin(reporting_modes(self.rows, metric))
        bad = self.rows[reporting & ~np.isfinite(values.to_numpy(dtype=float))]
        if not len(bad):
            return ""
        cells = bad.groupby(["mode", *[a for a in self.axes if a in bad.columns]], sort=True,
                            dropna=False).size()
        named = []
        for cell, count in list(cells.items())[:4]:
            cell = cell if isinstance(cell, tuple) else (cell,)
            at = ", ".join(f"{self.label(a)} = {value_text(v)}" for a, v in zip(self.axes, cell[1:]))
            named.append(f"{cell[0]}{' at ' + at if at else ''}: {count}")
        more = f" and {len(cells) - 4} more cells" if len(cells) > 4 else ""
        return (f"{len(bad)} value{'s' if len(bad) != 1 else ''} of {self.label(metric)} NaN or "
                f"infinite (a diverged trial), left out ({'; '.join(named)}{more})")

    # --------------------------------------------------------------------------- words
    def label(self, name: str) -> str:
        return self.params.label(name)

    def pooled_line(self, pooled: Sequence[str]) -> str:
        """``"pooled over ..."`` for the user's pooled axes and ``pooled``, or ``""``."""
        return pooled_text(self.rows, [*self.user_pool, *pooled], self.params)

    def pooled_note(self, pooled: Sequence[str]) -> str:
        text = self.pooled_line(pooled)
        return f" {text[0].upper()}{text[1:]}, averaged per seed." if text else ""

    @property
    def gap_metric(self) -> str | None:
        """The metric of paired gaps and tolerances: the headline, or, when that is a log
        metric, the test accuracy if the rows hold it."""
        if self.metric is None or not self.params.is_log(self.metric):
            return self.metric
        return "test_accuracy" if "test_accuracy" in self.rows.columns else None

    # -------------------------------------------------------------------------- tables
    def summary_table(self, by: Sequence[str] | None = None) -> pd.DataFrame:
        """Per grid point and mode, the metric over seeds with its drop against the
        error-free cell (:func:`insitu.analysis.summary.summarize`)."""
        return summarize(self.rows, by=by, metrics=[self.metric], pool=self.user_pool, drop=True,
                         params=self.params)

    def gap_table(self, by: Sequence[str] | None = None) -> pd.DataFrame:
        """The paired gaps of every mode against its reference, on the same chips."""
        return gap_summary(self.rows, self.metric, by=by, pool=self.user_pool, params=self.params)

    def tolerance_axis(self) -> str | None:
        """The error axis of the tolerance table: the first numeric error axis that varies."""
        errs = [a for a in self.params.error_axes(self.axes) if _numeric(self.rows, a)]
        return errs[0] if errs and self.metric is not None and not self.params.is_log(self.metric) else None

    def tolerance_table(self) -> pd.DataFrame:
        """The tolerance of every mode along :meth:`tolerance_axis`."""
        return tolerance(self.rows, self.tolerance_axis(), TOLERANCE_DROP, self.metric,
                         pool=self.user_pool, params=self.params)

    # ------------------------------------------------------------------------- figures
    def draw(self) -> tuple[list[tuple[FigurePlan, Figure]], list[str]]:
        """Draw every planned figure in memory; one the data cannot support becomes a note.

        What a figure says in its foot (modes whose means coincide, exact values) is added to
        the caption of the plan returned with it (the planned one is left as it is)."""
        built, notes = [], list(self.notes)
        for plan in self.figures:
            try:
                fig = plan.build()
            except AnalysisInputError as exc:
                notes.append(f"skipped {plan.name}: {exc}")
                continue
            said = foot_text(fig)  # what the figure found (modes coinciding, exact values)
            if said:
                plan = replace(plan, caption=f"{plan.caption} {said}")
            # a value left out is said in the foot too (the caption says it already)
            add_foot(fig, self.nonfinite_text(plan.metric), warn=True)
            built.append((plan, fig))
        return built, notes


def _headline(c: Plan) -> list[FigurePlan]:
    """The headline metric against each varying axis (or per mode when nothing numeric varies)."""
    rows, metric, plans = c.rows, c.metric, []
    for x in c.xs:
        (panels, pooled) = _split(c.facetable, c.axes, [x], 2)
        facet = panels[0] if panels else None
        row = panels[1] if len(panels) > 1 else None
        stem = f"{metric}_vs_{x}" + (f"_by_{facet}" if facet else "") + (f"_{row}" if row else "")
        if c.params.is_log(metric):
            build = _bind(figures.gradient_error, rows, x, facet=facet, row=row, metric=metric,
                          pool=[*c.user_pool, *pooled], params=c.params)
            what = (f"{c.label(metric)} against {c.label(x)} per {'protocol' if c.experiment == 'gradient' else 'mode'}: "
                    f"geometric mean over seeds with 95 % log-scale t {_bands(rows, x)}")
        else:
            build = _bind(figures.metric_vs_axis, rows, x, facet=facet, row=row, metric=metric,
                          pool=[*c.user_pool, *pooled], params=c.params)
            what = (f"{c.label(metric)} against {c.label(x)} per training mode; mean over seeds with "
                    f"95 % t {_bands(rows, x)}")
        plans.append(FigurePlan(stem, f"{what}.{c.pooled_note(pooled)}", build, metric))
    if not c.xs:
        facet = next((a for a in c.categorical if a in c.facetable), None)
        pooled = [*c.user_pool, *[a for a in c.axes if a != facet]]
        plans.append(FigurePlan(
            f"{metric}_by_mode" + (f"_by_{facet}" if facet else ""),
            f"{c.label(metric)} per mode: mean over seeds with 95 % t interval, one dot per seed."
            + c.pooled_note([a for a in pooled if a not in c.user_pool]),
            _bind(figures.metric_by_mode, rows, metric, facet=facet, pool=pooled, params=c.params),
            metric))
    return plans


def _gap_heatmaps(c: Plan) -> list[FigurePlan]:
    """Paired gaps over two axes, one heatmap per value of a third."""
    rows, gap_metric, plans = c.rows, c.gap_metric, []
    comparisons = c.params.default_comparisons(rows["mode"].dropna().unique())
    if not comparisons or gap_metric is None:
        return plans
    # with only categorical axes varying (e.g. task) the heatmap is drawn over them
    hx = c.xs[0] if c.xs else (c.axes[0] if c.axes else None)
    if hx is None:
        c.notes.append("no axis varies: the paired gap is in the summary table only")
        return plans
    panels, pooled = _split(c.facetable, c.axes, [hx], 2)
    hy = panels[0] if panels else None
    hf = panels[1] if len(panels) > 1 else None
    for mode, reference in comparisons:
        stem = (f"gap_{mode}_minus_{reference}_{hx}" + (f"_x_{hy}" if hy else "")
                + (f"_by_{hf}" if hf else ""))
        over = c.label(hx) + (f" × {c.label(hy)}" if hy else "") + (f", one panel per {c.label(hf)}" if hf else "")
        plans.append(FigurePlan(
            stem,
            f"Paired {c.label(gap_metric)} gap {mode} − {reference} (same device and seed), "
            f"mean over seeds, over {over}.{c.pooled_note(pooled)}",
            _bind(figures.gap_heatmap, rows, hx, hy, metric=gap_metric, mode=mode,
                  reference=reference, facet=hf, pool=[*c.user_pool, *pooled], params=c.params),
            gap_metric))
    return plans


def _tolerance_figure(c: Plan) -> list[FigurePlan]:
    """Tolerance along the first error axis, against a second axis."""
    rows, gap_metric = c.rows, c.gap_metric
    err = next((a for a in c.xs if c.params.is_error(a)), None)
    if err is None or gap_metric is None:
        return []
    (panels, pooled) = _split(c.facetable, c.axes, [err], 2)
    numeric_panels = [a for a in panels if _numeric(rows, a)] + [a for a in panels if not _numeric(rows, a)]
    if not numeric_panels:
        return []
    tx = numeric_panels[0]
    if not _numeric(rows, tx):  # its x axis is drawn to scale (a task is not a number)
        c.notes.append(f"no tolerance figure: the tolerance varies with {c.label(tx)} only, not a number")
        return []
    tf = numeric_panels[1] if len(numeric_panels) > 1 else None
    pool_t = [*c.user_pool, *pooled]
    return [FigurePlan(
        f"tolerance_{err}_vs_{tx}" + (f"_by_{tf}" if tf else ""),
        f"{c.label(err)} at which {c.label(gap_metric)} falls {TOLERANCE_DROP:g} below its value "
        f"at the error-free end, per training mode, against {c.label(tx)}; 95 % bootstrap "
        f"intervals over seeds (resampled jointly for all modes); △ not reached."
        + c.pooled_note(pooled),
        lambda: figures.tolerance_vs_axis(
            tolerance(rows, err, TOLERANCE_DROP, gap_metric, by=shown(tx, tf), pool=pool_t, params=c.params),
            tx, facet=tf, params=c.params), gap_metric)]


def _training_gradient_error(c: Plan) -> list[FigurePlan]:
    """Gradient error measured during training (in situ modes only)."""
    rows = c.rows
    x = c.xs[0] if c.xs else None
    measured = rows[rows["mode"] != "digital"] if "mode" in rows else rows
    if x is None or not has_values(measured, "grad_error_mean") or c.metric == "grad_error_mean":
        return []
    (panels, pooled) = _split(c.facetable, c.axes, [x], 2)
    facet = panels[0] if panels else None
    row = panels[1] if len(panels) > 1 else None
    return [FigurePlan(
        f"training_grad_error_vs_{x}" + (f"_by_{facet}" if facet else "") + (f"_{row}" if row else ""),
        f"Mean gradient error 1 − cos over the training steps against {c.label(x)}, per in situ "
        f"mode: geometric mean over seeds with 95 % log-scale t {_bands(measured, x)}; exact "
        "values drawn at the axis's floor and named."
        + c.pooled_note(pooled),
        _bind(figures.gradient_error, measured, x, facet=facet, row=row, metric="grad_error_mean",
              pool=[*c.user_pool, *pooled], params=c.params), "grad_error_mean")]


def _learning_curves(c: Plan) -> list[FigurePlan]:
    """Learning curves, grouped by the first numeric axis, else by a categorical one (a task)."""
    rows = c.rows
    if not (has_values(rows, "epoch") and has_values(rows, "curve_test_accuracy")):
        c.notes.append("no learning curves stored (columns epoch / curve_test_accuracy)")
        return []
    group = c.xs[0] if c.xs else next(iter(c.facetable), None)
    (panels, pooled) = _split(c.facetable, c.axes, shown(group), 1)
    row = panels[0] if panels else None
    stem = "learning_curves" + (f"_by_{group}" if group else "") + (f"_{row}" if row else "")
    return [FigurePlan(
        stem,
        "Test error (1 − accuracy) against epoch per training mode"
        + (f", one panel per {c.label(group)}" if group else "")
        + (f" and row per {c.label(row)}" if row else "")
        + "; mean over seeds with 95 % t bands." + c.pooled_note(pooled),
        _bind(figures.learning_curves, rows, group, row=row, pool=[*c.user_pool, *pooled], params=c.params))]


def _decision_boundaries(c: Plan) -> list[FigurePlan]:
    """Decision boundaries for 2-D tasks, one seed, at one setting of the other axes."""
    rows = c.rows
    if not has_values(rows, "grid_prob"):
        return []
    grids = rows[rows["grid_prob"].map(has_items)]
    where = {}
    first_error = next((a for a in c.axes if c.params.is_error(a)), None)
    for a in [*c.axes, *c.user_pool]:
        if a == "task":
            continue
        values = sorted(grids[a].dropna().unique())
        if values:
            where[a] = values[-1] if a == first_error else values[0]
    seed = int(grids["seed"].min())
    at = ", ".join(f"{c.label(k)} = {value_text(v)}" for k, v in where.items())
    return [FigurePlan(
        f"decision_boundaries_seed{seed}",
        f"Decision boundaries (P(class 1), black line at 0.5) and test points of one device, "
        f"seed {seed}" + (f", at {at}" if at else "") + ".",
        _bind(figures.decision_boundaries, rows, seed=seed, where=where, params=c.params))]


# The figures of each experiment, in order; an experiment not listed gets classify's.
FIGURES: dict[str, tuple[Callable[[Plan], list[FigurePlan]], ...]] = {
    "classify": (_headline, _gap_heatmaps, _tolerance_figure, _training_gradient_error,
                 _learning_curves, _decision_boundaries),
    "gradient": (_headline,),
}


def _bands(rows: pd.DataFrame, x: str) -> str:
    """How a figure against ``x`` draws its intervals (see :func:`figure_parts.facet_lines`)."""
    return "error bars, modes side by side" if rows[x].nunique() <= FEW_VALUES else "bands"


def shown(*names):
    return [n for n in dict.fromkeys(names) if n is not None]


def _bind(func, *args, **kwargs) -> Callable[[], Figure]:
    return lambda: func(*args, **kwargs)
