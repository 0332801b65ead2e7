"""The part manifest (manifest.jsonl): an index of the parts that resume trusts only as far
as the parts on disk agree with it."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.sweeps.helpers import SMALL_SELFTEST_SPEC as SPEC, all_keys, stored_rows
from insitu.sweeps.store.paths import MANIFEST_NAME as MANIFEST
from insitu.sweeps.store.parts import PartWriter
from insitu.sweeps.store import Store
from insitu.sweeps.store.metadata import new_meta



def run(cli, spec_file, out):
    return cli("run", spec_file, "--out", out, "--backend", "serial")


def manifest_lines(out) -> list[dict]:
    """The entries that parse (a torn line does not)."""
    entries = []
    for line in (out / MANIFEST).read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def part_keys(path) -> set[str]:
    return set(pq.read_table(path, columns=["key"]).column("key").to_pylist())


def disk_scan(store: Store):
    """The scan a store gives without its manifest (every part read)."""
    manifest = store.path / MANIFEST
    saved = manifest.read_bytes() if manifest.exists() else None
    manifest.unlink(missing_ok=True)
    try:
        return store.scan()
    finally:
        if saved is not None:
            manifest.write_bytes(saved)


def test_every_part_is_indexed_and_the_scan_matches_the_parts(cli, spec_file, tmp_path):
    out = tmp_path / "store"
    assert run(cli, spec_file, out)[0] == 0
    store = Store(out)
    parts = store.part_paths()
    entries = manifest_lines(out)
    assert [e["part"] for e in entries] == [p.name for p in parts]
    for entry, path in zip(entries, parts):
        assert entry["bytes"] == path.stat().st_size
        assert set(entry["keys"]) == part_keys(path)
    scan, expected = store.scan(), disk_scan(store)
    assert scan.unindexed == [] and len(expected.unindexed) == len(parts)
    assert scan.keys == expected.keys and len(scan.keys) == 12
    assert scan.column_types == expected.column_types and scan.parts == expected.parts
    assert scan.column_types["curve"] == pa.list_(pa.float64())


def test_a_part_missing_from_the_manifest_is_still_counted(cli, spec_file, tmp_path):
    """As after a driver killed between renaming a part and appending its entry."""
    out = tmp_path / "store"
    run(cli, spec_file, out)
    lines = (out / MANIFEST).read_text().splitlines()
    dropped = json.loads(lines[1])["part"]
    # The entry is gone, and the last append was torn half-way.
    (out / MANIFEST).write_text("\n".join(lines[:1] + lines[2:]) + "\n" + lines[0][:40])
    store = Store(out)
    scan = store.scan()
    assert len(scan.keys) == 12 and [e["part"] for e in scan.unindexed] == [dropped]

    code, stdout, _ = run(cli, spec_file, out)
    assert code == 0 and "nothing to do" in stdout
    # The resume indexed the part it had to read, on a line of its own.
    assert dropped in [e["part"] for e in manifest_lines(out)[-1:]]
    assert store.scan().unindexed == []


def test_a_store_without_a_manifest_loads_and_resumes(cli, write_spec, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    complete = stored_rows(out)
    (out / MANIFEST).unlink()  # a format 1 store written before the manifest existed
    wider = write_spec(SPEC.replace("seeds = 3", "seeds = 4"), "wider.toml")
    code, stdout, _ = run(cli, wider, out)
    assert code == 0 and "4 trials" in stdout  # only the new seed runs
    assert {e["part"] for e in manifest_lines(out)} == {p.name for p in Store(out).part_paths()}
    assert len(all_keys(out)) == 32
    assert [r for r in stored_rows(out) if r["seed"] < 3] == complete


def test_an_entry_for_a_removed_part_is_ignored(cli, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    complete = stored_rows(out)
    store = Store(out)
    victim = store.part_paths()[2]
    lost = part_keys(victim)
    victim.unlink()
    assert victim.name in {e["part"] for e in manifest_lines(out)}
    assert store.scan().keys.isdisjoint(lost)
    code, stdout, _ = run(cli, spec_file, out)
    assert code == 0 and f"{len(lost)} trials" in stdout
    assert stored_rows(out) == complete and len(all_keys(out)) == 24


def test_an_entry_whose_size_differs_is_not_trusted(cli, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    store = Store(out)
    victim = store.part_paths()[0]
    victim.write_bytes(victim.read_bytes()[:100])
    code, _, err = run(cli, spec_file, out)
    assert code == 2 and "unreadable part" in err and victim.name in err


def test_an_entry_with_an_unknown_column_type_makes_its_part_read(cli, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    entries = manifest_lines(out)
    entries[0]["columns"] = json.dumps([["key", "string"], ["odd", "decimal(3, 1)"]])
    (out / MANIFEST).write_text("".join(json.dumps(e) + "\n" for e in entries))
    scan = Store(out).scan()
    assert [e["part"] for e in scan.unindexed] == [entries[0]["part"]]
    assert "odd" not in scan.column_types and "value" in scan.column_types


def test_verify_rebuilds_the_manifest_without_quarantined_parts(cli, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    store = Store(out)
    victim = store.part_paths()[1]
    lost = part_keys(victim)
    victim.write_bytes(victim.read_bytes()[:100])
    lines = (out / MANIFEST).read_text().splitlines()
    (out / MANIFEST).write_text("\n".join(lines[1:]) + "\n")  # and one part unindexed
    code, stdout, _ = cli("verify", out)
    assert code == 0 and f"quarantined {victim.name}" in stdout
    parts = store.part_paths()
    assert [e["part"] for e in manifest_lines(out)] == [p.name for p in parts]
    assert store.scan().unindexed == [] and store.scan().keys.isdisjoint(lost)
    code, stdout, _ = run(cli, spec_file, out)
    assert code == 0 and f"{len(lost)} trials" in stdout and len(all_keys(out)) == 24


def test_compact_leaves_a_manifest_of_the_merged_part(cli, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    expected = stored_rows(out)
    code, _, _ = cli("compact", out)
    store = Store(out)
    assert code == 0 and len(store.part_paths()) == 1
    entries = manifest_lines(out)
    assert [e["part"] for e in entries] == [store.part_paths()[0].name]
    scan = store.scan()
    assert scan.unindexed == [] and len(scan.keys) == 12 and scan.parts == 1
    assert run(cli, spec_file, out)[1].startswith(f"{out}: nothing to do")
    assert stored_rows(out) == expected


def test_retry_failed_after_resume_from_the_manifest(cli, write_spec, tmp_path):
    out = tmp_path / "store"
    failing = write_spec(SPEC.replace("curve_len = 2", "curve_len = 2\nfail = true"), "f.toml")
    code, stdout, _ = run(cli, failing, out)
    assert code == 3 and "12 errors" in stdout  # completed, with error trials
    assert run(cli, failing, out)[1].startswith(f"{out}: nothing to do")  # errors are stored
    code, stdout, _ = cli("retry-failed", out, "--backend", "serial")
    assert code == 3 and "12 trials (12 errors)" in stdout  # still failing
    entries = manifest_lines(out)
    assert {e["part"] for e in entries} == {p.name for p in Store(out).part_paths()}


def test_writer_appends_after_a_torn_line(tmp_path, write_spec):
    from insitu.sweeps.engine.registry import get_experiment
    from insitu.sweeps.engine.spec import load_spec

    experiment = get_experiment("selftest")
    store = Store.create(tmp_path / "s", load_spec(write_spec(SPEC)).to_json(),
                         new_meta(experiment.description()))
    (store.path / MANIFEST).write_text('{"part": "part-x')  # a torn append
    writer = PartWriter(store, "L", store.metadata()["params"])
    base = {"trial_seed": 1, "seed": 0, "experiment": "selftest", "experiment_version": "1",
            "status": "ok", "error": None, "elapsed_s": 0.1, "mode": "a",
            **experiment.defaults()}
    path = writer.write([{**base, "key": "k1", "value": 1.0}], 0)
    assert list(store.manifest()) == [path.name]
    scan = store.scan()
    assert scan.keys == {"k1"} and scan.unindexed == []
