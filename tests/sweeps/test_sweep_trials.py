"""Trial enumeration order, key stability and derived seeds."""

from __future__ import annotations

import json
from pathlib import Path

from insitu.sweeps.engine.registry import get_experiment
from insitu.sweeps.engine.spec import load_spec, parse_spec
from insitu.sweeps.engine.trials import enumerate_trials
from insitu.sweeps.store.keys import canonical_json, trial_key, trial_seed

SELFTEST = get_experiment("selftest")
SPECS = Path(__file__).resolve().parents[2] / "sweeps" / "specs"


def spec(**overrides):
    data = {"name": "t", "experiment": "selftest", "seeds": 2,
            "grid": {"x": [0.0, 1.0, 2.0], "dist": ["normal", "uniform"]}}
    return parse_spec({**data, **overrides})


def test_order_is_seeds_outermost_then_axes_last_fastest():
    trials = enumerate_trials(spec(), SELFTEST)
    order = [(t.seed, t.params["x"], t.params["dist"]) for t in trials]
    assert order == [(s, x, d) for s in (0, 1) for x in (0.0, 1.0, 2.0)
                     for d in ("normal", "uniform")]


def test_every_trial_has_all_parameters_and_a_unique_key():
    trials = enumerate_trials(spec(fixed={"curve_len": 5}), SELFTEST)
    assert all(list(t.params) == [p.name for p in SELFTEST.params] for t in trials)
    assert all(t.params["curve_len"] == 5 and t.params["work_ms"] == 0.0 for t in trials)
    assert len({t.key for t in trials}) == len(trials) == 12


def test_golden_key():
    # A regression guard: changing how keys are computed orphans every stored result.
    params = {**SELFTEST.defaults(), "x": 0.5}
    assert trial_key("selftest", "1", params, 3) == "8b37a60dad90f0d6"
    assert trial_seed("8b37a60dad90f0d6") == 0x0B37A60DAD90F0D6


def test_key_is_the_canonical_json_hash_and_ignores_order_and_spelling():
    params = {**SELFTEST.defaults(), "x": 0.5}
    reordered = dict(reversed(list(params.items())))
    assert trial_key("selftest", "1", params, 3) == trial_key("selftest", "1", reordered, 3)
    text = canonical_json({"experiment": "selftest", "params": {**params, "seed": 3},
                           "version": "1"})
    assert json.loads(text)["params"]["seed"] == 3 and " " not in text
    # Fixing a parameter at its default, or writing a float as an int, changes nothing.
    plain = {t.key for t in enumerate_trials(spec(), SELFTEST)}
    assert {t.key for t in enumerate_trials(spec(fixed={"noise": 1}), SELFTEST)} == plain
    assert {t.key for t in enumerate_trials(
        spec(grid={"x": [0, 1, 2], "dist": ["normal", "uniform"]}), SELFTEST)} == plain


def test_key_depends_on_version_experiment_and_seed():
    params = SELFTEST.defaults()
    keys = {trial_key("selftest", "1", params, 0), trial_key("selftest", "2", params, 0),
            trial_key("other", "1", params, 0), trial_key("selftest", "1", params, 1)}
    assert len(keys) == 4


def test_trial_seeds_are_non_negative_int64():
    for t in enumerate_trials(spec(seeds=50), SELFTEST):
        assert 0 <= t.trial_seed < 2**63 and t.trial_seed == trial_seed(t.key)


def test_a_parameter_added_at_its_default_keeps_the_keys_of_older_stores():
    """A key hashes every parameter but those added later (noise_draws, the control layer's
    settings, ...) at their default: the documented formula, computed here by hand for the
    first trial of a shipped spec."""
    import hashlib
    import json

    from insitu.sweeps.experiments.classify import KEYED

    classify = get_experiment("classify")
    later = {p.name for p in classify.params if p.name not in KEYED}
    assert {"noise_draws", "heater", "crosstalk_compensation", "update"} <= later
    assert all(classify.by_name[name].omit_at_default for name in later)
    trials = enumerate_trials(load_spec(SPECS / "quick.toml"), classify)
    first = trials[0]
    hashed = {k: v for k, v in first.params.items()
              if k not in later or v != classify.by_name[k].default}
    text = json.dumps({"experiment": "classify", "params": {**hashed, "seed": first.seed},
                       "version": classify.version}, sort_keys=True, separators=(",", ":"))
    assert (first.key, len(trials)) == (hashlib.sha256(text.encode()).hexdigest()[:16], 128)


def test_a_parameter_omitted_at_its_default_is_hashed_when_set_otherwise():
    classify = get_experiment("classify")
    params = classify.defaults()
    assert "noise_draws" not in classify.key_params(params)
    frozen = {**params, "noise_draws": "frozen"}
    assert classify.key_params(frozen)["noise_draws"] == "frozen"
    assert trial_key("classify", classify.version, classify.key_params(frozen), 0) != \
        trial_key("classify", classify.version, classify.key_params(params), 0)
    # every parameter of the first keyed set stays in the key at its default
    from insitu.sweeps.experiments.classify import KEYED

    assert set(classify.key_params(params)) == set(KEYED)
