"""The one exception type of the analysis package.

Every problem caused by what a user passed in (a store with no results, an axis or column
that does not exist, a ``--where`` expression pandas cannot evaluate) is raised as
:class:`AnalysisInputError` with a single line that names the problem; it is an
:class:`insitu.errors.InputError`, so the ``insitu`` command prints that line and exits
with status 2, and nothing is written before the check that raises it. A path that is not
a store, or a part that cannot be read, raises the store's own
:class:`insitu.sweeps.store.StoreError`, another ``InputError``.
"""

from __future__ import annotations

from insitu.errors import InputError


class AnalysisInputError(InputError, ValueError):
    """Bad input to the analysis commands; ``str(exc)`` is one line meant for a terminal."""

    def __init__(self, problem: str):
        super().__init__(" ".join(str(problem).split()))
