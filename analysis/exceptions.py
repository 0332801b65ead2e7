"""The one exception type of the analysis package.

Every problem caused by what a user passed in (a path that is not a store, a store with no
results, an axis or column that does not exist) is raised as :class:`AnalysisInputError`
with a single line that names the problem. The ``insitu`` CLI prints that line and exits
with status 2; nothing is written before the check that raises it.
"""

from __future__ import annotations


class AnalysisInputError(ValueError):
    """Bad input to the analysis commands; ``str(exc)`` is one line meant for a terminal."""
