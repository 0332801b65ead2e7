"""The chunk function, chunk sizing, and independence of results from chunking."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sweeps.helpers import stored_rows
from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.engine.chunker import ChunkDone, Chunker
from insitu.sweeps.engine.runner import check_rows, one_line, run_chunk
from insitu.sweeps.engine.spec import parse_spec
from insitu.sweeps.engine.trials import enumerate_trials

SELFTEST = get_experiment("selftest")


def trials(count: int, **fixed):
    spec = parse_spec({"name": "r", "experiment": "selftest", "seeds": count, "fixed": fixed})
    return enumerate_trials(spec, SELFTEST)


def test_rows_carry_fixed_columns_params_and_metrics():
    rows = run_chunk("selftest", trials(2, modes="u,v,w"), {})
    assert [r["mode"] for r in rows] == ["u", "v", "w"] * 2
    row = rows[0]
    assert row["status"] == "ok" and row["error"] is None and row["elapsed_s"] >= 0
    assert row["experiment"] == "selftest" and row["experiment_version"] == SELFTEST.version
    assert set(SELFTEST.by_name) <= set(row) and {"value", "curve", "count"} <= set(row)
    rng = np.random.default_rng([row["trial_seed"], 0])
    assert row["draw"] == rng.normal()


def test_a_failing_trial_is_one_error_row_and_the_chunk_goes_on():
    chunk = trials(1, fail=True) + trials(1)
    rows = run_chunk("selftest", chunk, {})
    assert [r["status"] for r in rows] == ["error", "ok", "ok"]
    assert rows[0]["mode"] is None and "\n" not in rows[0]["error"]


def test_results_do_not_depend_on_chunking_or_cache():
    everything = trials(12, curve_len=4)
    whole = run_chunk("selftest", everything, {})
    pieces = []
    for start in range(0, 12, 5):
        pieces += run_chunk("selftest", everything[start:start + 5], {})
    strip = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]
    assert strip(whole) == strip(pieces)


def test_stores_are_identical_across_chunk_sizes(cli, write_spec, tmp_path):
    spec = """
    name = "c"
    experiment = "selftest"
    seeds = 4
    [grid]
    x = [0.0, 1.0, 2.0]
    [ray]
    chunk_seconds = {}
    """
    results = []
    for seconds in (0.001, 1000.0):
        out = tmp_path / f"s{seconds}"
        code, _, _ = cli("run", write_spec(spec.format(seconds), f"{seconds}.toml"), "--out",
                         out, "--backend", "serial")
        assert code == 0
        results.append(stored_rows(out))
    assert results[0] == results[1] and len(results[0]) == 24


def test_chunker_pilots_then_sizes_from_the_estimate_and_balances_the_tail():
    chunker = Chunker(trials(100), chunk_seconds=1.0, workers=2)
    pilot = chunker.next_chunk()
    assert len(pilot.trials) == 1
    chunker.observe(ChunkDone(pilot, [], 0.1))  # 0.1 s per trial -> 10 per chunk
    sizes = []
    while (chunk := chunker.next_chunk()) is not None:
        sizes.append(len(chunk.trials))
    assert sizes[0] == 10 and sum(sizes) == 99 and sizes[-1] == 1
    assert sizes == sorted(sizes, reverse=True)


def test_chunker_requeues_first_and_splits_a_chunk_that_keeps_dying():
    chunker = Chunker(trials(10), chunk_seconds=1.0, workers=1)
    chunker.observe(ChunkDone(chunker.next_chunk(), [], 0.01))
    chunk = chunker.next_chunk()
    assert len(chunk.trials) > 2
    chunk.attempts = 1
    chunker.requeue(chunk)
    assert chunker.next_chunk() is chunk
    chunk.attempts = 2
    chunker.requeue(chunk)
    singles = [chunker.next_chunk() for _ in chunk.trials]
    assert [s.trials[0] for s in singles] == chunk.trials
    assert len({s.index for s in singles} | {chunk.index}) == len(chunk.trials) + 1


@pytest.mark.parametrize("produced, message", [
    ([], "non-empty list"),
    ({"mode": "a"}, "non-empty list"),
    ([{"value": 1.0}], "without a 'mode'"),
    ([{"mode": "a", "key": 1}], "collides"),
    ([{"mode": "a", "x": 1}], "collides"),
    ([{"mode": "a", "bad": {"nested": 1}}], "unsupported value"),
])
def test_malformed_rows_are_rejected(produced, message):
    with pytest.raises(ValueError, match=message):
        check_rows(produced, SELFTEST)


def test_metrics_become_plain_values():
    (row,) = check_rows([{"mode": "a", "f": np.float32(0.5), "i": np.int64(3),
                          "curve": np.arange(3), "t": (1.0, 2)}], SELFTEST)
    assert row == {"mode": "a", "f": 0.5, "i": 3, "curve": [0, 1, 2], "t": [1.0, 2]}
    assert type(row["f"]) is float and type(row["i"]) is int


def test_one_line():
    assert one_line(ValueError("a\n  b\tc")) == "ValueError: a b c"
    assert len(one_line(ValueError("x" * 1000))) == 500
