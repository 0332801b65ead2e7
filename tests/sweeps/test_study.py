"""The study's specs: every shipped spec validates, and a reduced quick study runs end to end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from insitu.cli import main

SPECS = sorted((Path(__file__).resolve().parents[2] / "sweeps" / "specs").glob("*.toml"))


def test_the_study_specs_are_shipped():
    names = {p.stem for p in SPECS}
    assert {"quick", "quick-gradient", "paper-fig2", "paper-fig3", "paper-fig4", "errors-vs-depth"} <= names


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_spec_validates_in_a_dry_run(spec, tmp_path, capsys):
    out = tmp_path / "store"
    assert main(["run", str(spec), "--dry-run", "--no-pilot", "--backend", "serial", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"\d+ trials", printed)
    assert not out.exists()


def _reduced(text: str) -> str:
    """quick.toml cut to two grid points, one seed and a few iterations."""
    text = re.sub(r"^seeds = .*$", "seeds = 1", text, flags=re.M)
    text = re.sub(r"^epochs = .*$", "epochs = 2", text, flags=re.M)
    text = re.sub(r"^boundary_grid = .*$", "boundary_grid = 9", text, flags=re.M)
    text = re.sub(r"^bs_error = .*$", "bs_error = [0.0, 0.1]", text, flags=re.M)
    text = re.sub(r"^tap_noise = .*$", "tap_noise = [0.01]", text, flags=re.M)
    return text


@pytest.mark.slow  # run, figures and report of a quick store are covered fast by the README snippet test
@pytest.mark.ray
def test_reduced_quick_study_runs_through_run_figures_and_report(tmp_path, ray_cluster, capsys):
    spec = tmp_path / "quick-reduced.toml"
    original = next(p for p in SPECS if p.stem == "quick").read_text()
    spec.write_text(_reduced(original))
    store = tmp_path / "quick"
    assert main(["run", str(spec), "--out", str(store), "--address", ray_cluster]) == 0
    assert main(["figures", str(store)]) == 0
    assert main(["report", str(store)]) == 0
    figures = sorted((store / "figures").glob("*.png"))
    assert figures and all(f.stat().st_size > 1000 for f in figures)
    html = (store / "report.html").read_text()
    assert html.count("data:image/png;base64") >= len(figures)
    assert main(["summary", str(store)]) == 0
    summary = capsys.readouterr().out
    assert "insitu - digital" in summary
