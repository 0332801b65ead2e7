"""Sweep parameters from declared settings (:mod:`insitu.photonics.settings`).

A physics setting is declared once, as a dataclass field with its doc, label, unit, range
and role; an experiment's parameter of the same name is derived from that field here, so
its default, range and description cannot drift from the physics'. A field whose default
is ``None`` is written in a spec as its ``none_as`` value (``dac_bits = 0``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import Field, fields
from typing import Any

from insitu.photonics.settings import declared
from insitu.sweeps.engine.registry import Param

_KINDS = {float: "float", int: "int", str: "str", bool: "bool"}


def param_of(f: Field, *, doc: str | None = None, omit_at_default: bool = False) -> Param:
    """The sweep parameter of one declared field (``doc`` replaces its doc)."""
    meta = f.metadata
    default = meta["none_as"] if f.default is None else f.default
    return Param(f.name, _KINDS[type(default)], default, low=meta.get("low"), high=meta.get("high"),
                 choices=meta.get("choices"), doc=doc or meta["doc"], omit_at_default=omit_at_default,
                 label=meta["label"], unit=meta.get("unit", ""), role=meta.get("role", "setting"),
                 error_free=meta.get("error_free"), shares_chips=meta.get("shares_chips", False))


def params_of(cls, exclude: Iterable[str] = ()) -> tuple[Param, ...]:
    """The parameters of every declared field of dataclass ``cls``, in field order."""
    skip = set(exclude)
    return tuple(param_of(f) for f in fields(cls) if declared(f) and f.name not in skip)


def settings_of(cls, params: dict, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The keyword arguments of ``cls`` from a trial's parameters: every declared field,
    by name, its ``none_as`` value read as ``None``."""
    skip = set(exclude)
    values = {}
    for f in fields(cls):
        if not declared(f) or f.name in skip or f.name not in params:
            continue
        value = params[f.name]
        none_as = f.metadata.get("none_as")
        values[f.name] = None if none_as is not None and value == none_as else value
    return values


def keyed_since_first(params: Iterable[Param], first: Iterable[str]) -> tuple[Param, ...]:
    """``params`` with every parameter not in ``first`` (the parameters the experiment's
    keys have always hashed) declared ``omit_at_default``: a setting added later is left
    out of trial keys while it holds its default, so stores written before it keep their
    keys and extend with it."""
    first = set(first)
    out = []
    for p in params:
        if p.name not in first and not p.omit_at_default:
            p = Param(**{**{f.name: getattr(p, f.name) for f in fields(Param)}, "omit_at_default": True})
        out.append(p)
    return tuple(out)
