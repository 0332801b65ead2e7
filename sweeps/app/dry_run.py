"""The dry run of a launch (``insitu run --dry-run``): the trial count and a time estimate.

``--dry-run --no-pilot`` validates, counts and writes nothing. ``--dry-run`` also times a
pilot on the backend the sweep would use (with its trial timeout), and keeps the pilot's
trials in the store, so their time is not spent twice: one trial alone, and, where the
seeds of a grid point run as one device ensemble, that trial's seed with one more as an
ensemble of two (whose second seed is kept). Ensembles cost far less than their seed
count times one trial, so an ensemble of ``k`` seeds is estimated from the two as
``t(k) = t(1) + (t(2) − t(1)) (k − 1)``; the estimate hands every pending unit out whole,
one per worker at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence, TextIO

from insitu.sweeps.app.progress import format_duration
from insitu.sweeps.engine.chunker import Chunk, ChunkDone, seed_groups, uses_ensembles
from insitu.sweeps.engine.registry import Experiment
from insitu.sweeps.engine.spec import Spec
from insitu.sweeps.engine.trials import Trial

if TYPE_CHECKING:
    from insitu.sweeps.app.options import Pool


def pilot_units(spec: Spec, experiment: Experiment, pending: Sequence[Trial]) -> list[list[Trial]]:
    """The pilot: the first pending trial alone, and, with ensembles, it and the next seed
    of its grid point as one ensemble of two."""
    if not pending:
        return []
    units = seed_groups(pending, experiment.max_group) if uses_ensembles(experiment, spec) else [[pending[0]]]
    first = units[0]
    return [[first[0]], first[:2]] if len(first) > 1 else [[first[0]]]


@dataclass
class FixedChunks:
    """A chunker over given units, one chunk each, in order (the pilot's)."""

    units: list[list[Trial]]
    workers: int = 1
    _queue: list = field(default_factory=list)
    _index: int = 0
    seconds_per_trial: float | None = None

    def __post_init__(self):
        self._queue = [self.make_chunk([unit]) for unit in self.units]

    def has_work(self) -> bool:
        return bool(self._queue)

    def next_chunk(self) -> Chunk | None:
        return self._queue.pop(0) if self._queue else None

    def make_chunk(self, groups, attempts: int = 0) -> Chunk:
        chunk = Chunk(self._index, groups, attempts)
        self._index += 1
        return chunk

    def observe(self, done: ChunkDone) -> None:
        pass

    def requeue(self, chunk: Chunk) -> None:
        self._queue.insert(0, chunk)


def estimate_text(spec: Spec, experiment: Experiment, pending: Sequence[Trial], pool: Pool,
                  times: Sequence[float],
                  kept: int, failure: str | None) -> list[str]:
    """The estimate's lines: the pilot's times, and the pending units' total over the pool."""
    grouped = uses_ensembles(experiment, spec)
    units = seed_groups(pending, experiment.max_group) if grouped else [[t] for t in pending]
    t1 = times[0]
    slope = max(0.0, times[1] - t1) if len(times) > 1 else t1
    costs = [t1 + slope * (len(u) - 1) for u in units]
    workers, where = pool.for_estimate()
    total = max(sum(costs) / workers, max(costs, default=0.0))
    what = f"pilot: one trial {t1:.3g} s"
    if len(times) > 1:
        what += f", an ensemble of 2 seeds {times[1]:.3g} s"
    what += f" ({kept} trials kept in the store)"
    if failure:
        what += f"; the pilot failed: {failure}"
    unit = "ensemble" if grouped else "trial"
    return [what, f"{len(units)} {unit}{'s' if len(units) != 1 else ''} to run: estimated "
                  f"{format_duration(total)} {where}, plus the start of the pool"]


def count_line(spec: Spec, experiment: Experiment, trials: Sequence[Trial],
               pending: Sequence[Trial]) -> str:
    return (f"{spec.name}: {len(trials)} trials ({len(pending)} pending) of experiment "
            f"{experiment.name} v{experiment.version}")


def print_lines(lines: Sequence[str], stdout: TextIO) -> None:
    for line in lines:
        print(line, file=stdout)


__all__ = ["FixedChunks", "count_line", "estimate_text", "pilot_units", "print_lines"]
