"""The commands that answer a researcher's own questions: ``insitu compare`` (any contrast,
:mod:`insitu.analysis.contrasts`) and ``insitu power`` (seeds for a precision,
:mod:`insitu.analysis.precision`). Input is checked first (one line, exit 2, nothing
written), as for every analysis command (:mod:`insitu.analysis.command_io`)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

import pandas as pd

from insitu.analysis.command_io import (check_axes, check_format, check_metric, nonfinite_shown,
                                        open_store, records, usable_file, write_text)
from insitu.analysis.contrasts import axis_contrast, difference_in_differences, mode_contrast
from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.grouping import pooled_text, value_text
from insitu.analysis.precision import precision_table
from insitu.analysis.summary import format_table, to_markdown

__all__ = ["compare_command", "power_command"]

FIXED_TEST_SET = ("the test set is fixed: intervals are over chips, initial phases and data "
                  "orders, not over test sets")


def _axis_value(store, axis: str, text: str):
    """A value of ``axis`` as the rows hold it, from its command-line text."""
    kind = (store.meta.get("params") or {}).get(axis)
    try:
        value = {"float": float, "int": int, "bool": lambda t: {"true": True, "false": False}[t.lower()],
                 "str": str}.get(kind, str)(text)
    except (ValueError, KeyError):
        raise AnalysisInputError(f"--along {axis}: {text!r} is not a {kind} value") from None
    levels = store.rows[axis].dropna().unique().tolist()
    if value not in levels:
        raise AnalysisInputError(f"{axis} = {text} is not in the rows; they hold "
                                 + ", ".join(value_text(v) for v in sorted(levels, key=str)))
    return value


def _marked(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a ``*`` column: the interval excludes 0 (with Holm: adjusted p < 0.05)."""
    if not len(table):
        return table
    if "p_holm" in table.columns:
        mark = table["p_holm"] < 0.05
    else:
        mark = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    return table.assign(**{"*": mark.map({True: "*", False: ""})})


def compare_command(store_dir: str, a: str | None = None, b: str | None = None,
                    along: Sequence[str] | None = None, where: str | None = None,
                    metric: str | None = None, pool: Sequence[str] = (), holm: bool = False,
                    fmt: str = "text", out: str | None = None) -> str:
    """``insitu compare``: modes ``a − b`` on the same chips, two values of an axis
    (``along = (axis, reference, value)``: value − reference), or both (how the gap
    ``a − b`` changes along the axis)."""
    check_format(fmt)
    store = open_store(store_dir, where)
    if out is not None:
        usable_file(pathlib.Path(out))
    if (a is None) != (b is None):
        raise AnalysisInputError("name two modes (insitu compare STORE A B), or none with --along")
    if a is None and not along:
        raise AnalysisInputError("nothing to compare: name two modes (A B), an axis "
                                 "(--along AXIS REFERENCE VALUE), or both")
    if a is not None and a == b:
        raise AnalysisInputError(f"compare {a!r} with another mode, not with itself")
    metric = check_metric(store, metric)
    pool = check_axes(store, pool, "axis to pool")
    params, rows = store.params, store.rows
    if along:
        axis = along[0]
        check_axes(store, [axis])
        reference, value = (_axis_value(store, axis, t) for t in along[1:])
        if reference == value:
            raise AnalysisInputError(f"--along {axis}: the two values are the same")
        if a is not None:
            table = difference_in_differences(rows, a, b, axis, reference, value, metric, pool,
                                              holm_family=holm, params=params)
        else:
            table = axis_contrast(rows, axis, reference, value, metric, pool, holm_family=holm,
                                  params=params)
    else:
        table = mode_contrast(rows, a, b, metric, pool, holm_family=holm, params=params)
    designs = sorted(set(table["design"])) if len(table) else []
    explain = {"paired": "paired: a t interval over chips that ran both sides (same trial key, "
                         "or one stream key along a shared axis)",
               "Welch": "Welch: the two sides ran on other chips; Welch's interval over the "
                        "two groups of seeds"}
    pooled = pooled_text(rows, table.attrs.get("pooled", []), params)
    header = (f"{params.label(metric)} ({metric}): estimate and 95 % interval; "
              + "; ".join(explain[d] for d in designs)
              + (f"; {pooled}, averaged per seed" if pooled else "")
              + ("; * = Holm-adjusted p < 0.05 over the rows of this table" if holm else
                 "; * = the interval excludes 0, not corrected for multiple comparisons (--holm corrects)")
              + f"; {FIXED_TEST_SET}")
    left_out = int(table["n_nonfinite"].sum()) if len(table) else 0
    if left_out:
        header += (f"; {left_out} value{'s' if left_out != 1 else ''} NaN or infinite (a diverged "
                   "trial) left out of n (column n_nonfinite)")
    if fmt == "csv":
        return write_text(out, table.to_csv(index=False))
    if fmt == "json":
        return write_text(out, json.dumps({"store": str(store.path), "where": where, "statistic": header,
                                           "pooled_over": table.attrs.get("pooled", []),
                                           "rows": records(table)}, indent=1))
    shown = nonfinite_shown(_marked(table)).rename(
        columns={b_: params.label(b_) for b_ in table.attrs.get("by", [])})
    if fmt == "md":
        return write_text(out, (f"rows where `{where}`\n\n" if where else "") + f"**{header}**\n\n"
                          + to_markdown(shown))
    return write_text(out, (f"rows where {where}\n" if where else "") + header + "\n" + format_table(shown))


def power_command(store_dir: str, half_width: float, contrast: str | None = None,
                  where: str | None = None, metric: str | None = None, pool: Sequence[str] = (),
                  fmt: str = "text", out: str | None = None) -> str:
    """``insitu power``: seeds per cell for an interval of the given half-width, from the
    spread the store holds (``contrast = "A-B"``: of the paired gap of two modes)."""
    check_format(fmt)
    store = open_store(store_dir, where)
    if out is not None:
        usable_file(pathlib.Path(out))
    metric = check_metric(store, metric)
    pool = check_axes(store, pool, "axis to pool")
    pair = None
    if contrast is not None:
        parts = [p.strip() for p in contrast.replace("−", "-").split("-")]
        modes = store.rows["mode"].dropna().unique().tolist()
        if len(parts) != 2 or not all(parts) or any(p not in modes for p in parts):
            raise AnalysisInputError(f"--contrast {contrast!r}: expected A-B, two of the modes "
                                     f"{', '.join(map(str, modes))}")
        pair = (parts[0], parts[1])
    table = precision_table(store.rows, half_width, metric, pair, pool, params=store.params)
    pooled = pooled_text(store.rows, table.attrs.get("pooled", []), store.params)
    what = f"the paired gap {pair[0]} − {pair[1]}" if pair else "each mode's mean"
    header = (f"seeds for a 95 % t interval of half-width {half_width:g} on {what} of "
              f"{store.params.label(metric)}, from the spread over the seeds held (sd over seeds); "
              "a planning number: the spread is itself estimated"
              + (f"; {pooled}, averaged per seed" if pooled else "")
              + "; -1: the spread is unknown (fewer than 2 seeds)")
    if fmt == "csv":
        return write_text(out, table.to_csv(index=False))
    if fmt == "json":
        return write_text(out, json.dumps({"store": str(store.path), "where": where, "statistic": header,
                                           "rows": records(table)}, indent=1))
    shown = table.rename(columns={b_: store.params.label(b_) for b_ in table.attrs.get("by", [])})
    if fmt == "md":
        return write_text(out, f"**{header}**\n\n" + to_markdown(shown))
    return write_text(out, header + "\n" + format_table(shown))
