"""The experiment registry and parameter declarations."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sweeps import registry
from sweeps.registry import Param, experiment_names, get_experiment, register


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
    first = register("test-only", version="1", params=params, run_trial=lambda p, s, c: [])
    try:
        assert register("test-only", version="1", params=params,
                        run_trial=lambda p, s, c: []).version == "1"
        with pytest.raises(ValueError, match="already registered"):
            register("test-only", version="2", params=params, run_trial=lambda p, s, c: [])
    finally:
        registry._REGISTRY.pop(first.name)


def test_missing_builtin_module_is_skipped_but_broken_ones_raise(monkeypatch, tmp_path):
    (tmp_path / "broken_experiments_mod.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_builtins_loaded", False)
    monkeypatch.setattr(registry, "_BUILTIN_MODULES", ("absent_experiments_mod",))
    assert "selftest" in experiment_names()  # the absent module is simply skipped
    monkeypatch.setattr(registry, "_builtins_loaded", False)
    monkeypatch.setattr(registry, "_BUILTIN_MODULES", ("broken_experiments_mod",))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        experiment_names()
    sys.modules.pop("broken_experiments_mod", None)


def test_cluster_examples_parse():
    yaml = pytest.importorskip("yaml")
    cluster = Path(__file__).resolve().parents[2] / "sweeps" / "cluster"
    assert yaml.safe_load((cluster / "ray-cluster.yaml").read_text())["head_node_type"] == "head"
    assert yaml.safe_load((cluster / "rayjob.yaml").read_text())["kind"] == "RayJob"
    assert (cluster / "slurm.sbatch").read_text().startswith("#!/bin/bash")
