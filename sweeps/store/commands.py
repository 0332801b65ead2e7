"""The store's commands: ``insitu status``, ``verify``, ``compact`` and ``export``.

``export`` lives here, not with analysis: it writes the rows the store's reading rules
resolve (:func:`insitu.sweeps.store.read_rows`), no statistics, and pyarrow writes CSV and
Parquet itself, so the rows keep their stored types (pandas would turn an integer or
boolean column holding nulls into floats or objects).
"""

from __future__ import annotations

import argparse
import json


def register(add_command) -> None:
    """Add the store's subcommands (``add_command`` is the parser's ``add_parser``)."""
    for name, text, handler in (
            ("status", "done / error / pending per axis value, rate and ETA", _status),
            ("verify", "quarantine unreadable or foreign parts, report duplicate keys", _verify),
            ("compact", "merge all parts into one, dropping superseded rows", _compact)):
        parser = add_command(name, help=text)
        parser.add_argument("store", help="store directory")
        if name == "status":
            parser.add_argument("--format", dest="fmt", choices=("text", "json"), default="text",
                                help="text (default), or one JSON object: counts overall and per "
                                     "axis value, running or not, rate, ETA (docs/store.md)")
        parser.set_defaults(handler=handler)

    export = add_command("export", help="write the resolved rows (finished trials, newest "
                                        "launch, the spec's trials) as CSV or Parquet")
    export.add_argument("store", help="store directory")
    export.add_argument("--format", dest="fmt", choices=("csv", "parquet"),
                        help="csv or parquet (default: from --out's suffix, else csv)")
    export.add_argument("--out", metavar="FILE",
                        help="file to write (default: STORE/export.csv or STORE/export.parquet; "
                             "- writes CSV to standard output)")
    export.set_defaults(handler=_export)


def _status(args: argparse.Namespace) -> int:
    from insitu.sweeps.store.maintenance import status_data, status_text
    from insitu.sweeps.store.outputs import stale_notices

    if args.fmt == "json":
        data = status_data(args.store)
        data["stale_outputs"] = stale_notices(args.store)
        print(json.dumps(data, indent=1, allow_nan=False))
        return 0
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


def _export(args: argparse.Namespace) -> int:
    from insitu.sweeps.store.export import export

    line = export(args.store, args.fmt, args.out)
    if line:
        print(line)
    return 0
