"""The Python snippets of the README and docs/ run as written, and every link resolves.

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
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = {page: page.read_text() for page in PAGES}
BLOCKS = [block for text in TEXT.values() for block in re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)]


def _snippets(needle: str) -> list[str]:
    return [block for block in BLOCKS if needle in block]


def test_the_readme_has_its_snippets():
    assert len(BLOCKS) == len(_snippets("from insitu.photonics")) + len(_snippets("from insitu.analysis"))
    assert _snippets("from insitu.photonics") and _snippets("from insitu.analysis")


TRAINING_SNIPPET = re.compile(
    r"^```python\n(from insitu.photonics import ErrorModel\nfrom insitu.photonics.training import train\n.*?)"
    r"^```\n\nprints[^\n]*\n\n```\n(.*?)^```", re.M | re.S)


QUOTED = TRAINING_SNIPPET.search(TEXT[ROOT / "docs" / "python.md"])


# the training snippet is run, and its output compared, by the next test
@pytest.mark.parametrize("block", [b for b in _snippets("from insitu.photonics") if not QUOTED or b != QUOTED.group(1)])
def test_photonics_snippet_runs(block):
    exec(compile(block, "README.md", "exec"), {})


def test_the_training_snippet_prints_what_the_readme_says(capsys):
    """docs/python.md quotes the training snippet's output: it must be this code's output."""
    match = QUOTED
    assert match, "the training snippet and its quoted output are not found in docs/python.md"
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


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(page):
    """Relative links name files of the repository (and headings of them, after #)."""
    text = re.sub(r"^```.*?^```", "", TEXT[page], flags=re.M | re.S)  # not inside code blocks
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue  # an absolute URL: not fetched here
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.relative_to(ROOT)} links to {link}, which does not exist"
        assert ROOT in target.parents or target == ROOT, f"{link} leaves the repository"
        if anchor and target.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", target.read_text(), re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{page.relative_to(ROOT)}: no heading #{anchor} in {path or page.name}"


def test_the_readme_is_a_front_door():
    """At most about 200 lines, and every page of docs/ is linked from it."""
    readme = TEXT[ROOT / "README.md"]
    assert len(readme.splitlines()) <= 200
    for page in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{page.name})" in readme, f"docs/{page.name} is not linked from the README"
