"""Aggregates over seeds and paired gaps, checked against values computed by hand."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.load import load, load_params
from insitu.analysis.summary import (
    default_comparisons,
    gap_summary,
    interval,
    paired_differences,
    summarize,
    t_quantile,
    to_markdown,
    write_table,
)

T_975_2 = 4.302652729911275  # Student t, 0.975 quantile, 2 degrees of freedom


@pytest.fixture
def hand_store(make_store):
    """Three seeds at one point; digital 0.8/0.9/1.0, insitu 0.9/0.95/0.97 (rows shuffled)."""
    store = make_store("hand", grid={"bs_error": [0.0, 0.1]}, seeds=(0, 1, 2))
    digital = {0: 0.8, 1: 0.9, 2: 1.0}
    insitu = {0: 0.9, 1: 0.95, 2: 0.97}
    p = {**store.fixed, "bs_error": 0.1}
    rows = [store.row(p, s, "digital", {"test_accuracy": digital[s]}) for s in (0, 1, 2)]
    rows += [store.row(p, s, "insitu", {"test_accuracy": insitu[s]}) for s in (2, 0, 1)]
    # a second grid point with a single seed: sd and interval must be NaN, not zero
    q = {**store.fixed, "bs_error": 0.0}
    rows += [store.row(q, 0, m, {"test_accuracy": 0.95}) for m in ("insitu", "digital")]
    rng = np.random.default_rng(0)
    store.write_part([rows[i] for i in rng.permutation(len(rows))], "L1", 0)
    return store


def test_t_quantile_and_interval_by_hand():
    assert t_quantile(3) == pytest.approx(T_975_2, rel=1e-9)
    assert t_quantile(2) == pytest.approx(12.706204736, rel=1e-9)
    got = interval([0.8, 0.9, 1.0])
    half = T_975_2 * 0.1 / math.sqrt(3)
    assert got["n"] == 3
    assert got["mean"] == pytest.approx(0.9)
    assert got["sd"] == pytest.approx(0.1)
    assert got["ci_half_width"] == pytest.approx(4.302653 * 0.057735, rel=1e-5)
    assert (got["ci_low"], got["ci_high"]) == (pytest.approx(0.9 - half), pytest.approx(0.9 + half))
    one = interval([0.7])
    assert one["n"] == 1 and one["mean"] == 0.7 and math.isnan(one["sd"]) and math.isnan(one["ci_low"])
    assert interval([0.5, float("nan"), 0.7])["n"] == 2  # NaN metrics are not samples


def test_summarize_per_grid_point_and_mode(hand_store):
    frame = load(hand_store.root)
    table = summarize(frame, by=["bs_error"], metrics=["test_accuracy"], params=load_params(hand_store.root))
    assert list(table.columns) == ["bs_error", "mode", "metric", "n", "mean", "sd", "ci_low",
                                   "ci_high", "ci_half_width", "n_nonfinite"]
    row = table[(table["bs_error"] == 0.1) & (table["mode"] == "digital")].iloc[0]
    assert row["n"] == 3 and row["mean"] == pytest.approx(0.9) and row["sd"] == pytest.approx(0.1)
    assert row["ci_half_width"] == pytest.approx(T_975_2 * 0.1 / math.sqrt(3))
    single = table[table["bs_error"] == 0.0]
    assert (single["n"] == 1).all() and single["sd"].isna().all()
    # modes in canonical order (digital before insitu) within each grid point
    assert table["mode"].tolist() == ["digital", "insitu", "digital", "insitu"]
    # default grouping: the declared parameters that vary (here bs_error only)
    assert summarize(frame, metrics=["test_accuracy"], params=load_params(hand_store.root))["bs_error"].nunique() == 2


def test_paired_gap_pairs_same_seed(hand_store):
    frame = load(hand_store.root)
    diffs = paired_differences(frame, "test_accuracy", "insitu", "digital", by=["bs_error"])
    at = diffs[diffs["bs_error"] == 0.1].sort_values("seed")
    assert at["gap"].tolist() == pytest.approx([0.1, 0.05, -0.03])
    gaps = gap_summary(frame, "test_accuracy", by=["bs_error"], params=load_params(hand_store.root))
    assert gaps["comparison"].unique().tolist() == ["insitu - digital"]
    row = gaps[gaps["bs_error"] == 0.1].iloc[0]
    sd = statistics.stdev([0.1, 0.05, -0.03])
    assert row["n"] == 3
    assert row["mean"] == pytest.approx(0.04)
    assert row["sd"] == pytest.approx(sd)
    assert row["ci_half_width"] == pytest.approx(T_975_2 * sd / math.sqrt(3))
    assert gaps[gaps["bs_error"] == 0.0].iloc[0]["n"] == 1


def test_default_comparisons():
    assert default_comparisons(["digital", "insitu", "analog"]) == [("insitu", "digital"),
                                                                    ("analog", "digital")]
    assert default_comparisons(["three_pass", "analog"]) == [("analog", "three_pass")]
    assert default_comparisons(["insitu"]) == []


def test_unknown_axis_or_metric(hand_store):
    frame = load(hand_store.root)
    with pytest.raises(AnalysisInputError, match="unknown axis 'nope'"):
        summarize(frame, by=["nope"], params=load_params(hand_store.root))
    with pytest.raises(AnalysisInputError, match="unknown metric 'nope'"):
        summarize(frame, by=["bs_error"], metrics=["nope"], params=load_params(hand_store.root))


def test_table_export_csv_and_markdown(hand_store, tmp_path):
    table = summarize(load(hand_store.root), by=["bs_error"], metrics=["test_accuracy"], params=load_params(hand_store.root))
    csv, md = write_table(table, tmp_path / "out" / "summary")
    back = pd.read_csv(csv)
    assert back.shape == table.shape
    assert back["mean"].to_numpy() == pytest.approx(table["mean"].to_numpy())
    text = md.read_text()
    lines = text.strip().splitlines()
    assert lines[0].startswith("| bs_error | mode | metric | n | mean |")
    assert lines[1].startswith("|---:|:---|:---|---:|")
    assert len(lines) == 2 + len(table)
    assert "| 0.1 | digital | test_accuracy | 3 | 0.9 | 0.1 |" in text
    assert to_markdown(pd.DataFrame({"a": ["x|y"]})).splitlines()[2] == "| x\\|y |"
