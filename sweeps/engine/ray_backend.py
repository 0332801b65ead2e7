"""The Ray backend: a pool of actors (one CPU and one BLAS thread each), each with its own
per-process cache that lives across chunks. It keeps a bounded number of chunks queued per
actor (``queue_depth``), hands results back in completion order, and replaces a dead actor
and resubmits its chunks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from insitu.sweeps.engine.chunker import (MAX_ATTEMPTS, Chunk, ChunkDone, Chunker, Waiting, chunk_seconds_of,
                                          lost_trial_rows)
from insitu.errors import InputError
from insitu.sweeps.engine.registry import Experiment
from insitu.sweeps.engine.runner import ChunkProgress, one_line, run_chunk
from insitu.sweeps.engine.trials import Trial
from insitu.sweeps.engine.workers import pool_workers

log = logging.getLogger(__name__)

# One BLAS thread per worker: the pool already uses every CPU.
BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


ACTOR_START_TIMEOUT_S = 120.0
ACTOR_GRACE_S = 10.0
WAITING_EVERY_S = 5.0  # a run yields a Waiting this often while no chunk finishes
RUNTIME_ENV_ATTEMPTS = 3  # actors that fail to set up their runtime environment before giving up


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


class ChunkActor:
    """A Ray actor: one worker process with its own cache, running chunks."""

    def __init__(self):
        self.cache: dict = {}
        self.progress: ChunkProgress | None = None

    def ready(self) -> int:
        return os.getpid()

    def run(self, experiment: tuple[str, str], groups: list[list[Trial]]) -> list[dict]:
        """Run a chunk of the experiment ``(name, registering module)``."""
        self.progress = ChunkProgress(len(groups))
        try:
            return run_chunk(experiment[0], groups, self.cache, module=experiment[1],
                             progress=self.progress)
        finally:
            self.progress = None

    def share_done(self) -> float | None:
        """The share of the running chunk done (answered while ``run`` works: the actor
        runs two calls at once), or None when idle."""
        progress = self.progress
        return None if progress is None else progress.value


@dataclass
class _Slot:
    """A ready actor and the chunks queued on it, oldest (the one running) first."""

    actor: Any
    pid: int = 0
    queue: list = field(default_factory=list)  # [ref, chunk, started] per queued chunk
    load: int = 0


def lost_worker_errors(ray) -> tuple[type, ...]:
    """The exceptions of a chunk whose worker process is gone: died, killed by Ray's
    out-of-memory monitor, its node lost, its object lost, its disk full. The chunk runs
    again elsewhere."""
    names = ("RayActorError", "WorkerCrashedError", "ObjectLostError", "OutOfMemoryError",
             "OutOfDiskError", "NodeDiedError", "ActorDiedError", "ActorUnavailableError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))


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

    def __init__(self, experiment: Experiment, workers: int | None = None, address: str = "",
                 object_store_mb: int = 80, chunks_per_worker: int = 2, ship_code: bool = True,
                 trial_timeout: float = 0.0):
        self.experiment = experiment
        workers = pool_workers(workers, address)
        self.requested_workers = workers
        self.address = address
        self.object_store_mb = object_store_mb
        self.queue_depth = chunks_per_worker
        self.ship_code = ship_code
        self.workers = workers or 1  # a cluster's CPUs: counted once attached
        self.trial_timeout = float(trial_timeout or 0.0)
        self._owns_ray = False
        self._slots: dict[Any, _Slot] = {}  # ready actors, by actor handle id
        self._starting: dict[Any, Any] = {}  # ready() ref -> actor
        self._actor_cls = None
        self._setup_failures = 0

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
        # two concurrent calls: run() and the progress questions asked while it runs
        self._actor_cls = ray.remote(num_cpus=1, max_restarts=0, max_concurrency=2)(ChunkActor).options(
            runtime_env={"env_vars": dict(BLAS_ENV)})
        for _ in range(self.workers):
            self._spawn()
        # Wait for the whole pool, but not for actors the cluster has no room for: once one
        # is ready, the others get a grace period, then join whenever they start. Say what
        # is awaited while waiting.
        began = time.monotonic()
        deadline, said = began + ACTOR_START_TIMEOUT_S, began
        while self._starting:
            now = time.monotonic()
            if self._slots:
                deadline = min(deadline, now + ACTOR_GRACE_S)
            if now >= deadline:
                break
            if not self._slots and now - said >= WAITING_NOTICE_S:
                said = now
                log.warning("waiting %.0f s so far for the Ray cluster to start %d actors (one CPU "
                            "each): is every CPU taken, by another driver perhaps? --workers N asks "
                            "for fewer", now - began, len(self._starting))
            self._collect_ready(timeout=min(deadline - now, WAITING_NOTICE_S))
        if not self._slots:
            raise InputError(
                f"no Ray actor could start within {ACTOR_START_TIMEOUT_S:.0f} s: the cluster has no "
                f"free CPU for one (by default a driver asks for every CPU of the cluster, so a "
                f"second driver waits for the first); pass --workers N for N actors, or wait")

    def _init_ray(self, ray) -> None:
        # Ray's own level follows the sweeps logger (-q: errors only, -v: Ray's info too).
        level = logging.getLogger("insitu").getEffectiveLevel()
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
                if self.ship_code and not in_job:
                    with _shipped_package() as package:  # uploaded by ray.init
                        ray.init(address=self.address, runtime_env={"py_modules": [package]},
                                 **options)
                else:
                    ray.init(address=self.address, **options)
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
        setup = getattr(ray.exceptions, "RuntimeEnvSetupError", ())
        try:
            pid = ray.get(ref)
        except setup as exc:
            self._setup_failures += 1
            if self._setup_failures >= RUNTIME_ENV_ATTEMPTS:
                raise InputError(f"Ray could not set up the workers' environment "
                                 f"{self._setup_failures} times: {one_line(exc)}") from None
            log.warning("a Ray worker could not set up its environment (%s); trying again",
                        one_line(exc, 200))
            self._spawn()
            return
        except lost_worker_errors(ray):
            self._spawn()  # it died while starting: try again
            return
        self._slots[actor._actor_id] = _Slot(actor, pid)

    def _retire(self, actor, in_flight: dict | None = None) -> None:
        """Forget a dead (or stopped) actor and start its replacement.

        The actor is also killed, in case it is only unreachable: none of its queued chunks
        may then complete after being resubmitted elsewhere. Its other queued chunks stay
        in ``in_flight``: their results arrive as lost-worker errors and run again.
        """
        import ray

        if self._slots.pop(actor._actor_id, None) is not None:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
            self._spawn()

    # -- the loop
    def run(self, chunker: Chunker) -> Iterator[ChunkDone | Waiting]:
        """Finished chunks in completion order; while none finishes, a :class:`Waiting`
        about every ``WAITING_EVERY_S``. A chunk running longer than ``trial_timeout``
        seconds per unit (a trial, or a seed ensemble) is stopped with its worker: split
        into single units and run again elsewhere, or, a single unit, stored as error rows
        saying so."""
        import ray

        in_flight: dict[Any, tuple[Any, Chunk]] = {}
        idle_since: float | None = None  # since when no actor is running
        noticed = 0.0
        last_done = time.monotonic()
        last_waiting = last_done
        lost = lost_worker_errors(ray)
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
                if ref not in in_flight:
                    continue  # a chunk already given up on (timed out)
                actor, chunk = in_flight.pop(ref)
                self._dequeue(actor, ref)
                try:
                    rows = ray.get(ref)
                except lost as exc:
                    self._retire(actor, in_flight)
                    gone = self._on_lost(chunker, chunk, exc)
                    if gone is not None:
                        yield gone
                    continue
                except ray.exceptions.RayTaskError as exc:
                    raise RuntimeError(f"a worker failed outside any trial: "
                                       f"{one_line(exc.cause or exc)}") from None
                result = ChunkDone(chunk, rows, chunk_seconds_of(rows))
                chunker.observe(result)
                last_done = time.monotonic()
                yield result
            yield from self._timeouts(chunker, in_flight)
            now = time.monotonic()
            if now - max(last_done, last_waiting) >= WAITING_EVERY_S:
                last_waiting = now
                yield Waiting(now - last_done, self._running(now), self._partial())

    def _running(self, now: float) -> list[tuple[float, int, int]]:
        return [(now - slot.queue[0][2], slot.pid, len(slot.queue[0][1].trials))
                for slot in self._slots.values() if slot.queue]

    def _partial(self) -> float:
        """Trials of the running chunks done, by the workers' own account (one short
        question to each busy actor; an actor that does not answer in time counts 0)."""
        import ray

        asked = {slot.actor.share_done.remote(): len(slot.queue[0][1].trials)
                 for slot in self._slots.values() if slot.queue}
        if not asked:
            return 0.0
        done, _ = ray.wait(list(asked), num_returns=len(asked), timeout=0.5)
        total = 0.0
        for ref in done:
            try:
                share = ray.get(ref)
            except Exception:  # noqa: BLE001 - a worker going away: no share
                continue
            total += (share or 0.0) * asked[ref]
        return total

    def _dequeue(self, actor, ref) -> None:
        """A chunk of ``actor`` finished (or was given up on): the next queued one starts."""
        slot = self._slots.get(actor._actor_id)
        if slot is None:
            return
        slot.queue = [q for q in slot.queue if q[0] != ref]
        slot.load = len(slot.queue)
        if slot.queue:
            slot.queue[0][2] = time.monotonic()

    def _timeouts(self, chunker: Chunker, in_flight: dict) -> Iterator[ChunkDone]:
        """Stop every chunk that ran longer than its budget (``trial_timeout`` per unit)."""
        if self.trial_timeout <= 0:
            return
        now = time.monotonic()
        for slot in list(self._slots.values()):
            if not slot.queue:
                continue
            ref, chunk, started = slot.queue[0]
            budget = self.trial_timeout * len(chunk.groups)
            if now - started <= budget:
                continue
            log.warning("chunk %d (%d trials) ran %.0f s on pid %d, over its %.0f s "
                        "([ray] trial_timeout %.0f s per unit): stopping its worker",
                        chunk.index, len(chunk.trials), now - started, slot.pid, budget,
                        self.trial_timeout)
            in_flight.pop(ref, None)
            for other_ref, other, _ in slot.queue[1:]:  # queued behind it: run elsewhere as they are
                in_flight.pop(other_ref, None)
                chunker.requeue(other)
            self._retire(slot.actor, in_flight)
            if len(chunk.groups) > 1:  # every unit on its own, elsewhere
                for group in reversed(chunk.groups):
                    chunker.requeue(chunker.make_chunk([group], chunk.attempts))
                continue
            reason = (f"timed out: ran over {self.trial_timeout:g} s ([ray] trial_timeout) "
                      f"and was stopped")
            yield ChunkDone(chunk, lost_trial_rows(chunk, self.experiment, reason), 0.0)

    def _fill(self, chunker: Chunker, in_flight: dict) -> None:
        """Queue chunks on ready actors, least loaded first, up to ``queue_depth`` each."""
        while True:
            slots = [s for s in self._slots.values() if s.load < self.queue_depth]
            if not slots:
                return
            slot = min(slots, key=lambda s: s.load)
            chunk = chunker.next_chunk()
            if chunk is None:
                return
            ref = slot.actor.run.remote((self.experiment.name, self.experiment.module), chunk.groups)
            in_flight[ref] = (slot.actor, chunk)
            slot.queue.append([ref, chunk, time.monotonic()])
            slot.load = len(slot.queue)

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


@contextlib.contextmanager
def _shipped_package():
    """The code a cluster's workers need: the ``insitu`` package, assembled as installed.

    In a source checkout ``insitu.photonics``, ``insitu.sweeps`` and ``insitu.analysis``
    live in folders beside ``insitu/`` (the packaging maps them); Ray ships a package as
    its directory, so the three are copied under one ``insitu`` directory in a temporary
    folder (a few hundred KB, data files included), whose path this yields; the folder is
    removed afterwards.
    """
    import shutil
    import tempfile
    from pathlib import Path

    import insitu
    from insitu import analysis, photonics, sweeps

    with tempfile.TemporaryDirectory(prefix="insitu-ship-") as folder:
        root = Path(folder) / "insitu"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(Path(insitu.__file__).parent, root, ignore=ignore, dirs_exist_ok=True)
        for package in (photonics, sweeps, analysis):
            name = package.__name__.rsplit(".", 1)[1]
            shutil.copytree(Path(package.__file__).parent, root / name, ignore=ignore,
                            dirs_exist_ok=True)
        yield str(root)
