"""Seed groups run as device ensembles: same rows as one by one, never split across chunks."""

from __future__ import annotations

import math

from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.engine.chunker import Chunker
from insitu.sweeps.engine.runner import group_key, run_chunk, run_one
from insitu.sweeps.engine.spec import load_spec
from insitu.sweeps.engine.trials import enumerate_trials

from .helpers import stored_rows

TIMING = ("elapsed_s", "train_seconds")


def _classify_trials(write_spec, seeds=3):
    path = write_spec(f"""
        name = "groups"
        experiment = "classify"
        seeds = {seeds}
        [fixed]
        task = "circle"
        epochs = 2
        batch_size = 20
        boundary_grid = 4
        modes = "digital,insitu"
        io_amp_error = 0.01
        [grid]
        tap_noise = [0.0, 0.02]
        """)
    spec = load_spec(path)
    return enumerate_trials(spec, get_experiment("classify"))


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_grouped_chunk_rows_equal_one_by_one(write_spec):
    trials = _classify_trials(write_spec)
    experiment = get_experiment("classify")
    chunker = Chunker(trials, 1000.0, 1, group_seeds=True)
    units = [group for chunk in iter(chunker.next_chunk, None) for group in chunk.groups]
    assert [len(group) for group in units] == [3, 3]  # the chunker formed the seed groups
    ordered = [t for group in units for t in group]
    grouped = run_chunk("classify", units, {})
    single = [row for trial in ordered for row in run_one(experiment, trial, {})]
    assert len(grouped) == len(single) == 2 * len(trials)
    for g, s in zip(grouped, single):
        assert g.keys() == s.keys()
        for column in g:
            if column not in TIMING:
                assert _same(g[column], s[column]), column


def test_chunker_keeps_seed_groups_whole(write_spec):
    trials = _classify_trials(write_spec, seeds=5)
    chunker = Chunker(trials, 2.0, 2, group_seeds=True)
    chunks = list(iter(chunker.next_chunk, None))
    assert sorted(t.key for c in chunks for t in c.trials) == sorted(t.key for t in trials)
    owner = {}
    for c in chunks:
        for t in c.trials:
            owner.setdefault(group_key(t), set()).add(c.index)
    assert all(len(indices) == 1 for indices in owner.values())
    # the pilot chunk is a whole group (5 seeds), not a single trial
    assert len(chunks[0].trials) == 5


def test_cli_run_with_ensembles_matches_run_without(write_spec, cli, tmp_path):
    path = write_spec("""
        name = "groups-cli"
        experiment = "classify"
        seeds = 2
        [fixed]
        task = "circle"
        epochs = 1
        batch_size = 40
        modes = "insitu"
        tap_noise = 0.01
        [grid]
        bs_error = [0.0, 0.05]
        """)
    code, _, err = cli("run", path, "--backend", "serial", "--out", tmp_path / "grouped")
    assert code == 0, err
    off = write_spec(path.read_text() + "[ray]\nensembles = false\n", name="off.toml")
    code, _, err = cli("run", off, "--backend", "serial", "--out", tmp_path / "single")
    assert code == 0, err
    grouped, single = stored_rows(tmp_path / "grouped"), stored_rows(tmp_path / "single")
    assert len(grouped) == len(single) == 4
    for g, s in zip(grouped, single):
        for column in g:
            if column not in TIMING:
                assert _same(g[column], s[column]), column
