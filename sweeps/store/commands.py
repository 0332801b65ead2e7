"""The store's commands: ``insitu status``, ``verify`` and ``compact``."""

from __future__ import annotations

import argparse


def register(add_command) -> None:
    """Add the store's subcommands (``add_command`` is the parser's ``add_parser``)."""
    for name, text, handler in (
            ("status", "done / error / pending per axis value, rate and ETA", _status),
            ("verify", "quarantine unreadable or foreign parts, report duplicate keys", _verify),
            ("compact", "merge all parts into one, dropping superseded rows", _compact)):
        parser = add_command(name, help=text)
        parser.add_argument("store", help="store directory")
        parser.set_defaults(handler=handler)


def _status(args: argparse.Namespace) -> int:
    from insitu.sweeps.store.maintenance import status_text
    from insitu.sweeps.store.outputs import stale_notices

    print(status_text(args.store))
    for line in stale_notices(args.store):
        print(f"stale output: {line}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from insitu.sweeps.store.maintenance import verify

    print(verify(args.store))
    return 0


def _compact(args: argparse.Namespace) -> int:
    from insitu.sweeps.store.maintenance import compact

    print(compact(args.store))
    return 0
