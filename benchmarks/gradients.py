"""Speed of the simulated in situ measurements and of training (prints tables; not a test).

1. One ``three_pass`` measured gradient of a 64-port rectangular mesh (one layer) on a
   batch of B = 1024 with per-example tap noise and I/O error: the per-example reference
   path, the aggregated-statistics path, and neuroptica's exact, noise-free
   ``compute_gradients`` on the same size (with ``--compare``), in the same run.
2. One measured gradient of one 64-port triangular layer (the Fig. 4 mesh) at B = 32 and
   B = 600 for each launch scheme (``per_example``, ``balanced``, ``cotangent``) and both
   protocols, with tap noise and I/O error.
3. One training step of the Fig. 4 network (2 x 64-port triangular layers, digits64,
   batch 32, cotangent launches, analog formula, the paper's largest errors, SGD).
4. The paper's network (3 layers x 4 ports, ``moons``) trained in situ for 1000 iterations
   at batch 1, as an ensemble of K = 1, 16, 64, 256 devices: wall time, and time per
   device.

Usage: ``python benchmarks/gradients.py [--compare] [--ensembles 1,16,64,256] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mesh import (  # noqa: E402
    SEED as MESH_SEED,
    blas_description,
    bench_neuroptica,
    complex_normal,
    import_neuroptica,
    measure,
    print_table,
)

from insitu.photonics import ErrorModel  # noqa: E402
from insitu.photonics.datasets import Task, load_task  # noqa: E402
from insitu.photonics.insitu import measure_gradient  # noqa: E402
from insitu.photonics.network import build_network, exact_gradient, sample_devices  # noqa: E402
from insitu.photonics.optim import make_optimizer  # noqa: E402
from insitu.photonics.protocols import LAUNCHES  # noqa: E402
from insitu.photonics.training import default_network, train_ensemble  # noqa: E402

SEED = 7
NOISY = ErrorModel(bs_error=0.02, loss_imbalance_db=0.02, tap_noise=0.01, io_amp_error=0.01, io_phase_error=0.01)


def measurement_problem(n: int, batch: int):
    """The measured-gradient benchmark's problem: one noisy N-port layer, a batch of random
    inputs and labels, and the noise generator (the same in every table that times it)."""
    rng = np.random.default_rng(SEED)
    net = build_network(n, 1, 2, "rectangular", logit_scale=3.0)
    params = net.init_params(rng)
    devices = sample_devices(net, NOISY, rng)
    x = rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))
    labels = rng.integers(0, 2, batch)
    return net, params, x, labels, devices, np.random.default_rng(SEED + 1)


def bench_measurement(n: int, batch: int, repeat: int, budget: float) -> dict[str, float]:
    net, params, x, labels, devices, noise = measurement_problem(n, batch)
    out = {}
    for name, aggregate in (("per-example", False), ("aggregated", True)):
        out[name] = measure(
            lambda: measure_gradient(net, params, x, labels, devices, "three_pass", noise, aggregate=aggregate),
            repeat,
            budget,
        )
    out["exact (adjoint)"] = measure(lambda: exact_gradient(net, params, x, labels, devices), repeat, budget)
    return out


PAPER_WORST = ErrorModel(tap_noise=0.02, io_amp_error=0.05, io_phase_error=0.05 * np.pi, loss_std_db=0.05,
                         io_placement="read")


def bench_launches(n: int, batches: list[int], repeat: int, budget: float) -> list[list[str]]:
    rng = np.random.default_rng(SEED)
    net = build_network(n, 1, 10, "triangular", readout="first", logit_scale=30.0)
    params = net.init_params(rng)
    devices = sample_devices(net, NOISY, rng)
    noise = np.random.default_rng(SEED + 1)
    rows = []
    for batch in batches:
        x = rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        labels = rng.integers(0, 10, batch)
        for launch in LAUNCHES:
            times = [measure(lambda: measure_gradient(net, params, x, labels, devices, protocol, noise, launch=launch),
                             repeat, budget) for protocol in ("three_pass", "analog")]
            rows.append([str(batch), launch, f"{times[0]:.1f}", f"{times[1]:.1f}"])
    return rows


def bench_fig4_step(repeat: int, budget: float) -> float:
    task = load_task("digits64")
    net = default_network(task, topology="triangular")
    rng = np.random.default_rng(SEED)
    params = net.init_params(rng)
    devices = sample_devices(net, PAPER_WORST, rng)
    opt = make_optimizer("sgd", 0.5)
    state = opt.init(params)
    noise = np.random.default_rng(SEED + 1)
    x, y = task.x_train[:32], task.y_train[:32]

    def step():
        grad = measure_gradient(net, params, x, y, devices, "analog", noise, launch="cotangent").grad
        opt.step(params.copy(), grad, state)

    return measure(step, repeat, budget)


def paired_ratio(n: int, batch: int, pairs: int) -> float:
    """Median over alternating pairs of calls of (neuroptica's fastest exact gradient time) /
    (our aggregated noisy three-pass time): robust to load that changes during the run."""
    neu = import_neuroptica()
    np.random.seed(MESH_SEED + n)
    mesh = neu.ClementsLayer(n).mesh
    rng = np.random.default_rng([MESH_SEED, n, 1])
    xn = np.ascontiguousarray(complex_normal(rng, (batch, n)).T)
    gn = np.ascontiguousarray(complex_normal(rng, (batch, n)).T)
    net, params, x, labels, devices, noise = measurement_problem(n, batch)
    ratios = []
    for _ in range(pairs):
        start = time.perf_counter()
        measure_gradient(net, params, x, labels, devices, "three_pass", noise, aggregate=True)
        ours = time.perf_counter() - start
        theirs = []
        for partial in (True, False):
            start = time.perf_counter()
            mesh.compute_gradients(xn, gn, use_partial_vectors=partial)
            theirs.append(time.perf_counter() - start)
        ratios.append(min(theirs) / ours)
    return float(np.median(ratios))


def bench_training(ks: list[int], examples: int = 250) -> list[tuple[int, float]]:
    moons = load_task("moons")
    # 250 examples x 4 epochs = 1000 iterations at batch 1
    task = Task("moons", moons.x_train[:examples], moons.y_train[:examples], moons.x_test, moons.y_test, 2,
                moons.points_train[:examples], moons.points_test)
    rows = []
    for k in ks:
        start = time.perf_counter()
        train_ensemble(task, errors=NOISY, mode="insitu", epochs=4, batch_size=1, lr=0.01, seeds=range(k),
                       eval_every=4, record_gradient_error=False)
        rows.append((k, time.perf_counter() - start))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="also time neuroptica's compute_gradients")
    parser.add_argument("--ports", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--ensembles", default="1,16,64,256", help="comma list of ensemble sizes K")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per measurement, about")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1, as a sweep worker)")
    parser.add_argument("--iterations", type=int, default=1000,
                        help="training iterations of the ensemble table (4 epochs at batch 1; default 1000)")
    args = parser.parse_args(argv)

    limiter = contextlib.nullcontext()
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.threads)
    with limiter:
        print(blas_description())
        print(f"errors: {NOISY}")
        times = bench_measurement(args.ports, args.batch, args.repeat, args.budget)
        rows = [[name, f"{ms:.1f}", f"{times['per-example'] / ms:.1f}x"] for name, ms in times.items()]
        if args.compare:
            neu = bench_neuroptica(import_neuroptica(), args.ports, args.batch, args.repeat, args.budget)
            best = min(neu["grad_pv"], neu["grad"])
            rows.append(["neuroptica compute_gradients (exact, noise-free)", f"{best:.1f}",
                         f"{times['per-example'] / best:.1f}x"])
            print(f"aggregated three_pass vs neuroptica: {best / times['aggregated']:.1f}x faster (medians); "
                  f"{paired_ratio(args.ports, args.batch, 15):.1f}x (median of 15 alternating pairs)")
        print_table(
            f"one three_pass gradient measurement, N = {args.ports}, B = {args.batch}, tap noise + I/O error",
            ["path", "median ms", "speed vs per-example"],
            rows,
        )
        print_table(
            f"one measured gradient of one {args.ports}-port triangular layer (median ms), tap noise + I/O error",
            ["B", "launch", "three_pass", "analog"],
            bench_launches(args.ports, [32, 600], args.repeat, args.budget),
        )
        print_table(
            "one training step of the Fig. 4 network (2 x 64 triangular, B = 32, cotangent, analog, largest errors)",
            ["median ms"],
            [[f"{bench_fig4_step(args.repeat, args.budget):.1f}"]],
        )
        ks = [int(k) for k in args.ensembles.split(",")]
        examples = max(1, args.iterations // 4)  # 4 epochs at batch 1
        trows = bench_training(ks, examples)
        base = trows[0][1]
        print_table(
            f"paper network (3 x 4 ports, moons), insitu, {4 * examples} iterations at batch 1, noisy device",
            ["devices K", "wall s", "x K=1 wall", "s per device"],
            [[str(k), f"{t:.2f}", f"{t / base:.2f}x", f"{t / k:.3f}"] for k, t in trows],
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
