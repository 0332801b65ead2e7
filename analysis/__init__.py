"""Analysis of insitu result stores: tables, figures and reports from Parquet alone.

Modules, one concept each:

* :mod:`analysis.load`     read a store (unified schema, newest launch per trial, errors apart)
* :mod:`analysis.store_files` the store's files beside its rows: store.json, spec.json,
  launches.jsonl, the part listing
* :mod:`analysis.labels`   parameter labels with units, error axes, axes that vary
* :mod:`analysis.grouping` what a table or figure groups by and pools (nothing silently)
* :mod:`analysis.summary`  means and Student t intervals over seeds (geometric for gradient
  errors), drop against the error-free cell, paired mode gaps, export
* :mod:`analysis.differences` unpaired differences between two values of a grid axis (their
  trials run on other chips), with Welch intervals over seeds
* :mod:`analysis.tolerance` the error value where a mode loses a given drop, with a paired
  bootstrap interval over seeds
* :mod:`analysis.figures`  seaborn figures, each a function returning a matplotlib Figure
* :mod:`analysis.figure_parts` what the figures are built from: colours, style, panels, titles
* :mod:`analysis.array_figures` learning curves and decision boundaries (arrays a trial stores)
* :mod:`analysis.plan`     which figures a store supports, axes chosen from its spec
* :mod:`analysis.report`   one self-contained HTML page, the answer first
* :mod:`analysis.outputs`  which figures and reports were made from which state of a store
* :mod:`analysis.commands` the ``insitu summary | tolerance | figures | report`` entry points
* :mod:`analysis.command_io` what those commands accept (checks) and how they write
* :mod:`analysis.exceptions` :class:`AnalysisInputError`, the one-line bad-input error

The package imports neither ``photonics`` nor ``sweeps``: a store copied off a cluster can be
analysed anywhere. Importing this package imports nothing heavy; import the modules you use.
"""
