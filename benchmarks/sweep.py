"""Sweep engine speed: Ray parallel efficiency, per-trial overhead, resume time.

Prints one table. Run it inside a loopback-only network namespace, as the tests:

    sh scripts/netns.sh .venv/bin/python benchmarks/sweep.py [--workers N] [--quick]

- Parallel efficiency: the same grid of busy selftest trials (50 ms and 1 s) run by the
  serial backend and by the Ray backend; efficiency = serial time / (workers x Ray time).
  Both times cover running the trials and writing every part; the Ray pool is started
  (and its start time reported) before the clock starts.
- Per-trial overhead: 10 000 trials that do nothing, per trial of wall time (serial) and of
  worker time (Ray: wall time x workers / trials).
- Resume: a store holding 100 000 finished trials, relaunched with the same spec: reading
  the spec, enumerating the trials, scanning stored keys, finding nothing to do (as
  ``insitu run``, in-process), for a few part layouts; the stores carry the part manifest
  (docs/store.md), and the largest layout is also timed without it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

# The selftest experiment is the tests' (tests/selftest_experiment.py), not the product's:
# the repository root goes on the path (and into the environment, for Ray's workers).
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["INSITU_EXPERIMENT_MODULES"] = "tests.selftest_experiment"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import tests.selftest_experiment  # noqa: E402,F401 (registers selftest)
from insitu.cli import main as insitu  # noqa: E402
from insitu.sweeps.engine.registry import get_experiment  # noqa: E402
from insitu.sweeps.engine.backends import make_backend
from insitu.sweeps.engine.chunker import Chunker
from insitu.sweeps.engine.runner import run_chunk
from insitu.sweeps.engine.spec import parse_spec
from insitu.sweeps.store.paths import MANIFEST_NAME as MANIFEST
from insitu.sweeps.store.parts import PartWriter
from insitu.sweeps.store import Store, new_launch_id
from insitu.sweeps.store.metadata import new_meta
from insitu.sweeps.engine.trials import enumerate_trials

SELFTEST = get_experiment("selftest")


def selftest_spec(trials: int, work_ms: float, busy: bool = True, chunk_seconds: float = 2.0):
    return parse_spec({"name": "bench", "experiment": "selftest", "seeds": trials,
                       "fixed": {"work_ms": work_ms, "busy": busy, "modes": "a"},
                       "ray": {"chunk_seconds": chunk_seconds}})


def timed_sweep(spec, backend_name: str, workers: int) -> tuple[float, float]:
    """(seconds to run and store every trial, seconds to start the backend)."""
    trials = enumerate_trials(spec, SELFTEST)
    with tempfile.TemporaryDirectory() as directory:
        store = Store.create(directory, spec.to_json(), new_meta(SELFTEST.description()))
        writer = PartWriter(store, new_launch_id(), store.metadata()["params"])
        backend = make_backend(backend_name, SELFTEST, workers=workers)
        start = time.perf_counter()
        backend.start()
        started = time.perf_counter() - start
        try:
            start = time.perf_counter()
            chunker = Chunker(trials, spec.ray_setting("chunk_seconds"), backend.workers)
            for done in backend.run(chunker):
                writer.write(done.rows, done.chunk.index)
            return time.perf_counter() - start, started
        finally:
            backend.close()


def build_store(path: Path, trials: int, parts: int) -> Path:
    """A store of ``trials`` finished trivial trials spread over ``parts`` parts."""
    spec = selftest_spec(trials, 0.0, busy=False)
    spec_path = path / "spec.toml"
    spec_path.write_text(spec.to_toml())
    store = Store.create(path / "store", spec.to_json(), new_meta(SELFTEST.description()))
    writer = PartWriter(store, new_launch_id(), store.metadata()["params"])
    everything = enumerate_trials(spec, SELFTEST)
    size = -(-trials // parts)
    cache: dict = {}
    for index in range(parts):
        writer.write(run_chunk("selftest", everything[index * size:(index + 1) * size], cache),
                     index)
    return spec_path


def timed_resume(spec_path: Path, repeats: int = 3, manifest: bool = True) -> float:
    """Best of ``repeats`` resumes; ``manifest=False`` deletes the part manifest before each,
    as for a store written before it existed (every part is read)."""
    best = float("inf")
    for _ in range(repeats):
        if not manifest:
            (spec_path.parent / "store" / MANIFEST).unlink(missing_ok=True)
        out = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out):
            code = insitu(["run", str(spec_path), "--out", str(spec_path.parent / "store"),
                           "--backend", "serial"])
        best = min(best, time.perf_counter() - start)
        assert code == 0 and "nothing to do" in out.getvalue(), out.getvalue()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="smaller grids (a quarter)")
    parser.add_argument("--scale", type=int, default=None,
                        help="divide every grid and store size by this (--quick is 4; the tests' smoke run uses 100)")
    args = parser.parse_args(argv)
    workers = args.workers
    scale = args.scale or (4 if args.quick else 1)
    rows: list[tuple[str, str, str]] = []

    grids = [(max(2, 40 // scale), 50.0, 0.85), (max(2, 8 // scale), 1000.0 / max(1, scale // 4), 0.90)]
    trivial = selftest_spec(10_000 // scale, 0.0, busy=False)
    # Serial first, before Ray's processes exist, so that nothing competes with it; a
    # first small sweep warms up imports and the Parquet writer.
    timed_sweep(selftest_spec(4, 1.0), "serial", 1)
    serial_times = [timed_sweep(selftest_spec(n, ms), "serial", 1)[0] for n, ms, _ in grids]
    serial_trivial, _ = timed_sweep(trivial, "serial", 1)

    import ray

    ray.init(address="local", num_cpus=workers, include_dashboard=False,
             object_store_memory=80 * 1024 * 1024, _node_ip_address="127.0.0.1",
             logging_level="WARNING")
    try:
        for (n, work_ms, target), serial in zip(grids, serial_times):
            parallel, started = timed_sweep(selftest_spec(n, work_ms), "ray", workers)
            efficiency = serial / (workers * parallel)
            rows.append((f"efficiency, {n} x {work_ms:g} ms trials",
                         f"{efficiency:.1%} (serial {serial:.2f} s, ray {parallel:.2f} s, "
                         f"pool start {started:.2f} s)", f">= {target:.0%}"))
        parallel, _ = timed_sweep(trivial, "ray", workers)
    finally:
        ray.shutdown()
    n = trivial.trial_count
    rows.append((f"per-trial overhead, serial ({n} trials)",
                 f"{serial_trivial / n * 1e3:.3f} ms", "< 1 ms"))
    rows.append((f"per-trial overhead, ray ({n} trials)",
                 f"{parallel * workers / n * 1e3:.3f} ms", "< 1 ms"))

    total = 100_000 // scale
    for parts in sorted({1, min(100, total), min(1000, total), 10_000 // scale}):
        with tempfile.TemporaryDirectory() as directory:
            spec_path = build_store(Path(directory), total, parts)
            rows.append((f"resume, {total} trials in {parts} parts",
                         f"{timed_resume(spec_path):.2f} s", "< 2 s"))
            if parts == 10_000 // scale:
                rows.append((f"resume, {total} trials in {parts} parts, no manifest",
                             f"{timed_resume(spec_path, manifest=False):.2f} s",
                             "(first resume of an old store)"))

    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"sweep engine benchmark: {workers} workers, Python {sys.version.split()[0]}")
    print(f"{'measure':<{width}}  {'result':<{value_width}}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
