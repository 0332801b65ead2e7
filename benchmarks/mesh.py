"""Speed of the mesh kernels in :mod:`photonics.propagation`, optionally against neuroptica.

What is measured, for every mesh size N (rectangular mesh of depth N, output phase screen
``gamma``, one device sampled from an :class:`~photonics.ErrorModel` with small splitting
error and loss so that the error path of every kernel runs) and one batch of B complex
input fields ``X`` (shape ``(B, N)``):

``dense``
    One dense product ``X @ U.T`` with the device's transfer matrix ``U`` precomputed: the
    floor any forward pass of a batch must pay; every other timing is also printed as a
    multiple of it (``x dense``).
``forward``
    ``propagate(..., taps=False)``: builds ``U`` column by column, then one matmul.
``taps``
    ``propagate(..., taps=True)``: per-sample field propagation that records the field at
    every phase shifter (``2 M + N`` tap fields per sample).
``gradient``
    ``ideal_gradient``: the exact gradient with respect to every actual phase (theta, phi,
    gamma), summed over the batch, for an adjoint field ``G`` of shape ``(B, N)``.

With ``--compare`` the same sizes run through neuroptica (``ClementsLayer(N)``: N columns
of MZIs plus a layer of N single-mode phase shifters, i.e. the same ``N^2`` phases; no error
model, which it lacks). neuroptica stores fields as columns, ``(N, B)``. Timed are:

``nop forward``
    ``ClementsLayer.forward_pass(X)`` (it multiplies the dense per-column matrices into
    ``U``, then ``U @ X``).
``nop fields``
    ``OpticalMesh.compute_phase_shifter_fields(X, use_partial_vectors=True)``: its fastest
    way to get the field at every phase shifter, the counterpart of ``taps``.
``nop grad``
    ``OpticalMesh.compute_gradients(X, G)``, its adjoint-method gradient (forward and adjoint
    fields at every phase shifter, ``-Im(x x_adj)``), with the default dense partial transfer
    matrices and with ``use_partial_vectors=True``. It returns per-sample gradients; the sum
    over the batch is not included in its time (a favour to neuroptica of a few percent).

Speedups are neuroptica's time divided by ours.

How: ``time.perf_counter`` around single calls. Every measurement first makes one untimed
warm-up call, then times up to ``--repeat`` calls, fewer when a call is slow (so that one
measurement takes about ``--budget`` seconds, never fewer than 3 calls), and reports the
median in milliseconds. Inputs, phases and errors come from fixed seeds, so every run times
the same work. BLAS threads are printed (threadpoolctl, if installed) and can be pinned with
``--threads``; on a small or shared machine ``--threads 1`` gives steadier numbers, since a
multithreaded BLAS call that loses a core to another process can take several times longer.

Run from the repository root:

    .venv/bin/python benchmarks/mesh.py [--sizes 4 16 64 128] [--batch 1024] [--repeat 20] [--compare]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere, installed or not
    sys.path.insert(0, str(ROOT))

from insitu.photonics import ErrorModel, ideal_gradient, init_phases, propagate, rectangular, transfer_matrix  # noqa: E402

SEED = 20240611
# Small static errors: splitting error per coupler, insertion loss and arm imbalance.
ERROR_MODEL = ErrorModel(bs_error=0.02, loss_db=0.1, loss_imbalance_db=0.02)
MIN_CALLS = 3
TARGET_N, TARGET_B = 64, 1024


def measure(fn: Callable[[], object], repeat: int, budget_s: float) -> float:
    """Median wall time of ``fn()`` in ms over 3 to ``repeat`` calls after one warm-up."""
    fn()  # warm-up: caches, lazy allocations, first-call overheads
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    n_calls = max(MIN_CALLS, min(repeat, int(budget_s / max(first, 1e-9))))
    times = [first]
    for _ in range(n_calls - 1):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def complex_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2 * shape[-1])


def bench_ours(n: int, batch: int, repeat: int, budget_s: float) -> dict[str, float]:
    """Times of the photonics kernels for one size (ms), plus the dense reference product."""
    rng = np.random.default_rng([SEED, n])
    layout = rectangular(n)
    theta, phi = init_phases(layout, rng)
    gamma = rng.random(n) * 2 * np.pi
    errors = ERROR_MODEL.sample(layout, rng)
    x = complex_normal(rng, (batch, n))
    g = complex_normal(rng, (batch, n))

    u = transfer_matrix(layout, theta, phi, errors, gamma)
    out = {}
    out["dense"] = measure(lambda: x @ u.T, repeat, budget_s)
    out["forward"] = measure(lambda: propagate(layout, theta, phi, x, errors, gamma), repeat, budget_s)
    out["taps"] = measure(lambda: propagate(layout, theta, phi, x, errors, gamma, taps=True), repeat, budget_s)
    out["gradient"] = measure(lambda: ideal_gradient(layout, theta, phi, x, g, errors, gamma), repeat, budget_s)
    return out


def import_neuroptica():
    """Import neuroptica 0.1.0 as installed.

    It imports and runs unpatched on numpy 2.x: it uses no removed numpy alias, and its numba
    kernels are ``@jit`` functions that are compiled lazily and never called on the paths
    timed here. Should a removed alias appear in another version, restore it here (for
    example ``np.complex = complex``) before the import rather than edit neuroptica.
    """
    import neuroptica

    return neuroptica


def bench_neuroptica(neu, n: int, batch: int, repeat: int, budget_s: float) -> dict[str, float]:
    """Times of neuroptica's forward pass, phase-shifter fields and adjoint gradient (ms)."""
    np.random.seed(SEED + n)  # neuroptica draws its random phases from the global numpy state
    layer = neu.ClementsLayer(n)
    mesh = layer.mesh
    rng = np.random.default_rng([SEED, n, 1])
    x = np.ascontiguousarray(complex_normal(rng, (batch, n)).T)  # neuroptica: (N, B) columns
    g = np.ascontiguousarray(complex_normal(rng, (batch, n)).T)
    out = {}
    out["forward"] = measure(lambda: layer.forward_pass(x), repeat, budget_s)
    out["fields"] = measure(
        lambda: mesh.compute_phase_shifter_fields(x, align="right", use_partial_vectors=True), repeat, budget_s
    )
    out["grad_pv"] = measure(lambda: mesh.compute_gradients(x, g, use_partial_vectors=True), repeat, budget_s)
    out["grad"] = measure(lambda: mesh.compute_gradients(x, g), repeat, budget_s)
    return out


def describe(model: ErrorModel) -> str:
    """The non-zero fields of an error model."""
    def shown(value) -> str:
        return f"{value:g}" if isinstance(value, (int, float)) else str(value)

    return ", ".join(f"{f.name}={shown(getattr(model, f.name))}" for f in fields(model) if getattr(model, f.name))


def blas_description() -> str:
    """BLAS library and thread count as threadpoolctl reports them (if installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed: BLAS thread count unknown"
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return "threadpoolctl found no BLAS library"
    return "; ".join(
        f"{p.get('internal_api')} {p.get('version')} with {p.get('num_threads')} threads" for p in pools
    )


def load_average() -> str:
    """1-minute load average: other work on the machine inflates every timing."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):  # not on every platform
        return "unknown"


def thread_limit(threads: int | None):
    """Context that pins BLAS threads (a no-op when not asked or threadpoolctl is missing)."""
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("warning: --threads needs threadpoolctl; running with the default thread count")
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    print(title)
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64, 128], help="mesh sizes N")
    parser.add_argument("--batch", type=int, default=1024, help="batch size B")
    parser.add_argument("--repeat", type=int, default=20, help="most timed calls per measurement")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds one measurement aims at")
    parser.add_argument("--compare", action="store_true", help="also time neuroptica on the same sizes")
    parser.add_argument("--threads", type=int, default=None, help="pin BLAS threads (needs threadpoolctl)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.batch < 1 or any(n < 2 for n in args.sizes):
        parser.error("--repeat and --batch must be >= 1 and every size >= 2")

    neu = import_neuroptica() if args.compare else None
    with thread_limit(args.threads):
        print(f"python {platform.python_version()}, numpy {np.__version__}", end="")
        print(f", neuroptica {importlib.metadata.version('neuroptica')}" if neu else "")
        print(f"BLAS: {blas_description()}; {os.cpu_count()} CPUs, load average {load_average()}")
        print(f"batch B = {args.batch}, rectangular mesh of depth N with output phase screen, errors: {describe(ERROR_MODEL)}")
        print(f"median of up to {args.repeat} calls after one warm-up (>= {MIN_CALLS}, ~{args.budget:g} s each)\n")

        ours, theirs = {}, {}
        for n in args.sizes:
            ours[n] = bench_ours(n, args.batch, args.repeat, args.budget)
            if neu is not None:
                theirs[n] = bench_neuroptica(neu, n, args.batch, args.repeat, args.budget)

    rows = []
    for n, t in ours.items():
        d = t["dense"]
        rows.append(
            [str(n), f"{d:.3f}"]
            + [f"{t[k]:.3f} ({t[k] / d:.1f}x)" for k in ("forward", "taps", "gradient")]
        )
    header = ["N", "dense ms", "forward ms (x dense)", "taps ms (x dense)", "gradient ms (x dense)"]
    print_table("photonics (ms, median; in brackets: multiple of one dense X @ U.T)", header, rows)

    if theirs:
        rows = []
        for n, t in theirs.items():
            o = ours[n]
            rows.append(
                [
                    str(n),
                    f"{t['forward']:.3f} ({t['forward'] / o['forward']:.1f}x)",
                    f"{t['fields']:.3f} ({t['fields'] / o['taps']:.1f}x)",
                    f"{t['grad_pv']:.2f} ({t['grad_pv'] / o['gradient']:.1f}x)",
                    f"{t['grad']:.2f} ({t['grad'] / o['gradient']:.1f}x)",
                ]
            )
        header = [
            "N",
            "nop forward (vs forward)",
            "nop fields pv (vs taps)",
            "nop grad pv (vs gradient)",
            "nop grad dense (vs gradient)",
        ]
        print_table("neuroptica (ms, median; in brackets: speedup of photonics = theirs / ours)", header, rows)

    if TARGET_N in ours and args.batch == TARGET_B:
        o, t = ours[TARGET_N], theirs.get(TARGET_N)
        checks = [(f"forward within 10x of dense ({o['forward'] / o['dense']:.1f}x)", o["forward"] <= 10 * o["dense"])]
        if t is not None:
            fwd = t["forward"] / o["forward"]
            grad = min(t["grad"], t["grad_pv"]) / o["gradient"]
            checks.append((f"forward >= 3x faster than neuroptica ({fwd:.1f}x)", fwd >= 3))
            checks.append((f"gradient >= 20x faster than neuroptica's fastest compute_gradients ({grad:.1f}x)", grad >= 20))
        print(f"targets at N = {TARGET_N}, B = {TARGET_B}:")
        for text, ok in checks:
            print(f"  [{'met' if ok else 'MISSED'}] {text}")
    load = load_average()
    if load != "unknown" and float(load) > (os.cpu_count() or 1):
        print(f"note: load average {load} on {os.cpu_count()} CPUs (this run included): if other work ran too,")
        print("      timings are inflated; rerun on a quiet machine or with --threads 1 (threaded BLAS suffers most)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
