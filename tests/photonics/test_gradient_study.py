"""The gradient-error study of one device (photonics.insitu, the ``gradient`` experiment's
physics): random inputs at one power, and the random streams split off one generator."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.photonics import ErrorModel
from insitu.photonics.insitu import protocol_gradient_errors, random_inputs
from insitu.photonics.network import build_network


def test_random_inputs_have_the_asked_shape_power_and_labels():
    x, labels = random_inputs(np.random.default_rng(5), n_repeats=7, batch_size=3, n_ports=6, power=9.0,
                              n_classes=3)
    assert x.shape == (7, 3, 6) and x.dtype == complex
    assert labels.shape == (7, 3)
    np.testing.assert_allclose(np.sum(np.abs(x) ** 2, axis=-1), 9.0, rtol=1e-12)
    assert set(np.unique(labels)) == {0, 1, 2}
    # both quadratures are drawn: neither the real nor the imaginary part is zero
    assert np.all(np.abs(x.real).sum(axis=-1) > 0) and np.all(np.abs(x.imag).sum(axis=-1) > 0)


def test_random_inputs_follow_the_generator_alone():
    first = random_inputs(np.random.default_rng(8), 4, 2, 4, 1.0)
    again = random_inputs(np.random.default_rng(8), 4, 2, 4, 1.0)
    other = random_inputs(np.random.default_rng(9), 4, 2, 4, 1.0)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.allclose(first[0], other[0])
    # the batches of one call differ from each other (the stream advances)
    assert not np.allclose(first[0][0], first[0][1])


def _study(seed=21, protocols=("three_pass", "analog"), repeats=5, batch=2, **errors):
    net = build_network(4, 2, 2, "triangular", None, "grouped", 1.0 / 9.0)
    return protocol_gradient_errors(net, ErrorModel(**errors), np.random.default_rng(seed), protocols,
                                    repeats, batch, 9.0)


def test_both_protocols_are_exact_without_loss_or_noise():
    study = _study(bs_error=0.05, phase_error=0.2)
    assert study.errors.shape == (2, 5) and study.true_norms.shape == (5,)
    assert np.all(study.true_norms > 1e-6)
    assert np.max(study.errors) < 1e-9


def test_noise_streams_leave_device_phases_and_inputs_alone():
    quiet = _study(bs_error=0.05)
    noisy = _study(bs_error=0.05, tap_noise=0.05, io_amp_error=0.02)
    # the exact gradients depend on device, phases and inputs only: noise draws elsewhere
    np.testing.assert_array_equal(quiet.true_norms, noisy.true_norms)
    assert np.all(noisy.errors > 1e-6)
    # another device (other splitting errors) gives other exact gradients
    assert not np.allclose(_study(bs_error=0.1).true_norms, quiet.true_norms)


def test_each_protocol_keeps_its_own_noise_stream():
    both = _study(protocols=("three_pass", "analog"), tap_noise=0.02)
    alone = _study(protocols=("three_pass",), tap_noise=0.02)
    np.testing.assert_array_equal(both.errors[0], alone.errors[0])
    np.testing.assert_array_equal(both.true_norms, alone.true_norms)
    # analog's stream is another one: its errors are not three-pass's
    assert not np.allclose(both.errors[1], both.errors[0])


@pytest.mark.parametrize("seed", [0, 2**62 + 3])
def test_the_study_follows_its_seed(seed):
    first, again, other = _study(seed, tap_noise=0.01), _study(seed, tap_noise=0.01), _study(seed + 1, tap_noise=0.01)
    np.testing.assert_array_equal(first.errors, again.errors)
    assert not np.allclose(first.errors, other.errors)
