"""Execution: the chunk function, chunk sizing, and the serial and Ray backends.

One chunk function, ``run_chunk``, runs a list of trials in one process and returns their
rows; both backends call exactly it, so a result never depends on the backend. The serial
backend calls it in the driver process. The Ray backend keeps a pool of actors (one CPU
each, one BLAS thread each), each with its own per-process cache that lives across
chunks; it keeps a bounded number of chunks queued per actor, hands results back in
completion order, and replaces a dead actor and resubmits its chunks.

Chunks hold about ``chunk_seconds`` of work, estimated from the trials finished so far: the
first chunk on every worker is a single-trial pilot, and chunks shrink towards the end of a
sweep so that the workers finish together.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence


from sweeps.errors import InputError
from sweeps.experiments import RESERVED_COLUMNS, Experiment, get_experiment
from sweeps.schema import plain_value
from sweeps.trials import Trial, canonical_json

# One BLAS thread per worker: the pool already uses every CPU.
BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# A chunk whose worker died this often is split into single trials; a single trial whose
# worker died this often becomes an error row.
MAX_ATTEMPTS = 3
ACTOR_START_TIMEOUT_S = 120.0
ACTOR_GRACE_S = 10.0
# With no actor running (every worker node gone, say), the driver says so after this long,
# and again at this interval, instead of waiting silently.
WAITING_NOTICE_S = 30.0
# Set by Ray in the environment of a driver started as a Ray job.
JOB_DRIVER_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
# Ray's switch between a one-machine Ray (node address: loopback) and a cluster node (node
# address found by routing towards a public resolver). Despite its name it applies on Linux.
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# Ray's notice when a new local cluster turns token authentication on by default.
AUTH_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"
AUTH_NOTICE_PREFIXES = ("Token authentication is enabled for this Ray cluster",)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- chunk function
def run_chunk(experiment_name: str, trials: Sequence[Trial], cache: dict, ensemble: bool = True) -> list[dict]:
    """Run ``trials`` in order in this process; return all their rows.

    Each row holds the trial's fixed columns (``key``, ``trial_seed``, ``seed``,
    ``experiment``, ``experiment_version``, ``status``, ``error``, ``mode``,
    ``elapsed_s``), every parameter, and the metrics of one row returned by ``run_trial``.
    A trial that raises (or returns malformed rows) gives one error row instead.

    With ``ensemble`` and an experiment that has ``run_group``, consecutive trials that
    differ only in their seed run together as one group (a device ensemble); the rows are the
    same as one by one. If the group fails, its trials are rerun one by one so that errors
    stay per trial.
    """
    experiment = get_experiment(experiment_name)
    rows: list[dict] = []
    if experiment.run_group is None or not ensemble:
        for trial in trials:
            rows.extend(run_one(experiment, trial, cache))
        return rows
    for group in seed_groups(trials, experiment.max_group):
        if len(group) == 1:
            rows.extend(run_one(experiment, group[0], cache))
        else:
            rows.extend(run_group(experiment, group, cache))
    return rows


def group_key(trial: Trial) -> str:
    """Trials with equal keys differ only in their seed and can share an ensemble."""
    return canonical_json(trial.params)


def seed_groups(trials: Sequence[Trial], max_group: int) -> list[list[Trial]]:
    """Split ``trials`` into runs of consecutive trials with one group key."""
    groups: list[list[Trial]] = []
    last = None
    for trial in trials:
        key = group_key(trial)
        if groups and key == last and len(groups[-1]) < max_group:
            groups[-1].append(trial)
        else:
            groups.append([trial])
        last = key
    return groups


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


# -------------------------------------------------------------------------------- chunking
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


# ---------------------------------------------------------------------------------- serial
class SerialBackend:
    """Runs every chunk in the driver process, one after another."""

    name = "serial"

    def __init__(self, experiment: Experiment):
        self.experiment = experiment
        self.workers = 1
        self.cache: dict = {}

    def start(self) -> None:
        pass

    def run(self, chunker: Chunker) -> Iterator[ChunkDone]:
        while (chunk := chunker.next_chunk()) is not None:
            rows = run_chunk(self.experiment.name, chunk.trials, self.cache, chunk.ensemble)
            done = ChunkDone(chunk, rows, chunk_seconds_of(rows))
            chunker.observe(done)
            yield done

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------- ray
class ChunkActor:
    """A Ray actor: one worker process with its own cache, running chunks."""

    def __init__(self):
        self.cache: dict = {}

    def ready(self) -> int:
        return os.getpid()

    def run(self, experiment_name: str, trials: list[Trial], ensemble: bool = False) -> list[dict]:
        return run_chunk(experiment_name, trials, self.cache, ensemble)


@dataclass
class _Slot:
    actor: Any
    load: int = 0


class RayBackend:
    """A pool of Ray actors running chunks; see the module docstring.

    Without an address, an embedded Ray is started bound to 127.0.0.1, with no dashboard
    and a small object store, and shut down at ``close``; its node address is the loopback
    address itself (Ray would otherwise replace it by the address that routes towards a
    public resolver), and Ray's notice that it enabled token authentication is dropped
    unless logging is at debug level (``-v``). Ray's own log level follows the ``sweeps``
    logger: errors only under ``-q``, warnings by default, information under ``-v``. With an address (``--address``,
    ``RAY_ADDRESS`` or the spec's ``[ray] address``) the driver attaches to that cluster
    and, unless ``ship_code`` is false or the driver itself runs as a Ray job (whose runtime
    environment already carries the code), ships the ``sweeps`` and ``photonics`` packages
    to its workers through the job's runtime environment (``py_modules``). An already
    initialised Ray (a notebook, a test) is used as it is and left running.
    """

    name = "ray"

    def __init__(self, experiment: Experiment, workers: int = 0, address: str = "",
                 object_store_mb: int = 80, chunks_per_worker: int = 2, ship_code: bool = True):
        self.experiment = experiment
        self.requested_workers = workers
        self.address = address
        self.object_store_mb = object_store_mb
        self.depth = chunks_per_worker
        self.ship_code = ship_code
        self.workers = workers or (os.cpu_count() or 1)
        self._owns_ray = False
        self._slots: dict[Any, _Slot] = {}  # ready actors, by actor handle id
        self._starting: dict[Any, Any] = {}  # ready() ref -> actor
        self._actor_cls = None

    # -- lifecycle
    def start(self) -> None:
        """Connect to (or start) Ray and bring the actor pool up."""
        if not self.address and "ray" not in sys.modules:
            # An embedded Ray is one machine's: its node address is the loopback address,
            # not one found by probing a public resolver (which also logs a warning).
            # Read by Ray once, at import.
            os.environ.setdefault(SINGLE_MACHINE_ENV, "0")
        import ray

        if not ray.is_initialized():
            self._init_ray(ray)
            self._owns_ray = True
        if not self.requested_workers:
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._actor_cls = ray.remote(num_cpus=1, max_restarts=0)(ChunkActor).options(
            runtime_env={"env_vars": dict(BLAS_ENV)})
        for _ in range(self.workers):
            self._spawn()
        # Wait for the whole pool, but not for actors the cluster has no room for: once one
        # is ready, the others get a grace period, then join whenever they start.
        deadline = time.monotonic() + ACTOR_START_TIMEOUT_S
        while self._starting:
            now = time.monotonic()
            if self._slots:
                deadline = min(deadline, now + ACTOR_GRACE_S)
            if now >= deadline:
                break
            self._collect_ready(timeout=deadline - now)
        if not self._slots:
            raise RuntimeError(f"no Ray actor started within {ACTOR_START_TIMEOUT_S:.0f} s "
                               f"(does the cluster have a free CPU?)")

    def _init_ray(self, ray) -> None:
        # Ray's own level follows the sweeps logger (-q: errors only, -v: Ray's info too).
        level = logging.getLogger("sweeps").getEffectiveLevel()
        ray_level = (logging.ERROR if level >= logging.WARNING
                     else logging.INFO if level <= logging.DEBUG else logging.WARNING)
        options: dict[str, Any] = {"logging_level": ray_level, "log_to_driver": True}
        if not self.address and level > logging.DEBUG:
            _quiet_local_ray_notices()
        try:
            if self.address:
                # A driver started by `ray job submit` (or a KubeRay RayJob) already runs
                # in the job's runtime environment, which carries the code.
                in_job = JOB_DRIVER_ENV in os.environ
                ship = self.ship_code and not in_job
                runtime_env = {"py_modules": _shipped_packages()} if ship else None
                ray.init(address=self.address, runtime_env=runtime_env, **options)
            else:
                ray.init(address="local", num_cpus=self.workers, include_dashboard=False,
                         object_store_memory=self.object_store_mb * 1024 * 1024,
                         _node_ip_address="127.0.0.1", **options)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = self.address or "an embedded local Ray"
            raise InputError(f"cannot start Ray ({where}): {one_line(exc)}") from None

    def close(self) -> None:
        """Kill the pool (abandoning any chunk in flight); shut down an embedded Ray."""
        import ray

        for actor in [s.actor for s in self._slots.values()] + list(self._starting.values()):
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already dead
                pass
        self._slots.clear()
        self._starting.clear()
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    # -- actors
    def _spawn(self) -> None:
        actor = self._actor_cls.remote()
        self._starting[actor.ready.remote()] = actor

    def _collect_ready(self, timeout: float) -> None:
        import ray

        done, _ = ray.wait(list(self._starting), num_returns=1, timeout=timeout)
        for ref in done:
            self._on_ready(ref)

    def _on_ready(self, ref) -> None:
        import ray

        actor = self._starting.pop(ref)
        try:
            ray.get(ref)
        except ray.exceptions.RayActorError:
            self._spawn()  # it died while starting: try again
            return
        self._slots[actor._actor_id] = _Slot(actor)

    def _retire(self, actor) -> None:
        """Forget a dead actor and start its replacement.

        The actor is also killed, in case it is only unreachable: none of its queued chunks
        may then complete after being resubmitted elsewhere.
        """
        import ray

        if self._slots.pop(actor._actor_id, None) is not None:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
            self._spawn()

    # -- the loop
    def run(self, chunker: Chunker) -> Iterator[ChunkDone]:
        import ray

        in_flight: dict[Any, tuple[Any, Chunk]] = {}
        idle_since: float | None = None  # since when no actor is running
        noticed = 0.0
        while True:
            self._fill(chunker, in_flight)
            if not in_flight and not chunker.has_work():
                return
            waiting = list(in_flight) + list(self._starting)
            if not waiting:
                raise RuntimeError("every Ray actor died and none could be replaced")
            if self._slots:
                if noticed:
                    log.warning("Ray workers are running again (%d)", len(self._slots))
                idle_since, noticed = None, 0.0
            else:
                now = time.monotonic()
                idle_since = now if idle_since is None else idle_since
                if now - idle_since >= WAITING_NOTICE_S and now - noticed >= WAITING_NOTICE_S:
                    noticed = now
                    log.warning("no Ray worker is running: waiting %.0f s so far for the "
                                "cluster to start %d actors (no free CPU; have its worker "
                                "nodes gone?); Ctrl-C stops, the parts written stay",
                                now - idle_since, len(self._starting))
            done, _ = ray.wait(waiting, num_returns=1, timeout=1.0)
            for ref in done:
                if ref in self._starting:
                    self._on_ready(ref)
                    continue
                actor, chunk = in_flight.pop(ref)
                slot = self._slots.get(actor._actor_id)
                if slot is not None:
                    slot.load -= 1
                try:
                    rows = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                        ray.exceptions.ObjectLostError) as exc:
                    self._retire(actor)
                    lost = self._on_lost(chunker, chunk, exc)
                    if lost is not None:
                        yield lost
                    continue
                except ray.exceptions.RayTaskError as exc:
                    raise RuntimeError(f"a worker failed outside any trial: "
                                       f"{one_line(exc.cause or exc)}") from None
                result = ChunkDone(chunk, rows, chunk_seconds_of(rows))
                chunker.observe(result)
                yield result

    def _fill(self, chunker: Chunker, in_flight: dict) -> None:
        """Queue chunks on ready actors, least loaded first, up to ``depth`` each."""
        while True:
            slots = [s for s in self._slots.values() if s.load < self.depth]
            if not slots:
                return
            slot = min(slots, key=lambda s: s.load)
            chunk = chunker.next_chunk()
            if chunk is None:
                return
            ref = slot.actor.run.remote(self.experiment.name, chunk.trials, chunk.ensemble)
            in_flight[ref] = (slot.actor, chunk)
            slot.load += 1

    def _on_lost(self, chunker: Chunker, chunk: Chunk, exc: Exception) -> ChunkDone | None:
        """A chunk whose worker died: resubmit it, or give up on a single fatal trial."""
        chunk.attempts += 1
        if chunk.attempts >= MAX_ATTEMPTS and len(chunk.trials) == 1:
            reason = (f"worker process died {chunk.attempts} times running this trial "
                      f"({type(exc).__name__})")
            log.warning("giving up on trial %s: %s", chunk.trials[0].key, reason)
            return ChunkDone(chunk, lost_trial_rows(chunk, self.experiment, reason), 0.0)
        log.warning("a Ray worker died (%s); resubmitting chunk %d (%d trials)",
                    type(exc).__name__, chunk.index, len(chunk.trials))
        chunker.requeue(chunk)
        return None


class _DropMessages(logging.Filter):
    """Drops the log records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


def _quiet_local_ray_notices() -> None:
    """Drop Ray's notice that a new local cluster enabled token authentication.

    The embedded Ray keeps Ray's default (token authentication on, token in
    ``~/.ray/auth_token``); the notice says nothing a user of a loopback-only pool must
    act on. Every other warning of Ray still shows.
    """
    logger = logging.getLogger(AUTH_NOTICE_LOGGER)
    if not any(isinstance(f, _DropMessages) for f in logger.filters):
        logger.addFilter(_DropMessages(AUTH_NOTICE_PREFIXES))


def _shipped_packages() -> list:
    """The packages a cluster's workers need: sweeps, and photonics when installed."""
    import sweeps

    modules = [sweeps]
    try:
        import photonics
        modules.append(photonics)
    except ImportError:
        pass
    return modules


def make_backend(name: str, experiment: Experiment, *, workers: int = 0, address: str = "",
                 object_store_mb: int = 80, chunks_per_worker: int = 2,
                 ship_code: bool = True):
    """The backend called ``name`` ("serial" or "ray"), not yet started."""
    if name == "serial":
        return SerialBackend(experiment)
    if name == "ray":
        return RayBackend(experiment, workers, address, object_store_mb, chunks_per_worker,
                          ship_code)
    raise InputError(f"unknown backend {name!r} (choose ray or serial)")
