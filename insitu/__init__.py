"""insitu: in situ backpropagation in photonic neural networks on imperfect chips, swept at scale.

One namespace with three rooms:

* :mod:`insitu.photonics`: the physics and the learning (pure numpy): meshes as fabricated,
  the measured gradients of the paper's protocols, networks and training modes;
* :mod:`insitu.sweeps`: sweep specs, the execution engine (serial or Ray), the experiments,
  the Parquet store (its own room, :mod:`insitu.sweeps.store`) and the application;
* :mod:`insitu.analysis`: tables, figures and reports read from a store alone.

``python -m insitu`` and the ``insitu`` command are :func:`insitu.cli.main`. Importing this
package imports nothing heavy.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("insitu")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
