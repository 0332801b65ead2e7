"""The store contract (docs/store.md) across releases: the documented columns are the
store's, every shipped spec keeps its trial keys, a store written before the restructure
reads to the same frame and summary, and the store commands need no experiment code."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from insitu.analysis.load import read_store
from insitu.cli import main
from insitu.sweeps.app.catalog import shipped_specs
from insitu.sweeps.engine.registry import RESERVED_COLUMNS, get_experiment
from insitu.sweeps.engine.spec import load_spec
from insitu.sweeps.engine.trials import enumerate_trials
from insitu.sweeps.store.keys import stored_trials
from insitu.sweeps.store.schema import FIXED_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
DOC_TYPES = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}


def _documented_columns() -> list[tuple[str, pa.DataType]]:
    """The fixed columns of docs/store.md's "Rows" table, in order, with their types."""
    text = (ROOT / "docs" / "store.md").read_text()
    section = text[text.index("## Rows"):]
    columns = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2 or not cells[0].startswith("`"):
            if columns and not line.startswith("|"):
                break
            continue
        type_name = cells[1].split()[0]
        for name in re.findall(r"`([^`]+)`", cells[0]):
            columns.append((name, DOC_TYPES[type_name]))
    return columns


def test_the_documented_columns_are_the_stores():
    assert _documented_columns() == list(FIXED_COLUMNS)
    assert set(RESERVED_COLUMNS) == {name for name, _ in FIXED_COLUMNS}


@pytest.mark.parametrize("name", sorted(json.loads((FIXTURES / "golden_keys.json").read_text())))
def test_every_shipped_spec_keeps_its_trial_keys(name):
    """Keys and stream keys recorded in tests/fixtures/golden_keys.json: computed before the
    restructure of the packages (which left every key as it was), then again when the
    experiments moved to version 5 (shared chips), the last change that meant to change
    them. A key that changes without a version bump fails here."""
    golden = json.loads((FIXTURES / "golden_keys.json").read_text())[name]
    spec = load_spec(shipped_specs()[name])
    trials = enumerate_trials(spec, get_experiment(spec.experiment))
    keys = [t.key for t in trials]
    assert (len(keys), keys[0], keys[-1]) == (golden["trials"], golden["first"], golden["last"])
    assert hashlib.sha256("\n".join(keys).encode()).hexdigest() == golden["sha256"]
    streams = "\n".join(t.stream_key for t in trials)
    assert hashlib.sha256(streams.encode()).hexdigest() == golden["streams_sha256"]


def test_a_store_written_before_the_restructure_reads_to_the_same_frame():
    """tests/fixtures/legacy-store: a classify store (two launches, compacted) written by
    the release before; its frame's shape, columns, dtypes and values are those it read
    to then (a sha256 of the frame's JSON)."""
    store = read_store(FIXTURES / "legacy-store")
    expected = json.loads((FIXTURES / "legacy-expected.json").read_text())
    frame = store.rows
    assert list(frame.shape) == expected["shape"] and list(frame.columns) == expected["columns"]
    assert [str(d) for d in frame.dtypes] == expected["dtypes"]
    assert frame["key"].tolist() == expected["keys"]
    assert frame["test_accuracy"].tolist() == expected["test_accuracy"]
    text = frame.to_json(orient="split", double_precision=15)
    assert hashlib.sha256(text.encode()).hexdigest() == expected["sha256"]
    assert (store.n_superseded, store.n_foreign, len(store.errors)) == (
        expected["n_superseded"], expected["n_foreign"], expected["errors"])
    assert not store.params.described  # it predates the description: the fallback names it
    assert store.params.label("bs_error") == "splitting error σ (rad)"


def test_the_old_stores_summary_keeps_its_numbers(capsys):
    """The legacy store's summary, as the release before printed it
    (tests/fixtures/legacy-summary.txt): the same means, spreads, t intervals and paired
    gaps. Only the drop against the error-free cell changed: the old store's cells ran on
    chips of their own (no stream keys), so it is now Welch's interval, where it used to
    pair replicate numbers."""
    assert main(["summary", str(FIXTURES / "legacy-store")]) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = (FIXTURES / "legacy-summary.txt").read_text().splitlines()
    assert printed[1] == expected[1]  # counts (the first line names the store's path)
    table = [line.split()[:9] for line in printed[4:9]]
    assert table == [line.split()[:9] for line in expected[4:9]]  # bs_error .. ci_half_width
    assert printed[-4:] == expected[-4:]  # the paired gaps
    assert "unpaired (Welch): each cell ran on chips of its own" in printed[3]
    assert [line.split()[-1] for line in printed[5:9]] == ["Welch"] * 4


def _other_version(tmp_path) -> Path:
    """The legacy store as if written by an experiment version this code does not run: its
    version, in spec.json, store.json and every row, and its rows' keys (which hash it)."""
    store = tmp_path / "old-version"
    shutil.copytree(FIXTURES / "legacy-store", store)
    for name in ("spec.json", "store.json"):
        data = json.loads((store / name).read_text())
        data["experiment_version"] = "0-retired"
        (store / name).write_text(json.dumps(data))
    meta = json.loads((store / "store.json").read_text())
    trials = {(t.seed, t.params["bs_error"]): t for t in stored_trials(
        json.loads((store / "spec.json").read_text()), meta)}
    (part,) = (store / "parts").glob("part-*.parquet")
    table = pq.read_table(part)
    keys = [trials[(seed, bs)].key for seed, bs in zip(table["seed"].to_pylist(),
                                                        table["bs_error"].to_pylist())]
    table = table.set_column(table.column_names.index("key"), "key", pa.array(keys))
    table = table.set_column(table.column_names.index("experiment_version"), "experiment_version",
                             pa.array(["0-retired"] * table.num_rows))
    pq.write_table(table, part, write_page_checksum=True)
    (store / "manifest.jsonl").unlink()
    return store


def test_store_commands_work_on_a_store_of_another_experiment_version(tmp_path, capsys):
    """status, verify and compact judge a store by its own spec.json and store.json, never
    by the experiment code installed now: a store of a retired version is theirs to read."""
    store = _other_version(tmp_path)
    assert main(["status", str(store)]) == 0
    out = capsys.readouterr().out
    assert "experiment classify v0-retired" in out and "6 total, 6 done, 0 error, 0 pending" in out
    assert main(["verify", str(store)]) == 0
    assert "1 parts readable, 0 quarantined" in capsys.readouterr().out
    assert main(["summary", str(store)]) == 0
    assert "trials ok: 6" in capsys.readouterr().out
    # a launch does need the experiment: refused in one line, nothing written
    before = sorted(p.name for p in (store / "parts").iterdir())
    assert main(["retry-failed", str(store), "--backend", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "0-retired" in err
    assert sorted(p.name for p in (store / "parts").iterdir()) == before
