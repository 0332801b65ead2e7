"""``insitu export`` (the resolved rows as CSV or Parquet) and ``insitu status --format json``."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.store import Store, read_rows

SPEC = """
name = "e"
experiment = "selftest"
seeds = 3
[fixed]
curve_len = 3
[grid]
x = [0.0, 1.0, 2.0]
[ray]
chunk_seconds = 0.001
"""


def ok_rows(store_dir) -> list[dict]:
    """read_rows' finished rows, by key and mode."""
    table = read_rows(store_dir).table
    rows = table.filter(pc.equal(table["status"], "ok")).to_pylist()
    return sorted(rows, key=lambda r: (r["key"], r["mode"]))


@pytest.fixture
def mixed_store(cli, write_spec, tmp_path):
    """A store whose rows that count come from two launches, with superseded error rows,
    one trial still failed and a part of another sweep copied in."""
    out = tmp_path / "s"
    experiment = get_experiment("selftest")
    original = experiment.run_trial
    try:  # x = 1 and x = 2 fail in the first launch; a retry makes x = 1 succeed
        object.__setattr__(experiment, "run_trial", lambda p, s, c: original(
            {**p, "fail": p["x"] > 0.5}, s, c))
        assert cli("run", write_spec(SPEC), "--out", out, "--backend", "serial")[0] == 3
        object.__setattr__(experiment, "run_trial", lambda p, s, c: original(
            {**p, "fail": p["x"] > 1.5}, s, c))
        assert cli("retry-failed", out, "--backend", "serial")[0] == 3
    finally:
        object.__setattr__(experiment, "run_trial", original)
    other = tmp_path / "other"
    assert cli("run", write_spec(SPEC.replace("[0.0, 1.0, 2.0]", "[7.0]"), "other.toml"),
               "--out", other, "--backend", "serial")[0] == 0
    part = Store(other).part_paths()[0]
    shutil.copy(part, out / "parts" / part.name)  # foreign rows: ignored by readers
    rows = read_rows(out)
    assert rows.n_superseded and rows.n_foreign
    return out


def test_parquet_export_is_read_rows_finished_rows(cli, mixed_store, tmp_path):
    target = tmp_path / "rows.parquet"
    code, stdout, err = cli("export", mixed_store, "--format", "parquet", "--out", target)
    assert code == 0 and stdout.startswith(f"wrote {target} (12 rows"), err
    table = pq.read_table(target)
    assert table.schema == read_rows(mixed_store).table.schema  # every column in its stored type
    exported = sorted(table.to_pylist(), key=lambda r: (r["key"], r["mode"]))
    assert exported == ok_rows(mixed_store)
    assert {r["x"] for r in exported} == {0.0, 1.0} and {r["status"] for r in exported} == {"ok"}
    # sorted by the grid axes, the seed and the mode
    order = [(r["x"], r["seed"], r["mode"]) for r in table.to_pylist()]
    assert order == sorted(order)


def test_csv_export_round_trips_with_lists_as_json(cli, mixed_store):
    code, stdout, _ = cli("export", mixed_store)  # default: CSV into the store
    target = mixed_store / "export.csv"
    assert code == 0 and stdout.startswith(f"wrote {target} (12 rows")
    with open(target, newline="") as f:
        exported = sorted(csv.DictReader(f), key=lambda r: (r["key"], r["mode"]))
    expected = ok_rows(mixed_store)
    assert len(exported) == len(expected) == 12
    for got, want in zip(exported, expected):
        assert set(got) == set(want)
        assert json.loads(got["curve"]) == want["curve"] and json.loads(got["curve_index"]) == want["curve_index"]
        assert float(got["value"]) == want["value"] and int(got["trial_seed"]) == want["trial_seed"]
        assert got["busy"] == "false" and got["error"] == "" and got["modes"] == want["modes"]
    # stdout, and the same text
    code, text, _ = cli("export", mixed_store, "--out", "-")
    assert code == 0 and text == target.read_text()


def test_list_values_that_json_lacks_are_null(tmp_path):
    import pyarrow as pa

    from insitu.sweeps.store.export import csv_table

    table = pa.table({"c": pa.array([[1.0, math.nan, math.inf], None], pa.list_(pa.float64()))})
    assert csv_table(table).column("c").to_pylist() == ["[1.0, null, null]", None]


def test_an_export_is_an_output_that_goes_stale(cli, write_spec, tmp_path):
    out = tmp_path / "s"
    assert cli("run", write_spec(SPEC), "--out", out, "--backend", "serial")[0] == 0
    assert cli("export", out, "--out", tmp_path / "a.parquet")[0] == 0
    code, text, _ = cli("status", out)
    assert "stale output" not in text
    wider = write_spec(SPEC.replace("seeds = 3", "seeds = 4"), "wider.toml")
    assert cli("run", wider, "--out", out, "--backend", "serial")[0] == 0
    code, text, _ = cli("status", out)
    (line,) = [x for x in text.splitlines() if x.startswith("stale output:")]
    assert "export" in line and "a.parquet" in line and "rerun `insitu export`" in line


@pytest.mark.parametrize("args, problem", [
    (("--format", "parquet", "--out", "rows.csv"), "a .csv name for parquet output"),
    (("--format", "parquet", "--out", "-"), "Parquet is binary"),
    (("--format", "xlsx"), "invalid choice: 'xlsx'"),
])
def test_bad_export_requests_are_one_line_and_write_nothing(cli, write_spec, tmp_path, args, problem,
                                                            monkeypatch):
    out = tmp_path / "s"
    assert cli("run", write_spec(SPEC), "--out", out, "--backend", "serial")[0] == 0
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, _, err = cli("export", out, *args)
    assert code == 2 and err.count("\n") == 1 and problem in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_export_of_what_is_not_a_store(cli, tmp_path):
    code, _, err = cli("export", tmp_path / "missing")
    assert code == 2 and "no such store directory" in err
    (tmp_path / "d").mkdir()
    code, _, err = cli("export", tmp_path, "--out", tmp_path / "d")
    assert code == 2 and ("not an insitu store" in err or "is a directory" in err)


def test_status_json_counts_overall_and_per_axis_value(cli, mixed_store):
    code, text, _ = cli("status", mixed_store, "--format", "json")
    assert code == 0
    data = json.loads(text)
    assert data["trials"] == {"total": 9, "done": 6, "error": 3, "pending": 0}
    assert data["axes"] == {"x": [{"value": 0.0, "done": 3, "error": 0, "pending": 0},
                                  {"value": 1.0, "done": 3, "error": 0, "pending": 0},
                                  {"value": 2.0, "done": 0, "error": 3, "pending": 0}]}
    assert data["running"] is False and data["running_launch"] is None
    assert data["eta_s"] is None and data["stalled_s"] is None  # nothing runs
    latest = data["latest_launch"]
    assert latest["command"] == "retry-failed" and latest["outcome"] == "completed"
    assert latest["trials_stored"] == 6 and data["rate_trials_per_s"] > 0
    assert data["launches"] == 2 and data["parts"] == len(Store(mixed_store).part_paths())
    assert data["stale_outputs"] == []
    # the text form says the same
    code, text, _ = cli("status", mixed_store)
    assert "trials: 9 total, 6 done, 3 error, 0 pending" in text
    assert "6 trials at" in text.splitlines()[-1]


def test_status_json_of_a_running_launch_gives_its_eta(cli, write_spec, tmp_path, monkeypatch):
    from insitu.sweeps.store import maintenance

    out = tmp_path / "s"
    assert cli("run", write_spec(SPEC), "--out", out, "--backend", "serial")[0] == 0
    # a launch of a wider spec holding the lock: the spec it recorded, a live holder
    Store(out).write_spec({**Store(out).spec_json(), "seeds": list(range(6))})
    monkeypatch.setattr(maintenance.StoreLock, "holder",
                        lambda self: {"launch_id": "L", "pid": 1, "host": "h"})
    monkeypatch.setattr(maintenance, "lock_is_stale", lambda holder: False)
    data = json.loads(cli("status", out, "--format", "json")[1])
    assert data["running"] is True and data["running_launch"] == {"launch_id": "L", "pid": 1, "host": "h"}
    assert data["trials"]["pending"] == 9
    assert data["eta_s"] == pytest.approx(9 / data["rate_trials_per_s"])
