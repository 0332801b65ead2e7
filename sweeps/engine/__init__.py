"""The sweep engine: specs (:mod:`~insitu.sweeps.engine.spec`), trials
(:mod:`~insitu.sweeps.engine.trials`), the experiment registry
(:mod:`~insitu.sweeps.engine.registry`), chunk sizing (:mod:`~insitu.sweeps.engine.chunker`),
the chunk function (:mod:`~insitu.sweeps.engine.runner`) and the backends that run it
(:mod:`~insitu.sweeps.engine.backends`, :mod:`~insitu.sweeps.engine.ray_backend`)."""
