"""The files of a result store beside its rows (docs/store.md, format 1): ``store.json``
(format, experiment, declared parameters), ``spec.json``, ``launches.jsonl`` and the
listing of the Parquet parts. :mod:`analysis.load` reads the rows and re-exports these
readers; a path that is not a store, or a file that cannot be read, raises
:class:`analysis.exceptions.AnalysisInputError` with one line naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

from analysis.exceptions import AnalysisInputError

__all__ = ["launch_order", "load_params", "load_spec", "load_store_meta", "part_files", "parts_of",
           "store_path"]


def store_path(store_dir: str | Path) -> Path:
    path = Path(store_dir)
    if not path.exists():
        raise AnalysisInputError(f"no such store directory: {path}")
    if not path.is_dir():
        raise AnalysisInputError(f"not a store directory (it is a file): {path}")
    if not (path / "store.json").is_file():
        raise AnalysisInputError(f"not an insitu store (no store.json): {path}")
    return path


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AnalysisInputError(f"unreadable {path.name} in store {path.parent}: {exc}") from None
    if not isinstance(value, dict):
        raise AnalysisInputError(f"{path.name} in store {path.parent} is not a JSON object")
    return value


def load_store_meta(store_dir: str | Path) -> dict:
    """``store.json`` of a store: format, experiment, declared parameters and their kinds."""
    path = store_path(store_dir)
    meta = _read_json(path / "store.json")
    if meta.get("format") != 1:
        raise AnalysisInputError(
            f"unsupported store format {meta.get('format')!r} in {path} (this version reads format 1)"
        )
    return meta


def load_params(store_dir: str | Path) -> list[str]:
    """The declared parameter names of a store (``store.json``), in declaration order: the
    axes that tables and figures may group by or must pool (their ``params=`` argument)."""
    return list(load_store_meta(store_dir).get("params") or {})


def load_spec(store_dir: str | Path) -> dict:
    """``spec.json`` of a store: name, experiment, fixed parameters, grid, seeds."""
    path = store_path(store_dir)
    if not (path / "spec.json").is_file():
        raise AnalysisInputError(f"store has no spec.json: {path}")
    return _read_json(path / "spec.json")


def launch_order(path: Path) -> list[str]:
    """Launch ids in the order of ``launches.jsonl``; a torn or unparsable line is skipped."""
    file = path / "launches.jsonl"
    order: list[str] = []
    if not file.is_file():
        return order
    for line in file.read_text().splitlines():
        try:
            launch = json.loads(line).get("launch_id")
        except (ValueError, AttributeError):
            continue
        if launch is not None and str(launch) not in order:
            order.append(str(launch))
    return order


def part_files(store_dir: str | Path) -> list[Path]:
    """Visible parts (``parts/part-*.parquet``) in name order: launch id, then chunk number.

    Temporary ``.part-*.tmp`` files and quarantined parts are never included.
    """
    path = store_path(store_dir)
    return parts_of(path)


def parts_of(path: Path) -> list[Path]:
    parts = path / "parts"
    return sorted(parts.glob("part-*.parquet"), key=lambda f: f.name) if parts.is_dir() else []
