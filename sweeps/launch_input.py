"""A launch's input about where it runs, checked before anything is written: the pool
size and the Ray cluster address."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

from sweeps.exceptions import InputError
from sweeps.spec import Spec

if TYPE_CHECKING:
    from sweeps.launch import LaunchOptions

MAX_WORKERS_PER_CPU = 4  # an embedded Ray with more actors than this per CPU needs --force


PROBE_TIMEOUT_S = 5.0  # a cluster address must accept a connection within this time


def check_backend_input(options: LaunchOptions, spec: Spec, workers: int) -> str:
    """The cluster address (empty: an embedded Ray); refuses a worker count or an address
    that cannot work, before anything is written."""
    address = ray_address(options, spec)
    if options.backend == "ray":
        _check_workers(workers, address, options.force)
        if address:
            probe_address(address)
    return address


def _check_workers(workers: int, address: str, force: bool) -> None:
    """Refuse an embedded Ray of many more actors than CPUs, unless forced."""
    cpus = os.cpu_count() or 1
    if not address and not force and workers > MAX_WORKERS_PER_CPU * cpus:
        raise InputError(f"--workers {workers}: more than {MAX_WORKERS_PER_CPU} x the {cpus} "
                         f"CPUs of this machine for an embedded Ray (each worker is a process); "
                         f"add --force to start them anyway")


def probe_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Refuse a Ray address where nothing answers, within ``timeout`` seconds.

    ``HOST:PORT`` (the cluster's GCS) and ``ray://HOST:PORT`` (a Ray client server) are
    probed with one TCP connection; ``auto`` and ``local`` are left to Ray.
    """
    if address in ("auto", "local"):
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


def ray_address(options: LaunchOptions, spec: Spec) -> str:
    return options.address or spec.ray_setting("address") or os.environ.get("RAY_ADDRESS", "")


def pool_size(options: LaunchOptions, spec: Spec) -> int:
    """The requested pool size; 0: decided when the backend starts (every CPU)."""
    if options.backend == "serial":
        return 1
    return options.workers or spec.ray_setting("workers") or 0

