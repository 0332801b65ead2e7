"""Training in every mode: accuracy recipes, the in situ advantage, the offline and hybrid
baselines against it, ensembles, bad input."""

import numpy as np
import pytest

from insitu.photonics import ErrorModel
from insitu.photonics.optim import SGD, Adam, make_optimizer
from insitu.photonics.training import MODES, TrainConfig, train, train_ensemble


# insitu learning is covered fast by test_in_situ_beats_digital_under_large_splitting_error
@pytest.mark.parametrize("mode", ["digital", pytest.param("insitu", marks=pytest.mark.slow)])
def test_moons_reaches_ninety_percent(mode):
    # one ensemble of 5 seeds (equal to 5 runs: test_ensemble_equals_one_by_one)
    results = train_ensemble("moons", seeds=range(5), mode=mode, epochs=30, batch_size=16, lr=0.02,
                             record_gradient_error=False, eval_every=30)
    assert np.median([r.test_accuracy[-1] for r in results]) >= 0.90


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["digital", "insitu"])
def test_ring_reaches_ninety_percent(mode):
    accs = [train("ring", mode=mode, epochs=300, batch_size=16, lr=0.03, seed=s,
                  record_gradient_error=False, eval_every=300).test_accuracy[-1] for s in range(5)]
    assert np.median(accs) >= 0.90


@pytest.mark.slow  # learning is covered fast on moons; ensembles by test_ensemble_equals_one_by_one
@pytest.mark.parametrize("mode", ["digital", "insitu"])
def test_ring_learns_with_ensembles(mode):
    # 5 seeds in one ensemble (fast); the recipe needs a few hundred epochs for ring.
    results = train_ensemble("ring", mode=mode, epochs=250, batch_size=16, lr=0.03, seeds=range(5),
                             record_gradient_error=False, eval_every=250)
    assert np.median([r.test_accuracy[-1] for r in results]) >= 0.90


def test_digits64_reaches_eighty_five_percent():
    digital = train("digits64", mode="digital", epochs=2, batch_size=32, lr=0.01, seed=0, eval_every=2)
    insitu = train("digits64", mode="insitu", epochs=2, batch_size=32, lr=0.01, seed=0, eval_every=2,
                   record_gradient_error=False)
    assert digital.test_accuracy[-1] >= 0.85
    assert insitu.test_accuracy[-1] >= 0.85


def test_in_situ_beats_digital_under_large_splitting_error():
    errors = ErrorModel(bs_error=0.1)
    kw = dict(epochs=10, batch_size=16, lr=0.02, seeds=range(6), record_gradient_error=False, eval_every=10)
    digital = train_ensemble("moons", errors=errors, mode="digital", **kw)
    insitu = train_ensemble("moons", errors=errors, mode="insitu", **kw)
    gap = np.array([i.test_accuracy[-1] - d.test_accuracy[-1] for i, d in zip(insitu, digital)])
    assert gap.mean() > 0.03
    # digital trained the ideal model well: the loss is on the device
    assert np.mean([d.ideal_test_accuracy for d in digital]) > np.mean([d.test_accuracy[-1] for d in digital])


def test_modes_share_device_init_and_order():
    # Noise-free, error-free: in situ measurement is exact, so all modes follow one path.
    kw = dict(epochs=2, batch_size=8, lr=0.02, seed=3)
    runs = [train("circle", mode=m, **kw) for m in ("digital", "insitu", "analog", "calibrated", "corrected", "pat")]
    for r in runs[1:]:
        np.testing.assert_allclose(r.params, runs[0].params, atol=1e-9)


# the fast set covers a measured gradient (insitu) and a twin (corrected); the rest are slow
@pytest.mark.parametrize("mode", ["insitu", "corrected", *(pytest.param(m, marks=pytest.mark.slow)
                                                     for m in ("calibrated", "pat", "spsa"))])
def test_ensemble_equals_one_by_one(mode):
    errors = ErrorModel(bs_error=0.05, loss_imbalance_db=0.1, tap_noise=0.01, io_amp_error=0.01, io_phase_error=0.01)
    kw = dict(errors=errors, mode=mode, epochs=2, batch_size=4, lr=0.02, boundary_grid=5, calibration_error=0.02,
              spsa_samples=2)
    together = train_ensemble("moons", seeds=[4, 9, 2], **kw)
    for r in together:
        alone = train("moons", seed=r.seed, **kw)
        np.testing.assert_allclose(r.params, alone.params, rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.test_accuracy, alone.test_accuracy, atol=1e-12)
        np.testing.assert_allclose(r.step_grad_errors, alone.step_grad_errors, atol=1e-12)
        np.testing.assert_allclose(r.boundary["grid_prob"], alone.boundary["grid_prob"], atol=1e-12)


def test_lr_reference_ports_scales_the_rate_by_sqrt_n0_over_n():
    # moons runs on 4 ports: N0 = 16 must train exactly as lr * sqrt(16 / 4) = 2 lr does
    # (and not as lr does), N0 = N as lr itself, and the SGD rate is scaled the same way.
    errors = ErrorModel(bs_error=0.05, tap_noise=0.01)
    kw = dict(errors=errors, mode="insitu", epochs=1, batch_size=8, seed=5)
    scaled = train("moons", lr=0.01, lr_reference_ports=16, **kw)
    doubled = train("moons", lr=0.02, **kw)
    plain = train("moons", lr=0.01, **kw)
    np.testing.assert_allclose(scaled.params, doubled.params, rtol=0, atol=1e-12)
    assert np.abs(scaled.params - plain.params).max() > 1e-3
    assert TrainConfig(lr=0.01, lr_reference_ports=4).rate(4) == 0.01
    # the analog update (written in voltage) steps at the scaled rate too
    analog = dict(errors=ErrorModel(bs_error=0.05, heater="thermal"), mode="analog", optimizer="sgd",
                  update="sample_hold", epochs=1, batch_size=8, seed=5)
    np.testing.assert_allclose(train("moons", lr=0.05, lr_reference_ports=16, **analog).params,
                               train("moons", lr=0.1, **analog).params, rtol=0, atol=1e-12)
    cfg = TrainConfig(optimizer="sgd", lr=0.5, sgd_lr=0.2, lr_reference_ports=16)
    assert cfg.rate(64) == pytest.approx(0.1) and cfg.rate(16) == pytest.approx(0.2)


def test_result_curves_and_boundary_shapes():
    r = train("moons", mode="analog", epochs=3, batch_size=50, lr=0.02, seed=0, boundary_grid=7,
              errors=ErrorModel(tap_noise=0.01))
    assert r.epoch.tolist() == [0, 1, 2, 3]
    assert r.test_accuracy.shape == r.grad_error_mean.shape == (4,)
    assert np.isnan(r.grad_error_mean[0]) and np.all(r.grad_error_mean[1:] > 0)
    assert r.step_grad_errors.shape == (3 * 8,)
    assert r.boundary["grid_prob"].shape == (49,)
    assert np.all((r.boundary["grid_prob"] >= 0) & (r.boundary["grid_prob"] <= 1))


BASELINE_KW = dict(epochs=10, batch_size=16, lr=0.02, record_gradient_error=False, eval_every=10)


def _final(results):
    return np.array([r.test_accuracy[-1] for r in results])


def test_calibrated_twin_matches_in_situ_and_beats_digital():
    errors = ErrorModel(bs_error=0.1)
    runs = {m: _final(train_ensemble("moons", range(6), mode=m, errors=errors, calibration_error=0.0, **BASELINE_KW))
            for m in ("digital", "insitu", "calibrated")}
    assert abs(np.median(runs["calibrated"]) - np.median(runs["insitu"])) <= 0.02
    assert runs["calibrated"].mean() > runs["digital"].mean() + 0.03


def test_calibrated_accuracy_falls_with_calibration_error():
    errors = ErrorModel(bs_error=0.1)
    medians = [np.median(_final(train_ensemble("moons", range(6), mode="calibrated", errors=errors,
                                               calibration_error=c, **BASELINE_KW))) for c in (0.0, 0.05, 0.1)]
    assert medians[0] > medians[1] > medians[2]


def test_corrected_beats_digital_and_without_calibration_is_digital():
    errors = ErrorModel(bs_error=0.1)
    digital = train_ensemble("moons", range(6), mode="digital", errors=errors, **BASELINE_KW)
    corrected = train_ensemble("moons", range(6), mode="corrected", errors=errors, calibration_error=0.0,
                               **BASELINE_KW)
    assert _final(corrected).mean() > _final(digital).mean() + 0.05
    # same training (the ideal model): only the programmed phases differ
    np.testing.assert_allclose([r.params for r in corrected], [r.params for r in digital], atol=1e-12)
    for mode in ("corrected", "calibrated"):
        none = train_ensemble("moons", range(6), mode=mode, errors=errors, calibration_error="none", **BASELINE_KW)
        np.testing.assert_allclose(_final(none), _final(digital), atol=1e-12)


def test_spsa_learns_and_records_its_gradient_error():
    results = train_ensemble("moons", range(3), mode="spsa", epochs=20, batch_size=16, lr=0.02, eval_every=10)
    steps = 20 * 25
    for r in results:
        assert r.step_grad_errors.shape == (steps,)
        assert np.all((r.step_grad_errors >= 0) & (r.step_grad_errors <= 2))
        assert 0.05 < np.median(r.step_grad_errors) < 1.5  # a noisy but useful direction
    assert np.median(_final(results)) >= 0.75


def test_every_mode_is_a_registry_entry_with_its_settings():
    assert set(MODES) == {"digital", "insitu", "analog", "calibrated", "corrected", "pat", "spsa"}
    fields = set(TrainConfig.__dataclass_fields__)
    assert all(set(m.uses) <= fields for m in MODES.values())
    config = TrainConfig(mode="pat", calibration_error="none")
    assert config.twin == "ideal" and config.twin_calibration is None
    with pytest.raises(AttributeError):
        config.lr = 1.0  # frozen


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(task="spiral"), "unknown task"),
        (dict(task="mnist64"), "mnist_path"),
        (dict(epochs=-1), "epochs"),
        (dict(batch_size=401), "larger than the training set"),
        (dict(mode="hybrid"), "training mode"),
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(lr=-0.1), "learning rate"),
        (dict(learning_rate=0.1), "unknown training setting 'learning_rate'"),
        (dict(calibration_error=-0.01), "calibration_error"),
        (dict(spsa_delta=0.0), "spsa_delta"),
        (dict(spsa_samples=0), "spsa_samples"),
        (dict(launch="sideways"), "launch"),
        (dict(lr_reference_ports=-4), "lr_reference_ports"),
    ],
)
def test_bad_inputs_name_the_problem(kwargs, message):
    args = dict(task="moons", mode="insitu", epochs=1, batch_size=8, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        train(**args)


def test_optimizers_minimise_a_quadratic():
    target = np.array([1.0, -2.0, 0.5])
    for opt in (SGD(0.1), SGD(0.05, momentum=0.9), Adam(0.05)):
        p = np.zeros(3)
        state = opt.init(p)
        for _ in range(500):
            p = opt.step(p, 2 * (p - target), state)
        np.testing.assert_allclose(p, target, atol=1e-3)
    assert isinstance(make_optimizer("adam", 0.01), Adam)
