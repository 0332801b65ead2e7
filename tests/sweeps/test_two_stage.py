"""A spec sized to a precision runs in two fixed stages (Stein): the pilot seeds in every
cell, then per cell as many more as its pilot spread asks for, recorded in the spec."""

from __future__ import annotations

import json

import numpy as np
import pytest

from insitu.analysis.precision import stein_seeds
from insitu.sweeps.store import read_rows

SPEC = """
name = "sized"
experiment = "selftest"
seeds = 300
[fixed]
modes = "a"
[grid]
noise = [0.5, 2.0]
[precision]
half_width = 0.5
pilot_seeds = 4
metric = "value"
"""


def test_two_stages_size_each_cell_from_its_pilot(tmp_path, write_spec, cli):
    store = tmp_path / "sized"
    code, out, err = cli("run", write_spec(SPEC), "--out", store, "--backend", "serial", "-q")
    assert code == 0, err
    assert "stage 1 done (4 pilot seeds in each of 2 cells)" in out
    design = json.loads((store / "spec.json").read_text())["precision"]
    rows = read_rows(store).table.to_pylist()
    for cell in design["allocation"]:
        noise = cell["cell"]["noise"]
        mine = sorted((r for r in rows if r["noise"] == noise), key=lambda r: r["seed"])
        pilot = [r["value"] for r in mine[:4]]
        assert cell["seeds"] == max(4, min(300, stein_seeds(pilot, 0.5)))
        assert [r["seed"] for r in mine] == list(range(cell["seeds"]))  # exactly the allocated seeds
    seeds = {c["cell"]["noise"]: c["seeds"] for c in design["allocation"]}
    assert seeds[2.0] > 4 * seeds[0.5]  # four times the spread wants about 16 times the seeds
    code, out, _ = cli("run", write_spec(SPEC), "--out", store, "--backend", "serial")
    assert code == 0 and "nothing to do" in out  # the allocation is kept, never recomputed
    code, out, _ = cli("status", store)
    assert f"trials: {sum(seeds.values())} total, {sum(seeds.values())} done" in out


@pytest.mark.parametrize("table,message", [
    ("half_width = -1\npilot_seeds = 4\nmetric = 'value'", "precision.half_width: expected a positive number"),
    ("half_width = 0.5\npilot_seeds = 1\nmetric = 'value'", "precision.pilot_seeds: expected an integer from 2"),
    ("half_width = 0.5\npilot_seeds = 4\nmetric = 'value'\ncontrast = 'a-z'", "precision.contrast"),
    ("half_width = 0.5\npilot_seeds = 4\nmetric = 'value'\nstop_early = true", "precision.stop_early: unknown key"),
])
def test_a_bad_precision_table_is_one_line(tmp_path, write_spec, cli, table, message):
    text = SPEC.split("[precision]")[0] + "[precision]\n" + table + "\n"
    code, _, err = cli("run", write_spec(text), "--out", tmp_path / "x", "--backend", "serial")
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_a_changed_design_is_refused(tmp_path, write_spec, cli):
    store = tmp_path / "sized"
    assert cli("run", write_spec(SPEC.replace("seeds = 300", "seeds = 20")), "--out", store,
               "--backend", "serial", "-q")[0] == 0
    code, _, err = cli("run", write_spec(SPEC.replace("seeds = 300", "seeds = 20").replace(
        "half_width = 0.5", "half_width = 0.2")), "--out", store, "--backend", "serial")
    assert code == 2 and "precision: changed" in err
