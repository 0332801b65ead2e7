"""CLI behaviour: dry run, status, interrupts, and the analysis subcommands."""

from __future__ import annotations

import os
import signal
import sys
import types

import pytest

from tests.sweeps.helpers import all_keys, stored_rows
from insitu.sweeps.engine import backends
from insitu.sweeps.store import Store

SPEC = """
name = "cli"
experiment = "selftest"
seeds = 5
[grid]
x = [0.0, 1.0]
noise = [0.0, 0.5]
[ray]
chunk_seconds = 0.001
"""


def test_help_and_usage_errors(cli):
    code, _, err = cli("run")
    assert code == 2 and err.startswith("insitu: error:") and err.count("\n") == 1
    code, _, err = cli("run", "x.toml", "--workers", "0")
    assert code == 2 and "positive integer" in err
    code, _, err = cli("frobnicate")
    assert code == 2 and "invalid choice" in err


def test_a_validating_dry_run_writes_nothing_and_a_pilot_keeps_its_trials(cli, write_spec, tmp_path):
    code, out, _ = cli("run", write_spec(SPEC), "--out", tmp_path / "s", "--dry-run", "--no-pilot")
    assert code == 0 and out.strip() == "cli: 20 trials (20 pending) of experiment selftest v1"
    assert not (tmp_path / "s").exists()
    code, out, err = cli("run", write_spec(SPEC), "--out", tmp_path / "s", "--dry-run",
                         "--workers", "2")
    assert code == 0 and "20 trials (20 pending)" in out, err
    assert "pilot: one trial" in out and "(1 trials kept in the store)" in out
    assert "19 trials to run" in out and "on 2 workers" in out
    code, out, _ = cli("run", write_spec(SPEC), "--out", tmp_path / "s", "--backend", "serial")
    assert code == 0 and "19 trials (0 errors)" in out  # the pilot's trial is not run again


def test_default_output_is_results_slash_name(cli, write_spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("run", write_spec(SPEC), "--backend", "serial")
    assert code == 0 and (tmp_path / "results" / "cli" / "store.json").exists()


def test_status_counts_per_axis_value(cli, write_spec, tmp_path):
    out = tmp_path / "s"
    spec = write_spec(SPEC)
    cli("run", spec, "--out", out, "--backend", "serial")
    store = Store(out)
    store.part_paths()[0].unlink()
    code, text, _ = cli("status", out)
    lines = text.splitlines()
    assert code == 0
    done = int(lines[1].split(",")[1].split()[0])
    assert lines[1].startswith("trials: 20 total") and f"{20 - done} pending" in lines[1]
    assert any(line.split()[:1] == ["noise"] for line in lines)
    assert "not running" in lines[-1] and "trials/s" in lines[-1]


def test_ctrl_c_leaves_whole_parts_and_resume_completes(cli, write_spec, tmp_path,
                                                         monkeypatch):
    out = tmp_path / "s"
    spec = write_spec(SPEC)
    real = backends.run_chunk
    calls = []

    def interrupt_on_fourth_chunk(*args):
        calls.append(1)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C
        return real(*args)

    monkeypatch.setattr(backends, "run_chunk", interrupt_on_fourth_chunk)
    code, _, err = cli("run", spec, "--out", out, "--backend", "serial")
    lines = err.splitlines()  # the start line, then one line about the interruption
    assert code == 130 and len(lines) == 2 and lines[1].startswith("insitu: interrupted")
    monkeypatch.setattr(backends, "run_chunk", real)
    assert 0 < len(Store(out).part_paths()) < 5 and not (out / ".lock").exists()
    assert Store(out).temp_paths() == []
    code, _, _ = cli("run", spec, "--out", out, "--backend", "serial")
    assert code == 0 and len(all_keys(out)) == 40

    fresh = tmp_path / "fresh"
    cli("run", spec, "--out", fresh, "--backend", "serial")
    assert stored_rows(out) == stored_rows(fresh)


from insitu.analysis.exceptions import AnalysisInputError  # noqa: E402 (the real one-line error)


@pytest.fixture
def fake_analysis(monkeypatch):
    """A stand-in ``insitu.analysis.commands`` recording its calls."""
    calls = []

    def summary_command(store_dir, by, **options):
        calls.append(("summary", store_dir, by, options))
        if store_dir == "bad":
            raise AnalysisInputError("bad: not a store\n(really)")
        return "a table"

    def tolerance_command(store_dir, axis, drop, **options):
        calls.append(("tolerance", store_dir, axis, drop, options))
        return "tolerances"

    def figures_command(store_dir, out_dir, notices, **options):
        calls.append(("figures", store_dir, out_dir, options))
        notices.append("report report.html is out of date")
        return ["f1.png", "f2.png"]

    def report_command(store_dir, out_path, notices, **options):
        calls.append(("report", store_dir, out_path, options))
        return "report.html"

    commands = types.ModuleType("insitu.analysis.commands")
    commands.summary_command = summary_command
    commands.tolerance_command = tolerance_command
    commands.figures_command = figures_command
    commands.report_command = report_command
    monkeypatch.setitem(sys.modules, "insitu.analysis.commands", commands)
    return calls


def test_analysis_subcommands_delegate(cli, fake_analysis):
    plain = {"where": None, "metric": None, "pool": []}
    assert cli("summary", "st", "--by", "noise,seed", "--by", "x") == (0, "a table\n", "")
    assert cli("summary", "st", "--where", "x == 1", "--metric", "m", "--pool", "a,b",
               "--format", "md", "--out", "t.md") == (0, "a table\n", "")
    assert cli("tolerance", "st", "--axis", "noise", "--drop", "0.1", "--relative") == (0, "tolerances\n", "")
    assert cli("figures", "st", "--out", "figs") == (
        0, "f1.png\nf2.png\n", "insitu: note: report report.html is out of date\n")
    assert cli("figures", "st", "--width", "single")[0] == 0
    assert cli("report", "st") == (0, "report.html\n", "")
    assert fake_analysis == [
        ("summary", "st", ["noise", "seed", "x"], {**plain, "fmt": "text", "out": None}),
        ("summary", "st", None, {"where": "x == 1", "metric": "m", "pool": ["a", "b"], "fmt": "md",
                                 "out": "t.md"}),
        ("tolerance", "st", "noise", 0.1, {**plain, "relative": True, "fmt": "text", "out": None,
                                           "figure": None, "against": None, "n_resamples": 2000}),
        ("figures", "st", "figs", {**plain, "width": None}),
        ("figures", "st", None, {**plain, "width": "single"}), ("report", "st", None, plain)]
    code, _, err = cli("tolerance", "st", "--axis", "noise", "--drop", "-1")
    assert code == 2 and err.count("\n") == 1 and "expected a positive number" in err
    assert cli("summary", "bad") == (2, "", "insitu: error: bad: not a store (really)\n")
