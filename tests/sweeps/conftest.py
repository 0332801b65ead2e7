"""Fixtures for the sweep tests: spec files, in-process CLI runs, one shared local Ray."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from insitu.cli import main


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec file from (dedented) TOML text; returns its path."""

    def write(text: str, name: str = "spec.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def spec_file(write_spec):
    """The small selftest spec (tests.sweeps.helpers.SMALL_SELFTEST_SPEC) as a file."""
    from tests.sweeps.helpers import SMALL_SELFTEST_SPEC

    return write_spec(SMALL_SELFTEST_SPEC)


@pytest.fixture
def cli(capsys):
    """Run ``insitu`` in-process; returns (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def ray_cluster():
    """One embedded local Ray (2 CPUs, 127.0.0.1, no dashboard) for every Ray test.

    Yields the GCS address, so that a CLI subprocess can attach to it.
    """
    ray = pytest.importorskip("ray")
    # Loopback-only test clusters need no token; CLI subprocesses inherit this.
    previous = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             object_store_memory=80 * 1024 * 1024, _node_ip_address="127.0.0.1",
             logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        if previous is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = previous

