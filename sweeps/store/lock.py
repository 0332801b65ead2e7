"""The store lock: one launch or maintenance command writes a store at a time."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import secrets
import socket
from pathlib import Path

from insitu.sweeps.store.errors import StoreError
from insitu.sweeps.store.paths import StorePaths

log = logging.getLogger(__name__)
LOCK_TEMP_PREFIX = ".lock."  # the lock is written under .lock.<pid>.<hex>, then linked as .lock


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

    def acquire(self) -> None:
        record = {"pid": os.getpid(), "host": socket.gethostname(), "launch_id": self.launch_id,
                  "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        temp = self.path.with_name(f"{LOCK_TEMP_PREFIX}{os.getpid()}.{secrets.token_hex(3)}")
        try:
            temp.write_text(json.dumps(record) + "\n")  # inside the try: a full disk leaves nothing
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

