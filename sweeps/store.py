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

This module holds the store directory (opening, metadata, scanning and reading parts);
its names and columns are in ``sweeps.schema``, the part writer in ``sweeps.parts``, the
manifest in ``sweeps.manifest``, the lock in ``sweeps.lock`` and the file-system helpers
in ``sweeps.fsutil``.

About 430 lines: ``scan`` (the manifest fast path with its integrity checks) is a
third of it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sweeps.exceptions import StoreError
from sweeps.registry import Experiment
from sweeps.fsutil import file_sha256, pathconf, read_only, write_text_atomic
from sweeps.lock import StoreLock
from sweeps.manifest import (append_manifest, columns_text, new_entry, read_manifest,
                             write_manifest)
from sweeps.schema import FIXED_COLUMNS, FORMAT, LOCK_NAME, TEMP_SUFFIX, StorePaths, unify_part_types
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
        name_max = pathconf(probe if probe.is_dir() else probe.parent, "PC_NAME_MAX", 255)
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
        if read_only(probe):
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
            "omit_at_default": [p.name for p in experiment.params if p.omit_at_default],
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        write_text_atomic(store.paths.store_json, json.dumps(meta, indent=2) + "\n")
        store.write_spec(spec)
        return store

    # ------------------------------------------------------------------------- metadata
    def declare_params(self, experiment: Experiment) -> None:
        """Add to ``store.json`` the parameters declared ``omit_at_default`` that the store
        does not list yet: rows written before them computed their default, which readers
        fill in, and analysis groups by them."""
        meta = self.metadata()
        params, defaults = meta.setdefault("params", {}), meta.setdefault("defaults", {})
        omitted = meta.setdefault("omit_at_default", [])
        added = [p for p in experiment.params if p.omit_at_default and p.name not in params]
        if not added:
            return
        for p in added:
            params[p.name], defaults[p.name] = p.type, p.default
            omitted.append(p.name)
        write_text_atomic(self.paths.store_json, json.dumps(meta, indent=2) + "\n")

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
        write_text_atomic(self.paths.spec_json, json.dumps(spec.to_json(), indent=2) + "\n")
        write_text_atomic(self.paths.spec_toml, spec.to_toml())

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
                                         columns_text(schema))
                types, columns = described[schema]
                keys = column.unique().to_pylist()
                per_part[index] = (types, keys)
                unindexed.append(new_entry(path.name, listed[index][1][1], keys,
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
        """Usable manifest entries: part name -> (bytes, keys, column types, sha256)."""
        return read_manifest(self.paths.manifest)

    def append_manifest(self, entries: list[dict]) -> None:
        """Append entries (the caller holds the lock and has renamed the parts into place)."""
        append_manifest(self.paths.manifest, entries)

    def write_manifest(self, entries: list[dict]) -> None:
        """Replace the manifest atomically (``verify`` and ``compact``, under the lock)."""
        write_manifest(self.paths.manifest, entries)

    # ------------------------------------------------------------------------------ reading
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


def _unreadable(store: Store, path: Path, exc: Exception) -> StoreError:
    reason = " ".join(str(exc).split())[:200]
    return StoreError(f"{path}: unreadable part ({reason}); "
                      f"run `insitu verify {store.path}` to quarantine it")


