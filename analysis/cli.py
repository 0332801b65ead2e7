"""Analysis' commands on the ``insitu`` command line: ``summary``, ``tolerance``,
``figures`` and ``report``, with their options. Registering imports nothing heavy; each
handler imports what it runs (:mod:`insitu.analysis.commands`)."""

from __future__ import annotations

import argparse
import sys

from insitu.cli import positive_float, positive_int


def register(add_command) -> None:
    """Add analysis' subcommands (``add_command`` is the parser's ``add_parser``)."""
    summary = add_command("summary", help="table of metrics by axes")
    summary.add_argument("store", help="store directory")
    summary.add_argument("--by", action="append", metavar="AXES",
                         help="group by these axes (comma-separated; repeatable; default: every "
                              "axis that varies; the others must be named with --pool)")
    _add_common(summary, out="write the table to this file instead of printing it")
    _add_format(summary, "latex")
    summary.set_defaults(handler=_counted(_summary))

    tolerance = add_command(
        "tolerance", help="error tolerance per mode: where the metric falls DROP below its error-free value")
    tolerance.add_argument("store", help="store directory")
    tolerance.add_argument("--axis", required=True, help="the error axis (e.g. bs_error)")
    tolerance.add_argument("--drop", type=positive_float, default=0.05,
                           help="drop in the metric's units (default 0.05: 5 points of accuracy)")
    tolerance.add_argument("--relative", action="store_true",
                           help="DROP is a fraction of the error-free value instead")
    _add_common(tolerance, out="write the table to this file instead of printing it")
    _add_format(tolerance)
    tolerance.add_argument("--figure", metavar="STEM",
                           help="also draw the tolerance against a second axis: STEM.png, STEM.pdf")
    tolerance.add_argument("--against", metavar="AXIS",
                           help="the figure's x axis (default: the first other axis that varies)")
    tolerance.add_argument("--resamples", type=positive_int, default=2000, metavar="N",
                           help="bootstrap resamples over seeds (default 2000)")
    tolerance.set_defaults(handler=_counted(_tolerance))

    figures = add_command("figures", help="draw the store's figures")
    figures.add_argument("store", help="store directory")
    _add_common(figures, out="output directory (default: STORE/figures)")
    figures.add_argument("--width", metavar="W",
                         help="figure width: single (3.5 in), double (7.16 in) or inches; fonts "
                              "and lines shrink with it (default: as drawn, up to 13 in)")
    figures.set_defaults(handler=_counted(_figures))

    compare = add_command(
        "compare", help="any contrast: modes on the same chips, two values of an axis, or both",
        description="insitu compare STORE A B: mode A minus mode B on the same chips; "
                    "insitu compare STORE --along AXIS REF VALUE: the metric at VALUE minus at REF, "
                    "per mode; both: how the gap A - B changes along the axis (difference in "
                    "differences). Paired over chips where they are shared, Welch otherwise.")
    compare.add_argument("store", help="store directory")
    compare.add_argument("modes", nargs="*", metavar="MODE", help="two modes, A B (A minus B)")
    compare.add_argument("--along", nargs=3, metavar=("AXIS", "REF", "VALUE"),
                         help="an axis and two of its values: VALUE minus REF")
    compare.add_argument("--holm", action="store_true",
                         help="adjust p-values over the table's rows (Holm) and mark with them")
    _add_common(compare, out="write the table to this file instead of printing it")
    _add_format(compare)
    compare.set_defaults(handler=_counted(_compare))

    power = add_command("power", help="seeds per cell for an interval of a given half-width")
    power.add_argument("store", help="store directory")
    power.add_argument("--half-width", type=positive_float, required=True, metavar="H",
                       help="the half-width wanted, in the metric's units (0.01: one point of accuracy)")
    power.add_argument("--contrast", metavar="A-B", help="size the paired gap of two modes instead")
    _add_common(power, out="write the table to this file instead of printing it")
    _add_format(power)
    power.set_defaults(handler=_counted(_power))

    report = add_command("report", help="write a report of the store")
    report.add_argument("store", help="store directory")
    _add_common(report, out="output file (default: STORE/report.html)")
    report.set_defaults(handler=_counted(_report))


def _counted(handler):
    """``handler`` with numpy's floating-point warnings silenced: every NaN or infinite
    value is counted and named in the output itself (``n_nonfinite``), not left to a
    RuntimeWarning on standard error."""
    def run(args: argparse.Namespace) -> int:
        import warnings

        import numpy as np

        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return handler(args)
    return run


def _add_common(parser: argparse.ArgumentParser, out: str) -> None:
    parser.add_argument("--where", metavar="EXPR",
                        help="keep rows matching this pandas query, e.g. \"topology == 'triangular' "
                             "and tap_noise == 0\"")
    parser.add_argument("--metric", help="metric column (default: the experiment's headline metric)")
    parser.add_argument("--pool", action="append", metavar="AXES",
                        help="average over these axes per seed, and say so (comma-separated; repeatable)")
    parser.add_argument("--out", help=out)


def _add_format(parser: argparse.ArgumentParser, *extra: str) -> None:
    parser.add_argument("--format", dest="fmt", choices=("text", "csv", "md", "json", *extra),
                        default="text", help="output format (default: text"
                        + ("; latex: booktabs tables with captions" if "latex" in extra else "") + ")")


def axes_list(groups) -> list[str]:
    """Comma-separated, repeatable axis options as one list."""
    return [a.strip() for group in groups or [] for a in group.split(",") if a.strip()]


def _common(args: argparse.Namespace) -> dict:
    return {"where": args.where, "metric": args.metric, "pool": axes_list(args.pool)}


def _summary(args: argparse.Namespace) -> int:
    from insitu.analysis.commands import summary_command

    print(summary_command(args.store, axes_list(args.by) or None, fmt=args.fmt, out=args.out,
                          **_common(args)))
    return 0


def _tolerance(args: argparse.Namespace) -> int:
    from insitu.analysis.commands import tolerance_command

    print(tolerance_command(args.store, args.axis, args.drop, relative=args.relative,
                            fmt=args.fmt, out=args.out, figure=args.figure, against=args.against,
                            n_resamples=args.resamples, **_common(args)))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from insitu.analysis.exceptions import AnalysisInputError
    from insitu.analysis.questions import compare_command

    if len(args.modes) not in (0, 2):
        raise AnalysisInputError(f"name two modes (A B) or none, not {len(args.modes)}")
    a, b = (args.modes + [None, None])[:2] if args.modes else (None, None)
    print(compare_command(args.store, a, b, along=args.along, holm=args.holm, fmt=args.fmt,
                          out=args.out, **_common(args)))
    return 0


def _power(args: argparse.Namespace) -> int:
    from insitu.analysis.questions import power_command

    print(power_command(args.store, args.half_width, contrast=args.contrast, fmt=args.fmt,
                        out=args.out, **_common(args)))
    return 0


def _figures(args: argparse.Namespace) -> int:
    from insitu.analysis.commands import figures_command

    notices: list[str] = []
    for path in figures_command(args.store, args.out, notices=notices, width=args.width, **_common(args)):
        print(path)
    _notes(notices)
    return 0


def _report(args: argparse.Namespace) -> int:
    from insitu.analysis.commands import report_command

    notices: list[str] = []
    print(report_command(args.store, args.out, notices=notices, **_common(args)))
    _notes(notices)
    return 0


def _notes(notices: list[str]) -> None:
    for line in notices:
        print(f"insitu: note: {line}", file=sys.stderr)
