"""The experiment registry and parameter declarations."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from insitu.sweeps.engine import registry
from insitu.sweeps.engine.registry import Experiment, Param, experiment_names, get_experiment, register


def test_selftest_is_registered_lazily():
    assert "selftest" in experiment_names()
    selftest = get_experiment("selftest")
    assert selftest.by_name["noise"].low == 0.0 and selftest.version
    with pytest.raises(KeyError):
        get_experiment("no-such-experiment")


def test_param_checks_types_ranges_and_choices():
    p = Param("rate", "float", 0.5, low=0.0, high=1.0)
    assert p.check(1) == (1.0, None)
    assert p.check(True)[1] == "expected float, got bool True"
    assert "below the minimum" in p.check(-0.1)[1]
    assert "above the maximum" in p.check(2.0)[1]
    assert "not finite" in Param("f", "float", 0.0).check(float("nan"))[1]
    assert Param("n", "int", 1).check(1.0)[1] == "expected int, got float 1.0"
    assert "is not one of 'a', 'b'" in Param("c", "str", "a", choices=("a", "b")).check("z")[1]
    with pytest.raises(ValueError, match="default"):
        Param("rate", "float", 2.0, high=1.0)
    with pytest.raises(ValueError, match="reserved"):
        Param("seed", "int", 0)
    with pytest.raises(ValueError, match="type"):
        Param("z", "complex", 0)


def test_register_refuses_a_different_declaration_under_a_taken_name():
    params = (Param("a", "int", 1),)
    first = register(Experiment("test-only", "1", params, lambda p, s, c: []))
    try:
        assert register(Experiment("test-only", "1", params, lambda p, s, c: [])).version == "1"
        with pytest.raises(ValueError, match="already registered"):
            register(Experiment("test-only", "2", params, lambda p, s, c: []))
    finally:
        registry._REGISTRY.pop(first.name)


def test_experiments_of_ones_own_are_registered_from_the_environment(monkeypatch, tmp_path):
    (tmp_path / "my_experiments_mod.py").write_text(
        "from insitu.sweeps.engine.registry import Experiment, Param, register\n"
        "register(Experiment('mine', '1', (Param('a', 'int', 1),), lambda p, s, c: [{'mode': 'x'}]))\n")
    (tmp_path / "broken_experiments_mod.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_builtins_loaded", False)
    monkeypatch.setenv(registry.MODULES_ENV, "my_experiments_mod")
    try:
        assert {"classify", "gradient", "mine"} <= set(experiment_names())
        assert get_experiment("mine").module == "my_experiments_mod"
        monkeypatch.setattr(registry, "_builtins_loaded", False)
        monkeypatch.setenv(registry.MODULES_ENV, "broken_experiments_mod")
        with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
            experiment_names()
    finally:
        registry._REGISTRY.pop("mine", None)
        sys.modules.pop("broken_experiments_mod", None)
        sys.modules.pop("my_experiments_mod", None)


def test_a_worker_finds_an_experiment_by_the_module_registering_it(monkeypatch, tmp_path):
    (tmp_path / "worker_experiments_mod.py").write_text(
        "from insitu.sweeps.engine.registry import Experiment, Param, register\n"
        "register(Experiment('theirs', '1', (Param('a', 'int', 1),), lambda p, s, c: [{'mode': 'x'}]))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(KeyError):
            get_experiment("theirs")
        assert get_experiment("theirs", "worker_experiments_mod").name == "theirs"
    finally:
        registry._REGISTRY.pop("theirs", None)
        sys.modules.pop("worker_experiments_mod", None)


def test_cluster_examples_parse():
    yaml = pytest.importorskip("yaml")
    cluster = Path(__file__).resolve().parents[2] / "sweeps" / "cluster"
    assert yaml.safe_load((cluster / "ray-cluster.yaml").read_text())["head_node_type"] == "head"
    assert yaml.safe_load((cluster / "rayjob.yaml").read_text())["kind"] == "RayJob"
    assert (cluster / "slurm.sbatch").read_text().startswith("#!/bin/bash")
