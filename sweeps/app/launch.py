"""Launches: run a spec's pending trials (or a store's failed ones) into a store.

A launch validates everything it can before writing anything: the spec, the output path,
the worker count and cluster address. It then takes the store lock, reads the store and
picks the pending trials under it (so two overlapping launches never compute a trial
twice), starts the backend, records itself in ``launches.jsonl``, writes one part per
finished chunk and, at the end, records how it ended (completed, interrupted, disk full,
failed). Keys already stored are skipped, so the same command resumes an interrupted sweep.
A full disk ends the launch with one line and exit status 1; the parts written stay.

Ctrl-C (or SIGTERM) stops the launch: no new chunk is submitted, chunks in flight are
abandoned, and the store keeps only whole parts; the exit status is 130.

A dry run (``--dry-run``) counts the trials and, unless ``--no-pilot``, runs a pilot on
the backend whose trials it keeps in the store, then estimates the rest
(:mod:`insitu.sweeps.app.dry_run`); ``--dry-run --no-pilot`` writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from insitu.sweeps.app.dry_run import FixedChunks, count_line, estimate_text, pilot_units, print_lines
from insitu.sweeps.app.interrupts import interrupts_deferred, interrupts_raise
from insitu.sweeps.app.options import LaunchOptions, Pool
from insitu.sweeps.app.progress import Progress
from insitu.sweeps.app.provenance import launch_provenance
from insitu.sweeps.engine.backends import make_backend
from insitu.sweeps.engine.chunker import Chunker, Waiting, uses_ensembles
from insitu.sweeps.engine.registry import Experiment, get_experiment
from insitu.sweeps.engine.spec import Spec, change_problems, load_spec, spec_from_json
from insitu.sweeps.engine.trials import Trial, enumerate_trials
from insitu.sweeps.store import Scan, Store, StoreError, StorePaths, is_store, new_launch_id, read_rows
from insitu.sweeps.store.fsutil import is_disk_full
from insitu.sweeps.store.lock import StoreLock
from insitu.sweeps.store.metadata import new_meta
from insitu.sweeps.store.parts import PartWriter

EXIT_INTERRUPTED = 130
EXIT_FAILED = 1
EXIT_TRIAL_ERRORS = 3  # the launch completed, but some trials ended in an error row
MANY_PARTS = 2000  # beyond this, scanning parts dominates the start of a launch


def run_spec_file(spec_path: str, out: str | None, options: LaunchOptions,
                  stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``insitu run``: run the pending trials of a spec file into its store.

    A spec with ``[precision]`` runs in two stages (:func:`run_two_stages`)."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    spec = load_spec(spec_path, options.overrides)
    store_path = Path(out) if out else Path("results") / spec.name
    Store.check_writable(store_path)
    if not is_store(store_path):
        Store.check_creatable(store_path)
    if spec.precision is not None:
        return run_two_stages(spec, store_path, options, stdout, stderr)
    return _run_spec(spec, store_path, options, stdout, stderr)


def _run_spec(spec: Spec, store_path: Path, options: LaunchOptions, stdout: TextIO,
              stderr: TextIO) -> int:
    experiment = get_experiment(spec.experiment)

    def select(existing: Store | None, scan: Scan):
        record: Spec | None = spec
        if existing is not None:
            check_declarations(existing, experiment)
            stored = spec_from_json(existing.spec_json(), source=str(existing.paths.spec_json))
            problems = change_problems(stored, spec)
            if problems and not change_problems(spec, stored):
                # An older, smaller spec: its trials are all among the store's. Run those
                # still pending (usually none) and keep the store's wider spec.
                record = None
            elif problems:
                raise StoreError([f"{store_path}: spec change refused: {p} (allowed: adding axis "
                                  f"values or seeds, or moving a [fixed] parameter to [grid] with "
                                  f"its old value kept; use a new --out)" for p in problems])
        trials = enumerate_trials(spec, experiment)
        return trials, [t for t in trials if t.key not in scan.keys], record

    return _launch(store_path, spec, experiment, select, options, "run", stdout, stderr)


def check_declarations(store: Store, experiment: Experiment) -> None:
    """Refuse to extend a store whose experiment changed under the same version.

    Keys hash the parameters as this installation declares them, and readers judge rows by
    the defaults ``store.json`` recorded: a default changed, or a parameter added to (or
    removed from) the experiment without a new version and without being left out of keys
    at its default, would mix results under keys that no longer mean what they meant. One
    line per parameter, naming both defaults.
    """
    meta = store.metadata()
    if meta.get("experiment_version") != experiment.version or "defaults" not in meta:
        return  # another version is refused by the spec check; very old stores hold no defaults
    recorded, current = meta["defaults"], experiment.defaults()
    omitted = set(meta.get("omit_at_default") or ()) | set(experiment.omit_at_default)
    problems = []
    for name, value in current.items():
        if name in recorded and recorded[name] != value:
            problems.append(f"{store.path}: parameter {name!r}: its default is {value!r} here but "
                            f"{recorded[name]!r} in the store, under the same experiment version "
                            f"{experiment.version!r}: bump the experiment's version, or use a new --out")
        elif name not in recorded and name not in omitted:
            problems.append(f"{store.path}: parameter {name!r} was added to {experiment.name!r} "
                            f"without a new version and without being left out of keys at its "
                            f"default: bump the version, or declare it omit_at_default")
    for name in recorded.keys() - current.keys():
        problems.append(f"{store.path}: parameter {name!r} of the store is no longer declared by "
                        f"{experiment.name!r} version {experiment.version!r}: bump the version")
    if problems:
        raise StoreError(problems)


def run_two_stages(spec: Spec, store_path: Path, options: LaunchOptions, stdout: TextIO,
                   stderr: TextIO) -> int:
    """A spec sized to a precision, in two fixed stages (Stein; the rule and why it is
    fixed: :mod:`insitu.analysis.precision`): stage 1 runs the pilot seeds in every cell;
    once every pilot trial is stored, each cell's total is set from its pilot spread and
    recorded in the store's spec (``precision.allocation``), and stage 2 runs the rest. A
    rerun resumes whichever stage is pending; a recorded allocation is never recomputed."""
    stored = _stored_precision(store_path)
    if stored is not None and stored.get("allocation") is not None:
        spec = replace(spec, precision={**spec.precision, "allocation": stored["allocation"]})
    code = _run_spec(spec, store_path, options, stdout, stderr)
    if code != 0 or options.dry_run or spec.precision.get("allocation") is not None:
        return code
    with _store_lock(store_path, new_launch_id()):
        allocation, lines = allocate_two_stages(store_path, spec)
        spec = replace(spec, precision={**spec.precision, "allocation": allocation})
        Store.open(store_path).write_spec(spec.to_json())
    for line in lines:
        print(line, file=stdout)
    return _run_spec(spec, store_path, options, stdout, stderr)


def _stored_precision(store_path: Path) -> dict | None:
    if not is_store(store_path):
        return None
    return Store.open(store_path).spec_json().get("precision")


def allocate_two_stages(store_path: Path, spec: Spec) -> tuple[list[dict], list[str]]:
    """Each cell's seeds from its pilot (``insitu.analysis.precision.stein_seeds``, capped
    at the spec's seeds), and lines saying so; ``StoreError`` while pilot trials failed."""
    from insitu.analysis.load import read_store  # the driver only: workers never load pandas
    from insitu.analysis.precision import stein_seeds

    design = spec.precision
    store = read_store(store_path)
    if store.n_trials_error:
        raise StoreError(f"{store_path}: {store.n_trials_error} pilot trials ended in an error; "
                         f"`insitu retry-failed {store_path}`, then run the spec again for stage 2")
    rows = store.rows[store.rows["seed"].isin(spec.seeds[: design["pilot_seeds"]])]
    metric, h, cap = design["metric"], design["half_width"], len(spec.seeds)
    axes = list(spec.grid)
    allocation, capped = [], 0
    for point in _grid_points(spec):
        part = rows
        for axis in axes:
            part = part[part[axis] == point[axis]]
        if design.get("contrast"):
            a, b = design["contrast"].split("-")
            wide = part.pivot_table(index="key", columns="mode", values=metric)
            samples = [(wide[a] - wide[b]).to_numpy()] if {a, b} <= set(wide.columns) else []
        else:
            samples = [g[metric].to_numpy(dtype=float) for _, g in part.groupby("mode")]
        wanted = [stein_seeds(x, h) for x in samples if (x == x).sum() >= 2]
        n = min(cap, max(wanted)) if wanted else cap
        capped += bool(wanted) and max(wanted) > cap
        allocation.append({"cell": point, "seeds": int(max(n, design["pilot_seeds"]))})
    total = sum(a["seeds"] for a in allocation)
    pilot = design["pilot_seeds"] * len(allocation)
    lines = [f"{store_path}: stage 1 done ({design['pilot_seeds']} pilot seeds in each of "
             f"{len(allocation)} cells); stage 2 adds {total - pilot} trials for a 95 % interval of "
             f"half-width {h:g} on {design.get('contrast') or 'each mode'} ({metric}); seeds per cell "
             f"{min(a['seeds'] for a in allocation)}-{max(a['seeds'] for a in allocation)}"]
    if capped:
        lines.append(f"{store_path}: {capped} cells asked for more than the spec's {cap} seeds and "
                     f"got {cap}: their intervals will be wider than {h:g}")
    return allocation, lines


def _grid_points(spec: Spec) -> list[dict]:
    import itertools

    axes = list(spec.grid)
    return [dict(zip(axes, point)) for point in itertools.product(*(spec.grid[a] for a in axes))]


def retry_failed(store_dir: str, options: LaunchOptions,
                 stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``insitu retry-failed``: rerun the trials whose newest rows are errors."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    store = Store.open(store_dir)
    Store.check_writable(store.path)
    spec = spec_from_json(store.spec_json(), source=str(store.paths.spec_json))
    experiment = get_experiment(spec.experiment)

    def select(existing: Store | None, scan: Scan):
        check_declarations(store, experiment)
        rows = read_rows(store.path, ["key", "status"]).table
        failed = {k for k, s in zip(rows.column("key").to_pylist(),
                                    rows.column("status").to_pylist()) if s == "error"}
        trials = [t for t in enumerate_trials(spec, experiment) if t.key in failed]
        return trials, trials, None

    return _launch(store.path, spec, experiment, select, options, "retry-failed",
                   stdout, stderr, rerun=True)


@dataclass
class Plan:
    """What a launch runs, read from the store (under its lock, unless a dry run)."""

    store: Store | None  # None: the store does not exist yet
    scan: Scan
    trials: list[Trial]  # every trial of the spec (or the failed ones, for a retry)
    pending: list[Trial]  # those to run
    record: Spec | None  # the spec to record in the store; None keeps the store's


def _launch(store_path: Path, spec: Spec, experiment: Experiment, select,
            options: LaunchOptions, command: str, stdout: TextIO, stderr: TextIO,
            rerun: bool = False) -> int:
    """Run the trials ``select(store or None, scan)`` picks, as (all, pending, spec to
    record in the store, or None to keep the store's).

    One pass through the stages, in order: check the input (worker count, cluster
    address), take the store lock, plan the pending trials from the store, start the
    backend, open the launch (create or extend the store, record the launch), execute the
    chunks and write their parts, close the launch. The lock is taken before the store is
    read and before the backend starts, so two overlapping launches never both compute a
    trial: the second is refused, or finds the trials stored.
    """
    launch_id = new_launch_id()
    pool = Pool.of(options, spec)
    if options.dry_run and not options.pilot:
        plan = _plan(store_path, select)
        print(count_line(spec, experiment, plan.trials, plan.pending), file=stdout)
        return 0
    pool.check(options.force)
    with _store_lock(store_path, launch_id):
        plan = _plan(store_path, select)
        if options.dry_run:
            print(count_line(spec, experiment, plan.trials, plan.pending), file=stdout)
            if not plan.pending:
                return 0
        elif not plan.pending:
            _nothing_to_do(store_path, plan, rerun, stdout)
            return 0
        backend = make_backend(pool.backend, experiment, workers=pool.workers, address=pool.address,
                               object_store_mb=spec.ray_setting("object_store_mb"),
                               chunks_per_worker=spec.ray_setting("chunks_per_worker"),
                               ship_code=spec.ray_setting("ship_code"),
                               trial_timeout=spec.ray_setting("trial_timeout"))
        try:
            backend.start()
            # After the backend: ray.init installs its own SIGTERM handler.
            with interrupts_raise():
                store = _open_launch(store_path, spec, experiment, plan, launch_id,
                                     "pilot" if options.dry_run else command, backend,
                                     pool.address, stderr, options.record())
                if store is None:
                    return EXIT_FAILED
                writer = PartWriter(store, launch_id, store.metadata()["params"],
                                    plan.scan.column_types)
                if options.dry_run:
                    return _pilot(backend, writer, spec, experiment, plan, pool, stdout)
                return _drive(backend, writer, plan.pending, spec, store_path, options,
                              stdout, stderr, parts_before=plan.scan.parts,
                              total=len(plan.trials))
        finally:
            backend.close()


def _pilot(backend, writer: PartWriter, spec: Spec, experiment: Experiment, plan: Plan,
           pool: Pool, stdout: TextIO) -> int:
    """The dry run's pilot (:mod:`insitu.sweeps.app.dry_run`): run on the backend, its
    trials kept in the store, then the estimate for what remains."""
    units = pilot_units(spec, experiment, plan.pending)
    done: dict[int, list[dict]] = {}
    seconds: dict[int, float] = {}
    for event in backend.run(FixedChunks(units, backend.workers)):
        if isinstance(event, Waiting):
            continue
        done[event.chunk.index], seconds[event.chunk.index] = event.rows, event.seconds
    times = [seconds.get(i, 0.0) for i in range(len(units))]
    kept_keys = set()
    for i, unit in enumerate(units):
        new = {t.key for t in unit} - kept_keys
        rows = [r for r in done.get(i, []) if r["key"] in new]
        if rows:
            writer.write(rows, i)
            kept_keys |= {r["key"] for r in rows}
    _end_launch(writer, "completed", len(kept_keys))
    failed = next((r["error"] for rows in done.values() for r in rows if r["status"] != "ok"), None)
    left = [t for t in plan.pending if t.key not in kept_keys]
    print_lines(estimate_text(spec, experiment, left, pool, times, len(kept_keys),
                              failed), stdout)
    return 0


@contextlib.contextmanager
def _store_lock(store_path: Path, launch_id: str):
    """Hold the store's lock (creating the store's directory and parents first).

    On the way out, still under the lock, the layout of a store whose creation failed is
    removed; then the lock is released and the directories this launch created are
    removed where they are empty.
    """
    created = _make_dirs(store_path)
    lock = StoreLock(StorePaths(store_path).lock, launch_id)
    try:
        lock.acquire()
        if not is_store(store_path):
            Store(store_path).remove_creation_debris()  # what a creation that died left
    except BaseException:
        _remove_dirs(created)
        raise
    try:
        try:
            yield
        finally:
            if not is_store(store_path):
                Store(store_path).remove_creation_debris()  # a failed create; still under the lock
    finally:
        lock.release()
        _remove_dirs(created)


def _plan(store_path: Path, select) -> Plan:
    """Read the store (if any) and let ``select`` pick the trials to run."""
    existing = Store.open(store_path) if is_store(store_path) else None
    scan = existing.scan() if existing is not None else Scan(set(), {}, 0)
    trials, pending, record = select(existing, scan)
    return Plan(existing, scan, trials, pending, record)


def _nothing_to_do(store_path: Path, plan: Plan, rerun: bool, stdout: TextIO) -> None:
    if plan.store is not None and plan.scan.unindexed:
        _index_quietly(plan.store, plan.scan)
    if rerun:
        print(f"{store_path}: no failed trials", file=stdout)
    else:
        print(f"{store_path}: nothing to do, all {len(plan.trials)} trials are stored",
              file=stdout)


def _open_launch(store_path: Path, spec: Spec, experiment: Experiment, plan: Plan,
                 launch_id: str, command: str, backend, address: str,
                 stderr: TextIO, labels: dict | None = None) -> Store | None:
    """Create the store (or record the extended spec in it), clear what a killed launch
    left, index the parts the plan read, and record the launch with its provenance
    (:mod:`insitu.sweeps.app.provenance`) and ``labels`` (note, tags, overrides); None on
    a full disk (said in one line on ``stderr``)."""
    provenance = launch_provenance()
    try:
        store = plan.store or Store.create(
            store_path, spec.to_json(),
            new_meta(experiment.description(), created_by={"launch_id": launch_id, **provenance}))
        if plan.store is not None:
            store.update_meta(experiment.description())
            if plan.record is not None:
                store.write_spec(plan.record.to_json())
        for temp in store.temp_paths():  # left by a killed launch; we hold the lock
            temp.unlink(missing_ok=True)
        _index_unindexed(store, plan.scan)
        store.append_launch({
            "launch_id": launch_id, "command": command,
            "started": _now(), "host": socket.gethostname(), "pid": os.getpid(),
            "backend": backend.name, "workers": backend.workers,
            "address": address or None, "trials": len(plan.pending),
            **provenance, **(labels or {})})
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        _disk_full(store_path, exc, 0, len(plan.pending), 0, stderr)
        return None
    return store


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _make_dirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; returns the directories created, deepest last."""
    missing = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def _remove_dirs(created: list[Path]) -> None:
    """A launch that stored nothing leaves no directory behind it (nor an empty results/):
    the directories it created, deepest first, where they are empty."""
    for directory in reversed(created):
        try:
            directory.rmdir()
        except OSError:
            pass


def _index_quietly(store: Store, scan: Scan) -> None:
    """Index the parts ``scan`` read (under the lock); never fail the command for it."""
    try:
        _index_unindexed(store, scan)
    except OSError as exc:
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
                      group_seeds=uses_ensembles(backend.experiment, spec),
                      max_group=backend.experiment.max_group)
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
            if isinstance(done, Waiting):
                bar.waiting(done)
                continue
            rows = [r for r in done.rows if r["key"] not in written]
            if not rows:
                continue
            with interrupts_deferred():
                writer.write(rows, done.chunk.index)
            keys = {r["key"] for r in rows}
            written |= keys
            parts += 1
            new_errors = len(writer.error_keys) - errors  # counted from the rows as written
            errors += new_errors
            bar.update(len(keys), new_errors)
    except KeyboardInterrupt:
        bar.close(final=False)
        _end_launch(writer, "interrupted", len(written))
        print(f"insitu: interrupted: {len(written)} of {len(pending)} trials stored in "
              f"{parts} whole parts; run the same command again to resume", file=stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        bar.close()
        if not is_disk_full(exc):
            _end_launch(writer, "failed", len(written))
            raise
        _end_launch(writer, "disk full", len(written))
        _disk_full(store_path, exc, len(written), len(pending), parts, stderr)
        return EXIT_FAILED
    except BaseException:
        bar.close()
        _end_launch(writer, "failed", len(written))
        raise
    bar.close()
    # Every part is written: let go of Ray now, so that a cluster whose head dies later
    # cannot end this driver (Ray would, about a minute after losing its GCS).
    backend.close()
    _end_launch(writer, "completed", len(written))
    errors = len(writer.error_keys)
    elapsed = time.monotonic() - started
    print(f"{store_path}: {len(written)} trials ({errors} errors) in {parts} parts, "
          f"{elapsed:.1f} s (backend {backend.name}, workers {backend.workers})", file=stdout)
    if parts_before + parts > MANY_PARTS:
        print(f"{store_path} holds {parts_before + parts} parts: `insitu compact {store_path}` "
              f"merges them and makes resuming faster", file=stdout)
    if errors:
        print(f"insitu: {errors} trials ended in an error (`insitu summary {store_path}` groups "
              f"their messages; `insitu retry-failed {store_path}` reruns them)", file=stderr)
        return EXIT_TRIAL_ERRORS
    return 0


def _end_launch(writer: PartWriter, outcome: str, stored: int) -> None:
    """Close the launch's record in ``launches.jsonl``: how it ended, what it stored."""
    try:
        writer.store.append_launch({"launch_id": writer.launch_id, "ended": _now(),
                                    "outcome": outcome, "stored": stored,
                                    "errors": len(writer.error_keys)})
    except OSError as exc:  # a full disk: the parts are the truth, the record only a note
        logging.getLogger(__name__).debug("%s: launch end not recorded: %s",
                                          writer.store.path, exc)


def _disk_full(store_path: Path, exc: OSError, stored: int, pending: int, parts: int,
               stderr: TextIO) -> None:
    print(f"insitu: {store_path}: {exc.strerror or 'no space left'}: {stored} of {pending} "
          f"trials stored in {parts} whole parts; free space and run again", file=stderr)
