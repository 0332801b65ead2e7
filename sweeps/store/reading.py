"""Reading a store's rows: the rules every reader follows, implemented once (docs/store.md).

* **All parts, one schema.** Later parts may add columns; a part that lacks a column reads
  it as null, and a column typed ``null`` in one part takes its type from the others. When
  parts disagree on a column's type family, the odd part out is named
  (:func:`insitu.sweeps.store.schema.unify_part_types`; ``insitu verify`` quarantines it).
* **Page checksums** are verified on every read.
* **Newest launch wins.** Several parts may hold rows of one trial key (``retry-failed``
  reruns errors; a resumed launch may store a trial again; a compaction copies rows). For
  each key only the rows of its newest launch count, and within that launch those of its
  last part in name order (:func:`row_precedence`). The winner is chosen per key, not per
  (key, mode): an error trial is one row with a null ``mode``, and it disappears when a
  retry succeeds. The rows so superseded are counted.
* **Rows of another spec are ignored, and counted** (:func:`membership`): a row belongs to
  the store when its key is the key of a trial of ``spec.json`` and its seed, experiment,
  version and parameters are that trial's (a null, or a column its part lacks, is not held
  against it).
* **Parameters added later** (``store.json``'s ``omit_at_default``) read as their default
  where a part lacks them, and filters treat those rows so.
* **Push-down.** ``columns`` and ``filters`` go to :mod:`pyarrow.dataset`, so a large store
  is read only as far as needed; precedence always looks at the (small) ``key`` and
  ``launch_id`` columns of every row, so a filter never lets a superseded row through.

Everything here is pyarrow and the standard library; :mod:`insitu.analysis.load` turns the
result into pandas.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from insitu.sweeps.store.errors import StoreError
from insitu.sweeps.store.keys import Trial, spec_seeds, stored_trials
from insitu.sweeps.store.metadata import launch_order, read_launches, read_meta, read_spec
from insitu.sweeps.store.paths import StorePaths
from insitu.sweeps.store.schema import FIXED_COLUMNS, PARAM_ARROW_TYPES, unify_part_types

VANISHED_RETRIES = 5  # fresh listings a read tries when a part vanished under it

# Always read, whatever ``columns`` asks for: precedence, error separation, pairing.
ALWAYS_READ = ("key", "seed", "mode", "status", "error", "launch_id")
IDENTITY_COLUMNS = tuple(name for name, _ in FIXED_COLUMNS)


@dataclass
class Rows:
    """The rows of a store that count (newest launch per key) and belong to its spec."""

    path: Path
    meta: dict
    spec: dict
    table: pa.Table
    n_parts: int
    n_superseded: int  # rows dropped because a newer launch stored their key again
    n_foreign: int  # rows ignored: not trials of the store's spec
    launches: list[str] = field(default_factory=list)  # launch ids, launches.jsonl order


def store_paths(store_dir: str | Path) -> StorePaths:
    """The paths of an existing store; ``StoreError`` naming what is wrong with ``store_dir``."""
    path = Path(store_dir)
    if not path.exists():
        raise StoreError(f"no such store directory: {path}")
    if not path.is_dir():
        raise StoreError(f"not a store directory (it is a file): {path}")
    paths = StorePaths(path)
    if not paths.store_json.is_file():
        raise StoreError(f"not an insitu store (no store.json): {path}")
    return paths


def part_files(paths: StorePaths) -> list[Path]:
    """Visible parts (``parts/part-*.parquet``) in name order: launch id, then chunk number.
    Temporary files and quarantined parts are never included."""
    if not paths.parts.is_dir():
        return []
    return sorted((p for p in paths.parts.iterdir() if StorePaths.is_part_name(p.name)),
                  key=lambda p: p.name)


def unreadable(paths: StorePaths, part: Path, exc: BaseException) -> str:
    """The one line for a part that cannot be read."""
    return (f"{part}: unreadable part ({' '.join(str(exc).split())[:200]}); "
            f"run `insitu verify {paths.root}` to quarantine it")


def read_schema(paths: StorePaths, files: Sequence[Path]) -> pa.Schema:
    """The unified schema of ``files``: every column in first-seen order, each in the type
    its parts agree on; ``StoreError`` naming every unreadable part and every odd part out."""
    problems, per_part, order = [], [], {}
    for f in files:
        try:
            schema = pq.read_schema(f)
        except (pa.ArrowException, OSError) as exc:
            problems.append(unreadable(paths, f, exc))
            continue
        per_part.append((f.name, tuple((x.name, x.type) for x in schema)))
        for x in schema:
            order.setdefault(x.name, None)
    merged, odd = unify_part_types(per_part)
    problems += [f"{paths.parts / name}: {why}; run `insitu verify {paths.root}` to quarantine it"
                 for name, why in odd.items()]
    if problems:
        raise StoreError(problems)
    return pa.schema([pa.field(name, merged.get(name, pa.null())) for name in order])


def launch_ranks(launch_ids: Sequence[str], seqs: Mapping[str, int] | None = None) -> dict[str, int]:
    """The precedence of launches: a greater rank is newer. A launch numbered by the
    store's launch counter (``seqs``: launch id -> ``seq`` of its record in
    ``launches.jsonl``, kept under the lock) ranks by that number, after every launch
    without one; those rank among themselves by id, which starts with their UTC start time
    (stores written before the counter existed keep exactly the order they had)."""
    seqs = seqs or {}
    order = sorted(set(launch_ids), key=lambda lid: (1, seqs[lid], lid) if lid in seqs else (0, 0, lid))
    return {launch: rank for rank, launch in enumerate(order)}


def launch_seqs(paths: StorePaths) -> dict[str, int]:
    """Launch id -> its number in the store's launch counter (``launches.jsonl``)."""
    return {str(r["launch_id"]): r["seq"] for r in read_launches(paths)
            if r.get("launch_id") is not None and isinstance(r.get("seq"), int)}


def row_precedence(launch: pa.Array, part_index: pa.Array, n_parts: int,
                   ranks: dict[str, int] | None = None) -> pa.Array:
    """Each row's precedence (int64): its launch's rank first (``ranks``, default: those
    of the launches present), then its part's position in name order. ``launch`` holds
    each row's launch id (no nulls)."""
    launch = launch.combine_chunks() if isinstance(launch, pa.ChunkedArray) else launch
    ranks = launch_ranks(launch.unique().to_pylist()) if ranks is None else ranks
    ordered = pa.array(sorted(ranks, key=ranks.get), pa.string())
    rank = pc.index_in(launch.cast(pa.string()), value_set=ordered).cast(pa.int64())
    return pc.add(pc.multiply(rank, n_parts + 1), part_index.cast(pa.int64()))


def newest(keys: pa.Array, precedence: pa.Array) -> pa.Array:
    """Which rows are of their key's newest launch and part (a boolean mask)."""
    table = pa.table({"key": keys, "p": precedence})
    best = table.group_by("key").aggregate([("p", "max")])
    at = pc.index_in(table["key"], value_set=best["key"])
    return pc.equal(table["p"], pc.take(best["p_max"], at)).combine_chunks()


def _row_launch(table: pa.Table, files: Sequence[Path]) -> tuple[pa.Array, pa.Array]:
    """Each row's launch (its ``launch_id``, else the launch in its part's name) and part
    index, from the dataset's ``__filename`` column."""
    names = pa.array([str(f) for f in files])
    part = pc.index_in(table["__filename"], value_set=names)
    from_name = pc.take(pa.array([StorePaths.launch_of_part(f.name) for f in files]), part)
    if "launch_id" in table.column_names:
        launch = pc.coalesce(table["launch_id"].cast(pa.string()), from_name)
    else:
        launch = from_name
    return launch, part


def added_params(meta: Mapping) -> dict[str, Any]:
    """Parameters added to the experiment after stores of it were written (``store.json``'s
    ``omit_at_default``), with their defaults."""
    defaults = meta.get("defaults") or {}
    return {name: defaults[name] for name in meta.get("omit_at_default") or ()
            if name in (meta.get("params") or {}) and defaults.get(name) is not None}


def to_expression(filters: Any, names: Sequence[str],
                  added: Mapping[str, Any] | None = None) -> ds.Expression | None:
    """A pyarrow Expression, DNF tuples ``[(col, op, value), ...]`` or ``{col: value(s)}``.

    ``added``: parameters added to the experiment later (:func:`added_params`). Rows of
    parts that lack them read as the default, so a mapping or tuple term on such a column
    also lets nulls through when the default passes it. A pyarrow Expression is applied to
    the stored values as given.
    """
    if filters is None:
        return None
    if isinstance(filters, ds.Expression):
        return filters
    added = added or {}

    def term_of(column, expr):
        if column in added and _passes(column, added[column], expr):
            return expr | ds.field(column).is_null()
        return expr

    if isinstance(filters, Mapping):
        expr = None
        for column, value in filters.items():
            check_columns([column], names, "filter column")
            if isinstance(value, (list, tuple, set)):
                term = pc.is_in(ds.field(column), value_set=pa.array(list(value)))
            else:
                term = ds.field(column) == value
            term = term_of(column, term)
            expr = term if expr is None else expr & term
        return expr
    if isinstance(filters, Sequence) and not isinstance(filters, str):
        groups = [filters] if filters and not isinstance(filters[0], list) else filters
        check_columns([f[0] for group in groups for f in group], names, "filter column")
        expr = None
        for group in groups:
            conj = None
            for f in group:
                term = term_of(f[0], pq.filters_to_expression([f]))
                conj = term if conj is None else conj & term
            if conj is not None:
                expr = conj if expr is None else expr | conj
        return expr
    raise StoreError(f"unsupported filters of type {type(filters).__name__}")


def _passes(column: str, value: Any, expr: ds.Expression) -> bool:
    """Whether a row holding ``value`` in ``column`` passes the one-column term ``expr``."""
    try:
        return pa.table({column: pa.array([value])}).filter(expr).num_rows == 1
    except (pa.ArrowException, TypeError):
        return False


def check_columns(asked: Sequence[str], names: Sequence[str], what: str = "column") -> None:
    """``StoreError`` for the first of ``asked`` that is not in ``names``, listing them."""
    missing = [c for c in asked if c not in names]
    if missing:
        shown = ", ".join(list(names)[:40]) + (", ..." if len(names) > 40 else "")
        raise StoreError(f"unknown {what} {missing[0]!r}; the store has: {shown}")


# ---------------------------------------------------------------------------- membership
@dataclass
class SpecTrials:
    """The trials of a stored spec, indexed for :func:`membership`."""

    spec: Mapping
    meta: Mapping
    trials: list[Trial]
    keys: pa.Array

    @classmethod
    def of(cls, spec: Mapping, meta: Mapping) -> "SpecTrials":
        # A store written before store.json recorded the defaults cannot enumerate its
        # keys: its rows are judged on their columns alone.
        trials = list(stored_trials(spec, meta)) if "defaults" in meta else []
        return cls(spec, meta, trials, pa.array([t.key for t in trials], pa.string()))

    @property
    def keyed(self) -> bool:
        return "defaults" in self.meta


def membership(table: pa.Table, trials: SpecTrials) -> tuple[pa.Array, str]:
    """Which rows are trials of the store's spec (a boolean mask), and why the first row
    that is not is not (``""`` when all are).

    A row belongs when its key is a trial key of the spec, and its seed, experiment,
    version and parameter columns hold that trial's values; a null (a column added after
    its part was written) is not held against it.
    """
    n = table.num_rows
    spec, meta = trials.spec, trials.meta
    grid = spec.get("grid") or {}
    tests: list[tuple[str, pa.Array]] = []  # (what, mask), first failing test names the reason
    if trials.keyed:
        at = pc.index_in(table["key"], value_set=trials.keys)
        tests.append(("key", pc.is_valid(at)))
    else:
        at = None
        if "seed" in table.column_names:
            tests.append(("seed", _equal_or_null(table["seed"], pa.array(spec_seeds(spec)), member=True)))
        for axis, values in grid.items():
            if axis in table.column_names:
                tests.append((axis, _equal_or_null(table[axis], pa.array(values), member=True)))
    constants = {"experiment": spec.get("experiment", meta.get("experiment")),
                 "experiment_version": spec.get("experiment_version", meta.get("experiment_version"))}
    constants.update({k: v for k, v in {**(meta.get("defaults") or {}), **(spec.get("fixed") or {})}.items()
                      if k not in grid})
    for name, value in constants.items():
        if value is not None and name in table.column_names:
            tests.append((name, _equal_or_null(table[name], value)))
    if at is not None:
        per_trial = {"seed": [t.seed for t in trials.trials]}
        per_trial.update({axis: [t.params[axis] for t in trials.trials] for axis in grid})
        for name, values in per_trial.items():
            if name in table.column_names:
                expected = pc.take(_typed(values, table.schema.field(name).type), at)
                tests.append((name, _equal_or_null(table[name], expected)))
    ok = pa.array([True] * n, pa.bool_())
    for _, mask in tests:
        ok = pc.and_kleene(ok, mask)
    ok = pc.fill_null(ok, False)
    if n == 0 or pc.all(ok).as_py():
        return ok, ""
    first = pc.index(ok, False).as_py()
    return ok, _reason(table, first, tests, trials, at)


def _typed(values: list, type_: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, type_)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array(values)


def _equal_or_null(column, expected, member: bool = False) -> pa.Array:
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if member:
        equal = pc.is_in(column, value_set=expected.cast(column.type) if expected.type != column.type
                         and pa.types.is_primitive(column.type) else expected)
    else:
        try:
            equal = pc.equal(column, expected if isinstance(expected, (pa.Array, pa.ChunkedArray))
                             else pa.scalar(expected, column.type))
        except (pa.ArrowException, TypeError, ValueError):
            equal = pa.array([False] * len(column), pa.bool_())
    return pc.or_kleene(pc.is_null(column), equal)


def _reason(table: pa.Table, row: int, tests, trials: SpecTrials, at) -> str:
    key = table["key"][row].as_py()
    for name, mask in tests:
        if mask[row].as_py() is False or mask[row].as_py() is None:
            if name == "key":
                return f"key {key} is not a trial of the store's spec"
            value = table[name][row].as_py()
            if at is not None and at[row].as_py() is not None:
                trial = trials.trials[at[row].as_py()]
                want = trial.seed if name == "seed" else trial.params.get(
                    name, trials.spec.get(name, trials.meta.get(name)))
                if name == "seed":
                    return f"key {key} has seed {value}, its trial has {want}"
                if name in ("experiment", "experiment_version"):
                    return f"key {key} has {name} {value!r}, the store's is {want!r}"
                return (f"key {key} has {name} = {value!r}, but its trial has {want!r} "
                        f"(the key is not the hash of the row's parameters)")
            return f"key {key} has {name} = {value!r}, not a value of the store's spec"
    return f"key {key} is not a trial of the store's spec"


# ------------------------------------------------------------------------------- reading
def fill_added(table: pa.Table, meta: Mapping, columns: Sequence[str] | None) -> pa.Table:
    """Rows written before a parameter was added to the experiment hold null there (or
    their part lacks the column): they computed its default, which is filled in."""
    params = meta.get("params") or {}
    for name, default in added_params(meta).items():
        type_ = PARAM_ARROW_TYPES.get(params.get(name), None)
        if name not in table.column_names:
            if columns is None or name in columns:
                table = table.append_column(name, pa.array([default] * table.num_rows, type_))
            continue
        column = table[name]
        if column.null_count:
            index = table.column_names.index(name)
            filled = pc.fill_null(column.cast(type_) if type_ is not None else column, default)
            table = table.set_column(index, name, filled)
    return table


def empty_rows(meta: Mapping, columns: Sequence[str] | None) -> pa.Table:
    """A table with no rows and the columns a store of ``meta`` would have."""
    fields = list(FIXED_COLUMNS) + [(n, PARAM_ARROW_TYPES.get(k, pa.string()))
                                    for n, k in (meta.get("params") or {}).items()]
    if columns is not None:
        wanted = set(columns) | set(ALWAYS_READ)
        fields = [(n, t) for n, t in fields if n in wanted]
    return pa.schema([pa.field(n, t) for n, t in fields]).empty_table()


def read_rows(store_dir: str | Path, columns: Sequence[str] | None = None,
              filters: Any = None) -> Rows:
    """The rows of a store that count and belong to its spec (module docstring).

    ``columns`` limits the columns read (``key``, ``seed``, ``mode``, ``status``, ``error``
    and ``launch_id`` are always read). ``filters``: a pyarrow Expression, DNF tuples as in
    :func:`pyarrow.parquet.read_table` (``[("bs_error", "<=", 0.1)]``) or a mapping
    ``{column: value or list of values}``. ``StoreError`` for a path that is not a store,
    an unknown column, a bad filter or a part that cannot be read.

    A part can vanish between listing and reading (``compact`` and ``verify`` replace
    parts under the lock while readers need none): the read then starts again from a fresh
    listing, so a reader sees the rows of one consistent set of parts.
    """
    paths = store_paths(store_dir)
    for attempt in range(VANISHED_RETRIES):
        files = part_files(paths)
        try:
            return _read_rows(paths, files, columns, filters)
        except StoreError:
            if attempt + 1 < VANISHED_RETRIES and any(not f.exists() for f in files):
                time.sleep(0.05 * (attempt + 1))
                continue  # a part went away (compacted, quarantined): list again
            raise
    raise AssertionError("unreachable")


def _read_rows(paths: StorePaths, files: list[Path], columns, filters) -> Rows:
    meta, spec = read_meta(paths), read_spec(paths)
    order = launch_order(paths)
    if not files:
        return Rows(paths.root, meta, spec, empty_rows(meta, columns), 0, 0, 0, order)
    schema = read_schema(paths, files)
    names = list(schema.names)
    if "key" not in names:
        raise StoreError(f"parts of store {paths.root} have no 'key' column; not a format-1 store")
    if columns is not None:
        check_columns(list(columns), names)
    expr = to_expression(filters, names, added_params(meta))
    parquet = ds.ParquetFileFormat(default_fragment_scan_options=ds.ParquetFragmentScanOptions(
        page_checksum_verification=True))
    try:
        dataset = ds.dataset([str(f) for f in files], schema=schema, format=parquet)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"unreadable part in store {paths.root} "
                         f"({' '.join(str(exc).split())[:200]}); "
                         f"run `insitu verify {paths.root}` to quarantine it") from None

    def scan(cols, where=None) -> pa.Table:
        try:
            return dataset.to_table(columns=cols, filter=where)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            if where is not None:
                raise StoreError(f"bad filter for store {paths.root}: "
                                 f"{str(exc).splitlines()[0]}") from None
            raise StoreError(f"unreadable part in store {paths.root} "
                             f"({' '.join(str(exc).split())[:200]}); "
                             f"run `insitu verify {paths.root}` to quarantine it") from None
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"unreadable part in store {paths.root} "
                             f"({' '.join(str(exc).split())[:200]}); "
                             f"run `insitu verify {paths.root}` to quarantine it") from None

    # The newest launch of every key, from every row (never filtered).
    ident = scan(["key", "__filename"] + (["launch_id"] if "launch_id" in names else []))
    launch, part = _row_launch(ident, files)
    ranks = launch_ranks(launch.unique().to_pylist(), launch_seqs(paths))
    precedence = row_precedence(launch, part, len(files), ranks)
    best = pa.table({"key": ident["key"], "p": precedence}).group_by("key").aggregate([("p", "max")])
    n_superseded = ident.num_rows - pc.sum(newest(ident["key"], precedence)).as_py()

    wanted = names if columns is None else [c for c in dict.fromkeys([*ALWAYS_READ, *columns])
                                            if c in names]
    trials = SpecTrials.of(spec, meta)
    checked = [c for c in _membership_columns(spec, meta) if c in names and c not in wanted]
    table = scan([*wanted, *checked, "__filename"], expr)
    launch, part = _row_launch(table, files)
    precedence = row_precedence(launch, part, len(files), ranks) if table.num_rows else pa.array([], pa.int64())
    at = pc.index_in(table["key"], value_set=best["key"])
    table = table.filter(pc.fill_null(pc.equal(precedence, pc.take(best["p_max"], at)), False))
    belongs, _ = membership(table, trials)
    n_foreign = table.num_rows - pc.sum(belongs).as_py() if table.num_rows else 0
    table = table.filter(belongs).drop_columns(["__filename", *checked])
    if "mode" not in table.column_names:
        table = table.append_column("mode", pa.nulls(table.num_rows, pa.string()))
    table = fill_added(table, meta, columns)
    return Rows(paths.root, meta, spec, table, len(files), int(n_superseded), int(n_foreign), order)


def _membership_columns(spec: Mapping, meta: Mapping) -> list[str]:
    """The columns that say whether a row is a trial of the store's spec."""
    return list(dict.fromkeys(["key", "seed", "experiment", "experiment_version",
                               *(spec.get("grid") or {}), *(spec.get("fixed") or {}),
                               *(meta.get("defaults") or {})]))
