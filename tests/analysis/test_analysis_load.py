"""Reading a store: unified schema, newest launch per trial, errors kept apart, typed params."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.load import load, load_errors, load_spec, part_files, read_store, varying_axes
from insitu.analysis.summary import summarize


def _one(store, **over):
    """Parameters of one grid point of ``store`` with ``over`` applied."""
    return {**store.fixed, **{a: v[0] for a, v in store.grid.items()}, **over}


def test_loads_every_row_with_declared_dtypes(classify_store):
    frame = load(classify_store.root)
    assert len(frame) == 3 * 2 * 3 * 3  # bs_error x depth x seeds x modes
    assert frame["depth"].dtype == np.int64
    assert frame["bs_error"].dtype == np.float64
    assert pd.api.types.is_string_dtype(frame["task"])
    assert frame["seed"].dtype == np.int64
    assert set(frame["mode"]) == {"digital", "insitu", "analog"}
    assert frame.attrs["n_error_rows"] == 0 and frame.attrs["n_superseded"] == 0
    # list columns survive as sequences of the stored length
    assert len(frame["curve_test_accuracy"].iloc[0]) == len(frame["epoch"].iloc[0]) == 6


def test_spec_and_varying_axes(make_store):
    store = make_store("v", grid={"bs_error": [0.0, 0.1], "depth": [4], "task": ["moons", "ring"]},
                       seeds=(0, 1))
    store.write_part([store.row(p, s, "digital", {"test_accuracy": 0.9})
                      for p, s in store.points()], "L1")
    spec = load_spec(store.root)
    assert spec["grid"]["depth"] == [4] and spec["experiment"] == "classify"
    assert varying_axes(spec) == ["bs_error", "task"]
    assert varying_axes(spec, include_seed=True) == ["bs_error", "task", "seed"]
    rows = load(store.root)
    assert varying_axes(spec, rows[rows["task"] == "moons"]) == ["bs_error"]
    assert read_store(store.root).varying_axes(include_seed=True) == ["bs_error", "task", "seed"]


OLD, NEW = "20240101T090000000000-aaaaaa", "20240102T090000000000-0b0b0b"


def test_newest_launch_is_the_greatest_launch_id(make_store):
    store = make_store("dup", grid={"bs_error": [0.0, 0.1]}, seeds=(0,))
    p0, p1 = (_one(store, bs_error=0.0), _one(store, bs_error=0.1))
    old = [store.row(p, 0, m, {"test_accuracy": 0.5}) for p in (p0, p1) for m in ("digital", "insitu")]
    new = [store.row(p0, 0, m, {"test_accuracy": 0.9}) for m in ("digital", "insitu")]
    now = time.time()
    # the newer launch is written first, listed first in launches.jsonl and has the older
    # part mtime: only its id (which starts with its start time) says it is newer
    store.write_part(new, NEW, 0, mtime=now - 1000)
    store.write_part(old, OLD, 0, mtime=now)
    loaded = read_store(store.root)
    assert loaded.launches == [NEW, OLD]  # launches.jsonl order, as recorded
    assert loaded.n_superseded == 2
    assert len(loaded.rows) == 4
    at0 = loaded.rows[loaded.rows["bs_error"] == 0.0]
    assert set(at0["launch_id"]) == {NEW} and (at0["test_accuracy"] == 0.9).all()
    at1 = loaded.rows[loaded.rows["bs_error"] == 0.1]
    assert set(at1["launch_id"]) == {OLD}
    assert [f.name for f in part_files(store.root)] == [f"part-{OLD}-000000.parquet",
                                                        f"part-{NEW}-000000.parquet"]


def test_trial_in_two_parts_of_one_launch_counts_once(make_store):
    store = make_store("compact", seeds=(0,))
    p = _one(store)
    store.write_part([store.row(p, 0, m, {"test_accuracy": 0.1}) for m in ("digital", "insitu")], OLD, 3)
    store.write_part([store.row(p, 0, m, {"test_accuracy": 0.2}) for m in ("digital", "insitu")], OLD, 12)
    loaded = read_store(store.root)
    assert loaded.rows["test_accuracy"].tolist() == [0.2, 0.2]  # chunk 12 is the later part
    assert loaded.n_superseded == 2


def test_error_rows_separated_and_superseded_by_a_retry(make_store):
    store = make_store("err", grid={"bs_error": [0.0, 0.1, 0.2]}, seeds=(0,))
    ok = _one(store, bs_error=0.0)
    retried = _one(store, bs_error=0.1)
    failed = _one(store, bs_error=0.2)
    store.write_part([store.row(ok, 0, m, {"test_accuracy": 0.9}) for m in ("digital", "insitu")]
                     + [store.row(retried, 0, None, status="error", error="RuntimeError: first try")]
                     + [store.row(failed, 0, None, status="error", error="ValueError: bad mesh")],
                     "L1", 0)
    store.write_part([store.row(retried, 0, m, {"test_accuracy": 0.8}) for m in ("digital", "insitu")],
                     "L2", 0)
    loaded = read_store(store.root)
    assert len(loaded.rows) == 4 and (loaded.rows["status"] == "ok").all()
    assert loaded.n_trials_ok == 2 and loaded.n_trials_error == 1
    assert loaded.errors["error"].tolist() == ["ValueError: bad mesh"]
    assert loaded.errors["bs_error"].tolist() == [0.2]  # parameters kept on error rows
    assert loaded.n_superseded == 1  # the first try of the retried trial
    assert loaded.error_summary().to_dict("records") == [
        {"error": "ValueError: bad mesh", "trials": 1, "rows": 1}]
    with_errors = load(store.root, include_errors=True)
    assert len(with_errors) == 5 and (with_errors["status"] == "error").sum() == 1
    assert load(store.root).attrs["n_error_trials"] == 1
    assert load_errors(store.root)["error"].tolist() == ["ValueError: bad mesh"]


def test_filter_never_lets_a_superseded_row_through(make_store):
    store = make_store("flt", seeds=(0,))
    p = _one(store)
    store.write_part([store.row(p, 0, "digital", {"test_accuracy": 0.9})], "L1", 0)
    store.write_part([store.row(p, 0, "digital", status="error", error="boom")], "L2", 0)
    frame = load(store.root, filters=[("status", "==", "ok")], include_errors=True)
    assert len(frame) == 0  # the newer launch failed; the older success is superseded


def test_column_added_in_a_later_part_is_kept(make_store):
    params = {"n_ports": "int", "bs_error": "float", "tap_noise": "float"}
    store = make_store("grow", grid={"bs_error": [0.0, 0.1]}, seeds=(0,), params=params,
                       fixed={"n_ports": 4})
    first = {"n_ports": 4, "bs_error": 0.0}  # tap_noise did not exist yet
    store.write_part([store.row(first, 0, "digital", {"test_accuracy": 0.9})], "L1", 0)
    later = {"n_ports": 4, "bs_error": 0.1, "tap_noise": 0.01}
    store.write_part([store.row(later, 0, "digital", {"test_accuracy": 0.8, "new_metric": 3.0})],
                     "L1", 1)
    frame = load(store.root).sort_values("bs_error")
    assert "new_metric" in frame.columns and "tap_noise" in frame.columns
    assert frame["new_metric"].isna().tolist() == [True, False]
    assert frame["tap_noise"].iloc[1] == 0.01 and np.isnan(frame["tap_noise"].iloc[0])
    assert frame["n_ports"].dtype == np.int64


def test_int_parameter_missing_from_old_parts_becomes_nullable(make_store):
    params = {"bs_error": "float", "depth": "int"}
    store = make_store("nullable", seeds=(0, 1), params=params, fixed={"bs_error": 0.0})
    store.write_part([store.row({"bs_error": 0.0}, 0, "digital", {"test_accuracy": 0.9})], "L1", 0)
    store.write_part([store.row({"bs_error": 0.0, "depth": 3}, 1, "digital", {"test_accuracy": 0.9})],
                     "L1", 1)
    frame = load(store.root)
    assert str(frame["depth"].dtype) == "Int64"
    assert frame["depth"].isna().sum() == 1


def test_columns_and_filters_push_down(classify_store):
    root = classify_store.root
    frame = load(root, columns=["test_accuracy", "bs_error"], filters=[("bs_error", ">", 0.06)])
    assert set(frame["bs_error"]) == {0.1}
    assert "curve_test_accuracy" not in frame.columns and "depth" not in frame.columns
    assert {"key", "seed", "mode", "test_accuracy"} <= set(frame.columns)
    by_dict = load(root, filters={"depth": 2, "mode": ["digital", "insitu"]})
    assert set(by_dict["depth"]) == {2} and set(by_dict["mode"]) == {"digital", "insitu"}
    by_expr = load(root, filters=ds.field("bs_error") == 0.05)
    assert len(by_expr) == 2 * 3 * 3


@pytest.mark.parametrize("kwargs, message", [
    ({"columns": ["nope"]}, "unknown column 'nope'"),
    ({"filters": [("nope", "==", 1)]}, "unknown filter column 'nope'"),
    ({"filters": {"nope": 1}}, "unknown filter column 'nope'"),
])
def test_unknown_names_are_one_clear_line(classify_store, kwargs, message):
    with pytest.raises(AnalysisInputError, match=message) as info:
        load(classify_store.root, **kwargs)
    assert "\n" not in str(info.value)


def test_not_a_store_and_empty_store(tmp_path, make_store):
    with pytest.raises(AnalysisInputError, match="no such store directory"):
        load(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(AnalysisInputError, match=r"not an insitu store \(no store.json\)"):
        load(tmp_path / "plain")
    store = make_store("empty")
    loaded = read_store(store.root)
    assert loaded.is_empty and loaded.n_parts == 0
    assert "bs_error" in loaded.rows.columns


def test_temporary_parts_are_ignored(classify_store):
    parts = classify_store.root / "parts"
    (parts / ".part-L9-000000.tmp").write_bytes(b"half written")
    assert all(p.suffix == ".parquet" for p in part_files(classify_store.root))
    assert len(load(classify_store.root)) == 54


def test_unreadable_part_names_itself(classify_store):
    (classify_store.root / "parts" / "part-L9-000000.parquet").write_bytes(b"not parquet")
    with pytest.raises(AnalysisInputError, match="part-L9-000000.parquet: unreadable part"):
        load(classify_store.root)


def test_a_parameter_named_launch_is_kept_and_never_taken_for_the_launch_id(make_store):
    store = make_store("launch-param", grid={"launch": ["per_example", "cotangent"]}, seeds=(0, 1))
    store.write_part([store.row(p, s, "insitu", {"test_accuracy": 0.9}) for p, s in store.points()], "L1")
    df = load(store.root)
    assert len(df) == 4 and df.attrs["n_parts"] == 1
    assert sorted(df["launch"].unique()) == ["cotangent", "per_example"]
    assert set(df["launch_id"]) == {"L1"}


def _added_param_store(make_store, name, later=True):
    # store.json lists noise_draws as added later; the first part predates its column
    params = {"bs_error": "float", "noise_draws": "str"}
    store = make_store(name, grid={"noise_draws": ["fresh", "frozen"]}, seeds=(0,), params=params,
                       fixed={"bs_error": 0.0}, defaults={"bs_error": 0.0, "noise_draws": "fresh"},
                       omit_at_default=["noise_draws"])
    store.write_part([store.row({"bs_error": 0.0}, 0, "digital", {"test_accuracy": 0.9})], "L1", 0)
    if later:
        store.write_part([store.row({"bs_error": 0.0, "noise_draws": "frozen"}, 0, "digital",
                                    {"test_accuracy": 0.7})], "L2", 0)
    return store, list(params)


def test_rows_written_before_a_parameter_existed_read_as_its_default(make_store):
    store, params = _added_param_store(make_store, "added")
    frame = load(store.root).sort_values("test_accuracy")
    assert frame["noise_draws"].tolist() == ["frozen", "fresh"]
    means = summarize(frame, params=params).set_index("noise_draws")["mean"]
    assert means.to_dict() == {"fresh": 0.9, "frozen": 0.7}  # grouped, not pooled
    # no part has the column yet: it is created, at the default
    only_old, _ = _added_param_store(make_store, "only-old", later=False)
    assert load(only_old.root)["noise_draws"].tolist() == ["fresh"]


@pytest.mark.parametrize("filters", [{"noise_draws": "fresh"}, {"noise_draws": ["fresh"]},
                                     [("noise_draws", "==", "fresh")], [[("noise_draws", "in", ["fresh"])]]])
def test_a_filter_on_an_added_parameter_keeps_the_rows_that_read_as_its_default(make_store, filters):
    store, _ = _added_param_store(make_store, "filtered")
    assert load(store.root, filters=filters)["test_accuracy"].tolist() == [0.9]


def test_a_filter_on_an_added_parameter_drops_the_default_rows_when_it_excludes_the_default(make_store):
    store, _ = _added_param_store(make_store, "excluded")
    assert load(store.root, filters={"noise_draws": "frozen"})["test_accuracy"].tolist() == [0.7]
    assert load(store.root, filters=[("noise_draws", "!=", "fresh")])["test_accuracy"].tolist() == [0.7]


def test_a_filter_that_matches_nothing_gives_an_empty_frame(make_store):
    store, _ = _added_param_store(make_store, "nothing")
    assert len(load(store.root, filters={"bs_error": 0.5})) == 0
