"""The training modes: what a mode steps with, and what it programs onto the chip.

A mode is a small strategy (:class:`Mode`): the gradient it steps with, and the phases it
programs onto the chip for evaluation (:mod:`photonics.training` runs them). The registry
``MODES``:

* ``digital``: train the ideal, error-free model with exact gradients, then program its
  phases onto the erroneous device ("offline" training);
* ``insitu``: train on the device with gradients measured by the three-pass protocol;
* ``analog``: as ``insitu`` with the analog toggle protocol, its update digital or, by its
  own setting ``update``, all-analog (:mod:`photonics.analog_update`);
* ``calibrated``: digital training with exact gradients on a digital twin, the model with
  the calibrated errors (:mod:`photonics.calibration`), then program the chip;
* ``corrected``: digital training of the ideal model, then local hardware error correction
  of every MZI from the calibrated errors (:mod:`photonics.correction`; Bandyopadhyay,
  Hamerly & Englund, Optica 8, 1247 (2021));
* ``pat``: physics-aware training, forward on the chip, backward through the twin at the
  chip's measured activations (:mod:`photonics.pat`; Wright et al., Nature 601, 549 (2022));
* ``spsa``: forward-only zeroth-order training on the chip (:mod:`photonics.spsa`).

A new mode is its gradient function (and, if it programs something else than the trained
phases, a program function), its registry line (:func:`register_mode`) and, if it has
settings of its own, their declaration: a frozen dataclass of
:func:`insitu.photonics.settings.setting` fields named as the mode's ``settings``
(:class:`insitu.photonics.spsa.SpsaSettings` is one). Its settings are then accepted by
:func:`insitu.photonics.training.train` and become parameters of the ``classify`` sweep
experiment, documented, range-checked and refused where no chosen mode uses them.
Settings several modes share (the launch scheme, the calibration) are
:class:`insitu.photonics.training.TrainConfig` fields, listed in each mode's ``uses``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from typing import Any, Callable

import numpy as np

from .analog_update import AnalogUpdateSettings, analog_step
from .correction import correct_network
from .errors import DeviceErrors, DeviceNoise, FrozenNoise
from .heaters import compensated_set_points
from .insitu import measure_gradient
from .network import PhotonicNetwork, exact_gradient
from .pat import pat_gradient
from .spsa import SpsaSettings, spsa_gradient

__all__ = ["MODES", "Mode", "Run", "measured", "mode_settings", "on_chip", "programmed", "register_mode",
           "unregister_mode"]


@dataclass
class Run:
    """What a mode's functions see: the network, the chip, its twin, noise streams, config."""

    net: PhotonicNetwork
    chip: list[DeviceErrors]
    twin: list[DeviceErrors] | None  # None: the ideal model (no calibration)
    noise: DeviceNoise | FrozenNoise  # measurement noise (tap, I/O) of training steps
    signs: DeviceNoise  # SPSA perturbation signs
    config: Any  # the run's TrainConfig (insitu.photonics.training imports this module)
    settings: Any = None  # the mode's own settings (an instance of ``Mode.settings``)
    control: list | None = None  # per layer: the calibrated control layer (crosstalk compensation)
    gains: np.ndarray | None = None  # (K, P): per-shifter gains of an analog update


def measured(run: Run, params, x, labels, protocol: str) -> np.ndarray:
    """An in situ gradient measurement on the chip (the one place training calls it)."""
    return measure_gradient(run.net, params, x, labels, run.chip, protocol, run.noise,
                            launch=run.config.launch).grad


def _trained_phases(run, params):
    return params


@dataclass(frozen=True)
class Mode:
    """A training mode: ``gradient(run, params, x, labels)`` is the step direction;
    ``program(run, params)`` the phases written to the chip for evaluation; ``uses`` the
    shared :class:`TrainConfig` settings it reads beyond the common ones; ``settings`` a
    frozen dataclass of its own declared settings (or None); ``on_chip_gradient`` whether
    its step gradient estimates the chip's (and its error is recorded); ``label`` its name
    in words; ``protocol`` the measurement protocol of its gradient (None: it measures
    none)."""

    name: str
    gradient: Callable
    program: Callable = _trained_phases
    uses: tuple[str, ...] = ()
    settings: type | None = None
    on_chip_gradient: bool = True
    label: str = ""
    protocol: str | None = None
    step: Callable | None = None  # step(run, params, grad): new params, or None (the optimiser steps)


def on_chip(run: Run, params) -> np.ndarray:
    """The set points that put ``params`` on the chip: compensated for crosstalk when the
    run compensates (:func:`insitu.photonics.heaters.compensated_set_points`), else ``params``."""
    return params if run.control is None else compensated_set_points(run.net, params, run.chip, run.control)


def programmed(mode: Mode, run: Run, params) -> np.ndarray:
    """The set points a mode writes to the chip for evaluation: its program, then, when the
    run compensates crosstalk (``crosstalk_compensation = "calibrated"``, a mode that uses
    it), the set points that give those phases through the calibrated heaters and crosstalk
    (:func:`insitu.photonics.heaters.compensated_set_points`)."""
    return on_chip(run, mode.program(run, params))


def _ideal_gradient(run, params, x, labels):
    return exact_gradient(run.net, params, x, labels, None)[1]


def _twin_gradient(run, params, x, labels):
    return exact_gradient(run.net, params, x, labels, run.twin)[1]


def _corrected_program(run, params):
    return params if run.twin is None else correct_network(run.net, params, run.twin)


def _pat_gradient(run, params, x, labels):
    return pat_gradient(run.net, params, x, labels, run.chip, run.twin, run.noise, on_chip(run, params))[1]


def _spsa_gradient(run, params, x, labels):
    s = run.settings
    return spsa_gradient(run.net, params, x, labels, run.chip, s.spsa_delta, s.spsa_samples, run.signs,
                         run.noise)[1]


def _three_pass_gradient(run, params, x, labels):
    return measured(run, params, x, labels, "three_pass")


def _analog_gradient(run, params, x, labels):
    return measured(run, params, x, labels, "analog")


def _analog_step(run, params, grad):
    """The all-analog update (:mod:`insitu.photonics.analog_update`), or None to let the
    optimiser step (``update = "digital"``)."""
    s = run.settings
    if s is None or not s.analog:
        return None
    return analog_step(params, grad, run.gains, run.config.rate(run.net.n_ports), run.chip[0].model, s)


# The registry, in the order tables and legends show the modes: offline and hybrid
# baselines first, then the in situ modes.
MODES: dict[str, Mode] = {}


def register_mode(mode: Mode) -> Mode:
    """Add a training mode (a name registered twice is an error). Its own settings must
    not collide with another mode's or with :class:`TrainConfig`'s fields."""
    if mode.name in MODES:
        raise ValueError(f"training mode {mode.name!r} is already registered")
    # training imports this module: its config is known once it has been imported
    training = sys.modules.get(__name__.rsplit(".", 1)[0] + ".training")
    config = getattr(training, "TrainConfig", None)
    taken = set(mode_settings()) | ({f.name for f in fields(config)} if config else set())
    for f in fields(mode.settings) if mode.settings is not None else ():
        if f.name in taken:
            raise ValueError(f"mode {mode.name!r}: setting {f.name!r} is already declared")
    MODES[mode.name] = mode
    return mode


def unregister_mode(name: str) -> None:
    """Remove a registered mode (a test's)."""
    MODES.pop(name, None)


def mode_settings() -> dict[str, tuple[Any, tuple[str, ...]]]:
    """Every mode's own settings: name -> (its dataclass field, the modes declaring it)."""
    found: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for mode in MODES.values():
        for f in fields(mode.settings) if mode.settings is not None else ():
            found[f.name] = (f, found.get(f.name, (None, ()))[1] + (mode.name,))
    return found


register_mode(Mode("digital", _ideal_gradient, uses=("crosstalk_compensation",), on_chip_gradient=False,
                   label="digital training, then programmed"))
register_mode(Mode("calibrated", _twin_gradient, uses=("calibration_error", "twin", "crosstalk_compensation"),
                   label="digital training on a calibrated twin"))
register_mode(Mode("corrected", _ideal_gradient, _corrected_program,
                   uses=("calibration_error", "twin", "crosstalk_compensation"),
                   on_chip_gradient=False, label="digital training, hardware error correction"))
register_mode(Mode("pat", _pat_gradient, uses=("calibration_error", "twin", "noise_draws", "crosstalk_compensation"),
                   label="physics-aware training"))
register_mode(Mode("spsa", _spsa_gradient, uses=("noise_draws",), settings=SpsaSettings,
                   label="forward-only SPSA training"))
register_mode(Mode("insitu", _three_pass_gradient, uses=("launch", "noise_draws"),
                   label="in situ training, three-pass protocol", protocol="three_pass"))
register_mode(Mode("analog", _analog_gradient, uses=("launch", "noise_draws"), settings=AnalogUpdateSettings,
                   label="in situ training, analog toggle protocol", protocol="analog", step=_analog_step))
