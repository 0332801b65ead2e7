"""How a launch runs, decided once before anything is written: the options of ``insitu
run`` (:class:`LaunchOptions`) and the pool they give (:class:`Pool`: backend, cluster
address, worker count), with its checks."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from insitu.errors import InputError
from insitu.sweeps.engine.spec import Spec
from insitu.sweeps.engine.workers import pool_workers

MAX_WORKERS_PER_CPU = 4  # an embedded Ray with more actors than this per CPU needs --force
PROBE_TIMEOUT_S = 5.0  # a cluster address must accept a connection within this time
PROGRESS_SECONDS = 30.0  # interval of the plain progress lines when stderr is no terminal


@dataclass
class LaunchOptions:
    """How to run: backend, pool size, cluster address, and whether to only estimate."""

    backend: str = "ray"
    workers: int | None = None
    address: str | None = None
    dry_run: bool = False
    pilot: bool = True  # dry run: time one pilot unit for the estimate
    progress: bool | None = None  # tqdm bar; None: only when stderr is a terminal
    progress_seconds: float = PROGRESS_SECONDS  # plain progress lines when there is no bar
    quiet: bool = False  # no start line, no bar, no progress lines
    force: bool = False  # start an embedded Ray of more than MAX_WORKERS_PER_CPU x CPUs
    note: str | None = None  # --note: kept in the launch's record
    tags: tuple[str, ...] = ()  # --tag: kept in the launch's record
    overrides: tuple[str, ...] = ()  # --set: recorded as given (the spec holds their effect)

    def record(self) -> dict:
        """What the launch's record keeps of these options: ``note``, ``tags``, ``overrides``."""
        return {"note": self.note, "tags": list(self.tags), "overrides": list(self.overrides)}


MAX_NOTE_CHARS = 2000
MAX_TAG_CHARS = 64


def check_labels(note: str | None, tags) -> tuple[str | None, tuple[str, ...]]:
    """``--note`` and ``--tag`` values, checked: a note is text of at most
    :data:`MAX_NOTE_CHARS` characters (new lines and tabs allowed, no other control
    characters); a tag is 1 to :data:`MAX_TAG_CHARS` printable characters without spaces
    or commas. Repeated tags are kept once, in order. ``InputError``: one line per problem."""
    problems = []
    if note is not None:
        if not note.strip():
            problems.append("--note: empty note")
        elif len(note) > MAX_NOTE_CHARS:
            problems.append(f"--note: {len(note)} characters, more than {MAX_NOTE_CHARS}")
        elif any(not (c.isprintable() or c in "\n\t") for c in note):
            problems.append("--note: holds control characters (only new lines and tabs are kept)")
    kept: list[str] = []
    for tag in tags or ():
        if not tag or len(tag) > MAX_TAG_CHARS or not tag.isprintable() or any(
                c.isspace() or c == "," for c in tag):
            problems.append(f"--tag {tag[:MAX_TAG_CHARS + 10]!r}: expected 1 to {MAX_TAG_CHARS} "
                            f"printable characters without spaces or commas")
        elif tag not in kept:
            kept.append(tag)
    if problems:
        raise InputError(problems)
    return note, tuple(kept)


@dataclass(frozen=True)
class Pool:
    """Where a launch's chunks run, decided once: backend, cluster address, workers.

    ``workers`` is 1 for the serial backend; for Ray, ``--workers``, else the spec's
    ``[ray] workers``, else :func:`insitu.sweeps.engine.workers.pool_workers`' rule (one
    per CPU of this machine, or every CPU of a cluster attached to: ``None`` until then).
    """

    backend: str
    address: str  # "" for the serial backend and an embedded local Ray
    workers: int | None

    @classmethod
    def of(cls, options: LaunchOptions, spec: Spec) -> "Pool":
        if options.backend not in ("ray", "serial"):
            raise InputError(f"unknown backend {options.backend!r} (choose ray or serial)")
        if options.backend == "serial":
            return cls("serial", "", 1)
        address = options.address or spec.ray_setting("address") or os.environ.get("RAY_ADDRESS", "")
        return cls("ray", address, pool_workers(options.workers or spec.ray_setting("workers"), address))

    def check(self, force: bool = False) -> None:
        """Refuse a pool that cannot work, before anything is written: an embedded Ray of
        many more actors than CPUs (unless forced), a cluster address where nothing answers."""
        if self.backend != "ray":
            return
        cpus = os.cpu_count() or 1
        if not self.address and not force and (self.workers or 0) > MAX_WORKERS_PER_CPU * cpus:
            raise InputError(f"--workers {self.workers}: more than {MAX_WORKERS_PER_CPU} x the {cpus} "
                             f"CPUs of this machine for an embedded Ray (each worker is a process); "
                             f"add --force to start them anyway")
        if self.address:
            probe_address(self.address)

    def for_estimate(self) -> tuple[int, str]:
        """How many units run at once, and the words of an estimate's unit of time."""
        if self.backend == "serial":
            return 1, "on 1 worker (serial)"
        if self.workers is None:
            return 1, "of worker time (divide by the cluster's CPUs; --workers N to say)"
        one = self.workers == 1
        per_cpu = " (one per CPU)" if not self.address and self.workers == (os.cpu_count() or 1) else ""
        return self.workers, f"on {self.workers} worker{'' if one else 's'}{per_cpu}"


def auto_address() -> str | None:
    """The address Ray's ``auto`` would attach to: recorded by the last ``ray start`` on
    this machine, in ``<RAY_TMPDIR or the system temporary folder>/ray/ray_current_cluster``."""
    import tempfile
    from pathlib import Path

    record = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        text = record.read_text().strip()
    except OSError:
        return None
    return text.splitlines()[0].strip() if text else None


def probe_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Refuse a Ray address where nothing answers, within ``timeout`` seconds.

    ``HOST:PORT`` (the cluster's GCS) and ``ray://HOST:PORT`` (a Ray client server) are
    probed with one TCP connection. ``auto`` is what Ray would find: the address Ray
    recorded for the cluster last started on this machine (``ray_current_cluster`` in its
    temporary folder), probed the same way, so a stale record is one line, not a hang.
    ``local`` (a new cluster) is left to Ray.
    """
    if address == "local":
        return
    if address == "auto":
        found = auto_address()
        if found is None:
            raise InputError("--address auto: no Ray cluster was started on this machine (Ray "
                             "recorded none); start one (ray start --head), or name its address")
        probe_address(found, timeout)
        return
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"Ray address {address!r}: expected HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise InputError(f"no Ray cluster at {address} ({reason} within {timeout:g} s); "
                         f"start one there, or drop --address / RAY_ADDRESS / [ray] address "
                         f"for an embedded local Ray") from None
