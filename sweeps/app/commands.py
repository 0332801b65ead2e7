"""The sweep application's commands: ``insitu run``, ``retry-failed``, ``specs``, ``params``."""

from __future__ import annotations

import argparse

from insitu.cli import positive_int
from insitu.errors import InputError


def register_run(add_command) -> None:
    """``run`` and ``retry-failed`` (``add_command`` is the parser's ``add_parser``)."""
    run = add_command("run", help="run (or resume, or extend) a sweep spec")
    run.add_argument("spec", help="sweep spec: a TOML file, or the name of a shipped spec "
                                  "(insitu specs lists them)")
    run.add_argument("--out", help="store directory (default: results/<spec name>)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the trial count and a time estimate; write nothing")
    run.add_argument("--no-pilot", action="store_true",
                     help="with --dry-run: validate and count only, skip the pilot trial")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override the spec (repeatable; values are TOML): P=V fixes a parameter, "
                          "P=V1,V2 or grid.P=V1,V2 makes it an axis, fixed.P=V is one value "
                          "whatever its commas, seeds=N, name=NAME, ray.S=V; validated as the "
                          "spec file and recorded in the store's spec")
    _add_execution_options(run)
    run.set_defaults(handler=_run)

    retry = add_command("retry-failed", help="rerun the trials whose rows are errors")
    retry.add_argument("store", help="store directory")
    _add_execution_options(retry)
    retry.set_defaults(handler=_run)


def register_catalog(add_command) -> None:
    """``specs``, ``params`` and ``cluster-example``."""
    specs = add_command("specs", help="list the shipped specs, one line each")
    specs.add_argument("--path", action="store_true",
                       help="print the folder that holds the shipped specs instead")
    specs.set_defaults(handler=_specs)
    example = add_command("cluster-example",
                          help="print a shipped cluster example (slurm, kuberay, ray-cluster) to adapt")
    example.add_argument("name", nargs="?", help="slurm, kuberay or ray-cluster (default: list them with their paths)")
    example.set_defaults(handler=_cluster_example)
    params = add_command("params", help="an experiment's parameters: type, allowed values, "
                                        "default, meaning; and its modes")
    params.add_argument("experiment", nargs="?", help="experiment (default: list them)")
    params.set_defaults(handler=_params)


def _add_execution_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("ray", "serial"), default="ray",
                        help="where trials run (default: ray)")
    parser.add_argument("--workers", type=positive_int, metavar="N",
                        help="Ray actors, one CPU each (default: spec, else every CPU)")
    parser.add_argument("--address", metavar="ADDR",
                        help="attach to this Ray cluster (default: spec, RAY_ADDRESS, "
                             "else an embedded local Ray on 127.0.0.1)")
    parser.add_argument("--force", action="store_true",
                        help="start an embedded Ray of more than 4 workers per CPU")
    parser.add_argument("--note", metavar="TEXT",
                        help="a note kept in this launch's record (launches.jsonl)")
    parser.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG",
                        help="a tag kept in this launch's record (repeatable)")


def _run(args: argparse.Namespace) -> int:
    from insitu.sweeps.app import launch
    from insitu.sweeps.app.catalog import resolve_spec
    from insitu.sweeps.app.options import LaunchOptions, check_labels

    quiet = getattr(args, "verbosity", 0) < 0
    dry_run = getattr(args, "dry_run", False)
    if getattr(args, "no_pilot", False) and not dry_run:
        raise InputError("--no-pilot only applies to a dry run: add --dry-run, or drop it")
    note, tags = check_labels(args.note, args.tags)
    overrides = tuple(getattr(args, "overrides", ()))
    options = LaunchOptions(backend=args.backend, workers=args.workers, address=args.address,
                            dry_run=dry_run, pilot=not getattr(args, "no_pilot", False),
                            quiet=quiet, force=args.force, note=note, tags=tags,
                            overrides=overrides)
    if args.command == "run":
        return launch.run_spec_file(str(resolve_spec(args.spec)), args.out, options)
    return launch.retry_failed(args.store, options)


def _specs(args: argparse.Namespace) -> int:
    from insitu.sweeps.app.catalog import SPECS_DIR, specs_text

    print(SPECS_DIR if args.path else specs_text())
    return 0


def _cluster_example(args: argparse.Namespace) -> int:
    from insitu.sweeps.app.catalog import cluster_example, cluster_examples

    if args.name is None:
        for name, path in cluster_examples().items():
            print(f"{name:12s} {path}")
        return 0
    print(cluster_example(args.name), end="")
    return 0


def _params(args: argparse.Namespace) -> int:
    from insitu.sweeps.app.catalog import params_text

    print(params_text(args.experiment))
    return 0
