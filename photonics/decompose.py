"""Decomposition of a unitary matrix into the phases of an ideal mesh (our conventions).

``decompose(layout, U)`` returns ``(theta, phi, gamma)`` such that the error-free mesh
realises ``U`` exactly, ``transfer_matrix(layout, theta, phi, None, gamma) == U`` (to
rounding), for the two universal layouts:

* triangular (Reck): ``N(N-1)/2`` MZIs in ``2N-3`` columns;
* rectangular (Clements) of depth ``N``;

with standard or 3-splitter MZIs (``layout.mzi``).

Method, in two steps:

1. **Givens nulling.** ``U`` is reduced to a diagonal ``D`` by 2x2 unitaries on adjacent
   modes. Reck: for each row ``j`` in turn, the elements ``U[j, N-1], ..., U[j, j+1]`` are
   zeroed by unitaries acting on column pairs ``(k, k+1)``, ``k = N-2 ... j``, from the right
   (``U -> U G^-1``); they form the diagonal ``j`` of the triangle, in the order light meets
   them. Clements (Clements et al., Optica 3, 1460 (2016)): anti-diagonal ``i`` of the lower
   triangle is zeroed from the right for even ``i`` and from the left (``U -> G U``, rows
   ``(k, k+1)``) for odd ``i``. The left factors are moved through ``D`` to the output side
   (``G^-1 D = D (D^-1 G^-1 D)``, a 2x2 unitary on the same modes), so that
   ``U = D * (product of 2x2 blocks)``. Each block is placed on the layout by scheduling: the
   right factors, in the order light meets them, at the earliest free position of the
   layout on their modes; the left factors, from the output backwards, at the latest free
   one. A block that finds no position (the layout is not the one the method builds) is an
   error.
2. **Blocks to phases.** Every 2x2 block ``G`` (with the phases handed over by the blocks
   before it) is realised by an ideal MZI up to output phases, ``G diag(l) =
   diag(e^{i alpha}, e^{i beta}) T(theta, phi)`` (for a 3-splitter MZI, ``T(theta, phi) B(0)``),
   column by column, with the solver of the hardware correction
   (:func:`photonics.correction.realise_blocks`, ideal couplers); the phases left after the
   last column, plus those of ``D``, form the output screen ``gamma``.

A standard MZI's ``theta`` lies in ``[0, pi]`` (``theta = 0`` full cross). The cost is
``O(N^3)`` arithmetic in ``N(N-1)/2`` small steps (1-2 s at ``N = 256``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .correction import realise_blocks
from .layout import MeshLayout


class Decomposition(NamedTuple):
    """Phases of an ideal mesh that realises a unitary: ``theta``, ``phi`` (flat, per MZI)
    and the output screen ``gamma`` (per port)."""

    theta: np.ndarray
    phi: np.ndarray
    gamma: np.ndarray


def _null_right(a, b, zero_first: bool):
    """Unitary ``M`` with ``(a, b) M`` zero in its first (or second) entry; returns ``M``."""
    n = np.hypot(abs(a), abs(b))
    if n == 0:
        return np.eye(2, dtype=complex)
    if zero_first:
        return np.array([[b, np.conj(a)], [-a, np.conj(b)]]) / n
    return np.array([[np.conj(a), -b], [np.conj(b), a]]) / n


def _null_left(a, b):
    """Unitary ``M`` with ``M (a, b)^T`` zero in its second entry."""
    n = np.hypot(abs(a), abs(b))
    if n == 0:
        return np.eye(2, dtype=complex)
    return np.array([[np.conj(a), np.conj(b)], [-b, a]]) / n


def _reck(u: np.ndarray):
    """Right factors ``(k, G)`` in the order light meets them, and the diagonal ``D``."""
    n = u.shape[0]
    right = []
    for j in range(n - 1):
        for k in range(n - 2, j - 1, -1):
            m = _null_right(u[j, k], u[j, k + 1], zero_first=False)
            # rows above j are already unit rows with zeros here
            u[j:, k:k + 2] = u[j:, k:k + 2] @ m
            right.append((k, m.conj().T))
    return right, [], np.diag(u).copy()


def _clements(u: np.ndarray):
    """Right factors in the order light meets them, left factors from the output backwards
    (as ``G^-1``, the block the mesh applies), and the diagonal ``D``."""
    n = u.shape[0]
    right, left = [], []
    for i in range(n - 1):
        if i % 2 == 0:
            for j in range(i + 1):
                row, col = n - 1 - j, i - j
                m = _null_right(u[row, col], u[row, col + 1], zero_first=True)
                u[:, col:col + 2] = u[:, col:col + 2] @ m
                right.append((col, m.conj().T))
        else:
            for j in range(i + 1):
                k, col = n - 2 - i + j, j
                m = _null_left(u[k, col], u[k + 1, col])
                u[k:k + 2, :] = m @ u[k:k + 2, :]
                left.append((k, m.conj().T))
    return right, left, np.diag(u).copy()


def _positions(layout: MeshLayout):
    """``{(column, top mode): flat index}`` of the layout."""
    where = {}
    for c, tops in enumerate(layout.columns):
        start = layout.column_range(c).start
        for i, k in enumerate(tops):
            where[(c, int(k))] = start + i
    return where


def _schedule(layout: MeshLayout, right, left) -> tuple[np.ndarray, np.ndarray]:
    """Flat MZI index of every right factor (earliest free position, in order) and left
    factor (latest free position, from the output backwards)."""
    where = _positions(layout)
    columns_of: dict[int, list[int]] = {}
    for c, k in sorted(where):
        columns_of.setdefault(k, []).append(c)
    used = set()
    first_free = np.zeros(layout.n_ports + 1, dtype=np.int64)  # earliest column a mode is free from
    idx_right = []
    for k, _ in right:
        start = max(first_free[k], first_free[k + 1])
        c = next((c for c in columns_of.get(k, []) if c >= start and (c, k) not in used), None)
        if c is None:
            raise ValueError(f"{layout!r} has no place for the decomposition's MZI on modes ({k}, {k + 1})")
        used.add((c, k))
        first_free[k] = first_free[k + 1] = c + 1
        idx_right.append(where[(c, k)])
    last_free = np.full(layout.n_ports + 1, layout.depth - 1, dtype=np.int64)  # latest column free up to
    idx_left = []
    for k, _ in left:
        stop = min(last_free[k], last_free[k + 1])
        c = next((c for c in reversed(columns_of.get(k, [])) if c <= stop and (c, k) not in used), None)
        if c is None or c < max(first_free[k], first_free[k + 1]):
            raise ValueError(f"{layout!r} has no place for the decomposition's MZI on modes ({k}, {k + 1})")
        used.add((c, k))
        last_free[k] = last_free[k + 1] = c - 1
        idx_left.append(where[(c, k)])
    if len(used) != layout.n_mzis:
        raise ValueError(f"the decomposition fills {len(used)} of the {layout.n_mzis} MZIs of {layout!r}")
    return np.asarray(idx_right, dtype=np.int64), np.asarray(idx_left, dtype=np.int64)


def decompose(layout: MeshLayout, target) -> Decomposition:
    """Ideal phases ``(theta, phi, gamma)`` with which ``layout`` realises the unitary ``target``.

    ``layout``: triangular, or rectangular of depth ``N`` (standard or 3-splitter MZIs);
    ``target``: an ``N x N`` unitary (checked to 1e-8).
    """
    u = np.array(target, dtype=complex)
    n = layout.n_ports
    if u.shape != (n, n):
        raise ValueError(f"target must be {n}x{n} for {layout!r}, got shape {u.shape}")
    if np.abs(u.conj().T @ u - np.eye(n)).max() > 1e-8:
        raise ValueError("target is not unitary (|U^H U - I| > 1e-8)")
    if layout.name == "triangular":
        right, left, diag = _reck(u)
    elif layout.name == "rectangular" and layout.depth == n:
        right, left, diag = _clements(u)
    else:
        raise ValueError(f"decompose needs a triangular layout or a rectangular one of depth N, got {layout!r}")
    idx_right, idx_left = _schedule(layout, right, left)
    blocks = np.zeros((layout.n_mzis, 2, 2), dtype=complex)
    for index, (_, g) in zip(idx_right, right):
        blocks[index] = g
    phase = diag / np.abs(diag)
    for index, (k, g) in zip(idx_left, left):
        # G^-1 sits after D in U = (left blocks) D (right blocks): move D to the output side
        d = phase[k:k + 2]
        blocks[index] = (np.conj(d)[:, None] * g) * d[None, :]
    m = layout.n_mzis
    targets = (blocks[:, 0, 0], blocks[:, 0, 1], blocks[:, 1, 0], blocks[:, 1, 1])
    zero = np.zeros(m)
    theta, phi, leftover, _ = realise_blocks(layout, targets, zero, zero, zero if layout.three_splitter else None)
    return Decomposition(theta, phi, np.angle(phase) + leftover)
