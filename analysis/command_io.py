"""What the analysis commands (:mod:`insitu.analysis.commands`) accept and how they write.

The store with its ``--where`` filter, the checks of a metric, axes, output format and
output paths (each failure one :class:`insitu.analysis.exceptions.AnalysisInputError` line), and
the writers of text and JSON records.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.load import LoadedStore, read_store
from insitu.analysis.summary import default_metric, metric_columns
from insitu.sweeps.store.fsutil import is_disk_full, read_only, write_bytes_atomic

__all__ = ["FORMATS", "apply_where", "check_axes", "check_format", "check_metric", "json_value",
           "nonfinite_shown", "open_store", "query_rows", "read_results", "records", "state_of",
           "usable_dir", "usable_file", "write_output", "write_text"]

FORMATS = ("text", "csv", "md", "json")


def read_results(store_dir: str) -> LoadedStore:
    """The store, refused in one line when it holds no row that counts."""
    store = read_store(store_dir)
    if store.is_empty:
        why = (f"its {store.n_foreign} stored rows are not trials of its spec; "
               f"`insitu verify {store.path}` quarantines their parts") if store.n_foreign \
            else "no rows in parts/"
        raise AnalysisInputError(f"store {store.path} has no results yet ({why})")
    return store


def state_of(store: LoadedStore) -> dict:
    """The state an output is made from (:func:`insitu.sweeps.store.outputs.store_state`):
    the store's trials (finished and failed) and its last launch, as read unfiltered."""
    return {"trials": store.n_trials_ok + store.n_trials_error,
            "last_launch": store.launches[-1] if store.launches else None}


def open_store(store_dir: str, where: str | None = None) -> LoadedStore:
    return apply_where(read_results(store_dir), where)


def apply_where(store: LoadedStore, where: str | None) -> LoadedStore:
    """The store with its rows (and error rows) filtered by a pandas query expression."""
    if where is None or not str(where).strip():
        return store
    rows = query_rows(store.rows, where, store)
    if not len(rows):
        raise AnalysisInputError(f"--where {where!r} selects no successful rows")
    try:
        errors = store.errors.query(where) if len(store.errors) else store.errors
    except Exception:  # noqa: BLE001 - error rows lack metric columns; keep them all
        errors = store.errors
    return dataclasses.replace(store, rows=rows.reset_index(drop=True),
                               errors=errors.reset_index(drop=True))


def query_rows(frame: pd.DataFrame, where: str, store: LoadedStore) -> pd.DataFrame:
    if not len(frame):
        return frame
    try:
        out = frame.query(where, local_dict={}, global_dict={})
    except Exception as exc:  # noqa: BLE001 - any failure of the expression is bad input
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise AnalysisInputError(f"bad --where expression {where!r}: {detail}") from None
    if not isinstance(out, pd.DataFrame):
        raise AnalysisInputError(f"bad --where expression {where!r}: it does not select rows")
    return out


def check_metric(store: LoadedStore, metric: str | None) -> str:
    if metric is None:
        return default_metric(store.rows, store.params, store.meta.get("experiment"))
    known = metric_columns(store.rows, store.params)
    if metric not in known:
        raise AnalysisInputError(f"unknown metric {metric!r}; this store's metrics are: {', '.join(known)}")
    return metric


def check_axes(store: LoadedStore, names: Sequence[str], what: str = "axis") -> list[str]:
    known = [*store.params, "seed", "mode"]
    for name in names:
        if name not in known or name not in store.rows.columns:
            raise AnalysisInputError(
                f"unknown {what} {name!r}; this store's axes are: {', '.join(store.params)}"
            )
    return [b for b in dict.fromkeys(names) if b != "mode"]


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise AnalysisInputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def usable_dir(path: pathlib.Path) -> None:
    """Refuse, in one line, a directory outputs cannot be written to: a file, under a file,
    or (nearest existing ancestor) not writable or on a read-only file system."""
    if path.exists() and not path.is_dir():
        raise AnalysisInputError(f"output directory is a file: {path}")
    parent = next((p for p in [path, *path.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise AnalysisInputError(f"cannot create output directory under a file: {parent}")
    if parent is not None and (read_only(parent) or not os.access(parent, os.W_OK | os.X_OK)):
        why = "is on a read-only file system" if read_only(parent) else "is not writable"
        raise AnalysisInputError(f"cannot write to {path}: {parent} {why}; "
                                 "name another place with --out")


def usable_file(path: pathlib.Path) -> None:
    if path.is_dir():
        raise AnalysisInputError(f"output file is a directory: {path}")
    usable_dir(path.parent)


def write_text(out: str | None, text: str) -> str:
    """``text`` itself, or (with ``out``) write it there and return a line saying so."""
    if out is None:
        return text
    path = pathlib.Path(out)
    write_output(path, (text if text.endswith("\n") else text + "\n").encode("utf-8"))
    return f"wrote {path}"


def write_output(path: pathlib.Path, data: bytes) -> None:
    """Write an output file whole or not at all (temporary name, fsync, rename), parents
    created. A path that cannot be written (permissions, a read-only file system) is one
    :class:`AnalysisInputError` line; a full disk propagates as ``OSError`` (the CLI's
    one-line disk-full message, exit status 1)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
    except OSError as exc:
        if is_disk_full(exc):
            raise
        raise AnalysisInputError(f"cannot write {path}: {exc.strerror or exc}") from None


def nonfinite_shown(table: pd.DataFrame) -> pd.DataFrame:
    """A table for text and Markdown: its ``n_nonfinite`` column kept only when a value was
    left out (CSV and JSON always keep it)."""
    if "n_nonfinite" in table.columns and not (table["n_nonfinite"].fillna(0) > 0).any():
        return table.drop(columns="n_nonfinite")
    return table


def json_value(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def records(frame: pd.DataFrame) -> list[dict]:
    return [{k: json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
