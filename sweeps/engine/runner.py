"""The chunk function: runs trials in one process and returns their rows.

One chunk function, ``run_chunk``, runs a list of trials in one process and returns their
rows; every backend (``sweeps.backends``) calls exactly it, so a result never depends on the
backend. Chunks are sized in ``sweeps.chunker``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

from insitu.sweeps.engine.registry import RESERVED_COLUMNS, Experiment, get_experiment
from insitu.sweeps.store.schema import plain_value
from insitu.sweeps.engine.trials import Trial, canonical_json

log = logging.getLogger(__name__)

# The cache entry through which a trial reports how much of its unit (a trial, or a seed
# ensemble) is done: call it with a fraction in [0, 1]. Experiments may ignore it.
PROGRESS_KEY = "insitu.progress"


class ChunkProgress:
    """How much of a chunk a worker has done: whole units, and the current unit's reported
    fraction (:data:`PROGRESS_KEY`)."""

    def __init__(self, units: int):
        self.units, self.done, self.fraction = max(1, units), 0, 0.0

    def report(self, fraction: float) -> None:
        self.fraction = min(max(float(fraction), 0.0), 1.0)

    def next_unit(self) -> None:
        self.done, self.fraction = self.done + 1, 0.0

    @property
    def value(self) -> float:
        """The share of the chunk done, in [0, 1]."""
        return min(1.0, (self.done + self.fraction) / self.units)


# --------------------------------------------------------------------------- chunk function
def run_chunk(experiment: Experiment | str, units: Sequence[Trial | Sequence[Trial]],
              cache: dict, module: str | None = None,
              progress: ChunkProgress | None = None) -> list[dict]:
    """Run ``units`` in order in this process; return all their rows.

    A unit is one trial, or a seed group formed by the chunker (``sweeps.chunker``): trials
    that differ only in their seed, run together as one device ensemble when the experiment
    has ``run_group``; the rows are the same as one by one. If the group fails, its trials
    are rerun one by one so that errors stay per trial.

    Each row holds the trial's fixed columns (``key``, ``stream_key``, ``trial_seed``, ``seed``,
    ``experiment``, ``experiment_version``, ``status``, ``error``, ``mode``,
    ``elapsed_s``), every parameter, and the metrics of one row returned by ``run_trial``.
    A trial that raises (or returns malformed rows) gives one error row instead.

    ``experiment`` is the experiment or its name (and ``module`` the module registering it,
    imported when this process does not know it yet: a Ray worker).
    """
    if isinstance(experiment, str):
        experiment = get_experiment(experiment, module)
    progress = progress or ChunkProgress(len(units))
    cache[PROGRESS_KEY] = progress.report
    rows: list[dict] = []
    try:
        for unit in units:
            group = [unit] if isinstance(unit, Trial) else list(unit)
            if len(group) > 1 and experiment.run_group is not None:
                rows.extend(run_group(experiment, group, cache))
            else:
                for trial in group:
                    rows.extend(run_one(experiment, trial, cache))
            progress.next_unit()
    finally:
        cache.pop(PROGRESS_KEY, None)
    return rows


def group_key(trial: Trial) -> str:
    """Trials with equal keys differ only in their seed and can share an ensemble."""
    return canonical_json(trial.params)


def run_group(experiment: Experiment, group: list[Trial], cache: dict) -> list[dict]:
    """Rows of a seed group run as one ensemble; trial by trial if the group fails."""
    start = time.perf_counter()
    try:
        produced = experiment.run_group(dict(group[0].params), [t.trial_seed for t in group], cache)
        if not isinstance(produced, list) or len(produced) != len(group):
            raise ValueError(f"run_group returned {len(produced) if isinstance(produced, list) else produced!r} "
                             f"results for {len(group)} trials")
        checked = [check_rows(p, experiment) for p in produced]
    except Exception:  # noqa: BLE001 - fall back to per-trial runs, which record their errors
        log.warning("group of %d trials failed; running them one by one", len(group), exc_info=True)
        return [row for trial in group for row in run_one(experiment, trial, cache)]
    elapsed = (time.perf_counter() - start) / len(group)
    rows = []
    for trial, metric_rows in zip(group, checked):
        base = trial_columns(experiment, trial, "ok", None, elapsed)
        rows.extend({**base, **metrics} for metrics in metric_rows)
    return rows


def run_one(experiment: Experiment, trial: Trial, cache: dict) -> list[dict]:
    """The rows of one trial: its modes' metrics, or one error row."""
    start = time.perf_counter()
    try:
        produced = experiment.run_trial(dict(trial.params), trial.trial_seed, cache)
        metric_rows = check_rows(produced, experiment)
        status, error = "ok", None
    except Exception as exc:  # noqa: BLE001 - a failing trial is a result, not a crash
        metric_rows, status, error = [{"mode": None}], "error", one_line(exc)
    base = trial_columns(experiment, trial, status, error, time.perf_counter() - start)
    return [{**base, **metrics} for metrics in metric_rows]


def trial_columns(experiment: Experiment, trial: Trial, status: str, error: str | None,
                  elapsed: float | None) -> dict:
    """The fixed columns and parameters every row of ``trial`` carries."""
    return {
        "key": trial.key,
        "stream_key": trial.stream_key or trial.key,
        "trial_seed": trial.trial_seed,
        "seed": trial.seed,
        "experiment": experiment.name,
        "experiment_version": experiment.version,
        "status": status,
        "error": error,
        "elapsed_s": elapsed,
        **trial.params,
    }


def check_rows(produced: Any, experiment: Experiment) -> list[dict]:
    """Validate ``run_trial``'s return value; metrics converted to plain Python values."""
    if not isinstance(produced, list) or not produced:
        raise ValueError(f"run_trial must return a non-empty list of row dicts, "
                         f"got {type(produced).__name__}")
    rows = []
    for row in produced:
        if not isinstance(row, dict):
            raise ValueError(f"run_trial returned a {type(row).__name__} instead of a row dict")
        mode = row.get("mode")
        if not isinstance(mode, str) or not mode:
            raise ValueError(f"row without a 'mode' string: {mode!r}")
        clean = {"mode": mode}
        for name, value in row.items():
            if name == "mode":
                continue
            if name in RESERVED_COLUMNS or name in experiment.by_name:
                raise ValueError(f"metric name {name!r} collides with a store column")
            try:
                clean[name] = plain_value(value)
            except TypeError as exc:
                raise ValueError(f"metric {name!r}: {exc}") from None
        rows.append(clean)
    return rows


def one_line(exc: BaseException, limit: int = 500) -> str:
    """``Type: message`` on one line, whitespace collapsed, at most ``limit`` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
