"""Contracts between the rooms: the direction of imports (docs/design.md, section 1).

* ``insitu.photonics`` imports nothing of ``sweeps`` or ``analysis`` (pure physics);
* ``insitu.analysis`` imports nothing of ``photonics`` and, of ``sweeps``, only the store
  room (``insitu.sweeps.store``): it learns everything from a store;
* the store room imports nothing of insitu but itself and ``insitu.errors``, and of the
  rest only pyarrow and the standard library;
* ``insitu.sweeps`` imports ``analysis`` only inside functions of its application room
  (the two-stage design's allocation, run in the driver), so a worker never loads pandas;
  the engine imports nothing of the application;
* nothing imports the old top-level names (``photonics``, ``sweeps``, ``analysis``).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"insitu.photonics": ROOT / "photonics", "insitu.sweeps": ROOT / "sweeps",
           "insitu.analysis": ROOT / "analysis", "insitu": ROOT / "insitu"}


def _imports(source: Path, package: str, module_level_only: bool = False) -> list[str]:
    """Every module a file imports, as an absolute dotted name (relative ones resolved);
    with ``module_level_only``, those imported when the module is imported."""
    tree = ast.parse(source.read_text())
    names = []
    nodes = ast.walk(tree) if not module_level_only else [
        n for top in tree.body for n in ([top] if not isinstance(top, ast.If) else ast.walk(top))]
    for node in nodes:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module or "")
    return names


def _sources(package: str) -> list[tuple[Path, str]]:
    """(file, the package its relative imports resolve against) of every module of ``package``."""
    folder = FOLDERS[package]
    files = sorted(folder.rglob("*.py")) if package != "insitu" else sorted(folder.glob("*.py"))
    assert files, package
    out = []
    for f in files:
        rel = f.relative_to(folder).with_suffix("").parts
        out.append((f, ".".join([package, *rel[:-1]]) if rel[-1] != "__init__" else ".".join([package, *rel[:-1]])))
    return out


def _offending(package: str, allowed) -> list[str]:
    return [f"{path.relative_to(ROOT)} imports {name}"
            for path, pkg in _sources(package) for name in _imports(path, pkg) if not allowed(name)]


def test_photonics_imports_no_other_room():
    assert not _offending("insitu.photonics", lambda n: not n.startswith(("insitu.sweeps", "insitu.analysis")))


def test_analysis_imports_only_the_store_of_sweeps():
    assert not _offending("insitu.analysis", lambda n: not n.startswith("insitu.photonics") and (
        not n.startswith("insitu.sweeps") or n.startswith("insitu.sweeps.store")))


def test_the_store_room_imports_only_pyarrow_the_standard_library_and_itself():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    folder = ROOT / "sweeps" / "store"
    offending = []
    for path in sorted(folder.glob("*.py")):
        for name in _imports(path, "insitu.sweeps.store"):
            top = name.split(".")[0]
            if name.startswith("insitu."):
                ok = name.startswith("insitu.sweeps.store") or name == "insitu.errors"
            else:
                ok = top in stdlib or top == "pyarrow"
            if not ok:
                offending.append(f"{path.name} imports {name}")
    assert not offending, offending


def test_sweeps_imports_analysis_only_lazily_in_the_application_and_the_engine_no_application():
    offending = []
    for path, pkg in _sources("insitu.sweeps"):
        in_app = pkg.startswith("insitu.sweeps.app")
        for name in _imports(path, pkg, module_level_only=in_app):
            if name.startswith("insitu.analysis"):
                offending.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offending, offending
    engine = [(p, pkg) for p, pkg in _sources("insitu.sweeps") if pkg.startswith("insitu.sweeps.engine")]
    assert engine
    assert not [f"{p.name} imports {n}" for p, pkg in engine for n in _imports(p, pkg)
                if n.startswith("insitu.sweeps.app")]


@pytest.mark.parametrize("package", sorted(FOLDERS))
def test_nothing_imports_the_old_top_level_names(package):
    old = ("photonics", "sweeps", "analysis")
    assert not _offending(package, lambda n: n.split(".")[0] not in old)


def test_the_import_scanner_resolves_relative_and_absolute_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import insitu.analysis.load\nfrom .errors import x\n\ndef f():\n"
                     "    from insitu.sweeps.store import read_rows\n")
    assert _imports(probe, "insitu.photonics") == ["insitu.analysis.load", "insitu.photonics.errors",
                                                  "insitu.sweeps.store"]
