"""Every script in benchmarks/ runs to its table at a tiny size (`make bench` runs them at
full size); a script added without a smoke run here fails the first test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"

# script -> (arguments of a tiny run, a line its table must print)
TINY = {
    "mesh.py": (["--sizes", "4", "--batch", "8", "--repeat", "1", "--budget", "0.01"], "median"),
    "gradients.py": (["--ports", "16", "--batch", "8", "--ensembles", "1,2", "--repeat", "1", "--iterations", "40",
                   "--budget", "0.01"], "median"),
    "control.py": (["--task", "digits4", "--batch", "4", "--repeat", "1"], "on/off"),
    "sweep.py": (["--workers", "1", "--scale", "100"], "per-trial overhead"),
}


def test_every_benchmark_script_has_a_smoke_run():
    assert sorted(p.name for p in BENCHMARKS.glob("*.py")) == sorted(TINY)


# sweep.py starts Ray and builds stores: slow; the others run in the default suite
@pytest.mark.parametrize("script", [pytest.param(s, marks=pytest.mark.slow) if s == "sweep.py" else s
                                    for s in sorted(TINY)])
def test_benchmark_runs_at_a_tiny_size(script, tmp_path):
    args, expected = TINY[script]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert expected in run.stdout, run.stdout[-3000:]
    assert "Traceback" not in run.stderr
