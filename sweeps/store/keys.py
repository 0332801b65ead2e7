"""Trial keys, trial seeds and the trials of a stored spec (docs/store.md, "Rows").

Key. ``sha256`` of the canonical JSON (sorted keys, no spaces, ASCII) of
``{"experiment": name, "params": {every declared parameter, and "seed"}, "version": v}``,
truncated to 16 hex digits; a parameter listed in ``omit_at_default`` (added to the
experiment after stores of it were written, its default reproducing them) is left out while
it holds its default. It depends on nothing but what the trial computes, so results never
depend on order, chunking, backend or machine, and a resumed or extended sweep finds its
finished trials by key.

Stream key. The same hash of the parameters that do not share chips: a parameter declared
to share chips (an error magnitude, a learning rate; ``store.json``'s ``shares_chips``) is
left out, so trials that differ only in such parameters share their random streams and run
on the same chip, with the same initial phases and data order (common random numbers).
With no parameter sharing, the stream key is the key.

Trial seed. The stream key's 64 bits with the top bit cleared: a non-negative int64 from
which every random stream of the trial starts.

Order. Seeds are outermost and the grid axes follow in the spec's order, the last axis
varying fastest: every grid point gets replicate 0 before any gets replicate 1, so a
partial sweep already covers the whole grid.

The engine enumerates a spec's trials here, from the spec and the experiment's defaults;
a reader enumerates them from ``spec.json`` and ``store.json`` alone (:func:`stored_trials`),
so no reader needs the experiment's code.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

KEY_HEX_DIGITS = 16
_INT63_MASK = (1 << 63) - 1


@dataclass(frozen=True)
class Trial:
    """One trial: its key, derived seed, replicate number, full parameter set, and the
    stream key its seed derives from."""

    key: str
    trial_seed: int
    seed: int
    params: dict[str, Any]
    stream_key: str = ""


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` that keys are hashed from."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def trial_key(experiment: str, version: str, params: Mapping[str, Any], seed: int) -> str:
    """The stable key of a trial (see the module docstring); ``params`` as hashed (those
    omitted at their default already left out)."""
    text = canonical_json({"experiment": experiment, "params": {**params, "seed": seed},
                           "version": version})
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:KEY_HEX_DIGITS]


def trial_seed(key: str) -> int:
    """The non-negative int64 seed derived from a trial key."""
    return int(key, 16) & _INT63_MASK


def key_params(params: Mapping[str, Any], defaults: Mapping[str, Any],
               omit_at_default: Iterable[str]) -> dict[str, Any]:
    """The parameters a key is hashed from: ``params`` without those of ``omit_at_default``
    that hold their default."""
    omitted = set(omit_at_default)
    return {name: value for name, value in params.items()
            if not (name in omitted and name in defaults and value == defaults[name])}


def cell_key(point: Mapping[str, Any]) -> str:
    """The one text of a grid point (``{axis: value}``): the cells of a two-stage design."""
    return canonical_json(dict(point))


def seeds_per_cell(precision: Mapping | None, seeds: list[int]) -> dict[str, int] | int:
    """How many of the spec's seeds each cell holds: all of them (an int) without a
    ``precision`` design, the pilot's before the design's allocation is recorded, and the
    allocation (``{cell_key: n}``) once it is."""
    if not precision:
        return len(seeds)
    allocation = precision.get("allocation")
    if allocation is None:
        return int(precision["pilot_seeds"])
    return {cell_key(a["cell"]): int(a["seeds"]) for a in allocation}


def iter_trials(experiment: str, version: str, defaults: Mapping[str, Any],
                omit_at_default: Iterable[str], fixed: Mapping[str, Any],
                grid: Mapping[str, list], seeds: Iterable[int],
                sharing: Iterable[str] = (), precision: Mapping | None = None) -> Iterator[Trial]:
    """Every trial of a spec, in enumeration order (seeds outermost); ``sharing`` names
    the parameters left out of stream keys; ``precision`` (a two-stage design) keeps, per
    cell, only the seeds it holds (:func:`seeds_per_cell`)."""
    base = {**defaults, **fixed}
    axes = list(grid)
    omitted, shared = frozenset(omit_at_default), frozenset(sharing)
    seeds = list(seeds)
    held = seeds_per_cell(precision, seeds)
    for index, seed in enumerate(seeds):
        for point in itertools.product(*(grid[a] for a in axes)):
            if not isinstance(held, int):
                if index >= held.get(cell_key(dict(zip(axes, point))), 0):
                    continue
            elif index >= held:
                continue
            params = dict(base)
            params.update(zip(axes, point))
            hashed = key_params(params, defaults, omitted)
            key = trial_key(experiment, version, hashed, seed)
            stream = key if not shared else trial_key(
                experiment, version, {k: v for k, v in hashed.items() if k not in shared}, seed)
            yield Trial(key, trial_seed(stream), seed, params, stream)


def spec_seeds(spec: Mapping) -> list[int]:
    """A stored spec's seeds as a list (a bare count n means 0 .. n-1)."""
    seeds = spec.get("seeds")
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return list(range(seeds))
    return list(seeds or [])


def stored_trials(spec: Mapping, meta: Mapping) -> Iterator[Trial]:
    """The trials of a store, from ``spec.json`` (``spec``) and ``store.json`` (``meta``)
    alone: its experiment, version, defaults and ``omit_at_default`` list."""
    return iter_trials(str(spec.get("experiment") or meta.get("experiment")),
                       str(spec.get("experiment_version") or meta.get("experiment_version")),
                       meta.get("defaults") or {}, meta.get("omit_at_default") or (),
                       spec.get("fixed") or {}, spec.get("grid") or {}, spec_seeds(spec),
                       sharing_params(meta), spec.get("precision"))


def sharing_params(meta: Mapping) -> list[str]:
    """The parameters of a store that share chips (``store.json``); none in a store written
    before they were recorded."""
    return [name for name, text in (meta.get("parameters") or {}).items()
            if isinstance(text, Mapping) and text.get("shares_chips")]
