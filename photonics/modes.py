"""The training modes: what a mode steps with, and what it programs onto the chip.

A mode is a small strategy (:class:`Mode`): the gradient it steps with, and the phases it
programs onto the chip for evaluation (:mod:`photonics.training` runs them). The registry
``MODES``:

* ``digital``: train the ideal, error-free model with exact gradients, then program its
  phases onto the erroneous device ("offline" training);
* ``insitu``: train on the device with gradients measured by the three-pass protocol;
* ``analog``: as ``insitu`` with the analog toggle protocol;
* ``calibrated``: digital training with exact gradients on a digital twin, the model with
  the calibrated errors (:mod:`photonics.calibration`), then program the chip;
* ``corrected``: digital training of the ideal model, then local hardware error correction
  of every MZI from the calibrated errors (:mod:`photonics.correction`; Bandyopadhyay,
  Hamerly & Englund, Optica 8, 1247 (2021));
* ``pat``: physics-aware training, forward on the chip, backward through the twin at the
  chip's measured activations (:mod:`photonics.pat`; Wright et al., Nature 601, 549 (2022));
* ``spsa``: forward-only zeroth-order training on the chip (:mod:`photonics.spsa`).

A new mode is one gradient function (and, if it programs something else than the trained
phases, one program function) plus one registry line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from .correction import correct_network
from .errors import DeviceErrors, DeviceNoise, FrozenNoise
from .insitu import measure_gradient
from .network import PhotonicNetwork, exact_gradient
from .pat import pat_gradient
from .spsa import spsa_gradient

if TYPE_CHECKING:  # training imports this module
    from .training import TrainConfig

__all__ = ["MODES", "Mode", "Run", "measured"]


@dataclass
class Run:
    """What a mode's functions see: the network, the chip, its twin, noise streams, config."""

    net: PhotonicNetwork
    chip: list[DeviceErrors]
    twin: list[DeviceErrors] | None  # None: the ideal model (no calibration)
    noise: DeviceNoise | FrozenNoise  # measurement noise (tap, I/O) of training steps
    signs: DeviceNoise  # SPSA perturbation signs
    config: TrainConfig


def measured(run: Run, params, x, labels, protocol: str) -> np.ndarray:
    """An in situ gradient measurement on the chip (the one place training calls it)."""
    return measure_gradient(run.net, params, x, labels, run.chip, protocol, run.noise,
                            launch=run.config.launch).grad


@dataclass(frozen=True)
class Mode:
    """A training mode: ``gradient(run, params, x, labels)`` is the step direction;
    ``program(run, params)`` the phases written to the chip for evaluation; ``uses`` the
    :class:`TrainConfig` settings it reads beyond the common ones; ``on_chip_gradient``
    whether its step gradient estimates the chip's (and its error is recorded)."""

    name: str
    gradient: Callable
    program: Callable = lambda run, params: params
    uses: tuple[str, ...] = ()
    on_chip_gradient: bool = True


def _ideal_gradient(run, params, x, labels):
    return exact_gradient(run.net, params, x, labels, None)[1]


def _twin_gradient(run, params, x, labels):
    return exact_gradient(run.net, params, x, labels, run.twin)[1]


def _corrected_program(run, params):
    return params if run.twin is None else correct_network(run.net, params, run.twin)


def _pat_gradient(run, params, x, labels):
    return pat_gradient(run.net, params, x, labels, run.chip, run.twin, run.noise)[1]


def _spsa_gradient(run, params, x, labels):
    cfg = run.config
    return spsa_gradient(run.net, params, x, labels, run.chip, cfg.spsa_delta, cfg.spsa_samples, run.signs,
                         run.noise)[1]


_REGISTRY = (
    Mode("digital", _ideal_gradient, on_chip_gradient=False),
    Mode("insitu", lambda run, p, x, y: measured(run, p, x, y, "three_pass"), uses=("launch", "noise_draws")),
    Mode("analog", lambda run, p, x, y: measured(run, p, x, y, "analog"), uses=("launch", "noise_draws")),
    Mode("calibrated", _twin_gradient, uses=("calibration_error",)),
    Mode("corrected", _ideal_gradient, _corrected_program, uses=("calibration_error",), on_chip_gradient=False),
    Mode("pat", _pat_gradient, uses=("calibration_error", "noise_draws")),
    Mode("spsa", _spsa_gradient, uses=("spsa_delta", "spsa_samples", "noise_draws")),
)
MODES: dict[str, Mode] = {m.name: m for m in _REGISTRY}
