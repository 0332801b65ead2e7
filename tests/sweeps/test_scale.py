"""The scale study (sweeps/specs/scale.toml), reduced: run, tolerance against N, figures,
report and the exponent table, serial and on Ray; and stores from before ``n_ports``."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.load import load, load_params
from insitu.analysis.scaling import size_axis
from insitu.cli import main
from insitu.sweeps.engine.registry import get_experiment
from tests.sweeps.helpers import stored_rows

ROOT = Path(__file__).resolve().parents[2]
TIMING = ("elapsed_s", "train_seconds", "launch_id")


def _reduced(text: str, tasks=("digits4", "digits8"), seeds=2) -> str:
    """scale.toml cut to two sizes, two errors, two seeds and one epoch (both topologies and
    both loss settings stay)."""
    subs = {r"^seeds = .*$": f"seeds = {seeds}", r"^epochs = .*$": "epochs = 1",
            r"^eval_every = .*$": "eval_every = 1",
            r"^task = .*$": "task = [" + ", ".join(f'"{t}"' for t in tasks) + "]",
            r"^bs_error = .*$": "bs_error = [0.0, 0.1]"}
    for pattern, value in subs.items():
        text, n = re.subn(pattern, value, text, flags=re.M)
        assert n == 1, pattern
    return text


def _script():
    spec = importlib.util.spec_from_file_location("scale_study", ROOT / "scripts" / "scale_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _comparable(store) -> pd.DataFrame:
    """The stored rows without timing columns, in key order (NaN-aware comparison)."""
    rows = [{k: v for k, v in r.items() if k not in TIMING} for r in stored_rows(store)]
    return pd.DataFrame(rows).reset_index(drop=True)


def _analyse(store: Path, tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    stem = tmp_path / "tolerance_vs_n"
    assert main(["tolerance", str(store), "--axis", "bs_error", "--drop", "0.05", "--resamples", "200",
                 "--where", "loss_std_db == 0", "--figure", str(stem), "--against", "n_ports"]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "tolerance_vs_n.png").stat().st_size > 1000
    lines = [line.split() for line in printed.splitlines()[2:]]
    assert {line[0] for line in lines if line and line[0].isdigit()} == {"4", "8"}
    assert any(line[:1] == ["n_ports"] for line in lines)  # the size column comes first
    assert main(["figures", str(store)]) == 0
    figures = {p.stem for p in (store / "figures").glob("*.png")}
    assert "tolerance_bs_error_vs_n_ports_by_loss_std_db" in figures
    assert main(["report", str(store)]) == 0
    html = (store / "report.html").read_text()
    assert html.count("data:image/png;base64") >= len(figures)
    capsys.readouterr()
    out = tmp_path / "scale_figures"
    assert _script().main([str(store), "--resamples", "200", "--figures", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fitted exponent p of tolerance ~ a N^p" in printed
    assert "where insitu starts to beat each mode" in printed
    for stem in ("scale_tolerance_vs_ports_loss_std_db0", "scale_accuracy_vs_bs_error_loss_std_db0.05"):
        assert (out / f"{stem}.png").stat().st_size > 1000


@pytest.mark.slow  # the scale tables and figures are covered fast by tests/analysis/test_analysis_scaling.py
def test_reduced_scale_study_serial_end_to_end(tmp_path, capsys):
    spec = tmp_path / "scale-reduced.toml"
    spec.write_text(_reduced((ROOT / "sweeps" / "specs" / "scale.toml").read_text()))
    store = tmp_path / "scale"
    assert main(["run", str(spec), "--backend", "serial", "--out", str(store), "-q"]) == 0
    rows = load(store)
    assert len(rows) == 2 * 2 * 2 * 2 * 2 * 5  # tasks x topologies x errors x losses x seeds x modes
    assert dict(zip(rows["task"], rows["n_ports"])) == {"digits4": 4, "digits8": 8}
    _analyse(store, tmp_path, capsys)


@pytest.mark.slow  # Ray equals serial is covered fast by test_sweep_ray.py
@pytest.mark.ray
def test_reduced_scale_study_on_ray_equals_serial(tmp_path, ray_cluster, capsys):
    spec = tmp_path / "scale-reduced.toml"
    spec.write_text(_reduced((ROOT / "sweeps" / "specs" / "scale.toml").read_text(), tasks=("digits4",)))
    ray_store, serial_store = tmp_path / "ray", tmp_path / "serial"
    assert main(["run", str(spec), "--out", str(ray_store), "--address", ray_cluster, "-q"]) == 0
    assert main(["run", str(spec), "--backend", "serial", "--out", str(serial_store), "-q"]) == 0
    pd.testing.assert_frame_equal(_comparable(ray_store), _comparable(serial_store))
    # one size: no size axis to draw against, said in one line
    capsys.readouterr()
    assert main(["tolerance", str(ray_store), "--axis", "bs_error", "--figure", str(tmp_path / "t"),
                 "--against", "n_ports"]) == 2
    assert "--against 'n_ports' is not an axis" in capsys.readouterr().err
    assert main(["figures", str(ray_store)]) == 0
    assert main(["report", str(ray_store)]) == 0


def test_store_mixing_parts_with_and_without_n_ports(tmp_path, monkeypatch, capsys):
    """Parts written before classify rows carried n_ports still load, show status and
    compact; the size axis then names the task whose rows lack it."""
    base = _reduced((ROOT / "sweeps" / "specs" / "scale.toml").read_text(), seeds=1)
    base = base.replace('modes = "digital,corrected,calibrated,insitu,analog"', 'modes = "digital,insitu"')
    base = base.replace("calibration_error = 0.01\n", "")
    base = re.sub(r"^topology = .*$", 'topology = ["rectangular"]', base, flags=re.M)
    base = re.sub(r"^loss_std_db = .*$", "loss_std_db = [0.0]", base, flags=re.M)
    spec = tmp_path / "mixed.toml"
    spec.write_text(base)
    store = tmp_path / "mixed"
    module = sys.modules[get_experiment("classify").run_group.__module__]
    original = module.rows

    def without_size(*args, **kwargs):
        return [{k: v for k, v in row.items() if k != "n_ports"} for row in original(*args, **kwargs)]

    monkeypatch.setattr(module, "rows", without_size)
    assert main(["run", str(spec), "--backend", "serial", "--out", str(store), "-q"]) == 0
    monkeypatch.setattr(module, "rows", original)
    spec.write_text(base.replace("seeds = 1", "seeds = 2"))
    assert main(["run", str(spec), "--backend", "serial", "--out", str(store), "-q"]) == 0
    rows = load(store)
    assert len(rows) == 2 * 2 * 2 * 2
    old, new = rows[rows["seed"] == 0], rows[rows["seed"] == 1]
    assert old["n_ports"].isna().all() and (new["n_ports"] == new["task"].str[6:].astype(int)).all()
    with pytest.raises(AnalysisInputError, match="some rows of task = 'digits4' have no n_ports"):
        size_axis(rows, load_params(store))
    assert main(["status", str(store)]) == 0
    assert main(["summary", str(store)]) == 0
    assert main(["figures", str(store)]) == 0  # drawn by task, with a note
    before = _comparable(store)
    assert main(["compact", str(store)]) == 0
    pd.testing.assert_frame_equal(_comparable(store), before)
    after = load(store)
    np.testing.assert_array_equal(after.sort_values(["key", "mode"])["n_ports"].isna(),
                                  rows.sort_values(["key", "mode"])["n_ports"].isna())
