"""Programming a target unitary onto a chip (photonics.decompose, photonics.unitary)."""

import numpy as np
import pytest

from insitu.photonics import ErrorModel, transfer_matrix
from insitu.photonics.calibration import calibrated_twin
from insitu.photonics.decompose import decompose
from insitu.photonics.layout import make_layout
from insitu.photonics import unitary

KINDS = [(topology, mzi) for topology in ("rectangular", "triangular") for mzi in ("standard", "three_splitter")]


def _setup(topology, mzi, n=12, seed=0):
    lay = make_layout(topology, n, mzi=mzi)
    return lay, unitary.haar_unitary(n, np.random.default_rng(seed))


def test_haar_unitary_is_unitary_and_seeded():
    u = unitary.haar_unitary(16, np.random.default_rng(4))
    np.testing.assert_allclose(u.conj().T @ u, np.eye(16), atol=1e-13)
    np.testing.assert_array_equal(u, unitary.haar_unitary(16, np.random.default_rng(4)))
    # Haar: E|U_ij|^2 = 1/N, and the phases of R's diagonal are removed (no bias of U_00's phase)
    draws = np.stack([unitary.haar_unitary(4, np.random.default_rng(s)) for s in range(400)])
    assert np.mean(np.abs(draws) ** 2) == pytest.approx(0.25, rel=1e-12)
    assert abs(np.mean(draws[:, 0, 0])) < 0.05


def test_metrics_follow_their_definitions():
    rng = np.random.default_rng(1)
    target = unitary.haar_unitary(6, rng)
    assert unitary.matrix_error(target, target) == 0.0 and unitary.fidelity(target, target) == pytest.approx(1.0)
    # a global phase costs matrix error |1 - e^{i a}| but no fidelity
    shifted = np.exp(0.3j) * target
    assert unitary.matrix_error(shifted, target) == pytest.approx(abs(1 - np.exp(0.3j)))
    assert unitary.fidelity(shifted, target) == pytest.approx(1.0)
    # uniform loss (power 0.81) is infidelity, not only matrix error
    assert unitary.fidelity(0.9 * target, target) == pytest.approx(0.81)
    other = unitary.haar_unitary(6, rng)
    expected = abs(np.trace(target.conj().T @ other)) ** 2 / 36
    assert unitary.fidelity(other, target) == pytest.approx(expected)


@pytest.mark.parametrize("topology, mzi", KINDS)
def test_exactly_programmed_ideal_chip_has_no_matrix_error(topology, mzi):
    for n in (4, 7, 16):
        lay, target = _setup(topology, mzi, n)
        d = decompose(lay, target)
        np.testing.assert_allclose(transfer_matrix(lay, d.theta, d.phi, None, d.gamma), target, atol=1e-12)
        result = unitary.program_naive(lay, target, None)
        assert result.error < 1e-12 and result.fidelity == pytest.approx(1.0, abs=1e-12)


def test_decompose_refuses_what_it_cannot_place():
    lay = make_layout("rectangular", 6, depth=4)
    with pytest.raises(ValueError, match="depth N"):
        decompose(lay, np.eye(6))
    with pytest.raises(ValueError, match="not unitary"):
        decompose(make_layout("rectangular", 4), np.ones((4, 4)))


def _slope(x, y):
    return np.polyfit(np.log(x), np.log(y), 1)[0]


@pytest.mark.parametrize("topology, mzi", KINDS)
def test_naive_error_is_first_order_in_the_splitting_error(topology, mzi):
    # One seeded chip, its splitting errors scaled (the draws are those of the same normals):
    # U(e) = U_t + J e + O(e^2), so E = ||J e|| / sqrt(N) grows as bs_error.
    lay, target = _setup(topology, mzi)
    bs = np.array([1e-4, 3e-4, 1e-3, 3e-3])
    errors = [unitary.program_naive(lay, target, ErrorModel(bs_error=b).sample(lay, np.random.default_rng(1))).error
              for b in bs]
    assert _slope(bs, errors) == pytest.approx(1.0, abs=0.02)
    assert errors[0] > 1e-5


@pytest.mark.parametrize("topology, mzi", KINDS)
def test_correction_with_an_exact_twin_removes_the_splitting_error(topology, mzi):
    # Every MZI's setting is reachable at small errors, so the correction is exact (rounding).
    lay, target = _setup(topology, mzi)
    chip = ErrorModel(bs_error=3e-3, phase_error=0.2).sample(lay, np.random.default_rng(1))
    twin = calibrated_twin(chip, 0.0, np.random.default_rng(2))
    assert unitary.program_naive(lay, target, chip).error > 1e-2
    assert unitary.program_corrected(lay, target, chip, twin).error < 1e-12


def test_corrected_error_is_first_order_in_the_calibration_error_only():
    # E_corrected ~ sigma (the twin's estimation error), not bs_error: ten times the splitting
    # error leaves it where it was, while the naive error grows tenfold.
    lay, target = _setup("rectangular", "standard")
    sigmas = np.array([1e-4, 3e-4, 1e-3, 3e-3])
    out = {}
    for b in (1e-3, 1e-2):
        chip = ErrorModel(bs_error=b).sample(lay, np.random.default_rng(1))
        out[b] = [unitary.program_corrected(lay, target, chip, calibrated_twin(chip, s, np.random.default_rng(2))).error
                  for s in sigmas]
        assert _slope(sigmas, out[b]) == pytest.approx(1.0, abs=0.05)
    np.testing.assert_allclose(out[1e-2], out[1e-3], rtol=0.1)


def test_three_splitter_correction_stays_exact_where_the_standard_one_cannot_reach():
    errors = {}
    for mzi in ("standard", "three_splitter"):
        lay, target = _setup("triangular", mzi, 16)
        chip = ErrorModel(bs_error=0.03).sample(lay, np.random.default_rng(1))
        twin = calibrated_twin(chip, 0.0, np.random.default_rng(2))
        errors[mzi] = unitary.program_corrected(lay, target, chip, twin).error
    assert errors["three_splitter"] < 1e-12 < 1e-4 < errors["standard"]


def test_exact_and_measured_matrix_gradients_agree():
    lay, target = _setup("rectangular", "standard", 6)
    rng = np.random.default_rng(3)
    chip = ErrorModel(bs_error=0.05, phase_error=0.1).sample(lay, rng)
    theta, phi = rng.uniform(0, 2 * np.pi, (2, lay.n_mzis))
    gamma = rng.uniform(0, 2 * np.pi, 6)
    loss, *exact = unitary.matrix_gradient(lay, theta, phi, gamma, target, chip)
    # finite differences of the exact loss (actual phases: offsets are additive)
    step = 1e-6
    for k, arr in enumerate((theta, phi, gamma)):
        i = 1
        plus, minus = arr.copy(), arr.copy()
        plus[i] += step
        minus[i] -= step
        args = [theta, phi, gamma]
        args[k] = plus
        lp = unitary.matrix_gradient(lay, *args, target, chip)[0]
        args[k] = minus
        lm = unitary.matrix_gradient(lay, *args, target, chip)[0]
        assert exact[k][i] == pytest.approx((lp - lm) / (2 * step), rel=1e-6, abs=1e-9)
    for protocol in ("three_pass", "analog"):
        measured_loss, *measured = unitary.measured_matrix_gradient(lay, theta, phi, gamma, target, chip, None,
                                                                    protocol)
        assert measured_loss == pytest.approx(loss, rel=1e-12)
        for a, b in zip(measured, exact):
            np.testing.assert_allclose(a, b, atol=1e-10)


def test_fits_reduce_the_matrix_error():
    lay, target = _setup("rectangular", "standard", 8)
    chip = ErrorModel(bs_error=0.05, tap_noise=0.001).sample(lay, np.random.default_rng(1))
    twin = calibrated_twin(chip, 0.002, np.random.default_rng(2))
    naive = unitary.program_naive(lay, target, chip).error
    corrected = unitary.program_corrected(lay, target, chip, twin).error
    fitted = unitary.fit_twin(lay, target, chip, twin, steps=40)
    insitu = unitary.fit_insitu(lay, target, chip, np.random.default_rng(3), steps=150, lr=0.01)
    assert corrected < naive and fitted.error <= corrected * 1.01
    assert insitu.error < 0.2 * naive
    assert insitu.history[0] == pytest.approx(naive) and len(insitu.history) == 151
    # the same streams give the same fit
    again = unitary.fit_insitu(lay, target, chip, np.random.default_rng(3), steps=150, lr=0.01)
    np.testing.assert_array_equal(again.theta, insitu.theta)
