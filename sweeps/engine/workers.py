"""How many workers a pool has: the one rule, used by the launch and the Ray backend."""

from __future__ import annotations

import os


def pool_workers(requested: int | None, address: str) -> int | None:
    """The one rule for the number of workers: the number asked for, else one per CPU of
    this machine for an embedded Ray, else (a cluster attached to) None: every CPU it has,
    known once attached."""
    if requested:
        return int(requested)
    return None if address else (os.cpu_count() or 1)
