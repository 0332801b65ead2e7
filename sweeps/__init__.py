"""Sweeps of photonic-network trials, in four rooms:

* :mod:`insitu.sweeps.engine`: specs, trials, the experiment registry, chunks, the chunk
  function and the backends that run it (serial, or a pool of Ray actors);
* :mod:`insitu.sweeps.experiments`: the built-in experiments (``classify``, ``gradient``),
  their parameters derived from the physics' declared settings;
* :mod:`insitu.sweeps.store`: the Parquet store, its own room: only pyarrow and the
  standard library; the engine writes through it and analysis reads through it;
* :mod:`insitu.sweeps.app`: the application: launches, their options and progress, the
  shipped specs, and the ``run`` / ``retry-failed`` / ``specs`` / ``params`` commands.
"""
