"""Paper-ready figures (issue 24): no mode hidden under another, points with error bars on
an axis of two or three values, log axes that do not reach down to exact values, and no
text over text or data in the figures a real (small) store's plan draws."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.transforms import Bbox

from insitu.analysis import figures as F
from insitu.analysis.load import load, load_params, read_store
from insitu.analysis.plan import Plan


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _foot(fig) -> str:
    return " ".join(fig.get_supxlabel().split())


def _twin_store(make_store, grid, seeds=(0, 1, 2)):
    """insitu and analog report the very same accuracy (analog's update reduced to
    insitu's), digital a lower one; seeded."""
    store = make_store("twins", grid=grid, seeds=seeds)
    rng = np.random.default_rng(7)
    rows = []
    for p, s in store.points():
        shared = 0.93 - 0.2 * p["bs_error"] + 0.01 * rng.standard_normal()
        digital = 0.93 - 1.5 * p["bs_error"] + 0.01 * rng.standard_normal()
        for mode, value in (("digital", digital), ("insitu", shared), ("analog", shared)):
            rows.append(store.row(p, s, mode, {"test_accuracy": value}))
    store.write_part(rows, "L1")
    return store


def _log_store(make_store, values, seeds):
    """A gradient store over loss imbalance with the given ``values(loss, seed, mode)``."""
    store = make_store("grad", "gradient", grid={"loss_imbalance_db": [0.0, 0.1, 0.5]}, seeds=seeds)
    rows = [store.row(p, s, m, {"grad_error_mean": values(p["loss_imbalance_db"], s, m)})
            for p, s in store.points() for m in ("three_pass", "analog")]
    store.write_part(rows, "L1")
    return store


# ----------------------------------------------------------------- few values: error bars

def test_an_axis_of_two_values_gets_dodged_error_bars_not_bands(classify_rows, cp):
    fig = F.metric_vs_axis(classify_rows, "depth", facet="bs_error", params=cp)  # depth: 2, 4
    for ax in _panels(fig):
        assert not any(isinstance(c, PolyCollection) for c in ax.collections)  # no t bands
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == 3 and all(c.has_yerr for c in bars)
        xs = np.array([c.lines[0].get_xdata() for c in bars])  # modes x depth values
        assert all(line.get_linestyle() == "None" for line in (c.lines[0] for c in bars))
        # each mode moved sideways, in mode order, around the true value and not past it
        for column, true in zip(xs.T, (2, 4)):
            assert list(column) == sorted(column) and len(set(column)) == 3
            assert column.mean() == pytest.approx(true) and np.ptp(column) < 0.5 * (4 - 2)


def test_an_axis_of_four_values_keeps_lines_with_bands(gradient_rows, gradient_store):
    fig = F.gradient_error(gradient_rows, "loss_imbalance_db", facet="batch_size",
                           params=load_params(gradient_store.root))
    for ax in _panels(fig):
        assert not ax.containers
        assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 2
        xs = [line.get_xdata() for line in ax.get_lines()]
        assert all(list(x) == [0.0, 0.1, 0.3, 1.0] for x in xs)  # never moved


def test_a_two_value_log_x_axis_dodges_by_a_factor(gradient_rows, gradient_store):
    fig = F.gradient_error(gradient_rows, "batch_size", facet="loss_imbalance_db",
                           params=load_params(gradient_store.root), log_x=True)
    ax = _panels(fig)[0]
    assert ax.get_xscale() == "log"
    (a, b) = (c.lines[0].get_xdata() for c in ax.containers)
    assert a[0] < 1 < b[0] and a[0] * b[0] == pytest.approx(1.0)  # symmetric in log x
    assert a[1] * b[1] == pytest.approx(16.0)


# ----------------------------------------------------------------- coinciding modes

def test_coinciding_modes_get_their_own_markers_dashes_and_a_note(make_store):
    store = _twin_store(make_store, {"bs_error": [0.0, 0.02, 0.05, 0.1, 0.2]})
    rows, params = load(store.root), load_params(store.root)
    fig = F.metric_vs_axis(rows, "bs_error", params=params)
    lines = {line.get_color(): line for line in _panels(fig)[0].get_lines()}
    insitu, analog = lines[F.MODE_COLORS["insitu"]], lines[F.MODE_COLORS["analog"]]
    assert insitu.get_ydata() == pytest.approx(analog.get_ydata(), abs=1e-12)  # they coincide
    assert insitu.get_marker() != analog.get_marker()
    assert insitu.get_linestyle() != analog.get_linestyle()
    assert analog.get_markerfacecolor() == "none" != insitu.get_markerfacecolor()  # drawn over it
    assert "insitu and analog coincide" in _foot(fig)
    assert "digital" not in _foot(fig)
    legend = fig.legends[0].get_lines()
    assert len({(h.get_marker(), str(h.get_linestyle())) for h in legend}) == 3
    # with three values the two are drawn side by side
    few = F.metric_vs_axis(rows[rows["bs_error"] <= 0.05], "bs_error", params=params)
    bars = {c.lines[0].get_color(): c.lines[0] for c in _panels(few)[0].containers}
    xi, xa = bars[F.MODE_COLORS["insitu"]].get_xdata(), bars[F.MODE_COLORS["analog"]].get_xdata()
    assert (xi < xa).all() and bars[F.MODE_COLORS["insitu"]].get_ydata() == pytest.approx(
        bars[F.MODE_COLORS["analog"]].get_ydata(), abs=1e-12)
    assert "insitu and analog coincide" in _foot(few)
    # and the report's caption says it too
    built, _ = Plan.build(read_store(store.root)).draw()
    headline = next(plan for plan, _ in built if plan.name.startswith("test_accuracy_vs_bs_error"))
    assert "insitu and analog coincide" in headline.caption


def test_modes_that_differ_get_no_note(classify_rows, cp):
    fig = F.metric_vs_axis(classify_rows, "bs_error", facet="depth", params=cp)
    assert "coincide" not in _foot(fig)


def test_coinciding_modes_per_mode_are_named(make_store):
    store = _twin_store(make_store, {})
    fig = F.metric_by_mode(load(store.root), params=load_params(store.root))
    assert "insitu and analog coincide" in _foot(fig)
    markers = [c.lines[0].get_marker() for c in _panels(fig)[0].containers]
    assert len(set(markers)) == 3


# ----------------------------------------------------------------- log axes and exact values

def _decades(ax) -> float:
    low, high = ax.get_ylim()
    return float(np.log10(high / low))


def test_an_exact_point_does_not_stretch_the_log_axis(make_store):
    rng = np.random.default_rng(3)
    store = _log_store(make_store, lambda loss, s, m: 1e-16 if loss == 0 else
                       (0.01 + loss) * 10 ** rng.uniform(-0.5, 0.5), seeds=tuple(range(4)))
    fig = F.gradient_error(load(store.root), "loss_imbalance_db", params=load_params(store.root))
    ax = _panels(fig)[0]
    assert ax.get_yscale() == "log"
    assert _decades(ax) <= 6
    smallest = min(c.lines[0].get_ydata().min() for c in ax.containers)
    floor = [line for line in ax.get_lines() if line.get_marker() == "v"]
    assert len(floor) == 2  # one per protocol, hollow, at the floor
    assert all(line.get_markerfacecolor() == "white" for line in floor)
    at = floor[0].get_ydata()[0]
    assert at == pytest.approx(smallest / 100) and ax.get_ylim()[0] <= at
    assert "▽ exact" in _foot(fig) and "three_pass at loss imbalance (dB) = 0" in _foot(fig)
    assert "exact" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_a_two_seed_interval_does_not_stretch_the_log_axis(make_store):
    # two seeds two decades apart: the t interval (t = 12.7) reaches some 1e-14
    store = _log_store(make_store, lambda loss, s, m: (0.01 + loss) * (10.0 if s else 0.1),
                       seeds=(0, 1))
    rows, params = load(store.root), load_params(store.root)
    fig = F.gradient_error(rows, "loss_imbalance_db", params=params)
    ax = _panels(fig)[0]
    low_ci = min(c.lines[0].get_ydata().min() for c in ax.containers)
    assert _decades(ax) <= 6 and ax.get_ylim()[0] >= low_ci / 10 ** 2.5
    assert "exact" not in _foot(fig)


def test_exact_seeds_per_mode_sit_at_the_floor(make_store):
    store = make_store("flat", "gradient", seeds=(0, 1, 2, 3))
    rows = [store.row(p, s, m, {"grad_error_mean": 1e-16 if (m == "analog" and s < 2) else 1e-3 * (s + 1)})
            for p, s in store.points() for m in ("three_pass", "analog")]
    store.write_part(rows, "L1")
    fig = F.metric_by_mode(load(store.root), metric="grad_error_mean", params=load_params(store.root))
    ax = _panels(fig)[0]
    assert ax.get_yscale() == "log" and _decades(ax) <= 6
    floor = [line for line in ax.get_lines() if line.get_marker() == "v"]
    assert len(floor) == 1 and floor[0].get_ydata().size == 2
    assert "2 of 4 seeds of analog" in _foot(fig)


# ----------------------------------------------------------------- no text over text or data

def _texts(fig, renderer):
    """(what, bbox) of every text that must stand clear: titles, labels, legends, notes."""
    out = []
    for i, text in enumerate(fig.texts):  # suptitle, foot
        if text.get_visible() and text.get_text().strip():
            out.append((f"figure text {text.get_text()[:30]!r}", text.get_window_extent(renderer)))
    for i, legend in enumerate(fig.legends):
        out.append((f"legend {i}", legend.get_window_extent(renderer)))
    for k, ax in enumerate(fig.axes):
        for name, text in (("title", ax.title), ("x label", ax.xaxis.label), ("y label", ax.yaxis.label)):
            if text.get_visible() and text.get_text().strip():
                out.append((f"axes {k} {name}", text.get_window_extent(renderer)))
        if ax.get_legend() is not None:
            out.append((f"axes {k} legend", ax.get_legend().get_window_extent(renderer)))
        for text in ax.texts:
            if text.get_visible() and text.get_text().strip():
                out.append((f"axes {k} text {text.get_text()[:20]!r}", text.get_window_extent(renderer)))
    return out


def _overlap(a: Bbox, b: Bbox, slack: float = 0.5) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > slack) and (min(a.y1, b.y1) - max(a.y0, b.y0) > slack)


def _data_points(fig):
    """Display coordinates of every plotted point (lines, markers, scatter dots)."""
    points = []
    for ax in fig.axes:
        for line in ax.get_lines():
            xy = np.column_stack(line.get_data()).astype(float)
            points.append(line.get_transform().transform(xy[np.isfinite(xy).all(axis=1)]))
        for coll in ax.collections:
            if isinstance(coll, PathCollection) and len(coll.get_offsets()):
                xy = np.asarray(coll.get_offsets(), dtype=float)
                points.append(coll.get_offset_transform().transform(xy))
    return np.concatenate(points) if points else np.zeros((0, 2))


def check_layout(fig, name):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = _texts(fig, renderer)
    for (wa, a), (wb, b) in itertools.combinations(texts, 2):
        assert not _overlap(a, b), f"{name}: {wa} overlaps {wb}"
    # notes (the foot, and any text in a panel that is not a heatmap's cell) cover no data
    heatmaps = {id(ax) for ax in fig.axes if any(type(c).__name__ == "QuadMesh" for c in ax.collections)}
    notes = [t for t in fig.texts if t.get_text().strip() and t.get_text() != fig.get_suptitle()]
    notes += [t for ax in fig.axes if id(ax) not in heatmaps for t in ax.texts if t.get_text().strip()]
    points = _data_points(fig)
    for note in notes:
        box = note.get_window_extent(renderer)
        inside = ((points[:, 0] > box.x0) & (points[:, 0] < box.x1)
                  & (points[:, 1] > box.y0) & (points[:, 1] < box.y1))
        assert not inside.any(), f"{name}: the note {note.get_text()[:40]!r} covers data"
    # every text is on the canvas
    canvas = fig.bbox
    for what, box in texts:
        assert box.x0 >= canvas.x0 - 1 and box.x1 <= canvas.x1 + 1, f"{name}: {what} leaves the figure"
        assert box.y0 >= canvas.y0 - 1 and box.y1 <= canvas.y1 + 1, f"{name}: {what} leaves the figure"


def test_no_text_overlaps_text_or_data_in_a_stores_figures(classify_store, make_store):
    built, _ = Plan.build(read_store(classify_store.root)).draw()
    assert len(built) >= 6
    for plan, fig in built:
        check_layout(fig, plan.name)
    # figures with notes in their foot: coinciding modes, exact values, both
    twins = _twin_store(make_store, {"bs_error": [0.0, 0.05, 0.1]})
    for plan, fig in Plan.build(read_store(twins.root)).draw()[0]:
        check_layout(fig, "twins " + plan.name)
    rng = np.random.default_rng(5)
    exact = _log_store(make_store, lambda loss, s, m: 1e-16 if loss == 0 else
                       (0.01 + loss) * 10 ** rng.uniform(-1, 1), seeds=(0, 1, 2))
    for plan, fig in Plan.build(read_store(exact.root)).draw()[0]:
        assert "exact" in _foot(fig)
        check_layout(fig, "exact " + plan.name)


# single column is the tightest width; double (between it and the full width of
# test_no_text_overlaps_text_or_data_in_a_stores_figures) runs with the slow tests
@pytest.mark.parametrize("width", [pytest.param("double", marks=pytest.mark.slow), "single"])
def test_no_text_overlaps_at_a_journals_column_width(classify_store, width):
    built, _ = Plan.build(read_store(classify_store.root)).draw()
    for plan, fig in built:
        check_layout(F.fit_width(fig, width), f"{plan.name} at {width} width")
