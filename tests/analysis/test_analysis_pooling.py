"""No silent pooling, filters, log-scale gradient errors, figure widths and stale outputs."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest

from insitu.analysis import figures as F
from insitu.analysis.vocabulary import Vocabulary

label = Vocabulary().label  # these synthetic stores do not describe themselves
from insitu.analysis.commands import apply_where, figures_command, report_command, summary_command
from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.load import load, load_params, read_store
from insitu.sweeps.store.outputs import stale_notices
from tests.analysis.conftest import build_figures, plan_figures
from insitu.analysis.summary import interval, log_interval, summarize

THREE = {"bs_error": [0.0, 0.05, 0.1], "depth": [2, 4], "tap_noise": [0.0, 0.02]}


@pytest.fixture
def three_axes(make_store, fill):
    store = make_store("three", grid=THREE, seeds=(0, 1, 2))
    return fill.classify(store, modes=("digital", "insitu"), seed=5)


def _figure_text(fig) -> str:
    texts = [fig.get_suptitle()]
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return " ".join(" ".join(texts).split())


def test_every_figure_groups_by_all_three_axes_or_names_the_pooled_one(three_axes):
    built, notes = build_figures(read_store(three_axes.root))
    assert len(built) >= 6 and not [n for n in notes if n.startswith("skipped")]
    pooled_somewhere = False
    for plan, fig in built:
        text = _figure_text(fig)
        for axis in THREE:
            assert label(axis) in text, f"{plan.name} neither shows nor names {axis}"
            if f"pooled over {label(axis)}" in text:
                pooled_somewhere = True
                assert f"pooled over {label(axis)}".lower() in plan.caption.lower(), plan.name
    assert pooled_somewhere  # the learning curves show two axes and pool the third, by name
    curves = next(fig for plan, fig in built if plan.name.startswith("learning_curves"))
    assert "pooled over mesh depth (MZI columns) (2, 4)" in _figure_text(curves)


def test_every_summary_groups_by_all_three_axes_or_names_the_pooled_one(three_axes):
    root = str(three_axes.root)
    text = summary_command(root)
    assert "per bs_error, tap_noise, depth, mode: mean over seeds" in text and "pooled" not in text
    header = next(line for line in text.splitlines() if line.split()[:1] == ["bs_error"])
    assert header.split()[:4] == ["bs_error", "tap_noise", "depth", "mode"]
    with pytest.raises(AnalysisInputError, match="would pool over 'depth'"):
        summary_command(root, ["bs_error", "tap_noise"])
    pooled = summary_command(root, ["bs_error", "tap_noise"], pool=["depth"])
    assert "pooled over mesh depth (MZI columns) (2, 4), averaged per seed" in pooled
    md = summary_command(root, pool=["depth"], fmt="md")
    assert md.startswith("**test accuracy (test_accuracy) per bs_error, tap_noise, mode") and "pooled over mesh depth" in md
    csv = summary_command(root, pool=["depth"], fmt="csv")
    assert csv.splitlines()[0].endswith(",metric,pooled_over")
    doc = json.loads(summary_command(root, pool=["depth"], fmt="json"))
    assert doc["grouped_by"] == ["bs_error", "tap_noise"] and doc["pooled_over"] == ["depth"]
    assert all(r["n"] == 3 for r in doc["rows"])  # n counts seeds, not seeds x depths
    table = summarize(load(three_axes.root), metrics=["test_accuracy"], params=load_params(three_axes.root))
    assert table.attrs["by"] == ["bs_error", "tap_noise", "depth"] and len(table) == 12 * 2


def test_a_varying_column_left_out_of_the_rows_is_caught(three_axes):
    rows = load(three_axes.root, columns=["bs_error", "tap_noise", "mode", "seed", "test_accuracy"])
    with pytest.raises(AnalysisInputError, match="rows repeat a seed"):
        summarize(rows, by=["bs_error", "tap_noise"], metrics=["test_accuracy"], params=load_params(three_axes.root))
    with pytest.raises(AnalysisInputError, match="rows repeat a seed"):
        F.metric_vs_axis(rows, "bs_error", facet="tap_noise", params=load_params(three_axes.root))


def test_where_filters_rows_and_bad_expressions_are_one_line(three_axes, tmp_path):
    root = str(three_axes.root)
    text = summary_command(root, where="depth == 2 and tap_noise == 0")
    assert "rows where depth == 2 and tap_noise == 0" in text
    assert "per bs_error, mode:" in text  # the axes it fixes no longer vary
    doc = json.loads(summary_command(root, where="depth == 2", fmt="json"))
    assert {r["depth"] for r in doc["rows"]} == {2} if "depth" in doc["rows"][0] else True
    assert doc["grouped_by"] == ["bs_error", "tap_noise"]
    full = json.loads(summary_command(root, fmt="json"))
    cell = [r for r in full["rows"] if (r["bs_error"], r["tap_noise"], r["depth"], r["mode"]) == (0.1, 0.0, 2, "digital")]
    sub = [r for r in doc["rows"] if (r["bs_error"], r["tap_noise"], r["mode"]) == (0.1, 0.0, "digital")]
    assert sub[0]["mean"] == pytest.approx(cell[0]["mean"])
    for bad, why in (("depth ==", "bad --where expression 'depth =='"),
                     ("nope == 1", "bad --where expression 'nope == 1'"),
                     ("depth == 7", "--where 'depth == 7' selects no successful rows")):
        with pytest.raises(AnalysisInputError) as info:
            summary_command(root, where=bad)
        assert str(info.value).startswith(why) and "\n" not in str(info.value)
    with pytest.raises(AnalysisInputError, match="bad --where"):
        figures_command(root, str(tmp_path / "f"), where="depth ==")
    assert not (tmp_path / "f").exists()
    names = [p.name for p in plan_figures(apply_where(read_store(root), "depth == 2"))[0]]
    assert "test_accuracy_vs_bs_error_by_tap_noise" in names and not any("depth" in n for n in names)


def test_metric_option_and_unknown_metric(three_axes, tmp_path):
    root = str(three_axes.root)
    text = summary_command(root, metric="train_accuracy")
    assert "train accuracy (train_accuracy) per" in text
    with pytest.raises(AnalysisInputError, match="unknown metric 'nope'; this store's metrics are: "):
        summary_command(root, metric="nope")
    names = [p.name for p in plan_figures(read_store(root), metric="train_accuracy")[0]]
    assert "train_accuracy_vs_bs_error_by_tap_noise_depth" in names


@pytest.mark.parametrize("sharing", [["bs_error"], None])
def test_drop_against_the_error_free_cell_by_hand(make_store, sharing):
    """Paired over chips when the store shares them along the error axis (one stream key
    per seed); Welch over the two groups of seeds when every cell ran on its own chips."""
    store = make_store("drop", grid={"bs_error": [0.0, 0.1], "depth": [2, 4]}, seeds=(0, 1, 2),
                       sharing=sharing)
    acc = {(0.0, 0): 0.95, (0.0, 1): 0.93, (0.0, 2): 0.97, (0.1, 0): 0.80, (0.1, 1): 0.90, (0.1, 2): 0.85}
    rows = [store.row(p, s, "digital", {"test_accuracy": acc[(p["bs_error"], s)] - 0.01 * (p["depth"] == 4)})
            for p, s in store.points()]
    store.write_part(rows, "L1")
    table = summarize(load(store.root), metrics=["test_accuracy"], drop=True, params=load_params(store.root))
    cell = table[(table["bs_error"] == 0.1) & (table["depth"] == 2)].iloc[0]
    if sharing:
        drops = [0.95 - 0.80, 0.93 - 0.90, 0.97 - 0.85]  # paired by chip, same depth
        expected = interval(drops)
        assert cell["drop_design"] == "paired"
    else:
        from insitu.analysis.contrasts import welch_interval
        w = welch_interval([0.95, 0.93, 0.97], [0.80, 0.90, 0.85])
        expected = {"ci_low": w["ci_low"], "ci_high": w["ci_high"]}
        drops = [w["estimate"]]
        assert cell["drop_design"] == "Welch"
    assert cell["drop"] == pytest.approx(np.mean(drops))
    assert (cell["drop_ci_low"], cell["drop_ci_high"]) == (pytest.approx(expected["ci_low"]),
                                                           pytest.approx(expected["ci_high"]))
    reference = table[table["bs_error"] == 0.0]
    assert (reference["drop"] == 0).all()


def _gradient_store(make_store, exact_at_zero=True):
    store = make_store("grad", "gradient", grid={"loss_imbalance_db": [0.0, 0.1, 0.5]},
                       seeds=tuple(range(6)))
    rng = np.random.default_rng(2)
    rows = []
    for p, s in store.points():
        for m in ("three_pass", "analog"):
            loss = p["loss_imbalance_db"]
            # values spanning two decades per cell: a linear interval would go below zero
            value = 1e-16 if (loss == 0 and exact_at_zero) else (0.01 + loss) * 10 ** rng.uniform(-1.5, 0.5)
            rows.append(store.row(p, s, m, {"grad_error_mean": value}))
    store.write_part(rows, "L1")
    return store


def test_geometric_summaries_have_no_negative_bounds(make_store):
    values = [0.001, 0.002, 0.5, 0.003, 0.8]
    assert interval(values)["ci_low"] < 0  # what a linear t interval would report
    got = log_interval(values)
    assert got["ci_low"] > 0 and got["mean"] == pytest.approx(10 ** np.mean(np.log10(values)))
    assert got["ci_low"] < got["mean"] < got["ci_high"]
    store = _gradient_store(make_store)
    table = summarize(load(store.root), metrics=["grad_error_mean"], params=load_params(store.root))
    inexact = table[table["loss_imbalance_db"] > 0]
    assert (inexact["ci_low"] > 0).all() and (inexact["scale"] == "log10").all()
    exact = table[table["loss_imbalance_db"] == 0]
    assert (exact["n_exact"] == 6).all() and exact["mean"].isna().all()
    text = summary_command(str(store.root))
    assert "geometric mean over seeds" in text
    exact_lines = [line for line in text.splitlines() if line.split()[:1] == ["0"] and "three_pass" in line]
    assert exact_lines and "exact" in exact_lines[0]


def test_gradient_figure_names_exact_values_instead_of_plotting_1e16(make_store):
    store = _gradient_store(make_store)
    rows = load(store.root)
    fig = F.gradient_error(rows, "loss_imbalance_db", params=load_params(store.root))
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylim()[0] > 1e-6
    # named in the figure's foot (not in the panel, over the data)
    foot = " ".join(fig.get_supxlabel().split())
    assert "exact" in foot and "three_pass at loss imbalance (dB) = 0" in foot
    # the figure draws the table's geometric means (three x values: points with error bars)
    table = summarize(rows, metrics=["grad_error_mean"], params=load_params(store.root))
    want = table[(table["mode"] == "three_pass") & (table["loss_imbalance_db"] > 0)]["mean"].to_numpy()
    assert ax.containers[0].lines[0].get_ydata() == pytest.approx(want)


def _png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    return struct.unpack(">II", head[16:24])


def test_figures_stay_narrow_for_a_twenty_value_axis(make_store, fill, tmp_path):
    twenty = [round(0.001 * i, 3) for i in range(20)]
    store = make_store("wide", grid={"tap_noise": twenty, "bs_error": [0.0, 0.1], "depth": [2, 4]},
                       seeds=(0, 1))
    fill.classify(store, modes=("digital", "insitu"), seed=1)
    rows = load(store.root)
    # the PNG that save_figure writes (150 dpi) is at most 2000 px wide
    fig = F.metric_vs_axis(rows, "bs_error", facet="tap_noise", pool=["depth"], params=load_params(store.root))
    png = tmp_path / "twenty.png"
    fig.savefig(png, dpi=150)  # as save_figure does
    assert _png_size(png)[0] <= 2000
    assert fig.get_figwidth() * 150 == pytest.approx(_png_size(png)[0], abs=1)
    figs = [fig,
            F.metric_vs_axis(rows, "bs_error", facet="tap_noise", row="depth", params=load_params(store.root)),  # 2 x 20 panels
            F.gap_heatmap(rows, "tap_noise", "bs_error", facet="depth", params=load_params(store.root)),
            F.learning_curves(rows, "tap_noise", row="depth", pool=["bs_error"], params=load_params(store.root)),
            F.gradient_error(rows[rows["mode"] == "insitu"], "bs_error", facet="tap_noise", row="depth", params=load_params(store.root))]
    for fig in figs:
        assert fig.get_figwidth() * 150 <= 2000
    for fig in (figs[1], figs[3]):  # 40 panels wrap at 4 columns
        panels = [ax for ax in fig.axes]
        assert len(panels) == 40
        assert {ax.get_subplotspec().colspan.start for ax in panels} == {0, 1, 2, 3}


def test_stale_outputs_are_reported(make_store, fill, tmp_path):
    store = make_store("stale", grid={"bs_error": [0.0, 0.1]}, seeds=(0, 1))
    fill.classify(store, modes=("digital", "insitu"))
    root = str(store.root)
    notices: list[str] = []
    figures_command(root, None, notices=notices)
    assert notices == [] and stale_notices(root) == []
    report_command(root, None, notices=notices)
    assert notices == []
    record = json.loads((store.root / "analysis-outputs.json").read_text())
    assert {(r["kind"], r["path"], r["trials"], r["last_launch"]) for r in record["outputs"]} == {
        ("figures", "figures", 4, "L1"), ("report", "report.html", 4, "L1")}
    # the sweep is extended: its spec gains an axis value and a new launch stores two more trials
    spec = json.loads((store.root / "spec.json").read_text())
    spec["grid"]["bs_error"] = [0.0, 0.05, 0.1]
    (store.root / "spec.json").write_text(json.dumps(spec, sort_keys=True))
    extra = {**store.fixed, "bs_error": 0.05}
    store.write_part([store.row(extra, s, m, {"test_accuracy": 0.9}) for s in (0, 1)
                      for m in ("digital", "insitu")], "L2")
    lines = stale_notices(root)
    assert len(lines) == 2 and all("out of date: made from 4 trials (last launch L1); the store now "
                                   "has 6 trials (last launch L2)" in line for line in lines)
    report_command(root, None, notices=notices)
    assert len(notices) == 1 and notices[0].startswith("figures figures is out of date")
    assert [line.split()[0] for line in stale_notices(root)] == ["figures"]


def test_the_declared_parameters_are_passed_not_carried_by_the_frame(three_axes):
    """Rows rebuilt by pandas (concat, merge: no attrs) are guarded as well as loaded rows,
    because the parameters come from the store, and nothing reads them off the frame."""
    rows, params = load(three_axes.root), load_params(three_axes.root)
    assert "params" not in rows.attrs
    rebuilt = pd.concat([rows.iloc[: len(rows) // 2], rows.iloc[len(rows) // 2:]])
    rebuilt.attrs.clear()
    with pytest.raises(AnalysisInputError, match="would pool over 'depth'"):
        summarize(rebuilt, by=["bs_error", "tap_noise"], metrics=["test_accuracy"], params=params)
    table = summarize(rebuilt, metrics=["test_accuracy"], params=params)
    assert table.attrs["by"] == ["bs_error", "tap_noise", "depth"]
    # the list is what is checked: with depth undeclared only the repeated seeds catch it
    with pytest.raises(AnalysisInputError, match="rows repeat a seed"):
        summarize(rebuilt, by=["bs_error", "tap_noise"], metrics=["test_accuracy"],
                  params=["bs_error", "tap_noise"])
    with pytest.raises(TypeError):
        summarize(rebuilt, metrics=["test_accuracy"])  # params is required


def test_one_headline_metric_for_tables_figures_and_reports(three_axes, make_store):
    from insitu.analysis.summary import default_metric
    from insitu.analysis.vocabulary import FALLBACK_HEADLINE

    rows, params = load(three_axes.root), load_params(three_axes.root)
    assert default_metric(rows, params) == FALLBACK_HEADLINE["classify"] == "test_accuracy"
    fig = F.metric_vs_axis(rows, "bs_error", facet="tap_noise", pool=["depth"], params=params)
    assert fig.axes[0].get_ylabel() == label("test_accuracy")
    # no headline column: the first metric column, never a parameter (lr is numeric too)
    bare = rows.drop(columns=[c for c in rows.columns if c in FALLBACK_HEADLINE.values()])
    chosen = default_metric(bare, params)
    assert chosen not in params and chosen == "train_accuracy"
    # the gradient experiment's headline, chosen from the experiment column
    store = make_store("g", "gradient", grid={"tap_noise": [0.0, 0.01]}, seeds=(0, 1))
    store.write_part([store.row(p, s, m, {"grad_error_mean": 0.01 + p["tap_noise"], "test_accuracy": 0.5})
                      for p, s in store.points() for m in ("three_pass", "analog")], "L1")
    grad_rows, grad_params = load(store.root), load_params(store.root)
    assert default_metric(grad_rows, grad_params) == "grad_error_mean"
    assert "gradient error" in F.metric_vs_axis(grad_rows, "tap_noise", params=grad_params).axes[0].get_ylabel()
