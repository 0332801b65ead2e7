"""Store maintenance and inspection: ``status``, ``verify`` and ``compact``.

``verify`` and ``compact`` take the store lock, so they never touch a store that a launch
is writing. ``status`` only reads.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from sweeps.experiments import get_experiment
from sweeps.store import Store, StoreLock, latest, manifest_entry, new_launch_id
from sweeps.store import write_table_atomic
from sweeps.store import PART_PREFIX, PART_SUFFIX, fsync_dir, lock_is_stale
from sweeps.progress import format_duration
from sweeps.trials import enumerate_trials

REQUIRED_COLUMNS = ("key", "launch_id", "status")


def status_text(store_dir: str) -> str:
    """Done / error / pending counts, overall and per axis value, with rate and ETA."""
    store = Store.open(store_dir)
    spec = store.spec()
    trials = enumerate_trials(spec, get_experiment(spec.experiment))
    rows = store.latest_rows(["key", "status", "launch_id"])
    state: dict[str, str] = {}
    for key, status in zip(rows.column("key").to_pylist(), rows.column("status").to_pylist()):
        if state.get(key) != "error":
            state[key] = "error" if status == "error" else "done"
    counts = Counter(state.get(t.key, "pending") for t in trials)
    lines = [
        f"store {store.path}: experiment {spec.experiment} v{spec.experiment_version}, "
        f"{len(store.part_paths())} parts, {len(store.launches())} launches",
        f"trials: {len(trials)} total, {counts['done']} done, {counts['error']} error, "
        f"{counts['pending']} pending",
    ]
    for axis, values in spec.grid.items():
        per_value: dict = defaultdict(Counter)
        for t in trials:
            per_value[t.params[axis]][state.get(t.key, "pending")] += 1
        width = max(len(axis), *(len(repr(v)) for v in values))
        lines.append(f"  {axis:<{width}}  {'done':>7} {'error':>7} {'pending':>7}")
        for value in values:
            c = per_value[value]
            lines.append(f"  {value!r:<{width}}  {c['done']:>7} {c['error']:>7} {c['pending']:>7}")
    lines.append(_rate_line(store, rows, counts["pending"]))
    return "\n".join(lines)


def _rate_line(store: Store, rows, pending: int) -> str:
    launches = [r for r in store.launches() if r.get("command") in ("run", "retry-failed")]
    holder = StoreLock(store.path / ".lock", "").holder()
    running = holder is not None and not lock_is_stale(holder)
    state = (f"running: launch {holder.get('launch_id')} (pid {holder.get('pid')} on "
             f"{holder.get('host')})" if running else "not running")
    if not launches:
        return state
    last = launches[-1]
    finished = len(set(k for k, lid in zip(rows.column("key").to_pylist(),
                                           rows.column("launch_id").to_pylist())
                       if lid == last["launch_id"]))
    parts = [p for p in store.part_paths() if last["launch_id"] in p.name]
    if not finished or not parts:
        return f"{state}; latest launch {last['launch_id']}: no trials stored yet"
    started = _dt.datetime.fromisoformat(last["started"]).timestamp()
    span = max(max(p.stat().st_mtime for p in parts) - started, 1e-3)
    rate = finished / span
    eta = f", ETA {format_duration(pending / rate)}" if running and pending else ""
    return (f"{state}; latest launch {last['launch_id']}: {finished} trials at "
            f"{rate:.3g} trials/s{eta}")


def verify(store_dir: str) -> str:
    """Quarantine unreadable parts, drop stale temp files, report duplicate keys."""
    store = Store.open(store_dir)
    lines = []
    with store.lock(new_launch_id()):
        for temp in store.temp_paths():
            temp.unlink(missing_ok=True)
            lines.append(f"removed leftover temporary file {temp.name}")
        key_parts: Counter = Counter()
        entries = []
        good = quarantined = 0
        for path in store.part_paths():
            table, problem = _read_part(path)
            if problem is None:
                good += 1
                keys = table.column("key").unique()
                key_parts.update(keys.to_pylist())
                entries.append(manifest_entry(path, table))
                continue
            store.quarantine_dir.mkdir(exist_ok=True)
            os.replace(path, store.quarantine_dir / path.name)
            fsync_dir(store.parts_dir)
            quarantined += 1
            lines.append(f"quarantined {path.name}: {problem}")
        store.write_manifest(entries)  # rebuilt from the parts that are left
        duplicates = sum(1 for n in key_parts.values() if n > 1)
        lines.append(f"{store.path}: {good} parts readable, {quarantined} quarantined")
        if duplicates:
            lines.append(f"{duplicates} keys are stored in more than one part (the newest "
                         f"launch counts; `insitu compact {store.path}` drops the rest)")
        else:
            lines.append("no duplicate keys")
    return "\n".join(lines)


def _read_part(path: Path):
    """(the whole part, None), or (None, why it cannot be used)."""
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any failure means unreadable
        return None, " ".join(str(exc).split())[:200] or type(exc).__name__
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        return None, f"missing columns {', '.join(missing)}"
    return table, None


def compact(store_dir: str) -> str:
    """Merge every part into one, keeping only the rows that count (newest launch per key).

    The merged part is written (atomically) before any old part is removed, and carries
    the rows' own launch ids, so a reader sees the same rows at every moment; a compaction
    that is killed half-way leaves duplicates that the next one removes.
    """
    store = Store.open(store_dir)
    launch_id = new_launch_id()
    with store.lock(launch_id):
        old_parts = store.part_paths()
        if not old_parts:
            return f"{store.path}: no parts to compact"
        table = store.read_parts()
        kept = latest(table).drop_columns(["_part"])
        store.append_launch({
            "launch_id": launch_id, "command": "compact",
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
            "host": socket.gethostname(), "pid": os.getpid()})
        merged = write_table_atomic(kept, store.parts_dir,
                                    f"{PART_PREFIX}{launch_id}-{0:06d}{PART_SUFFIX}")
        store.append_manifest([manifest_entry(merged, kept)])
        for path in old_parts:
            if path != merged:
                path.unlink()
        fsync_dir(store.parts_dir)
        store.write_manifest([manifest_entry(merged, kept)])  # drop the removed parts
    return (f"{store.path}: compacted {len(old_parts)} parts into 1 ({kept.num_rows} rows; "
            f"dropped {table.num_rows - kept.num_rows} superseded rows)")
