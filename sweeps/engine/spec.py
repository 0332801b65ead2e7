"""Sweep specs: a TOML file naming an experiment, fixed parameters, grid axes and seeds.

::

    name = "moons-splitting"          # store directory name under results/
    experiment = "classify"
    seeds = 20                        # a count (0..19) or a list of ints, 0 <= seed < 2**63

    [fixed]                           # parameters held constant
    task = "moons"

    [grid]                            # axes; the sweep is their product, times the seeds
    bs_error = [0.0, 0.02, 0.05, 0.1]

    [ray]                             # optional execution settings (never enter results)
    workers = 4
    chunk_seconds = 2.0

    [precision]                       # optional: seeds sized to a precision (two stages)
    half_width = 0.01                 # the 95 % interval half-width wanted per cell
    pilot_seeds = 8                   # stage 1: this many seeds in every cell
    metric = "test_accuracy"          # default: the experiment's headline metric
    contrast = "insitu-digital"       # optional: size this paired gap instead of each mode

With ``[precision]`` the seeds are the most any cell may get; the sweep runs in two fixed
stages (Stein): the pilot seeds in every cell, then, per cell, as many more as its pilot
spread asks for (:mod:`insitu.analysis.precision` gives the rule and why it is fixed).
The allocation is recorded in the spec once stage 1 is done.
Everything is validated against the experiment's declared parameters before anything runs,
and every problem is reported as one line naming the key and the reason. Parameters not set
take the experiment's default. ``insitu run SPEC --set KEY=VALUE`` changes a spec's TOML
before this validation (:mod:`insitu.sweeps.engine.overrides`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from insitu.errors import InputError, did_you_mean
from insitu.sweeps.engine.overrides import apply_overrides, parse_overrides
from insitu.sweeps.engine.registry import Experiment, Param, experiment_names, get_experiment
from insitu.sweeps.store.metadata import spec_toml


class SpecError(InputError):
    """A sweep spec that cannot be run: malformed TOML, unknown keys, bad values."""


def _key_text(key: str, limit: int = 80) -> str:
    """A key of the user's spec in an error line: as written when short and printable."""
    key = str(key)
    return key if len(key) <= limit and key.isprintable() else shown(key, limit)


def shown(value: Any, limit: int = 80) -> str:
    """A user's value in an error line: its ``repr`` (control characters escaped), cut to
    ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'" + text[-1:]


TOP_LEVEL_KEYS = ("name", "experiment", "seeds", "fixed", "grid", "ray", "precision")
PRECISION_KEYS = ("half_width", "pilot_seeds", "metric", "contrast", "allocation")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

# Execution settings. They change how a sweep runs, never what it computes, so they are
# free to differ between launches of one store. Empty / zero means "decide at launch".
RAY_SETTINGS = (
    Param("workers", "int", 0, low=0, doc="actors (one CPU each); 0: every CPU of the cluster"),
    Param("address", "str", "", doc="Ray cluster to attach to; empty: an embedded local Ray"),
    Param("object_store_mb", "int", 80, low=50, doc="object store of an embedded local Ray"),
    Param("chunk_seconds", "float", 2.0, low=0.001, high=3600.0, doc="target work per chunk"),
    Param("chunks_per_worker", "int", 2, low=1, high=16, doc="chunks queued on each actor"),
    Param("ship_code", "bool", True,
          doc="when attaching, ship sweeps/ and photonics/ to the cluster's workers"),
    Param("ensembles", "bool", True,
          doc="run the seeds of a grid point as one device ensemble where the experiment can"),
    Param("max_trials", "int", 1_000_000, low=1,
          doc="refuse a spec of more trials (the driver holds every trial, about 1 KB each)"),
    Param("trial_timeout", "float", 0.0, low=0.0, high=7 * 24 * 3600.0,
          doc="seconds a trial (or a seed ensemble) may run on a Ray worker before it is stopped "
              "and stored as an error row; 0: no limit"),
)
SEED_LIMIT = 2**63  # seeds are int64 columns: 0 <= seed < 2**63
RAY_BY_NAME = {p.name: p for p in RAY_SETTINGS}


@dataclass(frozen=True)
class Spec:
    """A validated spec. ``fixed`` and ``grid`` hold normalised values (floats as float)."""

    name: str
    experiment: str
    experiment_version: str
    fixed: dict[str, Any]
    grid: dict[str, list]
    seeds: list[int]
    ray: dict[str, Any] = field(default_factory=dict)
    precision: dict[str, Any] | None = None  # the two-stage design, if the spec asks for one

    def ray_setting(self, name: str) -> Any:
        """A ``[ray]`` setting, or its default when the spec does not set it."""
        return self.ray.get(name, RAY_BY_NAME[name].default)

    def to_json(self) -> dict:
        """The canonical JSON form saved as ``spec.json`` in a store."""
        return {
            "name": self.name,
            "experiment": self.experiment,
            "experiment_version": self.experiment_version,
            "fixed": dict(sorted(self.fixed.items())),
            "grid": {axis: list(values) for axis, values in self.grid.items()},
            "seeds": list(self.seeds),
            "ray": dict(sorted(self.ray.items())),
            **({"precision": self.precision} if self.precision is not None else {}),
        }

    def to_toml(self) -> str:
        """The spec as canonical TOML (``spec.toml`` in a store, for humans)."""
        return spec_toml(self.to_json())

    @property
    def trial_count(self) -> int:
        count = len(self.seeds)
        for values in self.grid.values():
            count *= len(values)
        return count


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> Spec:
    """Read and validate a spec file; ``SpecError`` lists every problem found.

    ``overrides``: ``--set KEY=VALUE`` texts (:mod:`insitu.sweeps.engine.overrides`),
    applied to the file's TOML before it is validated, so they are checked as the file is."""
    changes = parse_overrides(overrides)
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such spec file") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, not a spec file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read spec: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: malformed TOML: {exc}") from None
    if not changes:
        return parse_spec(data, source=str(path))
    experiment = data.get("experiment")
    params = get_experiment(experiment).by_name if isinstance(experiment, str) \
        and experiment in experiment_names() else None
    return parse_spec(apply_overrides(data, changes, params), source=f"{path} with --set")


def parse_spec(data: dict, source: str = "spec") -> Spec:
    """Validate parsed TOML (or a stored ``spec.json``) and return the normalised spec."""
    problems: list[str] = []

    def problem(key: str, reason: str) -> None:
        problems.append(f"{source}: {_key_text(key)}: {reason}")

    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problem(key, f"unknown key{did_you_mean(key, TOP_LEVEL_KEYS)} "
                         f"(allowed: {', '.join(TOP_LEVEL_KEYS)})")

    name = data.get("name")
    if name is None:
        problem("name", "missing")
    elif not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        problem("name", f"expected a name of letters, digits, '.', '_' or '-', got {shown(name)}")

    experiment: Experiment | None = None
    exp_name = data.get("experiment")
    if exp_name is None:
        problem("experiment", "missing")
    elif not isinstance(exp_name, str):
        problem("experiment", f"expected a string, got {shown(exp_name)}")
    else:
        try:
            experiment = get_experiment(exp_name)
        except KeyError:
            problem("experiment", f"unknown experiment {shown(exp_name)}"
                                  f"{did_you_mean(exp_name, experiment_names())} "
                                  f"(known: {', '.join(experiment_names())})")

    fixed = _parse_table(data, "fixed", problem)
    grid_raw = _parse_table(data, "grid", problem)
    ray_raw = _parse_table(data, "ray", problem)
    max_trials, reason = RAY_BY_NAME["max_trials"].check(
        ray_raw.get("max_trials", RAY_BY_NAME["max_trials"].default))
    if reason:  # reported with the other [ray] settings below
        max_trials = RAY_BY_NAME["max_trials"].default
    seeds = _parse_seeds(data.get("seeds", 1), problem, max_trials)

    fixed_values: dict[str, Any] = {}
    grid: dict[str, list] = {}
    if experiment is not None:
        fixed_values = _check_settings(fixed, "fixed", experiment.by_name,
                                       f"unknown parameter of experiment {experiment.name!r}", problem)
        for axis, values in grid_raw.items():
            param = experiment.by_name.get(axis)
            if param is None:
                problem(f"grid.{axis}", f"unknown parameter of experiment {experiment.name!r}"
                                        f"{did_you_mean(axis, experiment.by_name)}")
                continue
            if axis in fixed:
                problem(f"grid.{axis}", "also set in [fixed]")
                continue
            axis_values = _parse_axis(param, values, lambda reason: problem(f"grid.{axis}", reason))
            if axis_values is not None:
                grid[axis] = axis_values

        if not problems:
            for key, reason in experiment.combination_problems(fixed_values, grid):
                problem(key, reason)

    ray_settings = _check_settings(ray_raw, "ray", RAY_BY_NAME,
                                   f"unknown setting (allowed: {', '.join(RAY_BY_NAME)})", problem)
    if seeds is not None and len(grid) == len(grid_raw):
        count = len(seeds)  # counted, never enumerated: a huge sweep is refused at once
        for values in grid.values():
            count *= len(values)
        if count > max_trials:
            problem("trials", f"{len(seeds)} seeds x {' x '.join(str(len(v)) for v in grid.values()) or '1'} "
                              f"grid points = {count} trials, more than the limit of "
                              f"{max_trials} (set [ray] max_trials to run more)")

    precision = None
    if "precision" in data and experiment is not None and seeds is not None:
        precision = _parse_precision(data["precision"], experiment, seeds, grid, fixed_values, problem)

    if problems:
        raise SpecError(problems)
    assert experiment is not None and seeds is not None
    return Spec(name, experiment.name, experiment.version, fixed_values, grid, seeds, ray_settings,
                precision)


def _parse_precision(table: Any, experiment: Experiment, seeds: list[int], grid: dict,
                     fixed: dict, problem) -> dict | None:
    """The ``[precision]`` table, normalised; each problem reported."""
    if not isinstance(table, dict):
        problem("precision", f"expected a table [precision], got {shown(table)}")
        return None
    for key in table:
        if key not in PRECISION_KEYS:
            problem(f"precision.{key}", f"unknown key{did_you_mean(key, PRECISION_KEYS)} "
                                        f"(allowed: {', '.join(PRECISION_KEYS[:-1])})")
    out: dict[str, Any] = {}
    h = table.get("half_width")
    if isinstance(h, bool) or not isinstance(h, (int, float)) or not h > 0 or h == float("inf"):
        problem("precision.half_width", f"expected a positive number, got {shown(h)}")
    else:
        out["half_width"] = float(h)
    n0 = table.get("pilot_seeds")
    if isinstance(n0, bool) or not isinstance(n0, int) or not 2 <= n0 <= len(seeds):
        problem("precision.pilot_seeds", f"expected an integer from 2 to the {len(seeds)} seeds "
                                         f"(the most a cell may get), got {shown(n0)}")
    else:
        out["pilot_seeds"] = n0
    metrics = [m.name for m in experiment.metrics if not m.descriptive] or None
    metric = table.get("metric", experiment.headline_metric)
    if not isinstance(metric, str) or (metrics is not None and metric not in metrics):
        problem("precision.metric", f"expected one of the experiment's metrics "
                                    f"({', '.join(metrics or [])}), got {shown(metric)}")
    else:
        out["metric"] = metric
    contrast = table.get("contrast")
    if contrast is not None:
        modes = [m for text in grid.get("modes", [fixed.get("modes", experiment.by_name["modes"].default
                                                            if "modes" in experiment.by_name else "")])
                 for m in str(text).split(",") if m.strip()]
        parts = [p.strip() for p in str(contrast).split("-")] if isinstance(contrast, str) else []
        if len(parts) != 2 or any(p not in modes for p in parts) or parts[0] == parts[1]:
            problem("precision.contrast", f"expected A-B, two of the modes run ({', '.join(modes)}), "
                                          f"got {shown(contrast)}")
        else:
            out["contrast"] = f"{parts[0]}-{parts[1]}"
    allocation = table.get("allocation")
    if allocation is not None:  # recorded by the run after stage 1 (spec.json)
        if not isinstance(allocation, list) or not all(
                isinstance(a, dict) and isinstance(a.get("cell"), dict) and isinstance(a.get("seeds"), int)
                for a in allocation):
            problem("precision.allocation", "expected a list of {cell, seeds} (written by insitu run)")
        else:
            out["allocation"] = allocation
    return out


def spec_from_json(data: dict, source: str) -> Spec:
    """The spec saved in a store, revalidated against the experiment registered now."""
    spec = parse_spec({k: v for k, v in data.items() if k != "experiment_version"}, source)
    stored_version = data.get("experiment_version")
    if stored_version != spec.experiment_version:
        raise SpecError(
            f"{source}: experiment_version: store holds version {stored_version!r} of "
            f"{spec.experiment!r}, this installation runs version {spec.experiment_version!r}")
    return spec


def change_problems(old: Spec, new: Spec) -> list[str]:
    """Why ``new`` may not extend a store launched with ``old`` (empty: it may).

    Allowed: adding values to existing axes, adding seeds (and any ``[ray]`` change), and
    promoting a parameter from ``[fixed]`` (or its default) to a ``[grid]`` axis whose values
    include the old one: every stored trial keeps its key (keys hash every parameter, fixed
    or not), only the new ones run. In short: ``new`` may extend ``old`` when every trial of
    ``old`` is a trial of ``new``. Everything else would change what existing keys mean or
    orphan stored trials. ``change_problems(new, old) == []`` is the converse: ``new`` is
    an older, smaller spec whose trials are all among the store's.
    """
    problems = []
    if new.name != old.name:
        problems.append(f"name: changed from {old.name!r} to {new.name!r}")
    if new.experiment != old.experiment:
        problems.append(f"experiment: changed from {old.experiment!r} to {new.experiment!r}")
        return problems
    if new.experiment_version != old.experiment_version:
        problems.append(f"experiment version: changed from {old.experiment_version!r} "
                        f"to {new.experiment_version!r}")
    experiment = get_experiment(new.experiment)
    old_fixed = {**experiment.defaults(), **old.fixed}
    new_fixed = {**experiment.defaults(), **new.fixed}
    for key in experiment.by_name:
        if key in old.grid or key in new.grid:
            continue
        if old_fixed[key] != new_fixed[key]:
            problems.append(f"fixed.{key}: changed from {old_fixed[key]!r} to {new_fixed[key]!r}")
    for axis in old.grid.keys() - new.grid.keys():
        problems.append(f"grid.{axis}: axis removed")
    for axis in new.grid.keys() - old.grid.keys():
        if old_fixed[axis] not in new.grid[axis]:
            problems.append(f"grid.{axis}: axis added without the old value "
                            f"{old_fixed[axis]!r} among its values")
    for axis in old.grid.keys() & new.grid.keys():
        kept = set(new.grid[axis])
        removed = [v for v in old.grid[axis] if v not in kept]
        if removed:
            problems.append(f"grid.{axis}: values removed: {', '.join(map(repr, removed))}")
    design = lambda spec: {k: v for k, v in (spec.precision or {}).items() if k != "allocation"}  # noqa: E731
    if design(old) != design(new):
        problems.append(f"precision: changed from {design(old) or 'none'} to {design(new) or 'none'}")
    new_seeds = set(new.seeds)
    removed_seeds = [s for s in old.seeds if s not in new_seeds]
    if removed_seeds:
        problems.append(f"seeds: removed: {', '.join(map(str, removed_seeds))}")
    return problems


def _check_settings(table: dict, section: str, declared: dict[str, Param], unknown: str,
                    problem) -> dict[str, Any]:
    """Normalised values of ``[section]`` keys; each unknown key or bad value is a problem."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        param = declared.get(key)
        if param is None:
            problem(f"{section}.{key}", unknown + did_you_mean(key, declared))
            continue
        normalised, reason = param.check(value)
        if reason:
            problem(f"{section}.{key}", reason)
        else:
            values[key] = normalised
    return values


def _parse_table(data: dict, key: str, problem) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        problem(key, f"expected a table [{key}], got {shown(value)}")
        return {}
    return value


def _parse_seeds(value: Any, problem, max_trials: int) -> list[int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            problem("seeds", f"a seed count must be at least 1, got {value}")
            return None
        if value > max_trials:
            problem("seeds", f"{value} seeds are more than the limit of {max_trials} trials "
                             f"(set [ray] max_trials to run more)")
            return None
        return list(range(value))
    if isinstance(value, list):
        if not value:
            problem("seeds", "empty list")
            return None
        bad = [s for s in value
               if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < SEED_LIMIT]
        if bad:
            problem("seeds", f"expected integers 0 <= seed < 2**63, got {shown(bad[0])}")
            return None
        if len(set(value)) != len(value):
            problem("seeds", "duplicate seeds")
            return None
        return list(value)
    problem("seeds", f"expected a count or a list of integers, got {shown(value)}")
    return None


def _parse_axis(param: Param, values: Any, problem) -> list | None:
    if not isinstance(values, list):
        problem(f"expected a list of values, got {shown(values)}")
        return None
    if not values:
        problem("empty axis")
        return None
    normalised, seen = [], set()
    for value in values:
        checked, reason = param.check(value)
        if reason:
            problem(reason)
            return None
        if checked in seen:
            problem(f"duplicate value {shown(checked)}")
            return None
        seen.add(checked)
        normalised.append(checked)
    return normalised
