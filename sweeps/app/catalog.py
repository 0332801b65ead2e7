"""What a user can find without reading the source: shipped specs and declared parameters.

``insitu run NAME`` finds a shipped spec (``sweeps/specs/NAME.toml``) by name, ``insitu specs``
lists them, ``insitu params EXPERIMENT`` prints an experiment's declared parameters (read
from the registry, so a parameter added to an experiment appears here by itself).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from insitu.errors import did_you_mean
from insitu.sweeps.engine.registry import Experiment, Param, experiment_names, get_experiment
from insitu.sweeps.engine.spec import SpecError, load_spec

SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"
CLUSTER_DIR = Path(__file__).resolve().parents[1] / "cluster"
# name -> shipped file: a Slurm batch script, a KubeRay RayJob, a Ray cluster-launcher config
CLUSTER_FILES = {"slurm": "slurm.sbatch", "kuberay": "rayjob.yaml", "ray-cluster": "ray-cluster.yaml"}


def cluster_examples() -> dict[str, Path]:
    """The shipped cluster examples by name (``insitu cluster-example NAME`` prints one)."""
    return {name: CLUSTER_DIR / file for name, file in CLUSTER_FILES.items()}


def cluster_example(name: str) -> str:
    """The text of a shipped cluster example, to copy and adapt."""
    examples = cluster_examples()
    if name not in examples:
        hint = did_you_mean(name, list(examples))
        raise SpecError(f"no cluster example named {name!r}{hint}; choose {', '.join(examples)}")
    return examples[name].read_text()


def shipped_specs() -> dict[str, Path]:
    """The shipped spec files by name (file stem), sorted."""
    return {p.stem: p for p in sorted(SPECS_DIR.glob("*.toml"))}


def resolve_spec(text: str) -> Path:
    """The spec file ``text`` names: a path if one exists, else a shipped spec's name.

    ``quick`` and ``quick.toml`` both name ``sweeps/specs/quick.toml`` when no such file is
    in the current directory. A name that is neither raises ``SpecError`` with the closest
    shipped name.
    """
    path = Path(text)
    if path.exists() or len(path.parts) > 1:
        return path
    shipped = shipped_specs()
    stem = path.stem if path.suffix == ".toml" else path.name
    if stem in shipped:
        return shipped[stem]
    raise SpecError(f"{text}: no such spec file, nor a shipped spec of that name"
                    f"{did_you_mean(stem, shipped)} (shipped: {', '.join(shipped)}; "
                    f"see insitu specs)")


def spec_summary(path: Path) -> str:
    """The first comment line of a spec file (its one-line description), without ``#``."""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            return stripped.lstrip("#").strip()
        if stripped:
            break
    return ""


def specs_text() -> str:
    """``insitu specs``: one line per shipped spec: name, experiment, trials, description."""
    rows = []
    for name, path in shipped_specs().items():
        try:
            spec = load_spec(path)
            what = f"{spec.experiment}, {spec.trial_count} trials"
        except SpecError:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            what = f"{data.get('experiment', '?')}, does not validate"
        rows.append((name, what, spec_summary(path)))
    if not rows:
        return "no shipped specs"
    width_name = max(len(r[0]) for r in rows)
    width_what = max(len(r[1]) for r in rows)
    lines = [f"{n:<{width_name}}  {w:<{width_what}}  {d}".rstrip() for n, w, d in rows]
    lines.append("")
    lines.append(f"run one with: insitu run NAME [--dry-run]   (files in {SPECS_DIR})")
    return "\n".join(lines)


def experiment_for(name: str) -> Experiment:
    """The experiment ``name``; ``SpecError`` naming the closest one if it is unknown."""
    try:
        return get_experiment(name)
    except KeyError:
        raise SpecError(f"unknown experiment {name!r}{did_you_mean(name, experiment_names())} "
                        f"(known: {', '.join(experiment_names())})") from None


def param_range(param: Param) -> str:
    """Allowed values of ``param`` as text: its choices, bounds, or ``any``."""
    if param.choices is not None:
        return " | ".join(str(c) for c in param.choices)
    if param.type == "bool":
        return "true | false"
    if param.low is not None and param.high is not None:
        return f"{_number(param.low)} .. {_number(param.high)}"
    if param.low is not None:
        return f">= {_number(param.low)}"
    if param.high is not None:
        return f"<= {_number(param.high)}"
    return "any"


def params_text(name: str | None) -> str:
    """``insitu params [EXPERIMENT]``: the experiments, or one experiment's parameters."""
    if name is None:
        lines = [f"{n}  {get_experiment(n).summary}".rstrip()
                 for n in experiment_names()]
        lines += ["", "parameters of one: insitu params EXPERIMENT"]
        return "\n".join(lines)
    experiment = experiment_for(name)
    rows = [(p.name, p.type, param_range(p), _default(p), p.doc) for p in experiment.params]
    header = ("name", "type", "allowed", "default", "meaning")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    out = [f"{experiment.name} (version {experiment.version}): {experiment.summary}", ""]
    for row in [header] + rows:
        cells = [f"{c:<{w}}" for c, w in zip(row[:4], widths)]
        out.append("  ".join(cells + [row[4]]).rstrip())
    out += ["", "set them in a spec's [fixed] table (one value) or [grid] table (a list)"]
    if experiment.modes:
        width = max(len(m.name) for m in experiment.modes)
        out += ["", f"modes ({experiment.modes[0].kind}s; a spec's `modes` lists those to run):"]
        for m in experiment.modes:
            measured = (f"; measures its gradient with the {m.protocol} protocol" if m.protocol
                        else "" if m.kind == "protocol" else "; measures no gradient on the chip")
            out.append(f"  {m.name:<{width}}  {m.label}{measured}")
    return "\n".join(out)


def _default(param: Param) -> str:
    if param.type == "bool":
        return "true" if param.default else "false"
    if param.type == "str":
        return repr(param.default)
    return _number(param.default)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
