"""The built-in experiments, registered on import: ``classify``
(:mod:`~insitu.sweeps.experiments.classify`), ``gradient``
(:mod:`~insitu.sweeps.experiments.gradient`) and ``unitary``
(:mod:`~insitu.sweeps.experiments.unitary`). Their parameters derive from the physics'
declared settings (:mod:`~insitu.sweeps.experiments.declared`)."""

from insitu.sweeps.experiments import classify, gradient, unitary  # noqa: F401 (registers them)
