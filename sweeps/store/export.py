"""``insitu export``: the resolved rows of a store as one CSV or Parquet file.

The rows are those :func:`insitu.sweeps.store.read_rows` returns (newest launch per key,
trials of the stored spec only, parameters added later filled with their defaults) that
finished (``status == "ok"``), with every column in its stored Arrow type, sorted by the
grid axes (in the spec's order), the seed and the mode (in ``store.json``'s order). Parquet
keeps the types as they are; CSV writes list-valued columns (curves) as JSON text, with
NaN and infinities inside a list written as ``null`` (JSON has neither), scalar NaN as
``nan`` and a null as an empty field. Only pyarrow and the standard library: no pandas
coercion of integer or boolean columns that hold nulls.

The file is written to a temporary name and renamed; by default into the store's
directory (``export.csv``, ``export.parquet``), an analysis output recorded for ``insitu
status``'s stale-output lines (:mod:`insitu.sweeps.store.outputs`).
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from insitu.sweeps.store.errors import StoreError
from insitu.sweeps.store.fsutil import write_bytes_atomic
from insitu.sweeps.store.outputs import record_output, store_state
from insitu.sweeps.store.reading import Rows, read_rows, store_paths

FORMATS = ("csv", "parquet")
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def export_format(fmt: str | None, out: str | None) -> str:
    """The format asked for, else the one ``out``'s suffix names, else CSV; ``StoreError``
    when ``--format`` and the suffix of ``--out`` disagree."""
    named = SUFFIXES.get(Path(out).suffix.lower()) if out and out != "-" else None
    if fmt is None:
        return named or "csv"
    if fmt not in FORMATS:
        raise StoreError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if named is not None and named != fmt:
        raise StoreError(f"--out {out}: a {Path(out).suffix} name for {fmt} output; "
                         f"name it .{fmt}, or drop --format")
    return fmt


def exported_rows(store_dir: str | Path) -> tuple[pa.Table, Rows]:
    """The rows ``insitu export`` writes (module docstring), and the store as read."""
    rows = read_rows(store_dir)
    table = rows.table.filter(pc.fill_null(pc.equal(rows.table["status"], "ok"), False))
    return sort_rows(table, rows.spec, rows.meta), rows


def sort_rows(table: pa.Table, spec: dict, meta: dict) -> pa.Table:
    """``table`` sorted by the spec's grid axes, the seed and the mode (store.json order)."""
    if table.num_rows == 0:
        return table
    keys = [a for a in (spec.get("grid") or {}) if a in table.column_names]
    keys += [c for c in ("seed",) if c in table.column_names]
    modes = [m.get("name") for m in meta.get("modes") or [] if isinstance(m, dict)]
    rank = pc.index_in(table["mode"], value_set=pa.array(modes, pa.string())) if modes \
        else pa.nulls(table.num_rows, pa.int32())
    order = pa.table({**{k: table[k] for k in keys}, "_mode_rank": rank, "_mode": table["mode"],
                      "_key": table["key"]})
    indices = pc.sort_indices(order, sort_keys=[(k, "ascending") for k in order.column_names])
    return table.take(indices)


def csv_table(table: pa.Table) -> pa.Table:
    """``table`` with every list-valued column as JSON text (NaN and infinities: null)."""
    for index, field in enumerate(table.schema):
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            texts = [None if v is None else json.dumps(_finite(v), allow_nan=False)
                     for v in table.column(index).to_pylist()]
            table = table.set_column(index, field.name, pa.array(texts, pa.string()))
    return table


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def export(store_dir: str | Path, fmt: str | None = None, out: str | None = None) -> str:
    """Write the store's resolved rows (module docstring); returns the line to print
    (nothing for CSV on standard output, ``out == "-"``). ``StoreError`` (one line, nothing
    written) for a path that is not a store, an unusable output or a Parquet ``-``."""
    paths = store_paths(store_dir)
    fmt = export_format(fmt, out)
    if out == "-" and fmt != "csv":
        raise StoreError("--out -: Parquet is binary; name a file to write it to")
    target = None if out == "-" else Path(out) if out else paths.root / f"export.{fmt}"
    if target is not None:
        _check_target(target, defaulted=out is None)
    table, rows = exported_rows(paths.root)
    if target is None:
        buffer = io.BytesIO()
        pa_csv.write_csv(csv_table(table), buffer)
        sys.stdout.write(buffer.getvalue().decode("utf-8"))
        return ""
    _write_atomic(table, fmt, target)
    line = (f"wrote {target} ({table.num_rows} rows, {table.num_columns} columns: the finished "
            f"rows of the newest launch per trial, {rows.n_superseded} superseded and "
            f"{rows.n_foreign} foreign rows left out)")
    problem = record_output(paths.root, "export", target, store_state(rows), format=fmt)
    return line + (f"\n{problem}" if problem else "")


def _check_target(path: Path, defaulted: bool) -> None:
    if path.is_dir():
        raise StoreError(f"--out {path}: is a directory; name the file to write")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise StoreError(f"--out {path}: cannot create it under {parent} (not a directory)")
    if not os.access(parent, os.W_OK | os.X_OK):
        hint = " (the store is read-only: name another file with --out)" if defaulted else ""
        raise StoreError(f"{path}: cannot write there: {parent} is not writable{hint}")


def _write_atomic(table: pa.Table, fmt: str, path: Path) -> None:
    """The table as Parquet or CSV, rendered in memory and written whole or not at all
    (:func:`insitu.sweeps.store.fsutil.write_bytes_atomic`: temporary name, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sink = pa.BufferOutputStream()
    if fmt == "parquet":
        pq.write_table(table, sink)
    else:
        pa_csv.write_csv(csv_table(table), sink)
    write_bytes_atomic(path, sink.getvalue().to_pybytes())
