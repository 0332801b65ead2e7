"""The store's schema (docs/store.md, format 1): its files, its fixed columns, its value types.

Every name of a file in a store directory, and every column every row carries, is spelled
here and nowhere else in ``sweeps``. ``analysis`` reads stores without importing ``sweeps``;
a test holds its column list, docs/store.md's table and this module to the same list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

FORMAT = 1

PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"
TEMP_PREFIX = ".part-"
TEMP_SUFFIX = ".tmp"
LOCK_NAME = ".lock"
MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True)
class StorePaths:
    """The files and directories of the store at ``root``."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def store_json(self) -> Path:
        """Format, experiment, declared parameters and defaults."""
        return self.root / "store.json"

    @property
    def spec_json(self) -> Path:
        """The spec in its canonical JSON form (what the store's trials are)."""
        return self.root / "spec.json"

    @property
    def spec_toml(self) -> Path:
        """The same spec as TOML, for people."""
        return self.root / "spec.toml"

    @property
    def launches(self) -> Path:
        """One line per launch start and one per launch end."""
        return self.root / "launches.jsonl"

    @property
    def manifest(self) -> Path:
        """The index of the parts (docs/store.md, "The manifest")."""
        return self.root / MANIFEST_NAME

    @property
    def lock(self) -> Path:
        """Held by the one launch or maintenance command writing the store."""
        return self.root / LOCK_NAME

    @property
    def parts(self) -> Path:
        return self.root / "parts"

    @property
    def quarantine(self) -> Path:
        """Parts ``insitu verify`` moved out of ``parts/``."""
        return self.root / "quarantine"

    def part_name(self, launch_id: str, chunk_index: int) -> str:
        return f"{PART_PREFIX}{launch_id}-{chunk_index:06d}{PART_SUFFIX}"

    @staticmethod
    def is_part_name(name: str) -> bool:
        return name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX)

    @staticmethod
    def is_part_temp_name(name: str) -> bool:
        return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


# The columns every row carries, in order, with their Arrow types.
FIXED_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("key", pa.string()),
    ("trial_seed", pa.int64()),
    ("seed", pa.int64()),
    ("experiment", pa.string()),
    ("experiment_version", pa.string()),
    ("launch_id", pa.string()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("mode", pa.string()),
    ("elapsed_s", pa.float64()),
)
# The Arrow type of a parameter column, by the parameter's declared type.
PARAM_ARROW_TYPES = {"float": pa.float64(), "int": pa.int64(), "str": pa.string(),
                     "bool": pa.bool_()}


def plain_value(value: Any) -> Any:
    """A metric value as None, bool, int, float, str, or a list of ints or floats.

    numpy scalars and arrays become their Python values; ``TypeError`` for anything else
    (a nested list, a list holding a bool or a string, a dict, ...).
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [v.item() if isinstance(v, np.generic) else v for v in value]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            return items
    raise TypeError(f"unsupported value {value!r:.60}")


def infer_type(value: Any) -> pa.DataType | None:
    """The Arrow type of a metric value (as ``plain_value`` reads it); None for a null or an
    empty list; ``TypeError`` for a value no column can hold."""
    value = plain_value(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, str):
        return pa.string()
    if not value:
        return None
    if all(isinstance(v, int) for v in value):
        return pa.list_(pa.int64())
    return pa.list_(pa.float64())


def _type_family(t: pa.DataType) -> str:
    """Types of one family merge (``merge_types``); types of two families conflict."""
    if t in (pa.int64(), pa.float64()):
        return "number"
    if t in (pa.list_(pa.int64()), pa.list_(pa.float64())):
        return "list<number>"
    return str(t)


def unify_part_types(parts: list[tuple[str, tuple[tuple[str, pa.DataType], ...]]]
                     ) -> tuple[dict[str, pa.DataType], dict[str, str]]:
    """The store's column types from each part's (name, column types), and the odd parts.

    A column whose types do not merge takes the type family held by the most parts (on a
    tie, the family of the earliest part); every part holding it in another family is odd
    out: ``{part name: why}``, one reason per part. A ``null`` column fits any type.
    """
    position: dict[str, int] = {}
    by_id: dict[int, tuple[tuple, list[str]]] = {}  # parts of one launch share one tuple
    for index, (name, types) in enumerate(parts):
        position[name] = index
        by_id.setdefault(id(types), (types, []))[1].append(name)
    by_types: dict[tuple, list[str]] = {}
    for types, names in by_id.values():
        by_types.setdefault(types, []).extend(names)
    columns: dict[str, dict[str, list[tuple[pa.DataType, list[str]]]]] = {}
    for types, names in by_types.items():
        for column, t in types:
            if t == pa.null():
                continue
            columns.setdefault(column, {}).setdefault(_type_family(t), []).append((t, names))
    merged: dict[str, pa.DataType] = {}
    odd: dict[str, str] = {}
    for column, families in columns.items():
        count = {f: sum(len(names) for _, names in held) for f, held in families.items()}
        first = {f: min(position[n] for _, names in held for n in names)
                 for f, held in families.items()}
        winner = max(families, key=lambda f: (count[f], -first[f]))
        t = None
        for held_type, _ in families[winner]:
            t = merge_types(t, held_type)
        merged[column] = t
        for family, held in families.items():
            if family == winner:
                continue
            for held_type, names in held:
                for name in names:
                    odd.setdefault(name, f"column {column!r} is {held_type}, where "
                                         f"{count[winner]} other part"
                                         f"{'s' if count[winner] != 1 else ''} hold {t}")
    return merged, dict(sorted(odd.items(), key=lambda item: position[item[0]]))


def merge_types(a: pa.DataType | None, b: pa.DataType) -> pa.DataType | None:
    """The type both fit in (int widens to float), or None when they conflict."""
    if a is None or a == b:
        return b
    numeric = {pa.int64(), pa.float64()}
    if a in numeric and b in numeric:
        return pa.float64()
    lists = {pa.list_(pa.int64()), pa.list_(pa.float64())}
    if a in lists and b in lists:
        return pa.list_(pa.float64())
    return None

