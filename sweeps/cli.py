"""The ``insitu`` command line: run sweeps, inspect and repair stores, analyse results.

Exit status: 0 on success, 2 for bad input (one ``insitu: error:`` line per problem, and
nothing written), 130 when interrupted (the store keeps only whole parts), 1 for anything
else.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from sweeps.errors import InputError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line and exit status 2."""

    def error(self, message: str):
        print(f"insitu: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="insitu", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run (or resume, or extend) a sweep spec")
    run.add_argument("spec", help="sweep spec (TOML)")
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
                         help="group by these axes (comma-separated; repeatable)")
    figures = commands.add_parser("figures", help="draw the store's figures")
    figures.add_argument("store", help="store directory")
    figures.add_argument("--out", help="output directory")
    report = commands.add_parser("report", help="write a report of the store")
    report.add_argument("store", help="store directory")
    report.add_argument("--out", help="output file")
    return parser


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
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    _log_to_stderr()
    try:
        return _dispatch(args)
    except InputError as exc:
        for problem in exc.problems:
            print(f"insitu: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("insitu: interrupted", file=sys.stderr)
        return 130


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


def _log_to_stderr() -> None:
    """Warnings of the sweeps package (a lost worker, say) go to stderr, one line each."""
    logger = logging.getLogger("sweeps")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("insitu: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _dispatch(args: argparse.Namespace) -> int:
    from sweeps import launch, maintenance

    if args.command in ("run", "retry-failed"):
        if getattr(args, "no_pilot", False) and not args.dry_run:
            raise InputError("--no-pilot only applies to a dry run: add --dry-run, or drop it")
        options = launch.LaunchOptions(backend=args.backend, workers=args.workers,
                                       address=args.address,
                                       dry_run=getattr(args, "dry_run", False),
                                       pilot=not getattr(args, "no_pilot", False),
                                       force=args.force)
        if args.command == "run":
            return launch.run_spec_file(args.spec, args.out, options)
        return launch.retry_failed(args.store, options)
    if args.command == "status":
        print(maintenance.status_text(args.store))
        return 0
    if args.command == "verify":
        print(maintenance.verify(args.store))
        return 0
    if args.command == "compact":
        print(maintenance.compact(args.store))
        return 0
    return _analysis(args)


def _analysis(args: argparse.Namespace) -> int:
    """``summary``, ``figures`` and ``report``: delegated to the analysis package."""
    from analysis.commands import figures_command, report_command, summary_command
    from analysis.errors import AnalysisInputError

    try:
        if args.command == "summary":
            by = [a.strip() for group in args.by or [] for a in group.split(",") if a.strip()]
            print(summary_command(args.store, by or None))
        elif args.command == "figures":
            for path in figures_command(args.store, args.out):
                print(path)
        else:
            print(report_command(args.store, args.out))
    except AnalysisInputError as exc:
        print(f"insitu: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
