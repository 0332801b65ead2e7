"""In situ gradient measurements: exactness where physics says so, degradation where it does not."""

import numpy as np
import pytest

from insitu.photonics import ErrorModel
from insitu.photonics.network import build_network, exact_gradient, loss_and_seed, network_forward, sample_devices
from insitu.photonics.insitu import gradient_error, measure_gradient


def _setup(rng, n_ports=4, n_layers=3, topology="rectangular", depth=None, batch=6, n_classes=2):
    net = build_network(n_ports, n_layers, n_classes, topology, depth, logit_scale=3.0)
    params = net.init_params(rng)
    x = (rng.standard_normal((batch, n_ports)) + 1j * rng.standard_normal((batch, n_ports))).astype(complex)
    labels = rng.integers(0, n_classes, batch)
    return net, params, x, labels


@pytest.mark.parametrize("topology,depth", [("rectangular", None), ("rectangular", 7), ("triangular", None)])
@pytest.mark.parametrize("protocol", ["three_pass", "analog"])
def test_protocols_equal_device_gradient_without_loss_or_noise(topology, depth, protocol, rng):
    net, params, x, labels = _setup(rng, 6, 2, topology, depth)
    devices = sample_devices(net, ErrorModel(bs_error=0.1, phase_error=0.2), rng)
    _, true_grad, _ = exact_gradient(net, params, x, labels, devices)
    measured = measure_gradient(net, params, x, labels, devices, protocol, rng=rng).grad
    assert np.linalg.norm(measured - true_grad) / np.linalg.norm(true_grad) < 1e-9


def test_splitting_error_changes_the_gradient_it_measures(rng):
    # The measured gradient is that of the real device, not of the ideal model.
    net, params, x, labels = _setup(rng)
    devices = sample_devices(net, ErrorModel(bs_error=0.1), rng)
    _, ideal_model_grad, _ = exact_gradient(net, params, x, labels, None)
    measured = measure_gradient(net, params, x, labels, devices, "three_pass").grad
    assert gradient_error(measured, ideal_model_grad) > 1e-3


def test_network_gradient_matches_finite_differences(rng):
    net, params, x, labels = _setup(rng, 4, 3, batch=5)
    devices = sample_devices(net, ErrorModel(bs_error=0.1, loss_db=0.2, loss_imbalance_db=0.3), rng)
    _, grad, _ = exact_gradient(net, params, x, labels, devices)

    def loss(p):
        return loss_and_seed(net, network_forward(net, p, x, devices).outputs[-1], labels)[0]

    h = 1e-6
    numeric = np.array([(loss(params + h * e) - loss(params - h * e)) / (2 * h) for e in np.eye(net.n_params)])
    assert np.linalg.norm(grad - numeric) / np.linalg.norm(numeric) < 1e-6


def test_mse_loss_gradient_matches_finite_differences(rng):
    net = build_network(6, 2, 3, "rectangular", loss="mse")
    params = net.init_params(rng)
    x = rng.standard_normal((4, 6)) + 1j * rng.standard_normal((4, 6))
    labels = rng.integers(0, 3, 4)
    _, grad, _ = exact_gradient(net, params, x, labels)

    def loss(p):
        return loss_and_seed(net, network_forward(net, p, x).outputs[-1], labels)[0]

    h = 1e-6
    numeric = np.array([(loss(params + h * e) - loss(params - h * e)) / (2 * h) for e in np.eye(net.n_params)])
    assert np.linalg.norm(grad - numeric) / np.linalg.norm(numeric) < 1e-6


@pytest.mark.parametrize("protocol", ["three_pass", "analog"])
def test_arm_loss_imbalance_breaks_time_reversal(protocol, rng):
    net, params, x, labels = _setup(rng)
    devices = sample_devices(net, ErrorModel(loss_imbalance_db=0.2), rng)
    _, true_grad, _ = exact_gradient(net, params, x, labels, devices)
    measured = measure_gradient(net, params, x, labels, devices, protocol).grad
    # three-pass is hit hardest (its sum pass subtracts two separately measured passes)
    assert gradient_error(measured, true_grad) > (1e-4 if protocol == "three_pass" else 1e-6)


@pytest.mark.parametrize("protocol", ["three_pass", "analog"])
def test_more_tap_noise_means_larger_gradient_error(protocol):
    rng = np.random.default_rng(11)
    net, params, x, labels = _setup(rng, batch=8)
    levels = [0.002, 0.01, 0.05]
    means = []
    for s in levels:
        devices = sample_devices(net, ErrorModel(tap_noise=s), np.random.default_rng(5))
        _, true_grad, _ = exact_gradient(net, params, x, labels, devices)
        noise = np.random.default_rng(7)
        errs = [gradient_error(measure_gradient(net, params, x, labels, devices, protocol, noise).grad, true_grad)
                for _ in range(30)]
        means.append(np.mean(errs))
    assert means[0] < means[1] < means[2]


def test_io_error_adds_gradient_error_and_none_without_rng(rng):
    net, params, x, labels = _setup(rng)
    devices = sample_devices(net, ErrorModel(io_amp_error=0.05, io_phase_error=0.05), rng)
    _, true_grad, _ = exact_gradient(net, params, x, labels, devices)
    noisy = measure_gradient(net, params, x, labels, devices, "three_pass", np.random.default_rng(1)).grad
    clean = measure_gradient(net, params, x, labels, devices, "three_pass", None).grad
    assert gradient_error(noisy, true_grad) > 1e-5
    assert gradient_error(clean, true_grad) < 1e-12


def test_unknown_protocol_is_named(rng):
    net, params, x, labels = _setup(rng)
    with pytest.raises(ValueError, match="protocol 'fourpass'"):
        measure_gradient(net, params, x, labels, None, "fourpass")


def test_gradient_error_of_a_zero_gradient_is_nan():
    assert np.isnan(gradient_error(np.zeros(3), np.ones(3)))
    assert gradient_error(np.array([1.0, 2.0]), np.array([2.0, 4.0])) == pytest.approx(0.0, abs=1e-15)
    assert gradient_error(np.array([1.0, 0.0]), np.array([-1.0, 0.0])) == 2.0
