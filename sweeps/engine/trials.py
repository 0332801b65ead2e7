"""The trials of a spec: the product of its axes and seeds, each with its stable key and
seed (the rules are the store's: :mod:`insitu.sweeps.store.keys`)."""

from __future__ import annotations

from typing import Iterator

from insitu.sweeps.engine.registry import Experiment
from insitu.sweeps.engine.spec import Spec
from insitu.sweeps.store.keys import Trial, canonical_json, iter_trials as _iter_trials

__all__ = ["Trial", "canonical_json", "enumerate_trials", "iter_trials"]


def iter_trials(spec: Spec, experiment: Experiment) -> Iterator[Trial]:
    """Every trial of ``spec``, in enumeration order (seeds outermost)."""
    return _iter_trials(experiment.name, experiment.version, experiment.defaults(),
                        experiment.omit_at_default, spec.fixed, spec.grid, spec.seeds,
                        experiment.sharing, spec.precision)


def enumerate_trials(spec: Spec, experiment: Experiment) -> list[Trial]:
    """All trials of ``spec`` as a list, in enumeration order."""
    return list(iter_trials(spec, experiment))
