"""Read an insitu result store into pandas.

The store's own room reads the rows (:func:`insitu.sweeps.store.read_rows`): every part,
one unified schema, page checksums verified, the newest launch of every trial, the rows
that are trials of the store's spec (the others counted), parameters added later filled
with their default, ``columns`` and ``filters`` pushed down to the Parquet reader
(docs/store.md). This module turns that table into pandas: declared parameters get the
dtype of their kind (float64, int64, str, bool; the nullable Int64 / boolean where a value
is missing), rows with ``status != "ok"`` are set apart, and the store's description comes
along (:attr:`LoadedStore.params`, a :class:`~insitu.analysis.vocabulary.Vocabulary`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.vocabulary import Vocabulary, varying_axes
from insitu.sweeps.store import StoreError, read_rows
from insitu.sweeps.store.metadata import read_meta, read_spec
from insitu.sweeps.store.reading import IDENTITY_COLUMNS, part_files as _part_files, store_paths

__all__ = ["IDENTITY_COLUMNS", "LoadedStore", "load", "load_errors", "load_params", "load_spec",
           "load_store_meta", "part_files", "read_store", "varying_axes"]

_PANDAS_DTYPES = {"float": "float64", "int": "int64", "bool": "bool", "str": "str"}
_NULLABLE_DTYPES = {"float": "float64", "int": "Int64", "bool": "boolean", "str": "str"}


@dataclass
class LoadedStore:
    """One store read into memory: successful rows, error rows, and what was dropped.

    ``rows`` holds the rows with ``status == "ok"``, ``errors`` all others; both have the
    same columns. ``n_superseded`` counts rows dropped because a newer launch stored the
    same trial again; ``n_foreign`` the rows ignored because they are not trials of the
    store's spec (parts copied in from another sweep). ``launches`` lists the launch ids
    recorded in ``launches.jsonl``, in file order.
    """

    path: Path
    spec: dict
    meta: dict
    rows: pd.DataFrame
    errors: pd.DataFrame
    n_parts: int
    n_superseded: int
    launches: list[str] = field(default_factory=list)
    n_foreign: int = 0

    @property
    def params(self) -> Vocabulary:
        """The declared parameters (their names, in order) with the store's description."""
        return Vocabulary.of_meta(self.meta)

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
        table = errs.groupby("error", sort=False).agg(trials=("key", "nunique"), rows=("key", "size"))
        return table.sort_values("trials", ascending=False).reset_index()


def _apply_param_dtypes(frame: pd.DataFrame, params: Mapping[str, str]) -> pd.DataFrame:
    """Give every declared parameter column the pandas dtype its kind calls for."""
    for name, kind in params.items():
        if name not in frame.columns or kind not in _PANDAS_DTYPES:
            continue
        dtype = (_NULLABLE_DTYPES if frame[name].isna().any() else _PANDAS_DTYPES)[kind]
        try:
            frame[name] = frame[name].astype(dtype)
        except (TypeError, ValueError):
            pass  # leave an unexpected column as stored rather than failing the whole read
    return frame


def read_store(store_dir: str | Path, columns: Sequence[str] | None = None,
               filters: Any = None) -> LoadedStore:
    """Read a store: newest launch per trial, its spec's trials only, errors separated,
    typed parameters.

    ``columns`` limits the columns read (``key``, ``seed``, ``mode``, ``status``, ``error``
    and ``launch_id`` are always included). ``filters`` is a pyarrow Expression, DNF tuples
    as in :func:`pyarrow.parquet.read_table` (``[("bs_error", "<=", 0.1)]``) or a mapping
    ``{column: value or list of values}``. A path that is not a store, an unknown column, a
    bad filter or a part that cannot be read raises :class:`AnalysisInputError`: one line.
    """
    try:
        got = read_rows(store_dir, columns=columns, filters=filters)
    except StoreError as exc:
        raise AnalysisInputError(" ".join(exc.problems)) from None
    frame = got.table.to_pandas()
    frame = _apply_param_dtypes(frame, got.meta.get("params") or {})
    ok = frame["status"] == "ok" if "status" in frame.columns else pd.Series(True, index=frame.index)
    ok = ok.fillna(False).astype(bool)
    rows = frame[ok].reset_index(drop=True)
    errors = frame[~ok].reset_index(drop=True)
    return LoadedStore(got.path, got.spec, got.meta, rows, errors, got.n_parts, got.n_superseded,
                       got.launches, got.n_foreign)


def load(store_dir: str | Path, columns: Sequence[str] | None = None, filters: Any = None,
         include_errors: bool = False) -> pd.DataFrame:
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
    frame.attrs.update(n_error_rows=len(store.errors), n_error_trials=store.n_trials_error,
                       n_superseded=store.n_superseded, n_foreign=store.n_foreign,
                       n_parts=store.n_parts)
    return frame


def load_errors(store_dir: str | Path, columns: Sequence[str] | None = None,
                filters: Any = None) -> pd.DataFrame:
    """The error rows of a store (newest launch per trial), with their parameters and messages."""
    return read_store(store_dir, columns=columns, filters=filters).errors


def load_store_meta(store_dir: str | Path) -> dict:
    """``store.json``: format, experiment, declared parameters and their description."""
    try:
        return read_meta(store_paths(store_dir))
    except StoreError as exc:
        raise AnalysisInputError(" ".join(exc.problems)) from None


def load_params(store_dir: str | Path) -> Vocabulary:
    """The declared parameters of a store, in declaration order, with its description: the
    axes that tables and figures may group by or must pool (their ``params=`` argument)."""
    return Vocabulary.of_meta(load_store_meta(store_dir))


def load_spec(store_dir: str | Path) -> dict:
    """``spec.json``: name, experiment, fixed parameters, grid, seeds."""
    try:
        return read_spec(store_paths(store_dir))
    except StoreError as exc:
        raise AnalysisInputError(" ".join(exc.problems)) from None


def part_files(store_dir: str | Path) -> list[Path]:
    """Visible parts in name order: launch id, then chunk number."""
    try:
        return _part_files(store_paths(store_dir))
    except StoreError as exc:
        raise AnalysisInputError(" ".join(exc.problems)) from None
