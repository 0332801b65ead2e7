"""Simulated in situ gradient measurements (Pai et al. 2023; Hughes et al. 2018).

Every gradient here is computed from fields that were actually propagated through the
erroneous device and read through modelled detectors, never from the adjoint formula:

* **forward pass**: generate ``x`` (at unit power, rescaled by its stored norm), record the
  tap powers ``p``, read the output amplitudes ``y``;
* **adjoint pass**: generate the adjoint seed ``g`` from the output side, record ``p_adj``,
  read ``x_adj`` at the input ports;
* **sum pass**: generate ``x - i conj(x_adj)`` from the input side, record ``p_sum``.

Protocols:

* ``three_pass`` (digital subtraction): ``dL/d eta = (p_sum - p - p_adj) / 2``, each example
  measured on its own and the results summed digitally;
* ``analog`` (toggle): launch ``x - i e^{i zeta} conj(x_adj)`` for ``zeta = 0, pi``;
  ``dL/d eta = (p(0) - p(pi)) / 4``. The photocurrents of a batch are integrated, so every
  example shares one launch scale ``d`` (the largest norm in the batch) and the tap noise
  of the integrated reading is that of the summed power;
* ``ideal``: the exact gradient of the device (what an oracle would measure).

For a lossless device the sum pass reproduces ``conj`` of the backward field at every tap,
so both protocols equal ``-Im(x x_adj)`` exactly; loss imbalance, I/O error and tap noise
make them deviate, by amounts that come out of this simulation.

Tap powers are in units of the launch power: a tap reading ``p`` carries detector noise
``s sqrt(p) n`` before it is rescaled by the launch norm squared.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg.blas import zherk

from .errors import DeviceErrors, ErrorModel, perturb_io, read_tap_powers
from .network import (
    PhotonicNetwork,
    exact_gradient,
    loss_and_seed,
    nonlinearity,
    nonlinearity_adjoint,
)
from .propagation import propagate, tap_power_sums

PROTOCOLS = ("three_pass", "analog", "ideal")
# Batches at least this many times the port count use the aggregated-statistics path.
AGGREGATE_MIN_RATIO = 2
_IDEAL_MODEL = ErrorModel()


class PassReadout(NamedTuple):
    """What one pass of light through a mesh gives the controller.

    ``field``: amplitudes read at the far side (after readout error), in true units, or
    ``None`` when nothing is read there (the sum pass).
    ``tap_powers``: tap readings, theta taps then phi taps: ``(..., B, 2M)`` per example,
    ``(..., 2M)`` integrated (analog); ``None`` without taps or when aggregated.
    ``moments``: with aggregation, the launch moments the summed readings follow from.
    """

    field: np.ndarray
    tap_powers: np.ndarray | None
    moments: "LaunchMoments | None" = None


class LaunchMoments(NamedTuple):
    """Second-moment matrices of a batch's launched unit vectors ``u_b`` with weights ``q_b``.

    ``first = sum_b q_b u_b u_b^H`` gives the summed tap powers ``a first a^H`` of a tap with
    linear map ``a``; ``second = sum_b q_b^2 u_b u_b^H`` the variance of their summed
    detector noise (``None`` without tap noise).
    """

    first: np.ndarray
    second: np.ndarray | None


def _model(dev: DeviceErrors | None) -> ErrorModel:
    return _IDEAL_MODEL if dev is None else dev.model


def _unit_launch(v: np.ndarray, scale: np.ndarray | None = None):
    """Split launch vectors into unit-power vectors and their norms (or a common scale)."""
    norm = np.linalg.norm(v, axis=-1, keepdims=True) if scale is None else scale
    unit = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)
    return unit, norm


def tap_powers(taps) -> np.ndarray:
    """``|x|^2`` at every theta and phi tap, concatenated to ``(..., B, 2M)``."""
    return np.concatenate([taps.theta.real**2 + taps.theta.imag**2, taps.phi.real**2 + taps.phi.imag**2], axis=-1)


def _pass(layout, theta, phi, v, dev, rng, backward, record_taps, scale=None, integrate=False, aggregate=False,
          read_field=True):
    """Launch ``v`` (generation error), propagate, read taps (noise) and far-side field.

    ``integrate``: the tap readings of the batch are one integrated photocurrent per tap
    (analog protocol) instead of one reading per example. ``aggregate``: record instead the
    launch moments of the batch (:class:`LaunchMoments`), from which the summed tap readings
    of one or several passes follow without per-example fields (:func:`read_summed_taps`).
    ``read_field=False``: nothing is read at the far side (the sum pass), ``field`` is None.
    """
    model = _model(dev)
    unit, norm = _unit_launch(v, scale)
    launched = perturb_io(unit, model, rng)
    readings = None
    out = None
    moments = None
    if record_taps and aggregate:
        if read_field:
            out = propagate(layout, theta, phi, launched, dev, backward=backward)
        weights = np.broadcast_to(norm**2, launched.shape[:-1] + (1,))
        moments = launch_moments(launched, weights, model.tap_noise > 0)
    elif record_taps:
        out, taps = propagate(layout, theta, phi, launched, dev, backward=backward, taps=True)
        power = tap_powers(taps)
        if integrate:
            # Integrated photocurrent of the whole batch (common launch scale): independent
            # per-example noise sums to variance s^2 * sum(p), the noise of the summed power.
            total = power.sum(axis=-2)
            readings = read_tap_powers(total, model.tap_noise, rng) * norm[..., 0, :] ** 2
        else:
            readings = read_tap_powers(power, model.tap_noise, rng) * norm**2
    else:
        out = propagate(layout, theta, phi, launched, dev, backward=backward)
    field = perturb_io(out, model, rng) * norm if read_field else None
    return PassReadout(field, readings, moments)


def launch_moments(launched: np.ndarray, weights: np.ndarray, with_second: bool) -> LaunchMoments:
    """:class:`LaunchMoments` of unit launch vectors (rows) with power weights.

    Each moment is one Hermitian rank-B update (BLAS ``zherk``, half the work of a general
    product); only its upper triangle is filled, which is all :func:`_probes` reads.
    """
    first = _upper_gram(launched * np.sqrt(weights))
    second = _upper_gram(launched * weights) if with_second else None
    return LaunchMoments(first, second)


def _upper_gram(rows: np.ndarray) -> np.ndarray:
    """Upper triangle of ``sum_b r_b r_b^H`` for rows ``r_b`` (shape ``(..., B, N)``)."""
    n = rows.shape[-1]
    flat = rows.reshape((-1,) + rows.shape[-2:])
    # rows.T is Fortran-ordered: zherk computes rows^T conj(rows) without a copy
    grams = [zherk(1.0, r.T, trans=0, lower=0) for r in flat]
    return np.stack(grams).reshape(rows.shape[:-2] + (n, n))


def _probes(moment: np.ndarray):
    """Rows ``w_j`` and signs ``c_j`` with ``sum_j c_j w_j w_j^H = moment`` (Hermitian,
    upper triangle read)."""
    values, vectors = np.linalg.eigh(moment, UPLO="U")
    rows = np.swapaxes(vectors * np.sqrt(np.abs(values))[..., None, :], -1, -2)
    return rows, np.sign(values)


def read_summed_taps(layout, theta, phi, dev, backward, signed_moment, noise_moments, tap_noise, rng):
    """Signed sum of batch-summed tap readings of one or more passes in one direction.

    For passes with launch moments ``C_k`` and signs ``c_k`` (``signed_moment = sum_k c_k C_k``),
    the noise-free part of ``sum_k c_k sum_b q_b p_b`` at a tap with linear map ``a`` is
    ``a (sum_k c_k C_k) a^H``. Writing that Hermitian matrix as ``sum_j c_j w_j w_j^H`` turns it
    into ``sum_j c_j |a w_j|^2``: ``N`` probe vectors through the mesh, whatever the batch.
    Independent per-example detector noise ``q_b s sqrt(p_b) n_b`` of every reading sums to a
    Gaussian of variance ``s^2 sum_k sum_b q_b^2 p_b``, from ``noise_moments`` the same way.

    Returns the noisy signed sums ``(..., 2M)`` (theta taps, then phi taps).
    """
    rows, signs = _probes(signed_moment)
    n = rows.shape[-2]
    noisy = tap_noise > 0 and rng is not None and noise_moments is not None
    if noisy:
        noise_rows, _ = _probes(noise_moments)
        rows = np.concatenate([rows, noise_rows], axis=-2)
    per_probe = tap_power_sums(layout, theta, phi, rows, dev, backward, groups=rows.shape[-2])
    weights = signs[..., None, :]  # (..., 1, n): signed sum over the first n probes
    signal = np.concatenate([(weights @ t[..., :n, :])[..., 0, :] for t in per_probe[:2]], axis=-1)
    if not noisy:
        return signal
    variance = np.concatenate([t[..., n:, :].sum(axis=-2) for t in per_probe[:2]], axis=-1)
    return signal + tap_noise * np.sqrt(np.clip(variance, 0.0, None)) * rng.standard_normal(signal.shape)


def forward_pass(layout, theta, phi, x, dev=None, rng=None, record_taps=True, aggregate=False) -> PassReadout:
    """Forward pass: launch ``x`` from the input side; read taps ``p`` and output ``y``."""
    return _pass(layout, theta, phi, x, dev, rng, False, record_taps, aggregate=aggregate)


def adjoint_pass(layout, theta, phi, g, dev=None, rng=None, record_taps=True, aggregate=False) -> PassReadout:
    """Adjoint pass: launch ``g`` from the output side; read taps ``p_adj`` and ``x_adj``."""
    return _pass(layout, theta, phi, g, dev, rng, True, record_taps, aggregate=aggregate)


def sum_pass(layout, theta, phi, x, x_adj, dev=None, rng=None, zeta: float = 0.0, scale=None, integrate=False,
             aggregate=False):
    """Sum pass: launch ``x - i e^{i zeta} conj(x_adj)`` from the input side; tap readings
    (or, with ``aggregate``, the launch moments from which summed readings follow)."""
    w = x - 1j * np.exp(1j * zeta) * np.conj(x_adj)
    readout = _pass(layout, theta, phi, w, dev, rng, False, True, scale, integrate, aggregate, read_field=False)
    return readout.moments if aggregate else readout.tap_powers


def _add(a, b):
    return None if a is None or b is None else a + b


def three_pass_gradient(p: np.ndarray, p_adj: np.ndarray, p_sum: np.ndarray) -> np.ndarray:
    """Digital subtraction, summed over the batch: ``sum_b (p_sum - p - p_adj) / 2``."""
    return 0.5 * np.sum(p_sum - p - p_adj, axis=-2)


def analog_gradient(p_plus: np.ndarray, p_minus: np.ndarray) -> np.ndarray:
    """Analog toggle on integrated readings: ``(p(0) - p(pi)) / 4``."""
    return 0.25 * (p_plus - p_minus)


def analog_scale(x: np.ndarray, x_adj: np.ndarray) -> np.ndarray:
    """Common launch scale of a batch: the largest norm of ``x -+ i conj(x_adj)`` in it."""
    w_plus = x - 1j * np.conj(x_adj)
    w_minus = x + 1j * np.conj(x_adj)
    norms = np.maximum(np.linalg.norm(w_plus, axis=-1), np.linalg.norm(w_minus, axis=-1))
    return norms.max(axis=-1)[..., None, None]


class MeasuredGradient(NamedTuple):
    """Result of one gradient measurement of a network on a device."""

    loss: np.ndarray  # batch-mean loss computed from the measured outputs
    grad: np.ndarray  # flat, like the parameters
    probs: np.ndarray  # class probabilities from the measured outputs


def measure_gradient(
    net: PhotonicNetwork,
    params: np.ndarray,
    x: np.ndarray,
    labels: np.ndarray,
    devices=None,
    protocol: str = "three_pass",
    rng=None,
    aggregate: bool | None = None,
) -> MeasuredGradient:
    """Measure the gradient of the batch-mean loss of a network on a device, in situ.

    Runs the forward passes layer by layer (the nonlinearity and loss are applied digitally
    to the read outputs), the adjoint passes from the last layer back, and the sum passes
    of ``protocol``. ``rng`` (a Generator, or a ``DeviceNoise`` for an ensemble) drives tap
    noise and I/O error; ``None`` measures noise-free.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {PROTOCOLS}")
    if protocol == "ideal":
        loss, grad, probs = exact_gradient(net, params, x, labels, devices)
        return MeasuredGradient(loss, grad, probs)
    devs = [None] * net.n_layers if devices is None else devices
    record = protocol == "three_pass"
    if aggregate is None:
        aggregate = np.shape(x)[-2] >= AGGREGATE_MIN_RATIO * net.n_ports
    phases = [net.layer_phases(params, layer) for layer in range(net.n_layers)]

    inputs, outputs, p_fwd, fwd_moments = [], [], [], []
    current = np.asarray(x, dtype=complex)
    for layer, lay in enumerate(net.layouts):
        fwd = forward_pass(lay, *phases[layer], current, devs[layer], rng, record, aggregate)
        inputs.append(current)
        outputs.append(fwd.field)
        p_fwd.append(fwd.tap_powers)
        fwd_moments.append(fwd.moments)
        current = nonlinearity(fwd.field).astype(complex)

    loss, _, g, probs = loss_and_seed(net, outputs[-1], labels)
    grads = [None] * net.n_layers
    for layer in range(net.n_layers - 1, -1, -1):
        lay, dev = net.layouts[layer], devs[layer]
        theta, phi = phases[layer]
        adj = adjoint_pass(lay, theta, phi, g, dev, rng, record, aggregate)
        x_in = inputs[layer]
        noise = _model(dev).tap_noise
        if protocol == "three_pass" and aggregate:
            summ = sum_pass(lay, theta, phi, x_in, adj.field, dev, rng, aggregate=True)
            fwd = fwd_moments[layer]
            # p_sum - p in one forward read, p_adj in one backward read; noise of all three
            forward = read_summed_taps(lay, theta, phi, dev, False, summ.first - fwd.first,
                                       _add(summ.second, fwd.second), noise, rng)
            backward = read_summed_taps(lay, theta, phi, dev, True, adj.moments.first,
                                        adj.moments.second, noise, rng)
            flat = 0.5 * (forward - backward)
        elif protocol == "three_pass":
            p_sum = sum_pass(lay, theta, phi, x_in, adj.field, dev, rng)
            flat = three_pass_gradient(p_fwd[layer], adj.tap_powers, p_sum)
        else:
            scale = analog_scale(x_in, adj.field)
            p_plus = sum_pass(lay, theta, phi, x_in, adj.field, dev, rng, 0.0, scale, True, aggregate)
            p_minus = sum_pass(lay, theta, phi, x_in, adj.field, dev, rng, np.pi, scale, True, aggregate)
            if aggregate:
                # both toggles in one read; integrated noise of each: variance s^2 d^2 sum p
                difference = read_summed_taps(lay, theta, phi, dev, False, p_plus.first - p_minus.first,
                                              _add(p_plus.second, p_minus.second), noise, rng)
                flat = 0.25 * difference
            else:
                flat = analog_gradient(p_plus, p_minus)
        m = lay.n_mzis
        grads[layer] = (flat[..., :m], flat[..., m:])
        if layer > 0:
            g = nonlinearity_adjoint(adj.field, outputs[layer - 1])
    return MeasuredGradient(loss, net.join(grads), probs)


def gradient_error(measured: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``1 - cos(measured, true)`` over the last axis (0 = perfect direction).

    NaN where either gradient is exactly zero (no direction to compare).
    """
    num = np.sum(measured * true, axis=-1)
    den = np.linalg.norm(measured, axis=-1) * np.linalg.norm(true, axis=-1)
    cos = np.divide(num, den, out=np.full_like(num, np.nan, dtype=float), where=den > 0)
    # clipped at 0: rounding can push a perfect match a hair below
    return np.maximum(0.0, 1.0 - cos)
