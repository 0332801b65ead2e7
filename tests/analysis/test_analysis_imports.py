"""The analysis package learns everything from the store: it imports neither photonics nor sweeps."""

from __future__ import annotations

import ast
from pathlib import Path

from insitu import analysis
def test_analysis_imports_neither_photonics_nor_sweeps():
    root = Path(analysis.__file__).parent
    sources = sorted(root.glob("*.py"))
    assert len(sources) >= 8
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in {"photonics", "sweeps"}, f"{source.name} imports {name}"
            if isinstance(node, ast.ImportFrom) or isinstance(node, ast.Import):
                assert all("pyplot" not in n for n in names), f"{source.name} uses pyplot"
