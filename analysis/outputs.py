"""Which figures and reports were made from which state of a store, and which are stale.

``insitu figures`` and ``insitu report`` record, in ``<store>/analysis-outputs.json``, what
they wrote and the state of the store they read: its trial count (finished and failed
trials, newest launch per trial) and its last launch id. When the store has changed since
(a resumed or extended sweep, a retry, a compaction), :func:`stale_notices` says which
outputs no longer show it; ``insitu status`` and the next ``figures`` or ``report`` call
print those notices. The record is written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from analysis.load import LoadedStore, read_store

__all__ = ["RECORD_NAME", "record_output", "stale_notices", "store_state"]

RECORD_NAME = "analysis-outputs.json"


def store_state(store: LoadedStore) -> dict:
    """``{"trials": n, "last_launch": id}`` of a store as read (unfiltered)."""
    return {"trials": int(store.n_trials_ok + store.n_trials_error),
            "last_launch": store.launches[-1] if store.launches else None}


def _records(store_path: Path) -> list[dict]:
    try:
        value = json.loads((store_path / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return []
    outputs = value.get("outputs") if isinstance(value, dict) else None
    return [r for r in outputs or [] if isinstance(r, dict)]


def _shown_path(store_path: Path, path: Path) -> str:
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(Path(os.path.abspath(store_path))))
    except ValueError:
        return str(path)


def record_output(store: LoadedStore, kind: str, path: Path, state: dict | None = None,
                  **details) -> str | None:
    """Record that ``kind`` ("figures" or "report") was written to ``path`` from ``store``.

    Returns None, or a line saying why the record could not be written (a read-only store
    copied off a cluster still gets its figures).
    """
    state = store_state(store) if state is None else state
    shown = _shown_path(store.path, path)
    records = [r for r in _records(store.path) if (r.get("kind"), r.get("path")) != (kind, shown)]
    records.append({"kind": kind, "path": shown, **state,
                    "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    **{k: v for k, v in details.items() if v not in (None, [], ())}})
    file = store.path / RECORD_NAME
    tmp = file.with_name(f".{RECORD_NAME}.tmp")
    try:
        tmp.write_text(json.dumps({"outputs": records}, indent=1) + "\n")
        os.replace(tmp, file)
    except OSError as exc:
        return f"could not record the {kind} in {file} ({exc.strerror or exc}); stale-output notices will not cover them"
    return None


def stale_notices(store: LoadedStore | str | Path, skip: tuple[str, Path] | None = None) -> list[str]:
    """One line per recorded output made from another state of the store than the current.

    ``skip`` = (kind, path) leaves out the output about to be rewritten.
    """
    if not isinstance(store, LoadedStore):
        store = read_store(store, columns=["key"])
    now = store_state(store)
    skipped = (skip[0], _shown_path(store.path, skip[1])) if skip else None
    lines = []
    for r in _records(store.path):
        if (r.get("kind"), r.get("path")) == skipped:
            continue
        if r.get("trials") == now["trials"] and r.get("last_launch") == now["last_launch"]:
            continue
        lines.append(
            f"{r.get('kind')} {r.get('path')} is out of date: made from {r.get('trials')} trials "
            f"(last launch {r.get('last_launch')}); the store now has {now['trials']} trials "
            f"(last launch {now['last_launch']}); rerun `insitu {r.get('kind')}`")
    return lines
