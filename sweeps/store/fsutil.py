"""File-system helpers of the store: atomic writes, directory fsync, free-space and
permission probes, file digests."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import sys
from pathlib import Path

from insitu.sweeps.store.paths import TEMP_SUFFIX


def write_bytes_atomic(path: Path, data: bytes, temp: Path | None = None) -> None:
    """Replace ``path`` by ``data`` via ``temp`` (default: a hidden, randomly named sibling),
    fsync and rename; the temp file never outlives a failure."""
    if temp is None:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(3)}{TEMP_SUFFIX}")
    try:
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` (UTF-8) atomically (:func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def fsync_dir(directory: Path) -> None:
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def is_disk_full(exc: BaseException) -> bool:
    """An ``OSError`` of a full file system or an exhausted quota."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def pathconf(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(path, name)
    except (OSError, ValueError):
        return default


def read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False

