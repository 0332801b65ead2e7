"""The ``gradient`` experiment (source of the paper's Fig. 2 study), run through its registry."""

from __future__ import annotations

import numpy as np

from insitu.sweeps.engine.registry import get_experiment


def _run(seed: int = 3, **overrides) -> dict[str, dict]:
    experiment = get_experiment("gradient")
    params = {**experiment.defaults(), "n_repeats": 6, **overrides}
    rows = experiment.run_trial(params, seed, {})
    return {row["mode"]: row for row in rows}


def test_both_protocols_are_exact_on_a_lossless_device_with_splitting_error():
    rows = _run(bs_error=0.05, phase_error=0.1)
    assert set(rows) == {"three_pass", "analog"}
    for row in rows.values():
        assert len(row["grad_errors"]) == 6
        assert row["grad_norm_true"] > 1e-6
        assert max(row["grad_errors"]) < 1e-9


def test_tap_noise_costs_gradient_accuracy_and_more_noise_costs_more():
    low, high = (_run(tap_noise=s) for s in (0.005, 0.05))
    for mode in ("three_pass", "analog"):
        assert 1e-7 < low[mode]["grad_error_median"] < high[mode]["grad_error_median"]


def test_arm_loss_imbalance_breaks_time_reversal_and_biases_both_protocols():
    rows = _run(n_ports=8, loss_imbalance_db=0.2, n_repeats=10)
    for mode in ("three_pass", "analog"):
        assert rows[mode]["grad_error_median"] > 1e-4


def test_rows_depend_only_on_the_trial_seed():
    first, again = _run(seed=11, tap_noise=0.01), _run(seed=11, tap_noise=0.01)
    other = _run(seed=12, tap_noise=0.01)
    assert first["analog"]["grad_errors"] == again["analog"]["grad_errors"]
    assert not np.allclose(first["analog"]["grad_errors"], other["analog"]["grad_errors"])
