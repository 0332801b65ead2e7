"""Store integrity (issue: nothing silent, nothing computed twice): conflicting column
types, rows of another spec, corrupted parts, a full disk, and the one-line reports."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from insitu.analysis.load import read_store
from insitu.sweeps.engine import backends, ray_backend
from insitu.sweeps.engine.chunker import Chunker
from insitu.sweeps.store import store as store_module
from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.store.maintenance import _read_part
from insitu.sweeps.store import Store
from tests.sweeps.helpers import SMALL_SELFTEST_SPEC as SPEC, all_keys, stored_rows

OLD_LAUNCH = "00000000T000000000000-aaaaaa"


def run(cli, spec_file, out, *extra):
    return cli("run", spec_file, "--out", out, "--backend", "serial", *extra)


def part_names(out) -> list[str]:
    return sorted(p.name for p in (out / "parts").iterdir())


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("insitu: error:")


# ------------------------------------------------------------------ 1. conflicting types
def test_a_part_with_a_conflicting_column_type_is_named_refused_and_quarantined(
        cli, write_spec, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    complete = stored_rows(out)
    store = Store(out)
    table = pq.read_table(store.part_paths()[0])
    index = table.schema.get_field_index("value")
    odd = store.parts_dir / f"part-{OLD_LAUNCH}-000000.parquet"
    pq.write_table(table.set_column(index, "value", table.column("value").cast(pa.string())),
                   odd)
    wider = write_spec(SPEC.replace("seeds = 3", "seeds = 4"), "wider.toml")
    before, launches = part_names(out), len(store.launches())

    code, _, err = run(cli, wider, out)  # before: every new trial became an error row
    assert code == 2 and one_line(err)
    assert odd.name in err and "'value' is string" in err and f"insitu verify {out}" in err
    assert part_names(out) == before and len(store.launches()) == launches

    code, _, err = cli("compact", out)  # before: an ArrowTypeError traceback
    assert code == 2 and one_line(err) and odd.name in err
    code, _, err = cli("summary", out)  # before: no part named
    assert code == 2 and one_line(err) and odd.name in err and "'value'" in err

    code, text, _ = cli("verify", out)  # before: every part "readable"
    assert code == 0 and f"quarantined {odd.name}: column 'value' is string" in text
    assert (out / "quarantine" / odd.name).exists()
    code, text, _ = run(cli, wider, out)
    assert code == 0 and "4 trials (0 errors)" in text
    assert [r for r in stored_rows(out) if r["seed"] < 3] == complete


def test_the_closing_count_comes_from_the_rows_as_written(cli, write_spec, spec_file,
                                                          tmp_path):
    """A value that fits no column type becomes an error row, and is counted as one."""
    out = tmp_path / "store"
    run(cli, spec_file, out)
    experiment = get_experiment("selftest")
    original = experiment.run_trial

    def string_values(params, seed, cache):
        return [{**row, "value": str(row["value"])} for row in original(params, seed, cache)]

    object.__setattr__(experiment, "run_trial", string_values)
    try:
        code, text, _ = run(cli, write_spec(SPEC.replace("seeds = 3", "seeds = 4"), "w.toml"),
                            out)
    finally:
        object.__setattr__(experiment, "run_trial", original)
    assert code == 3 and "4 trials (4 errors)" in text  # completed, with error trials
    (launch,) = [r for r in Store(out).launches() if r.get("trials") == 4]
    assert launch["errors"] == 4 and launch["outcome"] == "completed"
    errors = [r for r in stored_rows(out) if r["status"] == "error"]
    assert len(errors) == 4 and all("metric 'value'" in r["error"] for r in errors)


# -------------------------------------------------------------------- 3. foreign rows
def test_rows_of_another_spec_are_quarantined_and_never_pooled(cli, write_spec, tmp_path):
    small = SPEC.replace("x = [0.0, 1.0, 2.0, 3.0]", "x = [0.0]")  # 3 trials
    out, other = tmp_path / "store", tmp_path / "other"
    run(cli, write_spec(small), out)
    # The same experiment, the same name, another fixed parameter: other keys.
    run(cli, write_spec(small.replace("curve_len = 2", "curve_len = 2\nnoise = 40.0"), "o.toml"),
        other)
    for part in Store(other).part_paths():
        shutil.copy(part, out / "parts" / part.name)
    mine = read_store(out)
    assert mine.n_trials_ok == 3 and mine.n_foreign == 6  # 3 trials x 2 modes ignored
    assert mine.rows["value"].std() < 5  # not pooled with the noise-40 draws
    code, text, _ = cli("summary", out)
    assert code == 0 and "ignored 6 rows" in text and "trials ok: 3" in text

    code, text, _ = cli("verify", out)  # before: "clean"
    assert code == 0 and text.count("quarantined part-") == len(Store(other).part_paths())
    assert "not a trial of the store's spec" in text
    assert sorted(p.name for p in (out / "quarantine").iterdir()) == sorted(
        p.name for p in Store(other).part_paths())
    assert read_store(out).n_foreign == 0
    assert run(cli, write_spec(small, "again.toml"), out)[1].startswith(f"{out}: nothing to do")


def test_a_row_whose_key_is_not_the_hash_of_its_parameters_is_quarantined(cli, spec_file,
                                                                         tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    complete = stored_rows(out)
    store = Store(out)
    table = pq.read_table(store.part_paths()[0])
    x = table.schema.get_field_index("x")
    # A newer launch claims the keys of part 0 with another x: it would win every key.
    forged = table.set_column(x, "x", pa.array([9.0] * table.num_rows))
    lid = table.schema.get_field_index("launch_id")
    forged = forged.set_column(lid, "launch_id", pa.array(["99999999T0-ffffff"] * table.num_rows))
    forged_path = store.parts_dir / "part-99999999T0-ffffff-000000.parquet"
    pq.write_table(forged, forged_path)
    store.append_launch({"launch_id": "99999999T0-ffffff", "started": "later", "command": "run"})
    assert read_store(out).n_foreign == table.num_rows
    code, text, _ = cli("verify", out)
    assert code == 0 and f"quarantined {forged_path.name}" in text
    assert "is not the hash of the row's parameters" in text
    assert stored_rows(out) == complete


# -------------------------------------------------------------------- 4. corruption
def test_page_checksums_catch_every_flip_in_the_pages(cli, spec_file, tmp_path):
    """Flip one bit at every offset of a part's column chunks: reading it with the page
    checksums verified either fails or gives the values written, never other values."""
    out = tmp_path / "store"
    run(cli, spec_file, out)
    path = Store(out).part_paths()[0]
    data, reference = path.read_bytes(), pq.read_table(path)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    chunks = [meta.column(i) for i in range(meta.num_columns)]
    start = min(c.dictionary_page_offset or c.data_page_offset for c in chunks)
    end = max((c.dictionary_page_offset or c.data_page_offset) + c.total_compressed_size
              for c in chunks)
    assert end - start > 1000
    changed = []
    for offset in range(start, end):
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        try:
            table = pq.ParquetFile(pa.BufferReader(bytes(flipped)),
                                   page_checksum_verification=True).read()
        except Exception:  # noqa: BLE001 - detected
            continue
        if not table.equals(reference):
            changed.append(offset)
    assert changed == []


def test_verify_and_resume_refuse_a_part_that_changed(cli, spec_file, tmp_path):
    """The sha256 in the manifest covers the footer too, where page checksums do not."""
    out = tmp_path / "store"
    run(cli, spec_file, out)
    complete = stored_rows(out)
    store = Store(out)
    victim = store.part_paths()[1]
    data = victim.read_bytes()
    entry = store.manifest()[victim.name]
    assert entry[3] == store_module.file_sha256(victim)
    for offset in range(0, len(data), 97):  # every flip, in pages or footer, is caught
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        victim.write_bytes(bytes(flipped))
        assert _read_part(victim, entry)[2] is not None, offset
    lost = set(pq.read_table(pa.BufferReader(data), columns=["key"])
               .column("key").to_pylist())

    # A same-size garbage part: resume no longer trusts its manifest entry.
    victim.write_bytes(np.random.default_rng(3).bytes(len(data)))
    code, _, err = run(cli, spec_file, out)
    assert code == 2 and one_line(err) and victim.name in err and "sha256" in err
    assert f"insitu verify {out}" in err
    code, text, _ = cli("verify", out)
    assert code == 0 and f"quarantined {victim.name}" in text
    code, text, _ = run(cli, spec_file, out)
    assert code == 0 and f"{len(lost)} trials (0 errors)" in text
    assert stored_rows(out) == complete and len(all_keys(out)) == 24


# -------------------------------------------------------------------- 6. disk full
def test_a_full_disk_gives_one_line_and_resume_completes(cli, spec_file, tmp_path,
                                                        monkeypatch):
    out = tmp_path / "store"
    real = pq.write_table
    calls = []

    def full_on_the_fourth_part(table, where, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, **kwargs)

    monkeypatch.setattr(store_module.pq, "write_table", full_on_the_fourth_part)
    code, _, err = run(cli, spec_file, out)
    monkeypatch.setattr(store_module.pq, "write_table", real)
    stored = len({k for k, _ in all_keys(out)})
    start, *rest = err.splitlines()  # the launch's start line, then one line for the full disk
    assert code == 1 and start.endswith("on 1 serial worker") and len(rest) == 1
    assert f"{stored} of 12 trials stored in 3 whole parts; free space and run again" in err
    store = Store(out)
    assert store.temp_paths() == [] and not (out / ".lock").exists()
    assert store.launches()[-1]["outcome"] == "disk full"
    assert run(cli, spec_file, out)[0] == 0 and len(all_keys(out)) == 24


def test_a_failed_json_write_leaves_no_temporary_file(cli, write_spec, spec_file, tmp_path,
                                                      monkeypatch):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    spec_before = (out / "spec.json").read_text()
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", full)
    code, _, err = run(cli, write_spec(SPEC.replace("seeds = 3", "seeds = 4"), "w.toml"), out)
    monkeypatch.setattr(store_module.os, "fsync", real_fsync)
    assert code == 1 and "0 of 4 trials stored in 0 whole parts; free space" in err
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
    assert (out / "spec.json").read_text() == spec_before and not (out / ".lock").exists()

    # A new store that cannot be created leaves nothing, not even an empty results/.
    monkeypatch.setattr(store_module.os, "fsync", full)
    code, _, err = run(cli, spec_file, tmp_path / "results" / "new")
    monkeypatch.setattr(store_module.os, "fsync", real_fsync)
    assert code == 1 and "0 of 12 trials stored" in err and not (tmp_path / "results").exists()

    # A stale temp file in the root (as a killed writer leaves) is cleaned by a launch.
    (out / ".spec.json.abc123.tmp").write_text("{")
    code, text, _ = run(cli, write_spec(SPEC.replace("seeds = 3", "seeds = 4"), "w.toml"), out)
    assert code == 0 and "4 trials" in text and not (out / ".spec.json.abc123.tmp").exists()


# -------------------------------------------------------------------- 5. bad input
@pytest.mark.parametrize("text, message", [
    ("seeds = 1000000000", "1000000000 seeds are more than the limit of 1000000 trials"),
    ("seeds = 1000\n[grid]\nx = {x}\nnoise = {x}".format(x=list(map(float, range(1000)))),
     "1000 seeds x 1000 x 1000 grid points = 1000000000 trials, more than the limit"),
    ("seeds = 13\n[ray]\nmax_trials = 12", "13 seeds are more than the limit of 12 trials"),
    ("seeds = [9223372036854775808]", "seeds: expected integers 0 <= seed < 2**63"),
])
def test_huge_sweeps_and_out_of_range_seeds_are_one_line(text, message, cli, write_spec,
                                                         tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(f'name = "big"\nexperiment = "selftest"\n{text}\n')
    for extra in (("--dry-run", "--no-pilot"), ("--backend", "serial")):
        code, _, err = cli("run", spec, *extra)
        assert code == 2 and one_line(err) and message in err, err
    assert not (tmp_path / "results").exists()


def test_the_trial_cap_can_be_raised_and_the_largest_seed_is_allowed(cli, write_spec, tmp_path):
    spec = write_spec('name = "ok"\nexperiment = "selftest"\nseeds = [0, 9223372036854775807]\n'
                      '[grid]\nx = [0.0, 1.0]\n[ray]\nmax_trials = 4\n')
    code, text, _ = cli("run", spec, "--out", tmp_path / "s", "--backend", "serial")
    assert code == 0 and "4 trials (0 errors)" in text
    assert {r["seed"] for r in stored_rows(tmp_path / "s")} == {0, 2**63 - 1}


def test_unusable_out_paths_are_one_line_and_create_nothing(cli, write_spec, spec_file,
                                                            tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("mine")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    cases = {"file/sub": "file is not a directory",
             "dangling": "is a dangling symbolic link",
             "dangling/sub": "is a dangling symbolic link"}
    for out, message in cases.items():
        for backend in ("serial", "ray"):  # refused before any backend starts
            code, _, err = cli("run", spec_file, "--out", out, "--backend", backend)
            assert code == 2 and one_line(err) and message in err, (out, err)
    long_name = write_spec(SPEC.replace('name = "s"', f'name = "{"n" * 300}"'), "long.toml")
    code, _, err = cli("run", long_name)
    assert code == 2 and one_line(err) and "300 bytes, longer than" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["file", "dangling", "spec.toml", "long.toml"])
    assert not os.path.exists(tmp_path / "nowhere")


def test_a_read_only_file_system_is_one_line(spec_file, tmp_path):
    """A real read-only mount, in a private mount namespace (skipped where there is none)."""
    import subprocess
    import sys

    mount = tmp_path / "ro"
    mount.mkdir()
    script = (f"mount -t tmpfs -o ro,size=64k none {mount} && exec {sys.executable} -m "
              f"insitu run {spec_file} --out {mount}/store --backend serial")
    try:
        done = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True,
                              text=True, timeout=120)
    except FileNotFoundError:
        pytest.skip("no unshare")
    if "mount:" in done.stderr or "unshare:" in done.stderr:
        pytest.skip(f"no private mount namespace here: {done.stderr.strip()}")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "read-only file system" in done.stderr and done.stdout == ""


def test_an_address_with_no_cluster_is_one_line(cli, spec_file, tmp_path):
    with socket.socket() as s:  # a loopback port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        code, _, err = cli("run", spec_file, "--out", tmp_path / "s", "--address", address)
        assert code == 2 and one_line(err) and f"no Ray cluster at {address}" in err
    code, _, err = cli("run", spec_file, "--out", tmp_path / "s", "--address", "nonsense")
    assert code == 2 and one_line(err) and "expected HOST:PORT" in err
    assert not (tmp_path / "s").exists()


def test_too_many_embedded_workers_need_force(cli, spec_file, tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code, _, err = cli("run", spec_file, "--out", tmp_path / "s", "--workers", "100000")
    assert code == 2 and one_line(err) and "--force" in err and str(os.cpu_count()) in err
    assert not (tmp_path / "s").exists()
    # The dry run only counts; it starts nothing and says how many workers it assumed.
    code, text, _ = cli("run", spec_file, "--out", tmp_path / "s", "--workers", "100000",
                        "--dry-run", "--no-pilot")
    assert code == 0 and "12 trials" in text


# -------------------------------------------------------------------- 7. smaller
def test_every_unreadable_part_is_named_with_the_store_path(cli, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    victims = Store(out).part_paths()[1:3]
    for victim in victims:
        victim.write_bytes(victim.read_bytes()[:100])
    for command in (("run", spec_file, "--out", out, "--backend", "serial"), ("status", out),
                    ("retry-failed", out, "--backend", "serial")):
        code, _, err = cli(*command)
        lines = err.splitlines()
        assert code == 2 and len(lines) == 2, (command, err)
        for line, victim in zip(lines, victims):
            assert victim.name in line and f"run `insitu verify {out}`" in line
    code, _, err = cli("summary", out)
    assert code == 2 and f"insitu verify {out}" in err


def test_no_pilot_without_dry_run_is_refused(cli, spec_file, tmp_path):
    code, _, err = cli("run", spec_file, "--out", tmp_path / "s", "--no-pilot")
    assert code == 2 and one_line(err) and "--dry-run" in err
    assert not (tmp_path / "s").exists()


def test_launches_record_an_interrupted_launch(cli, spec_file, tmp_path, monkeypatch):
    out = tmp_path / "store"
    real = backends.run_chunk
    calls = []

    def interrupt_on_third_chunk(*args):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args)

    monkeypatch.setattr(backends, "run_chunk", interrupt_on_third_chunk)
    assert run(cli, spec_file, out)[0] == 130
    monkeypatch.setattr(backends, "run_chunk", real)
    assert run(cli, spec_file, out)[0] == 0
    first, second = Store(out).launches()
    assert first["outcome"] == "interrupted" and second["outcome"] == "completed"
    assert first["stored"] + second["stored"] == 12 == len({k for k, _ in all_keys(out)})
    lines = [json.loads(line) for line in (out / "launches.jsonl").read_text().splitlines()]
    assert [line.get("outcome") for line in lines] == [None, "interrupted", None, "completed"]


# -------------------------------------------------------------------- 2. the lock race
@pytest.mark.ray
def test_overlapping_ray_and_serial_launches_compute_each_trial_once(write_spec, tmp_path):
    """The issue's reproduction: a launch on an embedded Ray, and 1 s later the same
    command on the serial backend. Before, the serial run finished while Ray started,
    then the Ray launch took the free lock and stored every trial a second time."""
    import subprocess
    import sys
    import time

    spec = write_spec(SPEC.replace("curve_len = 2", "curve_len = 2\nwork_ms = 20.0"))
    out = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "disabled"
    command = [sys.executable, "-m", "insitu", "run", str(spec), "--out", str(out)]
    ray_launch = subprocess.Popen([*command, "--workers", "2"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=env)
    try:
        time.sleep(1.0)
        serial = subprocess.run([*command, "--backend", "serial"], capture_output=True,
                                text=True, env=env, timeout=300)
        ray_text, _ = ray_launch.communicate(timeout=300)
    finally:
        if ray_launch.poll() is None:
            ray_launch.kill()
            ray_launch.wait()
    results = [(ray_launch.returncode, ray_text), (serial.returncode, serial.stdout + serial.stderr)]
    assert all(code in (0, 2) for code, _ in results), results
    assert any(code == 0 for code, _ in results), results
    for code, text in results:
        if code == 2:  # refused while the other held the lock, before it computed anything
            assert "store is in use by launch" in text, text
    keys = all_keys(out)
    assert len(keys) == len(set(keys)) == 24  # every (key, mode) stored exactly once
    stored = [r.get("stored", 0) for r in Store(out).launches()]
    assert sum(stored) == 12, Store(out).launches()


def test_a_driver_without_workers_says_it_is_waiting(monkeypatch, caplog, write_spec):
    """All worker nodes gone: the actors wait for CPUs that never come. The driver says
    so every WAITING_NOTICE_S instead of waiting silently (a fake clock and ray.wait)."""
    import logging
    import time
    import types

    ray = pytest.importorskip("ray")
    from insitu.sweeps.engine.spec import load_spec
    from insitu.sweeps.engine.trials import enumerate_trials

    experiment = get_experiment("selftest")
    backend = ray_backend.RayBackend(experiment, workers=1)
    backend._starting = {"ref": "an actor the cluster has no CPU for"}
    clock = [0.0]
    monkeypatch.setattr(ray_backend, "time", types.SimpleNamespace(
        monotonic=lambda: clock[0], perf_counter=time.perf_counter))
    waits = []

    def wait(refs, num_returns, timeout):
        waits.append(clock[0])
        if len(waits) > 100:
            raise KeyboardInterrupt
        clock[0] += 1.0
        return [], refs

    monkeypatch.setattr(ray, "wait", wait)
    chunker = Chunker(enumerate_trials(load_spec(write_spec(SPEC)), experiment), 1.0, 1)
    with caplog.at_level(logging.WARNING, logger="insitu.sweeps.engine.ray_backend"):
        with pytest.raises(KeyboardInterrupt):
            list(backend.run(chunker))
    notices = [r.getMessage() for r in caplog.records if "no Ray worker is running" in r.getMessage()]
    assert len(notices) == 3  # after 30, 60 and 90 s of 100
    assert "waiting 30 s so far" in notices[0] and "1 actors" in notices[0]


def test_status_gives_no_eta_for_a_launch_that_stopped_writing(cli, spec_file, tmp_path):
    out = tmp_path / "store"
    run(cli, spec_file, out)
    store = Store(out)
    store.part_paths()[0].unlink()  # one trial pending
    # The launch is running (a live pid holds the lock) ...
    (out / ".lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(),
                                           "launch_id": store.launches()[-1]["launch_id"]}))
    code, text, _ = cli("status", out)
    assert code == 0 and "ETA" in text.splitlines()[-1] and "no ETA" not in text
    # ... but wrote its last part two hours ago, as a driver waiting for lost workers.
    records = [json.loads(line) for line in (out / "launches.jsonl").read_text().splitlines()]
    import datetime as dt
    import time

    started = time.time() - 7300
    records[0]["started"] = dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat()
    (out / "launches.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for index, part in enumerate(store.part_paths()):
        os.utime(part, (started + index, started + index))
    code, text, _ = cli("status", out)
    last = text.splitlines()[-1]
    assert code == 0 and "no part written for 2.0 h" in last and "so no ETA" in last
    assert ", ETA" not in last
