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

This module holds the store directory (opening, creating, scanning and reading parts);
the other modules of this room hold its names (``paths``), columns (``schema``), keys
(``keys``), metadata files (``metadata``), part writer (``parts``), manifest, lock,
file-system helpers (``fsutil``) and the reading rules (``reading``).
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

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from insitu.sweeps.store.errors import StoreError
from insitu.sweeps.store.fsutil import file_sha256, pathconf, read_only
from insitu.sweeps.store.lock import LOCK_TEMP_PREFIX, StoreLock
from insitu.sweeps.store.manifest import (append_manifest, columns_text, new_entry, read_manifest,
                                          write_manifest)
from insitu.sweeps.store.metadata import (DESCRIPTION_KEYS, read_launches, read_meta, read_spec,
                                          write_meta, write_spec)
from insitu.sweeps.store.paths import LOCK_NAME, TEMP_SUFFIX, StorePaths
from insitu.sweeps.store.reading import launch_ranks, launch_seqs, newest, row_precedence
from insitu.sweeps.store.schema import FIXED_COLUMNS, unify_part_types

log = logging.getLogger(__name__)
HASH_BATCH = 64  # parts hashed per thread-pool task when a scan checks their sha256


def new_launch_id() -> str:
    """A launch id that sorts by start time: UTC timestamp (microseconds) and a random tag."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


def is_store(path: str | Path) -> bool:
    return StorePaths(path).store_json.is_file()


def is_creation_debris(path: Path) -> bool:
    """What a store creation that died leaves in its directory before ``store.json``
    exists: the lock and its temporary file, the spec files, empty ``parts/`` and
    ``quarantine/``, temporary files."""
    name = path.name
    if name in (LOCK_NAME, "spec.json", "spec.toml") or name.startswith(LOCK_TEMP_PREFIX):
        return path.is_file()
    if name.startswith(".") and name.endswith(TEMP_SUFFIX):
        return path.is_file()
    if name in ("parts", "quarantine"):
        return path.is_dir() and not any(path.iterdir())
    return False


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
        if not path.is_dir():
            raise StoreError(f"{path}: not a store directory (it is a file)")
        if not is_store(path):
            raise StoreError(f"{path}: not an insitu store (no store.json)")
        store = cls(path)
        store.metadata()  # checks the format
        return store

    @classmethod
    def check_creatable(cls, path: str | Path) -> None:
        """Refuse a path that exists and is neither a store, an empty directory, nor what a
        creation that died left (:func:`creation_debris`: the next launch takes it over)."""
        path = Path(path)
        if path.exists() and not is_store(path):
            if not path.is_dir():
                raise StoreError(f"{path}: exists and is not a directory")
            if any(not is_creation_debris(p) for p in path.iterdir()):
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
    def create(cls, path: str | Path, spec: dict, meta: dict) -> "Store":
        """Lay out a new store for ``spec`` (``spec.json``'s form) with ``meta`` as its
        ``store.json`` (:func:`insitu.sweeps.store.metadata.new_meta`); the caller holds the
        lock (see ``lock``).

        ``store.json`` is written last: it is what makes a directory a store, so a creation
        that dies on the way (a full disk) leaves only debris that the next launch removes
        (:func:`is_creation_debris`), never a store without its spec.
        """
        store = cls(path)
        store.parts_dir.mkdir(parents=True, exist_ok=True)
        store.quarantine_dir.mkdir(exist_ok=True)
        store.write_spec(spec)
        write_meta(store.paths, meta)
        return store

    def remove_creation_debris(self) -> None:
        """What a creation that died left (the caller holds the lock; no ``store.json``)."""
        if is_store(self.path):
            return
        for leftover in self.temp_paths():
            leftover.unlink(missing_ok=True)
        for name in (self.paths.spec_json, self.paths.spec_toml):
            name.unlink(missing_ok=True)
        for leftover in self.path.glob(f"{LOCK_TEMP_PREFIX}*"):  # a lock write that died
            leftover.unlink(missing_ok=True)
        for directory in (self.parts_dir, self.quarantine_dir):
            try:
                directory.rmdir()
            except OSError:
                pass

    # ------------------------------------------------------------------------- metadata
    def update_meta(self, current: dict) -> None:
        """Bring ``store.json`` up to the experiment's ``current`` description (the caller
        holds the lock): parameters declared ``omit_at_default`` that it does not list yet
        are added (rows written before them computed their default, which readers fill
        in), and a store written before ``store.json`` described its experiment gets the
        description."""
        meta = self.metadata()
        params, defaults = meta.setdefault("params", {}), meta.setdefault("defaults", {})
        omitted = meta.setdefault("omit_at_default", [])
        changed = False
        for name in current.get("omit_at_default", ()):
            if name not in params:
                params[name], defaults[name] = current["params"][name], current["defaults"][name]
                omitted.append(name)
                changed = True
        for key in DESCRIPTION_KEYS:
            if key not in meta and key in current:
                meta[key] = current[key]
                changed = True
        if changed:
            write_meta(self.paths, meta)

    def metadata(self) -> dict:
        """``store.json``."""
        return read_meta(self.paths)

    def spec_json(self) -> dict:
        """``spec.json``."""
        return read_spec(self.paths)

    def write_spec(self, spec: dict) -> None:
        """``spec.json`` and ``spec.toml``."""
        write_spec(self.paths, spec)

    def launches(self) -> list[dict]:
        """Every launch record, oldest first (:func:`insitu.sweeps.store.metadata.read_launches`)."""
        return read_launches(self.paths)

    def append_launch(self, record: dict) -> None:
        """Append a launch record (the caller holds the lock). A launch's opening record
        (``started``) gets the next number of the store's launch counter, ``seq``: the
        order of launches, whatever the clocks of the hosts that ran them say."""
        if "started" in record and "seq" not in record:
            record = {**record, "seq": 1 + max((r.get("seq", 0) for r in self.launches()
                                                if isinstance(r.get("seq"), int)), default=0)}
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
            tables.append(table.append_column("_part", pa.array([index] * table.num_rows, pa.int64())))
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
        return latest(self.read_parts(columns), launch_seqs(self.paths)).drop_columns(["_part"])


def latest(table: pa.Table, seqs: dict[str, int] | None = None) -> pa.Table:
    """Keep, for each key, only the rows of its newest launch and, within it, of its last
    part (:func:`insitu.sweeps.store.reading.row_precedence`; ``seqs``: the store's launch
    counter). ``table`` needs ``key``, ``launch_id`` and ``_part``."""
    if table.num_rows == 0:
        return table
    n_parts = pc.max(table["_part"]).as_py() + 1
    launch = table["launch_id"].combine_chunks()
    precedence = row_precedence(launch, table["_part"], n_parts,
                                launch_ranks(launch.unique().to_pylist(), seqs))
    return table.filter(newest(table["key"], precedence))


def _unreadable(store: Store, path: Path, exc: Exception) -> StoreError:
    reason = " ".join(str(exc).split())[:200]
    return StoreError(f"{path}: unreadable part ({reason}); "
                      f"run `insitu verify {store.path}` to quarantine it")


