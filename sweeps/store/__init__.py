"""The result store, a room of its own (docs/store.md): one directory of Parquet parts per
sweep, with the spec and a self-describing ``store.json`` beside them.

It imports only pyarrow, the standard library and :mod:`insitu.errors`. The sweep engine
writes through it (:class:`Store`, :class:`PartWriter`); analysis and the maintenance
commands read through it (:func:`read_rows`), so every fact about the format (paths,
columns, keys, metadata, the newest-launch and spec-membership rules) lives here once:

* :mod:`~insitu.sweeps.store.paths`: the files and directories of a store;
* :mod:`~insitu.sweeps.store.schema`: the fixed columns, value types and their unification;
* :mod:`~insitu.sweeps.store.keys`: trial keys and seeds, the trials of a stored spec;
* :mod:`~insitu.sweeps.store.metadata`: ``store.json``, ``spec.json``, ``spec.toml``,
  ``launches.jsonl``;
* :mod:`~insitu.sweeps.store.reading`: the rows that count and belong (:func:`read_rows`);
* :mod:`~insitu.sweeps.store.store`, :mod:`~insitu.sweeps.store.parts`,
  :mod:`~insitu.sweeps.store.manifest`, :mod:`~insitu.sweeps.store.lock`,
  :mod:`~insitu.sweeps.store.fsutil`: the writer (atomic parts, their index, the lock);
* :mod:`~insitu.sweeps.store.maintenance`: ``status``, ``verify``, ``compact``;
* :mod:`~insitu.sweeps.store.export`: ``export``, the resolved rows as CSV or Parquet;
* :mod:`~insitu.sweeps.store.outputs`: the record of figures, reports and exports made from a store;
* :mod:`~insitu.sweeps.store.commands`: those commands on the command line.
"""

from insitu.sweeps.store.errors import StoreError
from insitu.sweeps.store.keys import Trial, stored_trials, trial_key, trial_seed
from insitu.sweeps.store.paths import StorePaths
from insitu.sweeps.store.reading import Rows, read_rows
from insitu.sweeps.store.store import Scan, Store, is_store, new_launch_id

__all__ = ["Rows", "Scan", "Store", "StoreError", "StorePaths", "Trial", "is_store",
           "new_launch_id", "read_rows", "stored_trials", "trial_key", "trial_seed"]
