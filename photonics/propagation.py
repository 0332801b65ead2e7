"""What a mesh *does*: propagation kernels, transfer matrices, tap fields and the adjoint gradient.

Conventions (docs/design.md, section 2). Fields are complex batches of shape ``(batch, ports)``;
an ensemble of devices adds a leading axis to phases, error arrays and fields. One MZI on
modes ``(k, k+1)`` with splitting errors ``e1, e2``, arm amplitudes ``a_in, a_top,
a_bottom`` and actual phases ``theta, phi`` is

    T = B(e2) diag(a_top e^{i theta}, a_bottom) B(e1) diag(a_in e^{i phi}, 1),
    B(e) = [[cos(pi/4 + e), i sin(pi/4 + e)], [i sin(pi/4 + e), cos(pi/4 + e)]],

and an optional output phase screen multiplies port ``k`` by ``e^{i gamma_k}``. A 3-splitter
MZI (a layout with ``mzi = "three_splitter"``) has a third coupler at its input, before the
phi shifter, with its own splitting error ``e3``:

    T3 = T B(e3) = B(e2) diag(a_top e^{i theta}, a_bottom) B(e1) diag(a_in e^{i phi}, 1) B(e3),

the same two phases and taps (the phi shifter and its tap now sit between the third and the
first coupler). Every kernel below treats both kinds: the transfer blocks of a 3-splitter
MZI are those of ``T`` times ``B(e3)``; the tap kernel couples the two modes through
``B(e3)`` before the MZI (forward) or after it (backward; ``B`` is its own transpose). A mode that
no MZI of a column touches (an idle position) is multiplied by that column's idle amplitude
``10**(-idle_loss_db/20)`` (1 unless the error model sets ``idle_loss_db``).
``y = U x`` for a column vector, so a batch propagates as ``Y = X @ U.T``.

Backward propagation is reciprocal: light launched from the output side meets the
*transpose* of every element in reverse order, so a batch ``G`` comes out as ``G @ U``.

Tap monitors sit next to every phase shifter: the phi tap on the top input arm right after
the phi shifter, the theta tap on the top internal arm right after the theta shifter
(before the arm's lumped loss), the gamma tap right after the output screen. A tap field is
the field at that point; the forward and backward tap fields give the gradient

    dL/d eta = -Im(x_eta * x_adj_eta),

with ``x_adj`` launched at the output as ``g = 2 dL/dy`` (Wirtinger).

Internally fields are stored mode-major, ``(..., ports, batch)``, with the even modes in
the first rows and the odd modes after them (:func:`_split_rows`), so that the top and the
bottom modes of every MZI column are two contiguous blocks of rows.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .errors import DeviceErrors, program_phases
from .layout import MeshLayout

QUARTER_PI = np.pi / 4
# Tap fields of this many complex numbers (all devices and launches) are buffered before
# their powers are summed: large enough for few reductions, small enough to stay in cache.
_TAP_BLOCK = 1 << 15


class TapFields(NamedTuple):
    """Fields at every tap, each of shape ``(..., batch, shifters)``.

    ``theta`` and ``phi`` have one entry per MZI (flat parameter order), ``gamma`` one per
    output port (``None`` without an output phase screen).
    """

    theta: np.ndarray
    phi: np.ndarray
    gamma: np.ndarray | None


class _MZIElements(NamedTuple):
    """Per-MZI factors of ``T`` (arrays over MZIs, maybe with a device axis)."""

    phase_in: np.ndarray  # a_in e^{i phi}
    phase_top: np.ndarray  # e^{i theta}
    c1: np.ndarray
    s1: np.ndarray
    c2: np.ndarray
    s2: np.ndarray
    a_in: np.ndarray
    a_top: np.ndarray
    a_bottom: np.ndarray
    e_phi: np.ndarray  # e^{i phi}
    c3: np.ndarray | None = None  # third coupler of a 3-splitter MZI (None: standard MZI)
    s3: np.ndarray | None = None


def _elements(theta, phi, errors: DeviceErrors | None, bs3=None) -> _MZIElements:
    e_phi = np.exp(1j * phi)
    e_theta = np.exp(1j * theta)
    third = {} if bs3 is None else {"c3": np.cos(QUARTER_PI + bs3), "s3": np.sin(QUARTER_PI + bs3)}
    if errors is None:
        ones = np.ones(np.shape(theta))
        c = np.full(np.shape(theta), np.cos(QUARTER_PI))
        return _MZIElements(e_phi, e_theta, c, c, c, c, ones, ones, ones, e_phi, **third)
    return _MZIElements(
        phase_in=errors.arm_input * e_phi,
        phase_top=e_theta,
        c1=np.cos(QUARTER_PI + errors.bs1),
        s1=np.sin(QUARTER_PI + errors.bs1),
        c2=np.cos(QUARTER_PI + errors.bs2),
        s2=np.sin(QUARTER_PI + errors.bs2),
        a_in=errors.arm_input,
        a_top=errors.arm_top,
        a_bottom=errors.arm_bottom,
        e_phi=e_phi,
        **third,
    )


def _block_factors(el: _MZIElements):
    """``(A, t12, C, t22)``: the MZI blocks without the input phase, ``t11 = p A``, ``t21 = p C``."""
    q = el.a_top * el.phase_top
    b = el.a_bottom
    return (
        el.c2 * el.c1 * q - el.s2 * el.s1 * b,
        1j * (el.c2 * el.s1 * q + el.s2 * el.c1 * b),
        1j * (el.s2 * el.c1 * q + el.c2 * el.s1 * b),
        el.c2 * el.c1 * b - el.s2 * el.s1 * q,
    )


def mzi_blocks(theta, phi, errors: DeviceErrors | None = None, bs3=None):
    """The 2x2 transfer blocks ``(t11, t12, t21, t22)`` of every MZI (actual phases).

    With ``p = a_in e^{i phi}``, ``q = a_top e^{i theta}``, ``b = a_bottom``:
    ``t11 = p (c2 c1 q - s2 s1 b)``, ``t12 = i (c2 s1 q + s2 c1 b)``,
    ``t21 = i p (s2 c1 q + c2 s1 b)``, ``t22 = c2 c1 b - s2 s1 q``.
    With ``bs3`` (the third couplers' splitting errors), the blocks of 3-splitter MZIs:
    those times ``B(e3)`` on the right.
    """
    el = _elements(theta, phi, errors, bs3)
    a, t12, c, t22 = _block_factors(el)
    t11, t21 = el.phase_in * a, el.phase_in * c
    if el.c3 is None:
        return t11, t12, t21, t22
    c3, js3 = el.c3, 1j * el.s3
    return c3 * t11 + js3 * t12, js3 * t11 + c3 * t12, c3 * t21 + js3 * t22, js3 * t21 + c3 * t22


def _third(layout: MeshLayout, errors: DeviceErrors | None, theta):
    """Splitting errors of the third couplers (3-splitter MZIs: the device's ``bs3``, or 0
    for an ideal device), ``None`` for standard MZIs."""
    if not layout.three_splitter:
        return None
    return np.zeros(np.shape(theta)) if errors is None else errors.bs3


def _col(arr: np.ndarray, layout: MeshLayout, c: int) -> np.ndarray:
    """Column ``c`` of a per-MZI array, shaped to broadcast over mode-major fields."""
    return arr[..., layout.column_range(c), None]


def _actual(layout, theta, phi, errors, gamma):
    theta = np.asarray(theta, dtype=float)
    phi = np.asarray(phi, dtype=float)
    if theta.shape[-1] != layout.n_mzis or phi.shape[-1] != layout.n_mzis:
        raise ValueError(
            f"theta and phi need {layout.n_mzis} entries for {layout!r}, got {theta.shape[-1]} and {phi.shape[-1]}"
        )
    if gamma is not None and np.shape(gamma)[-1] != layout.n_ports:
        raise ValueError(f"gamma needs {layout.n_ports} entries, got {np.shape(gamma)[-1]}")
    if errors is not None and (errors.bs3 is None) == layout.three_splitter:
        sampled = "standard" if errors.bs3 is None else "3-splitter"
        raise ValueError(f"device errors sampled for {sampled} MZIs do not fit {layout!r}")
    return program_phases(errors, theta, phi, gamma)


def _to_mode_major(x: np.ndarray, n_ports: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[-1] != n_ports:
        raise ValueError(f"fields must have shape (..., batch, {n_ports}), got {x.shape}")
    # Always a fresh array: the kernels update it in place, and a caller's (B, N) array that
    # is itself a transposed view would otherwise be overwritten.
    return np.array(np.swapaxes(x, -1, -2), dtype=complex, order="C", copy=True)


def _idle(errors: DeviceErrors | None):
    """Idle-position amplitudes ``(..., depth, N)`` when they differ from 1, else ``None``."""
    if errors is None or errors.model.idle_loss_db == 0 or errors.idle_amp is None:
        return None
    return errors.idle_amp


def _run_blocks(layout: MeshLayout, blocks, xt: np.ndarray, backward: bool, idle=None) -> None:
    """Apply all columns in place to mode-major fields ``xt`` (transposed blocks if backward).

    ``idle`` (``(..., depth, N)`` or ``None``) scales every mode of a column; it is 1 on the
    modes the column's MZIs touch, so it only attenuates idle positions (a diagonal, its own
    transpose, so the same in both directions).
    """
    t11, t12, t21, t22 = blocks
    if backward:
        t12, t21 = t21, t12
    order = range(layout.depth - 1, -1, -1) if backward else range(layout.depth)
    modes, column_rows = _split_rows(layout)
    rows = xt[..., modes, :]
    if idle is not None:
        idle = idle[..., modes]
    for c in order:
        top, bot = column_rows[c]
        # views of rows for slice-indexed modes (updated in place), else copies written back
        a = rows[..., top, :]
        b = rows[..., bot, :]
        new_top = _col(t11, layout, c) * a
        new_top += _col(t12, layout, c) * b
        _combine(b, _col(t22, layout, c), b, _col(t21, layout, c), a)
        a[...] = new_top
        if not isinstance(top, slice):
            rows[..., top, :] = a
            rows[..., bot, :] = b
        if idle is not None:
            rows *= idle[..., c, :, None]
    xt[...] = rows[..., np.argsort(modes), :]


def transfer_matrix(layout: MeshLayout, theta, phi, errors: DeviceErrors | None = None, gamma=None) -> np.ndarray:
    """Transfer matrix ``U`` (``y = U x``) of the device with programmed phases.

    Built by pushing the identity through the columns (``O(depth N^2)``). With ensemble
    inputs the result has shape ``(devices, N, N)``.
    """
    theta, phi, gamma = _actual(layout, theta, phi, errors, gamma)
    n = layout.n_ports
    lead = np.broadcast_shapes(theta.shape[:-1], phi.shape[:-1])
    # Mode-major identity: row = mode, column = launched basis vector; it becomes U itself.
    u = np.broadcast_to(np.eye(n, dtype=complex), lead + (n, n)).copy()
    _run_blocks(layout, mzi_blocks(theta, phi, errors, _third(layout, errors, theta)), u, backward=False,
                idle=_idle(errors))
    if gamma is not None:
        u *= np.exp(1j * gamma)[..., :, None]
    return u


def propagate(
    layout: MeshLayout,
    theta,
    phi,
    x,
    errors: DeviceErrors | None = None,
    gamma=None,
    backward: bool = False,
    taps: bool = False,
):
    """Propagate a batch of fields ``x`` (shape ``(..., B, N)``) through the device.

    Forward returns ``x @ U.T``; ``backward=True`` launches from the output side through the
    transposed elements and returns ``x @ U``. With ``taps=True`` returns ``(out, TapFields)``
    with the field at every phase shifter.
    """
    if not taps:
        x = np.asarray(x)
        if x.shape[-2] >= layout.n_ports:
            u = transfer_matrix(layout, theta, phi, errors, gamma)
            return x @ u if backward else x @ np.swapaxes(u, -1, -2)
        theta, phi, gamma = _actual(layout, theta, phi, errors, gamma)
        xt = _to_mode_major(x, layout.n_ports)
        if backward and gamma is not None:
            xt *= np.exp(1j * gamma)[..., :, None]
        _run_blocks(layout, mzi_blocks(theta, phi, errors, _third(layout, errors, theta)), xt, backward,
                    _idle(errors))
        if not backward and gamma is not None:
            xt *= np.exp(1j * gamma)[..., :, None]
        return np.swapaxes(xt, -1, -2)
    theta, phi, gamma = _actual(layout, theta, phi, errors, gamma)
    return _propagate_taps(layout, theta, phi, x, errors, gamma, backward)


def _column_coefficients(layout, el: _MZIElements, backward: bool):
    """Per-column folded coefficients of the tap kernels (see :func:`_propagate_taps`)."""
    a, t12, c, t22 = _block_factors(el)
    if backward:
        folded = (el.a_top * el.c2, el.a_top * 1j * el.s2, el.a_in * a, el.a_in * c, t12, t22, el.e_phi)
    else:
        folded = (el.e_phi, el.phase_top * el.c1 * el.a_in, el.phase_top * 1j * el.s1, el.a_in * a, t12,
                  el.a_in * c, t22)
    if el.c3 is not None:  # the third coupler of 3-splitter MZIs, applied around the MZI
        folded = folded + (el.c3, 1j * el.s3)
    # one stacked array (coefficient, ..., MZI, 1): a column's coefficients are one slice of it
    stacked = np.stack(np.broadcast_arrays(*folded))[..., None]
    return [tuple(stacked[..., layout.column_range(c), :]) for c in range(layout.depth)]


def _combine(out, c1, x1, c2, x2):
    """``out = c1 x1 + c2 x2`` in place; ``out`` may be ``x1`` itself, not ``x2``."""
    second = c2 * x2
    np.multiply(c1, x1, out=out)
    out += second


def _couple(a, b, c, js):
    """``(a, b) <- (c a + js b, js a + c b)`` in place: a coupler ``[[c, js], [js, c]]``."""
    top = c * a
    top += js * b
    _combine(b, c, b, js, a)
    a[...] = top


def _column_blocks(layout, order, capacity: int):
    """Consecutive columns of ``order`` grouped so that each group's MZIs (a contiguous
    range of the flat order) number at most ``capacity`` (at least one column a group)."""
    blocks, current, size = [], [], 0
    for c in order:
        r = layout.column_range(c)
        if current and size + (r.stop - r.start) > capacity:
            blocks.append(current)
            current, size = [], 0
        current.append(c)
        size += r.stop - r.start
    if current:
        blocks.append(current)
    return blocks


def _span(layout, columns) -> tuple[int, int]:
    """The range ``[lo, hi)`` of flat MZI indices that consecutive ``columns`` cover."""
    ranges = [layout.column_range(c) for c in columns]
    return min(r.start for r in ranges), max(r.stop for r in ranges)


def _power_sums(fields, paired):
    """``sum_b |t_b|^2 W[b, j]`` of mode-major fields ``(..., T, B)``, overwriting them: the
    float view holds ``Re t_b, Im t_b`` side by side, ``paired`` every row of ``W`` twice."""
    flat = fields.view(float)
    np.square(flat, out=flat)
    return flat @ paired


def _split_rows(layout: MeshLayout):
    """Row order of the tap kernel's fields: even modes first, then odd modes.

    Returns ``(modes, rows)``: ``modes[r]`` is the mode held in row ``r``, ``rows[c]`` the
    row indexers of column ``c``'s top and bottom modes. Evenly spaced top modes (every
    mesh but a generic one) all have one parity, so both become contiguous row blocks and
    every MZI update reads and writes contiguous memory.
    """
    n = layout.n_ports
    n_even = (n + 1) // 2
    modes = np.concatenate([np.arange(0, n, 2), np.arange(1, n, 2)])
    row_of = np.argsort(modes)

    def rows(index):
        if isinstance(index, slice):  # step 2
            start = index.start // 2 + (n_even if index.start % 2 else 0)
            return slice(start, start + len(range(index.start, index.stop, index.step)))
        return row_of[index]

    return modes, [tuple(rows(index) for index in layout.column_modes(c)) for c in range(layout.depth)]


def _propagate_taps(layout, theta, phi, x, errors, gamma, backward, power_weights=None):
    """Per-sample field propagation that records the field at every tap (actual phases).

    Forward through one MZI (inputs ``a``, ``b``): ``t_phi = e^{i phi} a``, ``a1 = a_in t_phi``,
    ``t_theta = e^{i theta}(c1 a1 + i s1 b)``, ``v = i s1 a1 + c1 b``, outputs
    ``B(e2) (a_top t_theta, a_bottom v)``; backward applies the transposed elements in reverse.
    Evaluated with the blocks of :func:`mzi_blocks` (``t11 = p A``, ``t21 = p C``, ``p = a_in
    e^{i phi}``): forward, outputs ``(a_in A t_phi + t12 b, a_in C t_phi + t22 b)``; backward
    from outputs ``(a, b)``: ``t_theta = a_top (c2 a + i s2 b)``, ``t_phi = a_in (A a + C b)``,
    inputs ``(e^{i phi} t_phi, t12 a + t22 b)``.

    With ``power_weights = W`` (shape ``(..., B, J)``) the result holds, instead of fields,
    the weighted tap-power sums ``sum_b |t_b|^2 W[b, j]``, shape ``(..., J, M)``: what the
    measurement needs, without keeping per-example tap fields in memory (they are buffered
    for a block of columns at a time, at most about :data:`_TAP_BLOCK` numbers).
    """
    el = _elements(theta, phi, errors, _third(layout, errors, theta))
    third = el.c3 is not None
    xt = _to_mode_major(x, layout.n_ports)
    lead = xt.shape[:-2]
    batch = xt.shape[-1]
    m = layout.n_mzis
    order = range(layout.depth - 1, -1, -1) if backward else range(layout.depth)
    if power_weights is not None:
        weights = np.asarray(power_weights, dtype=float)
        paired = np.repeat(weights, 2, axis=-2)
        tap_theta = np.empty(lead + (m, weights.shape[-1]))
        tap_phi = np.empty_like(tap_theta)
        blocks = _column_blocks(layout, order, _TAP_BLOCK // max(1, math.prod(lead) * batch))
        spans = [_span(layout, block) for block in blocks]
        size = max(hi - lo for lo, hi in spans)
        buf_theta = np.empty(lead + (size, batch), dtype=complex)
        buf_phi = np.empty_like(buf_theta)
    else:
        blocks = [list(order)]
        spans = [(0, m)]  # the whole mesh is one block, its buffers the result itself
        buf_theta = tap_theta = np.empty(lead + (m, batch), dtype=complex)
        buf_phi = tap_phi = np.empty_like(tap_theta)
    coefficients = _column_coefficients(layout, el, backward)
    idle = _idle(errors)
    tap_gamma = None
    if backward and gamma is not None:
        tap_gamma = xt.copy()
        xt *= np.exp(1j * gamma)[..., :, None]
    modes, column_rows = _split_rows(layout)
    xt = xt[..., modes, :]
    if idle is not None:
        idle = idle[..., modes]
    for block, (lo, hi) in zip(blocks, spans):
        for c in block:
            top, bot = column_rows[c]
            r = layout.column_range(c)
            t_theta = buf_theta[..., r.start - lo:r.stop - lo, :]
            t_phi = buf_phi[..., r.start - lo:r.stop - lo, :]
            # views of xt for slice-indexed modes (updated in place), else copies written back
            a = xt[..., top, :]
            b = xt[..., bot, :]
            if backward:
                g11, g12, h11, h12, b21, b22, e_phi = coefficients[c][:7]
                _combine(t_theta, g11, a, g12, b)
                _combine(t_phi, h11, a, h12, b)
                _combine(b, b22, b, b21, a)
                np.multiply(e_phi, t_phi, out=a)
                if third:
                    _couple(a, b, *coefficients[c][7:])
            else:
                e_phi, k11, k12, f11, f12, f21, f22 = coefficients[c][:7]
                if third:
                    _couple(a, b, *coefficients[c][7:])
                np.multiply(e_phi, a, out=t_phi)
                _combine(t_theta, k11, t_phi, k12, b)
                _combine(a, f11, t_phi, f12, b)
                _combine(b, f22, b, f21, t_phi)
            if not isinstance(top, slice):
                xt[..., top, :] = a
                xt[..., bot, :] = b
            if idle is not None:
                xt *= idle[..., c, :, None]
        if power_weights is not None:
            tap_theta[..., lo:hi, :] = _power_sums(buf_theta[..., :hi - lo, :], paired)
            tap_phi[..., lo:hi, :] = _power_sums(buf_phi[..., :hi - lo, :], paired)
    xt = xt[..., np.argsort(modes), :]
    if not backward and gamma is not None:
        xt *= np.exp(1j * gamma)[..., :, None]
        tap_gamma = xt.copy()
    out = np.swapaxes(xt, -1, -2)
    if power_weights is not None:
        gamma_power = None if tap_gamma is None else np.swapaxes(_power_sums(tap_gamma, paired), -1, -2)
        return out, TapFields(np.swapaxes(tap_theta, -1, -2), np.swapaxes(tap_phi, -1, -2), gamma_power)
    sw = lambda t: None if t is None else np.swapaxes(t, -1, -2)  # noqa: E731
    return out, TapFields(sw(tap_theta), sw(tap_phi), sw(tap_gamma))


def tap_power_sums(layout, theta, phi, x, errors=None, backward: bool = False, weights=None):
    """Weighted sums of tap powers ``sum_b |x_eta,b|^2 W[b, j]`` over a batch ``x``.

    ``weights`` ``(..., B, J)`` (default: one column of ones, the plain sum). Returns
    ``TapFields`` of real arrays ``(..., J, M)`` (``gamma`` is ``None``), without keeping
    per-example tap fields in memory.
    """
    theta, phi, _ = _actual(layout, theta, phi, errors, None)
    if weights is None:
        weights = np.ones(np.shape(x)[:-1] + (1,))
    if np.shape(weights)[-2] != np.shape(x)[-2]:
        raise ValueError(f"weights for {np.shape(weights)[-2]} launches, batch has {np.shape(x)[-2]}")
    return _propagate_taps(layout, theta, phi, x, errors, None, backward, power_weights=weights)[1]


def ideal_gradient(layout: MeshLayout, theta, phi, x, x_adj, errors: DeviceErrors | None = None, gamma=None):
    """Exact gradient of a real loss with respect to every actual phase, summed over the batch.

    ``x`` is the input batch ``(..., B, N)`` and ``x_adj`` the adjoint field launched at the
    output, ``g = 2 dL/dy`` (shape ``(..., B, N)``). Returns ``(d_theta, d_phi)``, plus
    ``d_gamma`` when ``gamma`` is given, from ``dL/d eta = -Im(sum_b x_eta x_adj_eta)``.

    The batch enters only through ``C = X^T G`` (one BLAS call, ``N x N``): the summed
    product of tap fields equals ``sum_j (P C)_{eta j} Q_{eta j}``, where ``P`` maps inputs
    and ``Q`` output launches to a tap. So ``N`` columns of ``C`` go forward and ``N`` basis
    vectors go backward, whatever the batch size. Small batches use their own fields.
    """
    x = np.asarray(x, dtype=complex)
    x_adj = np.asarray(x_adj, dtype=complex)
    n = layout.n_ports
    theta, phi, gamma = _actual(layout, theta, phi, errors, gamma)
    if x.shape[-2] > n:
        corr = np.swapaxes(x, -1, -2) @ x_adj  # C[i, j] = sum_b x_bi g_bj
        probes = np.swapaxes(corr, -1, -2)  # rows: columns of C
        basis = np.broadcast_to(np.eye(n, dtype=complex), corr.shape)
        _, fwd = _propagate_taps(layout, theta, phi, probes, errors, gamma, backward=False)
        _, bwd = _propagate_taps(layout, theta, phi, basis, errors, gamma, backward=True)
    else:
        _, fwd = _propagate_taps(layout, theta, phi, x, errors, gamma, backward=False)
        _, bwd = _propagate_taps(layout, theta, phi, x_adj, errors, gamma, backward=True)
    d_theta = -np.imag(np.sum(fwd.theta * bwd.theta, axis=-2))
    d_phi = -np.imag(np.sum(fwd.phi * bwd.phi, axis=-2))
    if gamma is None:
        return d_theta, d_phi
    return d_theta, d_phi, -np.imag(np.sum(fwd.gamma * bwd.gamma, axis=-2))
