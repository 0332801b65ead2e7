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

Experiments register themselves on import. The registry imports the built-in experiments
(:mod:`insitu.sweeps.experiments`) lazily, on first lookup, so that a Ray worker process
finds them too, and before them the modules named in the environment variable
``INSITU_EXPERIMENT_MODULES`` (comma-separated): experiments, or training modes, of one's
own, registered by a module of one's own. A worker is also told the module of the experiment it runs
(:func:`get_experiment`), and imports it.

An experiment also describes itself for its store (:meth:`Experiment.description`): each
parameter's label, unit and role, its modes (training modes or protocols, in order) and
its metrics, with the headline metric. The store records that description in
``store.json``, so that analysis needs none of this code.
"""

from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from insitu.sweeps.store.schema import FIXED_COLUMNS

PARAM_TYPES = ("float", "int", "str", "bool")
ROLES = ("error", "setting")

# Columns every row carries (docs/store.md); no parameter or metric may take these names.
RESERVED_COLUMNS = frozenset(name for name, _ in FIXED_COLUMNS)

# The package whose import registers the built-in experiments, and the environment
# variable naming modules of one's own that register more.
_BUILTIN_MODULE = "insitu.sweeps.experiments"
MODULES_ENV = "INSITU_EXPERIMENT_MODULES"

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

    ``label`` and ``unit`` name it in tables and figures; ``role`` is ``"error"`` for a
    fabrication error or noise source (an axis a study is about, with the end of its range
    that is the ideal chip, ``error_free``: ``"low"`` or ``"high"``), else ``"setting"``.

    ``shares_chips``: trials that differ only in this parameter share their random streams
    (the trial's stream key leaves it out), so they run on the same chip with the same
    initial phases and data order, and comparisons along it are paired
    (:mod:`insitu.photonics.settings` states the rule).
    """

    name: str
    type: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    doc: str = ""
    omit_at_default: bool = False
    label: str = ""
    unit: str = ""
    role: str = "setting"
    error_free: str | None = None
    shares_chips: bool = False

    def __post_init__(self):
        if self.type not in PARAM_TYPES:
            raise ValueError(f"parameter {self.name!r}: type must be one of {PARAM_TYPES}")
        if self.role not in ROLES:
            raise ValueError(f"parameter {self.name!r}: role must be one of {ROLES}")
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
            return None, f"expected {kind}, got {_type_name(value)} {_shown(value)}"
        if kind == "float":
            value = float(value)
            if not math.isfinite(value):
                return None, f"value {value!r} is not finite"
        if self.low is not None and value < self.low:
            return None, f"value {_shown(value)} is below the minimum {self.low!r}"
        if self.high is not None and value > self.high:
            return None, f"value {_shown(value)} is above the maximum {self.high!r}"
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            return None, f"value {_shown(value)} is not one of {allowed}"
        return value, None

    def describe(self) -> dict[str, Any]:
        """What a store records of the parameter: label, unit, role, error-free end, doc."""
        text = {"label": self.label or self.name, "unit": self.unit, "role": self.role,
                "shares_chips": self.shares_chips, "doc": self.doc}
        if self.error_free is not None:
            text["error_free"] = self.error_free
        return text


@dataclass(frozen=True)
class ModeInfo:
    """One mode of an experiment's rows (the ``mode`` column): a training mode, or a
    measurement protocol; ``protocol`` names the protocol a training mode measures its
    gradients with (None: it measures none)."""

    name: str
    kind: str  # "training mode" or "protocol"
    label: str = ""
    protocol: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "label": self.label or self.name,
                "protocol": self.protocol}


@dataclass(frozen=True)
class MetricInfo:
    """One metric column of an experiment's rows: its label and unit, and its ``scale``
    ("linear", or "log" for quantities that span decades, such as ``1 - cos``)."""

    name: str
    label: str
    unit: str = ""
    scale: str = "linear"
    descriptive: bool = False  # describes the trial (its chip's ports), not a measurement

    def describe(self) -> dict[str, Any]:
        text = {"label": self.label, "unit": self.unit, "scale": self.scale}
        if self.descriptive:
            text["descriptive"] = True
        return text


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its parameters, version and trial function, and what it
    tells its store: its modes, its metrics and its headline metric."""

    name: str
    version: str
    params: tuple[Param, ...]
    run_trial: RunTrial
    summary: str = ""
    run_group: RunGroup | None = None
    max_group: int = 64
    validate: Validate | None = None
    modes: tuple[ModeInfo, ...] = ()
    metrics: tuple[MetricInfo, ...] = ()
    headline_metric: str | None = None
    module: str = ""  # the module that registers it (a worker imports it to find it)
    by_name: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not self.module:
            object.__setattr__(self, "module", getattr(self.run_trial, "__module__", "") or "")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name!r}: duplicate parameter names")
        object.__setattr__(self, "by_name", {p.name: p for p in self.params})

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default, in declaration order."""
        return {p.name: p.default for p in self.params}

    @property
    def omit_at_default(self) -> list[str]:
        """The parameters left out of trial keys while they hold their default."""
        return [p.name for p in self.params if p.omit_at_default]

    @property
    def sharing(self) -> list[str]:
        """The parameters that share chips: left out of trials' stream keys."""
        return [p.name for p in self.params if p.shares_chips]

    def description(self) -> dict[str, Any]:
        """What ``store.json`` records of this experiment (docs/store.md): its version, the
        declared parameters (kind, default, label, unit, role), the modes in order, the
        metrics and the headline metric."""
        return {
            "experiment": self.name,
            "experiment_version": self.version,
            "params": {p.name: p.type for p in self.params},
            "defaults": self.defaults(),
            "omit_at_default": self.omit_at_default,
            "parameters": {p.name: p.describe() for p in self.params},
            "modes": [m.describe() for m in self.modes],
            "metrics": {m.name: m.describe() for m in self.metrics},
            "headline_metric": self.headline_metric,
        }

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


def register(experiment: Experiment) -> Experiment:
    """Declare an experiment so that specs can name it; returns it.

    Registering a name twice is an error unless it is the same declaration again (a module
    imported under two names, say).

    ``run_group`` (optional) runs several trials that differ only in their seed at once (a
    device ensemble) and must return exactly the rows ``run_trial`` would return for each;
    the chunk function then groups such trials transparently, up to ``max_group`` at a time.

    ``validate`` (optional, see ``Validate``) judges combinations of values that are each
    allowed alone (a mode list, a parameter no chosen mode uses); the spec check runs it
    with every value each parameter takes, so a bad spec is refused before anything runs.
    """
    name = experiment.name
    if not name or not isinstance(name, str):
        raise ValueError("experiment name must be a non-empty string")
    if not isinstance(experiment.version, str) or not experiment.version:
        raise ValueError(f"experiment {name!r}: version must be a non-empty string")
    existing = _REGISTRY.get(name)
    if existing is not None and (existing.version, existing.params) != (experiment.version, experiment.params):
        raise ValueError(f"experiment {name!r} is already registered")
    _REGISTRY[name] = experiment
    return experiment


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        # One's own modules first: a module that registers a training mode (and its
        # settings) is imported before the built-in experiments derive their parameters.
        for module in os.environ.get(MODULES_ENV, "").split(","):
            if module.strip():
                importlib.import_module(module.strip())
        importlib.import_module(_BUILTIN_MODULE)


def get_experiment(name: str, module: str | None = None) -> Experiment:
    """The registered experiment called ``name``; ``KeyError`` if there is none.

    ``module``: the module that registers it, imported if the name is not registered yet
    (a worker process finding an experiment of a test or a user).
    """
    _load_builtins()
    if name not in _REGISTRY and module:
        importlib.import_module(module)
    return _REGISTRY[name]


def experiment_names() -> list[str]:
    """Names of every registered experiment, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def _shown(value: Any, limit: int = 80) -> str:
    """A user's value in an error line: its ``repr`` (control characters escaped), cut."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'" + text[-1:]


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)
