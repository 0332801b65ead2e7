"""The store's rows (docs/store.md, "Rows"): the columns every row carries, the Arrow type
of a parameter by its declared kind, what a metric value may be, and how the column types
of many parts unify. The engine writes by these rules and every reader reads by them.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

# The columns every row carries, in order, with their Arrow types.
FIXED_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("key", pa.string()),
    ("stream_key", pa.string()),
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

    Array and scalar objects with ``tolist`` / ``item`` (numpy's) become their Python
    values; ``TypeError`` for anything else (a nested list, a list holding a bool or a
    string, a dict, ...).
    """
    if not isinstance(value, (bool, int, float, str, list, tuple)) and value is not None:
        if hasattr(value, "ndim") and hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0:
            value = value.tolist()
        elif hasattr(value, "item"):
            value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [v.item() if hasattr(v, "item") and not isinstance(v, (bool, int, float)) else v
                 for v in value]
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

