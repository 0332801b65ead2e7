"""Spec validation: every bad spec gives one line per problem, exit 2, nothing written."""

from __future__ import annotations

import tomllib

import pytest

from insitu.sweeps.engine.spec import SpecError
from insitu.sweeps.engine.spec import change_problems, load_spec, parse_spec

GOOD = """
name = "demo"
experiment = "selftest"
seeds = 2
[fixed]
curve_len = 4
[grid]
x = [0, 1.5]
dist = ["normal", "uniform"]
[ray]
workers = 2
chunk_seconds = 0.5
"""


def test_good_spec_is_normalised(write_spec):
    spec = load_spec(write_spec(GOOD))
    assert spec.name == "demo" and spec.experiment == "selftest"
    assert spec.seeds == [0, 1]
    assert spec.grid == {"x": [0.0, 1.5], "dist": ["normal", "uniform"]}
    assert isinstance(spec.grid["x"][0], float)  # ints are accepted for float parameters
    assert spec.fixed == {"curve_len": 4}
    assert spec.ray_setting("workers") == 2 and spec.ray_setting("object_store_mb") == 80
    assert spec.trial_count == 8


def test_seed_list_and_canonical_forms_round_trip(write_spec):
    spec = load_spec(write_spec(GOOD.replace("seeds = 2", "seeds = [3, 7]")))
    assert spec.seeds == [3, 7]
    assert parse_spec(tomllib.loads(spec.to_toml())) == spec
    data = spec.to_json()
    assert data["experiment_version"] == spec.experiment_version
    assert parse_spec({k: v for k, v in data.items() if k != "experiment_version"}) == spec


BAD_SPECS = {
    "unknown top-level key": ("colour = 3\n", ["colour: unknown key"]),
    "unknown fixed parameter": ("[fixed]\nspeed = 1.0\n", ["fixed.speed: unknown parameter"]),
    "unknown axis": ("[grid]\nspeed = [1.0]\n", ["grid.speed: unknown parameter"]),
    "wrong type": ("[fixed]\ncurve_len = 2.5\n", ["fixed.curve_len: expected int, got float"]),
    "bool is not a number": ("[fixed]\nx = true\n", ["fixed.x: expected float, got bool"]),
    "string for float": ("[grid]\nx = [1.0, \"two\"]\n", ["grid.x: expected float, got str"]),
    "empty axis": ("[grid]\nx = []\n", ["grid.x: empty axis"]),
    "axis not a list": ("[grid]\nx = 1.0\n", ["grid.x: expected a list"]),
    "duplicate axis value": ("[grid]\nx = [1, 1.0]\n", ["grid.x: duplicate value 1.0"]),
    "negative noise": ("[grid]\nnoise = [0.1, -0.2]\n",
                       ["grid.noise: value -0.2 is below the minimum 0.0"]),
    "not a choice": ("[fixed]\ndist = \"cauchy\"\n", ["fixed.dist: value 'cauchy' is not one of"]),
    "fixed and grid": ("[fixed]\nx = 1.0\n[grid]\nx = [2.0]\n", ["grid.x: also set in [fixed]"]),
    "zero seeds": ("seeds = 0\n", ["seeds: a seed count must be at least 1"]),
    "negative seed": ("seeds = [1, -1]\n", ["seeds: expected integers 0 <= seed < 2**63"]),
    "unknown ray setting": ("[ray]\ncolour = 1\n", ["ray.colour: unknown setting"]),
    "bad ray value": ("[ray]\nworkers = -1\n", ["ray.workers: value -1 is below the minimum 0"]),
    "two problems": ("[fixed]\nspeed = 1.0\nnoise = -1.0\n",
                     ["fixed.speed: unknown parameter", "fixed.noise: value -1.0 is below"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_lines_exit_2_and_nothing_written(case, write_spec, cli, tmp_path):
    extra, expected = BAD_SPECS[case]
    text = 'name = "bad"\nexperiment = "selftest"\n' + extra
    out = tmp_path / "store"
    code, stdout, stderr = cli("run", write_spec(text), "--out", out, "--backend", "serial")
    lines = stderr.strip().splitlines()
    assert code == 2
    assert len(lines) == len(expected)
    for line, fragment in zip(lines, expected):
        assert line.startswith("insitu: error: ") and fragment in line, line
    assert not out.exists()
    assert stdout == ""


def test_unknown_experiment(write_spec, cli, tmp_path):
    code, _, err = cli("run", write_spec('name = "a"\nexperiment = "nope"\n'),
                       "--out", tmp_path / "s")
    assert code == 2 and "experiment: unknown experiment 'nope'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_malformed_toml_names_its_line(write_spec, cli, tmp_path):
    code, _, err = cli("run", write_spec('name = "a"\nexperiment = \n'), "--out", tmp_path / "s")
    assert code == 2 and "malformed TOML" in err and "line 2" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_missing_spec_file(cli, tmp_path):
    code, _, err = cli("run", tmp_path / "none.toml", "--out", tmp_path / "s")
    assert code == 2 and "no such spec file" in err and not (tmp_path / "s").exists()


def test_missing_name_and_experiment():
    with pytest.raises(SpecError) as info:
        parse_spec({}, source="s.toml")
    assert info.value.problems == ["s.toml: name: missing", "s.toml: experiment: missing"]


def test_only_added_values_and_seeds_are_compatible():
    base = {"name": "a", "experiment": "selftest", "seeds": 2, "grid": {"x": [0.0, 1.0]}}
    old = parse_spec(base)
    assert change_problems(old, parse_spec({**base, "seeds": 3, "grid": {"x": [0, 1, 2]}})) == []
    assert change_problems(old, parse_spec({**base, "ray": {"workers": 7}})) == []
    assert change_problems(old, parse_spec({**base, "fixed": {"noise": 1.0}})) == []  # default
    changed = change_problems(old, parse_spec({**base, "grid": {"x": [1.0]},
                                               "fixed": {"noise": 2.0}, "seeds": [1]}))
    assert [p.split(":")[0] for p in changed] == ["fixed.noise", "grid.x", "seeds"]
    added_axis = change_problems(old, parse_spec({**base, "grid": {"x": [0.0, 1.0],
                                                                   "noise": [2.0, 3.0]}}))
    assert added_axis and added_axis[0].startswith("grid.noise: axis added without the old value 1.0")
