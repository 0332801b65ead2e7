"""``selftest``: a cheap experiment for tests and benchmarks of the sweep machinery.

Not part of the product: tests register it (``tests/conftest.py`` imports this module and
names it in ``INSITU_EXPERIMENT_MODULES``, so that a CLI subprocess registers it too), and
``benchmarks/sweep.py`` imports it.

Its numbers come only from ``numpy.random.default_rng`` seeded with the trial seed, so runs
on any backend, chunking or machine can be compared value for value. It can also spend
time (``work_ms``, sleeping or spinning), fail on request (``fail``), and kill its own
process once (``crash_marker``) to inject a worker death.
"""

from __future__ import annotations

import os
import time

import numpy as np

from insitu.sweeps.engine.registry import Experiment, Param, register

VERSION = "1"

PARAMS = (
    Param("x", "float", 0.0, low=-1e6, high=1e6, doc="offset added to every value"),
    Param("noise", "float", 1.0, low=0.0, doc="scale of the random draw (>= 0)"),
    Param("dist", "str", "normal", choices=("normal", "uniform"), doc="distribution drawn"),
    Param("curve_len", "int", 3, low=0, high=10_000, doc="length of the list-valued curves"),
    Param("work_ms", "float", 0.0, low=0.0, high=3_600_000.0, doc="time spent per trial"),
    Param("busy", "bool", False, doc="spin the CPU for work_ms instead of sleeping"),
    Param("fail", "bool", False, doc="raise instead of returning rows"),
    Param("crash_marker", "str", "", doc="if set and missing: create it, then kill the process"),
    Param("modes", "str", "a,b", doc="comma-separated modes, one row each"),
)


def run_trial(params: dict, trial_seed: int, cache: dict) -> list[dict]:
    """Rows of deterministic pseudo-random values, one per mode."""
    marker = params["crash_marker"]
    if marker and _create_once(marker):
        os._exit(1)
    _spend(params["work_ms"] / 1000.0, params["busy"])
    if params["fail"]:
        raise RuntimeError(f"selftest failure requested (x={params['x']})")
    cache["selftest_trials"] = cache.get("selftest_trials", 0) + 1
    modes = [m.strip() for m in params["modes"].split(",") if m.strip()]
    rows = []
    for index, mode in enumerate(modes):
        rng = np.random.default_rng([trial_seed, index])
        draw = rng.normal() if params["dist"] == "normal" else rng.uniform(-1.0, 1.0)
        curve = rng.normal(size=params["curve_len"])
        rows.append({
            "mode": mode,
            "value": params["x"] + params["noise"] * float(draw),
            "draw": float(draw),
            "count": params["curve_len"],
            "curve": curve.tolist(),
            "curve_index": list(range(params["curve_len"])),
        })
    return rows


def _create_once(path: str) -> bool:
    """Create ``path``; True only for the call that created it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _spend(seconds: float, busy: bool) -> None:
    if seconds <= 0:
        return
    if not busy:
        time.sleep(seconds)
        return
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


register(Experiment("selftest", VERSION, PARAMS, run_trial,
                    summary="cheap deterministic experiment for testing sweeps"))
