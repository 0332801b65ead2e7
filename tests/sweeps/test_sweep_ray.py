"""The Ray backend: same rows as serial, and no loss or duplicate when workers, nodes or
the driver die. Run inside a loopback-only network namespace (scripts/netns.sh)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sweeps.helpers import all_keys, stored_rows
from insitu.sweeps.store import Store

pytestmark = pytest.mark.ray

SPEC = """
name = "ray"
experiment = "selftest"
seeds = {seeds}
[fixed]
work_ms = {work_ms}
modes = "a,b,c"
{fixed}
[grid]
x = [0.0, 1.0, 2.0]
[ray]
chunk_seconds = {chunk}
{ray}
"""


def spec_text(seeds=4, work_ms=5.0, chunk=0.02, fixed="", ray=""):
    return SPEC.format(seeds=seeds, work_ms=work_ms, chunk=chunk, fixed=fixed, ray=ray)


def test_ray_and_serial_give_identical_rows(ray_cluster, cli, write_spec, tmp_path):
    spec = write_spec(spec_text())
    code, out, _ = cli("run", spec, "--out", tmp_path / "ray")
    assert code == 0 and "backend ray, workers 2" in out
    assert cli("run", spec, "--out", tmp_path / "serial", "--backend", "serial")[0] == 0
    rows = stored_rows(tmp_path / "ray")
    assert len(rows) == 36 and rows == stored_rows(tmp_path / "serial")
    assert Store(tmp_path / "ray").launches()[0]["backend"] == "ray"


def test_killed_worker_loses_and_duplicates_nothing(ray_cluster, cli, write_spec, tmp_path):
    marker = tmp_path / "crashed"
    spec = write_spec(spec_text(seeds=6, work_ms=20.0, fixed=f'crash_marker = "{marker}"'))
    code, out, _ = cli("run", spec, "--out", tmp_path / "ray")
    assert code == 0 and "18 trials (0 errors)" in out
    assert marker.exists()  # a worker process did die
    keys = all_keys(tmp_path / "ray")
    assert len(keys) == len(set(keys)) == 54
    # The marker now exists, so a serial run computes the same trials without crashing.
    cli("run", spec, "--out", tmp_path / "serial", "--backend", "serial")
    assert stored_rows(tmp_path / "ray") == stored_rows(tmp_path / "serial")


def insitu(*args, **popen):
    return subprocess.Popen([sys.executable, "-m", "insitu", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **popen)


def wait_for_parts(out: Path, count: int, process: subprocess.Popen, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while len(Store(out).part_paths()) < count:
        if process.poll() is not None:
            pytest.fail(f"sweep exited early ({process.returncode}): {process.stdout.read()}")
        if time.monotonic() > deadline:
            pytest.fail("sweep wrote no parts in time")
        time.sleep(0.02)


def test_driver_killed_then_resumed_equals_uninterrupted(ray_cluster, cli, write_spec,
                                                         tmp_path):
    spec = write_spec(spec_text(seeds=20, work_ms=30.0, chunk=0.1, ray="ship_code = false"))
    out = tmp_path / "killed"
    driver = insitu("run", spec, "--out", out, "--address", ray_cluster)
    try:
        wait_for_parts(out, 2, driver)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
        driver.stdout.close()
    stored = len({k for k, _ in all_keys(out)})
    assert 0 < stored < 60 and (out / ".lock").exists()

    code, text, err = cli("run", spec, "--out", out)
    assert "taking over the stale lock of dead pid" in err
    assert code == 0 and f"{60 - stored} trials" in text
    keys = all_keys(out)
    assert len(keys) == len(set(keys)) == 180
    cli("run", spec, "--out", tmp_path / "whole", "--backend", "serial")
    assert stored_rows(out) == stored_rows(tmp_path / "whole")


# ------------------------------------------------------------------------------ multi-node
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), so each can be stopped by its id."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class RayNode:
    """One ``ray start --block`` node, with every process it started recorded by pid."""

    def __init__(self, args: list[str], log: Path, env: dict):
        self.log = log
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--block",
             "--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=80000000",
             "--disable-usage-stats", *args],
            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
        self.pids: set[int] = set()

    def wait_started(self, timeout=90.0) -> None:
        deadline = time.monotonic() + timeout
        while "block forever" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray node did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        self.pids.update(descendants(self.process.pid))

    def crash(self) -> None:
        """Kill the node and all its processes at once, as a machine failure would."""
        self.pids.update(descendants(self.process.pid))
        for pid in [self.process.pid, *self.pids]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()

    def stop(self) -> None:
        """Stop the node (SIGTERM), then kill whatever of it is left."""
        if self.process.poll() is None:
            self.pids.update(descendants(self.process.pid))
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in self.pids:  # anything of ours that outlived its node
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.slow  # a lost worker is covered fast by test_killed_worker_loses_and_duplicates_nothing
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_worker_node_lost_mid_sweep(write_spec, tmp_path):
    port = free_port()
    # No token on a loopback-only test cluster; notice a dead node within a few seconds.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_health_check_period_ms": "500",
           "RAY_health_check_timeout_ms": "500", "RAY_health_check_failure_threshold": "3"}
    nodes: list[RayNode] = []
    spec = write_spec(spec_text(seeds=20, work_ms=100.0, chunk=0.3, ray="workers = 2"))
    out = tmp_path / "multi"
    driver = None
    try:
        head = RayNode(["--head", f"--port={port}", "--include-dashboard=false"],
                       tmp_path / "head.log", env)
        nodes.append(head)
        head.wait_started()
        worker = RayNode([f"--address=127.0.0.1:{port}"], tmp_path / "worker.log", env)
        nodes.append(worker)
        worker.wait_started()
        driver = insitu("run", spec, "--out", out, "--address", f"127.0.0.1:{port}", env=env)
        wait_for_parts(out, 2, driver)
        stored_before_stop = len({key for key, _ in all_keys(out)})
        worker.crash()
        output, _ = driver.communicate(timeout=180)
        assert driver.returncode == 0, output
        assert "a Ray worker died" in output, output  # its chunks were resubmitted
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait()
        for node in reversed(nodes):
            node.stop()
    assert stored_before_stop < 60
    keys = all_keys(out)
    assert len(keys) == len(set(keys)) == 180
    assert all(row["status"] == "ok" for row in stored_rows(out))
