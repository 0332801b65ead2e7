"""Launch schemes of the measured protocols: exactness without noise, noise versus batch size."""

import numpy as np
import pytest

from insitu.photonics import ErrorModel
from insitu.photonics.insitu import gradient_error, measure_gradient
from insitu.photonics.network import build_network, exact_gradient, sample_devices


def _case(seed, n_ports, topology, batch, n_layers=2, **errors):
    rng = np.random.default_rng(seed)
    net = build_network(n_ports, n_layers, 2, topology, logit_scale=3.0)
    params = net.init_params(rng)
    x = rng.standard_normal((batch, n_ports)) + 1j * rng.standard_normal((batch, n_ports))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = (np.abs(x[:, 0]) > np.abs(x[:, 1])).astype(int)
    devices = sample_devices(net, ErrorModel(**errors), rng)
    return net, params, x, labels, devices


@pytest.mark.parametrize("launch", ["balanced", "cotangent"])
@pytest.mark.parametrize("protocol", ["three_pass", "analog"])
@pytest.mark.parametrize("topology", ["rectangular", "triangular"])
@pytest.mark.parametrize("batch", [1, 7, 300])
def test_launch_schemes_equal_the_device_gradient_without_noise(launch, protocol, topology, batch):
    net, params, x, labels, devices = _case(batch, 6, topology, batch, bs_error=0.1, phase_error=0.3)
    _, true_grad, _ = exact_gradient(net, params, x, labels, devices)
    measured = measure_gradient(net, params, x, labels, devices, protocol, np.random.default_rng(1),
                                launch=launch).grad
    assert np.linalg.norm(measured - true_grad) / np.linalg.norm(true_grad) < 1e-9


@pytest.mark.parametrize("launch", ["balanced", "cotangent"])
def test_both_evaluations_of_a_scheme_agree_without_tap_noise(launch):
    # loss makes the three-pass reading biased, so agreement is not just "both exact"
    net, params, x, labels, devices = _case(3, 5, "triangular", 40, loss_std_db=0.3, io_amp_error=0.03)
    a = measure_gradient(net, params, x, labels, devices, "three_pass", np.random.default_rng(4), aggregate=False,
                         launch=launch).grad
    b = measure_gradient(net, params, x, labels, devices, "three_pass", np.random.default_rng(4), aggregate=True,
                         launch=launch).grad
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-10


def _mean_error(launch, batch, tap_noise=0.01, inputs=6, draws=3):
    net, params, _, _, devices = _case(0, 8, "rectangular", 1, tap_noise=tap_noise)
    errs = []
    for rep in range(inputs):
        rng = np.random.default_rng(100 + rep)
        x = rng.standard_normal((batch, 8)) + 1j * rng.standard_normal((batch, 8))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        labels = (np.abs(x[:, 0]) > np.abs(x[:, 1])).astype(int)
        _, true_grad, _ = exact_gradient(net, params, x, labels, devices)
        for d in range(draws):
            noise = np.random.default_rng(1000 * rep + d)
            errs.append(gradient_error(measure_gradient(net, params, x, labels, devices, "three_pass", noise,
                                                        launch=launch).grad, true_grad))
    return float(np.mean(errs))


def test_cotangent_noise_does_not_grow_with_the_batch_while_per_example_does():
    cot_small, cot_large = _mean_error("cotangent", 32), _mean_error("cotangent", 600)
    assert 1 / 1.5 < cot_large / cot_small < 1.5
    per_small, per_large = _mean_error("per_example", 32), _mean_error("per_example", 600)
    assert per_large > 3 * per_small
    # the balanced sum pass keeps the interference term at full size
    assert _mean_error("balanced", 600) < per_large / 10


def test_unknown_launch_scheme_is_named():
    net, params, x, labels, devices = _case(0, 4, "rectangular", 3)
    with pytest.raises(ValueError, match="launch scheme 'batched'"):
        measure_gradient(net, params, x, labels, devices, "three_pass", launch="batched")


def test_read_only_io_error_spares_the_generated_vectors():
    # With the error on reads only, a lossless device's per-example measurement still carries
    # readout error of y and x_adj; with exact generation and readout it is exact.
    net, params, x, labels, devices = _case(5, 4, "rectangular", 5, io_phase_error=0.1, io_placement="read")
    _, true_grad, _ = exact_gradient(net, params, x, labels, devices)
    noisy = measure_gradient(net, params, x, labels, devices, "three_pass", np.random.default_rng(2)).grad
    assert gradient_error(noisy, true_grad) > 1e-6
    from insitu.photonics.network import network_forward

    a = network_forward(net, params, x, devices, np.random.default_rng(3)).inputs[0]
    np.testing.assert_array_equal(a, x)  # generation is exact: the first launch is x itself


def test_loss_equal_on_every_path_biases_three_pass_but_not_analog():
    """8 ports, every mode inside an MZI in every column, 0.1 dB per MZI: every path has the
    same loss (harmless for inference), the true gradient of this seed is zero, yet
    per-example three-pass reads a bias (|c|^2 - |b|^2)/2; the analog toggle and the
    cotangent scheme (adjoint tap powers from the forward launch of conj(x_adj)) read 0."""
    from insitu.photonics import from_columns, init_phases, propagate
    from insitu.photonics.propagation import ideal_gradient
    from insitu.photonics.protocols import adjoint_pass, forward_pass, layer_gradient

    rng = np.random.default_rng(0)
    lay = from_columns(8, [[0, 2, 4, 6]] * 8)
    dev = ErrorModel(loss_db=0.1).sample(lay, rng)
    theta, phi = init_phases(lay, rng)
    x = rng.standard_normal((1, 8)) + 1j * rng.standard_normal((1, 8))
    x /= np.linalg.norm(x)
    g = np.conj(propagate(lay, theta, phi, x, dev))  # x_eta a_eta = |x_eta|^2 a: real, gradient 0
    assert np.abs(np.concatenate(ideal_gradient(lay, theta, phi, x, g, dev))).max() < 1e-14
    fwd, adj = forward_pass(lay, theta, phi, x, dev), adjoint_pass(lay, theta, phi, g, dev)

    def read(protocol, launch):
        return np.abs(layer_gradient(lay, theta, phi, x, fwd, g, adj, dev, None, protocol, launch)).max()

    assert read("three_pass", "per_example") > 0.01
    assert read("three_pass", "balanced") > 0.01
    for protocol, launch in [("analog", "per_example"), ("analog", "balanced"), ("analog", "cotangent"),
                             ("three_pass", "cotangent")]:
        assert read(protocol, launch) < 1e-12


@pytest.mark.parametrize("launch,mode", [("cotangent", "analog"), ("cotangent", "insitu"), ("balanced", "insitu")])
def test_ensemble_equals_one_by_one_for_every_launch_scheme(launch, mode):
    from insitu.photonics.training import train, train_ensemble

    errors = ErrorModel(loss_std_db=0.1, tap_noise=0.01, io_amp_error=0.02, io_phase_error=0.05, io_placement="read")
    kw = dict(errors=errors, mode=mode, epochs=1, batch_size=16, lr=0.02, launch=launch)
    together = train_ensemble("moons", seeds=[4, 9], **kw)
    for r in together:
        alone = train("moons", seed=r.seed, **kw)
        np.testing.assert_allclose(r.params, alone.params, rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.step_grad_errors, alone.step_grad_errors, atol=1e-12)
