"""Tolerance along an error axis: the interpolated crossing, its paired bootstrap, the command."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from insitu.analysis.commands import tolerance_command
from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.figures import tolerance_vs_axis
from insitu.analysis.load import load, load_params
from insitu.analysis.tolerance import crossing, tolerance

GRID = [0.0, 0.04, 0.08, 0.12, 0.16]


def _linear_store(make_store, noise: float, seeds=range(12), slope=1.0, rng_seed=0):
    """digital: 0.95 − slope·x (+ seeded noise per seed and point); insitu: flat at 0.95."""
    store = make_store("linear", grid={"bs_error": GRID, "depth": [2, 4]}, seeds=tuple(seeds))
    rng = np.random.default_rng(rng_seed)
    rows = []
    for p, s in store.points():
        e = noise * rng.standard_normal(2)
        rows.append(store.row(p, s, "digital", {"test_accuracy": 0.95 - slope * p["bs_error"] + e[0]}))
        rows.append(store.row(p, s, "insitu", {"test_accuracy": 0.95 + e[1]}))
    store.write_part(rows, "L1")
    return store


def test_crossing_interpolates_and_reports_not_reached():
    xs = np.array([0.0, 0.1, 0.2, 0.3])
    curves = np.array([
        [0.9, 0.88, 0.80, 0.70],   # falls 0.05 between 0.1 and 0.2: 0.1 + 0.03/0.08 * 0.1
        [0.9, 0.85, 0.95, 0.80],   # exactly at the grid point 0.1 (first crossing counts)
        [0.9, 0.89, 0.88, 0.87],   # never
        [np.nan, 0.5, 0.4, 0.3],   # no baseline
    ])
    got = crossing(xs, curves, 0.05)
    assert got[0] == pytest.approx(0.1 + 0.03 / 0.08 * 0.1)
    assert got[1] == pytest.approx(0.1)
    assert math.isinf(got[2]) and math.isnan(got[3])
    # relative drop: 10 % of 0.9 -> threshold 0.81, reached between 0.1 and 0.2
    assert crossing(xs, curves[:1], 0.1, relative=True)[0] == pytest.approx(0.1 + 0.07 / 0.08 * 0.1)


def test_tolerance_of_a_linear_decline_is_the_analytic_crossing(make_store):
    root = _linear_store(make_store, noise=0.0).root
    frame, params = load(root), load_params(root)
    table = tolerance(frame, "bs_error", drop=0.05, params=params)
    assert table.attrs["by"] == ["depth"] and table.attrs["pooled"] == []
    digital = table[table["mode"] == "digital"]
    # 0.95 − x falls 0.05 at x = 0.05, between the grid points 0.04 and 0.08
    assert digital["tolerance"].to_numpy() == pytest.approx([0.05, 0.05])
    assert digital["reached"].all() and (digital["n_seeds"] == 12).all()
    insitu = table[table["mode"] == "insitu"]
    assert not insitu["reached"].any() and insitu["tolerance"].isna().all()
    assert np.isinf(insitu["ci_high"]).all() and (insitu["largest"] == 0.16).all()
    relative = tolerance(frame, "bs_error", drop=0.1, relative=True, params=params)
    expected = 0.95 * 0.1  # 10 % of the error-free value, reached at x = 0.095
    assert relative[relative["mode"] == "digital"]["tolerance"].to_numpy() == pytest.approx([expected] * 2)


def _replicate(rng, n_seeds=20, noise=0.03):
    """One synthetic study as rows (no store): digital 0.95 − x plus noise per seed and point."""
    records = [{"bs_error": x, "seed": s, "mode": "digital",
                "test_accuracy": 0.95 - x + noise * rng.standard_normal()}
               for x in GRID for s in range(n_seeds)]
    frame = pd.DataFrame.from_records(records)
    return frame


def test_bootstrap_interval_covers_the_true_crossing():
    """Over 100 seeded replicate studies the 95 % interval covers the true crossing (0.05)
    in most of them, and has a width: the resampling is over seeds and it matters. (A
    percentile bootstrap over 20 seeds covers about 91 % here: 200 replicates gave 0.91.)"""
    rng = np.random.default_rng(11)
    covered, widths = 0, []
    for _ in range(100):
        row = tolerance(_replicate(rng), "bs_error", drop=0.05, n_resamples=300, params=["bs_error"]).iloc[0]
        covered += row["ci_low"] <= 0.05 <= row["ci_high"]
        widths.append(row["ci_high"] - row["ci_low"])
    assert covered >= 85
    assert np.median(widths) > 0.01


def test_point_estimate_is_the_crossing_of_the_means(make_store):
    root = _linear_store(make_store, noise=0.03, seeds=range(20)).root
    frame, params = load(root), load_params(root)
    table = tolerance(frame, "bs_error", drop=0.05, n_resamples=200, params=params)
    digital = table[table["mode"] == "digital"]
    # the point estimate is the crossing of the means over seeds, computed here by hand
    part = frame[(frame["mode"] == "digital") & (frame["depth"] == 2)]
    means = part.groupby("bs_error")["test_accuracy"].mean().sort_index()
    target = means.iloc[0] - 0.05
    j = next(i for i in range(1, len(means)) if means.iloc[i] <= target)
    x0, x1, y0, y1 = means.index[j - 1], means.index[j], means.iloc[j - 1], means.iloc[j]
    got = digital[digital["depth"] == 2]["tolerance"].iloc[0]
    assert got == pytest.approx(x0 + (target - y0) / (y1 - y0) * (x1 - x0))
    assert digital["ci_low"].iloc[0] <= got <= digital["ci_high"].iloc[0]


def test_resamples_are_shared_by_all_modes(make_store):
    """Two modes with the same per-seed values (one shifted by a constant) get the same
    interval only if every mode sees the same resample of seeds."""
    store = make_store("paired", grid={"bs_error": GRID}, seeds=tuple(range(10)))
    rng = np.random.default_rng(4)
    rows = []
    for p, s in store.points():
        v = 0.95 - p["bs_error"] + 0.04 * rng.standard_normal()
        rows += [store.row(p, s, "digital", {"test_accuracy": v}),
                 store.row(p, s, "pat", {"test_accuracy": v - 0.02})]
    store.write_part(rows, "L1")
    table = tolerance(load(store.root), "bs_error", 0.05, n_resamples=500, params=load_params(store.root)).set_index("mode")
    assert table.loc["pat", "tolerance"] == pytest.approx(table.loc["digital", "tolerance"])
    assert table.loc["pat", "ci_low"] == pytest.approx(table.loc["digital", "ci_low"])
    assert table.loc["pat", "ci_high"] == pytest.approx(table.loc["digital", "ci_high"])
    assert list(table.index) == ["digital", "pat"]  # modes come from the store


def test_tolerance_refuses_silent_pooling_and_names_what_it_pools(make_store):
    root = _linear_store(make_store, noise=0.01).root
    frame, params = load(root), load_params(root)
    with pytest.raises(AnalysisInputError, match="would pool over 'depth'"):
        tolerance(frame, "bs_error", by=[], params=params)
    pooled = tolerance(frame, "bs_error", pool=["depth"], params=params)
    assert pooled.attrs["pooled"] == ["depth"] and len(pooled) == 2
    assert "pooled over mesh depth (MZI columns) (2, 4)" in pooled.attrs["pooled_text"]
    with pytest.raises(AnalysisInputError, match="not numeric"):
        tolerance(frame.assign(topology=frame["depth"].map({2: "a", 4: "b"})), "topology", params=params)
    with pytest.raises(AnalysisInputError, match="drop must be positive"):
        tolerance(frame, "bs_error", drop=0, params=params)


def test_tolerance_command_formats_and_figure(make_store, tmp_path):
    root = str(_linear_store(make_store, noise=0.0).root)
    text = tolerance_command(root, "bs_error", 0.05)
    lines = text.splitlines()
    assert lines[0].startswith("tolerance of test accuracy (test_accuracy) along splitting error σ (rad)")
    assert "95 % bootstrap interval over 12 chips per value" in lines[0]
    assert re.search(r"^\s+2\s+digital\s+0\.950\s+0\.050\s+\(0\.050, 0\.050\)\s+12$", text, re.M)
    assert re.search(r"^\s+4\s+insitu\s+0\.950\s+not reached \(> 0\.16\)\s+\(> 0\.16, > 0\.16\)\s+12$",
                     text, re.M)
    doc = json.loads(tolerance_command(root, "bs_error", 0.05, fmt="json"))
    assert doc["rows"][0]["tolerance"] == pytest.approx(0.05)
    assert doc["rows"][1]["tolerance"] is None and doc["rows"][1]["ci_high"] == "inf"
    back = pd.read_csv(tmp_path / "t.csv") if tolerance_command(
        root, "bs_error", 0.05, fmt="csv", out=str(tmp_path / "t.csv")) else None
    assert back.shape == (4, 19) and set(back["mode"]) == {"digital", "insitu"}
    out = tolerance_command(root, "bs_error", 0.05, figure=str(tmp_path / "fig" / "tol"))
    assert (tmp_path / "fig" / "tol.png").stat().st_size > 1000
    assert out.splitlines()[-1].endswith("tol.pdf")
    with pytest.raises(AnalysisInputError, match="unknown axis 'nope'"):
        tolerance_command(root, "nope")
    with pytest.raises(AnalysisInputError, match="unknown metric 'nope'"):
        tolerance_command(root, "bs_error", metric="nope")


def test_tolerance_figure_draws_points_and_not_reached_markers(make_store):
    root = _linear_store(make_store, noise=0.0).root
    frame, params = load(root), load_params(root)
    table = tolerance(frame, "bs_error", 0.05, params=params)
    fig = tolerance_vs_axis(table, "depth")
    ax = [a for a in fig.axes][0]
    reached = [l for l in ax.get_lines() if l.get_marker() == "o"]
    beyond = [l for l in ax.get_lines() if l.get_marker() == "^"]
    assert sum(len(l.get_xdata()) for l in reached) == 2  # digital at depth 2 and 4
    assert sum(len(l.get_xdata()) for l in beyond) == 2   # insitu, not reached
    assert all(y == pytest.approx(0.16) for l in beyond for y in l.get_ydata())
    assert ax.get_xlabel() == "mesh depth (MZI columns)"
    assert "falls 0.05 below its value at 0" in " ".join(fig.get_suptitle().split())


def test_the_tolerance_figure_reads_the_grouping_off_the_columns(make_store):
    """A tolerance table rebuilt by pandas (no attrs) still refuses to draw an axis that
    varies but is neither x nor facet: the grouping is read from its columns."""
    root = _linear_store(make_store, noise=0.0).root
    table = tolerance(load(root), "bs_error", 0.05, params=load_params(root))
    rebuilt = pd.concat([table.iloc[:2], table.iloc[2:]])
    rebuilt.attrs.clear()
    wide = rebuilt.assign(task=["a", "b"] * (len(rebuilt) // 2))  # one more axis that varies
    with pytest.raises(AnalysisInputError, match="varies in 'task' too"):
        tolerance_vs_axis(wide, "depth")
    assert len(tolerance_vs_axis(rebuilt, "depth").axes) >= 1


def test_a_two_value_axis_never_reports_a_point_tolerance(make_store, cp):
    from insitu.analysis.load import load
    from insitu.analysis.tolerance import tolerance, tolerance_text

    store = make_store("two", grid={"bs_error": [0.0, 0.05]}, seeds=(0, 1, 2, 3))
    rows = [store.row(p, s, m, {"test_accuracy": 0.95 - (2.0 if m == "digital" else 0.1) * p["bs_error"]
                                + 0.001 * s}) for p, s in store.points() for m in ("digital", "insitu")]
    store.write_part(rows, "L1")
    table = tolerance(load(store.root), "bs_error", 0.05, "test_accuracy", params=cp).set_index("mode")
    digital = table.loc["digital"]
    assert digital["reached"] and np.isnan(digital["tolerance"]) and digital["n_values"] == 2
    assert (digital["ci_low"], digital["ci_high"]) == (0.0, 0.05)
    assert tolerance_text(digital) == ("between 0 and 0.05", "(two grid values: no interpolation)")
    assert not table.loc["insitu", "reached"]


def test_the_bootstrap_resamples_chips_jointly_only_where_they_are_shared(make_store, cp):
    from insitu.analysis.load import load, load_params
    from insitu.analysis.tolerance import tolerance

    designs = {}
    for sharing in (["bs_error"], None):
        store = make_store(f"boot{bool(sharing)}", grid={"bs_error": [0.0, 0.05, 0.1]}, seeds=tuple(range(8)),
                           sharing=sharing)
        rng = np.random.default_rng(3)
        chip = rng.normal(0, 0.02, 8)  # a per-seed offset: what sharing chips cancels
        rows = [store.row(p, s, "digital", {"test_accuracy": 0.95 - 1.0 * p["bs_error"] + chip[s]})
                for p, s in store.points()]
        store.write_part(rows, "L1")
        table = tolerance(load(store.root), "bs_error", 0.05, "test_accuracy", params=load_params(store.root))
        designs[bool(sharing)] = table.iloc[0]
    assert designs[True]["design"] == "paired" and designs[False]["design"] == "independent"
    # the same numbers: resampling each chip's whole curve cancels its offset, resampling
    # values independently does not, so the paired interval is the narrower
    width = {k: r["ci_high"] - r["ci_low"] for k, r in designs.items()}
    assert designs[True]["tolerance"] == pytest.approx(designs[False]["tolerance"])
    assert width[True] < width[False] / 3
