"""LaTeX tables (booktabs) for ``insitu summary --format latex``, written here in a few
lines rather than through pandas' ``Styler.to_latex`` (which needs jinja2, not a
dependency of insitu).

The output is a ``table`` float per table: caption (the statistic, what was pooled, the
rows kept), a label, and a ``tabular`` with ``\\toprule``, ``\\midrule`` and
``\\bottomrule``; it needs ``\\usepackage{booktabs}`` and nothing else. Every text from the
store (labels, units, mode names, axis values, the ``--where`` expression) is escaped:
LaTeX's special characters (``\\ & % $ # _ { } ~ ^``, and ``< >``, which the default font
encoding would print as other glyphs) and the few non-ASCII symbols the labels use (Greek
letters, minus, ±, ×, √ ...) as math; other characters are left for the document's UTF-8
input.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import pandas as pd

from insitu.analysis.grouping import value_text

__all__ = ["escape", "interval", "label_of", "number", "summary_latex", "table"]

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}
_SYMBOLS = {"−": "-", "±": r"\pm", "×": r"\times", "·": r"\cdot", "√": r"\surd", "≤": r"\leq",
            "≥": r"\geq", "≈": r"\approx", "∞": r"\infty", "°": r"^\circ", "△": r"\triangle",
            "→": r"\to", "µ": r"\mu"}
_TEXT = {"–": "--", "—": "---", "…": r"\ldots{}", "‘": "`", "’": "'", "“": "``", "”": "''",
         "\u00a0": "~"}
_GREEK = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho "
          "sigma tau upsilon phi chi psi omega").split()
_GREEK_CAPITALS = {"gamma", "delta", "theta", "lambda", "xi", "pi", "sigma", "upsilon", "phi",
                   "psi", "omega"}


def _greek(char: str) -> str | None:
    """``\\sigma`` for σ (``\\Sigma`` for Σ), None for a character that is no Greek letter
    LaTeX names (a capital alpha is written as it is: it looks like A)."""
    try:
        name = unicodedata.name(char)
    except ValueError:
        return None
    match = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (\w+)", name)
    if not match:
        return None
    letter = match.group(2).lower().replace("lamda", "lambda")
    if letter not in _GREEK:
        return None
    if match.group(1) == "SMALL":
        return "\\" + letter
    return "\\" + letter.capitalize() if letter in _GREEK_CAPITALS else None


def escape(text) -> str:
    """``text`` as LaTeX text: special characters escaped, math symbols as math, line
    breaks and other control characters as spaces."""
    out = []
    for char in str(text):
        if char in _SPECIAL:
            out.append(_SPECIAL[char])
        elif char in _TEXT:
            out.append(_TEXT[char])
        elif char in _SYMBOLS:
            out.append(r"\ensuremath{" + _SYMBOLS[char] + "}")
        elif (greek := _greek(char)) is not None:
            out.append(r"\ensuremath{" + greek + "}")
        elif not char.isprintable():
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def number(value, digits: int = 4) -> str:
    """A number for a table cell: ``digits`` significant digits; powers of ten as
    ``$1.23\\times10^{-5}$`` below 1e-3 and from 1e5; negative numbers with a math minus;
    NaN and None as an empty cell; integers as they are."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"${value}$" if value < 0 else str(value)
    if not isinstance(value, (float, np.floating)):
        return escape(value)
    value = float(value)
    if math.isinf(value):
        return r"$\infty$" if value > 0 else r"$-\infty$"
    if value != 0 and not 1e-3 <= abs(value) < 1e5:
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"${mantissa}\\times10^{{{int(exponent)}}}$"
    text = f"{value:.{digits}g}"
    return f"${text}$" if text.startswith("-") else text


def table(rows: Sequence[Sequence[str]], header: Sequence[str], caption: str,
          label: str | None, numeric: Sequence[bool]) -> str:
    """One booktabs ``table`` float: ``rows`` of cells already in LaTeX (:func:`number`,
    :func:`escape`) under ``header`` (escaped here), the ``caption`` (escaped here) above;
    ``numeric`` right-aligns a column."""
    lines = [r"\begin{table}[htbp]", r"\centering", rf"\caption{{{escape(caption)}}}"]
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{''.join('r' if n else 'l' for n in numeric)}}}", r"\toprule",
              " & ".join(escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def interval(low, high) -> str:
    """``[low, high]`` of two numbers (an empty cell when either is missing)."""
    a, b = number(low), number(high)
    return f"[{a}, {b}]" if a and b else ""


def label_of(*names: str) -> str:
    """A ``\\label`` key: ``tab:`` and the names, reduced to letters, digits and ``-``."""
    text = "-".join(re.sub(r"[^A-Za-z0-9]+", "-", str(n)).strip("-") for n in names if n)
    return f"tab:{text or 'summary'}"


def _mode_label(vocab, name) -> str:
    labels = {m.get("name"): m.get("label") for m in getattr(vocab, "modes", [])}
    return labels.get(name) or str(name)


def summary_latex(summary: pd.DataFrame, gaps: pd.DataFrame, vocab, metric: str, caption: str,
                  gap_caption: str, label: str) -> str:
    """``insitu summary --format latex``: the per-cell table (axes, mode, n, mean, sd, 95 %
    interval, and the drop against the error-free cell with its interval where the summary
    has it) and, when there are any, the paired gaps; each a booktabs table captioned with
    its statistic and what it pooled. A log-scale metric whose seeds are all exact shows
    "exact"."""
    by = list(summary.attrs.get("by", []))
    log = vocab.is_log(metric)
    drop = "drop" in summary and summary["drop"].notna().any()
    header = [vocab.label(a) for a in by] + [vocab.mode_title(summary["mode"]), "n",
                                             "geometric mean" if log else "mean",
                                             "sd (decades)" if log else "sd", "95 % interval"]
    numeric = [False] * (len(by) + 1) + [True, True, True, False]
    if log and "n_exact" in summary:
        header.append("exact seeds")
        numeric.append(True)
    if drop:
        header += ["drop", "95 % interval of the drop"]
        numeric += [True, False]
    rows = []
    for r in summary.to_dict(orient="records"):
        exact = "n_exact" in r and r["n"] > 0 and r["n_exact"] == r["n"]
        row = [escape(value_text(r[a])) for a in by] + [escape(_mode_label(vocab, r["mode"])),
                                                        number(int(r["n"]))]
        row += ["exact", "", ""] if exact else [number(r["mean"]), number(r["sd"]),
                                                interval(r["ci_low"], r["ci_high"])]
        if log and "n_exact" in summary:
            row.append(number(int(r["n_exact"])))
        if drop:
            row += [number(r["drop"]), interval(r["drop_ci_low"], r["drop_ci_high"])]
        rows.append(row)
    parts = [table(rows, header, caption, label, numeric)]
    if len(gaps):
        gby = list(gaps.attrs.get("by", by))
        rows = [[escape(value_text(r[a])) for a in gby]
                + [escape(" − ".join(_mode_label(vocab, m) for m in str(r["comparison"]).split(" - "))),
                   number(int(r["n"])), number(r["mean"]), number(r["sd"]),
                   interval(r["ci_low"], r["ci_high"])]
                for r in gaps.to_dict(orient="records")]
        parts.append(table(rows, [vocab.label(a) for a in gby]
                           + ["comparison", "n", "mean gap", "sd", "95 % interval"],
                           gap_caption, label + "-gaps", [False] * (len(gby) + 1) + [True] * 3 + [False]))
    return "\n\n".join(parts)
