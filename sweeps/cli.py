"""The ``insitu`` command line: run sweeps, inspect and repair stores, analyse results.

Exit status: 0 on success, 2 for bad input (one ``insitu: error:`` line per problem, and
nothing written), 130 when interrupted (the store keeps only whole parts), 141 when the
reader of the output went away (``insitu ... | head``: no traceback), 1 for anything else.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from sweeps.exceptions import InputError

EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it

DESCRIPTION = "Run sweeps of photonic-network trials, inspect and repair stores, analyse results."
EPILOG = """examples:
  insitu specs                              list the shipped specs
  insitu run quick --dry-run                count trials and estimate the time
  insitu run quick                          run it into results/quick (rerun to resume)
  insitu run my-spec.toml --out results/x   run your own spec
  insitu params classify                    every parameter a spec may set
  insitu status results/quick               done / error / pending per axis value
  insitu summary results/quick              means and 95 % intervals over seeds
  insitu figures results/quick              figures as PNG and PDF
  insitu report results/quick               one HTML page

insitu COMMAND --help describes one command."""


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line and exit status 2."""

    def error(self, message: str):
        message += _choice_suggestion(message)
        print(f"insitu: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _choice_suggestion(message: str) -> str:
    """`` (did you mean 'x'?)`` for argparse's "invalid choice: 'y' (choose from ...)"."""
    import re

    from sweeps.exceptions import did_you_mean

    match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if not match:
        return ""
    return did_you_mean(match.group(1), re.findall(r"'([^']*)'", match.group(2)))


def _verbosity_options() -> argparse.ArgumentParser:
    """-q / -v, accepted before or after the command (``insitu -q run ...``, ``run ... -q``)."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1,
                       default=argparse.SUPPRESS,
                       help="only warnings and errors: no start line, no progress, no Ray notices")
    group.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1,
                       default=argparse.SUPPRESS,
                       help="debug messages, and Ray's own information and notices")
    return options


def build_parser() -> argparse.ArgumentParser:
    from sweeps import __version__

    common = _verbosity_options()
    parser = _Parser(prog="insitu", description=DESCRIPTION, epilog=EPILOG, parents=[common],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"insitu {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                     metavar="COMMAND")
    # every command accepts -q / -v too (after the command name)
    _add_parser = commands.add_parser
    commands.add_parser = lambda *a, **k: _add_parser(*a, parents=[common], **k)

    run = commands.add_parser("run", help="run (or resume, or extend) a sweep spec")
    run.add_argument("spec", help="sweep spec: a TOML file, or the name of a shipped spec "
                                  "(insitu specs lists them)")
    run.add_argument("--out", help="store directory (default: results/<spec name>)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the trial count and a time estimate; write nothing")
    run.add_argument("--no-pilot", action="store_true",
                     help="with --dry-run: validate and count only, skip the pilot trial")
    _add_execution_options(run)

    retry = commands.add_parser("retry-failed", help="rerun the trials whose rows are errors")
    retry.add_argument("store", help="store directory")
    _add_execution_options(retry)

    for name, text in (("status", "done / error / pending per axis value, rate and ETA"),
                       ("verify", "quarantine unreadable parts, report duplicate keys"),
                       ("compact", "merge all parts into one, dropping superseded rows")):
        commands.add_parser(name, help=text).add_argument("store", help="store directory")

    summary = commands.add_parser("summary", help="table of metrics by axes")
    summary.add_argument("store", help="store directory")
    summary.add_argument("--by", action="append", metavar="AXES",
                         help="group by these axes (comma-separated; repeatable; default: every "
                              "axis that varies; the others must be named with --pool)")
    _add_analysis_options(summary, out="write the table to this file instead of printing it")
    summary.add_argument("--format", dest="fmt", choices=("text", "csv", "md", "json"),
                         default="text", help="output format (default: text)")
    tolerance = commands.add_parser(
        "tolerance", help="error tolerance per mode: where the metric falls DROP below its error-free value")
    tolerance.add_argument("store", help="store directory")
    tolerance.add_argument("--axis", required=True, help="the error axis (e.g. bs_error)")
    tolerance.add_argument("--drop", type=_positive_float, default=0.05,
                           help="drop in the metric's units (default 0.05: 5 points of accuracy)")
    tolerance.add_argument("--relative", action="store_true",
                           help="DROP is a fraction of the error-free value instead")
    _add_analysis_options(tolerance, out="write the table to this file instead of printing it")
    tolerance.add_argument("--format", dest="fmt", choices=("text", "csv", "md", "json"),
                           default="text", help="output format (default: text)")
    tolerance.add_argument("--figure", metavar="STEM",
                           help="also draw the tolerance against a second axis: STEM.png, STEM.pdf")
    tolerance.add_argument("--against", metavar="AXIS",
                           help="the figure's x axis (default: the first other axis that varies)")
    tolerance.add_argument("--resamples", type=_positive_int, default=2000, metavar="N",
                           help="bootstrap resamples over seeds (default 2000)")
    figures = commands.add_parser("figures", help="draw the store's figures")
    figures.add_argument("store", help="store directory")
    _add_analysis_options(figures, out="output directory (default: STORE/figures)")
    report = commands.add_parser("report", help="write a report of the store")
    report.add_argument("store", help="store directory")
    _add_analysis_options(report, out="output file (default: STORE/report.html)")

    commands.add_parser("specs", help="list the shipped specs, one line each")
    params = commands.add_parser("params", help="an experiment's parameters: type, allowed "
                                                "values, default, meaning")
    params.add_argument("experiment", nargs="?", help="experiment (default: list them)")
    return parser


def _add_analysis_options(parser: argparse.ArgumentParser, out: str) -> None:
    parser.add_argument("--where", metavar="EXPR",
                        help="keep rows matching this pandas query, e.g. \"topology == 'triangular' "
                             "and tap_noise == 0\"")
    parser.add_argument("--metric", help="metric column (default: the experiment's headline metric)")
    parser.add_argument("--pool", action="append", metavar="AXES",
                        help="average over these axes per seed, and say so (comma-separated; repeatable)")
    parser.add_argument("--out", help=out)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _add_execution_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("ray", "serial"), default="ray",
                        help="where trials run (default: ray)")
    parser.add_argument("--workers", type=_positive_int, metavar="N",
                        help="Ray actors, one CPU each (default: spec, else every CPU)")
    parser.add_argument("--address", metavar="ADDR",
                        help="attach to this Ray cluster (default: spec, RAY_ADDRESS, "
                             "else an embedded local Ray on 127.0.0.1)")
    parser.add_argument("--force", action="store_true",
                        help="start an embedded Ray of more than 4 workers per CPU")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``insitu`` command line; returns the exit status."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not in the flush at exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    _log_to_stderr(getattr(args, "verbosity", 0))
    try:
        return _dispatch(args)
    except InputError as exc:
        for problem in exc.problems:
            print(f"insitu: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("insitu: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """After the reader of stdout went away: point stdout at /dev/null, so that the flush
    at exit does not raise again."""
    import os

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return  # not a real file (a test's capture): nothing will flush at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record is emitted."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _log_to_stderr(verbosity: int = 0) -> None:
    """Messages of the sweeps package (a lost worker, say) go to stderr, one line each.

    The level follows -q (warnings only) and -v (debug); an embedded local Ray takes its
    own level from it (``sweeps.ray_backend``).
    """
    logger = logging.getLogger("sweeps")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("insitu: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel({-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[verbosity])


def _dispatch(args: argparse.Namespace) -> int:
    from sweeps import launch, maintenance

    if args.command in ("run", "retry-failed"):
        quiet = getattr(args, "verbosity", 0) < 0
        if getattr(args, "no_pilot", False) and not args.dry_run:
            raise InputError("--no-pilot only applies to a dry run: add --dry-run, or drop it")
        options = launch.LaunchOptions(backend=args.backend, workers=args.workers,
                                       address=args.address,
                                       dry_run=getattr(args, "dry_run", False),
                                       pilot=not getattr(args, "no_pilot", False),
                                       quiet=quiet, force=args.force)
        if args.command == "run":
            from sweeps.catalog import resolve_spec

            return launch.run_spec_file(str(resolve_spec(args.spec)), args.out, options)
        return launch.retry_failed(args.store, options)
    if args.command in ("specs", "params"):
        from sweeps import catalog

        print(catalog.specs_text() if args.command == "specs"
              else catalog.params_text(args.experiment))
        return 0
    if args.command == "status":
        print(maintenance.status_text(args.store))
        _print_stale_outputs(args.store, sys.stdout)
        return 0
    if args.command == "verify":
        print(maintenance.verify(args.store))
        return 0
    if args.command == "compact":
        print(maintenance.compact(args.store))
        return 0
    return _analysis(args)


def _print_stale_outputs(store: str, stream) -> None:
    """Figures and reports made from an earlier state of the store, one line each."""
    from analysis.exceptions import AnalysisInputError
    from analysis.outputs import stale_notices

    try:
        notices = stale_notices(store)
    except AnalysisInputError:
        return
    for line in notices:
        print(f"stale output: {line}", file=stream)


def _axes_list(groups) -> list[str]:
    return [a.strip() for group in groups or [] for a in group.split(",") if a.strip()]


def _analysis(args: argparse.Namespace) -> int:
    """``summary``, ``tolerance``, ``figures`` and ``report``: delegated to the analysis package."""
    from analysis.commands import (figures_command, report_command, summary_command,
                                   tolerance_command)
    from analysis.exceptions import AnalysisInputError

    common = {"where": args.where, "metric": args.metric, "pool": _axes_list(args.pool)}
    notices: list[str] = []
    try:
        if args.command == "summary":
            by = _axes_list(args.by)
            print(summary_command(args.store, by or None, fmt=args.fmt, out=args.out, **common))
        elif args.command == "tolerance":
            print(tolerance_command(args.store, args.axis, args.drop, relative=args.relative,
                                    fmt=args.fmt, out=args.out, figure=args.figure,
                                    against=args.against, n_resamples=args.resamples, **common))
        elif args.command == "figures":
            for path in figures_command(args.store, args.out, notices=notices, **common):
                print(path)
        else:
            print(report_command(args.store, args.out, notices=notices, **common))
    except AnalysisInputError as exc:
        print(f"insitu: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for line in notices:
        print(f"insitu: note: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
