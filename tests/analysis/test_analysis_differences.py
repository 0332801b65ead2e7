"""Unpaired differences between grid values: Welch intervals, grouping, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from insitu.analysis.differences import unpaired_difference, welch_interval
from insitu.analysis.exceptions import AnalysisInputError


def test_welch_interval_agrees_with_scipys_welch_test():
    rng = np.random.default_rng(4)
    for _ in range(5):
        a, b = rng.normal(0.3, 1.0, 7), rng.normal(0.0, 2.5, 11)
        w = welch_interval(a, b)
        p = stats.ttest_ind(a, b, equal_var=False).pvalue
        assert w["difference"] == pytest.approx(a.mean() - b.mean())
        # the 95 % interval excludes 0 exactly when the two-sided Welch test rejects at 5 %
        assert (w["ci_low"] > 0 or w["ci_high"] < 0) == (p < 0.05)
        # at the interval's end the Welch statistic sits on the 97.5 % t quantile
        se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        assert (w["ci_high"] - w["difference"]) / se == pytest.approx(stats.t.ppf(0.975, w["df"]))
    assert np.isnan(welch_interval([1.0], [1.0, 2.0])["ci_low"])


def test_unpaired_difference_per_group_and_mode(classify_rows, cp):
    table = unpaired_difference(classify_rows, "bs_error", 0.1, 0.0, "test_accuracy", params=cp)
    assert set(table["depth"]) == {2, 4} and set(table["mode"]) == {"digital", "insitu", "analog"}
    row = table[(table["depth"] == 2) & (table["mode"] == "digital")].iloc[0]
    part = classify_rows[(classify_rows["depth"] == 2) & (classify_rows["mode"] == "digital")]
    at = part.loc[part["bs_error"] == 0.1, "test_accuracy"]
    ref = part.loc[part["bs_error"] == 0.0, "test_accuracy"]
    assert row["n"] == 3 and row["n_reference"] == 3
    assert row["difference"] == pytest.approx(at.mean() - ref.mean())
    assert row["ci_low"] < row["difference"] < row["ci_high"]
    pooled = unpaired_difference(classify_rows, "bs_error", 0.1, 0.0, "test_accuracy", pool=["depth"], params=cp)
    assert "depth" not in pooled.columns and pooled.attrs["pooled"] == ["depth"]


def test_unpaired_difference_names_a_value_the_rows_lack(classify_rows, cp):
    with pytest.raises(AnalysisInputError, match=r"bs_error = 0.3 \(value\) is not in the rows"):
        unpaired_difference(classify_rows, "bs_error", 0.3, 0.0, "test_accuracy", params=cp)
    with pytest.raises(AnalysisInputError, match="unknown axis 'spin'"):
        unpaired_difference(classify_rows, "spin", 1, 0, params=cp)
