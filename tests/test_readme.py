"""The README's Python snippets run as written.

Each ```python block is executed on its own, in a fresh namespace. The analysis snippet
reads ``results/quick``: it runs in a temporary working directory holding a real classify
store made there by ``insitu run`` from the shipped quick spec with fewer seeds and
epochs, on the serial backend.
"""

from __future__ import annotations

import contextlib
import io
import re
import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from insitu.cli import main as insitu  # noqa: E402
from insitu.sweeps.engine.spec import parse_spec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)


def _snippets(needle: str) -> list[str]:
    return [block for block in BLOCKS if needle in block]


def test_the_readme_has_its_snippets():
    assert len(BLOCKS) == len(_snippets("from insitu.photonics")) + len(_snippets("from insitu.analysis"))
    assert _snippets("from insitu.photonics") and _snippets("from insitu.analysis")


@pytest.mark.parametrize("block", _snippets("from insitu.photonics"))
def test_photonics_snippet_runs(block, capsys):
    exec(compile(block, "README.md", "exec"), {})
    for line in capsys.readouterr().out.splitlines():  # the training snippet prints accuracies
        assert re.search(r"test accuracy on the chip: \d\.\d\d  \(ideal model: \d\.\d\d\)$", line)


def test_the_training_snippet_prints_what_the_readme_says(capsys):
    """The README quotes the training snippet's output: it must be this code's output."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^```python\n(from insitu.photonics import ErrorModel\nfrom insitu.photonics.training import train\n.*?)"
                      r"^```\n\nprints[^\n]*\n\n```\n(.*?)^```", text, re.M | re.S)
    assert match, "the training snippet and its quoted output are not found in the README"
    exec(compile(match.group(1), "README.md", "exec"), {})
    assert capsys.readouterr().out == match.group(2)


@pytest.fixture
def quick_store(tmp_path, monkeypatch):
    """``results/quick`` under a temporary working directory: the quick spec, reduced."""
    data = tomllib.loads((ROOT / "sweeps" / "specs" / "quick.toml").read_text())
    data["seeds"] = 3
    data["fixed"].update(epochs=2, eval_every=1, boundary_grid=5)
    spec = tmp_path / "quick.toml"
    spec.write_text(parse_spec(data).to_toml())
    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()):
        code = insitu(["run", str(spec), "--out", "results/quick", "--backend", "serial", "-q"])
    assert code == 0
    return tmp_path / "results" / "quick"


@pytest.mark.parametrize("block", _snippets("from insitu.analysis"))
def test_analysis_snippet_runs_on_a_quick_store(block, quick_store):
    namespace: dict = {}
    try:
        exec(compile(block, "README.md", "exec"), namespace)
    finally:
        plt.close("all")
    assert len(namespace["df"]) == 8 * 3 * 2  # grid points x seeds x modes
    assert set(namespace["table"]["bs_error"]) == {0.0, 0.02, 0.05, 0.1}
    assert set(namespace["tol"]["mode"]) == {"digital", "insitu"}
