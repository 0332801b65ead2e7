"""Contrasts (insitu.analysis.contrasts): paired on shared chips, Welch where chips differ,
difference in differences, Holm's adjustment; each against a hand or scipy computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from insitu.analysis.contrasts import (axis_contrast, difference_in_differences, holm, mode_contrast,
                                       paired_interval, welch_interval)
from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.load import load, load_params
from insitu.analysis.summary import summarize


def test_welch_interval_agrees_with_scipys_welch_test():
    rng = np.random.default_rng(4)
    for _ in range(5):
        a, b = rng.normal(0.3, 1.0, 7), rng.normal(0.0, 2.5, 11)
        w = welch_interval(a, b)
        test = stats.ttest_ind(a, b, equal_var=False)
        assert w["estimate"] == pytest.approx(a.mean() - b.mean())
        assert w["p"] == pytest.approx(test.pvalue)
        se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        assert (w["ci_high"] - w["estimate"]) / se == pytest.approx(stats.t.ppf(0.975, w["df"]))
    assert np.isnan(welch_interval([1.0], [1.0, 2.0])["ci_low"])


def test_paired_interval_agrees_with_scipys_paired_test():
    rng = np.random.default_rng(5)
    a = rng.normal(0.0, 1.0, 9)
    b = a + rng.normal(0.2, 0.1, 9)
    p = paired_interval(b - a)
    assert p["p"] == pytest.approx(stats.ttest_rel(b, a).pvalue)
    half = stats.t.ppf(0.975, 8) * np.std(b - a, ddof=1) / 3
    assert (p["ci_low"], p["ci_high"]) == pytest.approx(((b - a).mean() - half, (b - a).mean() + half))


def test_holm_is_the_step_down_adjustment():
    assert holm([0.01, 0.04, 0.03, np.nan]).tolist()[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(holm([0.01, np.nan])[1])


@pytest.fixture
def shared(make_store, fill):
    """classify over bs_error x depth with chips shared along bs_error (stream keys)."""
    store = make_store("shared", grid={"bs_error": [0.0, 0.05, 0.1], "depth": [2, 4]},
                       seeds=(0, 1, 2, 3), sharing=["bs_error"])
    return fill.classify(store)


def test_modes_on_the_same_chips_are_paired_per_trial(classify_rows, cp):
    table = mode_contrast(classify_rows, "insitu", "digital", "test_accuracy", params=cp)
    row = table[(table["bs_error"] == 0.1) & (table["depth"] == 2)].iloc[0]
    part = classify_rows[(classify_rows["bs_error"] == 0.1) & (classify_rows["depth"] == 2)]
    wide = part.pivot_table(index="key", columns="mode", values="test_accuracy")
    gaps = wide["insitu"] - wide["digital"]
    assert row["design"] == "paired" and row["n"] == 3
    assert row["estimate"] == pytest.approx(gaps.mean())
    assert row["p"] == pytest.approx(stats.ttest_1samp(gaps, 0).pvalue)


def test_an_axis_contrast_is_welch_where_chips_differ(classify_rows, cp):
    table = axis_contrast(classify_rows, "bs_error", 0.0, 0.1, "test_accuracy", params=cp)
    row = table[(table["depth"] == 2) & (table["mode"] == "digital")].iloc[0]
    part = classify_rows[(classify_rows["depth"] == 2) & (classify_rows["mode"] == "digital")]
    at, ref = (part.loc[part["bs_error"] == v, "test_accuracy"] for v in (0.1, 0.0))
    assert row["design"] == "Welch" and (row["n"], row["n_reference"]) == (3, 3)
    assert row["estimate"] == pytest.approx(at.mean() - ref.mean())
    assert row["p"] == pytest.approx(stats.ttest_ind(at, ref, equal_var=False).pvalue)


def test_an_axis_contrast_is_paired_over_shared_chips(shared):
    rows, params = load(shared.root), load_params(shared.root)
    table = axis_contrast(rows, "bs_error", 0.0, 0.1, "test_accuracy", params=params, holm_family=True)
    assert set(table["design"]) == {"paired"}
    row = table[(table["depth"] == 4) & (table["mode"] == "digital")].iloc[0]
    part = rows[(rows["depth"] == 4) & (rows["mode"] == "digital")]
    by_seed = part.pivot_table(index="seed", columns="bs_error", values="test_accuracy")
    assert row["estimate"] == pytest.approx((by_seed[0.1] - by_seed[0.0]).mean())
    assert row["p"] == pytest.approx(stats.ttest_rel(by_seed[0.1], by_seed[0.0]).pvalue)
    assert (table["p_holm"] >= table["p"]).all()
    # the drop against the error-free cell pairs over the same chips
    summary = summarize(rows, metrics=["test_accuracy"], drop=True, params=params)
    cell = summary[(summary["bs_error"] == 0.1) & (summary["depth"] == 4) & (summary["mode"] == "digital")].iloc[0]
    assert cell["drop_design"] == "paired"
    assert cell["drop"] == pytest.approx(-row["estimate"])


def test_difference_in_differences_equals_pandas_arithmetic(shared):
    rows, params = load(shared.root), load_params(shared.root)
    table = difference_in_differences(rows, "insitu", "digital", "bs_error", 0.0, 0.05, params=params)
    wide = rows.pivot_table(index=["depth", "seed", "bs_error"], columns="mode", values="test_accuracy")
    gap = (wide["insitu"] - wide["digital"]).unstack("bs_error")
    did = (gap[0.05] - gap[0.0]).groupby(level="depth").mean()
    assert table.set_index("depth")["estimate"].to_dict() == pytest.approx(did.to_dict())
    assert set(table["design"]) == {"paired"}


def test_contrasts_name_what_the_rows_lack(classify_rows, cp):
    with pytest.raises(AnalysisInputError, match=r"mode 'spsa' is not in the rows"):
        mode_contrast(classify_rows, "spsa", "digital", params=cp)
    with pytest.raises(AnalysisInputError, match=r"bs_error = 0.3 is not in the rows"):
        axis_contrast(classify_rows, "bs_error", 0.0, 0.3, params=cp)
    with pytest.raises(AnalysisInputError, match="unknown axis 'spin'"):
        axis_contrast(classify_rows, "spin", 1, 0, params=cp)
