"""Every figure function on synthetic rows: labels, panels, lines and cells as expected."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex

from insitu.analysis import figures as F
from insitu.analysis.vocabulary import Vocabulary

label = Vocabulary().label  # these synthetic stores do not describe themselves
from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.load import load, load_params
from insitu.analysis.summary import gap_summary


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _points(ax):
    """Per error-bar container (one per mode, in order): its drawn x and y."""
    return [c.lines[0].get_data() for c in ax.containers]


def _at(xs, ys, x):
    """The y drawn nearest to ``x`` (points are moved sideways per mode)."""
    return ys[int(np.argmin(np.abs(np.asarray(xs, dtype=float) - x)))]


@pytest.fixture
def gp(gradient_store):
    """The declared parameters of the gradient store."""
    return load_params(gradient_store.root)


def test_metric_vs_axis_points_error_bars_labels(classify_rows, cp):
    # bs_error takes three values: dodged points with error bars, no lines, no bands
    fig = F.metric_vs_axis(classify_rows, "bs_error", facet="depth", params=cp)
    panels = _panels(fig)
    assert len(panels) == 2  # depth 2 and 4
    for ax in panels:
        assert len(ax.containers) == 3  # digital, insitu, analog
        assert [to_hex(c.lines[0].get_color()) for c in ax.containers] == [
            F.MODE_COLORS["digital"], F.MODE_COLORS["insitu"], F.MODE_COLORS["analog"]]
        assert not any(isinstance(c, PolyCollection) for c in ax.collections)  # no t bands
        assert all(c.lines[0].get_linestyle() == "None" for c in ax.containers)  # not joined
        assert ax.get_xlabel() == "splitting error σ (rad)"
    assert panels[0].get_ylabel() == "test accuracy"
    assert [ax.get_title() for ax in panels] == ["mesh depth (MZI columns) = 2",
                                                 "mesh depth (MZI columns) = 4"]
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["digital", "insitu", "analog"]
    # the drawn mean at bs_error = 0.1, depth 2, digital equals the data's mean
    part = classify_rows[(classify_rows["depth"] == 2) & (classify_rows["mode"] == "digital")]
    x, y = _points(panels[0])[0]
    assert _at(x, y, 0.1) == pytest.approx(part[part["bs_error"] == 0.1]["test_accuracy"].mean())


def test_metric_vs_axis_without_facet_pools_only_by_name(classify_rows, cp):
    with pytest.raises(AnalysisInputError, match="would pool over 'depth'"):
        F.metric_vs_axis(classify_rows, "bs_error", params=cp)
    fig = F.metric_vs_axis(classify_rows, "bs_error", pool=["depth"], params=cp)
    assert len(_panels(fig)) == 1 and len(_panels(fig)[0].containers) == 3
    assert "pooled over mesh depth (MZI columns) (2, 4)" in fig.get_suptitle()
    assert "over 3 seeds" in fig.get_suptitle()
    # pooled values are averaged per seed first: the drawn mean is the mean of seed means
    part = classify_rows[(classify_rows["mode"] == "digital") & (classify_rows["bs_error"] == 0.1)]
    expected = part.groupby("seed")["test_accuracy"].mean().mean()
    x, y = _points(_panels(fig)[0])[0]
    assert _at(x, y, 0.1) == pytest.approx(expected)


def test_gap_heatmap_cells_match_paired_means(classify_rows, cp):
    fig = F.gap_heatmap(classify_rows, "bs_error", "depth", params=cp)
    ax = _panels(fig)[0]
    cells = ax.collections[0].get_array()
    assert cells.size == 3 * 2
    assert ax.get_xlabel() == "splitting error σ (rad)"
    assert ax.get_ylabel() == "mesh depth (MZI columns)"
    cbar = [a for a in fig.axes if a.get_label() == "<colorbar>"][0]
    assert "insitu − digital" in cbar.get_ylabel()
    expected = gap_summary(classify_rows, "test_accuracy", by=["bs_error", "depth"],
                           comparisons=[("insitu", "digital")], params=cp)
    # rows are drawn with the largest depth on top
    grid = expected.pivot(index="depth", columns="bs_error", values="mean").sort_index(ascending=False)
    assert np.asarray(cells).reshape(2, 3) == pytest.approx(grid.to_numpy())
    single = F.gap_heatmap(classify_rows, "bs_error", pool=["depth"], params=cp)
    assert _panels(single)[0].collections[0].get_array().size == 3
    assert "pooled over mesh depth" in single.get_suptitle()


def test_gradient_error_log_axes_per_protocol(gradient_rows, gp):
    fig = F.gradient_error(gradient_rows, "loss_imbalance_db", facet="batch_size", params=gp)
    panels = _panels(fig)
    assert len(panels) == 2
    for ax in panels:
        assert ax.get_yscale() == "log"
        assert ax.get_xscale() == "linear"  # dB already logarithmic
        assert ax.get_xlabel() == "loss imbalance (dB)"
        assert [to_hex(line.get_color()) for line in ax.get_lines()] == [
            F.MODE_COLORS["three_pass"], F.MODE_COLORS["analog"]]
    assert panels[0].get_ylabel() == "gradient error 1 − cos"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["three_pass", "analog"]
    by_batch = F.gradient_error(gradient_rows, "batch_size", facet="loss_imbalance_db", params=gp)
    assert len(_panels(by_batch)) == 4
    assert _panels(by_batch)[0].get_xlabel() in ("", "batch size M")


def test_gradient_error_symlog_when_zero_included(make_store):
    store = make_store("tap", "gradient", grid={"tap_noise": [0.0, 0.001, 0.01, 0.1]}, seeds=(0, 1))
    rows = []
    for p, s in store.points():
        for m in ("three_pass", "analog"):
            rows.append(store.row(p, s, m, {"grad_error_mean": 1e-4 + p["tap_noise"] * (s + 1)}))
    store.write_part(rows, "L1")
    fig = F.gradient_error(load(store.root), "tap_noise", params=load_params(store.root))
    ax = _panels(fig)[0]
    assert ax.get_xscale() == "symlog" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "tap noise s (√(launch power))"


def test_learning_curves_explode_to_long_form(classify_rows, cp):
    fig = F.learning_curves(classify_rows, "bs_error", pool=["depth"], params=cp)
    panels = _panels(fig)
    assert len(panels) == 3
    assert panels[0].get_ylabel() == "test error (1 − accuracy)"
    assert all(ax.get_xlabel() == "epoch" for ax in panels)
    assert all(len(ax.get_lines()) == 3 for ax in panels)
    # mean test error at the last epoch, bs_error 0.1, digital
    part = classify_rows[(classify_rows["bs_error"] == 0.1) & (classify_rows["mode"] == "digital")]
    expected = np.mean([1 - c[-1] for c in part["curve_test_accuracy"]])
    x, y = panels[2].get_lines()[0].get_data()
    assert x[-1] == 10 and y[-1] == pytest.approx(expected)
    assert "pooled over mesh depth" in fig.get_suptitle()
    assert len(_panels(F.learning_curves(classify_rows, pool=["bs_error", "depth"], params=cp))) == 1
    assert len(_panels(F.learning_curves(classify_rows, "bs_error", row="depth", params=cp))) == 6


def test_a_classify_legend_says_training_mode_even_for_the_analog_mode_alone(classify_rows, cp):
    # "analog" is a protocol name too; the rows' experiment decides
    analog = classify_rows[classify_rows["mode"] == "analog"]
    fig = F.learning_curves(analog, "bs_error", pool=["depth"], params=cp)
    assert fig.legends[0].get_title().get_text() == "training mode"


def test_decision_boundaries_one_panel_per_task_and_mode(make_store, fill):
    store = make_store("db", grid={"task": ["moons", "circle"]}, seeds=(0, 1))
    fill.classify(store, seed=3, modes=("digital", "insitu"))
    rows = load(store.root)
    fig = F.decision_boundaries(rows, seed=1, params=load_params(store.root))
    panels = _panels(fig)
    assert len(panels) == 2 * 2
    titles = [ax.get_title() for ax in panels]
    assert titles[0].startswith("circle · digital (acc ") and titles[3].startswith("moons · insitu")
    assert panels[0].get_ylabel() == "x2" and panels[2].get_xlabel() == "x1"
    assert fig.get_suptitle() == "decision boundaries, seed 1"
    # the filled contour spans the stored axes, and the points are drawn
    x0, x1 = panels[0].get_xlim()
    assert (x0, x1) == pytest.approx((-3.0, 3.0))
    assert any(len(c.get_offsets()) == 12 for c in panels[0].collections if hasattr(c, "get_offsets"))
    only_insitu = F.decision_boundaries(rows, modes=["insitu"], params=load_params(store.root))
    assert len(_panels(only_insitu)) == 2


def test_metric_by_mode_when_nothing_varies(make_store):
    store = make_store("flat", seeds=(0, 1, 2))
    store.write_part([store.row(p, s, m, {"test_accuracy": 0.9 + 0.01 * s})
                      for p, s in store.points() for m in ("digital", "insitu")], "L1")
    fig = F.metric_by_mode(load(store.root), params=load_params(store.root))
    ax = _panels(fig)[0]
    assert ax.get_ylabel() == "test accuracy" and ax.get_xlabel() == "training mode"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["digital", "insitu"]


def test_save_figure_writes_png_and_pdf(classify_rows, tmp_path, cp):
    fig = F.metric_vs_axis(classify_rows, "bs_error", facet="depth", params=cp)
    png, pdf = F.save_figure(fig, tmp_path / "sub" / "accuracy")
    assert png.name == "accuracy.png" and pdf.name == "accuracy.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"


def test_labels_palette_and_bad_axis(classify_rows, cp):
    assert label("loss_imbalance_db") == "loss imbalance (dB)"
    assert label("my_new_axis") == "my_new_axis"
    order, colors = F.mode_palette(["zeta", "analog", "digital"])
    assert order == ["digital", "analog", "zeta"]
    assert colors["digital"] == F.MODE_COLORS["digital"] and colors["zeta"] not in F.MODE_COLORS.values()
    with pytest.raises(AnalysisInputError, match="unknown column 'nope'"):
        F.metric_vs_axis(classify_rows, "nope", params=cp)
