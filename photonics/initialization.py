"""Initial phases of a mesh.

Haar-consistent initialisation samples each node's internal phase from the distribution it
has when the mesh implements a Haar-random unitary: with sensitivity index ``alpha`` the
cross-state power ``cos^2(theta/2)`` follows Beta(alpha, 1), i.e.

    theta = pi - 2 arcsin(u^(1 / (2 alpha))),  u ~ U(0, 1),

and ``phi`` is uniform in ``[0, 2 pi)``. Deep meshes then start well conditioned, where a
uniform ``theta`` would leave most of the light near the mesh edges.
"""

from __future__ import annotations

import numpy as np

from .layout import MeshLayout


def init_phases(layout: MeshLayout, rng: np.random.Generator, method: str = "haar"):
    """Initial ``(theta, phi)`` for ``layout``; ``method`` is ``"haar"`` or ``"uniform"``.

    ``"uniform"`` draws ``theta`` uniformly in ``[0, pi]``. Draws come only from ``rng``.
    """
    m = layout.n_mzis
    u = rng.random(m)
    phi = rng.random(m) * 2 * np.pi
    if method == "haar":
        theta = np.pi - 2 * np.arcsin(u ** (1.0 / (2.0 * layout.sensitivity)))
    elif method == "uniform":
        theta = u * np.pi
    else:
        raise ValueError(f"unknown initialisation {method!r}: expected 'haar' or 'uniform'")
    return theta, phi
