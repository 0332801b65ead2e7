"""The physics experiments' parameters are the physics' declared settings: one
declaration per setting (name, default, range, label, unit, role), and the parameters that
select models (launch scheme, the paper's loss and I/O models, feature normalisation, the
per-optimiser learning rate) reach the physics."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from insitu.photonics import ErrorModel
from insitu.photonics.modes import mode_settings
from insitu.photonics.settings import declared
from insitu.photonics.training import NetworkConfig, TrainConfig
from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.experiments import classify, gradient
from insitu.sweeps.experiments.declared import settings_of


def _params(name, **overrides):
    params = get_experiment(name).defaults()
    params.update(overrides)
    return params


def test_sgd_lr_applies_to_sgd_only():
    assert classify.config(_params("classify", optimizer="sgd", lr=0.01, sgd_lr=0.5)).effective_lr == 0.5
    assert classify.config(_params("classify", optimizer="adam", lr=0.01, sgd_lr=0.5)).effective_lr == 0.01
    assert classify.config(_params("classify", optimizer="sgd", lr=0.01)).effective_lr == 0.01


def test_error_model_carries_the_papers_models():
    params = _params("classify", loss_std_db=0.05, idle_loss_db=0.1, io_placement="read")
    model = ErrorModel(**settings_of(ErrorModel, params))
    assert (model.loss_std_db, model.idle_loss_db, model.io_placement) == (0.05, 0.1, "read")


@pytest.mark.parametrize("name,value", [("launch", "batched"), ("io_placement", "inputs"), ("feature_norm", "l1")])
def test_bad_choices_are_named(name, value):
    _, problem = get_experiment("classify").by_name[name].check(value)
    assert problem and repr(value) in problem


def test_gradient_experiment_uses_the_launch_scheme():
    # noise-free and lossless: every scheme measures the exact gradient; with tap noise at
    # batch 64 on 4 ports the per-example scheme is far worse than the cotangent one
    base = dict(n_ports=4, batch_size=64, n_repeats=4, tap_noise=0.02, modes="three_pass")
    per_example = gradient.run_trial(_params("gradient", launch="per_example", **base), 11, {})[0]
    cotangent = gradient.run_trial(_params("gradient", launch="cotangent", **base), 11, {})[0]
    assert cotangent["grad_error_median"] < per_example["grad_error_median"] / 5
    exact = gradient.run_trial(_params("gradient", launch="cotangent", n_ports=4, batch_size=8, n_repeats=2), 3, {})[0]
    assert np.max(exact["grad_errors"]) < 1e-12


@pytest.mark.parametrize("cls", [ErrorModel, TrainConfig, NetworkConfig])
def test_every_declared_setting_is_a_classify_parameter_with_its_one_default(cls):
    """One declaration per setting: the parameter has the field's name, default (a None
    default written as its none_as), range or choices, label, unit and role; no rename."""
    experiment = get_experiment("classify")
    config = cls()
    for f in fields(cls):
        if not declared(f) or f.name == "mode":
            continue
        param = experiment.by_name[f.name]
        meta = f.metadata
        default = getattr(config, f.name)
        assert param.default == (meta["none_as"] if default is None else default), f.name
        assert (param.low, param.high, param.choices) == (meta.get("low"), meta.get("high"),
                                                          meta.get("choices")), f.name
        assert (param.label, param.unit, param.role) == (meta["label"], meta.get("unit", ""),
                                                         meta.get("role", "setting")), f.name


def test_every_mode_setting_is_a_classify_parameter_used_by_its_mode():
    experiment = get_experiment("classify")
    for name, (f, modes) in mode_settings().items():
        assert experiment.by_name[name].default == (f.metadata["none_as"] if f.default is None else f.default)
        problems = experiment.validate({**{p: [v] for p, v in experiment.defaults().items()},
                                        "modes": ["digital"]}, frozenset({name}))
        assert problems == [(name, f"is set, but no chosen mode uses it (used by {', '.join(modes)})")]


def test_error_settings_cover_their_range_in_the_model_and_are_error_axes():
    defaults = _params("gradient")
    for f in fields(ErrorModel):
        param = get_experiment("gradient").by_name[f.name]
        if param.choices is not None:
            for choice in param.choices:
                ErrorModel(**settings_of(ErrorModel, {**defaults, f.name: choice}))
            with pytest.raises(ValueError, match=f.name):
                ErrorModel(**settings_of(ErrorModel, {**defaults, f.name: "no-such-choice"}))
            continue
        assert param.role == "error", f.name
        top = ErrorModel(**settings_of(ErrorModel, {**defaults, f.name: param.high}))
        assert getattr(top, f.name) == param.high, f.name
        assert param.check(param.low - 1)[1] is not None, f.name
        with pytest.raises(ValueError, match=f.name):
            ErrorModel(**settings_of(ErrorModel, {**defaults, f.name: param.low - 1}))
    assert ErrorModel(**settings_of(ErrorModel, {**defaults, "dac_bits": 0})).dac_bits is None
    assert get_experiment("classify").by_name["dac_bits"].error_free == "high"


def test_the_store_records_the_declared_description():
    description = get_experiment("classify").description()
    assert description["parameters"]["bs_error"] == {
        "label": "splitting error σ", "unit": "rad", "role": "error", "error_free": "low",
        "shares_chips": True, "doc": "coupler splitting error std (rad)"}
    assert description["parameters"]["tap_noise"]["unit"] == "√(launch power)"
    assert [m["name"] for m in description["modes"]][:1] == ["digital"]
    assert {m["name"]: m["protocol"] for m in description["modes"]}["insitu"] == "three_pass"
    assert description["headline_metric"] == "test_accuracy"
    assert description["metrics"]["grad_error_mean"]["scale"] == "log"
    assert get_experiment("gradient").description()["modes"][0]["kind"] == "protocol"
