"""Provenance: each launch records versions, the git state of the checkout it ran from,
host and platform, and its --note / --tag; store.json keeps those of the first launch."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
import subprocess
import sys

import pytest

import insitu
from insitu.sweeps.app import provenance
from insitu.sweeps.store import Store

SPEC = """
name = "p"
experiment = "selftest"
seeds = 2
[grid]
x = [0.0, 1.0]
"""

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(root, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org",
                           "-c", "commit.gpgsign=false", *args],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    """A temporary git checkout with one commit."""
    root = tmp_path / "checkout"
    root.mkdir()
    git(root, "init", "-q")
    (root / "code.py").write_text("x = 1\n")
    git(root, "add", "code.py")
    git(root, "commit", "-q", "-m", "first")
    return root


def launch_records(store_dir) -> list[dict]:
    """The opening records of launches.jsonl, as written."""
    lines = [json.loads(line) for line in (store_dir / "launches.jsonl").read_text().splitlines()]
    return [r for r in lines if "started" in r]


@needs_git
def test_a_launch_records_versions_and_the_commit_of_its_checkout(cli, write_spec, tmp_path,
                                                                  checkout, monkeypatch):
    monkeypatch.setattr(provenance, "source_root", lambda: checkout)
    out = tmp_path / "s"
    code, _, err = cli("run", write_spec(SPEC), "--out", out, "--backend", "serial",
                       "--note", "baseline, before the fix", "--tag", "pilot", "--tag", "v2",
                       "--tag", "pilot")
    assert code == 0, err
    (record,) = launch_records(out)
    head = git(checkout, "rev-parse", "HEAD")
    assert record["git"] == {"commit": head, "dirty": False}
    versions = record["versions"]
    assert versions["insitu"] == insitu.__version__
    assert versions["python"] == platform.python_version()
    for name in ("numpy", "pyarrow", "pandas", "ray", "scipy"):
        assert versions[name] == importlib.metadata.version(name), name
    assert record["host"] and record["platform"] == platform.platform()
    assert record["note"] == "baseline, before the fix" and record["tags"] == ["pilot", "v2"]
    assert record["overrides"] == []
    meta = json.loads((out / "store.json").read_text())
    assert meta["created_by"] == {"launch_id": record["launch_id"], "versions": versions,
                                  "git": record["git"], "host": record["host"],
                                  "platform": record["platform"]}

    # A changed tracked file makes the next launch's tree dirty; a new commit is recorded as
    # the launch's, while store.json keeps the first launch's.
    (checkout / "code.py").write_text("x = 2\n")
    wider = write_spec(SPEC.replace("seeds = 2", "seeds = 3"), "wider.toml")
    assert cli("run", wider, "--out", out, "--backend", "serial")[0] == 0
    git(checkout, "commit", "-q", "-am", "second")
    (checkout / "untracked.txt").write_text("not code")  # untracked files do not count
    widest = write_spec(SPEC.replace("seeds = 2", "seeds = 4"), "widest.toml")
    assert cli("run", widest, "--out", out, "--backend", "serial")[0] == 0
    first, second, third = launch_records(out)
    assert second["git"] == {"commit": head, "dirty": True}
    assert second["note"] is None and second["tags"] == []
    assert third["git"] == {"commit": git(checkout, "rev-parse", "HEAD"), "dirty": False}
    assert third["git"]["commit"] != head
    assert json.loads((out / "store.json").read_text())["created_by"] == meta["created_by"]
    # The merged record (Store.launches) carries them as well.
    assert [r.get("git") for r in Store(out).launches()] == [r["git"] for r in (first, second, third)]


@needs_git
def test_no_commit_outside_a_checkout_or_inside_another_repository(tmp_path, checkout):
    assert provenance.git_state(tmp_path / "plain") is None  # not a repository
    inner = checkout / "site-packages"  # an installed wheel in a venv inside a repository
    inner.mkdir()
    assert provenance.git_state(inner) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert provenance.git_state(empty) is None  # no commit yet
    assert provenance.git_state(checkout)["commit"] == git(checkout, "rev-parse", "HEAD")


@needs_git
def test_this_checkout_is_recorded_when_insitu_runs_from_it():
    root = provenance.source_root()
    if not (root / ".git").exists():
        pytest.skip("insitu is not running from a git checkout")
    assert provenance.git_state(root)["commit"] == git(root, "rev-parse", "HEAD")


def test_a_library_version_is_the_imported_modules(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "pandas", types.SimpleNamespace(__version__="9.9"))
    assert provenance.library_version("pandas") == "9.9"
    assert provenance.library_version("no_such_library_here") is None


@pytest.mark.parametrize("args, problem", [
    (("--note", " "), "--note: empty note"),
    (("--note", "a\x07b"), "--note: holds control characters"),
    (("--tag", "two words"), "--tag 'two words': expected 1 to 64 printable characters"),
    (("--tag", "a,b"), "--tag 'a,b'"),
    (("--tag", ""), "--tag ''"),
    (("--tag", "x" * 65), "--tag 'xxxx"),
])
def test_bad_notes_and_tags_are_refused_and_nothing_written(cli, write_spec, tmp_path, args, problem):
    out = tmp_path / "s"
    code, _, err = cli("run", write_spec(SPEC), "--out", out, "--backend", "serial", *args)
    assert code == 2 and err.count("\n") == 1 and problem in err
    assert not out.exists()


def test_retry_failed_keeps_its_note_and_tags(cli, write_spec, tmp_path):
    out = tmp_path / "s"
    assert cli("run", write_spec(SPEC + "[fixed]\nfail = true\n"), "--out", out,
               "--backend", "serial")[0] == 3
    code, _, _ = cli("retry-failed", out, "--backend", "serial", "--note", "again", "--tag", "retry")
    assert code == 3  # they fail again; the launch is recorded all the same
    last = launch_records(out)[-1]
    assert last["command"] == "retry-failed" and last["note"] == "again" and last["tags"] == ["retry"]
    assert set(last["versions"]) == {"insitu", "python", "numpy", "scipy", "ray", "pyarrow", "pandas"}
