"""Store maintenance and inspection: ``status``, ``verify`` and ``compact``.

``verify`` and ``compact`` take the store lock, so they never touch a store that a launch
is writing. ``status`` only reads. All three work from the store alone (its ``spec.json``
and ``store.json``), never from the experiment's code, so they work on a store of any
experiment version.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import socket
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from insitu.sweeps.store.errors import StoreError
from insitu.sweeps.store.fsutil import fsync_dir
from insitu.sweeps.store.keys import stored_trials
from insitu.sweeps.store.lock import StoreLock, lock_is_stale
from insitu.sweeps.store.manifest import manifest_entry
from insitu.sweeps.store.parts import write_table_atomic
from insitu.sweeps.store.reading import SpecTrials, launch_seqs, membership, read_rows
from insitu.sweeps.store.schema import unify_part_types
from insitu.sweeps.store.store import Store, latest, new_launch_id

REQUIRED_COLUMNS = ("key", "launch_id", "status")
# `status` of a running launch gives no ETA once no part was written for this long (and
# for this many of its mean intervals between parts).
STALLED_MIN_S = 60.0
STALLED_PART_INTERVALS = 10


def format_duration(seconds: float) -> str:
    """``12.3 s``, ``4.5 min`` or ``1.2 h``."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def status_data(store_dir: str) -> dict:
    """The state of a store as JSON values (``insitu status --format json``; docs/store.md,
    "Status"): trial counts overall and per axis value, whether a launch is running, the
    latest launch's rate and the ETA of what is pending."""
    store = Store.open(store_dir)
    spec, meta = store.spec_json(), store.metadata()
    trials = list(stored_trials(spec, meta))
    rows = read_rows(store.path, ["key", "status", "launch_id"]).table
    state: dict[str, str] = {}
    for key, status in zip(rows.column("key").to_pylist(), rows.column("status").to_pylist()):
        if state.get(key) != "error":
            state[key] = "error" if status == "error" else "done"
    counts = Counter(state.get(t.key, "pending") for t in trials)
    axes = {}
    for axis, values in (spec.get("grid") or {}).items():
        per_value: dict = defaultdict(Counter)
        for t in trials:
            per_value[t.params[axis]][state.get(t.key, "pending")] += 1
        axes[axis] = [{"value": value, **{k: per_value[value][k] for k in STATES}}
                      for value in values]
    launches = store.launches()
    return {"store": str(store.path), "experiment": spec.get("experiment"),
            "experiment_version": spec.get("experiment_version"),
            "parts": len(store.part_paths()), "launches": len(launches),
            "trials": {"total": len(trials), **{k: counts[k] for k in STATES}},
            "axes": axes, **_rate(store, launches, rows, counts["pending"])}


STATES = ("done", "error", "pending")


def status_text(store_dir: str) -> str:
    """Done / error / pending counts, overall and per axis value, with rate and ETA."""
    data = status_data(store_dir)
    trials = data["trials"]
    lines = [
        f"store {data['store']}: experiment {data['experiment']} v{data['experiment_version']}, "
        f"{data['parts']} parts, {data['launches']} launches",
        f"trials: {trials['total']} total, {trials['done']} done, {trials['error']} error, "
        f"{trials['pending']} pending",
    ]
    for axis, counts in data["axes"].items():
        width = max(len(axis), *(len(repr(c["value"])) for c in counts))
        lines.append(f"  {axis:<{width}}  {'done':>7} {'error':>7} {'pending':>7}")
        for c in counts:
            lines.append(f"  {c['value']!r:<{width}}  {c['done']:>7} {c['error']:>7} {c['pending']:>7}")
    lines.append(_rate_line(data))
    return "\n".join(lines)


def _rate_line(data: dict) -> str:
    holder, latest = data["running_launch"], data["latest_launch"]
    state = (f"running: launch {holder['launch_id']} (pid {holder['pid']} on "
             f"{holder['host']})" if data["running"] else "not running")
    if latest is None:
        return state
    if not latest["trials_stored"] or data["rate_trials_per_s"] is None:
        return f"{state}; latest launch {latest['launch_id']}: no trials stored yet"
    eta = ""
    if data["stalled_s"] is not None:
        eta = (f", but no part written for {format_duration(data['stalled_s'])} (waiting for "
               f"workers?), so no ETA")
    elif data["eta_s"] is not None:
        eta = f", ETA {format_duration(data['eta_s'])}"
    return (f"{state}; latest launch {latest['launch_id']}: {latest['trials_stored']} trials at "
            f"{data['rate_trials_per_s']:.3g} trials/s{eta}")


def _rate(store: Store, launches: list[dict], rows, pending: int) -> dict:
    """``running``, ``running_launch``, ``latest_launch``, ``rate_trials_per_s`` (of
    the latest run or retry), ``eta_s`` and ``stalled_s``."""
    runs = [r for r in launches if r.get("command") in ("run", "retry-failed")]
    holder = StoreLock(store.paths.lock, "").holder()
    running = holder is not None and not lock_is_stale(holder)
    out = {"running": running,
           "running_launch": {k: holder.get(k) for k in ("launch_id", "pid", "host")} if running else None,
           "latest_launch": None, "rate_trials_per_s": None, "eta_s": None, "stalled_s": None}
    if not runs:
        return out
    last = runs[-1]
    finished = len(set(k for k, lid in zip(rows.column("key").to_pylist(),
                                           rows.column("launch_id").to_pylist())
                       if lid == last["launch_id"]))
    out["latest_launch"] = {"launch_id": last["launch_id"], "command": last.get("command"),
                            "started": last.get("started"), "ended": last.get("ended"),
                            "outcome": last.get("outcome"), "trials_stored": finished,
                            "note": last.get("note"), "tags": last.get("tags") or []}
    parts = [p for p in store.part_paths() if last["launch_id"] in p.name]
    if not finished or not parts:
        return out
    started = _dt.datetime.fromisoformat(last["started"]).timestamp()
    last_write = max(p.stat().st_mtime for p in parts)
    span = max(last_write - started, 1e-3)
    out["rate_trials_per_s"] = rate = finished / span
    if running and pending:
        # No ETA from a rate the launch no longer has: a driver waiting for workers (every
        # worker node gone, say) writes nothing.
        idle = time.time() - last_write
        if idle > max(STALLED_MIN_S, STALLED_PART_INTERVALS * span / len(parts)):
            out["stalled_s"] = idle
        else:
            out["eta_s"] = pending / rate
    return out


def verify(store_dir: str) -> str:
    """Quarantine every part that cannot be trusted, drop stale temp files, report duplicates.

    A part is quarantined (moved to ``quarantine/``, never deleted) when it cannot be read
    whole with its page checksums verified, when its bytes do not match the sha256 of its
    manifest entry, when a column's type conflicts with the other parts' (the odd part out,
    see ``unify_part_types``), or when it holds a row that is not a trial of the store's
    spec (its key is not a trial key, or its parameters are not that trial's).
    """
    store = Store.open(store_dir)
    Store.check_writable(store.path)
    lines = []
    with store.lock(new_launch_id()):
        for temp in store.temp_paths():
            temp.unlink(missing_ok=True)
            lines.append(f"removed leftover temporary file {temp.name}")
        manifest = store.manifest()
        trials = SpecTrials.of(store.spec_json(), store.metadata())
        readable: list[tuple[Path, tuple, dict]] = []  # path, column types, manifest entry
        bad: list[tuple[Path, str]] = []
        for path in store.part_paths():
            table, digest, problem = _read_part(path, manifest.get(path.name))
            if problem is None:
                problem = _foreign_rows(table, trials)
            if problem is None:
                readable.append((path, tuple((f.name, f.type) for f in table.schema),
                                 manifest_entry(path, table, digest)))
            else:
                bad.append((path, problem))
        _, odd = unify_part_types([(path.name, types) for path, types, _ in readable])
        bad += [(path, odd[path.name]) for path, _, _ in readable if path.name in odd]
        kept = [entry for path, _, entry in readable if path.name not in odd]
        for path, problem in sorted(bad):
            store.quarantine_dir.mkdir(exist_ok=True)
            os.replace(path, store.quarantine_dir / path.name)
            lines.append(f"quarantined {path.name}: {problem}")
        if bad:
            fsync_dir(store.parts_dir)
        store.write_manifest(kept)  # rebuilt from the parts that are left
        key_parts: Counter = Counter()
        for entry in kept:
            key_parts.update(entry["keys"])
        duplicates = sum(1 for n in key_parts.values() if n > 1)
        lines.append(f"{store.path}: {len(kept)} parts readable, {len(bad)} quarantined")
        if duplicates:
            lines.append(f"{duplicates} keys are stored in more than one part (the newest "
                         f"launch counts; `insitu compact {store.path}` drops the rest)")
        else:
            lines.append("no duplicate keys")
    return "\n".join(lines)


def _read_part(path: Path, entry):
    """(the whole part, its sha256, None), or (None, None, why it cannot be used)."""
    try:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if entry is not None and entry[3] is not None and entry[3] != digest:
            return None, None, ("its sha256 does not match its manifest entry (the part "
                                "changed after it was written)")
        table = pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True).read()
    except Exception as exc:  # noqa: BLE001 - any failure means unreadable
        return None, None, " ".join(str(exc).split())[:200] or type(exc).__name__
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        return None, None, f"missing columns {', '.join(missing)}"
    return table, digest, None


def _foreign_rows(table, trials: SpecTrials) -> str | None:
    """Why a part holds rows that are not trials of the store's spec (None: it does not)."""
    belongs, reason = membership(table, trials)
    count = table.num_rows - sum(belongs.to_pylist())
    if not count:
        return None
    return f"{count} of its {table.num_rows} rows are not trials of the store's spec ({reason})"


def compact(store_dir: str) -> str:
    """Merge every part into one, keeping only the rows that count (newest launch per key).

    The merged part is written (atomically) before any old part is removed, and carries
    the rows' own launch ids, so a reader sees the same rows at every moment; a compaction
    that is killed half-way leaves duplicates that the next one removes. A store with a
    part that ``verify`` would quarantine (unreadable, conflicting column types, rows of
    another spec) is refused, one line per part: merging would bury the bad rows.
    """
    store = Store.open(store_dir)
    Store.check_writable(store.path)
    launch_id = new_launch_id()
    with store.lock(launch_id):
        old_parts = store.part_paths()
        if not old_parts:
            return f"{store.path}: no parts to compact"
        table = store.read_parts()
        belongs, reason = membership(table, SpecTrials.of(store.spec_json(), store.metadata()))
        foreign = table.num_rows - sum(belongs.to_pylist())
        if foreign:
            raise StoreError(f"{store.path}: {foreign} rows are not trials of the store's "
                             f"spec ({reason}); run `insitu verify {store.path}` to "
                             f"quarantine their parts, then compact")
        kept = latest(table, launch_seqs(store.paths)).drop_columns(["_part"])
        store.append_launch({
            "launch_id": launch_id, "command": "compact",
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
            "host": socket.gethostname(), "pid": os.getpid()})
        merged, digest = write_table_atomic(kept, store.parts_dir,
                                            store.paths.part_name(launch_id, 0))
        store.append_manifest([manifest_entry(merged, kept, digest)])
        for path in old_parts:
            if path != merged:
                path.unlink()
        fsync_dir(store.parts_dir)
        store.write_manifest([manifest_entry(merged, kept, digest)])  # drop the removed parts
    return (f"{store.path}: compacted {len(old_parts)} parts into 1 ({kept.num_rows} rows; "
            f"dropped {table.num_rows - kept.num_rows} superseded rows)")
