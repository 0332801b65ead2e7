"""Trials: the product of a spec's axes and seeds, each with a stable key and seed.

Order. Seeds are outermost and the grid axes follow in the spec's order, the last axis
varying fastest: every grid point gets replicate 0 before any gets replicate 1, so a
partial sweep already covers the whole grid.

Key. ``sha256`` of the canonical JSON (sorted keys, no spaces, ASCII) of
``{"experiment": name, "params": {every declared parameter, and "seed"}, "version": v}``,
truncated to 16 hex digits; a parameter declared ``omit_at_default`` (added after stores
were written, its default reproducing them) is left out while it holds its default. It
depends on nothing but what the trial computes, so results never depend on order,
chunking, backend or machine, and a resumed or extended sweep finds its finished trials by
key.

Trial seed. The key's 64 bits with the top bit cleared: a non-negative int64 from which
every random stream of the trial starts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any, Iterator

from sweeps.registry import Experiment
from sweeps.spec import Spec

KEY_HEX_DIGITS = 16
_INT63_MASK = (1 << 63) - 1


@dataclass(frozen=True)
class Trial:
    """One trial: its key, derived seed, replicate number and full parameter set."""

    key: str
    trial_seed: int
    seed: int
    params: dict[str, Any]


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` that keys are hashed from."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def trial_key(experiment: str, version: str, params: dict[str, Any], seed: int) -> str:
    """The stable key of a trial (see the module docstring)."""
    text = canonical_json({"experiment": experiment, "params": {**params, "seed": seed},
                           "version": version})
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:KEY_HEX_DIGITS]


def trial_seed(key: str) -> int:
    """The non-negative int64 seed derived from a trial key."""
    return int(key, 16) & _INT63_MASK


def iter_trials(spec: Spec, experiment: Experiment) -> Iterator[Trial]:
    """Every trial of ``spec``, in enumeration order (seeds outermost)."""
    base = {**experiment.defaults(), **spec.fixed}
    axes = list(spec.grid)
    name, version = experiment.name, experiment.version
    for seed in spec.seeds:
        for point in itertools.product(*(spec.grid[a] for a in axes)):
            params = dict(base)
            params.update(zip(axes, point))
            key = trial_key(name, version, experiment.key_params(params), seed)
            yield Trial(key, trial_seed(key), seed, params)


def enumerate_trials(spec: Spec, experiment: Experiment) -> list[Trial]:
    """All trials of ``spec`` as a list, in enumeration order."""
    return list(iter_trials(spec, experiment))
