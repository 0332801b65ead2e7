"""The all-analog update (Pai et al. 2023, SM section 2.6, Fig. S6): the measured gradient
drives the heater voltages without a digital optimiser.

The ``analog`` mode measures ``dL/dtheta`` with the analog toggle protocol; its setting
``update`` says how the measurement reaches the heaters:

* ``"digital"`` (default): read out and stepped by the configured optimiser, as every other
  mode (the first half of the paper's proposal only).
* ``"sample_hold"`` (Fig. S6B): the photocurrents of the batch's M examples are integrated
  in analog and one voltage step is written, ``dV_i = -eta g_i k_i dL/dtheta_i``.
* ``"comparator"`` (Fig. S6A): one example per step (``batch_size = 1``); a comparator
  passes only the sign of each gradient, so every heater steps a fixed voltage,
  ``dV_i = -eta g_i sign(dL/dtheta_i)``.

Each shifter's TIA / APD gain is its own learning rate: ``g_i = 1 + update_gain_spread n_i``
(``n ~ N(0, 1)``, floored at 0; static, drawn per chip). The step is taken in **voltage**, so
the phase moves by ``dtheta = theta'(V) dV``: a preconditioning by the heater's slope, which
for a thermal heater (``theta = c V**2``) vanishes near ``V = 0``. ``eta`` is the learning
rate divided by the nominal slope at the voltage of a pi shift, so at mid-range a step
moves the phase by ``lr`` per unit gradient, as SGD at ``lr`` would. With the ``"phase"``
heater model the voltage *is* the set point (slope 1). The held voltage is clipped to
``[0, v_max]`` (heater models), rounded to ``hold_bits`` (a grid of ``v_max / 2**hold_bits``
volts, or ``2 pi / 2**hold_bits`` rad for the phase model; 0 = continuous) and leaks a
fraction ``hold_leak`` of itself toward 0 V every step (a phase-model set point is first
brought into ``[0, 2 pi)``, its range as a heater drive).

Only SGD exists in analog: Adam keeps two moments per shifter (paper, Alg. 5), memory the
circuits do not have, so an analog update with ``optimizer = "adam"`` is refused.

Equalities the tests hold: with the phase model, no gain spread, a continuous hold and no
leak, ``sample_hold`` is SGD on the phases at ``lr`` and ``comparator`` is sign-SGD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .heaters import drive_voltages, nominal_coefficients, phase_slope, set_points_for, voltage_of_phase
from .settings import check_settings, setting

TWO_PI = 2.0 * np.pi
UPDATES = ("digital", "comparator", "sample_hold")


@dataclass(frozen=True)
class AnalogUpdateSettings:
    """The ``analog`` mode's own settings: its update circuit (module docstring)."""

    update: str = setting(
        "digital", "how the analog mode's measured gradient reaches the heaters: digital (the optimiser), "
        "comparator (one example, a fixed voltage step by the gradient's sign, Fig. S6A) or sample_hold "
        "(the batch integrated in analog, one voltage step, Fig. S6B)",
        label="update circuit", choices=UPDATES, shares_chips=True)
    update_gain_spread: float = setting(
        0.0, "relative spread of the per-shifter TIA/APD gain, each shifter's own learning rate (analog update)",
        label="update gain spread", unit="relative", low=0.0, high=1.0, role="error")
    hold_bits: int | None = setting(
        None, "resolution of the held heater voltage (0 = continuous; analog update)", label="hold resolution",
        unit="bits", low=0, high=32, none_as=0, role="error", error_free="high")
    hold_leak: float = setting(
        0.0, "fraction of the held heater voltage lost per training step (analog update)", label="hold leak",
        unit="per step", low=0.0, high=1.0, role="error")

    def __post_init__(self) -> None:
        check_settings(self)

    @property
    def analog(self) -> bool:
        """Whether the update runs in analog circuits (not through the optimiser)."""
        return self.update != "digital"


def check_analog_update(settings: AnalogUpdateSettings | None, optimizer: str, batch_size: int) -> None:
    """``ValueError`` naming the problem when an analog update cannot run as configured."""
    if settings is None or not settings.analog:
        return
    if optimizer != "sgd":
        raise ValueError(f"optimizer = {optimizer!r} cannot run with the analog update (update = "
                         f"{settings.update!r}): Adam needs per-shifter memory the circuits do not "
                         "have (paper, Alg. 5); set optimizer = 'sgd'")
    if settings.update == "comparator" and batch_size != 1:
        raise ValueError(f"update = 'comparator' is the single-example circuit (Fig. S6A): set "
                         f"batch_size = 1 (got {batch_size}), or use update = 'sample_hold'")


def update_gains(spread: float, draws: np.ndarray) -> np.ndarray:
    """Per-shifter gains ``1 + spread n`` floored at 0 (``draws`` standard normals)."""
    return np.maximum(1.0 + spread * np.asarray(draws), 0.0)


def _hold(drive: np.ndarray, step: float, bits: int | None, leak: float) -> np.ndarray:
    if bits is not None:
        q = step / (1 << bits)
        drive = np.round(drive / q) * q
    if leak:
        drive = drive * (1.0 - leak)
    return drive


def analog_step(set_points: np.ndarray, grad: np.ndarray, gains: np.ndarray, lr: float, model,
                settings: AnalogUpdateSettings) -> np.ndarray:
    """One analog update of the heater drives: new set points (rad) from the set points
    now, the measured gradient (same shape), the per-shifter ``gains`` and the rate ``lr``
    (rad per unit gradient at mid-range); ``model`` is the chip's
    :class:`~insitu.photonics.errors.ErrorModel` (its heater model and ``v_max``)."""
    signal = np.sign(grad) if settings.update == "comparator" else grad
    if model.heater == "phase":
        drive = set_points - lr * gains * signal
        if settings.hold_bits is not None or settings.hold_leak:
            drive = _hold(np.mod(drive, TWO_PI), TWO_PI, settings.hold_bits, settings.hold_leak)
        return drive
    nominal = nominal_coefficients(model.heater)
    slope = float(phase_slope(nominal, voltage_of_phase(nominal, np.pi)))
    voltage = drive_voltages(model.heater, model.v_max, None, set_points)
    voltage = np.clip(voltage - (lr / slope) * gains * signal, 0.0, model.v_max)
    voltage = _hold(voltage, model.v_max, settings.hold_bits, settings.hold_leak)
    return set_points_for(model.heater, voltage)
