"""The 3-splitter MZI (``mzi = "three_splitter"``): ``T3 = B(e2) D(theta) B(e1) D(phi) B(e3)``.

Checked against the 2x2 algebra written out here, not against the solver that programs it.
"""

import numpy as np
import pytest
from scipy.optimize import brentq

from insitu.photonics import ErrorModel, rectangular, transfer_matrix
from insitu.photonics.layout import from_columns, triangular
from insitu.photonics.propagation import mzi_blocks


def _coupler(e):
    """``B(e)`` of docs/design.md section 2."""
    c, s = np.cos(np.pi / 4 + e), np.sin(np.pi / 4 + e)
    return np.array([[c, 1j * s], [1j * s, c]])


def _standard(theta, phi, e1, e2):
    """``T = B(e2) diag(e^{i theta}, 1) B(e1) diag(e^{i phi}, 1)`` (lossless)."""
    return _coupler(e2) @ np.diag([np.exp(1j * theta), 1]) @ _coupler(e1) @ np.diag([np.exp(1j * phi), 1])


def _blocks(theta, phi, e1, e2, e3=None):
    """The 2x2 matrix of one MZI as :func:`mzi_blocks` gives it (one-MZI lossless chip)."""
    lay = from_columns(2, [[0]], mzi="standard" if e3 is None else "three_splitter")
    chip = ErrorModel().sample(lay, np.random.default_rng(0))
    chip = type(chip)(**{**chip.__dict__, "bs1": np.array([e1]), "bs2": np.array([e2]),
                         "bs3": None if e3 is None else np.array([e3])})
    return transfer_matrix(lay, np.array([theta]), np.array([phi]), chip)


@pytest.mark.parametrize("layout", [rectangular(8, mzi="three_splitter"), triangular(7, mzi="three_splitter")])
def test_a_lossless_three_splitter_mesh_is_unitary(layout):
    rng = np.random.default_rng(5)
    chip = ErrorModel(bs_error=0.1, phase_error=0.3).sample(layout, rng)
    assert chip.bs3 is not None and np.std(chip.bs3) > 0.03
    theta, phi = rng.uniform(0, 2 * np.pi, (2, layout.n_mzis))
    u = transfer_matrix(layout, theta, phi, chip, rng.uniform(0, 2 * np.pi, layout.n_ports))
    np.testing.assert_allclose(u.conj().T @ u, np.eye(layout.n_ports), atol=1e-13)
    # and each block on its own
    t11, t12, t21, t22 = mzi_blocks(theta, phi, chip, chip.bs3)
    block = np.stack([np.stack([t11, t12], -1), np.stack([t21, t22], -1)], -2)
    np.testing.assert_allclose(block.conj().transpose(0, 2, 1) @ block, np.broadcast_to(np.eye(2), block.shape),
                               atol=1e-14)


@pytest.mark.parametrize("e1, e2, e3", [(0.1, 0.1, 0.1), (0.12, 0.05, -0.08), (-0.15, -0.1, 0.2)])
def test_three_splitter_reaches_full_cross_where_the_standard_mzi_cannot(e1, e2, e3):
    # Standard MZI: |T_11|^2 = sin^2(e1 + e2) + sin^2(theta/2) cos(2 e1) cos(2 e2), whatever
    # phi, so its cross-state leak is at least sin^2(e1 + e2) > 0 here.
    floor = np.sin(e1 + e2) ** 2
    thetas = np.linspace(0, 2 * np.pi, 4001)
    leak = np.array([abs(_standard(t, 0.7, e1, e2)[0, 0]) ** 2 for t in thetas])
    assert leak.min() == pytest.approx(floor, abs=1e-12) and floor > 0.005
    np.testing.assert_allclose(abs(_blocks(0.0, 0.7, e1, e2)[0, 0]) ** 2, floor, atol=1e-14)

    # 3-splitter: the first column is M(theta) (c3 e^{i phi}, i s3)^T with M = B(e2) D(theta) B(e1);
    # T3_11 = 0 needs |M_11| / |M_12| = s3 / c3 (a theta in [0, pi], M being unitary) and
    # then e^{i phi} = -i s3 M_12 / (c3 M_11).
    c3, s3 = np.cos(np.pi / 4 + e3), np.sin(np.pi / 4 + e3)
    core = lambda t: _coupler(e2) @ np.diag([np.exp(1j * t), 1]) @ _coupler(e1)  # noqa: E731
    theta = brentq(lambda t: abs(core(t)[0, 0]) ** 2 - s3 ** 2, 0.0, np.pi, xtol=1e-15)
    m = core(theta)
    phi = np.angle(-1j * s3 * m[0, 1] / (c3 * m[0, 0]))
    t3 = _blocks(theta, phi, e1, e2, e3)
    assert abs(t3[0, 0]) < 1e-12 and abs(t3[1, 1]) < 1e-12
    assert abs(t3[1, 0]) == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize("e3", [0.0, 0.07])
def test_three_splitter_is_the_standard_mzi_after_an_input_coupler(e3):
    # The identity that holds: T3(theta, phi; e1, e2, e3) = T(theta, phi; e1, e2) B(e3); with an
    # ideal third coupler, T3 = T B(0) (a 50:50 coupler in front of the standard MZI, not T itself).
    rng = np.random.default_rng(9)
    for theta, phi, e1, e2 in rng.uniform(-1, 1, (6, 4)) * [3, 3, 0.2, 0.2]:
        expected = _standard(theta, phi, e1, e2) @ _coupler(e3)
        np.testing.assert_allclose(_blocks(theta, phi, e1, e2, e3), expected, atol=1e-14)
        np.testing.assert_allclose(_blocks(theta, phi, e1, e2), _standard(theta, phi, e1, e2), atol=1e-14)


def test_three_splitter_mesh_equals_the_standard_mesh_with_couplers_in_front_of_each_mzi():
    # Mesh level, one column: every MZI gets B(e3) on its input modes.
    lay3, lay = rectangular(6, 1, mzi="three_splitter"), rectangular(6, 1)
    rng = np.random.default_rng(2)
    chip3 = ErrorModel(bs_error=0.08, loss_db=0.3).sample(lay3, rng)
    chip = type(chip3)(**{**chip3.__dict__, "bs3": None})
    theta, phi = rng.uniform(0, 2 * np.pi, (2, lay.n_mzis))
    front = np.eye(6, dtype=complex)
    for i, k in enumerate(lay.columns[0]):
        front[k:k + 2, k:k + 2] = _coupler(chip3.bs3[i])
    np.testing.assert_allclose(transfer_matrix(lay3, theta, phi, chip3),
                               transfer_matrix(lay, theta, phi, chip) @ front, atol=1e-14)
