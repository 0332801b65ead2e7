"""The files of a store beside its rows (docs/store.md): ``store.json``, ``spec.json``,
``spec.toml`` and ``launches.jsonl``, read as data and written atomically.

``store.json`` describes the store, so that it can be analysed anywhere without the code
that wrote it: the format, the experiment and its version, every declared parameter (its
kind and default, and its label, unit, role and error-free end), the modes in their order
with their kind (a training mode or a measurement protocol), the metrics (label, unit,
scale) and the headline metric. The engine writes it from the same declarations that
define the parameters (:meth:`insitu.sweeps.engine.registry.Experiment.description`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from insitu.sweeps.store.errors import StoreError
from insitu.sweeps.store.fsutil import write_text_atomic
from insitu.sweeps.store.paths import FORMAT, StorePaths

# Keys of store.json that describe the experiment (written at creation; a launch into a
# store written before they existed adds them).
DESCRIPTION_KEYS = ("parameters", "modes", "metrics", "headline_metric")


def read_json(path: Path) -> dict:
    """A JSON object file of a store; ``StoreError`` naming it when unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(value, dict):
        raise StoreError(f"{path}: not a JSON object")
    return value


def read_meta(paths: StorePaths) -> dict:
    """``store.json``, its format checked."""
    meta = read_json(paths.store_json)
    if meta.get("format") != FORMAT:
        raise StoreError(f"{paths.root}: unsupported store format {meta.get('format')!r} "
                         f"(this version reads format {FORMAT})")
    return meta


def read_spec(paths: StorePaths) -> dict:
    """``spec.json``: name, experiment, experiment_version, fixed, grid, seeds, ray."""
    if not paths.spec_json.is_file():
        raise StoreError(f"{paths.root}: store has no spec.json")
    return read_json(paths.spec_json)


def new_meta(description: Mapping[str, Any], created_by: Mapping[str, Any] | None = None) -> dict:
    """``store.json`` of a new store from an experiment's description (the keys
    ``experiment``, ``experiment_version``, ``params``, ``defaults``, ``omit_at_default``
    and :data:`DESCRIPTION_KEYS`); ``created_by``: the provenance of the launch that
    creates it (``launch_id``, ``versions``, ``git``, ``host``, ``platform``: docs/store.md,
    "Provenance"), kept as it was whatever later launches run."""
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    meta = {"format": FORMAT, **description, "created": created}
    if created_by is not None:
        meta["created_by"] = dict(created_by)
    return meta


def write_meta(paths: StorePaths, meta: Mapping) -> None:
    write_text_atomic(paths.store_json, json.dumps(meta, indent=2, allow_nan=False) + "\n")


def write_spec(paths: StorePaths, spec: Mapping) -> None:
    """``spec.json`` and its TOML rendering ``spec.toml``."""
    write_text_atomic(paths.spec_json, json.dumps(spec, indent=2) + "\n")
    write_text_atomic(paths.spec_toml, spec_toml(spec))


def read_launches(paths: StorePaths) -> list[dict]:
    """Every launch record, oldest first (unparseable lines are skipped).

    A launch's closing line (``ended``, ``outcome``, ``stored``, ``errors``) is merged into
    its record; a launch without one was killed, or is still running.
    """
    path = paths.launches
    if not path.exists():
        return []
    records: list[dict] = []
    by_id: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if "ended" in record and "started" not in record:
            opened = by_id.get(record.get("launch_id"))
            if opened is not None:
                opened.update(record)
            continue
        records.append(record)
        by_id[record.get("launch_id")] = record
    return records


def launch_order(paths: StorePaths) -> list[str]:
    """Launch ids in the order of ``launches.jsonl``."""
    return list(dict.fromkeys(str(r["launch_id"]) for r in read_launches(paths)
                              if r.get("launch_id") is not None))


# --------------------------------------------------------------------------- spec as TOML
def spec_toml(spec: Mapping) -> str:
    """A stored spec (``spec.json``'s form) as canonical TOML: ``spec.toml``, for people."""
    lines = [f"name = {_toml_value(spec.get('name', ''))}",
             f"experiment = {_toml_value(spec.get('experiment', ''))}"]
    if spec.get("experiment_version") is not None:
        lines.append(f"# experiment_version = {_toml_value(spec['experiment_version'])}")
    seeds = list(spec.get("seeds") or [])
    lines.append(f"seeds = {_toml_value(len(seeds) if seeds == list(range(len(seeds))) else seeds)}")
    for table in ("fixed", "grid", "ray"):
        values = spec.get(table) or {}
        if table != "grid":
            values = dict(sorted(values.items()))
        if values:
            lines += ["", f"[{table}]"]
            lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items())
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_string(text: str) -> str:
    """A TOML basic string. JSON escapes are TOML escapes, except that TOML has no
    surrogate pairs: a character outside the BMP is written as ``\\UXXXXXXXX``."""
    out = []
    for char in text:
        if ord(char) > 0xFFFF:
            out.append(f"\\U{ord(char):08X}")
        else:
            out.append(json.dumps(char)[1:-1])
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
