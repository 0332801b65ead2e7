"""The result store (docs/store.md, format 1): one directory of Parquet parts per sweep.

Only the sweep driver writes, and every write is atomic: a part is written under a hidden
temporary name, fsynced, renamed into place and the directory fsynced, so a visible part is
always complete and a killed driver leaves nothing half-written. A ``.lock`` file keeps two
launches from writing one store. After each rename the driver appends the part's keys and
column types to ``manifest.jsonl``, an index that ``scan`` trusts only for parts present
with the recorded size and sha256; it reads any other part, so a missing or stale entry
costs time, never correctness. Parts carry Parquet page checksums, verified by every read
here; a part whose bytes changed, whose column types conflict with the other parts', or
whose rows are not trials of the store's spec is reported by name and quarantined by
``insitu verify`` (docs/store.md, "Integrity").

Several parts may hold rows of one key (``retry-failed`` reruns errors; a compaction
rewrites rows). The rows that count for a key are those of its newest launch, the one with
the greatest ``launch_id``: launch ids start with the UTC start time, so they sort by it.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import logging
import os
import secrets
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sweeps.errors import StoreError
from sweeps.experiments import Experiment
from sweeps.schema import (FIXED_COLUMNS, FORMAT, LOCK_NAME, MANIFEST_NAME, PARAM_ARROW_TYPES,
                           TEMP_SUFFIX, StorePaths, infer_type)
from sweeps.spec import Spec, spec_from_json

log = logging.getLogger(__name__)
HASH_BATCH = 64  # parts hashed per thread-pool task when a scan checks their sha256


def new_launch_id() -> str:
    """A launch id that sorts by start time: UTC timestamp (microseconds) and a random tag."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


def is_store(path: str | Path) -> bool:
    return StorePaths(path).store_json.is_file()


@dataclass
class Scan:
    """What a launch needs to know about the parts already written."""

    keys: set[str]
    column_types: dict[str, pa.DataType]
    parts: int
    # Manifest entries for the parts that had none and were read from disk instead (the
    # launch appends them once it holds the lock, so the next scan need not read them).
    unindexed: list[dict] = field(default_factory=list)


class Store:
    """A store directory. ``Store.open`` for an existing one, ``Store.create`` for a new one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.paths = StorePaths(self.path)
        self.parts_dir = self.paths.parts
        self.quarantine_dir = self.paths.quarantine

    # ----------------------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: str | Path) -> "Store":
        """An existing store; ``StoreError`` when ``path`` is missing or not a store."""
        path = Path(path)
        if not path.exists():
            raise StoreError(f"{path}: no such directory")
        if not is_store(path):
            raise StoreError(f"{path}: not an insitu store (no store.json)")
        store = cls(path)
        meta = store.metadata()
        if meta.get("format") != FORMAT:
            raise StoreError(f"{path}: unsupported store format {meta.get('format')!r} "
                             f"(this version reads format {FORMAT})")
        return store

    @classmethod
    def check_creatable(cls, path: str | Path) -> None:
        """Refuse a path that exists and is neither a store nor an empty directory."""
        path = Path(path)
        if path.exists() and not is_store(path):
            if not path.is_dir():
                raise StoreError(f"{path}: exists and is not a directory")
            if any(p.name != LOCK_NAME for p in path.iterdir()):  # a lock: a killed create
                raise StoreError(f"{path}: exists, is not empty and is not an insitu store")

    @classmethod
    def check_writable(cls, path: str | Path) -> None:
        """Refuse, in one line, a path where no store can be created or written.

        Checked before anything starts: every name fits the file system's NAME_MAX, the
        path is no dangling symbolic link, and the store directory (or, for a new store,
        its nearest existing ancestor) is a directory this process may write, on a file
        system mounted read-write.
        """
        path = Path(path)
        probe = path
        while not os.path.lexists(probe) and probe != probe.parent:
            probe = probe.parent
        name_max = _pathconf(probe if probe.is_dir() else probe.parent, "PC_NAME_MAX", 255)
        for name in path.parts:
            size = len(os.fsencode(name))
            if size > name_max:
                raise StoreError(f"{path}: the name {name[:24]}... is {size} bytes, longer than "
                                 f"this file system allows ({name_max})")
        if os.path.islink(probe) and not probe.exists():
            raise StoreError(f"{path}: {probe} is a dangling symbolic link "
                             f"(to {os.readlink(probe)})")
        if probe != path and not probe.is_dir():
            raise StoreError(f"{path}: cannot create it: {probe} is not a directory")
        if not probe.is_dir():
            return  # an existing file: check_creatable names it
        if _read_only(probe):
            raise StoreError(f"{path}: cannot write there: {probe} is on a read-only "
                             f"file system")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise StoreError(f"{path}: cannot write there: {probe} is not writable")

    @classmethod
    def create(cls, path: str | Path, spec: Spec, experiment: Experiment) -> "Store":
        """Lay out a new store for ``spec`` (the caller holds the lock: see ``lock``)."""
        store = cls(path)
        store.parts_dir.mkdir(parents=True, exist_ok=True)
        store.quarantine_dir.mkdir(exist_ok=True)
        meta = {
            "format": FORMAT,
            "experiment": experiment.name,
            "experiment_version": experiment.version,
            "params": {p.name: p.type for p in experiment.params},
            "defaults": experiment.defaults(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        _write_atomic(store.paths.store_json, json.dumps(meta, indent=2) + "\n")
        store.write_spec(spec)
        return store

    # ------------------------------------------------------------------------- metadata
    def metadata(self) -> dict:
        try:
            return json.loads(self.paths.store_json.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.paths.store_json}: unreadable: {exc}") from None

    def spec_json(self) -> dict:
        try:
            return json.loads(self.paths.spec_json.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.paths.spec_json}: unreadable: {exc}") from None

    def spec(self) -> Spec:
        """The stored spec, validated against the experiments registered now."""
        return spec_from_json(self.spec_json(), source=str(self.paths.spec_json))

    def write_spec(self, spec: Spec) -> None:
        _write_atomic(self.paths.spec_json, json.dumps(spec.to_json(), indent=2) + "\n")
        _write_atomic(self.paths.spec_toml, spec.to_toml())

    def launches(self) -> list[dict]:
        """Every launch record, oldest first (unparseable lines are skipped).

        A launch's closing line (``ended``, ``outcome``, ``stored``, ``errors``) is merged
        into its record; a launch without one was killed, or is still running.
        """
        path = self.paths.launches
        if not path.exists():
            return []
        records: list[dict] = []
        by_id: dict[str, dict] = {}
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if "ended" in record and "started" not in record:
                opened = by_id.get(record.get("launch_id"))
                if opened is not None:
                    opened.update(record)
                continue
            records.append(record)
            by_id[record.get("launch_id")] = record
        return records

    def append_launch(self, record: dict) -> None:
        with open(self.paths.launches, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def lock(self, launch_id: str) -> "StoreLock":
        return StoreLock(self.paths.lock, launch_id)

    # ------------------------------------------------------------------------------ parts
    def part_paths(self) -> list[Path]:
        """Visible parts in name order (launch id, then chunk number)."""
        if not self.parts_dir.is_dir():
            return []
        return sorted(p for p in self.parts_dir.iterdir()
                      if StorePaths.is_part_name(p.name))

    def temp_paths(self) -> list[Path]:
        """Temporary files of writes that did not finish: parts, and the root's JSON files."""
        found = []
        if self.parts_dir.is_dir():
            found += [p for p in self.parts_dir.iterdir()
                      if StorePaths.is_part_temp_name(p.name)]
        if self.path.is_dir():
            found += [p for p in self.path.iterdir()
                      if p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX) and p.is_file()]
        return found

    def scan(self) -> Scan:
        """Keys and column types of every part; ``StoreError`` naming every bad part.

        A part listed in ``manifest.jsonl`` with its current size and sha256 is taken from
        there; any other part (written before the manifest existed, or by a driver killed
        between renaming the part and appending its entry) is read: its footer and key
        column, with the Parquet page checksums verified. Manifest entries of parts that
        are not in ``parts/`` are ignored. A part that cannot be read, whose content no
        longer matches its entry's sha256, or whose column types conflict with the other
        parts' is refused: one line each, naming the part and pointing to ``insitu verify``.
        """
        listed = self._listed_parts()
        manifest = self.manifest()
        per_part: list[tuple[tuple[tuple[str, pa.DataType], ...], list] | None] = []
        missing: list[tuple[int, Path]] = []
        trusted: list[tuple[int, Path, str]] = []
        for name, (path, size) in listed:
            entry = manifest.get(name)
            if entry is not None and entry[0] == size and entry[3] is not None:
                per_part.append((entry[2], entry[1]))
                trusted.append((len(per_part) - 1, path, entry[3]))
            else:
                per_part.append(None)
                missing.append((len(per_part) - 1, path))

        def changed(batch):
            """The parts of ``batch`` whose bytes no longer match their entry's sha256."""
            bad = []
            for _, path, digest in batch:
                try:
                    if file_sha256(path) != digest:
                        bad.append(path)
                except OSError:
                    bad.append(path)
            return bad

        def read(path: Path):
            try:
                data = path.read_bytes()
                part = pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True)
                return (part.schema_arrow,
                        part.read(columns=["key"], use_threads=False).column("key"),
                        hashlib.sha256(data).hexdigest())
            except Exception as exc:  # noqa: BLE001 - any failure means an unreadable part
                return _unreadable(self, path, exc)

        problems: list[str] = []
        unindexed: list[dict] = []
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
            batches = [trusted[i:i + HASH_BATCH] for i in range(0, len(trusted), HASH_BATCH)]
            for bad in pool.map(changed, batches):
                problems.extend(f"{path}: content does not match its sha256 in the manifest "
                                f"(changed after it was written); run `insitu verify "
                                f"{self.path}` to quarantine it" for path in bad)
            described: dict[pa.Schema, tuple] = {}  # parts of one launch share a schema
            results = pool.map(read, [path for _, path in missing])
            for (index, path), result in zip(missing, results):
                if isinstance(result, StoreError):
                    problems.extend(result.problems)
                    continue
                schema, column, digest = result
                if schema not in described:
                    described[schema] = (tuple((f.name, f.type) for f in schema),
                                         _columns_text(schema))
                types, columns = described[schema]
                keys = column.unique().to_pylist()
                per_part[index] = (types, keys)
                unindexed.append(_manifest_entry(path.name, listed[index][1][1], keys,
                                                 columns, digest))
        if problems:
            raise StoreError(problems)
        keys: set[str] = set()
        for _, part_keys in per_part:  # type: ignore[misc]
            keys.update(part_keys)
        types, odd = unify_part_types([(name, per_part[i][0])  # type: ignore[index]
                                       for i, (name, _) in enumerate(listed)])
        if odd:
            raise StoreError([f"{self.parts_dir / name}: {reason}; run `insitu verify "
                              f"{self.path}` to quarantine it" for name, reason in odd.items()])
        return Scan(keys, types, len(listed), unindexed)

    def _listed_parts(self) -> list[tuple[str, tuple[Path, int]]]:
        """Visible parts in name order, with their sizes (one directory scan)."""
        if not self.parts_dir.is_dir():
            return []
        found = []
        with os.scandir(self.parts_dir) as entries:
            for e in entries:
                if StorePaths.is_part_name(e.name):
                    try:
                        size = e.stat().st_size
                    except FileNotFoundError:
                        continue
                    found.append((e.name, (Path(e.path), size)))
        found.sort()
        return found

    # --------------------------------------------------------------------------- manifest
    def manifest(self) -> dict[str, tuple[int, list, tuple[tuple[str, pa.DataType], ...],
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
            data = self.paths.manifest.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("%s/%s: unreadable, reading every part instead: %s",
                        self.path, MANIFEST_NAME, exc)
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
                schemas[columns] = _decode_columns(columns)
            types = schemas[columns]
            if types is None:
                entries.pop(name, None)
                continue
            entries[name] = (size, keys, types, digest)
        return entries

    def append_manifest(self, entries: list[dict]) -> None:
        """Append entries (the caller holds the lock and has renamed the parts into place).

        Not fsynced: the manifest is an index of the parts, and a part missing from it,
        or with a torn line, is only read from disk by the next ``scan``.
        """
        if not entries:
            return
        text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
        with open(self.paths.manifest, "a+b") as f:
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a torn last line: start a fresh one
                    text = "\n" + text
            f.write(text.encode())
            f.flush()

    def write_manifest(self, entries: list[dict]) -> None:
        """Replace the manifest atomically (``verify`` and ``compact``, under the lock)."""
        _write_atomic(self.paths.manifest, "".join(
            json.dumps(e, separators=(",", ":")) + "\n" for e in entries))

    def read_parts(self, columns: list[str] | None = None) -> pa.Table:
        """Every row of every part, schemas unified, with a ``_part`` column (part index).

        Page checksums are verified. ``StoreError`` names every part that cannot be read
        and every part whose column types conflict with the others' (``verify`` quarantines
        them).
        """
        tables, problems, part_types = [], [], []
        for index, path in enumerate(self.part_paths()):
            try:
                part = pq.ParquetFile(path, page_checksum_verification=True)
                wanted = None if columns is None else [c for c in columns
                                                       if c in part.schema_arrow.names]
                table = part.read(columns=wanted)
            except Exception as exc:  # noqa: BLE001
                problems.extend(_unreadable(self, path, exc).problems)
                continue
            part_types.append((path.name, tuple((f.name, f.type) for f in table.schema)))
            tables.append(table.append_column(
                "_part", pa.array(np.full(table.num_rows, index, dtype=np.int64))))
        _, odd = unify_part_types(part_types)
        problems.extend(f"{self.parts_dir / name}: {reason}; run `insitu verify {self.path}` "
                        f"to quarantine it" for name, reason in odd.items())
        if problems:
            raise StoreError(problems)
        if not tables:
            fields = [pa.field(n, t) for n, t in FIXED_COLUMNS
                      if columns is None or n in columns]
            return pa.schema(fields + [pa.field("_part", pa.int64())]).empty_table()
        return pa.concat_tables(tables, promote_options="permissive")

    def latest_rows(self, columns: list[str] | None = None) -> pa.Table:
        """The rows that count: for each key, those of its newest launch (no ``_part``)."""
        if columns is not None:
            columns = list(dict.fromkeys([*columns, "key", "launch_id"]))
        return latest(self.read_parts(columns)).drop_columns(["_part"])


def latest(table: pa.Table) -> pa.Table:
    """Keep, for each key, only the rows of its newest launch (and of one part of it).

    Launch ids sort by start time, so the newest launch is the greatest id; ties (the same
    rows in two parts, as during a compaction) go to the later part. ``table`` needs
    ``key``, ``launch_id`` and ``_part``.
    """
    if table.num_rows == 0:
        return table
    launch_ids = table.column("launch_id").combine_chunks().dictionary_encode()
    ids = launch_ids.dictionary.to_pylist()
    rank_of_id = {lid: rank for rank, lid in enumerate(sorted(ids))}
    rank = np.array([rank_of_id[lid] for lid in ids], np.int64)[launch_ids.indices.to_numpy()]
    part = table.column("_part").to_numpy()
    order = rank * (int(part.max()) + 1) + part
    keys = table.column("key").combine_chunks().dictionary_encode()
    key_index = keys.indices.to_numpy()
    best = np.full(len(keys.dictionary), -1, np.int64)
    np.maximum.at(best, key_index, order)
    return table.filter(pa.array(order == best[key_index]))


class PartWriter:
    """Turns chunk results into parts of one launch, with an explicit Arrow schema.

    Parameter columns come from the experiment's declaration; metric columns are inferred
    from the rows (float -> float64, int -> int64, bool -> bool, str -> string, lists ->
    list<int64> or list<float64>) and stay consistent with the parts already written: an
    int metric in a float64 column is written as float64. A value that fits no consistent
    type turns its trial into an error row naming the metric.
    """

    def __init__(self, store: Store, launch_id: str, experiment: Experiment,
                 known_types: dict[str, pa.DataType] | None = None):
        self.store = store
        self.launch_id = launch_id
        self.base_fields = [pa.field(n, t) for n, t in FIXED_COLUMNS] + [
            pa.field(p.name, PARAM_ARROW_TYPES[p.type]) for p in experiment.params]
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
    temp = directory / f".{name}{TEMP_SUFFIX}"
    try:
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer, compression="zstd", write_page_checksum=True)
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    return final, digest


def read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A part's rows, its page checksums verified (any failure raises)."""
    return pq.ParquetFile(path, page_checksum_verification=True).read(columns=columns)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def manifest_entry(path: Path, table: pa.Table, digest: str | None = None) -> dict:
    """The manifest entry of the part at ``path`` holding ``table``."""
    return _manifest_entry(path.name, path.stat().st_size,
                           table.column("key").unique().to_pylist(), _columns_text(table.schema),
                           digest or file_sha256(path))


def _manifest_entry(name: str, size: int, keys: list, columns: str, digest: str) -> dict:
    return {"part": name, "bytes": size, "sha256": digest, "columns": columns, "keys": keys}


def _columns_text(schema: pa.Schema) -> str:
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


def _decode_columns(columns: str) -> tuple[tuple[str, pa.DataType], ...] | None:
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


def _type_family(t: pa.DataType) -> str:
    """Types of one family merge (``merge_types``); types of two families conflict."""
    if t in (pa.int64(), pa.float64()):
        return "number"
    if t in (pa.list_(pa.int64()), pa.list_(pa.float64())):
        return "list<number>"
    return str(t)


def unify_part_types(parts: list[tuple[str, tuple[tuple[str, pa.DataType], ...]]]
                     ) -> tuple[dict[str, pa.DataType], dict[str, str]]:
    """The store's column types from each part's (name, column types), and the odd parts.

    A column whose types do not merge takes the type family held by the most parts (on a
    tie, the family of the earliest part); every part holding it in another family is odd
    out: ``{part name: why}``, one reason per part. A ``null`` column fits any type.
    """
    position: dict[str, int] = {}
    by_id: dict[int, tuple[tuple, list[str]]] = {}  # parts of one launch share one tuple
    for index, (name, types) in enumerate(parts):
        position[name] = index
        by_id.setdefault(id(types), (types, []))[1].append(name)
    by_types: dict[tuple, list[str]] = {}
    for types, names in by_id.values():
        by_types.setdefault(types, []).extend(names)
    columns: dict[str, dict[str, list[tuple[pa.DataType, list[str]]]]] = {}
    for types, names in by_types.items():
        for column, t in types:
            if t == pa.null():
                continue
            columns.setdefault(column, {}).setdefault(_type_family(t), []).append((t, names))
    merged: dict[str, pa.DataType] = {}
    odd: dict[str, str] = {}
    for column, families in columns.items():
        count = {f: sum(len(names) for _, names in held) for f, held in families.items()}
        first = {f: min(position[n] for _, names in held for n in names)
                 for f, held in families.items()}
        winner = max(families, key=lambda f: (count[f], -first[f]))
        t = None
        for held_type, _ in families[winner]:
            t = merge_types(t, held_type)
        merged[column] = t
        for family, held in families.items():
            if family == winner:
                continue
            for held_type, names in held:
                for name in names:
                    odd.setdefault(name, f"column {column!r} is {held_type}, where "
                                         f"{count[winner]} other part"
                                         f"{'s' if count[winner] != 1 else ''} hold {t}")
    return merged, dict(sorted(odd.items(), key=lambda item: position[item[0]]))


def merge_types(a: pa.DataType | None, b: pa.DataType) -> pa.DataType | None:
    """The type both fit in (int widens to float), or None when they conflict."""
    if a is None or a == b:
        return b
    numeric = {pa.int64(), pa.float64()}
    if a in numeric and b in numeric:
        return pa.float64()
    lists = {pa.list_(pa.int64()), pa.list_(pa.float64())}
    if a in lists and b in lists:
        return pa.list_(pa.float64())
    return None


class StoreLock:
    """The ``.lock`` file of a store: created exclusively, holding pid, host and launch.

    A lock left by a dead process on this host is taken over with a warning; a lock held by
    a live process, or by another host, is refused.
    """

    def __init__(self, path: Path, launch_id: str):
        self.path = path
        self.launch_id = launch_id
        self.held = False

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def check_free(self) -> None:
        """Raise ``StoreError`` if a live launch holds the lock (writes nothing)."""
        holder = self.holder()
        if holder is not None and not lock_is_stale(holder):
            raise StoreError(_held_message(self.path.parent, holder))

    def acquire(self) -> None:
        record = {"pid": os.getpid(), "host": socket.gethostname(), "launch_id": self.launch_id,
                  "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        temp = self.path.with_name(f".lock.{os.getpid()}.{secrets.token_hex(3)}")
        temp.write_text(json.dumps(record) + "\n")
        try:
            for _ in range(3):
                try:
                    os.link(temp, self.path)  # atomic: fails if a lock exists
                    self.held = True
                    return
                except FileExistsError:
                    holder = self.holder()
                    if holder is None:
                        continue
                    if not lock_is_stale(holder):
                        raise StoreError(_held_message(self.path.parent, holder)) from None
                    log.warning("%s: taking over the stale lock of dead pid %s on %s",
                                self.path.parent, holder.get("pid"), holder.get("host"))
                    stale = self.path.with_name(f".lock.stale.{secrets.token_hex(3)}")
                    try:
                        os.rename(self.path, stale)
                        stale.unlink()
                    except FileNotFoundError:
                        pass
            raise StoreError(f"{self.path.parent}: could not take the store lock")
        finally:
            temp.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            holder = self.holder()
            if holder and holder.get("launch_id") == self.launch_id:
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "StoreLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_is_stale(holder: dict) -> bool:
    """A lock is stale when its process, on this host, no longer exists."""
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return True  # unreadable lock from this host: nobody can be holding it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _held_message(store: Path, holder: dict) -> str:
    return (f"{store}: store is in use by launch {holder.get('launch_id', '?')} "
            f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}); "
            f"remove {StorePaths(store).lock} only if that process is gone")


def _unreadable(store: Store, path: Path, exc: Exception) -> StoreError:
    reason = " ".join(str(exc).split())[:200]
    return StoreError(f"{path}: unreadable part ({reason}); "
                      f"run `insitu verify {store.path}` to quarantine it")


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` via a temp file; the temp file never outlives a failure."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(3)}{TEMP_SUFFIX}")
    try:
        with open(temp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(path, name)
    except (OSError, ValueError):
        return default


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def is_disk_full(exc: BaseException) -> bool:
    """An ``OSError`` of a full file system or an exhausted quota."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def fsync_dir(directory: Path) -> None:
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
