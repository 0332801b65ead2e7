"""Chunk sizing: hands out chunks of about ``chunk_seconds`` of work.

The time per trial is learnt from the chunks finished so far: the first chunk on every
worker is a single-trial pilot, and chunks shrink towards the end of a sweep so that the
workers finish together. With ``group_seeds`` the trials of one grid point that differ
only in their seed are formed into seed groups here, once, and a chunk carries its groups
(the worker runs each as one device ensemble).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

from sweeps.experiments import Experiment
from sweeps.runner import group_key, trial_columns
from sweeps.trials import Trial

# A chunk whose worker died this often is split into single trials; a single trial whose
# worker died this often becomes an error row.
MAX_ATTEMPTS = 3


@dataclass
class Chunk:
    index: int
    trials: list[Trial]
    attempts: int = 0
    ensemble: bool = False  # run seed groups as device ensembles


@dataclass
class ChunkDone:
    """A finished chunk: its rows and the worker time it took."""

    chunk: Chunk
    rows: list[dict]
    seconds: float


@dataclass
class Chunker:
    """Hands out chunks of about ``chunk_seconds`` of work, learning the time per trial."""

    trials: Sequence[Trial]
    chunk_seconds: float
    workers: int
    group_seeds: bool = False
    _group_of: dict = field(init=False)
    _pending: deque = field(init=False)
    _requeued: deque = field(init=False)
    _next_index: int = field(init=False, default=0)
    _done_trials: int = field(init=False, default=0)
    _done_seconds: float = field(init=False, default=0.0)

    def __post_init__(self):
        trials = list(self.trials)
        # group key of every trial, computed once (a canonical JSON text each)
        self._group_of = {t.key: group_key(t) for t in trials} if self.group_seeds else {}
        if self.group_seeds:
            # the seeds of one grid point next to each other, so chunks hold whole ensembles
            first: dict[str, int] = {}
            for i, trial in enumerate(trials):
                first.setdefault(self._group_of[trial.key], i)
            trials.sort(key=lambda t: first[self._group_of[t.key]])
        self._pending = deque(trials)
        self._requeued = deque()

    @property
    def seconds_per_trial(self) -> float | None:
        return self._done_seconds / self._done_trials if self._done_trials else None

    def has_work(self) -> bool:
        return bool(self._pending or self._requeued)

    def next_chunk(self) -> Chunk | None:
        if self._requeued:
            return self._requeued.popleft()
        if not self._pending:
            return None
        estimate = self.seconds_per_trial
        if estimate is None:
            size = 1  # pilot
        else:
            target = self.chunk_seconds / max(estimate, 1e-9)
            balance = math.ceil(len(self._pending) / (2 * self.workers))
            size = max(1, min(int(target), balance))
        size = min(size, len(self._pending))
        taken = [self._pending.popleft() for _ in range(size)]
        if self.group_seeds:
            # never split a seed group across chunks (its trials run as one ensemble)
            last = self._group_of[taken[-1].key]
            while self._pending and self._group_of[self._pending[0].key] == last:
                taken.append(self._pending.popleft())
        return self.make_chunk(taken)

    def make_chunk(self, trials: list[Trial], attempts: int = 0) -> Chunk:
        chunk = Chunk(self._next_index, trials, attempts, self.group_seeds)
        self._next_index += 1
        return chunk

    def observe(self, done: ChunkDone) -> None:
        self._done_trials += len(done.chunk.trials)
        self._done_seconds += done.seconds

    def requeue(self, chunk: Chunk) -> None:
        """Run ``chunk`` again, first; after repeated failures, trial by trial."""
        if chunk.attempts >= MAX_ATTEMPTS - 1 and len(chunk.trials) > 1:
            for trial in reversed(chunk.trials):
                self._requeued.appendleft(self.make_chunk([trial]))
        else:
            self._requeued.appendleft(chunk)


def lost_trial_rows(chunk: Chunk, experiment: Experiment, reason: str) -> list[dict]:
    """Error rows for a single-trial chunk that kept killing its worker."""
    return [{**trial_columns(experiment, trial, "error", reason, None), "mode": None} for trial in chunk.trials]


def chunk_seconds_of(rows: list[dict]) -> float:
    """Worker time of a chunk: the sum of its trials' elapsed time."""
    seen, total = set(), 0.0
    for row in rows:
        if row["key"] not in seen:
            seen.add(row["key"])
            total += row["elapsed_s"] or 0.0
    return total

