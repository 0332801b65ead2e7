"""Interrupts during a launch: Ctrl-C and SIGTERM stop it, but never in the middle of a
part write."""

from __future__ import annotations

import contextlib
import signal
import threading

_deferred = threading.local()


@contextlib.contextmanager
def interrupts_raise():
    """SIGINT and SIGTERM raise KeyboardInterrupt (unless deferred by a write)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if getattr(_deferred, "active", False):
            _deferred.pending = True
        else:
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def interrupts_deferred():
    """Hold an interrupt until the block (a part write) is done, then raise it."""
    _deferred.active, _deferred.pending = True, False
    try:
        yield
    finally:
        _deferred.active = False
        if _deferred.pending:
            _deferred.pending = False
            raise KeyboardInterrupt

