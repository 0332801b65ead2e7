"""The experiments' validation hooks: combinations of allowed values that a spec may not
hold are refused by the spec check (one line each), and the CLI writes nothing."""

from __future__ import annotations

import pytest

from insitu.sweeps.engine.spec import SpecError
from insitu.sweeps.engine.spec import parse_spec


def _spec(experiment="classify", fixed=None, grid=None):
    return {"name": "v", "experiment": experiment, "seeds": 2, "fixed": fixed or {}, "grid": grid or {}}


@pytest.mark.parametrize(
    "fixed,grid,message",
    [
        ({"modes": ""}, {}, "fixed.modes: '': no mode given"),
        ({"modes": "bogus"}, {}, "fixed.modes: 'bogus': unknown mode 'bogus'"),
        ({}, {"modes": ["digital,insitu", "digital,bogus"]}, "grid.modes: 'digital,bogus': unknown mode 'bogus'"),
        ({"modes": "insitu,insitu"}, {}, "listed twice"),
        ({"task": "mnist64"}, {}, "fixed.task: 'mnist64' needs mnist_path"),
        ({}, {"task": ["digits64", "mnist128"]}, "grid.task: 'mnist128' needs mnist_path"),
        ({"mnist_path": "data/mnist"}, {}, "fixed.mnist_path: is set, but no task reads MNIST"),
        ({"mnist_path": "data/mnist"}, {"task": ["digits4", "digits64"]}, "fixed.mnist_path: is set, but no task reads MNIST"),
        ({"modes": "digital,insitu", "spsa_delta": 0.1}, {}, "fixed.spsa_delta: is set, but no chosen mode uses it"),
        ({"modes": "digital"}, {"spsa_samples": [1, 4]}, "grid.spsa_samples: is set, but no chosen mode uses it"),
        ({"modes": "digital,spsa,insitu"}, {"calibration_error": [0.0, 0.01]},
         "grid.calibration_error: is set, but no chosen mode uses it (used by calibrated, corrected, pat)"),
        ({"modes": "insitu", "twin": "ideal"}, {}, "fixed.twin: is set, but no chosen mode uses it"),
        ({"modes": "pat", "twin": "ideal", "calibration_error": 0.01}, {}, "twin = 'ideal' uses no calibration"),
    ],
)
def test_classify_refuses_bad_combinations(fixed, grid, message):
    with pytest.raises(SpecError) as info:
        parse_spec(_spec(fixed=fixed, grid=grid))
    assert len(info.value.problems) == 1
    assert message in info.value.problems[0]


@pytest.mark.parametrize(
    "fixed,grid",
    [
        ({"modes": "digital,spsa", "spsa_delta": 0.1, "spsa_samples": 2}, {}),
        ({"modes": "insitu"}, {"modes": None}),
        ({"modes": "pat", "twin": "ideal"}, {}),
        ({}, {"modes": ["digital,calibrated", "pat"], "calibration_error": [0.0, 0.05]}),
        ({"task": "mnist64", "mnist_path": "data/mnist"}, {}),
        ({"mnist_path": "data/mnist"}, {"task": ["digits64", "mnist128"]}),
    ],
)
def test_classify_accepts_parameters_a_chosen_mode_uses(fixed, grid):
    grid = {k: v for k, v in grid.items() if v is not None}
    if "modes" in grid:
        fixed = {k: v for k, v in fixed.items() if k != "modes"}
    spec = parse_spec(_spec(fixed=fixed, grid=grid))
    assert spec.fixed == fixed


@pytest.mark.parametrize("modes,message", [("", "no mode given"), ("three_pass,ideal", "unknown mode 'ideal'")])
def test_gradient_refuses_bad_protocol_lists(modes, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(_spec("gradient", fixed={"modes": modes}))


def test_a_value_already_refused_is_not_judged_again():
    # a bad value is one problem; the hook does not add guesses about the defaults left
    with pytest.raises(SpecError) as info:
        parse_spec(_spec(fixed={"modes": 3, "spsa_delta": 0.1}))
    assert len(info.value.problems) == 1 and "fixed.modes: expected str" in info.value.problems[0]


def test_cli_exits_two_with_one_line_and_writes_nothing(cli, write_spec, tmp_path):
    path = write_spec("""
        name = "bad"
        experiment = "classify"
        seeds = 2
        [fixed]
        modes = "digital,insitu"
        spsa_delta = 0.1
    """)
    out = tmp_path / "store"
    code, _, err = cli("run", path, "--out", out, "--backend", "serial")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("insitu: error:") and "spsa_delta" in err
    assert not out.exists()
