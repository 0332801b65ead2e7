"""Writing parts: one Parquet file per chunk of a launch, with an explicit Arrow schema,
written atomically and indexed in the manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from insitu.sweeps.store.fsutil import write_bytes_atomic
from insitu.sweeps.store.manifest import manifest_entry
from insitu.sweeps.store.paths import TEMP_SUFFIX
from insitu.sweeps.store.schema import FIXED_COLUMNS, PARAM_ARROW_TYPES, infer_type, merge_types

if TYPE_CHECKING:
    from insitu.sweeps.store.store import Store


class PartWriter:
    """Turns chunk results into parts of one launch, with an explicit Arrow schema.

    Parameter columns come from the declared kinds (``store.json``'s ``params``: name ->
    ``float``, ``int``, ``str`` or ``bool``); metric columns are inferred
    from the rows (float -> float64, int -> int64, bool -> bool, str -> string, lists ->
    list<int64> or list<float64>) and stay consistent with the parts already written: an
    int metric in a float64 column is written as float64. A value that fits no consistent
    type turns its trial into an error row naming the metric.
    """

    def __init__(self, store: Store, launch_id: str, param_kinds: dict[str, str],
                 known_types: dict[str, pa.DataType] | None = None):
        self.store = store
        self.launch_id = launch_id
        self.base_fields = [pa.field(n, t) for n, t in FIXED_COLUMNS] + [
            pa.field(name, PARAM_ARROW_TYPES[kind]) for name, kind in param_kinds.items()]
        self.base_names = {f.name for f in self.base_fields}
        self.metric_types: dict[str, pa.DataType] = {
            name: t for name, t in (known_types or {}).items()
            if name not in self.base_names and not name.startswith("_")}
        self.error_keys: set[str] = set()  # trials written as error rows, as written

    def write(self, rows: list[dict], chunk_index: int) -> Path:
        """Write one part atomically; returns its path."""
        rows = self._fit([{**row, "launch_id": self.launch_id} for row in rows])
        fields = self.base_fields + [pa.field(n, t) for n, t in self.metric_types.items()]
        table = pa.Table.from_pylist(rows, schema=pa.schema(fields))
        name = self.store.paths.part_name(self.launch_id, chunk_index)
        path, digest = write_table_atomic(table, self.store.parts_dir, name)
        self.error_keys.update(r["key"] for r in rows if r["status"] == "error")
        # Only after the part is in place: an entry never names a part that is not whole.
        self.store.append_manifest([manifest_entry(path, table, digest)])
        return path

    def _fit(self, rows: list[dict]) -> list[dict]:
        """Extend the metric types with ``rows``; trials whose values do not fit, errors."""
        failed: dict[str, str] = {}
        for row in rows:
            for name, value in row.items():
                if name in self.base_names:
                    continue
                try:
                    inferred = infer_type(value)
                except TypeError as exc:
                    failed.setdefault(row["key"], f"metric {name!r}: {exc}")
                    continue
                if inferred is None:
                    continue
                merged = merge_types(self.metric_types.get(name), inferred)
                if merged is None:
                    failed.setdefault(row["key"], f"metric {name!r}: a {inferred} value does "
                                                  f"not fit column type {self.metric_types[name]}")
                else:
                    self.metric_types[name] = merged
        if not failed:
            return rows
        fitted, seen = [], set()
        for row in rows:
            key = row["key"]
            if key in failed:
                if key in seen:
                    continue
                seen.add(key)
                row = {name: row[name] for name in row if name in self.base_names}
                row.update(status="error", error=failed[key], mode=None)
            fitted.append(row)
        return fitted


def write_table_atomic(table: pa.Table, directory: Path, name: str) -> tuple[Path, str]:
    """Write ``table`` as ``directory/name`` via a hidden temp file, fsync and rename.

    The part is written with Parquet page checksums (CRC32 of every data page), which
    readers verify; returns its path and the sha256 of its bytes (for the manifest).
    """
    final = directory / name
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd", write_page_checksum=True)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    write_bytes_atomic(final, data, directory / f".{name}{TEMP_SUFFIX}")
    return final, digest
