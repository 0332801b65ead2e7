"""Faults of issue 26, one test each: every one failed on the code before its fix.

Ray tests run on the session's loopback Ray (tests/sweeps/conftest.py, inside the
loopback-only network namespace of scripts/netns.sh); disk-full faults are injected
(a tmpfs is not available everywhere), each at every write a launch makes."""

from __future__ import annotations

import errno
import json
import multiprocessing
import threading
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from insitu.sweeps.app import launch
from insitu.sweeps.app.progress import Progress
from insitu.sweeps.engine import ray_backend, registry
from insitu.sweeps.engine.chunker import Waiting
from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.store import Store, StoreError, read_rows
from insitu.sweeps.store import reading
from insitu.sweeps.store.outputs import record_output
from tests.sweeps.helpers import all_keys, stored_rows

SPEC = """
name = "faults"
experiment = "selftest"
seeds = {seeds}
[fixed]
modes = "a,b"
{fixed}
[grid]
x = [0.0, 1.0, 2.0]
[ray]
chunk_seconds = 0.01
{ray}
"""


def spec(seeds=2, fixed="", ray=""):
    return SPEC.format(seeds=seeds, fixed=fixed, ray=ray)


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err


# ------------------------------------------------------------------ 1. out-of-memory killer
@pytest.mark.ray
def test_a_worker_killed_for_memory_is_replaced_and_its_chunk_resubmitted(ray_cluster, cli, write_spec,
                                                                          tmp_path, monkeypatch):
    import ray

    real_get, killed = ray.get, []

    def get(refs, *args, **kwargs):  # the first chunk result: Ray's memory monitor killed it
        if not killed and not isinstance(refs, list):
            value = real_get(refs, *args, **kwargs)
            if isinstance(value, list) and value and isinstance(value[0], dict) and "key" in value[0]:
                killed.append(value[0]["key"])
                raise ray.exceptions.OutOfMemoryError("Task was killed due to the node running low on memory")
            return value
        return real_get(refs, *args, **kwargs)

    monkeypatch.setattr(ray, "get", get)
    code, out, err = cli("run", write_spec(spec(seeds=3)), "--out", tmp_path / "s")
    assert code == 0 and "9 trials (0 errors)" in out and killed, err
    keys = all_keys(tmp_path / "s")
    assert len(keys) == len(set(keys)) == 18


# ---------------------------------------------------- 2. a changed default, same version
def test_a_changed_default_under_the_same_version_is_refused(cli, write_spec, tmp_path, monkeypatch):
    out = tmp_path / "s"
    assert cli("run", write_spec(spec()), "--out", out, "--backend", "serial")[0] == 0
    selftest = get_experiment("selftest")
    params = tuple(replace(p, default=2.0) if p.name == "noise" else p for p in selftest.params)
    monkeypatch.setitem(registry._REGISTRY, "selftest", replace(selftest, params=params))
    before = sorted(p.name for p in (out / "parts").iterdir())
    code, _, err = cli("run", write_spec(spec()), "--out", out, "--backend", "serial")
    assert code == 2 and one_line(err)
    assert "parameter 'noise': its default is 2.0 here but 1.0 in the store" in err
    assert sorted(p.name for p in (out / "parts").iterdir()) == before
    code, _, err = cli("retry-failed", out, "--backend", "serial")
    assert code == 2 and "its default is 2.0 here" in err


# -------------------------------------------------------------------- 3. trial timeout
@pytest.mark.ray
def test_a_hung_trial_becomes_an_error_row_and_the_sweep_finishes(ray_cluster, monkeypatch):
    """A trial that sleeps a minute under a 3 s trial_timeout: its worker is stopped, the
    trial is an error row saying so, the other trials of its chunk run elsewhere, and the
    driver hears what runs while it waits."""
    from insitu.sweeps.engine.chunker import Chunker
    from insitu.sweeps.engine.spec import parse_spec
    from insitu.sweeps.engine.trials import enumerate_trials

    monkeypatch.setattr(ray_backend, "WAITING_EVERY_S", 0.5)
    selftest = get_experiment("selftest")
    sleepy = parse_spec({"name": "t", "experiment": "selftest", "seeds": 1, "fixed": {"modes": "a"},
                         "grid": {"x": [0.0, 1.0, 2.0, 3.0]}})
    trials = [replace(t, params={**t.params, "work_ms": 60_000.0}) if t.params["x"] == 3.0 else t
              for t in enumerate_trials(sleepy, selftest)]
    backend = ray_backend.RayBackend(selftest, workers=2, trial_timeout=3.0)
    backend.start()
    rows, waited = [], []
    try:
        for event in backend.run(Chunker(trials, 0.01, 2)):
            if isinstance(event, Waiting):
                waited.append(event.text())
            else:
                rows += event.rows
    finally:
        backend.close()
    by_x = {r["x"]: r for r in rows}
    assert set(by_x) == {0.0, 1.0, 2.0, 3.0}
    assert by_x[3.0]["status"] == "error" and "timed out" in by_x[3.0]["error"]
    assert all(by_x[x]["status"] == "ok" for x in (0.0, 1.0, 2.0))
    assert any("running, the longest for" in w for w in waited)


# ------------------------------------------------------------ 4. a full disk at any write
@pytest.mark.parametrize("at", range(1, 12))
def test_a_full_disk_at_any_write_of_a_first_launch_leaves_a_path_the_next_run_accepts(
        cli, write_spec, tmp_path, monkeypatch, at):
    import builtins
    import os

    out = tmp_path / "s"
    real_open, real_os_open = builtins.open, os.open
    count = {"n": 0}

    def full(path) -> bool:
        if str(out) in str(path):
            count["n"] += 1
            return count["n"] == at
        return False

    def open_(path, mode="r", *args, **kwargs):
        if any(m in mode for m in "wax") and full(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR) and full(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(os, "open", os_open)
    code, _, err = cli("run", write_spec(spec()), "--out", out, "--backend", "serial", "-q")
    monkeypatch.setattr(builtins, "open", real_open)
    monkeypatch.setattr(os, "open", real_os_open)
    if count["n"] < at:
        pytest.skip(f"a first launch makes fewer than {at} writes")
    assert code in (0, 1, 3) and "Traceback" not in err, err
    if code == 1:
        assert one_line(err) and "No space left" in err
    code, out_text, err = cli("run", write_spec(spec()), "--out", out, "--backend", "serial")
    assert code == 0, err
    assert len(stored_rows(out)) == 12  # every trial, once


# ------------------------------------------------------------------- 5. --address auto
def test_address_auto_is_probed_not_hung(cli, write_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    code, _, err = cli("run", write_spec(spec()), "--out", tmp_path / "s", "--address", "auto")
    assert code == 2 and one_line(err) and "no Ray cluster was started on this machine" in err
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:9\n")  # nothing listens there
    started = time.monotonic()
    code, _, err = cli("run", write_spec(spec()), "--out", tmp_path / "s", "--address", "auto")
    assert code == 2 and one_line(err) and "no Ray cluster at 127.0.0.1:9" in err
    assert time.monotonic() - started < 30 and not (tmp_path / "s").exists()


# ------------------------------------------------ 6. the launch order does not trust clocks
def test_a_retry_from_a_host_whose_clock_is_behind_still_supersedes(cli, write_spec, tmp_path, monkeypatch):
    out = tmp_path / "s"
    failing = write_spec(spec(fixed="fail = true"))
    assert cli("run", failing, "--out", out, "--backend", "serial")[0] == 3
    selftest = get_experiment("selftest")
    monkeypatch.setattr(launch, "new_launch_id", lambda: "19990101T000000000000-aaaaaa")  # an hour behind, and more
    original = selftest.run_trial
    object.__setattr__(selftest, "run_trial",
                       lambda params, seed, cache: original({**params, "fail": False}, seed, cache))
    try:
        code, text, _ = cli("retry-failed", out, "--backend", "serial")
    finally:
        object.__setattr__(selftest, "run_trial", original)
    assert code == 0 and "6 trials (0 errors)" in text
    rows = read_rows(out).table.to_pylist()
    assert len(rows) == 12 and all(r["status"] == "ok" for r in rows)
    assert [r["seq"] for r in Store(out).launches()] == [1, 2]


# ------------------------------------------------- 7. let go of Ray once every part is written
def test_the_backend_is_closed_before_the_launch_is_closed(cli, write_spec, tmp_path, monkeypatch):
    order = []
    from insitu.sweeps.engine import backends

    real = backends.SerialBackend

    class Recording(real):
        def close(self):
            order.append("close")

    monkeypatch.setattr(launch, "make_backend", lambda *a, **k: Recording(a[1]))
    real_end = launch._end_launch
    monkeypatch.setattr(launch, "_end_launch", lambda *a, **k: (order.append("end"), real_end(*a, **k)))
    assert cli("run", write_spec(spec()), "--out", tmp_path / "s")[0] == 0
    assert order[:2] == ["close", "end"]


# ------------------------------------------------ 8. readers racing compact and verify
def test_a_reader_retries_when_a_part_vanishes_under_it(cli, write_spec, tmp_path, monkeypatch):
    out = tmp_path / "s"
    assert cli("run", write_spec(spec()), "--out", out, "--backend", "serial")[0] == 0
    expected = len(read_rows(out).table)
    real, calls = reading.part_files, []

    def stale_once(paths):
        files = real(paths)
        if not calls:
            calls.append(1)
            return files + [files[0].with_name("part-00000000T000000000000-gone00-000000.parquet")]
        return files

    monkeypatch.setattr(reading, "part_files", stale_once)
    assert len(read_rows(out).table) == expected and calls


def test_a_reader_loop_during_compactions_never_reports_corruption(cli, write_spec, tmp_path):
    out = tmp_path / "s"
    assert cli("run", write_spec(spec(seeds=4)), "--out", out, "--backend", "serial")[0] == 0
    expected = sorted((r["key"], r["mode"]) for r in read_rows(out).table.to_pylist())
    failures, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                got = sorted((r["key"], r["mode"]) for r in read_rows(out).table.to_pylist())
                if got != expected:
                    failures.append("rows differ")
            except Exception as exc:  # noqa: BLE001 - any failure is one
                failures.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(6):  # bounded: each round splits the store again, then compacts it
            assert cli("run", write_spec(spec(seeds=4 + round_ + 1)), "--out", out, "--backend", "serial")[0] == 0
            expected_now = sorted((r["key"], r["mode"]) for r in read_rows(out).table.to_pylist())
            expected[:] = expected_now
            assert cli("compact", out)[0] == 0
    finally:
        stop.set()
        thread.join(30)
    assert not [f for f in failures if f != "rows differ"], failures[:3]


# ------------------------------------------------------------ 9. a second driver, busy cluster
@pytest.mark.ray
def test_a_driver_finding_no_free_cpu_says_so_in_one_line(ray_cluster, cli, write_spec, tmp_path, monkeypatch):
    import ray

    @ray.remote(num_cpus=1)
    class Hog:
        def ready(self):
            return True

    hogs = [Hog.remote() for _ in range(2)]
    ray.get([h.ready.remote() for h in hogs])
    monkeypatch.setattr(ray_backend, "ACTOR_START_TIMEOUT_S", 3.0)
    try:
        code, _, err = cli("run", write_spec(spec()), "--out", tmp_path / "s")
    finally:
        for h in hogs:
            ray.kill(h)
    assert code == 2 and "--workers N" in err and "no free CPU" in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("insitu: error:")


# ------------------------------------------------------------------- 12. spec values
def test_spec_values_accepted_but_wrong_are_refused_or_written_right(cli, write_spec, tmp_path):
    code, _, err = cli("run", write_spec(spec().replace('name = "faults"', 'name = "abc\\n"')),
                       "--out", tmp_path / "a")
    assert code == 2 and one_line(err) and "'abc\\n'" in err
    code, _, err = cli("run", write_spec(spec().replace('name = "faults"', f'name = "{"n" * 100_000}!"')),
                       "--out", tmp_path / "b")
    assert code == 2 and one_line(err) and len(err) < 600
    classify = 'name = "c"\nexperiment = "classify"\n[fixed]\nmodes = "digital,\\u0007x\\u001b[31m"\n'
    code, _, err = cli("run", write_spec(classify), "--out", tmp_path / "c")
    assert code == 2 and one_line(err) and "\x07" not in err and "\x1b" not in err
    out = tmp_path / "d"
    code, _, _ = cli("run", write_spec(spec(fixed='crash_marker = ""\ndist = "normal"').replace(
        'modes = "a,b"', 'modes = "a,b\U0001F600"')), "--out", out, "--backend", "serial")
    stored = tomllib.loads((out / "spec.toml").read_text())  # valid TOML, the same value
    assert stored["fixed"]["modes"] == "a,b\U0001F600"


# ------------------------------------------------------- 13. concurrent output records
def _record(args):
    store, worker = args
    for i in range(30):
        record_output(store, "figures", Path(store) / f"fig-{worker}-{i}", {"trials": 1, "last_launch": "L"})


def test_concurrent_output_records_are_all_kept(cli, write_spec, tmp_path):
    out = tmp_path / "s"
    assert cli("run", write_spec(spec()), "--out", out, "--backend", "serial")[0] == 0
    with multiprocessing.get_context("fork").Pool(6) as pool:
        pool.map(_record, [(str(out), w) for w in range(6)])
    records = json.loads((out / "analysis-outputs.json").read_text())["outputs"]
    assert len(records) == 180 and len({r["path"] for r in records}) == 180


# ------------------------------------------- 14. the pilot runs on the backend, timed out
@pytest.mark.ray
def test_the_pilot_runs_on_the_backend_with_the_timeout(ray_cluster, cli, write_spec, tmp_path):
    text = spec(seeds=2, fixed="work_ms = 30000.0", ray="trial_timeout = 1.0")
    started = time.monotonic()
    code, out, err = cli("run", write_spec(text), "--out", tmp_path / "s", "--dry-run")
    assert code == 0, err
    assert "the pilot failed: timed out" in out and time.monotonic() - started < 60


def test_progress_lines_keep_coming_while_a_long_chunk_runs():
    import io

    clock = iter([0.0, 31.0, 62.0, 93.0])
    stream = io.StringIO()
    progress = Progress(10, stream, bar=False, seconds=30.0, clock=lambda: next(clock))
    progress.waiting(Waiting(31.0, [(31.0, 4242, 5)], partial=2.5))
    progress.waiting(Waiting(62.0, [(62.0, 4242, 5)], partial=5.0))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "0/10 trials done (+2.5 running)" in lines[0]
    assert "no part for 31 s; 1 chunk running, the longest for 31 s on pid 4242" in lines[0]
    assert "ETA" in lines[1] and "unknown" not in lines[1]
