"""Command-line overrides of a spec: ``insitu run SPEC --set KEY=VALUE`` (repeatable).

Each ``--set`` changes the spec's TOML before it is validated, so an overridden spec is
checked exactly as a file would be (the same one-line errors) and the store records the
spec as run. Values are TOML values (``0.01``, ``8``, ``true``, ``"moons"``, ``[0, 0.01]``);
a bare word that is no TOML value is a string (``task=moons``), as in Hydra.

=============================  =========================================================
``fixed.P=VALUE``              ``[fixed] P = VALUE``: one value, never split at commas
                               (``fixed.modes=digital,insitu`` is one string); a ``[grid]``
                               axis ``P`` is dropped
``grid.P=V1,V2,...``           ``[grid] P = [V1, V2, ...]`` (also ``grid.P=[V1, V2]``; one
                               value gives a one-value axis); a ``[fixed]`` ``P`` is dropped
``P=V1,V2,...``                a parameter with several values (a comma list or a TOML
                               array) is a grid axis, as ``grid.P``
``P=VALUE``                    a parameter with one value is fixed, as ``fixed.P``
``seeds=N``                    a seed count, or a list: ``seeds=[0, 5, 9]`` or ``seeds=0,5,9``
``name=TEXT``                  the spec's name (and so the default store, results/TEXT)
``ray.S=VALUE``                a ``[ray]`` execution setting
``precision.K=VALUE``          a ``[precision]`` setting
=============================  =========================================================

Commas split a value only outside quotes and brackets: ``grid.modes='"a,b","a"'`` is an axis
of two strings. A bare ``P=a,b`` whose parameter takes comma-separated text itself (a mode
list) is refused as ambiguous, naming both spellings. The experiment cannot be changed
(its parameters are the spec's), and a key may be set once.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from insitu.errors import InputError

TABLES = ("fixed", "grid", "ray", "precision")
TOP_LEVEL = ("name", "seeds")


@dataclass(frozen=True)
class Override:
    """One ``--set``: ``section`` is a table of :data:`TABLES`, ``""`` for a top-level key
    (:data:`TOP_LEVEL`) or ``"param"`` for a bare parameter name (fixed or grid by its
    values)."""

    section: str
    key: str
    text: str
    arg: str

    @property
    def target(self) -> tuple[str, str]:
        """What it sets: a parameter (fixed, grid or bare alike), or a table's key."""
        return ("param", self.key) if self.section in ("fixed", "grid", "param") \
            else (self.section, self.key)


def parse_overrides(args: Sequence[str]) -> list[Override]:
    """The ``--set`` arguments, checked for form; ``InputError``: one line per problem."""
    out: list[Override] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for arg in args:
        key, sep, text = arg.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {arg!r}: expected KEY=VALUE (e.g. bs_error=0,0.01, "
                            f"fixed.epochs=5, seeds=32)")
            continue
        if not text.strip():
            problems.append(f"--set {arg!r}: no value after '='")
            continue
        if "\n" in text or "\r" in text:
            problems.append(f"--set {key}: a value is one line")
            continue
        section, dot, name = key.partition(".")
        if not dot:
            if key == "experiment":
                problems.append(f"--set {arg!r}: the experiment cannot be overridden (the spec's "
                                f"parameters are its parameters); write another spec")
                continue
            if key in TABLES:
                problems.append(f"--set {arg!r}: {key} is a table: write {key}.NAME=VALUE")
                continue
            override = Override("" if key in TOP_LEVEL else "param", key, text.strip(), arg)
        elif section not in TABLES:
            problems.append(f"--set {arg!r}: unknown section {section!r} (KEY is a parameter, "
                            f"{', '.join(TOP_LEVEL)}, or {', '.join(t + '.NAME' for t in TABLES)})")
            continue
        elif not name:
            problems.append(f"--set {arg!r}: expected {section}.NAME=VALUE")
            continue
        else:
            override = Override(section, name, text.strip(), arg)
        if override.target in seen:
            problems.append(f"--set {arg!r}: {override.key!r} is already set by "
                            f"--set {seen[override.target]!r}")
            continue
        seen[override.target] = arg
        out.append(override)
    if problems:
        raise InputError(problems)
    return out


def apply_overrides(data: Mapping, overrides: Sequence[Override], params: Mapping | None) -> dict:
    """A copy of a spec's parsed TOML with ``overrides`` applied. ``params``: the
    experiment's declared parameters by name (None when the spec names no known experiment:
    its validation then reports that). ``InputError`` for a value that is not a TOML value
    and for an ambiguous bare parameter; everything else is left to the spec's validation."""
    spec = copy.deepcopy(dict(data))
    problems: list[str] = []
    for o in overrides:
        try:
            if o.section == "":
                spec[o.key] = _values(o.text) if o.key == "seeds" else parse_value(o.text)
            elif o.section in ("ray", "precision"):
                _table(spec, o.section)[o.key] = parse_value(o.text)
            elif o.section == "fixed":
                _set_param(spec, o.key, parse_value(o.text), axis=False)
            elif o.section == "grid":
                values = _values(o.text)
                _set_param(spec, o.key, values if isinstance(values, list) else [values], axis=True)
            else:
                values = _values(o.text)
                if isinstance(values, list) and _takes_commas(params, o.key, o.text):
                    problems.append(
                        f"--set {o.arg!r}: ambiguous: {o.key!r} takes comma-separated text "
                        f"itself; write fixed.{o.key}={o.text} for one value, or an axis with "
                        f"each value quoted (grid.{o.key}='\"a,b\",\"a\"')")
                    continue
                _set_param(spec, o.key, values, axis=isinstance(values, list))
        except ValueError as exc:
            problems.append(f"--set {o.arg!r}: {exc}")
    if problems:
        raise InputError(problems)
    return spec


def parse_value(text: str) -> Any:
    """One TOML value; a bare word that is no TOML value is that string. ``ValueError``
    for text that is neither (an unclosed quote or bracket, a stray '=')."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError as exc:
        if any(c in text for c in "\"'[]{}=#") or not text.strip():
            raise ValueError(f"not a TOML value ({exc})") from None
        return text.strip()
    if set(parsed) != {"v"}:
        raise ValueError("not one TOML value")
    return parsed["v"]


def _values(text: str) -> Any:
    """A comma list (split outside quotes and brackets) as a list of values; one value as
    itself (a TOML array stays a list)."""
    items = split_commas(text)
    if len(items) == 1:
        return parse_value(items[0])
    if any(not item.strip() for item in items):
        raise ValueError("an empty value in the comma list")
    return [parse_value(item) for item in items]


def split_commas(text: str) -> list[str]:
    """``text`` split at the commas that are outside quotes and brackets."""
    items, current, depth, quote, escaped = [], [], 0, "", False
    for char in text:
        if quote:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    items.append("".join(current).strip())
    return items


def _takes_commas(params: Mapping | None, name: str, text: str) -> bool:
    """Whether parameter ``name`` accepts ``text`` whole, commas and all, as one value."""
    param = (params or {}).get(name)
    if param is None or param.type != "str":
        return False
    try:
        value = parse_value(text)
    except ValueError:
        return False
    return isinstance(value, str) and param.check(value)[1] is None


def _table(spec: dict, name: str) -> dict:
    table = spec.get(name)
    if table is None:
        table = spec[name] = {}
    if not isinstance(table, dict):
        raise ValueError(f"the spec's {name} is not a table [{name}]")
    return table


def _set_param(spec: dict, name: str, value: Any, axis: bool) -> None:
    """Set a parameter in ``[grid]`` (``axis``) or ``[fixed]``, dropping it from the other."""
    _table(spec, "grid" if axis else "fixed")[name] = value
    other = spec.get("fixed" if axis else "grid")
    if isinstance(other, dict):
        other.pop(name, None)
