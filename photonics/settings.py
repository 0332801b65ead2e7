"""Declared settings: one dataclass field per setting, with what a reader and a sweep need.

Every setting of the error model (:class:`insitu.photonics.errors.ErrorModel`), of a network
(:class:`insitu.photonics.network.NetworkConfig`) and of training
(:class:`insitu.photonics.training.TrainConfig`) is declared once, as a field made by
:func:`setting`. Its metadata says what the setting means and how it may be set:

* ``doc``: one line, with the unit;
* ``label`` and ``unit``: how a table or figure names it (``"splitting error σ"``, ``"rad"``);
* ``low`` / ``high`` (inclusive bounds of a number) or ``choices`` (of a string);
* ``none_as``: the number a sweep spec writes for a ``None`` default (``dac_bits = 0``);
* ``role``: ``"error"`` for a fabrication error or a noise source (an axis a study is about),
  ``"setting"`` for everything else;
* ``error_free``: for an error, which end of its range is the ideal chip: ``"low"`` (the
  smallest value, the usual case) or ``"high"`` (larger is better, 0 meaning "off", as
  for DAC bits);
* ``shares_chips``: whether runs that differ only in this setting can share their random
  streams, and so run on the same chip, with the same initial phases and data order. A
  setting shares when changing it only rescales random draws (every error magnitude: a
  static error is ``std * n`` with ``n`` drawn whatever ``std`` is) or changes how the same
  draws are used (a learning rate, the number of epochs, the launch scheme); a setting that
  changes what is drawn (the chip's structure, the task, the batch) does not. Errors share
  by default, other settings do not unless declared.

The sweep experiments derive their parameters from these fields, and the store records the
labels, units and roles from them, so none of it is spelled twice.
"""

from __future__ import annotations

from dataclasses import Field, field
from typing import Any

ROLES = ("error", "setting")
ERROR_FREE_ENDS = ("low", "high")


def setting(default: Any, doc: str, *, label: str, unit: str = "", low: float | None = None,
            high: float | None = None, choices: tuple | None = None, none_as: Any = None,
            role: str = "setting", error_free: str | None = None,
            shares_chips: bool | None = None) -> Field:
    """A dataclass field declaring one setting (module docstring); ``default`` is its one
    default. An ``error`` defaults to ``error_free = "low"`` and ``shares_chips = True``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if role == "error":
        error_free = error_free or "low"
        if error_free not in ERROR_FREE_ENDS:
            raise ValueError(f"error_free must be one of {ERROR_FREE_ENDS}, got {error_free!r}")
    elif error_free is not None:
        raise ValueError("only an error setting has an error-free end")
    metadata: dict[str, Any] = {"doc": doc, "label": label, "unit": unit, "role": role,
                                "shares_chips": role == "error" if shares_chips is None else bool(shares_chips)}
    if error_free is not None:
        metadata["error_free"] = error_free
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if low is not None:
        metadata["low"] = low
    if high is not None:
        metadata["high"] = high
    if none_as is not None:
        metadata["none_as"] = none_as
    return field(default=default, metadata=metadata)


def declared(f: Field) -> bool:
    """Whether a dataclass field was made by :func:`setting`."""
    return "doc" in f.metadata and "label" in f.metadata


def check_settings(obj: Any) -> None:
    """Validate and normalise the declared fields of a frozen dataclass instance in place.

    A number must be finite and within ``low .. high`` (ints stay ints, bools are never
    numbers; a float field takes an int and stores a float), a string one of ``choices``; a
    field whose default is ``None`` takes ``None``, and its ``none_as`` value means ``None``.
    ``ValueError`` names the field and the value.
    """
    from dataclasses import fields

    for f in fields(obj):
        if not declared(f):
            continue
        meta = f.metadata
        value = getattr(obj, f.name)
        if f.default is None and (value is None or ("none_as" in meta and _equal(value, meta["none_as"]))):
            object.__setattr__(obj, f.name, None)
            continue
        kind = type(meta["none_as"]) if f.default is None else type(f.default)
        object.__setattr__(obj, f.name, _checked(f"{f.name} ({meta['label']})", value, kind, meta))


def _equal(a: Any, b: Any) -> bool:
    return not isinstance(a, bool) and a == b


def _checked(name: str, value: Any, kind: type, meta) -> Any:
    import math
    import numbers

    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"{name} must be {'a number' if kind is float else 'an integer' if kind is int else kind.__name__}, "
                         f"got {value!r}")
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    elif kind is int:
        value = int(value)
    low, high = meta.get("low"), meta.get("high")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low:g}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value!r}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value
