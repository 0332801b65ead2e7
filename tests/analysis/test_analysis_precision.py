"""Seeds sized to a precision: the interval formula inverted, and Stein's two stages."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.analysis.load import load, load_params
from insitu.analysis.precision import (half_width, precision_table, seeds_for_half_width, stein_interval,
                                       stein_seeds)
from insitu.analysis.questions import compare_command, power_command
from insitu.analysis.exceptions import AnalysisInputError


@pytest.mark.parametrize("sd,target", [(0.03, 0.01), (0.1, 0.01), (0.05, 0.02), (1.0, 0.3), (0.001, 0.01)])
def test_power_inverts_the_interval_formula(sd, target):
    n = seeds_for_half_width(sd, target)
    assert half_width(sd, n) <= target
    assert n == 2 or half_width(sd, n - 1) > target


def test_the_two_stage_rule_reaches_its_nominal_coverage():
    """100 replicate studies of a cell with mean 0.9 and sd 0.05, a pilot of 6 seeds and a
    target half-width of 0.02: the interval mean ± 0.02 covers the mean in at least 90."""
    rng = np.random.default_rng(17)
    covered, sizes = 0, []
    for _ in range(100):
        pilot = rng.normal(0.9, 0.05, 6)
        n = stein_seeds(pilot, 0.02)
        values = np.concatenate([pilot, rng.normal(0.9, 0.05, n - pilot.size)])
        interval = stein_interval(values, 0.02)
        covered += interval["ci_low"] <= 0.9 <= interval["ci_high"]
        sizes.append(n)
    assert covered >= 90
    assert 20 < np.median(sizes) < 60  # (t_5 0.05 / 0.02)^2 ~ 41 on average
    with pytest.raises(ValueError, match="pilot of 2 or more"):
        stein_seeds([0.9], 0.02)


def test_the_precision_table_sizes_cells_and_contrasts(classify_store, cp):
    rows = load(classify_store.root)
    table = precision_table(rows, 0.01, "test_accuracy", params=cp)
    row = table[(table["bs_error"] == 0.1) & (table["depth"] == 2) & (table["mode"] == "digital")].iloc[0]
    sd = rows[(rows["bs_error"] == 0.1) & (rows["depth"] == 2) & (rows["mode"] == "digital")]["test_accuracy"].std()
    assert row["sd"] == pytest.approx(sd) and row["seeds_needed"] == seeds_for_half_width(sd, 0.01)
    gaps = precision_table(rows, 0.01, "test_accuracy", ("insitu", "digital"), params=cp)
    assert set(gaps["contrast"]) == {"insitu − digital"} and (gaps["n"] == 3).all()


def test_compare_and_power_commands(classify_store):
    root = str(classify_store.root)
    text = compare_command(root, "insitu", "digital")
    assert "paired: a t interval over chips" in text and "the test set is fixed" in text
    assert "not corrected for multiple comparisons" in text
    text = compare_command(root, along=["bs_error", "0", "0.1"], holm=True)
    assert "Welch" in text and "Holm-adjusted" in text and "p_holm" in text
    text = compare_command(root, "insitu", "digital", along=["bs_error", "0", "0.05"], fmt="csv")
    assert text.splitlines()[0].startswith("depth,contrast,metric,design")
    assert "seeds_needed" in power_command(root, 0.01, contrast="insitu-digital")
    for bad, message in [((root, "insitu", None), "name two modes"),
                         ((root, "insitu", "insitu"), "not with itself"),
                         ((root,), "nothing to compare")]:
        with pytest.raises(AnalysisInputError, match=message):
            compare_command(*bad)
    with pytest.raises(AnalysisInputError, match=r"bs_error = 0.3 is not in the rows"):
        compare_command(root, along=["bs_error", "0", "0.3"])
    with pytest.raises(AnalysisInputError, match="expected A-B"):
        power_command(root, 0.01, contrast="insitu")
