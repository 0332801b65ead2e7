"""Fresh versus frozen measurement noise (``noise_draws``): replay, bias, training."""

import numpy as np
import pytest

from insitu.photonics import ErrorModel
from insitu.photonics.errors import DeviceNoise, FrozenNoise, measurement_noise
from insitu.photonics.insitu import gradient_error, measure_gradient
from insitu.photonics.network import build_network, exact_gradient, sample_devices
from insitu.photonics.training import train, train_ensemble


def _streams(seeds):
    return DeviceNoise([np.random.default_rng(s) for s in seeds])


def test_frozen_noise_repeats_each_draw_site_every_step():
    frozen = FrozenNoise(_streams([1, 2, 3]))
    first = [frozen.standard_normal((3, 4, 5)), frozen.standard_normal((3, 7)), frozen.standard_normal((3, 4, 5))]
    assert not np.allclose(first[0], first[2])  # two sites of one step draw different numbers
    frozen.new_step()
    again = [frozen.standard_normal((3, 4, 5)), frozen.standard_normal((3, 7)), frozen.standard_normal((3, 4, 5))]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    frozen.new_step()
    short = frozen.standard_normal((3, 2, 5))  # a shape not seen before (the short last batch)
    frozen.new_step()
    np.testing.assert_array_equal(frozen.standard_normal((3, 2, 5)), short)


def test_frozen_patterns_of_an_ensemble_are_those_of_its_devices_alone():
    together = FrozenNoise(_streams([5, 6]))
    alone = [FrozenNoise(_streams([s])) for s in (5, 6)]
    for _ in range(3):
        for f in (together, *alone):
            f.new_step()
        big = together.standard_normal((2, 3000))
        small = together.standard_normal((2, 9))
        for k, f in enumerate(alone):
            np.testing.assert_array_equal(big[k], f.standard_normal((1, 3000))[0])
            np.testing.assert_array_equal(small[k], f.standard_normal((1, 9))[0])


def test_fresh_noise_averages_out_over_steps_and_frozen_noise_does_not():
    rng = np.random.default_rng(11)
    net = build_network(6, 2, 2, "rectangular", logit_scale=3.0)
    params = net.init_params(rng)
    x = rng.standard_normal((5, 6)) + 1j * rng.standard_normal((5, 6))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = (np.abs(x[:, 0]) > np.abs(x[:, 1])).astype(int)
    devices = sample_devices(net, ErrorModel(bs_error=0.05, tap_noise=0.05, io_amp_error=0.02), rng)
    _, true_grad, _ = exact_gradient(net, params, x, labels, devices)
    means = {}
    for draws in ("fresh", "frozen"):
        noise = measurement_noise(_streams([3]), draws)
        steps = []
        for _ in range(64):
            noise.new_step()
            steps.append(measure_gradient(net, params[None], x[None], labels[None], devices, "three_pass", noise,
                                          launch="cotangent").grad[0])
        if draws == "frozen":
            np.testing.assert_array_equal(steps[0], steps[-1])
        means[draws] = (gradient_error(steps[0], true_grad), gradient_error(np.mean(steps, axis=0), true_grad))
    single, averaged = means["fresh"]
    assert averaged < 0.2 * single  # 64 independent draws: about 1/64 of one draw's 1 - cos
    single, averaged = means["frozen"]
    assert averaged == pytest.approx(single, rel=1e-12)


def test_frozen_noise_changes_nothing_without_noise_and_keeps_ensembles_exact():
    kw = dict(mode="insitu", epochs=2, batch_size=8, lr=0.02, launch="cotangent")
    quiet = ErrorModel(bs_error=0.05, phase_error=0.05)
    fresh = train("moons", seed=2, errors=quiet, **kw)
    frozen = train("moons", seed=2, errors=quiet, noise_draws="frozen", **kw)
    np.testing.assert_array_equal(fresh.params, frozen.params)
    noisy = ErrorModel(bs_error=0.05, tap_noise=0.02, io_amp_error=0.02, io_phase_error=0.05)
    together = train_ensemble("moons", seeds=[2, 7], errors=noisy, noise_draws="frozen", **kw)
    assert not np.allclose(together[0].params, train("moons", seed=2, errors=noisy, **kw).params)
    for r in together:
        alone = train("moons", seed=r.seed, errors=noisy, noise_draws="frozen", **kw)
        np.testing.assert_allclose(r.params, alone.params, rtol=0, atol=1e-12)


def test_a_bad_noise_draws_value_is_named():
    with pytest.raises(ValueError, match="noise_draws .*must be one of fresh, frozen, got 'stale'"):
        train("moons", mode="insitu", epochs=1, batch_size=8, noise_draws="stale")
