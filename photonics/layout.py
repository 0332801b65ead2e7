"""What a mesh *is*: the placement of its Mach-Zehnder interferometers (MZIs).

A mesh on ``n_ports`` waveguide modes is an ordered list of columns; each column holds
non-overlapping MZIs, each named by its top mode ``k`` (it couples modes ``k`` and ``k+1``).
Phase parameters are flat arrays ordered column by column, top to bottom within a column,
so MZI ``m`` of the flat order has ``theta[m]``, ``phi[m]`` and two couplers.

Every MZI of a layout is of one kind (``mzi``, :data:`MZI_KINDS`):

* ``"standard"``: ``T = B(e2) diag(e^{i theta}, 1) B(e1) diag(e^{i phi}, 1)``;
* ``"three_splitter"``: the 3-splitter MZI of Hamerly, Bandyopadhyay & Englund (Nat. Commun.
  13, 6831 (2022)): a third coupler at the input, before the phi shifter,
  ``T3 = B(e2) diag(e^{i theta}, 1) B(e1) diag(e^{i phi}, 1) B(e3)``. The same two phases,
  no extra shifter (phi is now internal, between the third and the first coupler); one
  extra coupler with its own splitting error ``e3``. It reaches the full cross state (and
  the full bar state) exactly for splitting errors where the standard MZI cannot
  (:mod:`photonics.propagation`; docs/design.md section 2).

The layout knows nothing of phases, errors or fields; :mod:`photonics.propagation` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

MZI_KINDS = ("standard", "three_splitter")


@dataclass(frozen=True, eq=False)
class MeshLayout:
    """Placement of MZIs in columns.

    Attributes:
        n_ports: number of waveguide modes N.
        columns: tuple of int arrays, the top modes of the MZIs of each column (ascending).
        name: ``"rectangular"``, ``"triangular"`` or ``"custom"``.
        sensitivity: per-MZI sensitivity index alpha (>= 1) used by Haar-consistent
            initialisation; it counts how many modes' worth of power a node mixes.
        mzi: the kind of every MZI, ``"standard"`` or ``"three_splitter"`` (module docstring).
    """

    n_ports: int
    columns: tuple[np.ndarray, ...]
    name: str = "custom"
    sensitivity: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    mzi: str = "standard"

    def __post_init__(self) -> None:
        if int(self.n_ports) < 2:
            raise ValueError(f"n_ports must be >= 2, got {self.n_ports}")
        if self.mzi not in MZI_KINDS:
            raise ValueError(f"unknown MZI kind {self.mzi!r}: expected one of {', '.join(MZI_KINDS)}")
        cols = []
        for c, col in enumerate(self.columns):
            tops = np.sort(np.asarray(col, dtype=np.int64).ravel())
            if tops.size and (tops.min() < 0 or tops.max() > self.n_ports - 2):
                raise ValueError(
                    f"column {c}: top modes must lie in [0, {self.n_ports - 2}], got {tops.tolist()}"
                )
            if np.any(np.diff(tops) < 2):
                raise ValueError(f"column {c}: MZIs overlap (top modes {tops.tolist()})")
            cols.append(tops)
        object.__setattr__(self, "columns", tuple(cols))
        offsets = np.concatenate([[0], np.cumsum([c.size for c in cols])]).astype(np.int64)
        object.__setattr__(self, "_offsets", offsets)
        # A column whose top modes form a step-2 progression is addressed by a strided slice
        # (a view), which is several times cheaper than fancy indexing in the kernels.
        object.__setattr__(self, "_slices", tuple(_as_slice(c) for c in cols))
        object.__setattr__(
            self, "_ranges", tuple(slice(int(offsets[c]), int(offsets[c + 1])) for c in range(len(cols)))
        )
        if self.sensitivity is None:
            object.__setattr__(self, "sensitivity", _light_cone_sensitivity(self.n_ports, cols))
        else:
            alpha = np.asarray(self.sensitivity, dtype=float)
            if alpha.shape != (self.n_mzis,) or np.any(alpha < 1):
                raise ValueError("sensitivity must hold one value >= 1 per MZI")
            object.__setattr__(self, "sensitivity", alpha)

    @property
    def n_mzis(self) -> int:
        """Number of MZIs, i.e. the length of ``theta`` and ``phi``."""
        return int(self._offsets[-1])

    @property
    def three_splitter(self) -> bool:
        """True when every MZI carries a third coupler (``mzi = "three_splitter"``)."""
        return self.mzi == "three_splitter"

    @property
    def depth(self) -> int:
        """Number of columns."""
        return len(self.columns)

    @property
    def top_modes(self) -> np.ndarray:
        """Top mode of every MZI in flat parameter order."""
        if not self.columns:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(self.columns)

    def column_range(self, c: int) -> slice:
        """Slice of the flat parameter arrays that belongs to column ``c``."""
        return self._ranges[c]

    def column_modes(self, c: int) -> tuple[slice | np.ndarray, slice | np.ndarray]:
        """Indexers of the top and bottom modes of column ``c`` (slices when possible)."""
        sl = self._slices[c]
        if sl is not None:
            return sl, slice(sl.start + 1, sl.stop + 1, 2)
        tops = self.columns[c]
        return tops, tops + 1

    def neighbours(self) -> np.ndarray:
        """Sparse adjacency of MZIs that sit next to each other in one column, as index pairs.

        Returns an int array of shape (P, 2): MZIs ``i`` and ``j`` whose top modes differ by
        2 in the same column (their heaters are closest on the chip). Used by the thermal
        crosstalk model.
        """
        pairs = []
        for c, tops in enumerate(self.columns):
            base = int(self._offsets[c])
            for i in np.flatnonzero(np.diff(tops) == 2):
                pairs.append((base + i, base + i + 1))
        return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)

    def __repr__(self) -> str:
        kind = "" if self.mzi == "standard" else f", mzi={self.mzi}"
        return f"MeshLayout({self.name}, n_ports={self.n_ports}, n_mzis={self.n_mzis}, depth={self.depth}{kind})"


def _as_slice(tops: np.ndarray) -> slice | None:
    if tops.size == 0:
        return slice(0, 0, 2)
    if tops.size == 1 or np.all(np.diff(tops) == 2):
        return slice(int(tops[0]), int(tops[-1]) + 1, 2)
    return None


def _light_cone_sensitivity(n_ports: int, columns: Sequence[np.ndarray]) -> np.ndarray:
    """Sensitivity index of every node estimated from the light cones of the layout.

    A node mixes the power that reached its inputs from the mesh input (backward light
    cone) and spreads it to the outputs it can reach (forward light cone). For a Haar-random
    unitary the cross power of a node that nulls one mode against ``alpha`` others follows
    Beta(alpha, 1). Taking ``alpha`` as the smaller cone size minus one gives the pyramid of
    the rectangular mesh (1 at the corners, N-1 in the middle). It is an estimate: on a
    rectangular mesh the element powers ``|U_ij|^2`` of sampled meshes match the Haar mean
    ``1/N`` within about 10 % (uniform phases miss by about 100 %). The triangular mesh sets
    its exact indices itself.
    """
    n_cols = len(columns)
    # [lo[k], hi[k]]: the range of input modes whose light can reach mode k so far.
    lo = np.arange(n_ports)
    hi = np.arange(n_ports)
    back = []
    for tops in columns:
        back.append((lo[tops].copy(), hi[tops + 1].copy()))
        new_lo = np.minimum(lo[tops], lo[tops + 1])
        new_hi = np.maximum(hi[tops], hi[tops + 1])
        lo[tops] = lo[tops + 1] = new_lo
        hi[tops] = hi[tops + 1] = new_hi
    lo = np.arange(n_ports)
    hi = np.arange(n_ports)
    fwd = [None] * n_cols
    for c in range(n_cols - 1, -1, -1):
        tops = columns[c]
        new_lo = np.minimum(lo[tops], lo[tops + 1])
        new_hi = np.maximum(hi[tops], hi[tops + 1])
        lo[tops] = lo[tops + 1] = new_lo
        hi[tops] = hi[tops + 1] = new_hi
        fwd[c] = (new_lo.copy(), new_hi.copy())
    alphas = []
    for c in range(n_cols):
        b_lo, b_hi = back[c]
        f_lo, f_hi = fwd[c]
        cone_in = b_hi - b_lo + 1
        cone_out = f_hi - f_lo + 1
        alphas.append(np.maximum(np.minimum(cone_in, cone_out) - 1, 1))
    if not alphas:
        return np.zeros(0)
    return np.concatenate(alphas).astype(float)


def rectangular(n_ports: int, depth: int | None = None, mzi: str = "standard") -> MeshLayout:
    """Rectangular (Clements) mesh: ``depth`` columns, column ``c`` starts at mode ``c % 2``.

    ``depth = n_ports`` (the default) is universal; any ``depth >= 1`` is allowed. ``mzi``:
    the kind of its MZIs (:data:`MZI_KINDS`).
    """
    n_ports = _check_ports(n_ports)
    depth = n_ports if depth is None else int(depth)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    cols = tuple(np.arange(c % 2, n_ports - 1, 2) for c in range(depth))
    return MeshLayout(n_ports, cols, name="rectangular", mzi=mzi)


def triangular(n_ports: int, mzi: str = "standard") -> MeshLayout:
    """Triangular (Reck) mesh: ``N(N-1)/2`` MZIs in ``2N-3`` columns (``mzi``: their kind).

    Diagonal ``j`` (``j = 0 .. N-2``) is a chain of MZIs on top modes ``N-2, N-3, ..., j``
    placed in columns ``2j, 2j+1, ...``; chaining the diagonals gives the Reck triangle.
    """
    n_ports = _check_ports(n_ports)
    if n_ports == 2:
        return MeshLayout(2, (np.array([0]),), name="triangular", sensitivity=np.ones(1), mzi=mzi)
    depth = 2 * n_ports - 3
    cols: list[list[int]] = [[] for _ in range(depth)]
    for j in range(n_ports - 1):
        for k in range(n_ports - 2, j - 1, -1):
            cols[2 * j + (n_ports - 2 - k)].append(k)
    columns = tuple(np.array(sorted(c)) for c in cols)
    # Along each diagonal the chain has gathered the power of the modes below it: the node
    # on top mode k mixes one new mode into N-1-k others (the Reck nulling order).
    alpha = (n_ports - 1 - np.concatenate(columns)).astype(float)
    return MeshLayout(n_ports, columns, name="triangular", sensitivity=alpha, mzi=mzi)


def from_columns(n_ports: int, columns: Sequence[Sequence[int]], mzi: str = "standard") -> MeshLayout:
    """Generic mesh from a list of columns, each a list of top-mode indices."""
    return MeshLayout(_check_ports(n_ports), tuple(np.asarray(c, dtype=np.int64) for c in columns), mzi=mzi)


def make_layout(topology: str, n_ports: int, depth: int | None = None, mzi: str = "standard") -> MeshLayout:
    """Layout by name: ``"rectangular"`` (optional depth) or ``"triangular"``, of MZIs of kind ``mzi``."""
    if topology == "rectangular":
        return rectangular(n_ports, depth, mzi)
    if topology == "triangular":
        if depth not in (None, 0, 2 * n_ports - 3):
            raise ValueError(f"a triangular mesh of {n_ports} ports has depth {2 * n_ports - 3}, not {depth}")
        return triangular(n_ports, mzi)
    raise ValueError(f"unknown topology {topology!r}: expected 'rectangular' or 'triangular'")


def _check_ports(n_ports: int) -> int:
    if int(n_ports) != n_ports or n_ports < 2:
        raise ValueError(f"n_ports must be an integer >= 2, got {n_ports!r}")
    return int(n_ports)
