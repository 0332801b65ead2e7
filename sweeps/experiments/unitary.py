"""The ``unitary`` experiment: program a Haar-random unitary onto one sampled chip.

A trial draws a target ``U_t`` (Haar, ``N x N``), a chip (a layout of ``N`` ports, standard or
3-splitter MZIs, with the static errors of :class:`~insitu.photonics.errors.ErrorModel`) and
its calibrated twin, then writes phases to the chip by each chosen method and reads what the
chip realises, ``U`` (:mod:`insitu.photonics.unitary`):

* ``naive``: the ideal decomposition's phases;
* ``corrected``: those phases through the local hardware correction with the twin's errors;
* ``twin``: phases fitted on the twin (L-BFGS on ``||U - U_t||_F^2``, exact gradients,
  ``fit_steps`` iterations from the corrected phases), then written;
* ``insitu``: phases fitted on the chip (Adam, rate ``fit_lr``, ``fit_steps`` steps from the
  naive phases, or from the twin's corrected phases with ``fit_start = "corrected"``) with
  gradients measured by ``protocol`` (tap noise and I/O error of the chip).

One row per method: ``matrix_error = ||U - U_t||_F / sqrt(N)`` (dimensionless: the RMS
amplitude error of a column), ``fidelity = |tr(U_t^H U)|^2 / N^2`` and ``1 - fidelity``,
the chip's matrix error along a fit (``curve_matrix_error``, one value before the first step
and one after each) and the method's wall time (s, the decomposition it starts from
included, which the trial computes once). Everything is matrix-only: no data set,
no network; every transfer matrix and every gradient costs ``O(N^3)``. Measured on one
loaded core at the defaults (100 fit steps): ``N = 64``: naive 0.7 s, corrected 1.0 s, twin
38 s, insitu 33 s; ``N = 256``: 4.5 s, 6.4 s, 212 s and 282 s.

Streams (``np.random.default_rng(trial_seed).spawn(4)``): the target, the chip, the
calibration, the measurement noise; each is used by one thing only, so the chip does not
depend on the methods chosen. The heater models of the control layer are not parameters
here (phases are programmed as phases).
"""

from __future__ import annotations

import time

import numpy as np

from insitu.photonics import ErrorModel
from insitu.photonics.calibration import calibrated_twin
from insitu.photonics.decompose import decompose
from insitu.photonics.layout import MZI_KINDS, make_layout
from insitu.photonics.protocols import MEASURED_PROTOCOLS
from insitu.photonics.training import TrainConfig
from insitu.photonics import unitary
from insitu.sweeps.engine.registry import Experiment, MetricInfo, ModeInfo, Param, register
from insitu.sweeps.experiments.declared import param_of, params_of, settings_of
from insitu.sweeps.experiments.modes import mode_list_problems, parse_modes

VERSION = "1"
METHODS = ("naive", "corrected", "twin", "insitu")
METHOD_LABELS = {"naive": "ideal decomposition (naive)", "corrected": "local correction",
                 "twin": "fitted on the twin", "insitu": "fitted in situ"}
TOPOLOGIES = ("rectangular", "triangular")
# The control layer's heater settings: phases are written as phases here.
CONTROL = ("heater", "v_max", "heater_spread")
# Which methods read a parameter (a spec setting one that no chosen method reads is refused).
USERS = {"calibration_error": ("corrected", "twin"), "fit_steps": ("twin", "insitu"), "fit_start": ("insitu",),
         "fit_lr": ("insitu",), "protocol": ("insitu",), "tap_noise": ("insitu",),
         "io_amp_error": ("insitu",), "io_phase_error": ("insitu",), "io_placement": ("insitu",)}

METRICS = (
    MetricInfo("matrix_error", "matrix error ‖U − U_t‖_F / √N", scale="log"),
    MetricInfo("infidelity", "infidelity 1 − |tr(U_t^† U)|² / N²", scale="log"),
    MetricInfo("fidelity", "fidelity |tr(U_t^† U)|² / N²"),
    MetricInfo("program_seconds", "programming time", unit="s"),
    MetricInfo("curve_matrix_error", "matrix error along the fit", scale="log"),
)


def _params() -> tuple[Param, ...]:
    calibration = TrainConfig.__dataclass_fields__["calibration_error"]
    return (
        Param("n_ports", "int", 8, low=4, high=256, label="ports N", doc="ports of the chip (the target is N x N)"),
        Param("topology", "str", "rectangular", choices=TOPOLOGIES, label="mesh topology",
              doc="rectangular (Clements, depth N) or triangular (Reck) mesh"),
        Param("mzi", "str", "standard", choices=MZI_KINDS, label="MZI kind", shares_chips=True,
              doc="standard or three_splitter MZIs (a 3-splitter chip is the standard one plus its third couplers)"),
        Param("modes", "str", ",".join(METHODS), label="methods run", shares_chips=True,
              doc="comma list of programming methods: " + ", ".join(METHODS)),
        Param("fit_steps", "int", 100, low=0, high=100_000, label="fit steps", shares_chips=True,
              doc="iterations of the twin fit (L-BFGS) and steps of the in situ fit (Adam)"),
        Param("fit_lr", "float", 0.01, low=1e-9, high=100.0, label="in situ learning rate", unit="rad",
              shares_chips=True, doc="Adam rate of the in situ fit (rad per step)"),
        Param("fit_start", "str", "naive", choices=("naive", "corrected"), label="in situ fit's start",
              shares_chips=True, omit_at_default=True,
              doc="phases the in situ fit starts from: naive, or corrected with the twin (calibration_error)"),
        Param("protocol", "str", "three_pass", choices=MEASURED_PROTOCOLS, label="gradient protocol",
              shares_chips=True, doc="how the in situ fit measures gradients: " + ", ".join(MEASURED_PROTOCOLS)),
        param_of(calibration, doc="std of the twin's estimate of every static error (rad, dB): corrected, twin"),
        *params_of(ErrorModel, exclude=CONTROL),
    )


def validate(values: dict, set_in_spec: frozenset) -> list[tuple[str, str]]:
    """Combinations a ``unitary`` spec may not hold: empty or unknown methods, or a setting
    given in the spec that no chosen method reads."""
    problems = mode_list_problems(values, METHODS)
    if problems:
        return problems
    chosen = {m.strip() for text in values["modes"] for m in text.split(",") if m.strip()}
    for name in sorted(set_in_spec):
        users = USERS.get(name, ())
        if name == "calibration_error" and "corrected" in values.get("fit_start", ()):
            users = (*users, "insitu")  # an in situ fit from corrected phases reads the twin
        if users and not chosen & set(users):
            problems.append((name, f"is set, but no chosen method uses it (used by {', '.join(users)})"))
    return problems


def run_trial(params: dict, trial_seed: int, cache: dict) -> list[dict]:
    """Rows of one trial (module docstring): one per chosen method, same target and chip."""
    n = params["n_ports"]
    layout = make_layout(params["topology"], n, mzi=params["mzi"])
    model = ErrorModel(**settings_of(ErrorModel, params, exclude=CONTROL))
    target_rng, chip_rng, calibration_rng, noise_rng = np.random.default_rng(trial_seed).spawn(4)
    target = unitary.haar_unitary(n, target_rng)
    chip = model.sample(layout, chip_rng)
    twin = calibrated_twin(chip, params["calibration_error"], calibration_rng)
    methods = parse_modes(params["modes"], METHODS)
    steps = params["fit_steps"]
    started = time.perf_counter()
    ideal = decompose(layout, target)
    decompose_seconds = time.perf_counter() - started
    run = {
        "naive": lambda: unitary.program_naive(layout, target, chip, ideal),
        "corrected": lambda: unitary.program_corrected(layout, target, chip, twin, ideal),
        "twin": lambda: unitary.fit_twin(layout, target, chip, twin, steps, ideal=ideal),
        "insitu": lambda: unitary.fit_insitu(layout, target, chip, noise_rng, steps, params["fit_lr"],
                                             params["protocol"], start=params["fit_start"], twin=twin,
                                             ideal=ideal),
    }
    rows = []
    for method in methods:
        started = time.perf_counter()
        result = run[method]()
        seconds = time.perf_counter() - started + decompose_seconds
        rows.append({
            "mode": method,
            "matrix_error": result.error,
            "fidelity": result.fidelity,
            "infidelity": 1.0 - result.fidelity,
            "program_seconds": seconds,
            "curve_matrix_error": result.history.tolist(),
        })
    return rows


def build() -> Experiment:
    return Experiment(
        "unitary", VERSION, _params(), run_trial, validate=validate,
        summary="program a Haar-random unitary onto one sampled chip per trial by each method",
        # the in situ fit measures with the spec's `protocol` (three_pass by default)
        modes=tuple(ModeInfo(m, "programming method", METHOD_LABELS[m],
                             protocol="`protocol` parameter's (three_pass or analog)" if m == "insitu" else None)
                    for m in METHODS),
        metrics=METRICS, headline_metric="matrix_error", module=__name__)


register(build())
