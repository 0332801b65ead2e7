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
from typing import TYPE_CHECKING, Sequence

from insitu.sweeps.engine.registry import Experiment
from insitu.sweeps.engine.runner import group_key, trial_columns
from insitu.sweeps.engine.trials import Trial

if TYPE_CHECKING:
    from insitu.sweeps.engine.spec import Spec

# A chunk whose worker died this often is split into single trials; a single trial whose
# worker died this often becomes an error row.
MAX_ATTEMPTS = 3


@dataclass
class Chunk:
    """Trials run as a unit of work: ``groups`` are the units the chunk function runs, one
    trial each, or the seeds of one grid point run as one device ensemble."""

    index: int
    groups: list[list[Trial]]
    attempts: int = 0

    @property
    def trials(self) -> list[Trial]:
        return [trial for group in self.groups for trial in group]


@dataclass
class Waiting:
    """What a backend's run yields while no chunk finishes (every few seconds): how long
    since the last chunk finished, the chunks running (seconds so far, worker pid,
    trials), and how many of their trials are done by the workers' own account (they
    report each unit's progress, an epoch at a time)."""

    since_last: float
    running: list[tuple[float, int, int]]  # (seconds running, worker pid, trials)
    partial: float = 0.0  # trials of the running chunks done, fractions included

    def text(self) -> str:
        if not self.running:
            return f"no part for {self.since_last:.0f} s; no chunk running (waiting for workers)"
        longest = max(self.running)
        many = len(self.running)
        return (f"no part for {self.since_last:.0f} s; {many} chunk{'s' if many != 1 else ''} "
                f"running, the longest for {longest[0]:.0f} s on pid {longest[1]}")


@dataclass
class ChunkDone:
    """A finished chunk: its rows and the worker time it took."""

    chunk: Chunk
    rows: list[dict]
    seconds: float


def seed_groups(trials: Sequence[Trial], max_group: int) -> list[list[Trial]]:
    """The seed groups of ``trials``: those of one grid point (equal ``group_key``), grid
    points in order of first appearance, in runs of at most ``max_group`` trials."""
    by_point: dict[str, list[Trial]] = {}
    for trial in trials:
        by_point.setdefault(group_key(trial), []).append(trial)
    return [group[i:i + max_group] for group in by_point.values()
            for i in range(0, len(group), max_group)]


@dataclass
class Chunker:
    """Hands out chunks of about ``chunk_seconds`` of work, learning the time per trial.

    With ``group_seeds`` the trials are formed into seed groups once, here (``seed_groups``),
    and a chunk never splits a grid point's seeds across chunks.
    """

    trials: Sequence[Trial]
    chunk_seconds: float
    workers: int
    group_seeds: bool = False
    max_group: int = Experiment.max_group  # the experiment's largest ensemble
    _pending: deque = field(init=False)  # (grid point or None, group)
    _pending_trials: int = field(init=False, default=0)
    _requeued: deque = field(init=False)
    _next_index: int = field(init=False, default=0)
    _done_trials: int = field(init=False, default=0)
    _done_seconds: float = field(init=False, default=0.0)

    def __post_init__(self):
        if self.group_seeds:
            groups = seed_groups(self.trials, self.max_group)
            self._pending = deque((group_key(g[0]), g) for g in groups)
        else:
            self._pending = deque((None, [t]) for t in self.trials)
        self._pending_trials = len(self.trials)
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
            balance = math.ceil(self._pending_trials / (2 * self.workers))
            size = max(1, min(int(target), balance))
        taken: list[list[Trial]] = []
        count = 0
        point = None
        while self._pending and count < size:
            point, group = self._pending.popleft()
            taken.append(group)
            count += len(group)
        # never split a grid point's seeds across chunks (they run as ensembles)
        while point is not None and self._pending and self._pending[0][0] == point:
            group = self._pending.popleft()[1]
            taken.append(group)
            count += len(group)
        self._pending_trials -= count
        return self.make_chunk(taken)

    def make_chunk(self, groups: list[list[Trial]], attempts: int = 0) -> Chunk:
        chunk = Chunk(self._next_index, groups, attempts)
        self._next_index += 1
        return chunk

    def observe(self, done: ChunkDone) -> None:
        self._done_trials += len(done.chunk.trials)
        self._done_seconds += done.seconds

    def requeue(self, chunk: Chunk) -> None:
        """Run ``chunk`` again, first; after repeated failures, trial by trial."""
        if chunk.attempts >= MAX_ATTEMPTS - 1 and len(chunk.trials) > 1:
            for trial in reversed(chunk.trials):
                self._requeued.appendleft(self.make_chunk([[trial]]))
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


def uses_ensembles(experiment: Experiment, spec: Spec) -> bool:
    """Whether the seeds of a grid point run as one device ensemble (the experiment can, and
    the spec's ``[ray] ensembles`` setting allows it)."""
    return experiment.run_group is not None and spec.ray_setting("ensembles")
