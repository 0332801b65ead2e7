"""The ``insitu`` command line: run sweeps, inspect and repair stores, analyse results.

Each room registers its own subcommands, with their options and handlers: the sweep
application (:mod:`insitu.sweeps.app.commands`: ``run``, ``retry-failed``, ``specs``,
``params``), the store (:mod:`insitu.sweeps.store.commands`: ``status``, ``verify``,
``compact``, ``export``) and analysis (:mod:`insitu.analysis.cli`: ``summary``, ``tolerance``,
``figures``, ``report``). Registering imports nothing heavy: a handler imports what it runs.

Exit status: 0 on success; 2 for bad input (one ``insitu: error:`` line per problem, and
nothing written); 3 when ``run`` or ``retry-failed`` completed but some trials ended in an
error row (stored: ``insitu retry-failed`` reruns them), so that scripts and Slurm notice;
130 when interrupted (the store keeps only whole parts); 141 when the reader of the
output went away (``insitu ... | head``: no traceback); 1 for anything else (a full disk,
in any command: one line, and every file written whole or not at all).
"""

from __future__ import annotations

import argparse
import errno
import logging
import re
import sys
from typing import Sequence

from insitu.errors import InputError, did_you_mean

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it

DESCRIPTION = "Run sweeps of photonic-network trials, inspect and repair stores, analyse results."
EPILOG = """examples:
  insitu specs                              list the shipped specs
  insitu run quick --dry-run                count trials and estimate the time
  insitu run quick                          run it into results/quick (rerun to resume)
  insitu run my-spec.toml --out results/x   run your own spec
  insitu run quick --set seeds=32           the spec with 32 seeds (--set KEY=VALUE)
  insitu params classify                    every parameter a spec may set
  insitu status results/quick               done / error / pending per axis value
  insitu summary results/quick              means and 95 % intervals over seeds
  insitu figures results/quick              figures as PNG and PDF
  insitu report results/quick               one HTML page
  insitu export results/quick               the finished rows as one CSV file

insitu COMMAND --help describes one command."""


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line and exit status 2."""

    def error(self, message: str):
        message += _choice_suggestion(message)
        print(f"insitu: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _choice_suggestion(message: str) -> str:
    """`` (did you mean 'x'?)`` for argparse's "invalid choice: 'y' (choose from ...)"."""
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


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (for every room's options)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser, every room's subcommands registered on it."""
    from insitu import __version__
    from insitu.analysis import cli as analysis_commands
    from insitu.sweeps.app import commands as app_commands
    from insitu.sweeps.store import commands as store_commands

    common = _verbosity_options()
    parser = _Parser(prog="insitu", description=DESCRIPTION, epilog=EPILOG, parents=[common],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"insitu {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                     metavar="COMMAND")

    def add_command(name: str, **kwargs) -> argparse.ArgumentParser:
        # every command accepts -q / -v too (after the command name)
        return commands.add_parser(name, parents=[common], **kwargs)

    app_commands.register_run(add_command)
    store_commands.register(add_command)
    analysis_commands.register(add_command)
    app_commands.register_catalog(add_command)
    return parser


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
        return args.handler(args)
    except InputError as exc:
        for problem in exc.problems:
            print(f"insitu: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("insitu: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        print(f"insitu: error: the disk is full{where} ({exc.strerror or exc}); every file is "
              "written whole or not at all: free some space and run the command again",
              file=sys.stderr)
        return EXIT_FAILED


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
    """Messages of the insitu packages (a lost worker, say) go to stderr, one line each.

    The level follows -q (warnings only) and -v (debug); an embedded local Ray takes its
    own level from it (:mod:`insitu.sweeps.engine.ray_backend`).
    """
    logger = logging.getLogger("insitu")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("insitu: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel({-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[verbosity])


if __name__ == "__main__":
    sys.exit(main())
