"""A new training mode with one setting is its module and its registry line
(tests/photonics/toy_mode.py): it then trains from Python, is a mode of the classify
sweep with its setting as a documented, checked parameter, and runs from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from insitu.photonics.modes import MODES, unregister_mode
from insitu.photonics.training import train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def toy():
    import tests.photonics.toy_mode as module

    if "toy" not in MODES:  # imported once per session; registered again after a test removed it
        from insitu.photonics.modes import register_mode
        register_mode(module.TOY)
    yield module
    unregister_mode("toy")


def test_the_toy_mode_trains_with_its_own_setting(toy):
    kw = dict(epochs=1, batch_size=40, optimizer="sgd", seed=3)
    digital = train("moons", mode="digital", lr=0.1, **kw)
    same = train("moons", mode="toy", toy_scale=1.0, lr=0.1, **kw)
    halved = train("moons", mode="toy", toy_scale=0.5, lr=0.2, **kw)  # SGD: the step is lr x scale x g
    np.testing.assert_allclose(same.params, digital.params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(halved.params, digital.params, rtol=0, atol=1e-9)
    assert not np.allclose(train("moons", mode="toy", toy_scale=0.5, lr=0.1, **kw).params, digital.params)
    with pytest.raises(ValueError, match="toy_scale"):
        train("moons", mode="toy", toy_scale=-1.0, lr=0.1, **kw)


def test_the_toy_mode_is_a_mode_of_the_classify_sweep(toy):
    from insitu.sweeps.experiments import classify

    experiment = classify.build()
    param = experiment.by_name["toy_scale"]
    assert (param.default, param.label, param.high, param.omit_at_default) == (1.0, "toy step scale", 10.0, True)
    assert "toy" in [m.name for m in experiment.modes]
    values = {p: [v] for p, v in experiment.defaults().items()}
    assert experiment.validate({**values, "modes": ["digital"]}, frozenset({"toy_scale"})) == [
        ("toy_scale", "is set, but no chosen mode uses it (used by toy)")]
    assert experiment.validate({**values, "modes": ["digital,toy"]}, frozenset({"toy_scale"})) == []


def test_the_toy_mode_runs_from_the_command_line(tmp_path):
    spec = tmp_path / "toy.toml"
    spec.write_text('name = "toy"\nexperiment = "classify"\nseeds = 1\n[fixed]\nmodes = "digital,toy"\n'
                    'toy_scale = 0.5\nepochs = 1\nbatch_size = 64\n')
    env = {**os.environ, "INSITU_EXPERIMENT_MODULES": "tests.photonics.toy_mode",
           "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "insitu", "run", str(spec), "--out", str(tmp_path / "s"),
                          "--backend", "serial", "-q"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    params = subprocess.run([sys.executable, "-m", "insitu", "params", "classify"], capture_output=True,
                            text=True, env=env, timeout=300).stdout
    assert "toy_scale" in params and "toy: scaled exact gradient" in params
