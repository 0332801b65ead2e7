"""The analysis commands on a store written by a real (serial) sweep, through the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

SPEC = """
name = "tol"
experiment = "classify"
seeds = 4

[fixed]
task = "moons"
modes = "digital,insitu"
epochs = 3
batch_size = 16
lr = 0.02
eval_every = 3
boundary_grid = 5

[grid]
bs_error = [0.0, 0.15, 0.3]
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    from insitu.cli import main

    root = tmp_path_factory.mktemp("analysis")
    spec = root / "tol.toml"
    spec.write_text(SPEC)
    store = root / "tol"
    assert main(["run", str(spec), "--out", str(store), "--backend", "serial"]) == 0
    return store


def _crossing_by_hand(xs, means, drop):
    target = means[0] - drop
    for i in range(1, len(xs)):
        if means[i] <= target:
            x0, x1, y0, y1 = xs[i - 1], xs[i], means[i - 1], means[i]
            return x0 + (target - y0) / (y1 - y0) * (x1 - x0)
    return None


def test_tolerance_equals_a_pandas_computation_from_the_raw_parts(swept, cli):
    code, out, err = cli("tolerance", swept, "--axis", "bs_error", "--drop", "0.02", "--format", "json")
    assert code == 0 and err == ""
    rows = {r["mode"]: r for r in json.loads(out)["rows"]}
    raw = pq.ParquetDataset(sorted((swept / "parts").glob("part-*.parquet"))).read().to_pandas()
    raw = raw[raw["status"] == "ok"]
    assert len(raw) == 3 * 4 * 2
    for mode in ("digital", "insitu"):
        means = raw[raw["mode"] == mode].groupby("bs_error")["test_accuracy"].mean().sort_index()
        expected = _crossing_by_hand(means.index.to_numpy(), means.to_numpy(), 0.02)
        got = rows[mode]
        assert got["baseline"] == pytest.approx(means.iloc[0])
        assert got["n_seeds"] == 4
        if expected is None:
            assert got["reached"] is False and got["tolerance"] is None
        else:
            assert got["reached"] is True and got["tolerance"] == pytest.approx(expected)
            assert got["ci_low"] <= got["tolerance"]
    assert np.isfinite(rows["digital"]["baseline"])


def test_where_filters_and_a_bad_expression_is_one_line(swept, cli):
    code, out, _ = cli("summary", swept, "--where", "bs_error <= 0.15", "--format", "csv")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("bs_error,mode,n,mean,") and len(lines) == 1 + 2 * 2
    code, out, err = cli("summary", swept, "--where", "bs_error <=")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("insitu: error: bad --where expression 'bs_error <=':")
    code, _, err = cli("figures", swept, "--where", "nope > 1", "--out", swept.parent / "never")
    assert code == 2 and err.count("\n") == 1 and not (swept.parent / "never").exists()


# status naming a stale output is covered fast by test_export_status.py's export test, and
# stale figures and report by tests/analysis/test_analysis_pooling.py
@pytest.mark.slow
def test_status_reports_outputs_made_from_an_older_store(swept, cli, write_spec, tmp_path):
    swept = shutil.copytree(swept, tmp_path / "copy")  # this test extends its store
    code, _, err = cli("figures", swept, "--out", swept.parent / "figs")
    assert code == 0 and err == ""
    code, out, _ = cli("status", swept)
    assert code == 0 and "stale output" not in out
    extended = write_spec(SPEC.replace("seeds = 4", "seeds = 5"), "tol.toml")
    assert cli("run", extended, "--out", swept, "--backend", "serial")[0] == 0
    code, out, _ = cli("status", swept)
    stale = [line for line in out.splitlines() if line.startswith("stale output:")]
    assert code == 0 and len(stale) == 1
    assert "made from 12 trials" in stale[0] and "the store now has 15 trials" in stale[0]
    code, _, err = cli("report", swept, "--out", swept.parent / "r.html")
    assert code == 0 and err.startswith("insitu: note: figures ") and "out of date" in err
