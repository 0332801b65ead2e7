"""The ``unitary`` experiment (issue 25): a Haar-random unitary programmed onto a sampled chip,
run through its registry and through the engine's serial path."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.engine.spec import SpecError, parse_spec
from insitu.sweeps.engine.trials import enumerate_trials
from insitu.sweeps.store import read_rows
from insitu.sweeps.store.keys import trial_key

UNITARY = get_experiment("unitary")
METHODS = ["naive", "corrected", "twin", "insitu"]


def _run(seed: int = 3, **overrides) -> dict[str, dict]:
    params = {**UNITARY.defaults(), "fit_steps": 30, **overrides}
    return {row["mode"]: row for row in UNITARY.run_trial(params, seed, {})}


@pytest.mark.parametrize("topology", ["rectangular", "triangular"])
@pytest.mark.parametrize("mzi", ["standard", "three_splitter"])
def test_an_error_free_chip_realises_the_target_by_every_method(topology, mzi):
    rows = _run(topology=topology, mzi=mzi, n_ports=6, fit_steps=3)
    assert list(rows) == METHODS
    for row in rows.values():
        assert row["matrix_error"] < 1e-12 and row["infidelity"] < 1e-12
        assert row["program_seconds"] >= 0
    assert rows["naive"]["curve_matrix_error"] == [] and len(rows["insitu"]["curve_matrix_error"]) == 4


def test_methods_order_as_their_information_allows():
    rows = _run(n_ports=8, bs_error=0.05, phase_error=0.1, calibration_error=0.005, fit_steps=150, fit_lr=0.01)
    naive, corrected, twin, insitu = (rows[m]["matrix_error"] for m in METHODS)
    assert corrected < 0.5 * naive and twin <= corrected * 1.001
    assert insitu < 0.2 * naive
    for row in rows.values():
        assert row["fidelity"] == pytest.approx(1 - row["infidelity"])
        assert 0 < row["fidelity"] <= 1 + 1e-12


def test_an_in_situ_fit_starts_where_fit_start_says_and_keeps_its_best_phases():
    fit = dict(n_ports=8, bs_error=0.05, calibration_error=0.0, fit_steps=20)
    from_corrected = _run(fit_start="corrected", **fit)
    curve = from_corrected["insitu"]["curve_matrix_error"]
    assert curve[0] == pytest.approx(from_corrected["corrected"]["matrix_error"], rel=1e-9)
    assert from_corrected["insitu"]["matrix_error"] <= curve[0]  # noise-free: measured = true loss
    from_naive = _run(**fit)
    assert from_naive["insitu"]["curve_matrix_error"][0] == pytest.approx(from_naive["naive"]["matrix_error"], rel=1e-9)
    assert curve[0] < 0.5 * from_naive["insitu"]["curve_matrix_error"][0]
    # the other methods do not depend on where the in situ fit starts
    assert all(from_corrected[m]["matrix_error"] == from_naive[m]["matrix_error"] for m in ("naive", "corrected"))


def test_rows_depend_only_on_the_trial_seed_and_chips_are_shared_along_errors():
    drop = lambda rows: {m: {k: v for k, v in r.items() if k != "program_seconds"} for m, r in rows.items()}  # noqa: E731
    first = _run(seed=11, bs_error=0.02, tap_noise=0.01, fit_steps=5)
    assert drop(first) == drop(_run(seed=11, bs_error=0.02, tap_noise=0.01, fit_steps=5))
    assert drop(first) != drop(_run(seed=12, bs_error=0.02, tap_noise=0.01, fit_steps=5))
    # The same seed at ten times the splitting error is the same chip scaled: the naive
    # error is first order in it.
    scaled = _run(seed=11, bs_error=0.002, fit_steps=0, modes="naive")["naive"]["matrix_error"]
    base = _run(seed=11, bs_error=0.0002, fit_steps=0, modes="naive")["naive"]["matrix_error"]
    assert scaled / base == pytest.approx(10.0, rel=0.01)
    # the method list does not change the chip, the target or the twin
    alone = _run(seed=11, bs_error=0.02, modes="corrected")["corrected"]["matrix_error"]
    assert alone == _run(seed=11, bs_error=0.02)["corrected"]["matrix_error"]


def test_three_splitter_and_standard_chips_share_streams():
    spec = parse_spec({"name": "u", "experiment": "unitary", "seeds": 1, "fixed": {},
                       "grid": {"mzi": ["standard", "three_splitter"], "bs_error": [0.01, 0.02],
                                "n_ports": [4, 8]}})
    trials = enumerate_trials(spec, UNITARY)
    by_ports = {}
    for t in trials:
        by_ports.setdefault(t.params["n_ports"], set()).add(t.stream_key)
    assert [len(v) for v in by_ports.values()] == [1, 1] and len({t.key for t in trials}) == 8


def test_golden_key():
    # A regression guard: a change of the experiment's parameters or defaults changes its keys.
    params = {**UNITARY.defaults(), "bs_error": 0.01}
    assert UNITARY.version == "1"
    assert trial_key("unitary", UNITARY.version, UNITARY.key_params(params), 0) == "c4751b6410a20e2f"
    spec = parse_spec({"name": "u", "experiment": "unitary", "seeds": 1, "fixed": {"bs_error": 0.01}, "grid": {}})
    assert enumerate_trials(spec, UNITARY)[0].key == "c4751b6410a20e2f"


@pytest.mark.parametrize(
    "fixed, grid, message",
    [
        ({"modes": "bogus"}, {}, "fixed.modes: 'bogus': unknown mode 'bogus'"),
        ({"modes": "naive", "fit_lr": 0.1}, {}, "fixed.fit_lr: is set, but no chosen method uses it (used by insitu)"),
        ({"modes": "naive,insitu"}, {"calibration_error": [0.0, 0.01]},
         "grid.calibration_error: is set, but no chosen method uses it (used by corrected, twin)"),
        ({"modes": "naive,twin", "fit_start": "corrected"}, {},
         "fixed.fit_start: is set, but no chosen method uses it (used by insitu)"),
        ({"n_ports": 512}, {}, "n_ports"),
        ({"topology": "diamond"}, {}, "topology"),
    ],
)
def test_unitary_refuses_bad_combinations(fixed, grid, message):
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "v", "experiment": "unitary", "seeds": 1, "fixed": fixed, "grid": grid})
    assert any(message in p for p in info.value.problems), info.value.problems


def test_an_in_situ_fit_from_corrected_phases_reads_the_calibration():
    spec = parse_spec({"name": "v", "experiment": "unitary", "seeds": 1,
                       "fixed": {"modes": "insitu", "fit_start": "corrected", "calibration_error": 0.01}, "grid": {}})
    assert enumerate_trials(spec, UNITARY)[0].params["fit_start"] == "corrected"


def test_one_trial_runs_through_the_serial_engine(tmp_path, write_spec, cli):
    spec = write_spec("""
        name = "unitary-smoke"
        experiment = "unitary"
        seeds = 1
        [fixed]
        n_ports = 4
        fit_steps = 3
        bs_error = 0.02
        calibration_error = 0.001
        tap_noise = 0.01
    """)
    code, _, err = cli("run", spec, "--out", tmp_path / "s", "--backend", "serial", "-q")
    assert code == 0, err
    rows = read_rows(tmp_path / "s").table.to_pylist()
    assert sorted(r["mode"] for r in rows) == sorted(METHODS)
    assert all(r["status"] == "ok" and np.isfinite(r["matrix_error"]) for r in rows)
    code, out, err = cli("summary", tmp_path / "s")
    assert code == 0, err
    assert "matrix error" in out
