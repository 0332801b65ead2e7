"""The ``modes`` parameter of an experiment: a comma list of names, checked against the
modes the experiment has."""

from __future__ import annotations

from collections.abc import Iterable


def parse_modes(text: str, allowed: Iterable[str]) -> list[str]:
    """The modes of a comma list; ``ValueError`` naming the problem."""
    problem = modes_problem(text, allowed)
    if problem:
        raise ValueError(f"modes {text!r}: {problem}")
    return [m.strip() for m in text.split(",") if m.strip()]


def modes_problem(text: str, allowed: Iterable[str]) -> str | None:
    """Why a comma list of modes is not valid (``None``: it is)."""
    allowed = list(allowed)
    modes = [m.strip() for m in text.split(",") if m.strip()]
    if not modes:
        return f"no mode given (expected a comma list of {', '.join(allowed)})"
    unknown = [m for m in modes if m not in allowed]
    if unknown:
        return (f"unknown mode {_shown(unknown[0])} (expected a comma list of "
                f"{', '.join(allowed)})")
    if len(set(modes)) != len(modes):
        return f"mode {_shown(next(m for m in modes if modes.count(m) > 1))} is listed twice"
    return None


def mode_list_problems(values: dict, allowed: Iterable[str]) -> list[tuple[str, str]]:
    """``(parameter, reason)`` for every bad value of a spec's ``modes``."""
    allowed = list(allowed)
    return [("modes", f"{_shown(text)}: {why}") for text in values["modes"]
            if (why := modes_problem(text, allowed))]


def _shown(text: str, limit: int = 60) -> str:
    """A user's string as ``repr``, bounded (control characters escaped)."""
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 4] + "...'"
