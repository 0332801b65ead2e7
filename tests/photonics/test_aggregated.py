"""Aggregated-statistics measurement equals the per-example reference (exactly, or in law)."""

import numpy as np
import pytest

from insitu.photonics import ErrorModel
from insitu.photonics.network import build_network, sample_devices
from insitu.photonics.insitu import measure_gradient


def _case(seed, n_ports=4, n_layers=2, batch=40, **errors):
    rng = np.random.default_rng(seed)
    net = build_network(n_ports, n_layers, 2, logit_scale=3.0)
    params = net.init_params(rng)
    x = rng.standard_normal((batch, n_ports)) + 1j * rng.standard_normal((batch, n_ports))
    labels = rng.integers(0, 2, batch)
    devices = sample_devices(net, ErrorModel(**errors), rng)
    return net, params, x, labels, devices


@pytest.mark.parametrize("protocol", ["three_pass", "analog"])
@pytest.mark.parametrize("n_ports,batch", [(4, 40), (8, 9), (6, 200)])
def test_noise_free_aggregated_equals_per_example(protocol, n_ports, batch):
    net, params, x, labels, devices = _case(1, n_ports, 2, batch, bs_error=0.05, loss_db=0.1, loss_imbalance_db=0.3)
    ref = measure_gradient(net, params, x, labels, devices, protocol, None, aggregate=False).grad
    agg = measure_gradient(net, params, x, labels, devices, protocol, None, aggregate=True).grad
    assert np.linalg.norm(agg - ref) / np.linalg.norm(ref) < 1e-10


def test_io_error_enters_both_paths_identically():
    # Same generator state -> same I/O draws before the taps are read; with no tap noise
    # the two paths then agree exactly even though the launched vectors are perturbed.
    net, params, x, labels, devices = _case(2, io_amp_error=0.05, io_phase_error=0.05)
    ref = measure_gradient(net, params, x, labels, devices, "three_pass", np.random.default_rng(9), aggregate=False)
    agg = measure_gradient(net, params, x, labels, devices, "three_pass", np.random.default_rng(9), aggregate=True)
    assert np.linalg.norm(agg.grad - ref.grad) / np.linalg.norm(ref.grad) < 1e-10


# both protocols share the aggregated path; the analog one runs fast, three_pass is slow
@pytest.mark.parametrize("protocol", [pytest.param("three_pass", marks=pytest.mark.slow), "analog"])
def test_tap_noise_statistics_agree(protocol):
    """Mean and variance of every gradient component over 2000 noise draws, both paths."""
    net, params, x, labels, devices = _case(3, 4, 1, 24, loss_imbalance_db=0.1, tap_noise=0.02)
    draws = 2000
    ref = np.array([measure_gradient(net, params, x, labels, devices, protocol, np.random.default_rng(i),
                                     aggregate=False).grad for i in range(draws)])
    agg = np.array([measure_gradient(net, params, x, labels, devices, protocol, np.random.default_rng(10**6 + i),
                                     aggregate=True).grad for i in range(draws)])
    var_ref, var_agg = ref.var(0, ddof=1), agg.var(0, ddof=1)
    z_mean = (ref.mean(0) - agg.mean(0)) / np.sqrt((var_ref + var_agg) / draws)
    assert np.abs(z_mean).max() < 4.5
    # sample variances of 2000 Gaussian draws have relative sd sqrt(2/1999) ~ 3.2 %
    assert np.all(np.abs(var_agg / var_ref - 1) < 0.15)
    assert np.abs(np.mean(var_agg / var_ref) - 1) < 0.03


def test_automatic_choice_uses_aggregation_for_large_batches(monkeypatch):
    import insitu.photonics.protocols as protocols
    calls = []
    original = protocols.moment_readings
    monkeypatch.setattr(protocols, "moment_readings", lambda *a, **k: calls.append(1) or original(*a, **k))
    net, params, x, labels, devices = _case(4, 4, 1, 3)
    measure_gradient(net, params, x, labels, devices, "three_pass")
    assert not calls
    net, params, x, labels, devices = _case(4, 4, 1, 64)
    measure_gradient(net, params, x, labels, devices, "three_pass")
    assert calls


def _hermitian(upper):
    return np.triu(upper) + np.swapaxes(np.triu(upper, 1), -1, -2).conj()


@pytest.mark.parametrize("batch", [1, 3, 20])  # rank below and at the port count
def test_probes_reproduce_moments(batch):
    from insitu.photonics.protocols import _probes, _upper_gram

    rng = np.random.default_rng(4)
    rows = rng.standard_normal((2, batch, 6)) + 1j * rng.standard_normal((2, batch, 6))
    w = rng.standard_normal((2, batch))

    def rebuilt(probe_rows, signs):
        return np.einsum("kj,kja,kjb->kab", signs, probe_rows, probe_rows.conj())

    gram = _upper_gram(rows * np.sqrt(np.abs(w))[..., None])  # semidefinite, rank min(batch, 6)
    scale = max(1.0, np.abs(gram).max())
    for sign in (1.0, -1.0):
        probe_rows, signs = _probes(sign * gram, sign)
        assert probe_rows.shape == (2, 6, 6)
        np.testing.assert_allclose(rebuilt(probe_rows, signs), sign * _hermitian(gram), atol=1e-13 * scale)
    mixed = _upper_gram(rows * np.sqrt(np.clip(w, 0, None))[..., None]) - _upper_gram(
        rows * np.sqrt(np.clip(-w, 0, None))[..., None])
    np.testing.assert_allclose(rebuilt(*_probes(mixed)), _hermitian(mixed), atol=1e-13 * scale)
    zero_rows, _ = _probes(np.zeros((2, 6, 6), dtype=complex), 1.0)  # rank 0: no probe carries power
    assert not np.any(zero_rows)
