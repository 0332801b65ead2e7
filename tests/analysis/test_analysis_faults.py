"""Analysis under faults: non-finite metrics are counted and named in every output, outputs
that cannot be written are refused in one line (exit 2), and a full disk leaves no file
half-written (one line, exit 1)."""

from __future__ import annotations

import errno
import os
import re

import numpy as np
import pytest

from insitu.cli import main


@pytest.fixture
def run(capsys):
    def run(*args) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


@pytest.fixture
def small_store(make_store, fill):
    """classify over two splitting errors, two seeds, digital and insitu: cheap to draw."""
    store = make_store("small", "classify", grid={"bs_error": [0.0, 0.1]}, seeds=(0, 1))
    return fill.classify(store, modes=("digital", "insitu"), per_part=2)


@pytest.fixture
def diverged(make_store, fill):
    """classify over bs_error, 6 seeds, digital and insitu: digital at bs_error 0.1 diverged
    on three seeds (one NaN, two +inf), insitu at 0.05 on every seed (+inf)."""
    store = make_store("diverged", "classify", grid={"bs_error": [0.0, 0.05, 0.1]}, seeds=range(6))
    from tests.analysis.conftest import classify_metrics

    rng = np.random.default_rng(3)
    rows = []
    for params, seed in store.points():
        for mode in ("digital", "insitu"):
            metrics = classify_metrics(rng, params, seed, mode, with_boundary=False)
            if mode == "digital" and params["bs_error"] == 0.1 and seed < 3:
                metrics["test_accuracy"] = np.nan if seed == 0 else np.inf
            if mode == "insitu" and params["bs_error"] == 0.05:
                metrics["test_accuracy"] = np.inf
            rows.append(store.row(params, seed, mode, metrics))
    store.write_part(rows, "L1")
    return store


def test_summary_counts_nonfinite_values_per_cell(diverged):
    from insitu.analysis.load import load, load_params
    from insitu.analysis.summary import summarize

    params = load_params(diverged.root)
    table = summarize(load(diverged.root), metrics=["test_accuracy"], params=params)
    cell = table.set_index(["bs_error", "mode"])
    assert cell.loc[(0.1, "digital"), "n"] == 3 and cell.loc[(0.1, "digital"), "n_nonfinite"] == 3
    assert cell.loc[(0.05, "insitu"), "n"] == 0 and cell.loc[(0.05, "insitu"), "n_nonfinite"] == 6
    assert np.isnan(cell.loc[(0.05, "insitu"), "mean"])
    assert cell.loc[(0.0, "digital"), "n_nonfinite"] == 0 and cell.loc[(0.0, "digital"), "n"] == 6
    # a mode that never reports a metric (digital measures no gradient) gets no row for it
    grads = summarize(load(diverged.root), metrics=["grad_error_mean"], params=params)
    assert set(grads["mode"]) == {"insitu"}


def test_summary_command_names_the_diverged_cells_without_numpy_warnings(run, diverged):
    code, out, err = run("summary", diverged.root)
    assert code == 0 and err == ""
    assert "9 seed values of test accuracy are NaN or infinite" in out
    assert re.search(r"digital at [^;]* = 0\.1 \(3 of 6\)", out)
    assert re.search(r"insitu at [^;]* = 0\.05 \(6 of 6\)", out)
    assert "n_nonfinite" in out.splitlines()[4]  # the column shows when a value was left out
    code, csv, _ = run("summary", diverged.root, "--format", "csv")
    assert csv.splitlines()[0].split(",")[:9][-1] == "n_nonfinite"
    code, out, err = run("compare", diverged.root, "insitu", "digital")
    assert code == 0 and err == "" and "9 values NaN or infinite" in out


def test_clean_store_shows_no_nonfinite_column(run, classify_store):
    code, out, _ = run("summary", classify_store.root)
    assert code == 0 and "n_nonfinite" not in out and "NaN or infinite" not in out


def test_figures_and_report_say_what_they_left_out(run, diverged, tmp_path):
    from insitu.analysis.load import read_store
    from insitu.analysis.plan import Plan

    plan = Plan.build(read_store(diverged.root))
    headline = plan.figures[0]
    assert "9 values of test accuracy NaN or infinite" in headline.caption
    built, _ = plan.draw()
    fig = dict((p.name, f) for p, f in built)[headline.name]
    assert "NaN or infinite" in fig.get_supxlabel()  # said in the figure itself
    code, out, err = run("report", diverged.root, "--out", tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert code == 0 and err == ""
    assert "all 6 NaN/inf" in page and "[3 NaN/inf]" in page


def test_figures_to_a_read_only_place_is_one_line(run, small_store, tmp_path, monkeypatch):
    import insitu.analysis.command_io as command_io

    monkeypatch.setattr(command_io, "read_only", lambda path: True)
    code, out, err = run("figures", small_store.root)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "read-only file system" in err and "--out" in err
    assert not (small_store.root / "figures").exists()
    code, _, err = run("report", small_store.root, "--out", tmp_path / "x" / "r.html")
    assert code == 2 and "read-only file system" in err and not (tmp_path / "x").exists()


def test_output_under_a_file_or_refused_by_the_os_is_one_line(run, small_store, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run("figures", small_store.root, "--out", blocker / "figs")
    assert code == 2 and err.count("\n") == 1 and "under a file" in err
    import insitu.analysis.command_io as command_io

    def refused(path, data, temp=None):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(command_io, "write_bytes_atomic", refused)
    code, _, err = run("report", small_store.root, "--out", tmp_path / "r.html")
    assert code == 2 and err.count("\n") == 1 and "cannot write" in err and "Permission denied" in err


def _fail_writes_under(directory, monkeypatch):
    """Make every fsync of a file under ``directory`` fail with ENOSPC (a disk that filled)."""
    import insitu.sweeps.store.fsutil as fsutil

    real = os.fsync

    def fsync(fd):
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if path.startswith(str(directory)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name a file descriptor's path")
def test_full_disk_leaves_no_half_written_output(run, small_store, tmp_path, monkeypatch):
    out = tmp_path / "figs"
    _fail_writes_under(out, monkeypatch)
    code, stdout, err = run("figures", small_store.root, "--out", out)
    assert code == 1 and stdout == ""
    assert err.count("\n") == 1 and "disk is full" in err
    assert not out.exists() or list(out.iterdir()) == []  # no 0-byte PNG, no temp file
    _fail_writes_under(tmp_path / "t", monkeypatch)
    code, _, err = run("summary", small_store.root, "--out", tmp_path / "t" / "table.txt")
    assert code == 1 and "disk is full" in err and list((tmp_path / "t").iterdir()) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name a file descriptor's path")
def test_full_disk_in_compact_keeps_the_store(run, small_store, monkeypatch):
    from insitu.sweeps.store import Store

    store = Store(small_store.root)
    before = sorted(p.name for p in store.part_paths())
    assert len(before) > 1
    _fail_writes_under(store.parts_dir, monkeypatch)
    code, _, err = run("compact", small_store.root)
    assert code == 1 and err.count("\n") == 1 and "disk is full" in err
    assert sorted(p.name for p in store.part_paths()) == before
    assert store.temp_paths() == [] and not store.paths.lock.exists()
    monkeypatch.undo()
    code, out, _ = run("compact", small_store.root)
    assert code == 0 and f"compacted {len(before)} parts into 1" in out
