import numpy as np
import pytest

from insitu.photonics import ErrorModel, program_phases, quantize_phase, rectangular, triangular


@pytest.mark.parametrize(
    "name,value",
    [("bs_error", -0.1), ("loss_db", float("nan")), ("tap_noise", float("inf")), ("io_phase_error", -1),
     ("crosstalk", -0.01), ("loss_imbalance_db", "big"), ("tap_fraction", 1.0)],
)
def test_bad_values_name_the_parameter(name, value):
    with pytest.raises(ValueError, match=name):
        ErrorModel(**{name: value})


@pytest.mark.parametrize("bits", [-1, 2.5, 40, True])
def test_bad_dac_bits(bits):
    with pytest.raises(ValueError, match="dac_bits"):
        ErrorModel(dac_bits=bits)


def test_dac_bits_zero_is_a_continuous_dac_as_in_a_spec():
    assert ErrorModel(dac_bits=0).dac_bits is None
    assert ErrorModel(dac_bits=6).dac_bits == 6


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


def _embedded(n, top, block):
    m = np.eye(n, dtype=complex)
    m[top : top + 2, top : top + 2] = block
    return m


def _coupler(e):
    c, s = np.cos(np.pi / 4 + e), np.sin(np.pi / 4 + e)
    return np.array([[c, 1j * s], [1j * s, c]])


def _explicit_matrix(lay, theta, phi, dev):
    """Product of every MZI's 2x2 block (arms as the device holds them) and idle diagonals."""
    n = lay.n_ports
    u = np.eye(n, dtype=complex)
    k = 0
    for c, tops in enumerate(lay.columns):
        col = np.eye(n, dtype=complex)
        for top in tops:
            block = (
                _coupler(dev.bs2[k])
                @ np.diag([dev.arm_top[k] * np.exp(1j * theta[k]), dev.arm_bottom[k]])
                @ _coupler(dev.bs1[k])
                @ np.diag([dev.arm_input[k] * np.exp(1j * phi[k]), 1.0])
            )
            col = _embedded(n, top, block) @ col
            k += 1
        u = np.diag(dev.idle_amp[c]) @ col @ u
    return u


@pytest.mark.parametrize("make", [lambda: rectangular(5), lambda: triangular(4)])
def test_loss_std_sits_on_theta_and_phi_arms_as_explicit_blocks(make, rng):
    from insitu.photonics import transfer_matrix

    lay = make()
    dev = ErrorModel(bs_error=0.05, loss_std_db=0.4).sample(lay, rng)
    # the paper's model: zero-mean dB draws on the theta arm and the phi (input) arm only
    np.testing.assert_array_equal(dev.arm_bottom, np.ones(lay.n_mzis))
    assert np.any(dev.arm_top > 1) and np.any(dev.arm_top < 1)  # gains and losses
    assert np.any(dev.arm_input > 1) and np.any(dev.arm_input < 1)
    theta, phi = rng.uniform(0, 2 * np.pi, (2, lay.n_mzis))
    u = transfer_matrix(lay, theta, phi, dev)
    np.testing.assert_allclose(u, _explicit_matrix(lay, theta, phi, dev), atol=1e-13)


def test_loss_std_draws_have_the_stated_distribution():
    lay = rectangular(16)
    sigma = 0.05
    dev = ErrorModel(loss_std_db=sigma).sample(lay, np.random.default_rng(3))
    db = -20 * np.log10(np.concatenate([dev.arm_top, dev.arm_input]))
    assert abs(db.mean()) < 4 * sigma / np.sqrt(db.size)
    assert 0.85 * sigma < db.std() < 1.15 * sigma


def test_loss_std_keeps_mean_power_transmission_lossless():
    """Zero-mean dB draws: mean transmitted power over devices equals 1 within its
    statistical error; the half-normal imbalance model at the same scale loses power."""
    from insitu.photonics import transfer_matrix

    lay = triangular(8)
    rng = np.random.default_rng(17)
    theta, phi = rng.uniform(0, 2 * np.pi, (2, lay.n_mzis))
    x = np.ones(8) / np.sqrt(8)
    draws = 400

    def powers(model):
        return np.array([
            np.sum(np.abs(transfer_matrix(lay, theta, phi, model.sample(lay, rng)) @ x) ** 2) for _ in range(draws)
        ])

    paper = powers(ErrorModel(loss_std_db=0.2))
    se = paper.std(ddof=1) / np.sqrt(draws)
    assert abs(paper.mean() - 1.0) < 4 * se
    half_normal = powers(ErrorModel(loss_imbalance_db=0.2))
    assert 1.0 - half_normal.mean() > 10 * half_normal.std(ddof=1) / np.sqrt(draws)


@pytest.mark.parametrize("make", [lambda: rectangular(4), lambda: rectangular(5, 3), lambda: triangular(5)])
def test_idle_loss_lowers_exactly_the_idle_positions(make, rng):
    from insitu.photonics import transfer_matrix

    lay = make()
    dev = ErrorModel(bs_error=0.05, idle_loss_db=0.7).sample(lay, rng)
    touched = np.zeros((lay.depth, lay.n_ports), dtype=bool)
    for c, tops in enumerate(lay.columns):
        touched[c, tops] = touched[c, np.asarray(tops) + 1] = True
    np.testing.assert_array_equal(dev.idle_amp[touched], 1.0)
    np.testing.assert_allclose(dev.idle_amp[~touched], 10 ** (-0.7 / 20))
    assert (~touched).any()
    theta, phi = rng.uniform(0, 2 * np.pi, (2, lay.n_mzis))
    np.testing.assert_allclose(transfer_matrix(lay, theta, phi, dev), _explicit_matrix(lay, theta, phi, dev),
                               atol=1e-13)


def test_idle_loss_on_a_mesh_without_idle_positions_changes_nothing(rng):
    from insitu.photonics import from_columns, transfer_matrix

    lay = from_columns(4, [[0, 2], [0, 2]])  # every mode in every column is inside an MZI
    theta, phi = rng.uniform(0, 2 * np.pi, (2, lay.n_mzis))
    a = transfer_matrix(lay, theta, phi, ErrorModel(bs_error=0.1).sample(lay, np.random.default_rng(1)))
    b = transfer_matrix(lay, theta, phi, ErrorModel(bs_error=0.1, idle_loss_db=3.0).sample(lay, np.random.default_rng(1)))
    np.testing.assert_array_equal(a, b)


def test_io_placement_is_checked_and_read_only_leaves_generation_exact(rng):
    from insitu.photonics.errors import generate_io, read_io

    with pytest.raises(ValueError, match="io_placement"):
        ErrorModel(io_placement="inputs")
    field = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    read_only = ErrorModel(io_amp_error=0.05, io_phase_error=0.1, io_placement="read")
    np.testing.assert_array_equal(generate_io(field, read_only, rng), field)
    assert np.abs(read_io(field, read_only, rng) - field).max() > 1e-3
    both = ErrorModel(io_amp_error=0.05, io_phase_error=0.1)
    assert np.abs(generate_io(field, both, rng) - field).max() > 1e-3
