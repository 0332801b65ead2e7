"""Cost of the chip's control layer in a training step (prints a table; not a test).

The digits64 network (two 64-port rectangular layers), batch 32, one device; each row times
one training step's work with the control layer off (phase heater model, no compensation)
and on (thermal heaters with a 5 % curve spread and a 12-bit voltage DAC, crosstalk 0.05,
compensation from a calibration with error 0.01), the two variants alternating call by call
so that machine load hits both alike:

* ``pat``: physics-aware training's gradient: the forward pass on the chip (at compensated
  set points when on: the one solve of the step) and the backward pass through the twin;
* ``calibrated (gradient error recorded)``: the twin's exact gradient and the chip's exact
  gradient it is judged against (compensated when on);
* ``insitu``: the three-pass measured gradient (heaters, no compensation: in situ modes
  train through crosstalk);
* ``analog update``: the sample-and-hold update of all heaters against an SGD step;
* ``programming``: the compensated set points of both layers (what evaluation writes).

Usage: ``python benchmarks/control.py [--repeat 40] [--threads 1]``; run with one BLAS
thread (``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1``) for stable numbers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from insitu.photonics import ErrorModel  # noqa: E402
from insitu.photonics.analog_update import AnalogUpdateSettings, analog_step, update_gains  # noqa: E402
from insitu.photonics.calibration import calibrated_twin  # noqa: E402
from insitu.photonics.datasets import load_task  # noqa: E402
from insitu.photonics.errors import DeviceErrors  # noqa: E402
from insitu.photonics.heaters import calibrate_control, compensated_set_points, control_draws  # noqa: E402
from insitu.photonics.insitu import measure_gradient  # noqa: E402
from insitu.photonics.network import exact_gradient, sample_devices  # noqa: E402
from insitu.photonics.pat import pat_gradient  # noqa: E402
from insitu.photonics.training import NetworkConfig  # noqa: E402

sys.path.insert(1, str(Path(__file__).resolve().parent))
from mesh import blas_description, load_average, print_table, thread_limit  # noqa: E402

SEED = 11
BATCH = 32
OFF = ErrorModel(bs_error=0.02, crosstalk=0.05, tap_noise=0.01)
ON = ErrorModel(bs_error=0.02, crosstalk=0.05, tap_noise=0.01, heater="thermal", heater_spread=0.05, dac_bits=12)


def setup(model: ErrorModel, compensate: bool, task_name: str = "digits64", batch: int = BATCH):
    """Network, chip, twin, control calibration (or None), a batch and phases."""
    task = load_task(task_name)
    net = NetworkConfig().build(task)
    rng = np.random.default_rng(SEED)
    chip = [DeviceErrors.stack([d]) for d in sample_devices(net, model, rng, np.random.default_rng(SEED + 1))]
    twin = [DeviceErrors.stack([calibrated_twin(d, 0.01, np.random.default_rng(SEED + 3))])
            for d in sample_devices(net, model, np.random.default_rng(SEED), np.random.default_rng(SEED + 1))]
    control = None
    if compensate:
        draws = np.random.default_rng(SEED + 2)
        control = [calibrate_control(d.theta_heater, d.phi_heater, model.crosstalk, 0.01,
                                     draws.standard_normal((1, control_draws(lay.n_mzis, len(lay.neighbours())))),
                                     len(lay.neighbours()))
                   for d, lay in zip(chip, net.layouts)]
    params = net.init_params(rng)[None]
    idx = rng.choice(len(task.y_train), batch, replace=False)
    return net, chip, twin, control, params, task.x_train[idx][None], task.y_train[idx][None]


def rows(repeat: int, task_name: str = "digits64", batch: int = BATCH) -> list[list[str]]:
    off, on = setup(OFF, False, task_name, batch), setup(ON, True, task_name, batch)
    noise = np.random.default_rng(3)

    def on_chip(case, p):
        net, chip, _, control, *_ = case
        return p if control is None else compensated_set_points(net, p, chip, control)

    def pat(case):
        net, chip, twin, _, p, x, y = case
        return pat_gradient(net, p, x, y, chip, twin, noise, on_chip(case, p))

    def calibrated(case):
        net, chip, twin, _, p, x, y = case
        exact_gradient(net, p, x, y, twin)
        return exact_gradient(net, on_chip(case, p), x, y, chip)

    def insitu(case):
        net, chip, _, _, p, x, y = case
        return measure_gradient(net, p, x, y, chip, "three_pass", noise)

    grad = np.random.default_rng(4).standard_normal(off[4].shape)
    gains = update_gains(0.05, np.random.default_rng(5).standard_normal(off[4].shape))
    held = AnalogUpdateSettings(update="sample_hold", hold_bits=12, hold_leak=1e-4)

    def update(case):
        _, chip, _, control, p, *_ = case
        if control is None:
            return p - 0.01 * grad
        return analog_step(p, grad, gains, 0.01, chip[0].model, held)

    def programming(case):
        return on_chip(case, case[4])

    table = []
    for name, fn in (("pat", pat), ("calibrated (gradient error recorded)", calibrated), ("insitu", insitu),
                     ("analog update", update), ("programming (2 layers)", programming)):
        times = {"off": [], "on": []}
        for _ in range(repeat):
            for label, case in (("off", off), ("on", on)):
                start = time.perf_counter()
                fn(case)
                times[label].append(time.perf_counter() - start)
        a, b = statistics.median(times["off"]), statistics.median(times["on"])
        table.append([name, f"{1e3 * a:.2f}", f"{1e3 * b:.2f}", f"{b / a:.2f}"])
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=40, help="calls per variant (default 40)")
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (needs threadpoolctl)")
    parser.add_argument("--task", default="digits64", help="task of the network (default digits64)")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"examples per step (default {BATCH})")
    args = parser.parse_args(argv)
    with thread_limit(args.threads):
        table = rows(args.repeat, args.task, args.batch)
        blas = blas_description()  # inside the limit: the threads the table ran with
    print(f"BLAS: {blas}; load average {load_average()}")
    print_table(f"control layer off / on, {args.task} (the task's network), batch {args.batch}, "
                f"median of {args.repeat} alternating calls",
                ["step", "off ms", "on ms", "on/off"], table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
