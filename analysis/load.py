"""Read an insitu result store (docs/store.md, format 1) into pandas.

A store is a directory of Parquet parts written by the sweep driver, plus ``spec.json``,
``store.json`` and ``launches.jsonl``. This module and :mod:`analysis.store_files` are the
only places that know that layout; everything else in :mod:`analysis` works on the
DataFrames they return.

What :func:`read_store` guarantees, and why:

* **All parts, one schema.** Later parts may add columns; the schemas of all parts are unified
  (permissively, so a column typed ``null`` in an early part takes its real type from a later
  one) and a part that lacks a column reads it as null. Nothing is dropped.
* **Newest launch wins.** A resumed sweep can store a trial twice (a part was written, then
  the driver died before recording it; ``retry-failed`` reruns error trials; a compaction
  rewrites rows). For each trial ``key`` only the rows of its newest launch count. The
  newest launch is the one with the greatest ``launch_id``: the sweep engine makes launch
  ids start with the UTC start time (``20240101T120000123456-1a2b3c``), so string order is
  start order, and this is the rule the engine itself applies when it resumes. When that
  launch holds the trial in two parts (a compaction copies rows), the later part in name
  order (``part-<launch_id>-<chunk>``) counts. The winner is chosen per *trial* (key), not
  per (key, mode): an error trial is one row with a null ``mode``, and it must disappear
  when a retry succeeds. The number of rows so superseded is reported.
* **Rows of another spec are ignored, and counted.** A part copied in from another sweep of
  the same experiment must not be pooled with this one: only rows whose seed, parameters
  and experiment version are those of a trial of ``spec.json`` count (``n_foreign`` says
  how many were ignored; ``insitu verify`` quarantines their parts).
* **Page checksums are verified** on every read (the engine writes them).
* **Errors are separated, never lost.** Rows with ``status != "ok"`` go to
  :attr:`LoadedStore.errors`; the counts travel with the result.
* **Proper dtypes.** Parameter columns get the dtype declared in ``store.json``
  (float64, int64, str, bool; the nullable Int64 / boolean when a later-added parameter is
  missing from old parts). A parameter ``store.json`` lists in ``omit_at_default`` reads
  as its default where old parts lack it, and filters on it treat those rows so.
* **Push-down.** ``columns`` and ``filters`` are handed to :mod:`pyarrow.dataset`, so a large
  store is read only as far as needed. The duplicate check always scans the (small) ``key``
  and ``launch_id`` columns of every row, so a filter never lets a superseded row through.

About 480 lines on purpose: reading the rows, type unification, newest-launch precedence,
the foreign-row rule and added parameters are one contract of docs/store.md, kept
together (the store's other files are read by :mod:`analysis.store_files`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from analysis.labels import varying_axes  # re-exported: the helper for the axes that vary
from analysis.exceptions import AnalysisInputError
# The store's files beside its rows; their readers are public here too.
from analysis.store_files import launch_order, load_params, load_spec, load_store_meta, part_files, parts_of, store_path

__all__ = [
    "LoadedStore",
    "IDENTITY_COLUMNS",
    "load",
    "load_errors",
    "load_params",
    "load_spec",
    "load_store_meta",
    "part_files",
    "read_store",
    "store_columns",
    "varying_axes",
]

# Columns every row carries besides parameters and metrics (docs/store.md, "Rows").
IDENTITY_COLUMNS: tuple[str, ...] = (
    "key",
    "trial_seed",
    "seed",
    "experiment",
    "experiment_version",
    "launch_id",
    "status",
    "error",
    "mode",
    "elapsed_s",
)
# Always read, whatever ``columns`` asks for: deduplication, error separation, pairing.
_ALWAYS = ("key", "seed", "mode", "status", "error", "launch_id")

_PART_NAME = re.compile(r"^part-(?P<launch>.+)-(?P<chunk>\d+)\.parquet$")
_PANDAS_DTYPES = {"float": "float64", "int": "int64", "bool": "bool", "str": "str"}
_NULLABLE_DTYPES = {"float": "float64", "int": "Int64", "bool": "boolean", "str": "str"}


@dataclass
class LoadedStore:
    """One store read into memory: successful rows, error rows, and what was dropped.

    ``rows`` holds the rows with ``status == "ok"``, ``errors`` all others; both have the
    same columns. ``n_superseded`` counts rows dropped because a newer launch stored the
    same trial again (see the module docstring); ``n_foreign`` the rows ignored because
    they are not trials of the store's spec (parts copied in from another sweep). ``launches`` lists the launch ids recorded
    in ``launches.jsonl``, in file order (for reporting; precedence uses the ids themselves).
    """

    path: Path
    spec: dict
    meta: dict
    rows: pd.DataFrame
    errors: pd.DataFrame
    n_parts: int
    n_superseded: int
    launches: list[str] = field(default_factory=list)
    n_foreign: int = 0  # rows ignored: not trials of the store's spec

    @property
    def params(self) -> dict[str, str]:
        """Declared parameters and their kinds (``float``/``int``/``str``/``bool``)."""
        return dict(self.meta.get("params") or {})

    @property
    def n_trials_ok(self) -> int:
        """Distinct trials (keys) with at least one successful row."""
        return int(self.rows["key"].nunique()) if len(self.rows) else 0

    @property
    def n_trials_error(self) -> int:
        """Distinct trials (keys) that ended in an error."""
        return int(self.errors["key"].nunique()) if len(self.errors) else 0

    @property
    def is_empty(self) -> bool:
        """True when the store holds no row at all (no parts, or only empty ones)."""
        return len(self.rows) == 0 and len(self.errors) == 0

    def varying_axes(self, include_seed: bool = False) -> list[str]:
        """Grid axes with more than one value among the successful rows."""
        return varying_axes(self.spec, self.rows, include_seed=include_seed)

    def error_summary(self) -> pd.DataFrame:
        """Error messages grouped: one row per distinct message with its trial and row counts."""
        if not len(self.errors):
            return pd.DataFrame(columns=["error", "trials", "rows"])
        errs = self.errors.assign(error=self.errors["error"].fillna("(no message)"))
        table = errs.groupby("error", sort=False).agg(
            trials=("key", "nunique"), rows=("key", "size")
        )
        return table.sort_values("trials", ascending=False).reset_index()


# ---------------------------------------------------------------------------------------
# Reading


def _unified_schema(files: list[Path]) -> pa.Schema:
    store = files[0].parent.parent if files else Path(".")
    schemas = []
    for f in files:
        try:
            schemas.append(pq.read_schema(f))
        except (pa.ArrowException, OSError) as exc:
            raise AnalysisInputError(
                f"unreadable part {f} ({' '.join(str(exc).split())[:200]}); "
                f"run `insitu verify {store}` to quarantine it"
            ) from None
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except pa.ArrowException:
        pass
    # Name the part and the column: the odd part out, whose type of a column does not fit
    # the type most parts hold (the rule `insitu verify` quarantines by).
    by_column: dict[str, dict[str, list[int]]] = {}
    fields: dict[tuple[str, str], pa.Field] = {}
    for index, schema in enumerate(schemas):
        for f in schema:
            by_column.setdefault(f.name, {}).setdefault(str(f.type), []).append(index)
            fields[(f.name, str(f.type))] = f
    for column, types in by_column.items():
        common = max(types, key=lambda t: (len(types[t]), -types[t][0]))
        for t, indices in types.items():
            if not _unifies(fields[(column, common)], fields[(column, t)]):
                n = len(types[common])
                raise AnalysisInputError(
                    f"part {files[indices[0]]} stores column {column!r} as {t}, where {n} "
                    f"other part{'s' if n != 1 else ''} store {common}; run "
                    f"`insitu verify {store}` to quarantine the odd part out") from None
    raise AnalysisInputError(f"parts of store {store} disagree on column types")


def _unifies(a: pa.Field, b: pa.Field) -> bool:
    try:
        pa.unify_schemas([pa.schema([a]), pa.schema([b])], promote_options="permissive")
        return True
    except pa.ArrowException:
        return False


def store_columns(store_dir: str | Path) -> list[str]:
    """Every column name of the store (union over all parts), in schema order."""
    files = part_files(store_dir)
    return list(_unified_schema(files).names) if files else []


def _to_expression(filters: Any, names: Sequence[str],
                   added: Mapping[str, Any] | None = None) -> ds.Expression | None:
    """Accept a pyarrow Expression, DNF tuples ``[(col, op, value), ...]`` or ``{col: value(s)}``.

    ``added``: parameters added to the experiment after some parts were written, with their
    defaults (:func:`_added_params`). Rows of those parts hold null there and read as the
    default, so a mapping or tuple term on such a column also lets nulls through when the
    default passes it. A pyarrow Expression is applied to the stored values as given.
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
            _check_names([column], names, "filter column")
            if isinstance(value, (list, tuple, set)):
                term = pc.is_in(ds.field(column), value_set=pa.array(list(value)))
            else:
                term = ds.field(column) == value
            term = term_of(column, term)
            expr = term if expr is None else expr & term
        return expr
    if isinstance(filters, Sequence) and not isinstance(filters, str):
        groups = [filters] if filters and not isinstance(filters[0], list) else filters
        flat = [f for group in groups for f in group]
        _check_names([f[0] for f in flat], names, "filter column")
        expr = None
        for group in groups:
            conj = None
            for f in group:
                term = term_of(f[0], pq.filters_to_expression([f]))
                conj = term if conj is None else conj & term
            if conj is not None:
                expr = conj if expr is None else expr | conj
        return expr
    raise AnalysisInputError(f"unsupported filters of type {type(filters).__name__}")


def _passes(column: str, value: Any, expr: ds.Expression) -> bool:
    """Whether a row holding ``value`` in ``column`` passes the one-column term ``expr``."""
    try:
        return pa.table({column: pa.array([value])}).filter(expr).num_rows == 1
    except (pa.ArrowException, TypeError):
        return False


def _check_names(asked: Sequence[str], names: Sequence[str], what: str) -> None:
    missing = [c for c in asked if c not in names]
    if missing:
        shown = ", ".join(names[:40]) + (", ..." if len(names) > 40 else "")
        raise AnalysisInputError(f"unknown {what} {missing[0]!r}; the store has: {shown}")


def _apply_param_dtypes(frame: pd.DataFrame, params: Mapping[str, str]) -> pd.DataFrame:
    """Give every declared parameter column the pandas dtype its kind calls for."""
    for name, kind in params.items():
        if name not in frame.columns or kind not in _PANDAS_DTYPES:
            continue
        has_null = bool(frame[name].isna().any())
        dtype = (_NULLABLE_DTYPES if has_null else _PANDAS_DTYPES)[kind]
        try:
            frame[name] = frame[name].astype(dtype)
        except (TypeError, ValueError):
            pass  # leave an unexpected column as stored rather than failing the whole read
    return frame


def _added_params(meta: Mapping) -> dict[str, Any]:
    """The parameters added to the experiment after stores of it were written (``store.json``
    ``omit_at_default``), with their defaults."""
    defaults = meta.get("defaults") or {}
    return {name: defaults[name] for name in meta.get("omit_at_default") or ()
            if name in (meta.get("params") or {}) and defaults.get(name) is not None}


def _fill_added_params(frame: pd.DataFrame, meta: Mapping, columns: Sequence[str] | None) -> pd.DataFrame:
    """Rows written before a parameter was added to the experiment lack its column (or hold
    null there); they computed its default, which is filled in (and the column created when
    no part has it yet)."""
    for name, default in _added_params(meta).items():
        if name not in frame.columns:
            if columns is None or name in columns:
                frame[name] = default
            continue
        missing = frame[name].isna()
        if missing.any():
            frame[name] = frame[name].astype(object).where(~missing, default)
    return frame


def _empty_frame(meta: Mapping, columns: Sequence[str] | None) -> pd.DataFrame:
    names = list(IDENTITY_COLUMNS) + list((meta.get("params") or {}).keys())
    if columns is not None:
        names = [n for n in names if n in set(columns) | set(_ALWAYS)]
    frame = pd.DataFrame({n: pd.Series([], dtype="object") for n in names})
    return _apply_param_dtypes(frame, meta.get("params") or {})


def read_store(
    store_dir: str | Path,
    columns: Sequence[str] | None = None,
    filters: Any = None,
) -> LoadedStore:
    """Read a store: unified schema, newest launch per trial, errors separated, typed params.

    ``columns`` limits the columns read (identity columns ``key``, ``seed``, ``mode``,
    ``status``, ``error`` and ``launch_id`` are always included). ``filters`` is a pyarrow
    Expression, DNF tuples as in :func:`pyarrow.parquet.read_table`
    (``[("bs_error", "<=", 0.1)]``) or a mapping ``{column: value or list of values}``.
    Raises :class:`AnalysisInputError` for a path that is not a store or an unknown column.
    """
    path = store_path(store_dir)
    meta = load_store_meta(path)
    spec = load_spec(path)
    order = launch_order(path)
    files = parts_of(path)
    if not files:
        empty = _empty_frame(meta, columns)
        return LoadedStore(path, spec, meta, empty, empty.copy(), 0, 0, order)

    schema = _unified_schema(files)
    names = list(schema.names)
    if "key" not in names:
        raise AnalysisInputError(f"parts of store {path} have no 'key' column; not a format-1 store")
    if columns is not None:
        _check_names(list(columns), names, "column")
    expr = _to_expression(filters, names, _added_params(meta))

    # Page checksums (written by the engine) are verified on every read.
    parquet = ds.ParquetFileFormat(default_fragment_scan_options=ds.ParquetFragmentScanOptions(
        page_checksum_verification=True))
    dataset = ds.dataset([str(f) for f in files], schema=schema, format=parquet)
    file_index = {str(f): i for i, f in enumerate(files)}
    name_launch = {
        str(f): (m["launch"] if (m := _PART_NAME.match(f.name)) else f.name) for f in files
    }

    # Winner launch per trial, from every row (never filtered).
    ident_cols = ["key", "__filename"] + [c for c in ("launch_id", "mode") if c in names]
    try:
        ident = dataset.to_table(columns=ident_cols).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise AnalysisInputError(f"unreadable part in store {path} "
                                 f"({' '.join(str(exc).split())[:200]}); "
                                 f"run `insitu verify {path}` to quarantine it") from None
    ident["__launch"] = _row_launch(ident, name_launch)
    rank = {launch: i for i, launch in enumerate(sorted(set(ident["__launch"]), key=str))}
    ident["_order"] = _row_order(ident, rank, file_index)
    best = ident.groupby("key", sort=False)["_order"].max()
    n_superseded = int((ident["_order"] != ident["key"].map(best)).sum())

    wanted = names if columns is None else list(dict.fromkeys([*_ALWAYS, *columns]))
    wanted = [c for c in wanted if c in names]
    checked = [c for c in _membership_columns(spec, meta) if c in names and c not in wanted]
    try:
        table = dataset.to_table(columns=[*wanted, *checked, "__filename"], filter=expr)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise AnalysisInputError(f"bad filter for store {path}: {str(exc).splitlines()[0]}") from None
    except (OSError, pa.ArrowException) as exc:
        raise AnalysisInputError(f"unreadable part in store {path} "
                                 f"({' '.join(str(exc).split())[:200]}); "
                                 f"run `insitu verify {path}` to quarantine it") from None
    frame = table.to_pandas()
    frame["__launch"] = _row_launch(frame, name_launch)
    frame["_order"] = _row_order(frame, rank, file_index)
    frame = frame[frame["_order"] == frame["key"].map(best)]
    belongs = _of_the_spec(frame, spec, meta)
    n_foreign = int((~belongs).sum())
    frame = frame[belongs]
    if "mode" not in frame.columns:
        frame["mode"] = None
    frame = frame.drop(columns=["__filename", "__launch", "_order", *checked]).reset_index(drop=True)
    frame = _fill_added_params(frame, meta, columns)
    frame = _apply_param_dtypes(frame, meta.get("params") or {})

    ok = frame["status"] == "ok" if "status" in frame.columns else pd.Series(True, index=frame.index)
    ok = ok.fillna(False).astype(bool)
    rows = frame[ok].reset_index(drop=True)
    errors = frame[~ok].reset_index(drop=True)
    return LoadedStore(path, spec, meta, rows, errors, len(files), n_superseded, order,
                       n_foreign)


def _membership_columns(spec: Mapping, meta: Mapping) -> list[str]:
    """The columns that say whether a row is a trial of the store's spec."""
    return list(dict.fromkeys(["seed", "experiment", "experiment_version",
                               *(spec.get("grid") or {}), *(spec.get("fixed") or {}),
                               *(meta.get("defaults") or {})]))


def _of_the_spec(frame: pd.DataFrame, spec: Mapping, meta: Mapping) -> pd.Series:
    """Which rows are trials of the store's spec (docs/store.md, "Rows of another spec").

    A row belongs when its seed is one of the spec's seeds, each grid axis holds one of the
    axis values, each fixed parameter its value, every other parameter the experiment's
    default recorded in ``store.json`` (stores written before it was recorded skip that
    check), and its experiment and version are the store's. A missing value (a column
    added after the row was written) is not held against it.
    """
    grid = spec.get("grid") or {}
    fixed = spec.get("fixed") or {}
    defaults = {k: v for k, v in (meta.get("defaults") or {}).items()
                if k not in grid and k not in fixed}
    tests: list[tuple[str, list]] = [(axis, list(values)) for axis, values in grid.items()]
    tests += [(name, [value]) for name, value in {**defaults, **fixed}.items()]
    if spec.get("seeds") is not None:
        tests.append(("seed", list(spec["seeds"])))
    for name in ("experiment", "experiment_version"):
        if spec.get(name) is not None:
            tests.append((name, [spec[name]]))
    belongs = pd.Series(True, index=frame.index)
    for column, allowed in tests:
        if column in frame.columns:
            values = frame[column]
            belongs &= values.isna() | values.isin(allowed)
    return belongs


def _row_order(frame: pd.DataFrame, rank: Mapping[str, int], file_index: Mapping[str, int]) -> pd.Series:
    """Precedence of each row: its launch's rank first, then its part's position in name order."""
    if not len(frame):
        return pd.Series([], index=frame.index, dtype="int64")
    return frame["__launch"].map(rank) * (len(file_index) + 1) + frame["__filename"].map(file_index)


def _row_launch(frame: pd.DataFrame, name_launch: Mapping[str, str]) -> pd.Series:
    """A row's launch: its ``launch_id`` column, or the launch in its part's name if missing."""
    from_name = frame["__filename"].map(name_launch)
    if "launch_id" in frame.columns:
        return frame["launch_id"].astype(object).where(frame["launch_id"].notna(), from_name)
    return from_name


def load(
    store_dir: str | Path,
    columns: Sequence[str] | None = None,
    filters: Any = None,
    include_errors: bool = False,
) -> pd.DataFrame:
    """The successful rows of a store as one DataFrame (see :func:`read_store`).

    With ``include_errors`` the error rows are appended (``status`` tells them apart).
    ``DataFrame.attrs`` carries the counts a reader should not lose sight of:
    ``n_error_rows``, ``n_error_trials``, ``n_superseded``, ``n_foreign`` and ``n_parts``.
    The declared parameters, which tables and figures need (``params=``), come from
    :func:`load_params` or :attr:`LoadedStore.params`, never from the frame.
    """
    store = read_store(store_dir, columns=columns, filters=filters)
    frame = store.rows
    if include_errors and len(store.errors):
        frame = pd.concat([store.rows, store.errors], ignore_index=True) if len(frame) else store.errors
    frame = frame.copy()
    frame.attrs.update(
        n_error_rows=len(store.errors),
        n_error_trials=store.n_trials_error,
        n_superseded=store.n_superseded,
        n_foreign=store.n_foreign,
        n_parts=store.n_parts,
    )
    return frame


def load_errors(
    store_dir: str | Path, columns: Sequence[str] | None = None, filters: Any = None
) -> pd.DataFrame:
    """The error rows of a store (newest launch per trial), with their parameters and messages."""
    return read_store(store_dir, columns=columns, filters=filters).errors
