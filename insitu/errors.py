"""The one error every room raises for bad input: :class:`InputError`.

Everything a user can get wrong (a spec, a path, a store, an address, an axis) raises an
``InputError`` carrying one or more one-line problem descriptions: the ``insitu`` command
prints each as ``insitu: error: <line>`` and exits with status 2, having written nothing.
Anything else is a bug or an environment failure and propagates with its traceback.
"""

from __future__ import annotations

import difflib


class InputError(Exception):
    """Bad user input; ``problems`` holds its one-line descriptions."""

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def did_you_mean(name: str, candidates) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``candidates`` to ``name``, else ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
