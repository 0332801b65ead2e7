"""Chips shared along error axes (common random numbers): trials that differ only in
parameters declared to share chips get one stream key, hence one chip (scaled), one set of
initial phases and one data order; any other parameter gives independent streams."""

from __future__ import annotations

import numpy as np

from insitu.photonics import ErrorModel
from insitu.photonics.datasets import load_task
from insitu.photonics.network import sample_devices
from insitu.photonics.training import NetworkConfig, _streams
from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.engine.spec import parse_spec
from insitu.sweeps.engine.trials import enumerate_trials
from insitu.sweeps.store import read_rows

CLASSIFY = get_experiment("classify")


def _trials(grid, seeds=2, **fixed):
    spec = parse_spec({"name": "crn", "experiment": "classify", "seeds": seeds, "fixed": fixed,
                       "grid": grid})
    return enumerate_trials(spec, CLASSIFY)


def test_two_values_of_a_shared_axis_are_the_same_chip_scaled():
    low, high = _trials({"bs_error": [0.02, 0.05]}, seeds=1)
    assert low.key != high.key and low.stream_key == high.stream_key
    assert low.trial_seed == high.trial_seed
    task = load_task("moons")
    net = NetworkConfig().build(task)
    chips, phases, orders = [], [], []
    for trial in (low, high):
        device_rng, init_rng, order_rng, *_ = _streams(trial.trial_seed)
        chips.append(sample_devices(net, ErrorModel(bs_error=trial.params["bs_error"], loss_std_db=0.05),
                                    device_rng))
        phases.append(net.init_params(init_rng))
        orders.append(order_rng.permutation(len(task.y_train)))
    for a, b in zip(*chips):  # every layer: splitting errors scale by 0.05 / 0.02, the rest is equal
        np.testing.assert_allclose(b.bs1, 2.5 * a.bs1, rtol=1e-12)
        np.testing.assert_allclose(b.bs2, 2.5 * a.bs2, rtol=1e-12)
        np.testing.assert_array_equal(b.arm_input, a.arm_input)
    np.testing.assert_array_equal(phases[0], phases[1])
    np.testing.assert_array_equal(orders[0], orders[1])


def test_error_and_training_axes_share_chips_structure_axes_do_not():
    by_seed = {}
    for t in _trials({"bs_error": [0.0, 0.05], "tap_noise": [0.0, 0.01], "lr": [0.01, 0.02],
                      "depth": [4, 6]}):
        by_seed.setdefault((t.seed, t.params["depth"]), set()).add(t.stream_key)
    assert all(len(streams) == 1 for streams in by_seed.values())  # 8 trials, one chip
    assert len({s for streams in by_seed.values() for s in streams}) == 4  # 2 seeds x 2 depths
    shared = {p.name for p in CLASSIFY.params if p.shares_chips}
    assert {"bs_error", "crosstalk", "tap_noise", "lr", "epochs", "noise_draws"} <= shared
    assert not {"task", "topology", "depth", "n_layers", "batch_size"} & shared


def test_a_sweep_along_a_shared_axis_trains_digital_identically(tmp_path, write_spec, cli):
    """Digital training never sees the chip: on shared streams its trained model, hence its
    accuracy on the error-free model, is the same at every splitting error of a seed."""
    spec = write_spec("""
        name = "crn"
        experiment = "classify"
        seeds = 2
        [fixed]
        task = "moons"
        modes = "digital,insitu"
        epochs = 1
        batch_size = 64
        [grid]
        bs_error = [0.0, 0.05]
    """)
    code, _, err = cli("run", spec, "--out", tmp_path / "s", "--backend", "serial", "-q")
    assert code == 0, err
    rows = read_rows(tmp_path / "s").table.to_pylist()
    for seed in (0, 1):
        digital = [r for r in rows if r["seed"] == seed and r["mode"] == "digital"]
        assert len({r["stream_key"] for r in digital}) == 1 and len({r["key"] for r in digital}) == 2
        assert len({r["ideal_test_accuracy"] for r in digital}) == 1
    assert len({r["stream_key"] for r in rows}) == 2  # one chip per seed
