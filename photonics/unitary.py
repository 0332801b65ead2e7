"""Programming a target unitary onto a sampled chip: the physics of the matrix experiment.

A chip is a layout (:mod:`photonics.layout`, standard or 3-splitter MZIs, with an output
phase screen ``gamma``) and its sampled static errors (:class:`photonics.errors.DeviceErrors`).
Each method below writes phases ``(theta, phi, gamma)`` to the chip and returns what the chip
then realises, ``U = transfer_matrix(layout, theta, phi, chip, gamma)``, scored against the
target ``U_t``:

* matrix error ``E = ||U - U_t||_F / sqrt(N)`` (:func:`matrix_error`; the RMS error per
  column, 0 for an exact chip, ``sqrt(2)`` for an unrelated unitary);
* fidelity ``F = |tr(U_t^H U)|^2 / N^2`` (:func:`fidelity`; 1 only for ``U = e^{i a} U_t``:
  blind to a global phase, but not to loss, which lowers it by the mean power transmission
  squared; ``E^2 = 2 - 2 Re tr(U_t^H U) / N`` for a lossless chip).

Methods (one function each, arrays in and arrays out, random streams passed in):

* :func:`program_naive`: the ideal decomposition's phases (:func:`photonics.decompose.decompose`);
* :func:`program_corrected`: those phases through the local hardware correction
  (:func:`photonics.correction.correct_mesh`) with a calibrated twin's errors;
* :func:`fit_twin`: gradient descent (L-BFGS) of the matrix loss ``L = ||U - U_t||_F^2`` on a
  calibrated twin, exact adjoint gradients, from the corrected phases; then the chip is
  programmed with the result;
* :func:`fit_insitu`: gradient descent (Adam) of the same loss on the chip itself, with the
  gradient *measured* by an in situ protocol (:mod:`photonics.protocols`, cotangent launch
  scheme: the ``N`` basis vectors forward, the rows of ``2 conj(Y - U_t^T)`` backward,
  their sum passes; tap noise and I/O error of the chip's model included), and the
  output-screen gradient from the read outputs, from the naive phases; the chip keeps the
  iterate of lowest measured loss.

The matrix loss seen by the in situ protocols: launching the basis vectors ``e_j`` reads
the columns of ``U``, ``Y = U^T`` (row ``j`` is ``U e_j``); with ``G = 2 dL/dY = 2 conj(Y - U_t^T)``
(Wirtinger) every shifter's derivative is ``-Im sum_j x_eta,j x_adj_eta,j``, which the
protocols measure, and the screen's is ``-Im sum_j Y_jk G_jk``.

Phases are written through the chip's phase model (:func:`photonics.errors.program_phases`:
offsets, crosstalk, DAC); the descent directions are gradients with respect to the actual
phases, as in training (exact when the chip adds fixed offsets, the default).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .correction import correct_mesh
from .decompose import Decomposition, decompose
from .errors import DeviceErrors
from .layout import MeshLayout
from .optim import Adam
from .propagation import ideal_gradient, transfer_matrix
from .protocols import MEASURED_PROTOCOLS, forward_pass, layer_gradient

FIT_START = ("naive", "corrected")


class Programmed(NamedTuple):
    """Phases written to a chip and what it realises.

    ``history``: the chip's matrix error before the first step and after every step of a
    fitting method (empty for ``naive`` and ``corrected``).
    """

    theta: np.ndarray
    phi: np.ndarray
    gamma: np.ndarray
    matrix: np.ndarray
    error: float
    fidelity: float
    history: np.ndarray


def haar_unitary(n: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random ``n x n`` unitary: QR of a complex Ginibre matrix with the phases of
    ``R``'s diagonal moved into ``Q`` (Mezzadri's recipe). Draws ``2 n^2`` normals."""
    z = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / np.sqrt(2.0)
    q, r = np.linalg.qr(z)
    d = np.diag(r)
    return q * (d / np.abs(d))


def matrix_error(u, target) -> np.ndarray:
    """``||U - U_t||_F / sqrt(N)`` over the last two axes (dimensionless amplitude: the RMS
    error of a column)."""
    u, target = np.asarray(u), np.asarray(target)
    return np.linalg.norm(u - target, axis=(-2, -1)) / np.sqrt(target.shape[-1])


def fidelity(u, target) -> np.ndarray:
    """``|tr(U_t^H U)|^2 / N^2`` over the last two axes (dimensionless, in ``[0, 1]`` when
    ``U`` is a contraction: a passive chip)."""
    u, target = np.asarray(u), np.asarray(target)
    overlap = np.einsum("...ij,...ij->...", np.conj(target), u)
    return np.abs(overlap) ** 2 / target.shape[-1] ** 2


def _result(layout, theta, phi, gamma, chip, target, history=()) -> Programmed:
    u = transfer_matrix(layout, theta, phi, chip, gamma)
    return Programmed(theta, phi, gamma, u, float(matrix_error(u, target)), float(fidelity(u, target)),
                      np.asarray(history, dtype=float))


def _ideal(layout: MeshLayout, target, ideal: Decomposition | None) -> Decomposition:
    """The ideal decomposition of ``target`` (``ideal`` when given: decomposed once per target)."""
    return decompose(layout, target) if ideal is None else ideal


def program_naive(layout: MeshLayout, target, chip: DeviceErrors | None,
                  ideal: Decomposition | None = None) -> Programmed:
    """The ideal decomposition's phases written to the chip as they are (``ideal``: the
    decomposition of ``target``, computed here when not given)."""
    d = _ideal(layout, target, ideal)
    return _result(layout, d.theta, d.phi, d.gamma, chip, target)


def program_corrected(layout: MeshLayout, target, chip: DeviceErrors | None, twin: DeviceErrors,
                      ideal: Decomposition | None = None) -> Programmed:
    """The ideal decomposition corrected MZI by MZI with the twin's coupler errors and phase
    offsets (:func:`photonics.correction.correct_mesh`), written to the chip."""
    d = _ideal(layout, target, ideal)
    c = correct_mesh(layout, d.theta, d.phi, twin, d.gamma)
    return _result(layout, c.theta, c.phi, c.gamma, chip, target)


def matrix_gradient(layout: MeshLayout, theta, phi, gamma, target, device: DeviceErrors | None = None):
    """Exact matrix loss ``||U - U_t||_F^2`` of a device and its gradient with respect to
    the actual phases: ``(loss, d_theta, d_phi, d_gamma)`` (adjoint method, the ``N`` basis
    vectors as the batch)."""
    target = np.asarray(target)
    n = layout.n_ports
    u = transfer_matrix(layout, theta, phi, device, gamma)
    residual = u - target
    g = 2.0 * np.conj(residual.T)  # G = 2 dL/dY for Y = U^T (launch j reads column j)
    d_theta, d_phi, d_gamma = ideal_gradient(layout, theta, phi, np.eye(n, dtype=complex), g, device, gamma)
    return float(np.sum(np.abs(residual) ** 2)), d_theta, d_phi, d_gamma


def _read(layout, theta, phi, gamma, target, chip, rng):
    """Launch the basis vectors and read the outputs: ``(basis, U, forward pass, Y - U_t^T)``."""
    u = transfer_matrix(layout, theta, phi, chip, gamma)
    basis = np.eye(layout.n_ports, dtype=complex)
    fwd = forward_pass(layout, theta, phi, basis, chip, rng, matrix=u)
    return basis, u, fwd, fwd.field - np.asarray(target).T


def measured_matrix_loss(layout: MeshLayout, theta, phi, gamma, target, chip: DeviceErrors | None, rng=None) -> float:
    """The matrix loss as the chip reads it, ``||Y - U_t^T||_F^2`` with ``Y`` the read outputs
    of the ``N`` basis vectors (I/O error of ``chip.model`` drawn from ``rng``; ``None``:
    noise-free). One forward pass of ``N`` launches."""
    return _read_loss(layout, theta, phi, gamma, target, chip, rng)[0]


def _read_loss(layout, theta, phi, gamma, target, chip, rng) -> tuple[float, np.ndarray]:
    """:func:`measured_matrix_loss` and the chip's true ``U`` it was read from."""
    _, u, _, residual = _read(layout, theta, phi, gamma, target, chip, rng)
    return float(np.sum(np.abs(residual) ** 2)), u


def measured_matrix_gradient(layout: MeshLayout, theta, phi, gamma, target, chip: DeviceErrors | None, rng=None,
                             protocol: str = "three_pass"):
    """The matrix loss and its gradient as a chip measures them: ``(loss, d_theta, d_phi,
    d_gamma)``.

    The basis vectors are launched and their outputs read (``Y``, with the chip's I/O
    error); the controller forms ``G = 2 conj(Y - U_t^T)`` and the loss from the read ``Y``;
    the shifters' gradient is measured by ``protocol`` (``three_pass`` or ``analog``) with
    the cotangent launch scheme (:func:`photonics.protocols.layer_gradient`; tap noise and I/O
    error of ``chip.model``, drawn from ``rng``; ``None``: noise-free), the screen's from the
    read outputs, ``-Im sum_j Y_jk G_jk``. Every pass meets the whole chip, screen included.
    """
    return _measure(layout, theta, phi, gamma, target, chip, rng, protocol)[:4]


def _measure(layout, theta, phi, gamma, target, chip, rng, protocol):
    """:func:`measured_matrix_gradient` and the chip's true ``U`` its forward pass ran on:
    ``(loss, d_theta, d_phi, d_gamma, U)``."""
    if protocol not in MEASURED_PROTOCOLS:
        raise ValueError(f"unknown measured protocol {protocol!r}: expected one of {MEASURED_PROTOCOLS}")
    basis, u, fwd, residual = _read(layout, theta, phi, gamma, target, chip, rng)
    g = 2.0 * np.conj(residual)
    flat = layer_gradient(layout, theta, phi, basis, fwd, g, None, chip, rng, protocol, "cotangent", matrix=u)
    m = layout.n_mzis
    d_gamma = -np.imag(np.sum(fwd.field * g, axis=0))
    return float(np.sum(np.abs(residual) ** 2)), flat[:m], flat[m:], d_gamma, u


def _start(layout, target, start, twin, ideal):
    d = _ideal(layout, target, ideal)
    if start == "naive":
        return d.theta, d.phi, d.gamma
    if start == "corrected":
        if twin is None:
            raise ValueError("start = 'corrected' needs a twin")
        c = correct_mesh(layout, d.theta, d.phi, twin, d.gamma)
        return c.theta, c.phi, c.gamma
    raise ValueError(f"unknown start {start!r}: expected one of {', '.join(FIT_START)}")


def fit_twin(layout: MeshLayout, target, chip: DeviceErrors | None, twin: DeviceErrors, steps: int = 100,
             start: str = "corrected", ideal: Decomposition | None = None) -> Programmed:
    """Fit the phases to the target on the twin (L-BFGS, at most ``steps`` iterations, exact
    gradients), starting from ``start`` (``"corrected"``: the twin's corrected phases, or
    ``"naive"``), then write them to the chip. ``history``: the chip's matrix error at the
    start and after every iteration."""
    from scipy.optimize import minimize

    theta, phi, gamma = _start(layout, target, start, twin, ideal)
    m = layout.n_mzis
    history = [float(matrix_error(transfer_matrix(layout, theta, phi, chip, gamma), target))]

    def split(p):
        return p[:m], p[m:2 * m], p[2 * m:]

    def loss(p):
        value, d_theta, d_phi, d_gamma = matrix_gradient(layout, *split(p), target, twin)
        return value, np.concatenate([d_theta, d_phi, d_gamma])

    def record(p):
        theta, phi, gamma = split(p)
        history.append(float(matrix_error(transfer_matrix(layout, theta, phi, chip, gamma), target)))

    p0 = np.concatenate([theta, phi, gamma])
    if steps > 0:
        p0 = minimize(loss, p0, jac=True, method="L-BFGS-B", callback=record,
                      options={"maxiter": int(steps), "gtol": 1e-14, "ftol": 1e-15}).x
    theta, phi, gamma = split(p0)
    return _result(layout, theta, phi, gamma, chip, target, history)


def fit_insitu(layout: MeshLayout, target, chip: DeviceErrors | None, rng=None, steps: int = 100, lr: float = 0.01,
               protocol: str = "three_pass", start: str = "naive", twin: DeviceErrors | None = None,
               ideal: Decomposition | None = None) -> Programmed:
    """Fit the phases to the target on the chip with measured gradients (Adam, rate ``lr``,
    ``steps`` steps; :func:`measured_matrix_gradient`), from ``start`` (``"naive"``, or
    ``"corrected"`` with a ``twin``). ``rng`` drives the measurement noise (``None``:
    noise-free).

    The chip is left at the iterate with the lowest *measured* loss (each gradient
    measurement reads the loss of the phases it starts from; the last iterate's is read with
    one more forward pass): Adam's normalised step ``lr m / sqrt(v)`` does not shrink with
    the gradient, so near a minimum it wanders by about ``lr`` (from an exact start it would
    leave it), and a controller that reads the loss keeps the best phases it has seen.
    ``history``: the chip's true matrix error at the start and after every step."""
    theta, phi, gamma = _start(layout, target, start, twin, ideal)
    m = layout.n_mzis
    p = np.concatenate([theta, phi, gamma])
    opt = Adam(lr)
    state = opt.init(p)
    history = []  # each iterate's true error, from the U its measurement already computed
    best, best_loss = p, np.inf
    for _ in range(int(steps)):
        loss, d_theta, d_phi, d_gamma, u = _measure(layout, p[:m], p[m:2 * m], p[2 * m:], target, chip, rng,
                                                    protocol)
        history.append(float(matrix_error(u, target)))
        if loss < best_loss:
            best, best_loss = p, loss
        p = opt.step(p, np.concatenate([d_theta, d_phi, d_gamma]), state)
    if steps > 0:
        loss, u = _read_loss(layout, p[:m], p[m:2 * m], p[2 * m:], target, chip, rng)
        if loss < best_loss:
            best = p
    else:
        u = transfer_matrix(layout, theta, phi, chip, gamma)
    history.append(float(matrix_error(u, target)))
    return _result(layout, best[:m], best[m:2 * m], best[2 * m:], chip, target, history)
