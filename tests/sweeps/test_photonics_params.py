"""Parameters of the physics experiments that select models: launch scheme, the paper's
loss and I/O models, feature normalisation, the per-optimiser learning rate."""

from __future__ import annotations

import numpy as np
import pytest

from sweeps.registry import get_experiment
from sweeps.experiments import classify_lr, error_model, run_gradient


def _params(name, **overrides):
    params = get_experiment(name).defaults()
    params.update(overrides)
    return params


def test_sgd_lr_applies_to_sgd_only():
    assert classify_lr(_params("classify", optimizer="sgd", lr=0.01, sgd_lr=0.5)) == 0.5
    assert classify_lr(_params("classify", optimizer="adam", lr=0.01, sgd_lr=0.5)) == 0.01
    assert classify_lr(_params("classify", optimizer="sgd", lr=0.01)) == 0.01


def test_error_model_carries_the_papers_models():
    model = error_model(_params("classify", loss_std_db=0.05, idle_loss_db=0.1, io_placement="read"))
    assert (model.loss_std_db, model.idle_loss_db, model.io_placement) == (0.05, 0.1, "read")


@pytest.mark.parametrize("name,value", [("launch", "batched"), ("io_placement", "inputs"), ("feature_norm", "l1")])
def test_bad_choices_are_named(name, value):
    _, problem = get_experiment("classify").by_name[name].check(value)
    assert problem and repr(value) in problem


def test_gradient_experiment_uses_the_launch_scheme():
    # noise-free and lossless: every scheme measures the exact gradient; with tap noise at
    # batch 64 on 4 ports the per-example scheme is far worse than the cotangent one
    base = dict(n_ports=4, batch_size=64, n_repeats=4, tap_noise=0.02, modes="three_pass")
    per_example = run_gradient(_params("gradient", launch="per_example", **base), 11, {})[0]
    cotangent = run_gradient(_params("gradient", launch="cotangent", **base), 11, {})[0]
    assert cotangent["grad_error_median"] < per_example["grad_error_median"] / 5
    exact = run_gradient(_params("gradient", launch="cotangent", n_ports=4, batch_size=8, n_repeats=2), 3, {})[0]
    assert np.max(exact["grad_errors"]) < 1e-12


def test_every_error_model_field_is_a_parameter_of_both_experiments():
    from dataclasses import fields

    from photonics import ErrorModel
    from sweeps.registry import get_experiment
    from sweeps.experiments import error_model

    names = {f.name for f in fields(ErrorModel)}
    for experiment in ("classify", "gradient"):
        params = get_experiment(experiment).defaults()
        assert names <= set(params), experiment
        assert error_model({**params, "dac_bits": 0}).dac_bits is None
        assert error_model({**params, "dac_bits": 6, "bs_error": 0.03}) == ErrorModel(dac_bits=6, bs_error=0.03)


def test_error_params_are_derived_from_the_error_model_fields():
    """ERROR_PARAMS comes from ErrorModel's field metadata: one parameter per field, in field
    order, in the same place of both experiments; its type is the field's, its default the
    model's, and the model accepts every value the sweep allows and refuses what it does not."""
    from dataclasses import fields

    from photonics import ErrorModel
    from sweeps.experiments import ERROR_PARAMS

    names = [f.name for f in fields(ErrorModel)]
    assert [p.name for p in ERROR_PARAMS] == names
    for experiment in ("classify", "gradient"):
        declared = [p.name for p in get_experiment(experiment).params]
        start = declared.index(names[0])
        assert declared[start:start + len(names)] == names, experiment
    defaults = get_experiment("gradient").defaults()
    assert error_model(defaults) == ErrorModel()
    for f, param in zip(fields(ErrorModel), ERROR_PARAMS):
        assert param.type == f.type.split(" | ")[0], f.name
        assert param.doc, f.name
        if param.choices is not None:
            for choice in param.choices:
                error_model({**defaults, f.name: choice})
            with pytest.raises(ValueError):
                error_model({**defaults, f.name: "no-such-choice"})
            continue
        top = error_model({**defaults, f.name: param.high})  # the sweep's largest value
        assert getattr(top, f.name) == param.high, f.name
        assert param.check(param.low - 1)[1] is not None, f.name
        with pytest.raises(ValueError):
            error_model({**defaults, f.name: param.low - 1})
