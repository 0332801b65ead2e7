"""Simulated in situ gradient measurement of one mesh (Pai et al. 2023; Hughes et al. 2018).

Every gradient here is computed from fields that were actually propagated through the
erroneous device and read through modelled detectors, never from the adjoint formula.
The passes of light, each returning one type:

* :func:`forward_pass` (:class:`Pass`): generate ``x`` from the input side, read ``y`` at the
  output ports;
* :func:`adjoint_pass` (:class:`Pass`): generate the adjoint seed ``g`` from the output side,
  read ``x_adj`` at the input ports;
* :func:`sum_pass` (:class:`Launch`): generate ``x - i e^{i zeta} conj(x_adj)`` from the input
  side; nothing is read at the far side.

Every pass also lights the tap monitors, whose true tap powers are ``|x_eta|^2``;
:func:`tap_readings` gives what the controller gets from them: the weighted sum,
over the launches of one or several passes in one direction, of readings
``p + s sqrt(p) n`` (units of the launch power, ``s = tap_noise``), each with its own noise.
Vectors are generated at the power of their :class:`Launch` rows and rescaled digitally.

Protocols (the formula applied to the readings):

* ``three_pass`` (digital subtraction): ``dL/d eta = (p_sum - p - p_adj) / 2``;
* ``analog`` (toggle): ``dL/d eta = (p(0) - p(pi)) / 4`` from sum passes with ``zeta = 0, pi``;
  a batch's photocurrents are integrated, which is the weighted sum of its readings (the
  noise of an integrated photocurrent equals the summed noise of its parts).

Launch schemes (how the passes of one layer are fed, :data:`LAUNCHES`):

* ``per_example``: every example and its adjoint launched on their own at unit power and
  rescaled by their norms (the chip's setting at batch 1). The analog toggle shares one
  launch scale ``d`` (the largest norm of ``x -+ i conj(x_adj)`` in the batch). A batch-mean
  loss gives ``|x_adj| ~ |x| / M``: the interference term of the sum pass shrinks with the
  batch size ``M`` while its tap noise does not;
* ``balanced``: the sum pass launches ``x/|x| - i conj(x_adj)/|x_adj|``; every reading of the
  example is rescaled by ``|x| |x_adj|``, so the interference term does not shrink;
* ``cotangent`` (the paper's Fig. 4 simulation): per layer the ``N`` basis vectors ``e_i``
  forward and the ``N`` rows ``r_i = sum_b x_bi g_b`` of the batch cotangent ``C = X^T G``
  backward, at the common scale ``c = max_i |r_i|``, and their sum passes
  ``e_i - i conj(x_adj_i)/c``; readings rescaled by ``c``. Exact without noise because
  ``sum_b x_eta,b a_eta,b = sum_i (P e_i)_eta (Q r_i)_eta`` (``P``, ``Q`` the linear maps from
  the input and output ports to a tap); ``O(N)`` launches whatever the batch. As in the
  paper's simulation code, its three-pass formula takes the adjoint tap powers from
  ``conj(x_adj_i)/c`` launched *forward* (the field the sum pass interferes with), not from
  the backward taps: ``(p_sum - p - p_c) / 2``, three noisy readings, no loss bias.

For a lossless device the sum pass reproduces ``conj`` of the backward field at every tap,
so every protocol and scheme equals ``-Im(x x_adj)`` exactly; loss, I/O error and tap noise
make them deviate, by amounts that come out of this simulation.

Two evaluations of :func:`tap_readings`, equal in law: explicit (every launch propagated
with its tap fields, one noise draw per reading) and aggregated (the weighted readings of a
direction follow from the launch moments ``sum_b w_b u_b u_b^H``, ``N`` probe vectors through
the mesh, the summed detector noise one Gaussian of the summed variance). The aggregated one
is chosen for batches of at least :data:`AGGREGATE_MIN_RATIO` times the port count.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from scipy.linalg.blas import zherk
from scipy.linalg.lapack import zpstrf

from .errors import DeviceErrors, ErrorModel, generate_io, read_io
from .propagation import propagate, tap_power_sums

MEASURED_PROTOCOLS = ("three_pass", "analog")
LAUNCHES = ("per_example", "balanced", "cotangent")
# Batches at least this many times the port count use the aggregated evaluation.
AGGREGATE_MIN_RATIO = 2
_IDEAL_MODEL = ErrorModel()


class Launch(NamedTuple):
    """Vectors a vector unit generated.

    ``rows`` ``(..., K, N)``: the fields as launched (after generation error), at the power
    the unit generates; ``scale`` ``(..., K, 1)``: the digital factor back to true units
    (the intended field is ``rows * scale`` before generation error).
    """

    rows: np.ndarray
    scale: np.ndarray


class Pass(NamedTuple):
    """A forward or adjoint pass: what was launched, and the amplitudes read at the far
    side in true units (after readout error)."""

    launch: Launch
    field: np.ndarray


class TapTerm(NamedTuple):
    """The tap readings of one launch set, each multiplied by ``weight`` (broadcasts to
    ``rows.shape[:-1]``), in a weighted sum of readings."""

    launch: Launch
    weight: np.ndarray


def device_model(dev: DeviceErrors | None) -> ErrorModel:
    """The error model of a device (the ideal model for ``None``)."""
    return _IDEAL_MODEL if dev is None else dev.model


def _safe_divide(a, b):
    """``a / b``, 0 where ``b = 0`` (a blank example launches nothing)."""
    b = np.asarray(b)
    if np.all(b > 0):
        return a / b
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(np.shape(a), b.shape), dtype=np.result_type(a, b)),
                     where=b > 0)


def generate(v: np.ndarray, model: ErrorModel, rng, scale=None) -> Launch:
    """Generate ``v / scale`` (``scale``: each row's norm by default, so unit power)."""
    v = np.asarray(v, dtype=complex)
    norm = np.linalg.norm(v, axis=-1, keepdims=True) if scale is None else np.broadcast_to(scale, v.shape[:-1] + (1,))
    return Launch(generate_io(_safe_divide(v, norm), model, rng), norm)


def _through(layout, theta, phi, rows, dev, backward, matrix):
    if matrix is None:
        return propagate(layout, theta, phi, rows, dev, backward=backward)
    return rows @ matrix if backward else rows @ np.swapaxes(matrix, -1, -2)


def forward_pass(layout, theta, phi, x, dev=None, rng=None, scale=None, matrix=None) -> Pass:
    """Forward pass: generate ``x`` (unit power per example) from the input side, read ``y``.

    ``matrix``: the device's transfer matrix, when the caller has built it already."""
    model = device_model(dev)
    launch = generate(x, model, rng, scale)
    out = _through(layout, theta, phi, launch.rows, dev, False, matrix)
    return Pass(launch, read_io(out, model, rng) * launch.scale)


def adjoint_pass(layout, theta, phi, g, dev=None, rng=None, scale=None, matrix=None) -> Pass:
    """Adjoint pass: generate ``g`` from the output side (reciprocal, transposed elements),
    read ``x_adj`` at the input ports."""
    model = device_model(dev)
    launch = generate(g, model, rng, scale)
    out = _through(layout, theta, phi, launch.rows, dev, True, matrix)
    return Pass(launch, read_io(out, model, rng) * launch.scale)


def sum_pass(x, x_adj, dev=None, rng=None, zeta: float = 0.0, scale=None) -> Launch:
    """Sum pass: generate ``x - i e^{i zeta} conj(x_adj)`` from the input side (the
    phase-conjugated adjoint is synthesised by the generator); its taps are read by
    :func:`tap_readings`, nothing at the far side."""
    w = np.conj(np.asarray(x_adj, dtype=complex))
    w *= -1j * np.exp(1j * zeta)
    w = np.add(x, w, out=w if w.shape == np.broadcast_shapes(np.shape(x), w.shape) else None)
    return generate(w, device_model(dev), rng, scale)


def tap_readings(layout, theta, phi, dev, backward: bool, terms: Sequence[TapTerm], rng, aggregate: bool = False):
    """``sum_terms sum_k w_k (p_k + s sqrt(p_k) n_k)`` over the tap readings of launches in
    one direction, ``(..., 2M)`` (theta taps, then phi taps).

    The readings' independent detector noise sums to one Gaussian of variance
    ``s^2 sum_k w_k^2 p_k`` per tap, which is how it is drawn. ``aggregate=False`` propagates
    every launch with its tap fields; ``aggregate=True`` evaluates the same sums from launch
    moments (:func:`moment_readings`), exactly equal without noise.
    """
    tap_noise = device_model(dev).tap_noise
    rows = np.concatenate([t.launch.rows for t in terms], axis=-2)
    weights = np.concatenate([np.broadcast_to(t.weight, t.launch.rows.shape[:-1]) for t in terms], axis=-1)
    if aggregate:
        return moment_readings(layout, theta, phi, dev, backward, rows, weights, tap_noise, rng)
    noisy = tap_noise > 0 and rng is not None
    columns = np.stack([weights, weights**2], axis=-1) if noisy else weights[..., None]
    return _noisy_sums(layout, theta, phi, rows, dev, backward, columns, tap_noise if noisy else 0.0, rng)


def _noisy_sums(layout, theta, phi, rows, dev, backward, columns, tap_noise, rng):
    """Weighted tap-power sums of ``rows``, ``(..., 2M)`` (theta taps, then phi taps):
    column 0 of ``columns`` weights the signal; with ``tap_noise > 0``, column 1 weights
    the summed reading variance, added as ``s sqrt(variance) n``, the summed detector noise
    of a set of readings."""
    sums = tap_power_sums(layout, theta, phi, rows, dev, backward, columns)
    signal = np.concatenate([sums.theta[..., 0, :], sums.phi[..., 0, :]], axis=-1)
    if tap_noise == 0:
        return signal
    variance = np.concatenate([sums.theta[..., 1, :], sums.phi[..., 1, :]], axis=-1)
    return signal + tap_noise * np.sqrt(np.clip(variance, 0.0, None)) * rng.standard_normal(signal.shape)


def _upper_gram(rows: np.ndarray) -> np.ndarray:
    """Upper triangle of ``sum_b r_b r_b^H`` for rows ``r_b`` (shape ``(..., B, N)``): one
    Hermitian rank-B update (BLAS ``zherk``, half the work of a general product)."""
    n = rows.shape[-1]
    flat = rows.reshape((-1,) + rows.shape[-2:])
    # rows.T is Fortran-ordered: zherk computes rows^T conj(rows) without a copy
    grams = [zherk(1.0, r.T, trans=0, lower=0) for r in flat]
    return np.stack(grams).reshape(rows.shape[:-2] + (n, n))


def _probes(moment: np.ndarray, sign: float | None = None):
    """Rows ``v_j`` and signs ``c_j`` with ``sum_j c_j v_j v_j^H = moment`` (Hermitian,
    upper triangle read).

    A moment known to be ``sign`` times a positive semidefinite one is factored by pivoted
    Cholesky, ``P^T (sign moment) P = R^H R``: ``v_j`` the rows of ``conj(R P^T)`` up to its
    rank, zero rows after; otherwise by eigendecomposition, ``v_j = sqrt|lambda_j| u_j``,
    ``c_j = sign(lambda_j)``.
    """
    if sign is None:
        values, vectors = np.linalg.eigh(moment, UPLO="U")
        rows = np.swapaxes(vectors * np.sqrt(np.abs(values))[..., None, :], -1, -2)
        return rows, np.sign(values)
    n = moment.shape[-1]
    flat = moment.reshape((-1, n, n))
    rows = np.zeros(flat.shape, dtype=complex)
    for m, out in zip(flat, rows):
        factor, pivots, rank, _ = zpstrf(sign * m, lower=0)  # info 1: rank below n
        out[:rank, pivots - 1] = np.conj(np.triu(factor[:rank]))
    return rows.reshape(moment.shape), np.full(moment.shape[:-1], float(sign))


def moment_readings(layout, theta, phi, dev, backward, rows, weights, tap_noise, rng):
    """Weighted sum of tap readings of launches ``rows`` from their moments.

    The noise-free part of ``sum_b w_b p_b`` at a tap with linear map ``a`` is ``a M a^H``
    with ``M = sum_b w_b u_b u_b^H``; writing ``M = sum_j c_j v_j v_j^H`` turns it into
    ``sum_j c_j |a v_j|^2``: ``N`` probe vectors through the mesh, whatever the batch.
    Independent detector noise ``w_b s sqrt(p_b) n_b`` of every reading sums to a Gaussian of
    variance ``s^2 a (sum_b w_b^2 u_b u_b^H) a^H``, from ``N`` more probes.
    """
    # rows of each sign in one Hermitian rank update each (launch sets are usually one-signed);
    # the same rows scaled once more by sqrt|w| give the noise moment
    noisy = tap_noise > 0 and rng is not None
    parts, signs_of, noise_parts = [], [], []
    for sign in (1.0, -1.0):
        w = np.clip(sign * weights, 0.0, None)
        keep = np.flatnonzero(np.any(w > 0, axis=tuple(range(w.ndim - 1))))
        if keep.size == w.shape[-1]:
            root = np.sqrt(w)[..., None]
            scaled = rows * root
        elif keep.size:
            root = np.sqrt(w[..., keep])[..., None]
            scaled = rows[..., keep, :]  # a copy: scaled in place
            scaled *= root
        else:
            continue
        parts.append(sign * _upper_gram(scaled))
        signs_of.append(sign)
        if noisy:
            scaled *= root
            noise_parts.append(_upper_gram(scaled))
    zero = np.zeros(rows.shape[:-2] + (rows.shape[-1],) * 2, dtype=complex)
    if len(parts) == 1:  # one-signed: a semidefinite moment
        probe_rows, signs = _probes(parts[0], signs_of[0])
    else:
        probe_rows, signs = _probes(sum(parts) if parts else zero)
    n = probe_rows.shape[-2]
    if noisy:
        noise_rows, _ = _probes(sum(noise_parts) if noise_parts else zero, 1.0)
        probe_rows = np.concatenate([probe_rows, noise_rows], axis=-2)
    columns = np.zeros(probe_rows.shape[:-1] + (2 if noisy else 1,))
    columns[..., :n, 0] = signs  # signal: signed sum of the first n probes
    if noisy:
        columns[..., n:, 1] = 1.0  # variance: plain sum of the noise probes
    return _noisy_sums(layout, theta, phi, probe_rows, dev, backward, columns, tap_noise if noisy else 0.0, rng)


def analog_scale(x: np.ndarray, x_adj: np.ndarray) -> np.ndarray:
    """Common launch scale of a batch: the largest norm of ``x -+ i conj(x_adj)`` in it,
    shape ``(..., 1, 1)``."""
    w_plus = x - 1j * np.conj(x_adj)
    w_minus = x + 1j * np.conj(x_adj)
    norms = np.maximum(np.linalg.norm(w_plus, axis=-1), np.linalg.norm(w_minus, axis=-1))
    return norms.max(axis=-1)[..., None, None]


def _sq(scale):
    return scale[..., 0] ** 2


def per_example_terms(protocol, x, fwd: Pass, adj: Pass, dev, rng):
    """Tap terms ``(forward, backward)`` of the ``per_example`` scheme."""
    x_adj = adj.field
    if protocol == "three_pass":
        summ = sum_pass(x, x_adj, dev, rng)
        forward = [TapTerm(summ, 0.5 * _sq(summ.scale)), TapTerm(fwd.launch, -0.5 * _sq(fwd.launch.scale))]
        return forward, [TapTerm(adj.launch, -0.5 * _sq(adj.launch.scale))]
    d = analog_scale(x, x_adj)
    plus = sum_pass(x, x_adj, dev, rng, 0.0, d)
    minus = sum_pass(x, x_adj, dev, rng, np.pi, d)
    return [TapTerm(plus, 0.25 * _sq(plus.scale)), TapTerm(minus, -0.25 * _sq(minus.scale))], []


def balanced_terms(protocol, x, fwd: Pass, adj: Pass, dev, rng):
    """Tap terms of the ``balanced`` scheme: sum passes of ``x/|x| -+ i conj(x_adj)/|x_adj|``,
    every reading of an example weighted by ``|x| |x_adj|``."""
    a = fwd.launch.scale
    c = np.linalg.norm(adj.field, axis=-1, keepdims=True)
    x_unit, adj_unit = _safe_divide(x, a), _safe_divide(adj.field, c)
    one = np.ones_like(a)
    weight = (a * c)[..., 0]
    if protocol == "three_pass":
        summ = sum_pass(x_unit, adj_unit, dev, rng, 0.0, one)
        # the adjoint pass launched g at unit power: its reading times |g|^2 / |x_adj|^2 is the
        # tap power of conj(x_adj) / |x_adj| that the sum pass interferes with
        adj_weight = -0.5 * (a[..., 0] * _safe_divide(_sq(adj.launch.scale), c[..., 0]))
        forward = [TapTerm(summ, 0.5 * weight), TapTerm(fwd.launch, -0.5 * weight)]
        return forward, [TapTerm(adj.launch, adj_weight)]
    plus = sum_pass(x_unit, adj_unit, dev, rng, 0.0, one)
    minus = sum_pass(x_unit, adj_unit, dev, rng, np.pi, one)
    return [TapTerm(plus, 0.25 * weight), TapTerm(minus, -0.25 * weight)], []


def cotangent_terms(protocol, layout, theta, phi, x, g, dev, rng, matrix=None):
    """Tap terms of the ``cotangent`` scheme: basis vectors forward, rows of ``C = X^T G``
    backward at the common scale ``c = max_i |r_i|``, sum passes ``e_i -+ i conj(x_adj_i)/c``
    (three-pass: plus ``conj(x_adj_i)/c`` forward for the adjoint tap powers)."""
    model = device_model(dev)
    n = layout.n_ports
    cotangent = np.swapaxes(np.asarray(x, dtype=complex), -1, -2) @ g  # rows r_i = sum_b x_bi g_b
    c = np.linalg.norm(cotangent, axis=-1, keepdims=True).max(axis=-2, keepdims=True)  # (..., 1, 1)
    basis = np.broadcast_to(np.eye(n, dtype=complex), cotangent.shape)
    one = np.ones(cotangent.shape[:-1] + (1,))
    launched_basis = generate(basis, model, rng, one)
    adj = adjoint_pass(layout, theta, phi, cotangent, dev, rng, c, matrix)
    adj_unit = _safe_divide(adj.field, c)
    weight = np.broadcast_to(c[..., 0], cotangent.shape[:-1])
    if protocol == "three_pass":
        # the paper's simulation: the adjoint tap powers come from conj(x_adj) launched
        # forward (the field the sum pass interferes with), not from the backward taps
        summ = sum_pass(basis, adj_unit, dev, rng, 0.0, one)
        conj_adj = generate(np.conj(adj_unit), model, rng, one)
        forward = [TapTerm(summ, 0.5 * weight), TapTerm(launched_basis, -0.5 * weight),
                   TapTerm(conj_adj, -0.5 * weight)]
        return forward, []
    plus = sum_pass(basis, adj_unit, dev, rng, 0.0, one)
    minus = sum_pass(basis, adj_unit, dev, rng, np.pi, one)
    return [TapTerm(plus, 0.25 * weight), TapTerm(minus, -0.25 * weight)], []


def layer_gradient(layout, theta, phi, x, fwd: Pass, g, adj: Pass, dev=None, rng=None, protocol="three_pass",
                   launch="per_example", aggregate: bool = False, matrix=None) -> np.ndarray:
    """Measured gradient ``(..., 2M)`` (theta then phi) of one mesh, summed over the batch.

    ``x``: the input batch the controller generated in ``fwd``; ``g``: the adjoint seed it
    generated in ``adj`` (``adj.field`` is the ``x_adj`` it read). ``launch`` picks the
    scheme, ``protocol`` the formula; ``aggregate`` the evaluation of the tap readings;
    ``matrix`` the device's transfer matrix if already built.
    """
    if protocol not in MEASURED_PROTOCOLS:
        raise ValueError(f"unknown measured protocol {protocol!r}: expected one of {MEASURED_PROTOCOLS}")
    if launch == "per_example":
        forward, backward = per_example_terms(protocol, x, fwd, adj, dev, rng)
    elif launch == "balanced":
        forward, backward = balanced_terms(protocol, x, fwd, adj, dev, rng)
    elif launch == "cotangent":
        forward, backward = cotangent_terms(protocol, layout, theta, phi, x, g, dev, rng, matrix)
    else:
        raise ValueError(f"unknown launch scheme {launch!r}: expected one of {LAUNCHES}")
    grad = tap_readings(layout, theta, phi, dev, False, forward, rng, aggregate)
    if backward:
        grad = grad + tap_readings(layout, theta, phi, dev, True, backward, rng, aggregate)
    return grad
