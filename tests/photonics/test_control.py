"""The chip's control layer: heater curves and their inverse, the drive range, crosstalk in
heater power, crosstalk compensation, and the all-analog update."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.photonics import ErrorModel
from insitu.photonics.analog_update import AnalogUpdateSettings, analog_step, update_gains
from insitu.photonics.errors import program_phases
from insitu.photonics.heaters import (calibrate_control, compensated_set_points, control_draws, drive_voltages,
                                      heater_coefficients, nominal_coefficients, phase_of_voltage, reach,
                                      voltage_of_phase)
from insitu.photonics.layout import make_layout
from insitu.photonics.network import build_network, sample_devices
from insitu.photonics.training import TrainConfig, train

TWO_PI = 2 * np.pi


@pytest.mark.parametrize("heater", ["thermal", "cubic"])
def test_a_heater_curve_and_its_inverse_round_trip(heater):
    rng = np.random.default_rng(1)
    curves = heater_coefficients(heater, 0.2, rng.standard_normal((50, 3)))
    voltage = rng.uniform(0, 9, size=50)
    phase = phase_of_voltage(curves, voltage)
    np.testing.assert_allclose(voltage_of_phase(curves, phase), voltage, rtol=0, atol=1e-12)
    assert np.all(np.diff(phase_of_voltage(nominal_coefficients(heater), np.linspace(0, 9, 91))) > 0)


def test_the_thermal_heater_is_alpha_v_squared_over_r():
    # nominal alpha / R = pi / 25 rad / V^2: 25 mW (5 V on 1 kOhm) for pi, 50 mW for 2 pi
    c = nominal_coefficients("thermal")
    assert phase_of_voltage(c, 5.0) == pytest.approx(np.pi)
    assert phase_of_voltage(c, np.sqrt(50.0)) == pytest.approx(TWO_PI)


def test_set_points_beyond_the_reach_wrap_and_voltages_beyond_v_max_clip():
    far = reach("thermal", 7.5)  # 2.25 pi at 7.5 V
    assert TWO_PI < far < 2.3 * np.pi
    inside, beyond, negative = 6.5, far + 0.1, -0.5
    v = drive_voltages("thermal", 7.5, None, np.array([inside, beyond, negative]))
    c = nominal_coefficients("thermal")
    np.testing.assert_allclose(phase_of_voltage(c, v), [inside, beyond - TWO_PI, negative + TWO_PI], atol=1e-12)
    # a driver range short of 2 pi: a phase it cannot reach is driven at v_max
    short = drive_voltages("thermal", 6.0, None, np.array([1.0, 6.0]))
    assert short[1] == 6.0 and short[0] < 6.0


def test_the_dac_rounds_the_voltage_with_a_heater_model():
    v = drive_voltages("thermal", 8.0, 4, np.linspace(0.1, 6.0, 40))
    np.testing.assert_allclose(v / (8.0 / 16), np.round(v / (8.0 / 16)), atol=1e-12)


def test_thermal_heaters_without_spread_equal_the_phase_model_crosstalk_included():
    lay = make_layout("rectangular", 8)
    rng = np.random.default_rng(2)
    theta, phi = rng.uniform(0, TWO_PI, (2, lay.n_mzis))
    phase_model = ErrorModel(crosstalk=0.08, phase_error=0.05)
    thermal = ErrorModel(crosstalk=0.08, phase_error=0.05, heater="thermal", v_max=20.0)
    a = program_phases(phase_model.sample(lay, np.random.default_rng(3)), theta, phi)
    b = program_phases(thermal.sample(lay, np.random.default_rng(3)), theta, phi)
    np.testing.assert_allclose(a[0], b[0], atol=1e-12)
    np.testing.assert_allclose(a[1], b[1], atol=1e-12)


def test_crosstalk_is_linear_in_heater_power():
    lay = make_layout("rectangular", 4)
    dev = ErrorModel(heater="thermal", crosstalk=0.1, v_max=20.0).sample(lay, np.random.default_rng(0))
    i, j = lay.neighbours()[0]
    c = nominal_coefficients("thermal")

    def shift_of_j(volts_i):
        theta = np.zeros(lay.n_mzis)
        theta[i] = phase_of_voltage(c, volts_i)  # the set point that drives heater i at volts_i
        return program_phases(dev, theta, np.zeros(lay.n_mzis))[0][j]

    assert shift_of_j(4.0) == pytest.approx(4 * shift_of_j(2.0), rel=1e-12)  # twice the voltage, 4x the heat


def _targets(net, rng):
    return rng.uniform(0, TWO_PI, (1, net.n_params))


def _heater_phases(net, set_points, devices):
    out = []
    for layer in range(net.n_layers):
        theta, phi = net.layer_phases(set_points, layer)
        t, p, _ = program_phases(devices[layer], theta, phi)
        out.append(np.concatenate([t - devices[layer].theta_offset, p - devices[layer].phi_offset], axis=-1))
    return np.concatenate(out, axis=-1)


def _control(net, devices, sigma, seed=5):
    rng = np.random.default_rng(seed)
    return [calibrate_control(d.theta_heater, d.phi_heater, d.model.crosstalk, sigma,
                              rng.standard_normal(control_draws(lay.n_mzis, len(lay.neighbours()))),
                              len(lay.neighbours()))
            for d, lay in zip(devices, net.layouts)]


def _wrapped_residual(a, b):
    return np.abs(np.angle(np.exp(1j * (a - b))))


@pytest.mark.parametrize("topology", ["rectangular", "triangular"])
@pytest.mark.parametrize("heater", ["thermal", "cubic"])
def test_perfect_calibration_and_compensation_program_the_targets(topology, heater):
    net = build_network(8, 2, 2, topology)
    model = ErrorModel(crosstalk=0.1, phase_error=0.1, heater=heater, heater_spread=0.1, v_max=12.0)
    devices = sample_devices(net, model, np.random.default_rng(4))
    targets = _targets(net, np.random.default_rng(6))
    naive = _heater_phases(net, targets, devices)
    assert _wrapped_residual(naive, targets).max() > 0.1  # crosstalk (and spread) move the phases
    written = compensated_set_points(net, targets, devices, _control(net, devices, 0.0))
    assert _wrapped_residual(_heater_phases(net, written, devices), targets).max() < 1e-9


def test_the_phase_model_compensates_within_its_range_of_set_points():
    # set points live in [0, 2 pi) there: a shifter whose solve needs more is clipped
    net = build_network(8, 2, 2, "rectangular")
    devices = sample_devices(net, ErrorModel(crosstalk=0.1), np.random.default_rng(4))
    targets = _targets(net, np.random.default_rng(6))
    written = compensated_set_points(net, targets, devices, _control(net, devices, 0.0))
    assert np.all((written >= 0) & (written < TWO_PI))
    residual = _wrapped_residual(_heater_phases(net, written, devices), targets)
    assert np.mean(residual < 1e-9) > 0.9 and np.mean(residual) < 0.01


def test_the_residual_of_compensation_grows_with_calibration_error():
    net = build_network(16, 1, 2, "rectangular")
    model = ErrorModel(crosstalk=0.1, heater="thermal", heater_spread=0.05, v_max=12.0)
    devices = sample_devices(net, model, np.random.default_rng(7))
    targets = _targets(net, np.random.default_rng(8))
    residuals = [np.mean(_wrapped_residual(
        _heater_phases(net, compensated_set_points(net, targets, devices, _control(net, devices, s)), devices),
        targets)) for s in (0.001, 0.01, 0.05)]
    assert residuals[0] < residuals[1] < residuals[2]
    assert residuals[1] / residuals[0] == pytest.approx(10, rel=0.3)  # first order in the error


def test_no_solution_in_range_clips_the_heat_and_counts_the_heaters():
    from insitu.photonics.heaters import compensate

    pairs = np.array([[0, 1], [1, 2]])
    targets = np.array([[6.2, 6.2, 6.2]])  # every heater near 2 pi, each heating the others
    heat, clipped = compensate(targets, pairs, 0.3, lambda t: t, heat_max=TWO_PI - 1e-9)
    assert clipped[0] == 0 and np.all(heat >= 0)
    heat, clipped = compensate(targets, pairs, 0.3, lambda t: t, heat_max=4.0)  # a range short of them
    assert clipped[0] > 0 and np.all((heat >= 0) & (heat <= 4.0))


def test_compensation_uses_the_two_pi_freedom_for_non_negative_power():
    from insitu.photonics.heaters import compensate

    pairs = np.array([[0, 1], [1, 2]])
    targets = np.array([[0.05, 5.0, 0.05]])  # small targets beside a hot neighbour
    heat, clipped = compensate(targets, pairs, 0.1, lambda t: t, heat_max=100.0)
    assert clipped[0] == 0 and np.all(heat >= 0)
    realised = heat.copy()
    realised[:, 1] += 0.1 * (heat[:, 0] + heat[:, 2])
    realised[:, [0, 2]] += 0.1 * heat[:, [1]]
    np.testing.assert_allclose(np.mod(realised, TWO_PI), targets, atol=1e-12)
    assert heat[0, 0] > np.pi  # raised by 2 pi


def test_a_compensated_digital_chip_trains_as_a_chip_without_crosstalk():
    base = dict(bs_error=0.02, phase_error=0.05)
    kwargs = dict(mode="digital", epochs=2, calibration_error=0.0)
    clean = train("moons", 3, errors=ErrorModel(**base), **kwargs)
    naive = train("moons", 3, errors=ErrorModel(**base, crosstalk=0.1), **kwargs)
    fixed = train("moons", 3, errors=ErrorModel(**base, crosstalk=0.1), crosstalk_compensation="calibrated", **kwargs)
    np.testing.assert_allclose(fixed.test_accuracy, clean.test_accuracy, atol=0)
    assert not np.array_equal(naive.test_accuracy, clean.test_accuracy)


def test_sample_hold_on_the_phase_model_is_sgd_to_rounding():
    e = ErrorModel(bs_error=0.02, tap_noise=0.01)
    common = dict(mode="analog", optimizer="sgd", lr=0.2, epochs=2)
    sgd = train("moons", 1, errors=e, **common)
    held = train("moons", 1, errors=e, update="sample_hold", **common)
    np.testing.assert_allclose(held.params, sgd.params, rtol=0, atol=1e-12)


def test_the_comparator_is_sign_sgd_and_gains_are_per_shifter_rates():
    rng = np.random.default_rng(0)
    params, grad = rng.uniform(0, TWO_PI, 20), rng.standard_normal(20)
    comparator = AnalogUpdateSettings(update="comparator")
    ones = np.ones(20)
    np.testing.assert_array_equal(analog_step(params, grad, ones, 0.05, ErrorModel(), comparator),
                                  params - 0.05 * np.sign(grad))
    gains = update_gains(0.3, rng.standard_normal(20))
    step = analog_step(params, grad, gains, 0.05, ErrorModel(), AnalogUpdateSettings(update="sample_hold")) - params
    np.testing.assert_allclose(step / (-0.05 * grad), gains, rtol=1e-12)


def test_a_thermal_heater_barely_moves_near_zero_volts():
    model = ErrorModel(heater="thermal")
    held = AnalogUpdateSettings(update="sample_hold")
    c = nominal_coefficients("thermal")
    near_zero, mid = phase_of_voltage(c, 0.1), phase_of_voltage(c, 5.0)  # 0.1 V, 5 V
    grad = np.array([-1.0, -1.0])
    step = analog_step(np.array([near_zero, mid]), grad, np.ones(2), 0.01, model, held) - [near_zero, mid]
    assert step[1] == pytest.approx(0.01, rel=1e-3)  # lr per unit gradient at mid-range
    assert step[0] < 0.03 * step[1]  # the slope 2 c V vanishes at 0 V


def test_hold_resolution_and_leak():
    model = ErrorModel(heater="thermal", v_max=8.0)
    params = phase_of_voltage(nominal_coefficients("thermal"), np.array([1.3, 4.1, 6.7]))
    zero = np.zeros(3)
    held = analog_step(params, zero, np.ones(3), 0.01, model, AnalogUpdateSettings(update="sample_hold", hold_bits=3))
    volts = voltage_of_phase(nominal_coefficients("thermal"), held)
    np.testing.assert_allclose(volts, np.round(volts), atol=1e-9)  # a grid of 8 V / 2**3 = 1 V
    leaked = analog_step(params, zero, np.ones(3), 0.01, model, AnalogUpdateSettings(update="sample_hold", hold_leak=0.1))
    np.testing.assert_allclose(voltage_of_phase(nominal_coefficients("thermal"), leaked), [1.17, 3.69, 6.03])


def test_adam_and_batches_are_refused_by_name_with_an_analog_update():
    with pytest.raises(ValueError, match=r"optimizer = 'adam' cannot run with the analog update.*sgd"):
        TrainConfig.of(mode="analog", update="sample_hold", optimizer="adam")
    with pytest.raises(ValueError, match=r"comparator.*batch_size = 1"):
        TrainConfig.of(mode="analog", update="comparator", optimizer="sgd", batch_size=8)
    TrainConfig.of(mode="insitu", update="sample_hold", optimizer="adam")  # not the analog mode: not read


@pytest.mark.parametrize("build, name", [
    (lambda: ErrorModel(heater="resistive"), "heater"),
    (lambda: ErrorModel(v_max=0.0), "v_max"),
    (lambda: ErrorModel(heater_spread=2.0), "heater_spread"),
    (lambda: TrainConfig.of(crosstalk_compensation="perfect"), "crosstalk_compensation"),
    (lambda: TrainConfig.of(update="adam"), "update"),
    (lambda: TrainConfig.of(update_gain_spread=-0.1), "update_gain_spread"),
    (lambda: TrainConfig.of(hold_bits=40), "hold_bits"),
    (lambda: TrainConfig.of(hold_leak=1.5), "hold_leak"),
])
def test_bad_values_of_every_new_setting_name_it_in_one_line(build, name):
    with pytest.raises(ValueError) as info:
        build()
    assert str(info.value).startswith(name) and "\n" not in str(info.value)


def test_the_sweep_refuses_an_analog_update_with_adam_or_batches():
    from insitu.sweeps.experiments.classify import validate

    values = {"task": ["moons"], "mnist_path": [""], "modes": ["digital,analog"], "update": ["sample_hold"],
              "optimizer": ["adam"], "batch_size": [16], "twin": ["calibrated"]}
    problems = dict(validate(values, frozenset({"update"})))
    assert "Adam needs per-shifter memory" in problems["optimizer"]
    values.update(update=["comparator"], optimizer=["sgd"])
    assert "batch_size" in dict(validate(values, frozenset({"update"})))


def test_heater_draws_leave_every_other_stream_alone():
    a = train("moons", 2, errors=ErrorModel(bs_error=0.05), mode="insitu", epochs=1)
    b = train("moons", 2, errors=ErrorModel(bs_error=0.05, heater="thermal", v_max=20.0), mode="insitu", epochs=1)
    # same chip, initial phases and order: the thermal model without spread is the phase model
    np.testing.assert_allclose(b.params, a.params, atol=1e-9)
