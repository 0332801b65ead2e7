import numpy as np
import pytest

from photonics import ErrorModel, program_phases, quantize_phase, rectangular


@pytest.mark.parametrize(
    "name,value",
    [("bs_error", -0.1), ("loss_db", float("nan")), ("tap_noise", float("inf")), ("io_phase_error", -1),
     ("crosstalk", -0.01), ("loss_imbalance_db", "big"), ("tap_fraction", 1.0)],
)
def test_bad_values_name_the_parameter(name, value):
    with pytest.raises(ValueError, match=name):
        ErrorModel(**{name: value})


@pytest.mark.parametrize("bits", [0, 2.5, 40, True])
def test_bad_dac_bits(bits):
    with pytest.raises(ValueError, match="dac_bits"):
        ErrorModel(dac_bits=bits)


def test_sample_shapes_and_statistics(rng):
    lay = rectangular(16)
    dev = ErrorModel(bs_error=0.05, loss_db=0.2, loss_imbalance_db=0.1, phase_error=0.02).sample(lay, rng)
    assert dev.bs1.shape == dev.bs2.shape == (lay.n_mzis,)
    assert dev.gamma_offset.shape == (16,)
    both = np.concatenate([dev.bs1, dev.bs2])
    assert 0.035 < both.std() < 0.065
    # insertion loss alone bounds every arm from above; imbalance only adds loss
    limit = 10 ** (-0.2 / 20)
    assert np.all(dev.arm_top <= limit + 1e-15) and np.all(dev.arm_bottom <= limit + 1e-15)
    assert np.any(dev.arm_top < limit * 0.999)


def test_changing_one_std_keeps_other_draws():
    lay = rectangular(6)
    a = ErrorModel(bs_error=0.1).sample(lay, np.random.default_rng(5))
    b = ErrorModel(bs_error=0.1, phase_error=0.3).sample(lay, np.random.default_rng(5))
    np.testing.assert_array_equal(a.bs1, b.bs1)
    np.testing.assert_array_equal(a.bs2, b.bs2)


def test_quantisation_grid():
    q = quantize_phase(np.array([0.0, 0.1, 1.0, 3.0]), 4)
    step = 2 * np.pi / 16
    np.testing.assert_allclose(q / step, np.round(q / step), atol=1e-12)
    assert np.all(np.abs(q - np.array([0.0, 0.1, 1.0, 3.0])) <= step / 2 + 1e-12)


def test_crosstalk_shifts_column_neighbours(rng):
    lay = rectangular(6)
    dev = ErrorModel(crosstalk=0.1).sample(lay, rng)
    theta = np.zeros(lay.n_mzis)
    theta[1] = 1.0  # middle MZI of column 0 (top modes 0, 2, 4)
    actual, _, _ = program_phases(dev, theta, np.zeros(lay.n_mzis))
    expected = np.zeros(lay.n_mzis)
    expected[[0, 2]] = 0.1
    expected[1] = 1.0
    np.testing.assert_allclose(actual, expected, atol=1e-15)


def test_static_offsets_add(rng):
    lay = rectangular(4)
    dev = ErrorModel(phase_error=0.05).sample(lay, rng)
    th = rng.random(lay.n_mzis)
    ph = rng.random(lay.n_mzis)
    a_th, a_ph, a_g = program_phases(dev, th, ph, np.zeros(4))
    np.testing.assert_allclose(a_th - th, dev.theta_offset)
    np.testing.assert_allclose(a_ph - ph, dev.phi_offset)
    np.testing.assert_allclose(a_g, dev.gamma_offset)


def test_crosstalk_does_not_depend_on_the_phase_representative(rng):
    lay = rectangular(6)
    dev = ErrorModel(crosstalk=0.1, dac_bits=10).sample(lay, rng)
    theta = rng.random(lay.n_mzis) * 2 * np.pi
    phi = rng.random(lay.n_mzis) * 2 * np.pi
    a = program_phases(dev, theta, phi)
    b = program_phases(dev, theta - 4 * np.pi, phi + 2 * np.pi)
    np.testing.assert_allclose(np.exp(1j * a[0]), np.exp(1j * b[0]), atol=1e-12)
    np.testing.assert_allclose(np.exp(1j * a[1]), np.exp(1j * b[1]), atol=1e-12)
