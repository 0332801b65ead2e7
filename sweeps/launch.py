"""Launches: run a spec's pending trials (or a store's failed ones) into a store.

A launch validates everything it can before writing anything: the spec, the output path,
the change against a store's saved spec, the lock. It starts the backend, then takes the
store lock, records itself in ``launches.jsonl`` and writes one part per finished chunk.
Keys already stored are skipped, so the same command resumes an interrupted sweep.

Ctrl-C (or SIGTERM) stops the launch: no new chunk is submitted, chunks in flight are
abandoned, and the store keeps only whole parts; the exit status is 130.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

from sweeps.errors import StoreError
from sweeps.experiments import Experiment, get_experiment
from sweeps.progress import Progress, format_duration
from sweeps.runner import Chunker, group_key, make_backend, run_group, run_one
from sweeps.spec import Spec, change_problems, load_spec
from sweeps.store import PartWriter, Scan, Store, StoreLock, is_store, new_launch_id
from sweeps.trials import Trial, enumerate_trials

EXIT_INTERRUPTED = 130
MANY_PARTS = 2000  # beyond this, scanning parts dominates the start of a launch
PROGRESS_SECONDS = 30.0  # interval of the plain progress lines when stderr is no terminal


@dataclass
class LaunchOptions:
    """How to run: backend, pool size, cluster address, and whether to only estimate."""

    backend: str = "ray"
    workers: int | None = None
    address: str | None = None
    dry_run: bool = False
    pilot: bool = True  # dry run: time one pilot trial for the estimate
    progress: bool | None = None  # tqdm bar; None: only when stderr is a terminal
    progress_seconds: float = PROGRESS_SECONDS  # plain progress lines when there is no bar
    quiet: bool = False  # no start line, no bar, no progress lines


def run_spec_file(spec_path: str, out: str | None, options: LaunchOptions,
                  stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``insitu run``: run the pending trials of a spec file into its store."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    spec = load_spec(spec_path)
    experiment = get_experiment(spec.experiment)
    store_path = Path(out) if out else Path("results") / spec.name
    existing: Store | None = None
    if is_store(store_path):
        existing = Store.open(store_path)
        stored = existing.spec()
        problems = change_problems(stored, spec)
        if problems and not change_problems(spec, stored):
            # An older, smaller spec: its trials are all among the store's. Run those still
            # pending (usually none) and keep the store's wider spec.
            trials = enumerate_trials(spec, experiment)
            spec = dataclasses.replace(stored, ray=spec.ray)
            return _launch(store_path, existing, spec, experiment, trials, options, "run",
                           stdout, stderr)
        if problems:
            raise StoreError([f"{store_path}: spec change refused: {p} (allowed: adding axis "
                              f"values or seeds, or moving a [fixed] parameter to [grid] with "
                              f"its old value kept; use a new --out)" for p in problems])
    else:
        Store.check_creatable(store_path)
    trials = enumerate_trials(spec, experiment)
    return _launch(store_path, existing, spec, experiment, trials, options, "run",
                   stdout, stderr)


def retry_failed(store_dir: str, options: LaunchOptions,
                 stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``insitu retry-failed``: rerun the trials whose newest rows are errors."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    store = Store.open(store_dir)
    spec = store.spec()
    experiment = get_experiment(spec.experiment)
    rows = store.latest_rows(["key", "status"])
    failed = {k for k, s in zip(rows.column("key").to_pylist(),
                                rows.column("status").to_pylist()) if s == "error"}
    trials = [t for t in enumerate_trials(spec, experiment) if t.key in failed]
    if not trials:
        print(f"{store.path}: no failed trials", file=stdout)
        return 0
    return _launch(store.path, store, spec, experiment, trials, options, "retry-failed",
                   stdout, stderr, rerun=True)


def _launch(store_path: Path, existing: Store | None, spec: Spec, experiment: Experiment,
            trials: list[Trial], options: LaunchOptions, command: str,
            stdout: TextIO, stderr: TextIO, rerun: bool = False) -> int:
    launch_id = new_launch_id()
    if existing is not None:
        StoreLock(existing.path / ".lock", launch_id).check_free()
        scan = existing.scan()
    else:
        scan = Scan(set(), {}, 0)
    pending = trials if rerun else [t for t in trials if t.key not in scan.keys]
    workers = _workers(options, spec)

    if options.dry_run:
        _dry_run(spec, experiment, trials, pending, workers, options, stdout)
        return 0
    if not pending:
        if existing is not None and scan.unindexed:
            _index_if_free(existing, scan, launch_id)
        print(f"{store_path}: nothing to do, all {len(trials)} trials are stored", file=stdout)
        return 0

    address = _address(options, spec)
    backend = make_backend(options.backend, experiment, workers=workers, address=address,
                           object_store_mb=spec.ray_setting("object_store_mb"),
                           chunks_per_worker=spec.ray_setting("chunks_per_worker"),
                           ship_code=spec.ray_setting("ship_code"))
    try:
        backend.start()
    except BaseException:
        backend.close()
        raise
    # After the backend: ray.init installs its own SIGTERM handler.
    with _interrupts_raise():
        store_path.mkdir(parents=True, exist_ok=True)
        lock = StoreLock(store_path / ".lock", launch_id)
        try:
            lock.acquire()
        except BaseException:
            backend.close()
            raise
        try:
            store = existing or Store.create(store_path, spec, experiment)
            if existing is not None and not rerun:
                store.write_spec(spec)
            for temp in store.temp_paths():  # left by a killed launch; we hold the lock
                temp.unlink(missing_ok=True)
            _index_unindexed(store, scan)
            store.append_launch({
                "launch_id": launch_id, "command": command,
                "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
                "host": socket.gethostname(), "pid": os.getpid(), "backend": backend.name,
                "workers": backend.workers, "address": address or None,
                "trials": len(pending)})
            writer = PartWriter(store, launch_id, experiment, scan.column_types)
            return _drive(backend, writer, pending, spec, store_path, options, stdout, stderr,
                          parts_before=scan.parts, total=len(trials))
        finally:
            backend.close()
            lock.release()


def _index_if_free(store: Store, scan: Scan, launch_id: str) -> None:
    """Index the parts ``scan`` read when the store is free; never fail the command for it."""
    try:
        with StoreLock(store.path / ".lock", launch_id):
            _index_unindexed(store, scan)
    except (StoreError, OSError) as exc:
        logging.getLogger(__name__).debug("%s: manifest not updated: %s", store.path, exc)


def _index_unindexed(store: Store, scan: Scan) -> None:
    """Add the parts that ``scan`` had to read to the manifest (the caller holds the lock).

    Only parts still in place with the size read are added: the scan ran before the lock.
    """
    entries = []
    for entry in scan.unindexed:
        try:
            if (store.parts_dir / entry["part"]).stat().st_size == entry["bytes"]:
                entries.append(entry)
        except FileNotFoundError:
            continue
    store.append_manifest(entries)


def _drive(backend, writer: PartWriter, pending: list[Trial], spec: Spec, store_path: Path,
           options: LaunchOptions, stdout: TextIO, stderr: TextIO, parts_before: int = 0,
           total: int | None = None) -> int:
    """The driver loop: write each finished chunk as a part, show progress.

    Progress goes to ``stderr``: a start line (store, trial counts, pool), then the tqdm bar
    on a terminal or a plain line every ``options.progress_seconds`` elsewhere.
    """
    chunker = Chunker(pending, spec.ray_setting("chunk_seconds"), backend.workers,
                      group_seeds=backend.experiment.run_group is not None and spec.ray_setting("ensembles"))
    written: set[str] = set()
    parts = errors = 0
    started = time.monotonic()
    if not options.quiet:
        total = len(pending) if total is None else total
        print(f"insitu: {store_path}: {len(pending)} trials to run ({total - len(pending)} of "
              f"{total} stored) on {backend.workers} {backend.name} worker"
              f"{'s' if backend.workers != 1 else ''}", file=stderr, flush=True)
    bar = Progress(len(pending), stderr, bar=False if options.quiet else options.progress,
                   seconds=None if options.quiet else options.progress_seconds)
    try:
        for done in backend.run(chunker):
            rows = [r for r in done.rows if r["key"] not in written]
            if not rows:
                continue
            with _interrupts_deferred():
                writer.write(rows, done.chunk.index)
            keys = {r["key"] for r in rows}
            written |= keys
            new_errors = len({r["key"] for r in rows if r["status"] == "error"})
            errors += new_errors
            parts += 1
            bar.update(len(keys), new_errors)
    except KeyboardInterrupt:
        bar.close(final=False)
        print(f"insitu: interrupted: {len(written)} of {len(pending)} trials stored in "
              f"{parts} whole parts; run the same command again to resume", file=stderr)
        return EXIT_INTERRUPTED
    bar.close()
    elapsed = time.monotonic() - started
    print(f"{store_path}: {len(written)} trials ({errors} errors) in {parts} parts, "
          f"{elapsed:.1f} s (backend {backend.name}, workers {backend.workers})", file=stdout)
    if parts_before + parts > MANY_PARTS:
        print(f"{store_path} holds {parts_before + parts} parts: `insitu compact {store_path}` "
              f"merges them and makes resuming faster", file=stdout)
    return 0


def _dry_run(spec: Spec, experiment: Experiment, trials: Sequence[Trial],
             pending: Sequence[Trial], workers: int, options: LaunchOptions,
             stdout: TextIO) -> None:
    """Print the trial count and an estimate from a pilot run here; write nothing.

    The pilot is what one worker runs as a unit: one trial, or, when the seeds of a grid
    point run as one device ensemble, the first such group of seeds. The estimate is
    ``t_pilot * ceil(units / pool)``: units are handed out whole, ``pool`` at a time.
    """
    print(f"{spec.name}: {len(trials)} trials ({len(pending)} pending) of experiment "
          f"{experiment.name} v{experiment.version}", file=stdout)
    if not pending or not options.pilot:
        return
    grouped = experiment.run_group is not None and spec.ray_setting("ensembles")
    units = _work_units(pending, experiment.max_group) if grouped else [[t] for t in pending]
    pilot = units[0]
    start = time.perf_counter()
    rows = run_one(experiment, pilot[0], {}) if len(pilot) == 1 else run_group(experiment, pilot, {})
    seconds = time.perf_counter() - start
    failed = next((r for r in rows if r["status"] != "ok"), None)
    status = "" if failed is None else f" (the pilot failed: {failed['error']})"
    if len(pilot) > 1:
        what, unit = f"pilot: one device ensemble of {len(pilot)} seeds", "ensemble"
    else:
        what, unit = "pilot trial", "trial"
    if options.backend == "serial":
        pool, where = 1, "on 1 worker (serial)"
    elif workers:
        pool, where = workers, f"on {workers} worker{'s' if workers != 1 else ''}"
    elif _address(options, spec):
        pool, where = 1, "of worker time (divide by the cluster's CPUs; --workers N to say)"
    else:
        pool = os.cpu_count() or 1
        where = f"on {pool} worker{'s' if pool != 1 else ''} (one per CPU)"
    estimate = seconds * math.ceil(len(units) / pool)
    print(f"{what}: {seconds:.3g} s{status}; {len(units)} {unit}"
          f"{'s' if len(units) != 1 else ''} to run: estimated {format_duration(estimate)} "
          f"{where}, plus the start of the pool", file=stdout)


def _work_units(trials: Sequence[Trial], max_group: int) -> list[list[Trial]]:
    """The seed groups a launch runs as ensembles: trials of one grid point, in runs of at
    most ``max_group`` (as the chunker and the chunk function form them)."""
    by_point: dict[str, list[Trial]] = {}
    for trial in trials:
        by_point.setdefault(group_key(trial), []).append(trial)
    return [group[i:i + max_group] for group in by_point.values()
            for i in range(0, len(group), max_group)]


def _address(options: LaunchOptions, spec: Spec) -> str:
    return options.address or spec.ray_setting("address") or os.environ.get("RAY_ADDRESS", "")


def _workers(options: LaunchOptions, spec: Spec) -> int:
    """The requested pool size; 0: decided when the backend starts (every CPU)."""
    if options.backend == "serial":
        return 1
    return options.workers or spec.ray_setting("workers") or 0


# ------------------------------------------------------------------------------ interrupts
_deferred = threading.local()


@contextlib.contextmanager
def _interrupts_raise():
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
def _interrupts_deferred():
    """Hold an interrupt until the block (a part write) is done, then raise it."""
    _deferred.active, _deferred.pending = True, False
    try:
        yield
    finally:
        _deferred.active = False
        if _deferred.pending:
            _deferred.pending = False
            raise KeyboardInterrupt
