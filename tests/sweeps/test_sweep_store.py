"""The store: atomic parts, schema, lock, resume, verify, compact, retry-failed."""

from __future__ import annotations

import json
import os
import socket

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.sweeps.helpers import SMALL_SELFTEST_SPEC as SPEC, all_keys, stored_rows
from insitu.sweeps.store import parts as store_module  # writes parts (pq, os)
from insitu.sweeps.store import StoreError
from insitu.sweeps.store.metadata import new_meta
from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.store.lock import StoreLock
from insitu.sweeps.store.parts import PartWriter
from insitu.sweeps.store import Store



def run(cli, spec_file, out, *extra):
    return cli("run", spec_file, "--out", out, "--backend", "serial", *extra)


def test_layout_schema_and_rows(cli, spec_file, tmp_path):
    out = tmp_path / "store"
    code, stdout, _ = run(cli, spec_file, out)
    assert code == 0 and "12 trials (0 errors)" in stdout
    meta = json.loads((out / "store.json").read_text())
    assert meta["format"] == 1 and meta["experiment"] == "selftest"
    assert meta["params"]["curve_len"] == "int" and meta["params"]["busy"] == "bool"
    assert json.loads((out / "spec.json").read_text())["seeds"] == [0, 1, 2]
    assert (out / "spec.toml").read_text().startswith('name = "s"')
    # One line when the launch starts, one when it ends; read back as one record.
    assert len((out / "launches.jsonl").read_text().splitlines()) == 2
    (launch,) = Store(out).launches()
    assert launch["command"] == "run" and launch["outcome"] == "completed"
    assert launch["stored"] == 12 and launch["errors"] == 0
    assert not (out / ".lock").exists()
    parts = Store(out).part_paths()
    assert len(parts) > 1  # tiny chunk_seconds: several chunks
    schema = pq.read_schema(parts[-1])
    expected = {"key": pa.string(), "trial_seed": pa.int64(), "seed": pa.int64(),
                "status": pa.string(), "error": pa.string(), "mode": pa.string(),
                "elapsed_s": pa.float64(), "x": pa.float64(), "curve_len": pa.int64(),
                "busy": pa.bool_(), "dist": pa.string(), "value": pa.float64(),
                "count": pa.int64(), "curve": pa.list_(pa.float64()),
                "curve_index": pa.list_(pa.int64())}
    assert {name: schema.field(name).type for name in expected} == expected
    rows = stored_rows(out)
    assert len(rows) == 24 and {r["mode"] for r in rows} == {"a", "b"}
    assert all(r["status"] == "ok" and r["error"] is None and len(r["curve"]) == 2 for r in rows)


def test_failing_trials_become_error_rows_and_retry_supersedes(cli, write_spec, tmp_path):
    out = tmp_path / "store"
    failing = write_spec(SPEC.replace("curve_len = 2", "curve_len = 2\nfail = true"))
    code, stdout, _ = run(cli, failing, out)
    assert code == 3 and "12 trials (12 errors)" in stdout  # exit 3: completed, some trials errored
    rows = stored_rows(out)
    assert len(rows) == 12 and all(r["status"] == "error" and r["mode"] is None for r in rows)
    assert rows[0]["error"].startswith("RuntimeError: selftest failure requested")
    assert rows[0].get("value") is None and rows[0]["x"] in (0.0, 1.0, 2.0, 3.0)
    # A run of the same spec skips stored keys, errors included.
    code, stdout, _ = run(cli, failing, out)
    assert code == 0 and "nothing to do" in stdout
    # retry-failed reruns them; make them succeed by changing what `fail` does.
    experiment = get_experiment("selftest")
    original = experiment.run_trial
    try:
        object.__setattr__(experiment, "run_trial",
                           lambda p, s, c: original({**p, "fail": False}, s, c))
        code, stdout, _ = cli("retry-failed", out, "--backend", "serial")
    finally:
        object.__setattr__(experiment, "run_trial", original)
    assert code == 0 and "12 trials (0 errors)" in stdout
    rows = stored_rows(out)
    assert len(rows) == 24 and all(r["status"] == "ok" for r in rows)
    code, stdout, _ = cli("retry-failed", out, "--backend", "serial")
    assert code == 0 and "no failed trials" in stdout


def test_failed_write_leaves_no_visible_part(cli, spec_file, tmp_path, monkeypatch):
    out = tmp_path / "store"
    real = pq.write_table
    calls = []

    def write_half_then_fail(table, where, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            where.write(b"PAR1 half a part")
            raise OSError("disk full")
        return real(table, where, **kwargs)

    monkeypatch.setattr(store_module.pq, "write_table", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        run(cli, spec_file, out)
    monkeypatch.setattr(store_module.pq, "write_table", real)
    store = Store(out)
    assert len(store.part_paths()) == 2 and store.temp_paths() == []
    assert not (out / ".lock").exists()
    for path in store.part_paths():
        pq.read_table(path)  # every visible part is whole
    assert run(cli, spec_file, out)[0] == 0
    assert len(stored_rows(out)) == 24


def test_verify_quarantines_a_truncated_part_and_resume_reruns_exactly_its_keys(
        cli, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    complete = stored_rows(out)
    store = Store(out)
    victim = store.part_paths()[1]
    lost = set(pq.read_table(victim, columns=["key"]).column("key").to_pylist())
    victim.write_bytes(victim.read_bytes()[:100])
    (store.parts_dir / ".part-x-000009.parquet.tmp").write_bytes(b"junk")

    code, _, err = run(cli, spec_file, out)  # a launch refuses an unreadable store
    assert code == 2 and "unreadable part" in err and "insitu verify" in err

    code, stdout, _ = cli("verify", out)
    assert code == 0 and f"quarantined {victim.name}" in stdout
    assert "removed leftover temporary file" in stdout and "no duplicate keys" in stdout
    assert (out / "quarantine" / victim.name).exists() and not victim.exists()
    assert store.temp_paths() == []

    code, stdout, _ = run(cli, spec_file, out)
    assert code == 0 and f"{len(lost)} trials" in stdout
    launches = store.launches()
    assert launches[-1]["trials"] == len(lost)
    assert stored_rows(out) == complete
    assert len(all_keys(out)) == 24  # every (key, mode) exactly once


def test_extending_the_grid_runs_only_new_trials(cli, write_spec, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    wider = write_spec(SPEC.replace("x = [0.0, 1.0, 2.0, 3.0]", "x = [0.0, 1.0, 2.0, 3.0, 4.0]")
                       .replace("seeds = 3", "seeds = 4"), "wider.toml")
    code, stdout, _ = run(cli, wider, out)
    assert code == 0 and "8 trials" in stdout  # 20 trials, 12 stored
    assert json.loads((out / "spec.json").read_text())["grid"]["x"][-1] == 4.0
    assert len(all_keys(out)) == 40


def test_changed_spec_is_refused_and_nothing_written(cli, write_spec, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    before = sorted(p.name for p in (out / "parts").iterdir())
    changed = write_spec(SPEC.replace("curve_len = 2", "curve_len = 3")
                         .replace("x = [0.0, 1.0, 2.0, 3.0]", "x = [0.0, 1.0]"), "changed.toml")
    code, _, err = run(cli, changed, out)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2
    assert "spec change refused: fixed.curve_len" in lines[0]
    assert "spec change refused: grid.x: values removed: 2.0, 3.0" in lines[1]
    assert sorted(p.name for p in (out / "parts").iterdir()) == before
    assert len(Store(out).launches()) == 1


def test_not_a_store_and_missing_paths(cli, spec_file, tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "file.txt").write_text("mine")
    code, _, err = run(cli, spec_file, junk)
    assert code == 2 and "not an insitu store" in err
    assert sorted(p.name for p in junk.iterdir()) == ["file.txt"]
    for command in ("status", "verify", "compact", "retry-failed"):
        code, _, err = cli(command, junk)
        assert code == 2 and err.count("\n") == 1 and "not an insitu store" in err
        code, _, err = cli(command, tmp_path / "missing")
        assert code == 2 and "no such directory" in err
    assert not (tmp_path / "missing").exists()


def test_live_lock_is_refused_and_stale_lock_taken_over(cli, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file.parent / spec_file.name.replace("spec", "spec"), out, "--dry-run", "--no-pilot")
    assert not out.exists()  # a validating dry run writes nothing
    run(cli, spec_file, out)
    (out / "parts" / Store(out).part_paths()[0].name).unlink()
    lock = out / ".lock"
    lock.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(),
                                "launch_id": "other"}))
    code, _, err = run(cli, spec_file, out)
    assert code == 2 and "store is in use by launch other" in err
    code, _, err = cli("compact", out)
    assert code == 2 and "in use" in err

    dead = _dead_pid()
    lock.write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "launch_id": "x"}))
    code, stdout, err = run(cli, spec_file, out)
    assert "taking over the stale lock of dead pid" in err
    assert code == 0 and not lock.exists()
    assert len(all_keys(out)) == 24


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_lock_is_exclusive(tmp_path):
    first, second = StoreLock(tmp_path / ".lock", "a"), StoreLock(tmp_path / ".lock", "b")
    with first:
        with pytest.raises(StoreError, match="in use by launch a"):
            second.acquire()
    with second:
        assert json.loads((tmp_path / ".lock").read_text())["launch_id"] == "b"
    assert not (tmp_path / ".lock").exists()


def test_compact_keeps_the_newest_launch_per_key(cli, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    store = Store(out)
    # Fake an older duplicate of some keys: copy a part under an older launch id.
    source = store.part_paths()[0]
    table = pq.read_table(source)
    old = table.set_column(table.schema.get_field_index("launch_id"), "launch_id",
                           pa.array(["00000000T000000000000-aaaaaa"] * table.num_rows))
    old = old.set_column(table.schema.get_field_index("value"), "value",
                         pa.array([-1.0] * table.num_rows))
    pq.write_table(old, store.parts_dir / "part-00000000T000000000000-aaaaaa-000000.parquet")
    expected = stored_rows(out)
    assert all(r["value"] != -1.0 for r in expected)

    code, stdout, _ = cli("verify", out)
    assert f"{table.num_rows // 2} keys are stored in more than one part" in stdout
    code, stdout, _ = cli("compact", out)
    assert code == 0 and f"dropped {table.num_rows} superseded rows" in stdout
    assert len(store.part_paths()) == 1
    assert stored_rows(out) == expected and len(all_keys(out)) == 24
    assert store.launches()[-1]["command"] == "compact"


def test_writer_keeps_metric_types_consistent(tmp_path, write_spec):
    from insitu.sweeps.engine.spec import load_spec

    experiment = get_experiment("selftest")
    spec = load_spec(write_spec(SPEC))
    store = Store.create(tmp_path / "s", spec.to_json(), new_meta(experiment.description()))
    writer = PartWriter(store, "L", store.metadata()["params"], {"score": pa.float64()})
    base = {"trial_seed": 1, "seed": 0, "experiment": "selftest", "experiment_version": "1",
            "status": "ok", "error": None, "elapsed_s": 0.1, **experiment.defaults()}
    path = writer.write([{**base, "key": "k1", "mode": "a", "score": 1, "flag": True},
                         {**base, "key": "k2", "mode": "a", "score": 2.5, "flag": "yes"}], 0)
    table = pq.read_table(path)
    assert table.schema.field("score").type == pa.float64()
    assert table.schema.field("flag").type == pa.bool_()
    rows = {r["key"]: r for r in table.to_pylist()}
    assert rows["k1"]["score"] == 1.0 and rows["k1"]["status"] == "ok"
    assert rows["k2"]["status"] == "error" and "metric 'flag'" in rows["k2"]["error"]


def test_a_store_written_before_a_parameter_existed_learns_it_on_extension(tmp_path):
    from insitu.sweeps.engine.spec import parse_spec
    classify = get_experiment("classify")
    spec = parse_spec({"name": "old", "experiment": "classify", "seeds": 1, "fixed": {"task": "moons"}})
    store = Store.create(tmp_path / "old", spec.to_json(), new_meta(classify.description()))
    meta = json.loads(store.paths.store_json.read_text())
    assert "noise_draws" in meta["omit_at_default"] and meta["omit_at_default"] == classify.omit_at_default
    # as an older engine wrote it, before any of the parameters added since
    for name in meta.pop("omit_at_default"):
        del meta["params"][name], meta["defaults"][name]
    store.paths.store_json.write_text(json.dumps(meta))
    store.update_meta(classify.description())
    after = json.loads(store.paths.store_json.read_text())
    assert after["params"]["noise_draws"] == "str" and after["defaults"]["noise_draws"] == "fresh"
    assert after["omit_at_default"] == classify.omit_at_default
    assert set(after["params"]) == {p.name for p in classify.params}
    assert {k: v for k, v in after.items() if k not in ("params", "defaults", "omit_at_default")} == \
        {k: v for k, v in meta.items() if k not in ("params", "defaults")}
    stamp = store.paths.store_json.stat().st_mtime_ns
    store.update_meta(classify.description())  # nothing missing: not rewritten
    assert store.paths.store_json.stat().st_mtime_ns == stamp
