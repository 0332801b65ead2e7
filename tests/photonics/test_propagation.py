"""Physics of the mesh simulator: unitarity, loss, reciprocity, taps, gradients, universality."""

import numpy as np
import pytest
from scipy.optimize import minimize

import insitu.photonics.propagation as propagation
from insitu.photonics import (
    ErrorModel,
    from_columns,
    ideal_gradient,
    init_phases,
    propagate,
    rectangular,
    transfer_matrix,
    triangular,
)
from insitu.photonics.errors import DeviceErrors
from insitu.photonics.propagation import tap_power_sums

from .conftest import haar_unitary, random_fields

LAYOUTS = [
    ("rect6", lambda: rectangular(6)),
    ("rect5_depth3", lambda: rectangular(5, 3)),
    ("rect4_depth9", lambda: rectangular(4, 9)),
    ("tri6", lambda: triangular(6)),
    ("tri5", lambda: triangular(5)),
    # columns whose top modes are not evenly spaced (fancy-indexed, not sliced, in the kernels)
    ("generic5", lambda: from_columns(5, [[0, 3], [1], [0, 2], [2], [1, 3], [0, 3], [1]])),
]


def _B(e):
    c, s = np.cos(np.pi / 4 + e), np.sin(np.pi / 4 + e)
    return np.array([[c, 1j * s], [1j * s, c]])


def test_single_mzi_equals_design_formula(rng):
    lay = from_columns(2, [[0]])
    theta, phi = 0.7, 2.1
    dev = ErrorModel(bs_error=0.1).sample(lay, rng)
    u = transfer_matrix(lay, [theta], [phi], dev)
    expected = _B(dev.bs2[0]) @ np.diag([np.exp(1j * theta), 1]) @ _B(dev.bs1[0]) @ np.diag([np.exp(1j * phi), 1])
    np.testing.assert_allclose(u, expected, atol=1e-14)
    # ideal: theta = 0 is full cross (no power stays on its input port)
    u0 = transfer_matrix(lay, [0.0], [0.3])
    assert abs(u0[0, 0]) < 1e-15 and abs(u0[1, 1]) < 1e-15


@pytest.mark.parametrize("name,make", LAYOUTS)
def test_lossless_mesh_is_unitary_for_any_splitting_and_phase_error(name, make, rng):
    lay = make()
    theta, phi = init_phases(lay, rng)
    dev = ErrorModel(bs_error=0.2, phase_error=0.3).sample(lay, rng)
    u = transfer_matrix(lay, theta, phi, dev, gamma=rng.random(lay.n_ports))
    np.testing.assert_allclose(u.conj().T @ u, np.eye(lay.n_ports), atol=1e-13)


@pytest.mark.parametrize("name,make", LAYOUTS)
def test_loss_never_adds_power(name, make, rng):
    lay = make()
    theta, phi = init_phases(lay, rng)
    dev = ErrorModel(bs_error=0.05, loss_db=0.3, loss_imbalance_db=0.5, tap_fraction=0.03).sample(lay, rng)
    s = np.linalg.svd(transfer_matrix(lay, theta, phi, dev), compute_uv=False)
    assert s.max() <= 1 + 1e-12
    assert s.min() < 1 - 1e-3


def test_balanced_insertion_loss_matches_loss_model(rng):
    # Every mode passes one MZI per column, so loss is a global scale 10**(-depth*dB/20).
    lay = from_columns(4, [[0, 2], [0, 2], [0, 2]])
    theta, phi = init_phases(lay, rng)
    dev = ErrorModel(loss_db=0.4, bs_error=0.1).sample(lay, rng)
    s = np.linalg.svd(transfer_matrix(lay, theta, phi, dev), compute_uv=False)
    np.testing.assert_allclose(s, 10 ** (-3 * 0.4 / 20), rtol=1e-12)
    x = random_fields(rng, 5, 4)
    y = propagate(lay, theta, phi, x, dev)
    np.testing.assert_allclose(np.sum(np.abs(y) ** 2, 1), 10 ** (-1.2 / 10) * np.sum(np.abs(x) ** 2, 1), rtol=1e-12)


@pytest.mark.parametrize("name,make", LAYOUTS)
@pytest.mark.parametrize("batch", [3, 40])
def test_forward_backward_and_taps_agree_with_dense(name, make, batch, rng):
    lay = make()
    theta, phi = init_phases(lay, rng)
    gamma = rng.random(lay.n_ports) * 6
    dev = ErrorModel(bs_error=0.1, loss_db=0.2, loss_imbalance_db=0.3, phase_error=0.1).sample(lay, rng)
    u = transfer_matrix(lay, theta, phi, dev, gamma)
    x = random_fields(rng, batch, lay.n_ports)
    np.testing.assert_allclose(propagate(lay, theta, phi, x, dev, gamma), x @ u.T, atol=1e-12)
    np.testing.assert_allclose(propagate(lay, theta, phi, x, dev, gamma, backward=True), x @ u, atol=1e-12)
    out, taps = propagate(lay, theta, phi, x, dev, gamma, taps=True)
    np.testing.assert_allclose(out, x @ u.T, atol=1e-12)
    assert taps.theta.shape == taps.phi.shape == (batch, lay.n_mzis)
    np.testing.assert_allclose(taps.gamma, out, atol=1e-15)
    out_b, taps_b = propagate(lay, theta, phi, x, dev, gamma, backward=True, taps=True)
    np.testing.assert_allclose(out_b, x @ u, atol=1e-12)


def test_tap_fields_match_partial_meshes(rng):
    # The phi tap of an MZI in column c is e^{i phi} times the field entering column c,
    # which the dense transfer matrix of columns 0..c-1 gives independently.
    lay = rectangular(6)
    theta, phi = init_phases(lay, rng)
    dev = ErrorModel(bs_error=0.1, loss_imbalance_db=0.2).sample(lay, rng)
    x = random_fields(rng, 4, 6)
    _, taps = propagate(lay, theta, phi, x, dev, taps=True)
    for c in range(1, lay.depth):
        sub = from_columns(6, lay.columns[:c])
        keep = slice(0, lay.column_range(c).start)
        sub_dev = type(dev)(**{k: getattr(dev, k)[keep] for k in
                               ["bs1", "bs2", "arm_top", "arm_bottom", "arm_input", "theta_offset", "phi_offset"]},
                            gamma_offset=dev.gamma_offset, model=dev.model, neighbour_pairs=sub.neighbours())
        entering = x @ transfer_matrix(sub, theta[keep], phi[keep], sub_dev).T
        rng_c = lay.column_range(c)
        expected = entering[:, lay.columns[c]] * np.exp(1j * (phi + dev.phi_offset)[rng_c])
        np.testing.assert_allclose(taps.phi[:, rng_c], expected, atol=1e-12)


@pytest.mark.parametrize("name,make", [LAYOUTS[0], LAYOUTS[3], LAYOUTS[5]])
@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("block", [1, 42, 1 << 15])
def test_tap_power_sums_equal_weighted_powers_of_tap_fields(name, make, backward, block, rng, monkeypatch):
    # sum_b |t_b|^2 W[b, j] at every tap, against the tap fields; small blocks make the
    # buffered reduction run over several blocks of columns (1: one column a block)
    monkeypatch.setattr(propagation, "_TAP_BLOCK", block)
    lay = make()
    model = ErrorModel(bs_error=0.1, loss_imbalance_db=0.2, phase_error=0.05, idle_loss_db=0.3, loss_std_db=0.1)
    devs = DeviceErrors.stack([model.sample(lay, np.random.default_rng(s)) for s in range(2)])
    phases = [init_phases(lay, np.random.default_rng(5 + s)) for s in range(2)]
    theta, phi = np.stack([p[0] for p in phases]), np.stack([p[1] for p in phases])
    x = np.stack([random_fields(rng, 7, lay.n_ports) for _ in range(2)])
    weights = rng.standard_normal((2, 7, 3))
    sums = tap_power_sums(lay, theta, phi, x, devs, backward, weights)
    _, taps = propagate(lay, theta, phi, x, devs, backward=backward, taps=True)
    for got, fields in ((sums.theta, taps.theta), (sums.phi, taps.phi)):
        expected = np.einsum("kbm,kbj->kjm", np.abs(fields) ** 2, weights)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)
    plain = tap_power_sums(lay, theta[0], phi[0], x[0], None, backward)
    _, ideal = propagate(lay, theta[0], phi[0], x[0], backward=backward, taps=True)
    np.testing.assert_allclose(plain.theta[0], np.sum(np.abs(ideal.theta) ** 2, axis=0), rtol=1e-12)


def _real_loss(layout, theta, phi, gamma, dev, x, target):
    """A real loss of output powers and fields, and its adjoint seed g = 2 dL/dy."""
    y = propagate(layout, theta, phi, x, dev, gamma)
    power = np.abs(y) ** 2
    loss = np.sum((power - target) ** 2) + 0.3 * np.sum(np.real(y * np.conj(target[:1])))
    # dL/dy* = 2 (p - t) y + 0.15 t  -> g = 2 dL/dy = conj(2 dL/dy*)
    g = 2 * np.conj(2 * (power - target) * y + 0.15 * target[:1])
    return loss, g


@pytest.mark.parametrize("name,make", LAYOUTS)
@pytest.mark.parametrize("batch", [2, 30])
def test_ideal_gradient_matches_finite_differences(name, make, batch, rng):
    lay = make()
    n = lay.n_ports
    theta, phi = init_phases(lay, rng)
    gamma = rng.random(n) * 6
    dev = ErrorModel(bs_error=0.08, loss_db=0.2, loss_imbalance_db=0.4, loss_std_db=0.3,
                     idle_loss_db=0.5).sample(lay, rng)
    x = random_fields(rng, batch, n) / np.sqrt(n)
    target = rng.random((batch, n))
    _, g = _real_loss(lay, theta, phi, gamma, dev, x, target)
    d_theta, d_phi, d_gamma = ideal_gradient(lay, theta, phi, x, g, dev, gamma)
    h = 1e-6

    def fd(which, i):
        args = [theta.copy(), phi.copy(), gamma.copy()]
        args[which][i] += h
        lp = _real_loss(lay, *args, dev, x, target)[0]
        args[which][i] -= 2 * h
        lm = _real_loss(lay, *args, dev, x, target)[0]
        return (lp - lm) / (2 * h)

    numeric = np.concatenate([
        [fd(0, i) for i in range(lay.n_mzis)],
        [fd(1, i) for i in range(lay.n_mzis)],
        [fd(2, i) for i in range(n)],
    ])
    analytic = np.concatenate([d_theta, d_phi, d_gamma])
    assert np.linalg.norm(analytic - numeric) / np.linalg.norm(numeric) < 1e-6


def test_large_batch_gradient_equals_per_sample_sum(rng):
    lay = rectangular(8, 11)
    theta, phi = init_phases(lay, rng)
    dev = ErrorModel(bs_error=0.05, loss_imbalance_db=0.2).sample(lay, rng)
    x = random_fields(rng, 64, 8)
    g = random_fields(rng, 64, 8)
    big = ideal_gradient(lay, theta, phi, x, g, dev)
    parts = [ideal_gradient(lay, theta, phi, x[i : i + 4], g[i : i + 4], dev) for i in range(0, 64, 4)]
    for k in range(2):
        np.testing.assert_allclose(big[k], sum(p[k] for p in parts), rtol=1e-10, atol=1e-12)


def test_ensemble_axis_equals_one_device_at_a_time(rng):
    lay = rectangular(6, 8)
    model = ErrorModel(bs_error=0.1, loss_imbalance_db=0.2, phase_error=0.05)
    devs = [model.sample(lay, np.random.default_rng(s)) for s in range(3)]
    thetas = np.stack([init_phases(lay, np.random.default_rng(10 + s))[0] for s in range(3)])
    phis = np.stack([init_phases(lay, np.random.default_rng(20 + s))[1] for s in range(3)])
    x = np.stack([random_fields(rng, 5, 6) for _ in range(3)])
    stacked = type(devs[0]).stack(devs)
    u = transfer_matrix(lay, thetas, phis, stacked)
    out, taps = propagate(lay, thetas, phis, x, stacked, taps=True)
    grads = ideal_gradient(lay, thetas, phis, x, x.conj(), stacked)
    for k in range(3):
        np.testing.assert_allclose(u[k], transfer_matrix(lay, thetas[k], phis[k], devs[k]), atol=1e-14)
        o, t = propagate(lay, thetas[k], phis[k], x[k], devs[k], taps=True)
        np.testing.assert_allclose(out[k], o, atol=1e-14)
        np.testing.assert_allclose(taps.theta[k], t.theta, atol=1e-14)
        single = ideal_gradient(lay, thetas[k], phis[k], x[k], x[k].conj(), devs[k])
        np.testing.assert_allclose(grads[0][k], single[0], atol=1e-12)


def _fit_unitary(lay, target, rng, restarts=6):
    n = lay.n_ports
    m = lay.n_mzis
    eye = np.eye(n, dtype=complex)

    def loss_and_grad(p):
        theta, phi, gamma = p[:m], p[m : 2 * m], p[2 * m :]
        y = propagate(lay, theta, phi, eye, gamma=gamma)  # rows = columns of U
        diff = y - target.T
        g = 2 * np.conj(diff)
        grads = ideal_gradient(lay, theta, phi, eye, g, gamma=gamma)
        return float(np.sum(np.abs(diff) ** 2)), np.concatenate(grads)

    best = np.inf
    for _ in range(restarts):
        theta, phi = init_phases(lay, rng)
        p0 = np.concatenate([theta, phi, rng.random(n) * 2 * np.pi])
        res = minimize(loss_and_grad, p0, jac=True, method="L-BFGS-B", options={"maxiter": 3000, "gtol": 1e-12, "ftol": 1e-15})
        best = min(best, res.fun)
        if best < 1e-10:
            break
    return best


@pytest.mark.parametrize("make", [lambda: rectangular(4), lambda: triangular(4), lambda: triangular(5)])
def test_universal_meshes_reach_haar_random_unitaries(make, rng):
    lay = make()
    for _ in range(2):
        assert _fit_unitary(lay, haar_unitary(rng, lay.n_ports), rng) < 1e-10


def test_too_shallow_mesh_is_not_universal(rng):
    lay = rectangular(4, 2)
    assert _fit_unitary(lay, haar_unitary(rng, 4), rng, restarts=3) > 1e-3


@pytest.mark.parametrize("make", [lambda: triangular(6), lambda: rectangular(6)])
def test_haar_initialisation_spreads_power_like_haar(make):
    """Sampled meshes have E|U_ij|^2 = 1/N like Haar unitaries (uniform theta does not)."""
    lay = make()
    rng = np.random.default_rng(3)
    draws = [init_phases(lay, rng) for _ in range(3000)]
    u = transfer_matrix(lay, np.stack([d[0] for d in draws]), np.stack([d[1] for d in draws]))
    dev_haar = np.abs((np.abs(u) ** 2).mean(0) * lay.n_ports - 1).max()
    draws = [init_phases(lay, rng, method="uniform") for _ in range(3000)]
    u = transfer_matrix(lay, np.stack([d[0] for d in draws]), np.stack([d[1] for d in draws]))
    dev_uniform = np.abs((np.abs(u) ** 2).mean(0) * lay.n_ports - 1).max()
    limit = 0.06 if lay.name == "triangular" else 0.12
    assert dev_haar < limit < dev_uniform


def test_bad_shapes_are_named(rng):
    lay = rectangular(4)
    with pytest.raises(ValueError, match="theta and phi need 6"):
        transfer_matrix(lay, np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="shape"):
        propagate(lay, np.zeros(6), np.zeros(6), np.zeros((3, 5)), taps=True)


@pytest.mark.parametrize("taps", [False, True])
def test_propagate_never_writes_into_its_input(taps, rng):
    lay = rectangular(6)
    theta, phi = init_phases(lay, rng)
    x = np.asfortranarray(random_fields(rng, 4, 6))  # a transposed view is C-contiguous
    kept = x.copy()
    propagate(lay, theta, phi, x, taps=taps)
    propagate(lay, theta, phi, x, backward=True, taps=taps)
    np.testing.assert_array_equal(x, kept)
