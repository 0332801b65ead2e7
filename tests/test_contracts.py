"""Contracts between the packages: the direction of imports (docs: README package table).

* ``photonics`` imports nothing of ``sweeps`` or ``analysis`` (pure physics);
* ``analysis`` imports neither ``photonics`` nor ``sweeps`` (it learns everything from a store);
* ``sweeps`` imports ``analysis`` only lazily, inside functions of its CLI, so running
  trials on a worker never loads pandas or seaborn.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"photonics", "sweeps", "analysis"}


def _imports(source: Path):
    """(top-level package, imported at module level?) for every import of ours in a file."""
    tree = ast.parse(source.read_text())
    module_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in OURS:
                yield top, id(node) in module_level


def _sources(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources found for {package}"
    return files


@pytest.mark.parametrize("package, forbidden", [
    ("photonics", {"sweeps", "analysis"}),
    ("analysis", {"photonics", "sweeps"}),
])
def test_package_imports_none_of(package, forbidden):
    offending = [f"{path.relative_to(ROOT)} imports {top}"
                 for path in _sources(package) for top, _ in _imports(path) if top in forbidden]
    assert not offending, "; ".join(offending)


def test_sweeps_imports_analysis_only_lazily_in_the_cli():
    offending = []
    for path in _sources("sweeps"):
        for top, at_module_level in _imports(path):
            if top != "analysis":
                continue
            if path.name != "cli.py" or at_module_level:
                offending.append(f"{path.relative_to(ROOT)} imports analysis"
                                 + (" at module level" if at_module_level else ""))
    assert not offending, "; ".join(offending)


def test_the_import_scanner_sees_lazy_and_module_level_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import analysis.load\n\ndef f():\n    from photonics import layout\n")
    assert sorted(_imports(probe)) == [("analysis", True), ("photonics", False)]
