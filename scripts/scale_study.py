"""The scale study's numbers and figures: how tolerances scale with the chip size N.

Reads a ``classify`` store whose task axis is a size family (sweeps/specs/scale.toml:
``digits4`` ... ``digits64``; every row carries ``n_ports``) and prints, per topology and
loss setting (every other axis that varies):

1. the error-free accuracy of every mode and size (mean over seeds, 95 % t interval), at
   the error axis's error-free end;
2. the tolerance of every mode along ``--axis`` (default ``bs_error``): where its mean over
   seeds falls ``--drop`` below its own error-free value (analysis.tolerance), with its
   95 % bootstrap interval over seeds;
3. the fitted exponent ``p`` of ``tolerance ~ a N^p`` per mode, with its 95 % bootstrap
   interval over seeds (analysis.scaling.fit_exponents; sizes whose tolerance or interval
   is not reached on the grid are left out and listed);
4. where in situ training's advantage over each offline mode starts: the smallest error at
   which the paired gap ``insitu - mode`` (same chip and seed) has a 95 % t interval above 0.

With ``--figures DIR`` it also writes, per value of the other axes (loss setting),
``<prefix>_tolerance_vs_ports[...]`` (log-log, one panel per topology) and
``<prefix>_accuracy_vs_<axis>[...]`` (one panel per size, one row per topology); the prefix
is ``scale`` unless ``--prefix`` says otherwise.

usage: python scripts/scale_study.py STORE [--axis bs_error] [--drop 0.05] [--where EXPR]
       [--figures DIR] [--prefix scale] [--resamples 2000]
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from insitu.analysis.commands import apply_where
from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.figures import metric_vs_axis, save_figure, tolerance_vs_axis
from insitu.analysis.grouping import value_text
from insitu.analysis.vocabulary import vocabulary
from insitu.analysis.load import read_store
from insitu.analysis.scaling import SIZE_COLUMN, advantage_onset, fit_exponents, size_axis, tolerance_vs_size
from insitu.analysis.summary import format_table, summarize
from insitu.analysis.tolerance import tolerance_axes, tolerance_header, tolerance_text

METRIC = "test_accuracy"
IN_SITU = ("insitu", "analog")  # the modes that train on the chip; the others are offline


def _interval(row) -> str:
    return f"{row['mean']:.3f} ({row['ci_low']:.3f}, {row['ci_high']:.3f})"


def error_free_table(rows: pd.DataFrame, axis: str, params) -> pd.DataFrame:
    """Mean test accuracy per size, mode and other axis at the error-free end of ``axis``."""
    x0 = vocabulary(params).error_order(axis, rows[axis].unique())[0]
    at0 = rows[rows[axis] == x0]
    table = summarize(at0, metrics=[METRIC], params=params)
    by = table.attrs["by"]
    table["accuracy"] = table.apply(_interval, axis=1)
    wide = table.pivot_table(index=[b for b in by if b != SIZE_COLUMN] + [SIZE_COLUMN], columns="mode",
                             values="accuracy", aggfunc="first", sort=False)
    return wide.reset_index()


def exponent_display(fits: pd.DataFrame) -> pd.DataFrame:
    shown = fits[[*fits.attrs["by"], "mode"]].copy()
    shown["exponent p"] = [f"{p:+.2f}" if p == p else "no fit" for p in fits["exponent"]]
    shown["95 % interval"] = [f"({lo:+.2f}, {hi:+.2f})" if lo == lo else "-"
                              for lo, hi in zip(fits["ci_low"], fits["ci_high"])]
    shown["a (t = a N^p)"] = [f"{a:.3g}" if a == a else "-" for a in fits["prefactor"]]
    shown["sizes fitted"] = fits["sizes_fitted"].replace("", "-")
    shown["left out"] = fits["sizes_left_out"].replace("", "-")
    shown["resamples dropped"] = [f"{d} of {n}" for d, n in zip(fits["n_dropped"], fits["n_resamples"])]
    return shown


def tolerance_display(table: pd.DataFrame) -> pd.DataFrame:
    by = tolerance_axes(table)
    shown = table[[*by, "mode"]].copy()
    shown["error-free"] = [f"{v:.3f}" for v in table["baseline"]]
    texts = [tolerance_text(r) for _, r in table.iterrows()]
    shown["tolerance"] = [t for t, _ in texts]
    shown["95 % interval"] = [i for _, i in texts]
    return shown


def onset_display(onsets: pd.DataFrame, axis: str) -> pd.DataFrame:
    shown = onsets.drop(columns=["gap", "ci_low", "ci_high", "n", "onset", "sustained"]).copy()
    shown[f"first at {axis}"] = [value_text(v) if v == v else "never on the grid"
                                 for v in onsets["onset"]]
    shown[f"held from {axis}"] = [value_text(v) if v == v else "not to the grid's end"
                                  for v in onsets["sustained"]]
    shown["gap there (95 % t)"] = [f"{g:+.3f} ({lo:+.3f}, {hi:+.3f})" if g == g else "-"
                                   for g, lo, hi in zip(onsets["gap"], onsets["ci_low"], onsets["ci_high"])]
    return shown


def write_figures(rows: pd.DataFrame, table: pd.DataFrame, axis: str, out: str, params,
                  prefix: str = "scale") -> list:
    """Per value of the axes other than size and topology: the two scale figures, their
    file names starting with ``prefix``."""
    by = tolerance_axes(table)
    facet = "topology" if "topology" in by else None
    rest = [b for b in by if b not in (SIZE_COLUMN, facet)]
    written = []
    combos = table[rest].drop_duplicates().to_dict("records") if rest else [{}]
    for combo in combos:
        tpart, rpart = table, rows
        for name, value in combo.items():
            tpart, rpart = tpart[tpart[name] == value], rpart[rpart[name] == value]
        suffix = "".join(f"_{name}{value_text(value)}" for name, value in combo.items())
        at = ", ".join(f"{vocabulary(params).label(k)} = {value_text(v)}" for k, v in combo.items())
        figs = {f"{prefix}_tolerance_vs_ports": tolerance_vs_axis(tpart, SIZE_COLUMN, facet=facet,
                                                              log_x=True, log_y=True, params=params),
                f"{prefix}_accuracy_vs_{axis}": metric_vs_axis(rpart, axis, facet=SIZE_COLUMN, row=facet,
                                                            metric=METRIC, pool=rest, params=params)}
        for stem, fig in figs.items():
            if at:  # the filtered value, named in the title
                fig.suptitle(f"{fig.get_suptitle()}\nat {at}", fontsize="medium")
            written += save_figure(fig, f"{out}/{stem}{suffix}")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--axis", default="bs_error", help="error axis of the tolerance (default bs_error)")
    parser.add_argument("--drop", type=float, default=0.05, help="accuracy drop of the tolerance (default 0.05)")
    parser.add_argument("--where", help="pandas query selecting rows first")
    parser.add_argument("--figures", metavar="DIR", help="write the scale figures (PNG and PDF) here")
    parser.add_argument("--prefix", default="scale", help="start of the figures' file names (default scale)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples over seeds")
    args = parser.parse_args(argv)
    try:
        store = read_store(args.store)
        if args.where:
            store = apply_where(store, args.where)
        rows = store.rows
        if not len(rows):
            raise AnalysisInputError(f"store {args.store} has no successful rows")
        params = store.params
        sized, sized_params, replaced = size_axis(rows, params)
        if replaced is None:
            raise AnalysisInputError("no axis of this store varies in n_ports (a task family of several sizes)")
        table = tolerance_vs_size(rows, args.axis, args.drop, METRIC, n_resamples=args.resamples,
                                  params=params)
        fits = fit_exponents(table)
        offline = [m for m in rows["mode"].dropna().unique() if m not in IN_SITU]
        onsets = advantage_onset(rows, args.axis, references=offline, params=params)
        print(f"error-free accuracy ({METRIC} at {args.axis} = "
              f"{value_text(vocabulary(params).error_order(args.axis, rows[args.axis].unique())[0])}): mean over "
              f"seeds (95 % t interval); n_ports stands for {replaced}")
        print(format_table(error_free_table(sized, args.axis, sized_params)))
        print()
        print(tolerance_header(table))
        print(format_table(tolerance_display(table)))
        print()
        print("fitted exponent p of tolerance ~ a N^p (least squares in log-log over the sizes "
              "fitted); 95 % percentile bootstrap over seeds (the tolerance's resamples)")
        print(format_table(exponent_display(fits)))
        print()
        print(f"where insitu starts to beat each mode: the first {args.axis} whose paired gap "
              "insitu - mode (same chip and seed) has a 95 % t interval over seeds above 0, and "
              "the smallest from which it stays above 0 at every larger grid value (held)")
        print(format_table(onset_display(onsets, args.axis)))
        if args.figures:
            for path in write_figures(sized, table, args.axis, args.figures, sized_params, args.prefix):
                print(f"wrote {path}")
    except AnalysisInputError as exc:
        print(f"scale_study: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
