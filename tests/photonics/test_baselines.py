"""Offline and hybrid baselines: calibration model, hardware error correction, physics-aware
training and SPSA, each against the physics it claims."""

import numpy as np
import pytest

from insitu.photonics import DeviceErrors, ErrorModel, init_phases, rectangular, transfer_matrix
from insitu.photonics.calibration import CALIBRATED_FIELDS, calibrated_twin, static_fields
from insitu.photonics.correction import correct_mesh, corrected_theta
from insitu.photonics.network import build_network, exact_gradient, sample_devices
from insitu.photonics.pat import pat_gradient
from insitu.photonics.propagation import mzi_blocks
from insitu.photonics.insitu import gradient_error
from insitu.photonics.spsa import spsa_gradient


# --- calibration -------------------------------------------------------------------------

def test_every_static_error_field_is_calibrated():
    # A new static field of DeviceErrors must get its unit in CALIBRATED_FIELDS.
    assert sorted(static_fields()) == sorted(CALIBRATED_FIELDS)


def test_perfect_calibration_is_the_chip():
    # 3-splitter MZIs: every field of CALIBRATED_FIELDS is present (bs3 too)
    lay = rectangular(6, mzi="three_splitter")
    chip = ErrorModel(bs_error=0.05, loss_db=0.2, loss_imbalance_db=0.1, phase_error=0.1).sample(
        lay, np.random.default_rng(1))
    twin = calibrated_twin(chip, 0.0, np.random.default_rng(2))
    for name in CALIBRATED_FIELDS:
        np.testing.assert_array_equal(getattr(twin, name), getattr(chip, name))


def test_calibration_errors_have_the_stated_std_in_each_unit():
    # 3-splitter MZIs, so that bs3 is checked too (it is drawn last: the other fields' draws
    # are those of the standard mesh)
    lay = rectangular(64, mzi="three_splitter")
    chip = ErrorModel(bs_error=0.05, loss_db=0.3, loss_imbalance_db=0.1, phase_error=0.2).sample(
        lay, np.random.default_rng(3))
    sigma = 0.02
    twin = calibrated_twin(chip, sigma, np.random.default_rng(4))
    for name, unit in CALIBRATED_FIELDS.items():
        true, est = getattr(chip, name), getattr(twin, name)
        error = est - true if unit == "rad" else -20.0 * np.log10(est / true)
        assert abs(error.mean()) < 4 * sigma / np.sqrt(error.size)
        assert error.std() == pytest.approx(sigma, rel=0.2 if error.size < 100 else 0.06), name


# --- hardware error correction -----------------------------------------------------------

def _haar_mesh(n, rng):
    lay = rectangular(n)
    theta, phi = init_phases(lay, rng)  # Haar-consistent: the mesh's Haar-random unitary
    return lay, theta, phi, rng.uniform(0, 2 * np.pi, n)


def _infidelity(target, u):
    """1 - F, F = |<U_t, U>|^2 / (|U_t|^2 |U|^2) (normalised Frobenius inner product)."""
    overlap = np.abs(np.einsum("...ij,...ij->...", target.conj(), u)) ** 2
    return 1.0 - overlap / (np.sum(np.abs(target) ** 2, axis=(-2, -1)) * np.sum(np.abs(u) ** 2, axis=(-2, -1)))


def _mesh_infidelities(sigma, n_devices=2000, n=8):
    """Mean 1 - F of uncorrected and corrected meshes over seeded devices (an ensemble axis)
    with Haar targets; the same standard-normal draws at every ``sigma``."""
    rng = np.random.default_rng(100)
    lay = rectangular(n)
    phases = [init_phases(lay, rng) for _ in range(n_devices)]
    theta, phi = np.array([p[0] for p in phases]), np.array([p[1] for p in phases])
    gamma = rng.uniform(0, 2 * np.pi, (n_devices, n))
    bs = sigma * rng.standard_normal((2, n_devices, lay.n_mzis))
    one, zero = np.ones_like(bs[0]), np.zeros_like(bs[0])
    chip = DeviceErrors(bs[0], bs[1], one, one, one, zero, zero, np.zeros((n_devices, n)), ErrorModel())
    target = transfer_matrix(lay, theta, phi, None, gamma)
    raw = _infidelity(target, transfer_matrix(lay, theta, phi, chip, gamma))
    c = correct_mesh(lay, theta, phi, chip, gamma)
    fixed = _infidelity(target, transfer_matrix(lay, c.theta, c.phi, chip, c.gamma))
    return raw.mean(), fixed.mean()


def test_correction_improves_fidelity_tenfold_at_002():
    raw, fixed = _mesh_infidelities(0.02)
    assert fixed < raw / 10


def test_correction_suppresses_error_to_third_order():
    # Same standard-normal draws scaled: uncorrected ~ sigma^2, corrected at least ~ sigma^3.
    raw1, fixed1 = _mesh_infidelities(0.01)
    raw2, fixed2 = _mesh_infidelities(0.02)
    assert 3.0 < raw2 / raw1 < 5.0
    assert fixed2 / fixed1 >= 8.0


def test_fully_reachable_meshes_are_matched_exactly():
    matched = 0
    for s in range(30):
        rng = np.random.default_rng(200 + s)
        lay, theta, phi, gamma = _haar_mesh(8, rng)
        chip = ErrorModel(bs_error=0.01, phase_error=0.1).sample(lay, rng)
        c = correct_mesh(lay, theta, phi, chip, gamma)
        if c.reachable.all():
            matched += 1
            np.testing.assert_allclose(transfer_matrix(lay, c.theta, c.phi, chip, c.gamma),
                                       transfer_matrix(lay, theta, phi, None, gamma), atol=1e-12)
    assert matched >= 10


def _blocks(theta, phi, e1, e2):
    m = np.size(theta)
    one, zero = np.ones(m), np.zeros(m)
    dev = DeviceErrors(e1, e2, one, one, one, zero, zero, np.zeros(2), ErrorModel())
    return np.moveaxis(np.array(mzi_blocks(theta, phi, dev)).reshape(2, 2, m), -1, 0)


def test_every_reachable_mzi_is_matched_exactly():
    rng = np.random.default_rng(7)
    m = 4000
    theta, phi = rng.uniform(-np.pi, np.pi, m), rng.uniform(0, 2 * np.pi, m)
    e1, e2 = 0.08 * rng.standard_normal(m), 0.08 * rng.standard_normal(m)
    left = rng.uniform(0, 2 * np.pi, (m, 2))  # phases handed over by the previous column
    lay = rectangular(2)  # one MZI; each draw is its own device on a leading axis
    twin = DeviceErrors(e1[:, None], e2[:, None], np.ones((m, 1)), np.ones((m, 1)), np.ones((m, 1)),
                        np.zeros((m, 1)), np.zeros((m, 1)), np.zeros((m, 2)), ErrorModel())
    c = correct_mesh(lay, theta[:, None], phi[:, None], twin, gamma=left)
    target = transfer_matrix(lay, theta[:, None], phi[:, None], None, left)
    realised = transfer_matrix(lay, c.theta, c.phi, twin, c.gamma)
    reach = c.reachable[:, 0]
    assert 0.01 < np.mean(~reach) < 0.5  # both kinds occur in this draw
    np.testing.assert_allclose(realised[reach], target[reach], atol=1e-12)
    # an unreachable MZI takes the closest splitting: the edge of its range
    bound = np.where(np.cos(theta) > 0, np.sin(e1 + e2) ** 2, np.cos(e1 - e2) ** 2)
    t11 = np.abs(_blocks(c.theta[:, 0], c.phi[:, 0], e1, e2)[:, 0, 0]) ** 2
    np.testing.assert_allclose(t11[~reach], bound[~reach], atol=1e-12)
    assert np.all(np.abs(realised[~reach] - target[~reach]).max(axis=(1, 2)) > 1e-6)


def test_reachability_is_the_splitting_range():
    e1, e2 = np.array([0.05, 0.05, -0.03]), np.array([0.02, 0.02, 0.04])
    theta = np.array([0.0, 0.5, np.pi])
    _, reachable = corrected_theta(theta, e1, e2)
    # full cross needs sin^2(e1+e2) = 0; 0.5 rad lies inside; full bar needs cos^2(e1-e2) = 1
    assert reachable.tolist() == [False, True, False]


# --- physics-aware training --------------------------------------------------------------

def _small_problem(seed, errors):
    rng = np.random.default_rng(seed)
    net = build_network(4, 2, 2, "rectangular", logit_scale=3.0)
    chip = sample_devices(net, errors, rng)
    params = net.init_params(rng)
    x = rng.standard_normal((6, 4)) + 1j * rng.standard_normal((6, 4))
    x *= 3.0 / np.linalg.norm(x, axis=1, keepdims=True)
    return net, chip, params, x, rng.integers(0, 2, 6)


def test_pat_with_perfect_twin_is_the_exact_device_gradient():
    errors = ErrorModel(bs_error=0.1, loss_db=0.2, loss_imbalance_db=0.1, phase_error=0.2)
    net, chip, params, x, labels = _small_problem(11, errors)
    twin = [calibrated_twin(d, 0.0, np.random.default_rng(5)) for d in chip]
    _, exact, _ = exact_gradient(net, params, x, labels, chip)
    loss, grad, _ = pat_gradient(net, params, x, labels, chip, twin, None)
    np.testing.assert_allclose(grad, exact, rtol=0, atol=1e-9 * np.abs(exact).max())
    assert loss == pytest.approx(exact_gradient(net, params, x, labels, chip)[0], rel=1e-12)
    # the ideal model as twin gets the forward right but not the Jacobian
    _, ideal_twin, _ = pat_gradient(net, params, x, labels, chip, None, None)
    assert gradient_error(ideal_twin, exact) > 1e-3


def test_pat_loss_comes_from_measured_outputs():
    noisy = ErrorModel(bs_error=0.05, io_amp_error=0.05, io_phase_error=0.05)
    net, chip, params, x, labels = _small_problem(12, noisy)
    twin = [calibrated_twin(d, 0.0, np.random.default_rng(5)) for d in chip]
    clean = exact_gradient(net, params, x, labels, chip)
    loss, grad, _ = pat_gradient(net, params, x, labels, chip, twin, np.random.default_rng(6))
    assert loss != pytest.approx(clean[0], rel=1e-6)
    assert 0 < gradient_error(grad, clean[1]) < 0.2


# --- SPSA ---------------------------------------------------------------------------------

def test_spsa_is_unbiased_on_a_small_network():
    errors = ErrorModel(bs_error=0.1, loss_imbalance_db=0.1)
    net, chip, params, x, labels = _small_problem(13, errors)
    _, exact, _ = exact_gradient(net, params, x, labels, chip)
    draws = 20000
    _, mean = spsa_gradient(net, params, x, labels, chip, 1e-3, draws, np.random.default_rng(8))
    # per-component spread of one estimate, from the same kind of draws
    singles = np.array([spsa_gradient(net, params, x, labels, chip, 1e-3, 1, np.random.default_rng(100 + i))[1]
                        for i in range(400)])
    stderr = singles.std(axis=0) / np.sqrt(draws)
    assert np.all(np.abs(mean - exact) < 5 * stderr)
    assert np.abs(exact).max() > 20 * stderr.max()  # the test can see the gradient
    # one estimate's error is large: each component carries the others' (P - 1) terms
    assert np.median(gradient_error(singles, exact)) > 0.3


def test_spsa_ensemble_draws_each_device_alone():
    errors = ErrorModel(bs_error=0.05, io_amp_error=0.02)
    net, chip, params, x, labels = _small_problem(14, errors)
    from insitu.photonics.errors import DeviceNoise

    k = 3
    chips = [DeviceErrors.stack([d] * k) for d in chip]
    p = np.stack([params + 0.1 * i for i in range(k)])
    gens = lambda base: DeviceNoise([np.random.default_rng(base + i) for i in range(k)])  # noqa: E731
    _, together = spsa_gradient(net, p, np.broadcast_to(x, (k,) + x.shape), np.broadcast_to(labels, (k, 6)),
                                chips, 0.05, 4, gens(20), gens(40))
    for i in range(k):
        one = lambda base: DeviceNoise([np.random.default_rng(base + i)])  # noqa: E731
        _, alone = spsa_gradient(net, p[i], x, labels, chip, 0.05, 4, one(20), one(40))
        np.testing.assert_allclose(together[i], alone, atol=1e-12)


@pytest.mark.parametrize("kwargs,message", [(dict(delta=0.0), "spsa_delta"), (dict(samples=0), "spsa_samples")])
def test_spsa_bad_settings_name_the_problem(kwargs, message):
    net, chip, params, x, labels = _small_problem(15, ErrorModel())
    args = dict(delta=0.05, samples=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        spsa_gradient(net, params, x, labels, chip, args["delta"], args["samples"], np.random.default_rng(0))
