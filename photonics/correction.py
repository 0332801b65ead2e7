"""Local hardware error correction of MZI meshes (Bandyopadhyay, Hamerly & Englund,
"Hardware error correction for programmable photonics", Optica 8, 1247 (2021),
arXiv 2103.04993), implemented from the method's description.

An ideal MZI (50:50 couplers) with phases ``(theta, phi)`` has the 2x2 transfer matrix
``T0 = B(0) diag(e^{i theta}, 1) B(0) diag(e^{i phi}, 1)``; with splitting errors ``e1, e2``
the device realises ``T = B(e2) diag(e^{i theta'}, 1) B(e1) diag(e^{i phi'}, 1)``. Correction
converts every ideal setting into the erroneous MZI's closest one, column by column:

1. **Power splitting (theta').** With ``c_k = cos(pi/4 + e_k)``, ``s_k = sin(pi/4 + e_k)``,
   ``|T_11|^2 = c1^2 c2^2 + s1^2 s2^2 - 2 c1 c2 s1 s2 cos(theta')``, which spans
   ``[sin^2(e1 + e2), cos^2(e1 - e2)]``: an erroneous MZI cannot reach full cross (nor full
   bar) exactly. ``theta'`` solves ``|T_11|^2 = |T0_11|^2 = sin^2(theta / 2)``; outside the
   reachable range the cosine is clipped to +-1, the closest setting. The sign of
   ``theta'`` follows ``sin(theta)``.
2. **Phases (phi' and the leftover output phases).** The target of an MZI is its ideal
   block after the phases left over by earlier columns, ``A = T0 diag(e^{i l_k},
   e^{i l_{k+1}})``. With ``M = B(e2) diag(e^{i theta'}, 1) B(e1)`` the realised block is
   ``R = M diag(e^{i phi'}, 1)``, and ``diag(e^{i alpha}, e^{i beta}) R = A`` holds exactly
   for a reachable MZI (moduli match; the phase pattern of a 2x2 unitary is fixed by three
   phases up to the invariant ``arg A00 - arg A01 - arg A10 + arg A11 = pi``), with
   ``e^{i phi'} = ph(A00 conj(A01) conj(M00 conj(M01)) + A10 conj(A11) conj(M10 conj(M11)))``,
   ``e^{i alpha} = ph(A00 conj(R00) + A01 conj(R01))``,
   ``e^{i beta} = ph(A10 conj(R10) + A11 conj(R11))``
   (``ph(z) = z / |z|``; the sums stay well defined at full cross and full bar).
3. ``alpha, beta`` are the leftover phases of modes ``k, k+1``; they are passed on to the
   next column's target, and after the last column to the output phase screen.
4. The calibrated static phase offsets are subtracted from every programmed phase.

**3-splitter MZIs** (``layout.mzi = "three_splitter"``, Hamerly, Bandyopadhyay & Englund,
Nat. Commun. 13, 6831 (2022)): the device block is ``R B(e3)``, so the MZI realises
``A' = A B(e3)^-1`` instead, and ``theta'`` is solved from the splitting of ``A'`` (which
depends on the leftover phases handed over, so column by column):
``|A'_11|^2 - sin^2(e1 + e2) = sin^2(theta'/2) cos(2 e1) cos(2 e2)`` and
``|A'_21|^2 - sin^2(e1 - e2) = cos^2(theta'/2) cos(2 e1) cos(2 e2)``, so
``theta' = 2 atan2(sqrt(|A'_11|^2 - sin^2(e1 + e2)), sqrt(|A'_21|^2 - sin^2(e1 - e2)))``,
reachable when both differences are >= 0 (each clipped at 0 otherwise: the closest
setting). The same solver, with ideal couplers, turns the 2x2 blocks of a decomposition into
mesh phases (:func:`realise_blocks`, used by :mod:`photonics.decompose`). For a mesh of
standard MZIs, :func:`correct_mesh` keeps the closed form of step 1 above (its numbers are
unchanged).

Modelling choices: the correction uses the calibrated coupler errors and phase offsets
(not arm losses, crosstalk or DAC steps, which it leaves as they are). In a network the
output screen of a layer is not needed: the next stage reads ``|y|`` (nonlinearity) or
port powers (readout), so the leftover phases of each layer are dropped.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from .errors import DeviceErrors, ErrorModel
from .layout import MeshLayout
from .propagation import mzi_blocks

QUARTER_PI = np.pi / 4
_IDEAL = ErrorModel()


class CorrectedPhases(NamedTuple):
    """Programmed phases that make an erroneous mesh match an ideal setting.

    ``reachable`` marks the MZIs whose ideal block the erroneous MZI matches exactly.
    """

    theta: np.ndarray
    phi: np.ndarray
    gamma: np.ndarray
    reachable: np.ndarray


def _phasor(z: np.ndarray) -> np.ndarray:
    """``z / |z|`` (1 where ``z = 0``)."""
    mag = np.abs(z)
    return np.divide(z, mag, out=np.ones_like(z), where=mag > 0)


def corrected_theta(theta, e1, e2):
    """``theta'`` of step 1 and whether the target splitting is reachable (arrays over MZIs)."""
    theta = np.asarray(theta, dtype=float)
    c1, s1 = np.cos(QUARTER_PI + e1), np.sin(QUARTER_PI + e1)
    c2, s2 = np.cos(QUARTER_PI + e2), np.sin(QUARTER_PI + e2)
    target = np.sin(theta / 2.0) ** 2
    cos_theta = (c1**2 * c2**2 + s1**2 * s2**2 - target) / (2.0 * c1 * c2 * s1 * s2)
    reachable = np.abs(cos_theta) <= 1.0 + 1e-12
    sign = np.where(np.sin(theta) < 0, -1.0, 1.0)
    return sign * np.arccos(np.clip(cos_theta, -1.0, 1.0)), reachable


def splitting_theta(p11, p21, e1, e2):
    """``theta'`` in ``[0, pi]`` of an MZI with splitting errors ``e1, e2`` whose block has
    ``|T_11|^2 = p11`` and ``|T_21|^2 = p21``, and whether that splitting is reachable
    (module docstring: the atan2 form, accurate at full cross and full bar)."""
    x = p11 - np.sin(e1 + e2) ** 2
    y = p21 - np.sin(e1 - e2) ** 2
    reachable = (x >= -1e-12) & (y >= -1e-12)
    return 2.0 * np.arctan2(np.sqrt(np.clip(x, 0.0, None)), np.sqrt(np.clip(y, 0.0, None))), reachable


def _match_phases(a00, a01, a10, a11, b00, b01, b10, b11):
    """Step 2: ``(e^{i phi'}, alpha, beta)`` with ``diag(e^{i alpha}, e^{i beta}) M
    diag(e^{i phi'}, 1) = A`` for target ``A = (a..)`` and core ``M = (b..)``."""
    e_phi = _phasor(a00 * np.conj(a01) * np.conj(b00 * np.conj(b01))
                    + a10 * np.conj(a11) * np.conj(b10 * np.conj(b11)))
    r00, r10 = b00 * e_phi, b10 * e_phi
    alpha = np.angle(a00 * np.conj(r00) + a01 * np.conj(b01))
    beta = np.angle(a10 * np.conj(r10) + a11 * np.conj(b11))
    return e_phi, alpha, beta


def _lossless_core(theta, e1, e2):
    """Blocks of ``B(e2) diag(e^{i theta}, 1) B(e1)`` (an MZI at ``phi = 0``, no loss)."""
    one, zero = np.ones(np.shape(theta)), np.zeros(np.shape(theta))
    couplers = DeviceErrors(np.broadcast_to(e1, one.shape), np.broadcast_to(e2, one.shape), one, one, one, zero,
                            zero, zero, _IDEAL)
    return mzi_blocks(theta, zero, couplers)


class _Solved(NamedTuple):
    theta: np.ndarray
    reachable: np.ndarray
    core: tuple  # the blocks of B(e2) diag(e^{i theta}, 1) B(e1)


def realise_blocks(layout: MeshLayout, targets, e1, e2, e3=None, sign=None, solved: _Solved | None = None):
    """Phases that make the MZIs of ``layout`` (couplers ``e1, e2``, third couplers ``e3``
    for 3-splitter MZIs) realise 2x2 blocks ``targets``, column by column (steps 1-3).

    ``targets``: ``(t11, t12, t21, t22)``, arrays ``(..., M)``; the mesh of these blocks is
    realised as ``diag(e^{i left}) U(theta', phi')``. ``sign``: the sign of each ``theta'``
    (default +1). ``solved``: ``theta'``, reachability and core blocks computed beforehand
    (standard MZIs whose splitting is known; otherwise each column's comes from its target,
    :func:`splitting_theta`). Returns ``(theta', phi', left (..., N), reachable)``.
    """
    t11, t12, t21, t22 = targets
    e1, e2 = np.asarray(e1, dtype=float), np.asarray(e2, dtype=float)
    lead = np.broadcast_shapes(np.shape(t11)[:-1], e1.shape[:-1])
    left = np.zeros(lead + (layout.n_ports,))  # leftover phase of every mode
    new_phi = np.empty(lead + (layout.n_mzis,))
    if solved is None:
        new_theta = np.empty(lead + (layout.n_mzis,))
        reachable = np.empty(lead + (layout.n_mzis,), dtype=bool)
    else:
        new_theta, reachable = solved.theta, solved.reachable
    for c in range(layout.depth):
        r = layout.column_range(c)
        top, bot = layout.column_modes(c)
        lt, lb = np.exp(1j * left[..., top]), np.exp(1j * left[..., bot])
        a00, a01, a10, a11 = t11[..., r] * lt, t12[..., r] * lb, t21[..., r] * lt, t22[..., r] * lb
        if e3 is not None:  # the MZI is to realise A B(e3)^-1, B(e3)^-1 = [[c3, -i s3], [-i s3, c3]]
            c3, js3 = np.cos(QUARTER_PI + e3[..., r]), 1j * np.sin(QUARTER_PI + e3[..., r])
            a00, a01 = c3 * a00 - js3 * a01, c3 * a01 - js3 * a00
            a10, a11 = c3 * a10 - js3 * a11, c3 * a11 - js3 * a10
        if solved is None:
            th, ok = splitting_theta(np.abs(a00) ** 2, np.abs(a10) ** 2, e1[..., r], e2[..., r])
            if sign is not None:
                th = th * sign[..., r]
            new_theta[..., r], reachable[..., r] = th, ok
            b00, b01, b10, b11 = _lossless_core(th, e1[..., r], e2[..., r])
        else:
            b00, b01, b10, b11 = (m[..., r] for m in solved.core)
        e_phi, alpha, beta = _match_phases(a00, a01, a10, a11, b00, b01, b10, b11)
        new_phi[..., r] = np.angle(e_phi)
        left[..., top] = alpha
        left[..., bot] = beta
    return new_theta, new_phi, left, np.broadcast_to(reachable, lead + (layout.n_mzis,))


def correct_mesh(layout: MeshLayout, theta, phi, twin: DeviceErrors, gamma=None) -> CorrectedPhases:
    """Phases to program on a device with calibrated errors ``twin`` so that it realises the
    ideal mesh ``(theta, phi, gamma)`` as closely as each MZI can (steps 1-4 above).

    The ideal mesh has the layout's MZIs (a 3-splitter layout: ideal 3-splitter MZIs).
    Arrays may carry a leading device axis. ``gamma = None`` is an ideal mesh without an
    output screen; the returned ``gamma`` then holds the leftover phases (minus the
    calibrated screen offsets), which a mesh followed by power detection can ignore.
    """
    theta = np.asarray(theta, dtype=float)
    phi = np.asarray(phi, dtype=float)
    e1, e2 = np.asarray(twin.bs1), np.asarray(twin.bs2)
    if layout.three_splitter:
        targets = mzi_blocks(theta, phi, None, np.zeros_like(theta))
        sign = np.where(np.sin(theta) < 0, -1.0, 1.0)
        new_theta, new_phi, left, reachable = realise_blocks(layout, targets, e1, e2, np.asarray(twin.bs3), sign)
    else:
        new_theta, reachable = corrected_theta(theta, e1, e2)
        lossless = replace(twin, arm_top=np.ones_like(e1), arm_bottom=np.ones_like(e1), arm_input=np.ones_like(e1))
        core = mzi_blocks(new_theta, np.zeros_like(new_theta), lossless)
        _, new_phi, left, reachable = realise_blocks(layout, mzi_blocks(theta, phi, None), e1, e2,
                                                     solved=_Solved(new_theta, reachable, core))
    screen = left if gamma is None else np.asarray(gamma, dtype=float) + left
    return CorrectedPhases(
        theta=new_theta - twin.theta_offset,
        phi=new_phi - twin.phi_offset,
        gamma=screen - twin.gamma_offset,
        reachable=reachable,
    )


def correct_network(net, params: np.ndarray, twins) -> np.ndarray:
    """Corrected flat parameters of every layer of a network (``twins``: one per layer).

    Each layer's leftover output phases are dropped: ``|y|`` and port powers ignore them.
    """
    corrected = []
    for layer, lay in enumerate(net.layouts):
        theta, phi = net.layer_phases(params, layer)
        fixed = correct_mesh(lay, theta, phi, twins[layer])
        corrected.append((fixed.theta, fixed.phi))
    return net.join(corrected)
