"""Errors that the ``insitu`` CLI reports as one line each, with exit status 2.

Everything a user can get wrong (a spec, a path, a store, an address) raises an
``InputError``: the CLI prints each of its lines as ``insitu: error: <line>`` and exits 2,
having written nothing. Anything else is a bug or an environment failure and is left to
propagate with its traceback.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad user input; carries one or more one-line problem descriptions."""

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class SpecError(InputError):
    """A sweep spec that cannot be run: malformed TOML, unknown keys, bad values."""


class StoreError(InputError):
    """A path that is not a store, a store held by another launch, or a refused change."""


def did_you_mean(name: str, candidates) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``candidates`` to ``name``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
