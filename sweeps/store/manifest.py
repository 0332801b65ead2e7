"""The part manifest (docs/store.md, "The manifest"): ``manifest.jsonl``, one line per part
with its size, sha256, keys and column types, so that a resume need not read every part.

An index, never the truth: ``Store.scan`` trusts an entry only for a part present with the
recorded size and sha256, and reads any other part.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pyarrow as pa

from insitu.sweeps.store.fsutil import file_sha256, write_text_atomic

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- manifest
def read_manifest(path: Path) -> dict[str, tuple[int, list, tuple[tuple[str, pa.DataType], ...],
                                      str | None]]:
    """Usable ``manifest.jsonl`` entries: part name -> (bytes, keys, column types, sha256).

    ``sha256`` is None for an entry written before the manifest carried one (``scan``
    then reads the part, and the launch indexes it again).

    A missing or unreadable manifest is empty; a line that does not parse (a torn
    append) or names a column type this version does not know is skipped, so its part
    is read instead. Parts are not checked here: ``scan`` uses an entry only for a part
    that is in ``parts/`` with the recorded size.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("%s: unreadable, reading every part instead: %s", path, exc)
        return {}
    entries: dict = {}
    schemas: dict[str, tuple | None] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
            name, size, keys, columns = (record["part"], record["bytes"], record["keys"],
                                         record["columns"])
            digest = record.get("sha256")
            if not (isinstance(name, str) and isinstance(size, int)
                    and isinstance(keys, list) and isinstance(columns, str)):
                continue
            if not isinstance(digest, str):
                digest = None
        except (ValueError, KeyError, TypeError):
            continue
        if columns not in schemas:
            schemas[columns] = decode_columns(columns)
        types = schemas[columns]
        if types is None:
            entries.pop(name, None)
            continue
        entries[name] = (size, keys, types, digest)
    return entries


def append_manifest(path: Path, entries: list[dict]) -> None:
    """Append entries (the caller holds the lock and has renamed the parts into place).

    Not fsynced: the manifest is an index of the parts, and a part missing from it,
    or with a torn line, is only read from disk by the next ``scan``.
    """
    if not entries:
        return
    text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
    with open(path, "a+b") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a torn last line: start a fresh one
                text = "\n" + text
        f.write(text.encode())
        f.flush()


def write_manifest(path: Path, entries: list[dict]) -> None:
    """Replace the manifest atomically (``verify`` and ``compact``, under the lock)."""
    write_text_atomic(path, "".join(
        json.dumps(e, separators=(",", ":")) + "\n" for e in entries))


def manifest_entry(path: Path, table: pa.Table, digest: str | None = None) -> dict:
    """The manifest entry of the part at ``path`` holding ``table``."""
    return new_entry(path.name, path.stat().st_size,
                           table.column("key").unique().to_pylist(), columns_text(table.schema),
                           digest or file_sha256(path))


def new_entry(name: str, size: int, keys: list, columns: str, digest: str) -> dict:
    return {"part": name, "bytes": size, "sha256": digest, "columns": columns, "keys": keys}


def columns_text(schema: pa.Schema) -> str:
    """The ``columns`` of a manifest entry: JSON text of [[name, type], ...]."""
    return json.dumps([[f.name, _type_name(f.type)] for f in schema], separators=(",", ":"))


_TYPE_NAMES = {"string": pa.string(), "int64": pa.int64(), "double": pa.float64(),
               "bool": pa.bool_(), "large_string": pa.large_string(),
               "int32": pa.int32(), "float": pa.float32(), "null": pa.null()}


def _type_name(t: pa.DataType) -> str:
    """A column type as the manifest records it; ``?`` for a type it cannot record."""
    if pa.types.is_list(t):
        return f"list<{_type_name(t.value_type)}>"
    name = str(t)
    return name if _TYPE_NAMES.get(name) == t else "?"


def _parse_type(name: str) -> pa.DataType | None:
    if name.startswith("list<") and name.endswith(">"):
        inner = _parse_type(name[5:-1])
        return None if inner is None else pa.list_(inner)
    return _TYPE_NAMES.get(name)


def decode_columns(columns: str) -> tuple[tuple[str, pa.DataType], ...] | None:
    """The column types of a manifest entry; None when any is unknown (read the part)."""
    try:
        decoded = []
        for name, type_name in json.loads(columns):
            t = _parse_type(type_name)
            if t is None or not isinstance(name, str):
                return None
            decoded.append((name, t))
        return tuple(decoded)
    except (ValueError, TypeError):
        return None

