"""``insitu summary --format latex``: booktabs tables whose every store text is escaped."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from insitu.analysis.commands import summary_command
from insitu.analysis.latex import escape, number, summary_latex
from insitu.analysis.vocabulary import Vocabulary
from insitu.cli import main

SPECIALS = "a&b%c$d#e_f{g}h~i^j\\k<l>m"


def test_escape_every_special_character():
    assert escape(SPECIALS) == (r"a\&b\%c\$d\#e\_f\{g\}h\textasciitilde{}i\textasciicircum{}j"
                                r"\textbackslash{}k\textless{}l\textgreater{}m")
    assert escape("σ Σ Α") == r"\ensuremath{\sigma} \ensuremath{\Sigma} Α"
    assert escape("tap noise s (√(launch power)) ± 1 − 2") == \
        r"tap noise s (\ensuremath{\surd}(launch power)) \ensuremath{\pm} 1 \ensuremath{-} 2"
    assert escape("two\nlines") == "two lines" and escape("café") == "café"


@pytest.mark.parametrize("value, text", [
    (0.9375, "0.9375"), (0.05, "0.05"), (-0.04667, "$-0.04667$"), (0.0, "0"), (12, "12"),
    (1.5e-5, r"$1.5\times10^{-5}$"), (-2.5e-7, r"$-2.5\times10^{-7}$"),
    (123456.0, r"$1.235\times10^{5}$"), (float("nan"), ""), (None, ""), (float("inf"), r"$\infty$"),
])
def test_numbers(value, text):
    assert number(value) == text


def unescaped(line: str) -> list[str]:
    """LaTeX special characters of ``line`` that are not escaped (math and the commands
    the writer emits left out)."""
    line = re.sub(r"\\(textbackslash|textasciitilde|textasciicircum|textless|textgreater|ldots)\{\}", "", line)
    line = re.sub(r"\\ensuremath\{\\?[^{}]*\}", "", line)
    line = re.sub(r"\\[&%$#_{}]", "", line)
    line = re.sub(r"(?<!\\)\$[^$]*\$", "", line)  # inline math: numbers
    return re.findall(r"[&%$#_{}~^\\]", line)


def check_tables(text: str) -> list[list[str]]:
    """Every row of every tabular, its cells; asserting the structure holds."""
    lines = text.splitlines()
    assert lines[0].startswith("% insitu summary of ") and "booktabs" in lines[0]
    tables, current, columns = [], None, 0
    for line in lines[1:]:
        if line.startswith(r"\begin{tabular}{"):
            columns = len(line[len(r"\begin{tabular}{"):-1])
            current = []
            continue
        if line in (r"\toprule", r"\midrule", r"\bottomrule"):
            continue
        if line == r"\end{tabular}":
            tables.append(current)
            current = None
            continue
        if line.startswith(r"\caption{"):
            assert line.endswith("}") and not unescaped(line[len(r"\caption{"):-1]), line
        if current is not None:
            assert line.endswith(r" \\")
            cells = re.split(r"(?<!\\)&", line[:-3])
            assert len(cells) == columns, line  # an unescaped & would add a column
            assert not any(unescaped(c) for c in cells), line
            current.append([c.strip() for c in cells])
    assert tables and current is None
    return tables


def test_a_store_with_special_characters_gives_valid_tables(make_store, fill):
    store = make_store("tricky", "classify", grid={"bs_error": [0.0, 0.05], "task": ["a_b&c", "d%e#f"]},
                       seeds=(0, 1, 2))
    fill.classify(store, modes=("digital", "insitu"))
    meta = json.loads((store.root / "store.json").read_text())
    meta["parameters"] = {"bs_error": {"label": "σ_{bs} & 100% #1", "unit": "$rad$", "role": "error",
                                       "error_free": "low"},
                          "task": {"label": "task~^\\", "unit": "", "role": "setting"}}
    meta["modes"] = [{"name": "digital", "kind": "training mode", "label": "digital_{train} 50%"},
                     {"name": "insitu", "kind": "training mode", "label": "in situ & co"}]
    (store.root / "store.json").write_text(json.dumps(meta))
    text = summary_command(str(store.root), None, fmt="latex", where="task != 'x&y%'")
    summary, gaps = check_tables(text)
    header, *rows = summary
    assert header[:2] == [r"\ensuremath{\sigma}\_\{bs\} \& 100\% \#1 (\$rad\$)",
                          r"task\textasciitilde{}\textasciicircum{}\textbackslash{}"]
    assert header[2:7] == ["training mode", "n", "mean", "sd", r"95 \% interval"]
    assert {r[1] for r in rows} == {r"a\_b\&c", r"d\%e\#f"}
    assert {r[2] for r in rows} == {r"digital\_\{train\} 50\%", r"in situ \& co"}
    assert all(r[3] == "3" and re.fullmatch(r"\[.+, .+\]", r[6]) for r in rows)
    assert len(rows) == 2 * 2 * 2
    assert gaps[0][2] == "comparison" and gaps[1][2] == r"in situ \& co \ensuremath{-} digital\_\{train\} 50\%"
    assert r"rows where task != 'x\&y\%'" in text


def test_the_caption_says_the_statistic_and_what_was_pooled(classify_store, tmp_path):
    out = tmp_path / "t.tex"
    code = main(["summary", str(classify_store.root), "--format", "latex", "--by", "depth",
                 "--pool", "bs_error", "--out", str(out)])
    assert code == 0
    text = out.read_text()
    check_tables(text)
    caption = next(line for line in text.splitlines() if line.startswith(r"\caption{Test accuracy"))
    assert r"mean over seeds, sd, 95 \% Student t interval (n = seeds)" in caption
    assert r"pooled over splitting error \ensuremath{\sigma} (rad) (0, 0.05, 0.1), averaged per seed" in caption
    assert r"\label{tab:synthetic-test-accuracy}" in text


def test_a_log_metric_shows_its_geometric_mean_and_exact_cells():
    vocab = Vocabulary(["bs_error"], parameters={"bs_error": {"label": "splitting error", "unit": "rad",
                                                              "role": "error"}},
                       metrics={"grad_error_mean": {"label": "gradient error", "scale": "log"}})
    table = pd.DataFrame({"bs_error": [0.0, 0.1], "mode": ["analog", "analog"], "n": [4, 4],
                          "mean": [float("nan"), 2e-4], "sd": [float("nan"), 0.3],
                          "ci_low": [float("nan"), 1e-4], "ci_high": [float("nan"), 4e-4],
                          "n_exact": [4, 0]})
    table.attrs["by"] = ["bs_error"]
    text = summary_latex(table, pd.DataFrame(), vocab, "grad_error_mean", "c", "g", "tab:x")
    (rows,) = check_tables("% insitu summary of x; needs booktabs\n" + text)
    assert rows[0][3:] == ["geometric mean", "sd (decades)", r"95 \% interval", "exact seeds"]
    assert rows[1][3:] == ["exact", "", "", "4"]
    assert rows[2][3:] == [r"$2\times10^{-4}$", "0.3", r"[$1\times10^{-4}$, $4\times10^{-4}$]", "0"]


def test_latex_is_a_format_of_summary_only():
    from insitu.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["tolerance", "x", "--axis", "a", "--format", "latex"])
