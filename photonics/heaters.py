"""The chip's control layer: heater voltages, thermal crosstalk in heater power, and the
compensation a lab programs around it.

A phase shifter is a heater: the controller turns a set point (rad) into a voltage, the DAC
rounds the voltage, and the shifter's phase follows the heat it receives. Heater models
(``ErrorModel.heater``):

* ``"phase"`` (the default, and this project's first model): the set point *is* the phase;
  a DAC rounds it to ``2 pi / 2**dac_bits`` and thermal crosstalk adds ``kappa`` times the
  wrapped set points of the neighbouring shifters (:func:`insitu.photonics.errors.program_phases`).
* ``"thermal"``: a resistive heater, ``theta = alpha V**2 / R``, the phase linear in the
  heater power ``P = V**2 / R``. Nominal ``alpha / R = pi / 25`` rad/V**2: with
  ``R = 1`` kOhm a pi shift takes 25 mW and 2 pi 50 mW (the paper's heaters draw about
  50 mW), reached at 7.07 V.
* ``"cubic"``: the paper's calibrated response (SM S2), a polynomial
  ``theta(V) = c1 V + c2 V**2 + c3 V**3`` per shifter (its constant term is the static phase
  offset, ``phase_error``). Nominal ``(c1, c2, c3) = (0.02 rad/V, 0.1 rad/V**2,
  0.004 rad/V**3)``: 2 pi at 6.95 V.

``heater_spread`` gives every shifter its own curve: each coefficient of a shifter is its
nominal value times ``1 + heater_spread n`` (``n ~ N(0, 1)``, floored at 0), a static
property of the chip. The controller knows only the nominal curve unless it is calibrated.

**Heat and crosstalk.** Voltages enter squared: shifter ``j`` receives
``u_j = V_j**2 + kappa sum_{i neighbour of j} V_i**2`` (V**2, proportional to heater power;
neighbours as the layout declares them, :meth:`insitu.photonics.layout.MeshLayout.neighbours`),
and its phase is its own curve at the voltage that heat corresponds to:
``theta_j = f_j(sqrt(u_j))``. Crosstalk is therefore linear in heater power, as heat is.

**Programming** (:func:`drive_voltages`). A set point the driver can reach
(``0 <= s <= f_nom(v_max)``) is driven as asked; any other set point is first brought into
``[0, 2 pi)`` by a multiple of 2 pi (the same phase). The voltage is the nominal curve's
inverse of the set point, rounded by the DAC to a grid of ``v_max / 2**dac_bits`` volts, and
a voltage beyond ``v_max`` (a weak heater asked for a phase it cannot reach) is clipped to
``v_max``.

**Crosstalk compensation** (:func:`compensate`): with a calibration of every heater's curve
and of the crosstalk of every neighbour pair (each estimated with ``calibration_error``,
:func:`calibrate_control`), programming solves for the heat that gives the target phases,
``(I + K_hat) u = v_hat(t + 2 pi m)**2`` (``K_hat`` the estimated crosstalk matrix,
tridiagonal in the layout's MZI order, solved banded once per programming; the phase model's
heat is the set point itself, within ``[0, 2 pi)``), and uses the 2 pi freedom of every phase to keep the heater powers
non-negative: a shifter whose power comes out negative gets its target raised by 2 pi and
the system is solved again (up to :data:`COMPENSATION_ROUNDS` rounds). When no solution in
``[0, v_max]`` exists after that, the remaining powers are clipped into the range (the
phases they give are then off) and :class:`Compensation` counts the clipped shifters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

TWO_PI = 2.0 * np.pi
HEATER_MODELS = ("phase", "thermal", "cubic")
# Nominal coefficients (c1 rad/V, c2 rad/V^2, c3 rad/V^3) of theta(V) = c1 V + c2 V^2 + c3 V^3.
NOMINAL_COEFFICIENTS = {
    "thermal": (0.0, np.pi / 25.0, 0.0),
    "cubic": (0.02, 0.1, 0.004),
}
COMPENSATION_ROUNDS = 4
NEWTON_STEPS = 40


def nominal_coefficients(heater: str) -> np.ndarray:
    """The nominal ``(c1, c2, c3)`` of a heater model (rad/V, rad/V**2, rad/V**3)."""
    if heater not in NOMINAL_COEFFICIENTS:
        raise ValueError(f"heater model {heater!r} has no voltage curve (expected one of "
                         f"{', '.join(NOMINAL_COEFFICIENTS)})")
    return np.asarray(NOMINAL_COEFFICIENTS[heater], dtype=float)


def heater_coefficients(heater: str, spread: float, draws: np.ndarray) -> np.ndarray:
    """Every shifter's curve: the nominal coefficients times ``1 + spread n`` (floored at
    0), ``draws`` the standard normals ``(..., shifters, 3)``."""
    return nominal_coefficients(heater) * np.maximum(1.0 + spread * np.asarray(draws), 0.0)


def phase_of_voltage(coefficients: np.ndarray, voltage: np.ndarray) -> np.ndarray:
    """``theta(V) = c1 V + c2 V**2 + c3 V**3`` (rad) for ``V >= 0`` (volts);
    ``coefficients`` ``(..., 3)`` broadcast against ``voltage``."""
    c = np.asarray(coefficients, dtype=float)
    v = np.asarray(voltage, dtype=float)
    return ((c[..., 2] * v + c[..., 1]) * v + c[..., 0]) * v


def phase_slope(coefficients: np.ndarray, voltage: np.ndarray) -> np.ndarray:
    """``dtheta/dV = c1 + 2 c2 V + 3 c3 V**2`` (rad/V)."""
    c = np.asarray(coefficients, dtype=float)
    v = np.asarray(voltage, dtype=float)
    return c[..., 0] + (2.0 * c[..., 1] + 3.0 * c[..., 2] * v) * v


def voltage_of_phase(coefficients: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """The voltage ``V >= 0`` with ``theta(V) = phase`` (the inverse of
    :func:`phase_of_voltage`; 0 for a phase <= 0).

    The curve rises and is convex for ``V >= 0``, so Newton's method started at an upper
    bound of the root (the smallest of ``phase / c1``, ``sqrt(phase / c2)``,
    ``cbrt(phase / c3)``) descends to it monotonically; a pure ``c2 V**2`` curve is inverted
    in closed form.
    """
    c = np.asarray(coefficients, dtype=float)
    t = np.maximum(np.asarray(phase, dtype=float), 0.0)
    c1, c2, c3 = c[..., 0], c[..., 1], c[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        if not np.any(c1) and not np.any(c3):
            return np.sqrt(np.divide(t, c2, out=np.zeros(np.broadcast_shapes(t.shape, c2.shape)),
                                     where=c2 > 0))
        bounds = [np.where(c1 > 0, t / c1, np.inf), np.where(c2 > 0, np.sqrt(t / c2), np.inf),
                  np.where(c3 > 0, np.cbrt(t / c3), np.inf)]
    v = np.minimum(np.minimum(bounds[0], bounds[1]), bounds[2])
    v = np.where(np.isfinite(v), v, 0.0)
    for _ in range(NEWTON_STEPS):
        slope = phase_slope(c, v)
        step = np.divide(phase_of_voltage(c, v) - t, slope, out=np.zeros_like(v), where=slope > 0)
        v = np.maximum(v - step, 0.0)
        if np.all(np.abs(step) <= 1e-15 * np.maximum(v, 1.0)):
            break
    return v


def reach(heater: str, v_max: float) -> float:
    """The largest set point the driver reaches with the nominal curve: ``f_nom(v_max)`` (rad)."""
    return float(phase_of_voltage(nominal_coefficients(heater), v_max))


def quantize_voltage(voltage: np.ndarray, dac_bits: int | None, v_max: float) -> np.ndarray:
    """Round voltages to the DAC grid ``v_max / 2**dac_bits`` (identity when ``None``)."""
    if dac_bits is None:
        return voltage
    step = v_max / (1 << dac_bits)
    return np.round(np.asarray(voltage) / step) * step


def drive_voltages(heater: str, v_max: float, dac_bits: int | None, set_points: np.ndarray) -> np.ndarray:
    """The controller: set points (rad) -> heater voltages (V), as the module docstring
    states (reachable set points driven as asked, others wrapped by 2 pi, the nominal
    inverse, the DAC, and clipping at ``v_max``)."""
    s = np.asarray(set_points, dtype=float)
    s = np.where((s >= 0.0) & (s <= reach(heater, v_max)), s, np.mod(s, TWO_PI))
    v = voltage_of_phase(nominal_coefficients(heater), s)
    return np.minimum(quantize_voltage(v, dac_bits, v_max), v_max)


def set_points_for(heater: str, voltage: np.ndarray) -> np.ndarray:
    """The set points that drive ``voltage`` (the nominal curve; the inverse of the
    controller for voltages in ``[0, v_max]`` on a continuous DAC)."""
    return phase_of_voltage(nominal_coefficients(heater), voltage)


def spread_heat(square_voltage: np.ndarray, pairs: np.ndarray, kappa) -> np.ndarray:
    """``u_j = V_j**2 + sum_{i neighbour of j} kappa_ij V_i**2`` over the last axis
    (:func:`insitu.photonics.errors.apply_crosstalk` on squared voltages)."""
    from .errors import apply_crosstalk

    return apply_crosstalk(square_voltage, pairs, kappa)


def heater_phases(coefficients: np.ndarray, voltage: np.ndarray, pairs: np.ndarray, kappa) -> np.ndarray:
    """The phases (rad, before static offsets) of shifters driven at ``voltage``: each its
    own curve at the heat it receives, crosstalk included (module docstring)."""
    heat = spread_heat(np.square(voltage), pairs, kappa)
    return phase_of_voltage(coefficients, np.sqrt(heat))


# ---------------------------------------------------------------------------------------
# Compensation


class Compensation(NamedTuple):
    """The heat that gives the target phases, and how many shifters had to be clipped."""

    heat: np.ndarray  # (K, m): V**2 for heater models, the set point (rad) for the phase model
    clipped: np.ndarray  # per leading (device) index: shifters outside [0, v_max] after all rounds


def _banded(pairs: np.ndarray, n: int, kappa) -> np.ndarray:
    """``I + K`` in ``scipy.linalg.solve_banded``'s (1, 1) layout, ``K[j, i]`` the crosstalk of
    heater ``i`` onto ``j``: a number for every direction, or ``(2, P)`` per pair (row 0: the
    pair's first heater onto its second). The layout's neighbours are (i, i+1) pairs, so
    ``K`` is tridiagonal."""
    ab = np.zeros((3, n))
    ab[1] = 1.0
    if pairs.size:
        if np.any(pairs[:, 1] != pairs[:, 0] + 1):
            raise ValueError("heater neighbours must be (i, i+1) pairs to be compensated")
        k = np.broadcast_to(np.asarray(kappa, dtype=float), (2, len(pairs)))
        ab[2, pairs[:, 0]] = k[0]  # subdiagonal K[i+1, i]: heater i onto i + 1
        ab[0, pairs[:, 1]] = k[1]  # superdiagonal K[i, i+1]: heater i + 1 onto i
    return ab


def _solve(ab: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    from scipy.linalg import solve_banded

    return solve_banded((1, 1), ab, rhs)


def compensate(targets: np.ndarray, pairs: np.ndarray, kappa_hat, heat_of_phase, heat_max: float
               ) -> Compensation:
    """The heat per shifter (``u``, V**2 for heater models, rad for the phase model) that
    gives the ``targets`` (rad) under the crosstalk estimate ``kappa_hat``, non-negative by
    the 2 pi freedom of every phase, clipped into ``[0, heat_max]`` when no such heat exists.

    ``targets`` is ``(K, m)``; ``kappa_hat`` a number, or ``(K, 2, P)`` per device, direction
    and pair (:func:`_banded`); ``heat_of_phase(phase)`` the calibrated own-heat needed for
    ``phase`` per shifter (``(K, m)`` in and out). Returns the heat ``(K, m)`` and the
    clipped count ``(K,)``.
    """
    t = np.mod(np.asarray(targets, dtype=float), TWO_PI)
    k_hat = np.asarray(kappa_hat, dtype=float)
    per_device = k_hat.ndim == 3
    turns = np.zeros_like(t)
    heat = np.empty_like(t)
    # I + K_hat is the same in every round: only the targets move by 2 pi
    bands = [_banded(pairs, t.shape[1], k_hat[d] if per_device else k_hat) for d in range(t.shape[0])]
    for _ in range(COMPENSATION_ROUNDS):
        wanted = heat_of_phase(t + TWO_PI * turns)
        for d, ab in enumerate(bands):  # one banded solve per device: O(m)
            heat[d] = _solve(ab, wanted[d])
        negative = heat < 0
        if not negative.any():
            break
        turns += negative
    clipped = np.sum((heat < 0) | (heat > heat_max), axis=-1)
    return Compensation(np.clip(heat, 0.0, heat_max), clipped)


@dataclass(frozen=True, eq=False)
class ControlCalibration:
    """What a lab measured of one mesh's control layer: every heater's curve
    (``theta_heater``, ``phi_heater``: ``(..., m, 3)``, None for the phase model) and the
    crosstalk of every neighbour pair (``kappa``: ``(..., 2, 2, P)``: shifter kind (theta,
    phi), direction (row 0: the pair's first heater onto its second), pair)."""

    theta_heater: np.ndarray | None
    phi_heater: np.ndarray | None
    kappa: np.ndarray


def calibrate_control(theta_heater, phi_heater, kappa: float, calibration_error: float,
                      draws: np.ndarray, n_pairs: int) -> ControlCalibration:
    """A calibration of heater curves and crosstalk, each element estimated with error
    ``calibration_error`` (as every static quantity, :mod:`insitu.photonics.calibration`):
    relative, ``c_hat = c (1 + sigma n)`` for every curve coefficient and
    ``kappa_hat = kappa (1 + sigma n)`` for the crosstalk of every pair, kind and direction
    (a chip without crosstalk is measured to have none).

    ``draws`` holds the standard normals ``(..., control_draws(m, n_pairs))``: the theta
    curves, the phi curves, then the crosstalk (drawn whatever the heater model, so every
    model sees the same ones).
    """
    sigma = float(calibration_error)
    lead = draws.shape[:-1]
    n_curve = draws.shape[-1] - 4 * n_pairs
    k_hat = kappa * (1.0 + sigma * draws[..., n_curve:].reshape(lead + (2, 2, n_pairs)))
    if theta_heater is None:
        return ControlCalibration(None, None, k_hat)
    m = theta_heater.shape[-2]
    curves = draws[..., :n_curve].reshape(lead + (2, m, 3))
    return ControlCalibration(theta_heater * (1.0 + sigma * curves[..., 0, :, :]),
                              phi_heater * (1.0 + sigma * curves[..., 1, :, :]), k_hat)


def control_draws(n_mzis: int, n_pairs: int) -> int:
    """Standard normals per mesh that :func:`calibrate_control` takes."""
    return 2 * n_mzis * 3 + 4 * n_pairs


def compensated_set_points(net, params: np.ndarray, devices, control) -> np.ndarray:
    """The set points that give ``params`` as the phases of every shifter of a network
    (before static offsets), solved per layer and kind with the calibrated heater curves
    and crosstalk of ``control`` (one :class:`ControlCalibration` per layer; module
    docstring). ``params`` ``(K, P)``; ``devices`` the chip's layers (their error model says
    the heater model and range)."""
    out = np.array(params, dtype=float, copy=True)
    for layer in range(net.n_layers):
        dev, cal = devices[layer], control[layer]
        kinds = zip(net.layer_phases(out, layer), (cal.theta_heater, cal.phi_heater),
                    (cal.kappa[..., 0, :, :], cal.kappa[..., 1, :, :]))
        for view, curves, kappa in kinds:
            view[...] = _compensated(view, dev.neighbour_pairs, kappa, dev.model, curves)
    return out


def _compensated(targets: np.ndarray, pairs: np.ndarray, kappa_hat, model, curves) -> np.ndarray:
    t = np.atleast_2d(targets)
    if model.heater == "phase":  # the heat is the set point itself, in [0, 2 pi)
        heat, _ = compensate(t, pairs, kappa_hat, lambda phase: phase, np.nextafter(TWO_PI, 0.0))
        return heat.reshape(np.shape(targets))
    heat, _ = compensate(t, pairs, kappa_hat, lambda phase: np.square(voltage_of_phase(curves, phase)),
                         model.v_max**2)
    return set_points_for(model.heater, np.sqrt(heat)).reshape(np.shape(targets))
