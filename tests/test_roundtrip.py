"""One store through every stage a user takes it: run, retry-failed, compact, then analysis.

The analysis package reads the Parquet on its own (it imports nothing of sweeps); this test
holds its view of the store to the engine's own view at every stage.
"""

from __future__ import annotations

import textwrap

import pandas as pd

from insitu.analysis.load import read_store
from insitu.cli import main
from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.store import Store

SPEC = """
name = "roundtrip"
experiment = "selftest"
seeds = 3
[fixed]
curve_len = 2
[grid]
x = [0.0, 1.0]
fail = [false, true]
[ray]
chunk_seconds = 0.001
"""


def _engine_view(store_dir) -> pd.DataFrame:
    table = Store(store_dir).latest_rows(["key", "mode", "status", "value", "seed"])
    return table.to_pandas()


def _analysis_view(store_dir):
    store = read_store(store_dir, columns=["key", "mode", "status", "value", "seed"])
    return store, pd.concat([store.rows, store.errors], ignore_index=True)


def _same_rows(engine: pd.DataFrame, analysis: pd.DataFrame) -> None:
    order = ["key", "mode"]
    a = engine[["key", "mode", "status", "value"]].sort_values(order, na_position="first").reset_index(drop=True)
    b = analysis[["key", "mode", "status", "value"]].sort_values(order, na_position="first").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_run_retry_compact_then_analysis_agrees_with_the_store(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent(SPEC))
    out = tmp_path / "store"

    assert main(["run", str(spec), "--out", str(out), "--backend", "serial"]) == 3  # error trials
    store, rows = _analysis_view(out)
    assert store.n_trials_ok == 6 and store.n_trials_error == 6
    _same_rows(_engine_view(out), rows)

    experiment = get_experiment("selftest")
    original = experiment.run_trial
    try:  # the retry succeeds: the failure was transient
        object.__setattr__(experiment, "run_trial", lambda p, s, c: original({**p, "fail": False}, s, c))
        assert main(["retry-failed", str(out), "--backend", "serial"]) == 0
    finally:
        object.__setattr__(experiment, "run_trial", original)
    store, rows = _analysis_view(out)
    assert store.n_trials_ok == 12 and store.n_trials_error == 0
    assert store.n_superseded == 6  # the six error rows, superseded by the retry
    _same_rows(_engine_view(out), rows)
    before = rows.sort_values(["key", "mode"]).reset_index(drop=True)

    assert main(["compact", str(out)]) == 0
    store, rows = _analysis_view(out)
    assert store.n_parts == 1
    assert store.n_trials_ok == 12 and len(store.rows) == 24 and store.n_trials_error == 0
    _same_rows(_engine_view(out), rows)
    after = rows.sort_values(["key", "mode"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(before[["key", "mode", "value", "seed"]], after[["key", "mode", "value", "seed"]],
                                  check_dtype=False)
    capsys.readouterr()
