"""The sweep application: launches (:mod:`~insitu.sweeps.app.launch`), how they run
(:mod:`~insitu.sweeps.app.options`), their dry run, progress and interrupts, the shipped
specs and parameter listings (:mod:`~insitu.sweeps.app.catalog`), and its commands
(:mod:`~insitu.sweeps.app.commands`)."""
