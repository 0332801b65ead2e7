"""The built-in experiments, registered on import: ``classify``
(:mod:`~insitu.sweeps.experiments.classify`) and ``gradient``
(:mod:`~insitu.sweeps.experiments.gradient`). Their parameters derive from the physics'
declared settings (:mod:`~insitu.sweeps.experiments.declared`)."""

from insitu.sweeps.experiments import classify, gradient  # noqa: F401 (registers them)
