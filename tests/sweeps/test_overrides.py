"""``insitu run SPEC --set KEY=VALUE``: overrides validated as the spec file is, and recorded
in the store's spec."""

from __future__ import annotations

import json
import re

import pytest

from insitu.errors import InputError
from insitu.sweeps.app.catalog import resolve_spec
from insitu.sweeps.engine.overrides import parse_value, split_commas
from insitu.sweeps.engine.spec import SpecError, load_spec

SPEC = """
name = "o"
experiment = "selftest"
seeds = 3
[fixed]
curve_len = 2
[grid]
x = [0.0, 1.0]
[ray]
chunk_seconds = 0.001
"""


def problems(call) -> list[str]:
    """The one-line problems of an InputError, without their source prefix."""
    with pytest.raises(InputError) as info:
        call()
    return [re.sub(r"^.*?\.toml( with --set)?: ", "", p) for p in info.value.problems]


def test_overrides_are_stored_in_the_spec_and_a_rerun_finds_every_trial(cli, write_spec, tmp_path):
    out = tmp_path / "s"
    spec = write_spec(SPEC)
    args = ("--set", "x=0,2,3", "--set", "seeds=2", "--set", "fixed.curve_len=4",
            "--set", "noise=0.5", "--set", "ray.chunk_seconds=0.5")
    code, stdout, err = cli("run", spec, "--out", out, "--backend", "serial", *args)
    assert code == 0 and "6 trials (0 errors)" in stdout, err
    stored = json.loads((out / "spec.json").read_text())
    assert stored["grid"] == {"x": [0.0, 2.0, 3.0]} and stored["seeds"] == [0, 1]
    assert stored["fixed"] == {"curve_len": 4, "noise": 0.5} and stored["ray"]["chunk_seconds"] == 0.5
    assert "noise = 0.5" in (out / "spec.toml").read_text()
    record = json.loads((out / "launches.jsonl").read_text().splitlines()[0])
    assert record["overrides"] == ["x=0,2,3", "seeds=2", "fixed.curve_len=4", "noise=0.5",
                                   "ray.chunk_seconds=0.5"]
    code, stdout, _ = cli("run", spec, "--out", out, "--backend", "serial", *args)
    assert code == 0 and "nothing to do, all 6 trials are stored" in stdout
    # The same spec written as a file is the same spec (same keys: nothing to run).
    same = write_spec(SPEC.replace("seeds = 3", "seeds = 2").replace("curve_len = 2", "curve_len = 4\nnoise = 0.5")
                      .replace("x = [0.0, 1.0]", "x = [0.0, 2.0, 3.0]").replace("0.001", "0.5"), "same.toml")
    assert load_spec(same) == load_spec(spec, args[1::2])
    code, stdout, _ = cli("run", same, "--out", out, "--backend", "serial")
    assert code == 0 and "nothing to do" in stdout


@pytest.mark.parametrize("overrides, toml_spec", [
    (["x=1"], SPEC.replace("[grid]\nx = [0.0, 1.0]", "x = 1")),  # a grid axis made fixed
    (["curve_len=2,3"], SPEC.replace("curve_len = 2\n", "").replace("[grid]", "[grid]\ncurve_len = [2, 3]")),
    (["grid.curve_len=5"], SPEC.replace("curve_len = 2\n", "").replace("[grid]", "[grid]\ncurve_len = [5]")),
    (["x=[0, 0.5]"], SPEC.replace("x = [0.0, 1.0]", "x = [0.0, 0.5]")),
    (["seeds=0,5,9"], SPEC.replace("seeds = 3", "seeds = [0, 5, 9]")),
    (["seeds=[4, 2]"], SPEC.replace("seeds = 3", "seeds = [4, 2]")),
    (["dist=uniform"], SPEC.replace("curve_len = 2", 'curve_len = 2\ndist = "uniform"')),
    (["fixed.modes=a,c"], SPEC.replace("curve_len = 2", 'curve_len = 2\nmodes = "a,c"')),
    (["modes=\"a,c\""], SPEC.replace("curve_len = 2", 'curve_len = 2\nmodes = "a,c"')),
    (['grid.modes="a,b","a"'], SPEC.replace("[grid]", '[grid]\nmodes = ["a,b", "a"]')),
    (["busy=true", "name=other"], SPEC.replace('"o"', '"other"').replace("curve_len = 2", "curve_len = 2\nbusy = true")),
])
def test_each_form_means_what_the_toml_would(write_spec, overrides, toml_spec):
    assert load_spec(write_spec(SPEC), overrides) == load_spec(write_spec(toml_spec, "same.toml"))


@pytest.mark.parametrize("overrides, toml_spec", [
    (["x=0,abc"], SPEC.replace("x = [0.0, 1.0]", 'x = [0.0, "abc"]')),
    (["x=0,0"], SPEC.replace("x = [0.0, 1.0]", "x = [0, 0]")),
    (["xx=1"], SPEC.replace("curve_len = 2", "curve_len = 2\nxx = 1")),
    (["dist=cauchy"], SPEC.replace("curve_len = 2", 'curve_len = 2\ndist = "cauchy"')),
    (["noise=-1"], SPEC.replace("curve_len = 2", "curve_len = 2\nnoise = -1")),
    (["seeds=0"], SPEC.replace("seeds = 3", "seeds = 0")),
    (["seeds=1,1"], SPEC.replace("seeds = 3", "seeds = [1, 1]")),
    (["ray.workerz=2"], SPEC.replace("chunk_seconds = 0.001", "chunk_seconds = 0.001\nworkerz = 2")),
    (["name=a b"], SPEC.replace('"o"', '"a b"')),
])
def test_a_bad_override_gets_the_error_the_toml_would(write_spec, overrides, toml_spec):
    from_set = problems(lambda: load_spec(write_spec(SPEC), overrides))
    from_toml = problems(lambda: load_spec(write_spec(toml_spec, "same.toml")))
    assert from_set == from_toml and len(from_set) == 1


def test_a_bad_override_is_one_line_exit_2_and_nothing_written(cli, write_spec, tmp_path):
    out = tmp_path / "s"
    code, _, err = cli("run", write_spec(SPEC), "--out", out, "--set", "x=0,abc")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("insitu: error: ") and "with --set: grid.x: expected float, got str 'abc'" in err
    code, _, err = cli("run", write_spec(SPEC), "--out", out, "--set", "bs_eror=0,1")
    assert code == 2 and "grid.bs_eror: unknown parameter of experiment 'selftest'" in err
    assert not out.exists()


@pytest.mark.parametrize("arg, problem", [
    ("x", "expected KEY=VALUE"),
    ("=1", "expected KEY=VALUE"),
    ("x=", "no value after '='"),
    ("foo.x=1", "unknown section 'foo'"),
    ("fixed.=1", "expected fixed.NAME=VALUE"),
    ("fixed=1", "fixed is a table: write fixed.NAME=VALUE"),
    ("experiment=gradient", "the experiment cannot be overridden"),
    ('x="unclosed', "not a TOML value"),
    ("x=[1, 2", "not a TOML value"),
    ("x=1,,2", "an empty value in the comma list"),
    ("modes=a,b", "ambiguous: 'modes' takes comma-separated text itself; write fixed.modes=a,b"),
])
def test_malformed_overrides_are_named(cli, write_spec, tmp_path, arg, problem):
    out = tmp_path / "s"
    code, _, err = cli("run", write_spec(SPEC), "--out", out, "--set", arg)
    assert code == 2 and err.count("\n") == 1 and problem in err, err
    assert f"--set {arg!r}" in err
    assert not out.exists()


def test_a_key_is_set_once(write_spec):
    (line,) = problems(lambda: load_spec(write_spec(SPEC), ["x=1", "grid.x=2,3"]))
    assert line == "--set 'grid.x=2,3': 'x' is already set by --set 'x=1'"


def test_a_dry_run_counts_the_overridden_spec_and_writes_nothing(cli, write_spec, tmp_path):
    out = tmp_path / "s"
    code, stdout, _ = cli("run", write_spec(SPEC), "--out", out, "--dry-run", "--no-pilot",
                          "--set", "x=0,1,2,3", "--set", "seeds=5")
    assert code == 0 and stdout.strip() == "o: 20 trials (20 pending) of experiment selftest v1"
    assert not out.exists()


def test_values_are_toml_and_commas_split_outside_quotes_and_brackets():
    assert parse_value("0.01") == 0.01 and parse_value("8") == 8 and parse_value("true") is True
    assert parse_value("moons") == "moons" and parse_value('"a,b"') == "a,b"
    assert parse_value("[1, 2.5]") == [1, 2.5] and parse_value("1e-3") == 0.001
    with pytest.raises(ValueError):
        parse_value("1\nname = 'x'")
    assert split_commas('"a,b", \'c,d\',[1,2],{a=1,b=2}, e') == ['"a,b"', "'c,d'", "[1,2]", "{a=1,b=2}", "e"]
    assert split_commas(r'"a\",b",c') == [r'"a\",b"', "c"]


def test_a_shipped_spec_takes_overrides(cli, tmp_path):
    code, stdout, _ = cli("run", "quick", "--out", tmp_path / "q", "--dry-run", "--no-pilot",
                          "--set", "bs_error=0,0.01", "--set", "seeds=2", "--set", "fixed.epochs=5")
    assert code == 0 and "trials" in stdout
    spec = load_spec(resolve_spec("quick"), ["bs_error=0,0.01", "seeds=2", "fixed.epochs=5"])
    assert spec.grid["bs_error"] == [0.0, 0.01] and spec.seeds == [0, 1] and spec.fixed["epochs"] == 5
    assert f"{spec.trial_count} trials ({spec.trial_count} pending)" in stdout
    with pytest.raises(SpecError):
        load_spec(tmp_path / "missing.toml", ["seeds=2"])
