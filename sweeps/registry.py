"""The experiment registry: what a sweep can run, and which parameters it accepts.

An experiment declares its parameters (name, type, default, allowed range or choices), a
version string and a ``run_trial`` function::

    run_trial(params: dict, trial_seed: int, cache: dict) -> list[dict]

``params`` holds every declared parameter (defaults filled in); ``trial_seed`` is the
non-negative int64 derived from the trial key, from which every random stream of the trial
must start; ``cache`` is a per-process dict that lives across trials and chunks, for data
sets, encoded features or layouts. It returns one row dict per mode, each with a ``"mode"``
string and metrics (numbers, strings, bools, or lists of numbers for curves), and raises on
failure. The version enters every trial key: bump it whenever results would change, so a
resumed store never mixes old and new results under one key.

Experiments register themselves on import. The registry imports its built-in experiment
modules lazily, on first lookup, so that a Ray worker process finds them too.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from sweeps.schema import FIXED_COLUMNS

PARAM_TYPES = ("float", "int", "str", "bool")

# Columns every row carries (docs/store.md); no parameter or metric may take these names.
RESERVED_COLUMNS = frozenset(name for name, _ in FIXED_COLUMNS)

# Modules that register experiments when imported. A module that does not exist (yet) is
# skipped; any other import failure inside it propagates.
_BUILTIN_MODULES = ("sweeps.experiments_selftest", "sweeps.experiments")

# Registered for tests and benchmarks of the sweep machinery; left out of users' listings
# (still runnable by name).
INTERNAL_EXPERIMENTS = frozenset({"selftest"})

RunTrial = Callable[[dict, int, dict], "list[dict]"]
# validate(values, set_in_spec) -> [(parameter, reason), ...]: ``values`` maps every declared
# parameter to each value it takes in a spec ([fixed] value, [grid] values, or [default]);
# ``set_in_spec`` names the parameters the spec sets. Empty: the combination is valid.
Validate = Callable[[dict, frozenset], "list[tuple[str, str]]"]
# run_group(params, trial_seeds, cache) -> one list of rows per seed, in order
RunGroup = Callable[[dict, "list[int]", dict], "list[list[dict]]"]


@dataclass(frozen=True)
class Param:
    """One declared experiment parameter.

    ``low``/``high`` bound numeric parameters (inclusive); ``choices`` lists the allowed
    values of any type. Ints are accepted for float parameters (and stored as floats), never
    the other way round, and bools are never numbers.

    ``omit_at_default``: a parameter added to an experiment after stores of it were
    written, whose default computes exactly what the experiment computed before it
    existed. At its default it is left out of the trial key (:meth:`Experiment.key_params`),
    so those stores keep their keys and a spec that sets it only where it differs from the
    default extends them.
    """

    name: str
    type: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    doc: str = ""
    omit_at_default: bool = False

    def __post_init__(self):
        if self.type not in PARAM_TYPES:
            raise ValueError(f"parameter {self.name!r}: type must be one of {PARAM_TYPES}")
        if self.name in RESERVED_COLUMNS:
            raise ValueError(f"parameter {self.name!r}: name is reserved for a store column")
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        value, problem = self.check(self.default)
        if problem:
            raise ValueError(f"parameter {self.name!r}: default {problem}")
        object.__setattr__(self, "default", value)

    def check(self, value: Any) -> tuple[Any, str | None]:
        """Return ``(normalised value, None)``, or ``(None, reason)`` when not allowed."""
        kind = self.type
        if kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            return None, f"expected {kind}, got {_type_name(value)} {value!r}"
        if kind == "float":
            value = float(value)
            if not math.isfinite(value):
                return None, f"value {value!r} is not finite"
        if self.low is not None and value < self.low:
            return None, f"value {value!r} is below the minimum {self.low!r}"
        if self.high is not None and value > self.high:
            return None, f"value {value!r} is above the maximum {self.high!r}"
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            return None, f"value {value!r} is not one of {allowed}"
        return value, None


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its parameters, version and trial function."""

    name: str
    version: str
    params: tuple[Param, ...]
    run_trial: RunTrial
    description: str = ""
    run_group: RunGroup | None = None
    max_group: int = 64
    validate: Validate | None = None
    by_name: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name!r}: duplicate parameter names")
        object.__setattr__(self, "by_name", {p.name: p for p in self.params})

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default, in declaration order."""
        return {p.name: p.default for p in self.params}

    def key_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters a trial key is hashed from: all of ``params`` except those
        declared ``omit_at_default`` that hold their default."""
        return {name: value for name, value in params.items()
                if not ((p := self.by_name.get(name)) is not None and p.omit_at_default and value == p.default)}

    def combination_problems(self, fixed: dict[str, Any], grid: dict[str, list]) -> list[tuple[str, str]]:
        """``(spec key, reason)`` for every problem the ``validate`` hook finds in the values
        a spec gives its parameters (already checked one by one); the key is
        ``fixed.<name>``, ``grid.<name>`` or, for a parameter left at its default, ``<name>``."""
        if self.validate is None:
            return []
        values = {p.name: list(grid[p.name]) if p.name in grid else [fixed.get(p.name, p.default)]
                  for p in self.params}
        found = self.validate(values, frozenset(fixed) | frozenset(grid))
        section = lambda name: f"grid.{name}" if name in grid else f"fixed.{name}" if name in fixed else name  # noqa: E731
        return [(section(name), reason) for name, reason in found]


_REGISTRY: dict[str, Experiment] = {}
_builtins_loaded = False


def register(
    name: str,
    *,
    version: str,
    params: Sequence[Param],
    run_trial: RunTrial,
    description: str = "",
    run_group: RunGroup | None = None,
    max_group: int = 64,
    validate: Validate | None = None,
) -> Experiment:
    """Declare an experiment so that specs can name it; returns the registered object.

    Registering a name twice is an error unless it is the same declaration again (a module
    imported under two names, say).

    ``run_group`` (optional) runs several trials that differ only in their seed at once (a
    device ensemble) and must return exactly the rows ``run_trial`` would return for each;
    the chunk function then groups such trials transparently, up to ``max_group`` at a time.

    ``validate`` (optional, see ``Validate``) judges combinations of values that are each
    allowed alone (a mode list, a parameter no chosen mode uses); the spec check runs it
    with every value each parameter takes, so a bad spec is refused before anything runs.
    """
    if not name or not isinstance(name, str):
        raise ValueError("experiment name must be a non-empty string")
    if not isinstance(version, str) or not version:
        raise ValueError(f"experiment {name!r}: version must be a non-empty string")
    experiment = Experiment(name, version, tuple(params), run_trial, description, run_group, max_group, validate)
    existing = _REGISTRY.get(name)
    if existing is not None and (existing.version, existing.params) != (version, experiment.params):
        raise ValueError(f"experiment {name!r} is already registered")
    _REGISTRY[name] = experiment
    return experiment


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def get_experiment(name: str) -> Experiment:
    """The registered experiment called ``name``; ``KeyError`` if there is none."""
    _load_builtins()
    return _REGISTRY[name]


def experiment_names(internal: bool = True) -> list[str]:
    """Names of every registered experiment, sorted; ``internal=False`` leaves out the
    experiments that exist to test the sweep machinery (``INTERNAL_EXPERIMENTS``)."""
    _load_builtins()
    return sorted(n for n in _REGISTRY if internal or n not in INTERNAL_EXPERIMENTS)


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)
