"""What a new user meets first: dry runs and their estimate, shipped specs by name, extending
a store, the CLI's conventions, progress without a terminal, Ray's notices."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.sweeps.helpers import all_keys, stored_rows
from insitu.sweeps.app import catalog, launch
from insitu.sweeps.app.dry_run import estimate_text
from insitu.sweeps.app.options import Pool
from insitu.sweeps.app.progress import format_duration
from insitu.sweeps.engine import ray_backend
from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.engine.spec import parse_spec
from insitu.sweeps.engine.trials import enumerate_trials
from insitu.sweeps.store import read_rows

ROOT = Path(__file__).resolve().parents[2]
INSITU = [sys.executable, "-m", "insitu"]

SELFTEST = """
name = "grow"
experiment = "selftest"
seeds = 3
[fixed]
noise = 0.5
curve_len = 2
[grid]
x = [0.0, 1.0]
[ray]
chunk_seconds = 0.001
"""

# A small seed-ensemble sweep of the real experiment: 3 grid points x 6 paired seeds.
ENSEMBLE = """
name = "ens"
experiment = "classify"
seeds = 6
[fixed]
task = "moons"
modes = "digital,insitu"
epochs = 2
batch_size = 16
eval_every = 2
[grid]
bs_error = [0.0, 0.05, 0.1]
"""


# ------------------------------------------------------------------------------ dry runs
def test_dry_run_with_pilot_without_workers_on_the_embedded_ray(cli, write_spec, tmp_path):
    out = tmp_path / "s"
    code, stdout, err = cli("run", write_spec(ENSEMBLE), "--out", out, "--dry-run")
    assert code == 0, err
    assert "18 trials (18 pending)" in stdout
    cpus = os.cpu_count() or 1
    assert re.search(r"pilot: one trial [\d.e-]+ s, an ensemble of 2 seeds [\d.e-]+ s "
                     r"\(2 trials kept in the store\)", stdout), stdout
    assert re.search(rf"3 ensembles to run: estimated [\d.]+ (s|min|h) on {cpus} workers? "
                     rf"\(one per CPU\)", stdout), stdout
    assert len(read_rows(out).table) == 2 * 2  # the pilot's two trials, two modes each


def test_dry_run_estimate_extrapolates_ensembles_from_the_two_pilot_units():
    """An ensemble of k seeds costs t(1) + (t(2) - t(1)) (k - 1), not k t(1); the pending
    units are handed out whole over the workers, so the longest one bounds the total."""
    spec = parse_spec(tomllib.loads(ENSEMBLE))
    experiment = get_experiment("classify")
    trials = enumerate_trials(spec, experiment)
    pending = trials[2:]  # the pilot kept seeds 0 and 1 of the first grid point
    serial = Pool(backend="serial", address="", workers=1)
    lines = estimate_text(spec, experiment, pending, serial, [1.0, 1.5], 2, None)
    # units of 4, 6 and 6 seeds: 2.5 + 3.5 + 3.5 = 9.5 s on one worker (16 x 1 s if not pooled)
    assert lines[0] == "pilot: one trial 1 s, an ensemble of 2 seeds 1.5 s (2 trials kept in the store)"
    assert lines[1].startswith(f"3 ensembles to run: estimated {format_duration(9.5)} on 1 worker")
    two = Pool(backend="ray", address="", workers=2)
    assert f"estimated {format_duration(9.5 / 2)} on 2 workers" in estimate_text(
        spec, experiment, pending, two, [1.0, 1.5], 2, None)[1]
    # one worker per unit: the longest unit (3.5 s), not the mean, bounds the time
    three = Pool(backend="ray", address="", workers=8)
    assert f"estimated {format_duration(3.5)}" in estimate_text(
        spec, experiment, pending, three, [1.0, 1.5], 2, None)[1]
    # an ensemble that costs less than one trial alone is never extrapolated downwards
    assert f"estimated {format_duration(3.0)}" in estimate_text(
        spec, experiment, pending, serial, [1.0, 0.8], 2, None)[1]


def test_the_run_after_a_dry_run_skips_the_pilots_trials(cli, write_spec, tmp_path):
    spec = write_spec(ENSEMBLE)
    out = tmp_path / "s"
    assert cli("run", spec, "--out", out, "--dry-run", "--backend", "serial")[0] == 0
    code, ran, _ = cli("run", spec, "--out", out, "--backend", "serial")
    assert code == 0 and "16 trials (0 errors)" in ran  # the pilot kept 2
    assert len(read_rows(out).table) == 18 * 2


def test_run_finds_a_shipped_spec_by_name(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the serial backend: a Ray pilot is covered by the embedded-Ray dry run above
    code, stdout, err = cli("run", "quick", "--dry-run", "--backend", "serial", "--set", "epochs=1")
    assert code == 0, err
    shipped = catalog.shipped_specs()["quick"]
    assert shipped == ROOT / "sweeps" / "specs" / "quick.toml"
    assert stdout.startswith("quick: ") and "pilot" in stdout
    assert (tmp_path / "results" / "quick" / "store.json").exists()  # the pilot's trials kept
    code, _, err = cli("run", "quik", "--dry-run")
    assert code == 2 and "did you mean 'quick'?" in err and err.count("\n") == 1
    # a file of that name in the current directory wins over the shipped spec
    (tmp_path / "quick").write_text(SELFTEST)
    code, stdout, _ = cli("run", "quick", "--dry-run", "--no-pilot")
    assert code == 0 and stdout.startswith("grow: 6 trials")


def test_specs_lists_every_shipped_spec_on_one_line(cli):
    code, stdout, _ = cli("specs")
    assert code == 0
    names = list(catalog.shipped_specs())
    lines = [line for line in stdout.splitlines() if line.split(" ")[0] in names]
    assert [line.split(" ")[0] for line in lines] == names
    quick = next(line for line in lines if line.startswith("quick "))
    assert "classify, 128 trials" in quick and catalog.spec_summary(catalog.shipped_specs()["quick"]) in quick


def test_cluster_examples_print_the_shipped_files(cli):
    code, listing, _ = cli("cluster-example")
    assert code == 0
    for name, path in catalog.cluster_examples().items():
        assert f"{name:12s} {path}" in listing.splitlines()
        assert path.exists() and path.parent == ROOT / "sweeps" / "cluster"
    code, text, _ = cli("cluster-example", "slurm")
    assert code == 0 and text == (ROOT / "sweeps" / "cluster" / "slurm.sbatch").read_text()
    code, text, _ = cli("cluster-example", "kuberay")
    assert code == 0 and "kind: RayJob" in text
    code, out, err = cli("cluster-example", "slurn")
    assert code == 2 and out == "" and err.count("\n") == 1 and "did you mean 'slurm'?" in err
    code, out, _ = cli("specs", "--path")
    assert code == 0 and Path(out.strip()) == catalog.SPECS_DIR and (catalog.SPECS_DIR / "quick.toml").exists()


# ------------------------------------------------------------------------ extending stores
def _run(cli, spec, out):
    return cli("run", spec, "--out", out, "--backend", "serial")


def test_promoting_a_fixed_parameter_keeps_the_stored_trials(cli, write_spec, tmp_path):
    out = tmp_path / "store"
    assert _run(cli, write_spec(SELFTEST), out)[0] == 0
    before = stored_rows(out)
    parts = sorted(p.name for p in (out / "parts").iterdir())
    promoted = write_spec(SELFTEST.replace("noise = 0.5\n", "")
                          .replace("x = [0.0, 1.0]", "x = [0.0, 1.0]\nnoise = [0.5, 2.0]"), "p.toml")
    code, stdout, err = _run(cli, promoted, out)
    assert code == 0, err
    assert "6 trials (0 errors)" in stdout  # only the new noise value ran
    assert set(parts) <= {p.name for p in (out / "parts").iterdir()}
    after = stored_rows(out)
    old_keys = {r["key"] for r in before}
    assert [r for r in after if r["key"] in old_keys] == before
    assert len(all_keys(out)) == 2 * len(before)  # nothing rerun, nothing duplicated
    assert json.loads((out / "spec.json").read_text())["grid"]["noise"] == [0.5, 2.0]
    # without the old value among the axis values it is still refused, and nothing written
    moved = write_spec(SELFTEST.replace("noise = 0.5\n", "")
                       .replace("x = [0.0, 1.0]", "x = [0.0, 1.0]\nnoise = [2.0, 3.0]"), "m.toml")
    fresh = tmp_path / "fresh"
    _run(cli, write_spec(SELFTEST), fresh)
    code, _, err = _run(cli, moved, fresh)
    assert code == 2 and "grid.noise: axis added without the old value 0.5" in err
    assert len(all_keys(fresh)) == len(before)


def test_an_older_smaller_spec_runs_nothing_and_keeps_the_store_spec(cli, write_spec, tmp_path):
    out = tmp_path / "store"
    wide = write_spec(SELFTEST.replace("x = [0.0, 1.0]", "x = [0.0, 1.0, 2.0]")
                      .replace("seeds = 3", "seeds = 4"), "wide.toml")
    assert _run(cli, wide, out)[0] == 0
    saved = (out / "spec.json").read_text()
    keys = all_keys(out)
    code, stdout, err = _run(cli, write_spec(SELFTEST), out)
    assert code == 0, err
    assert "nothing to do, all 6 trials are stored" in stdout
    assert (out / "spec.json").read_text() == saved and all_keys(out) == keys
    # a store spec with a grid axis, an older spec with that parameter fixed at one value
    narrow = write_spec(SELFTEST.replace("noise = 0.5\n", "noise = 2.0\n"), "n.toml")
    promoted = tmp_path / "promoted"
    grid = write_spec(SELFTEST.replace("noise = 0.5\n", "")
                      .replace("x = [0.0, 1.0]", "x = [0.0, 1.0]\nnoise = [0.5, 2.0]"), "g.toml")
    assert _run(cli, grid, promoted)[0] == 0
    code, stdout, _ = _run(cli, narrow, promoted)
    assert code == 0 and "nothing to do" in stdout
    # trials that are neither a subset nor a superset are refused
    other = write_spec(SELFTEST.replace("x = [0.0, 1.0]", "x = [0.0, 5.0]"), "o.toml")
    code, _, err = _run(cli, other, out)
    assert code == 2 and "values removed" in err


# ---------------------------------------------------------------------------- CLI manners
def test_version_is_the_installed_distribution_version(cli):
    code, stdout, _ = cli("--version")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert code == 0 and stdout == f"insitu {version('insitu')}\n"
    assert version("insitu") == pyproject["project"]["version"]


def test_a_closed_pipe_exits_quietly(tmp_path):
    # The reader goes away before insitu writes (it is still importing), as `| head` does.
    proc = subprocess.Popen(INSITU + ["params", "classify"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""


def test_help_has_examples_and_no_rest_markup(cli):
    code, stdout, _ = cli("--help")
    assert code == 0 and "examples:" in stdout and "insitu run quick --dry-run" in stdout
    from insitu.cli import build_parser

    parser = build_parser()
    texts = [parser.format_help()]
    for action in parser._subparsers._group_actions:
        texts += [p.format_help() for p in action.choices.values()]
    assert not any("``" in t or "`" in t for t in texts)


def test_misspelt_names_get_a_suggestion(cli, write_spec, tmp_path):
    spec = write_spec("""
        name = "s"
        experiment = "clasify"
        """)
    code, _, err = cli("run", spec, "--dry-run")
    assert code == 2 and "unknown experiment 'clasify' (did you mean 'classify'?)" in err
    spec = write_spec("""
        name = "s"
        experiment = "classify"
        [fixed]
        bs_eror = 0.1
        [grid]
        tap_nosie = [0.0]
        """)
    code, _, err = cli("run", spec, "--dry-run")
    assert code == 2
    assert "fixed.bs_eror: unknown parameter of experiment 'classify' (did you mean 'bs_error'?)" in err
    assert "grid.tap_nosie: unknown parameter of experiment 'classify' (did you mean 'tap_noise'?)" in err
    code, _, err = cli("stauts", tmp_path)
    assert code == 2 and "(did you mean 'status'?)" in err


def test_params_prints_every_declared_parameter(cli):
    for name in ("classify", "gradient", "unitary"):
        code, stdout, _ = cli("params", name)
        assert code == 0
        table = stdout.split("\n\nset them in")[0]
        lines = {line.split()[0]: line for line in table.splitlines()[3:] if line.strip()}
        for param in get_experiment(name).params:
            line = lines[param.name]
            assert line.split()[1] == param.type and param.doc and line.endswith(param.doc)
            assert catalog.param_range(param) in line
    code, stdout, _ = cli("params", "classify")
    assert re.search(r"^bs_error\s+float\s+0 \.\. 0\.785\s+0\s+coupler", stdout, re.M)


def test_the_product_registers_no_test_experiment(cli, write_spec):
    """selftest (with its crash switch) is the tests': a fresh ``insitu`` knows only the
    built-in experiments; the tests register theirs through INSITU_EXPERIMENT_MODULES."""
    env = {k: v for k, v in os.environ.items() if k != "INSITU_EXPERIMENT_MODULES"}
    done = subprocess.run([*INSITU, "params"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and "classify" in done.stdout and "selftest" not in done.stdout
    spec = write_spec('name = "s"\nexperiment = "nope"\n')
    done = subprocess.run([*INSITU, "run", str(spec), "--dry-run"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 2 and done.stderr.rstrip().endswith("(known: classify, gradient, unitary)")
    code, stdout, _ = cli("params", "selftest")  # registered in this session
    assert code == 0 and "crash_marker" in stdout
    code, _, _ = cli("run", write_spec(SELFTEST), "--dry-run", "--no-pilot")
    assert code == 0


# ----------------------------------------------------------------- progress without a tty
def test_progress_lines_without_a_terminal(write_spec, tmp_path):
    spec = write_spec(SELFTEST.replace("curve_len = 2", "curve_len = 2\nwork_ms = 20.0"))
    stdout, stderr = io.StringIO(), io.StringIO()
    options = launch.LaunchOptions(backend="serial", progress_seconds=0.01)
    assert launch.run_spec_file(str(spec), str(tmp_path / "s"), options, stdout, stderr) == 0
    lines = stderr.getvalue().splitlines()
    assert lines[0] == f"insitu: {tmp_path / 's'}: 6 trials to run (0 of 6 stored) on 1 serial worker"
    progress = [line for line in lines[1:]
                if re.fullmatch(r"insitu: \d/6 trials done, 0 errors, [\d.e+]+ trials/s, "
                                r"elapsed [\d.]+ s, ETA ([\d.]+ s|unknown)", line)]
    assert len(progress) >= 2 and progress[-1].startswith("insitu: 6/6 trials done")
    assert len(progress) == len(lines) - 1  # nothing else on stderr, no bar
    # quiet: nothing on stderr at all, the summary line still on stdout
    stderr = io.StringIO()
    quiet = launch.LaunchOptions(backend="serial", progress_seconds=0.01, quiet=True)
    spec2 = write_spec(spec.read_text().replace("seeds = 3", "seeds = 4"), "more.toml")
    assert launch.run_spec_file(str(spec2), str(tmp_path / "s"), quiet, io.StringIO(), stderr) == 0
    assert stderr.getvalue() == ""


# ----------------------------------------------------------------------------- Ray notices
def test_the_token_notice_is_dropped_and_other_ray_warnings_kept():
    logger = logging.getLogger(ray_backend.AUTH_NOTICE_LOGGER)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        ray_backend._quiet_local_ray_notices()
        ray_backend._quiet_local_ray_notices()  # idempotent
        logger.warning("Token authentication is enabled for this Ray cluster. Set X to opt out.")
        logger.warning("Token authentication is enabled but no token was found")
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["Token authentication is enabled but no token was found"]


@pytest.mark.ray
def test_an_embedded_ray_run_prints_no_alarming_notice(write_spec, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS", ray_backend.SINGLE_MACHINE_ENV)}
    env["PYTHONPATH"] = str(ROOT)
    spec = write_spec(SELFTEST)
    done = subprocess.run(INSITU + ["run", str(spec), "--out", str(tmp_path / "s"), "--workers", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "6 trials (0 errors)" in done.stdout
    assert done.stderr.splitlines()[0].startswith("insitu: ")
    for alarming in ("8.8.8.8", "external connectivity", "Token authentication", "Traceback"):
        assert alarming not in done.stderr, done.stderr


def test_shipped_specs_state_their_run_time_for_their_trial_count():
    from insitu.sweeps.engine.spec import load_spec

    stated = {}
    for name, path in catalog.shipped_specs().items():
        match = re.search(r"^# Run time: (\d+) trials in [\d.]+ (s|min|h) of sweep on 2 cores",
                          path.read_text(), re.M)
        if match:
            stated[name] = int(match.group(1))
            assert stated[name] == load_spec(path).trial_count, name
    assert {"quick", "quick-gradient", "paper-fig2", "paper-fig3", "errors-vs-depth",
            "baselines", "baselines-digits64", "paper-fig4", "paper-fig4-corners",
            "paper-fig4-headline", "paper-fig4-lr", "paper-fig4-error-free", "scale-mnist"} <= set(stated)
