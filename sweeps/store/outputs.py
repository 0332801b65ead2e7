"""Which figures and reports were made from which state of a store, and which are stale.

``insitu figures`` and ``insitu report`` write into the store's directory by default
(``figures/``, ``report.html``: analysis outputs, not part of the sweep's data; docs/store.md)
and record here, in ``analysis-outputs.json``, what they wrote and the state of the store
they read: its trial count (finished and failed trials, newest launch per trial) and its
last launch. When the store has changed since (a resumed or extended sweep, a retry, a
compaction), :func:`stale_notices` says which outputs no longer show it; ``insitu status``
and the next ``figures`` or ``report`` print those notices.

The record is not written under the store lock (a figure may be drawn while a launch runs)
but under its own lock file, ``.analysis-outputs.json.lock`` (an ``flock``), so that
concurrent writers never lose each other's records; it is replaced atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from insitu.sweeps.store.fsutil import write_text_atomic
from insitu.sweeps.store.paths import StorePaths
from insitu.sweeps.store.reading import Rows, read_rows

__all__ = ["record_output", "stale_notices", "store_state"]


def store_state(rows: Rows) -> dict:
    """``{"trials": n, "last_launch": id}`` of a store as read (unfiltered)."""
    return {"trials": len(set(rows.table.column("key").to_pylist())),
            "last_launch": rows.launches[-1] if rows.launches else None}


def _records(paths: StorePaths) -> list[dict]:
    try:
        value = json.loads(paths.outputs.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    outputs = value.get("outputs") if isinstance(value, dict) else None
    return [r for r in outputs or [] if isinstance(r, dict)]


def _shown_path(root: Path, path: Path) -> str:
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(Path(os.path.abspath(root))))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def _record_lock(paths: StorePaths):
    """Hold the record's own lock (``flock`` on its lock file) for a read-modify-write."""
    import fcntl

    fd = os.open(paths.outputs_lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def record_output(store_dir: str | Path, kind: str, path: Path, state: dict,
                  **details) -> str | None:
    """Record that ``kind`` ("figures" or "report") was written to ``path`` from the store
    in ``state`` (:func:`store_state`).

    Returns None, or a line saying why the record could not be written (a read-only store
    copied off a cluster still gets its figures).
    """
    paths = StorePaths(store_dir)
    shown = _shown_path(paths.root, path)
    try:
        with _record_lock(paths):
            records = [r for r in _records(paths) if (r.get("kind"), r.get("path")) != (kind, shown)]
            records.append({"kind": kind, "path": shown, **state,
                            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            **{k: v for k, v in details.items() if v not in (None, [], ())}})
            write_text_atomic(paths.outputs, json.dumps({"outputs": records}, indent=1) + "\n")
    except OSError as exc:
        return (f"could not record the {kind} in {paths.outputs} ({exc.strerror or exc}); "
                f"stale-output notices will not cover them")
    return None


def stale_notices(store: Rows | str | Path, skip: tuple[str, Path] | None = None) -> list[str]:
    """One line per recorded output made from another state of the store than the current.

    ``skip`` = (kind, path) leaves out the output about to be rewritten.
    """
    rows = store if isinstance(store, Rows) else read_rows(store, columns=["key"])
    paths = StorePaths(rows.path)
    now = store_state(rows)
    skipped = (skip[0], _shown_path(paths.root, skip[1])) if skip else None
    lines = []
    for r in _records(paths):
        if (r.get("kind"), r.get("path")) == skipped:
            continue
        if r.get("trials") == now["trials"] and r.get("last_launch") == now["last_launch"]:
            continue
        lines.append(
            f"{r.get('kind')} {r.get('path')} is out of date: made from {r.get('trials')} trials "
            f"(last launch {r.get('last_launch')}); the store now has {now['trials']} trials "
            f"(last launch {now['last_launch']}); rerun `insitu {r.get('kind')}`")
    return lines
