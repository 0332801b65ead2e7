"""Analysis of insitu result stores: tables, figures and reports from a store alone.

Seams, as seaborn keeps them: reading (:mod:`~insitu.analysis.load`, through the store's
own room), what things are called (:mod:`~insitu.analysis.vocabulary`, from the store's
description), statistics that take and return DataFrames and never draw
(:mod:`~insitu.analysis.grouping`, :mod:`~insitu.analysis.summary`,
:mod:`~insitu.analysis.differences`, :mod:`~insitu.analysis.tolerance`,
:mod:`~insitu.analysis.scaling`), figures (:mod:`~insitu.analysis.figures`, built from
:mod:`~insitu.analysis.figure_parts` and :mod:`~insitu.analysis.array_figures`), one plan
of what a store's outputs show (:mod:`~insitu.analysis.plan`), rendered as figures, a
report (:mod:`~insitu.analysis.report`) and tables, and the commands
(:mod:`~insitu.analysis.commands`, :mod:`~insitu.analysis.cli`).

The package imports nothing of :mod:`insitu.photonics` and, of :mod:`insitu.sweeps`, only
the store (:mod:`insitu.sweeps.store`): a store copied off a cluster can be analysed
anywhere. Importing this package imports nothing heavy; import the modules you use.
"""
