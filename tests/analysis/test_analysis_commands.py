"""The CLI entry points: summary text, figure files, the HTML report, and bad input."""

from __future__ import annotations

import base64
import re

import pytest

from insitu.analysis.commands import figures_command, report_command, summary_command
from insitu.analysis.exceptions import AnalysisInputError
from insitu.analysis.load import read_store
from tests.analysis.conftest import plan_figures


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert text and "\n" not in text
    return text


def test_summary_text(classify_store):
    text = summary_command(str(classify_store.root), None)
    assert "trials ok: 18   trials with an error: 0" in text
    assert ("test accuracy (test_accuracy) per bs_error, depth, mode: mean over seeds, sd, "
            "95 % Student t interval (n = seeds)") in text
    assert "pooled" not in text
    header = next(line for line in text.splitlines() if line.strip().startswith("bs_error"))
    assert header.split() == ["bs_error", "depth", "mode", "n", "mean", "sd", "ci_low", "ci_high",
                              "ci_half_width", "drop", "drop_ci_low", "drop_ci_high", "drop_design"]
    assert "insitu - digital" in text and "analog - digital" in text
    # grouping by depth alone would pool bs_error: refused unless pooled by name
    with pytest.raises(AnalysisInputError) as info:
        summary_command(str(classify_store.root), ["depth"])
    assert _one_line(info).startswith("summary would pool over 'bs_error' (splitting error σ (rad), "
                                      "3 values) without saying so")
    by_depth = summary_command(str(classify_store.root), ["depth"], pool=["bs_error"])
    assert "pooled over splitting error σ (rad) (0, 0.05, 0.1), averaged per seed" in by_depth
    digital_rows = re.findall(r"^\s+[24]\s+digital\s+3\s", by_depth, flags=re.M)
    assert len(digital_rows) == 2  # one row per depth; n counts the 3 seeds, not 9 rows
    with pytest.raises(AnalysisInputError) as info:
        summary_command(str(classify_store.root), ["nope"])
    assert _one_line(info).startswith("unknown axis 'nope'; this store's axes are: task, mnist_path, feature_norm, topology, depth")


def test_figures_and_report_on_a_classify_store(classify_store):
    root = classify_store.root
    paths = figures_command(str(root), None)
    assert paths and all(p.parent == root / "figures" for p in paths)
    assert all(p.stat().st_size > 1000 for p in paths)
    stems = sorted({p.stem for p in paths})
    assert {p.suffix for p in paths} == {".png", ".pdf"} and len(paths) == 2 * len(stems)
    assert stems == sorted([
        "test_accuracy_vs_bs_error_by_depth", "test_accuracy_vs_depth_by_bs_error",
        "gap_insitu_minus_digital_bs_error_x_depth", "gap_analog_minus_digital_bs_error_x_depth",
        "tolerance_bs_error_vs_depth", "training_grad_error_vs_bs_error_by_depth",
        "learning_curves_by_bs_error_depth", "decision_boundaries_seed0"])

    report = report_command(str(root), None)
    assert report == root / "report.html"
    page = report.read_text()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert len(images) == len(stems)
    captions = re.findall(r"<figcaption><b>[^<]+</b>: ([^<]+)</figcaption>", page)
    assert [alt for alt, _ in images] == captions  # every image has its caption as alt text
    images = [data for _, data in images]
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    for stem in stems:
        assert f'id="{stem}"' in page
    assert "[grid]\nbs_error = [0.0, 0.05, 0.1]" in page  # the spec, as TOML
    assert "trials done (ok)</td>\n      <td>18" in page
    # the answer first: headline figure, gaps, tolerances, setup; bookkeeping and spec last
    order = [page.index(s) for s in (
        'id="test_accuracy_vs_bs_error_by_depth"', "<h2>Paired gaps", "<h2>Tolerances",
        "<b>Setup:</b> task moons; rectangular mesh, 3 layers, depth 2/4; 10 epochs adam "
        "lr 0.02 batch 16; modes digital, insitu, analog; 3 seeds",
        "<h2>Figures", "<h2>Summary", "<h2>Bookkeeping", "<h2>Spec")]
    assert order == sorted(order)
    assert "<th>splitting error σ (rad)</th>" in page and "<th>insitu − digital: test accuracy gap</th>" in page
    assert re.search(r"<td>\+0\.\d{3} ± 0\.\d{3}( \*)?</td>", page)  # fixed decimals
    assert re.search(r"<td>\+0\.1\d\d ± 0\.\d{3} \*</td>", page)  # digital falls: interval excludes 0
    assert "No trial ended in an error." in page
    assert "http" not in page.replace("http-equiv", "")  # self-contained: nothing fetched
    # contrasts chosen from the grid: the error axis from 0 to its largest per mode, and the
    # difference in differences of the first two modes, each saying its design
    contrasts = page[page.index("<h2>Contrasts: test accuracy</h2>"):page.index("<b>Setup:</b>")]
    assert "splitting error σ (rad): 0.1 − 0" in contrasts
    assert "(insitu − digital) at splitting error σ (rad) 0.1 − at 0" in contrasts
    assert re.search(r"<td>(paired|Welch)</td>", contrasts)
    # a phone renders it at its own width, and wide tables scroll inside their own box
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert page.count('<div class="scroll"><table') == page.count("<table")
    # the one-sentence finding opens the page, before the headline figure
    headline = re.search(r'<p class="headline">([^<]+)</p>', page).group(1)
    assert headline.startswith("Largest paired gap in test accuracy: ")
    assert page.index('class="headline"') < page.index('id="test_accuracy_vs_bs_error_by_depth"')
    # PDFs embed TrueType fonts, never Type 3 (rejected by many venues)
    for pdf in (p for p in paths if p.suffix == ".pdf"):
        data = pdf.read_bytes()
        assert b"/Subtype /Type3" not in data
        assert b"/Subtype /TrueType" in data or b"/Subtype /CIDFontType2" in data  # Type 42


def test_report_lists_errors_grouped(make_store, fill, tmp_path):
    store = make_store("errs", grid={"bs_error": [0.0, 0.1, 0.3]}, seeds=(0, 1, 2))
    fill.classify(store, modes=("digital", "insitu"))
    # A later launch ends three trials of the spec in errors (rows outside the spec would
    # be ignored as foreign).
    p = {**store.fixed, "bs_error": 0.3}
    store.write_part([store.row(p, s, None, status="error", error="MemoryError: too big")
                      for s in (0, 1)]
                     + [store.row(p, 2, None, status="error", error="ValueError: <bad> value")], "L2")
    out = report_command(str(store.root), str(tmp_path / "deep" / "r.html"))
    page = out.read_text()
    assert "3 trial(s) ended in an error" in page
    assert "MemoryError: too big</td>\n      <td>2</td>" in page
    assert "ValueError: &lt;bad&gt; value" in page
    text = summary_command(str(store.root), None)
    assert "trials with an error: 3" in text and "      2     2  MemoryError: too big" in text


def test_gradient_store_figures(gradient_store, tmp_path):
    paths = figures_command(str(gradient_store.root), str(tmp_path / "figs"))
    assert sorted({p.stem for p in paths}) == [
        "grad_error_mean_vs_batch_size_by_loss_imbalance_db",
        "grad_error_mean_vs_loss_imbalance_db_by_batch_size"]
    text = summary_command(str(gradient_store.root), None)
    assert "geometric mean over seeds" in text
    assert "analog - three_pass" in summary_command(str(gradient_store.root), None)


def test_store_where_only_seeds_vary(make_store, fill, tmp_path):
    store = make_store("seeds", seeds=(0, 1, 2))
    fill.classify(store)
    plans, notes = plan_figures(read_store(store.root))
    names = [p.name for p in plans]
    assert names == ["test_accuracy_by_mode", "learning_curves", "decision_boundaries_seed0"]
    assert any("paired gap is in the summary table" in n for n in notes)
    paths = figures_command(str(store.root), str(tmp_path / "f"))
    assert len(paths) == 2 * len(names)
    text = summary_command(str(store.root), None)
    assert "digital" in text and "insitu - digital" in text


def test_store_where_one_axis_varies(make_store, fill, tmp_path):
    store = make_store("one", grid={"tap_noise": [0.0, 0.01, 0.02]}, seeds=(0, 1))
    fill.classify(store, modes=("digital", "insitu"))
    names = [p.name for p in plan_figures(read_store(store.root))[0]]
    assert "test_accuracy_vs_tap_noise" in names and "gap_insitu_minus_digital_tap_noise" in names
    assert len(figures_command(str(store.root), str(tmp_path / "f"))) == 2 * len(names)


def test_store_with_only_errors(make_store, tmp_path):
    store = make_store("failed", seeds=(0,))
    store.write_part([store.row(store.fixed, 0, None, status="error", error="boom")], "L1")
    with pytest.raises(AnalysisInputError) as info:
        figures_command(str(store.root), str(tmp_path / "f"))
    assert "no successful trials to plot" in _one_line(info)
    assert not (tmp_path / "f").exists()
    assert "no successful rows yet" in summary_command(str(store.root), None)
    page = report_command(str(store.root), None).read_text()
    assert "1 trial(s) ended in an error" in page and "No figure could be drawn" in page


@pytest.mark.parametrize("command", ["summary", "figures", "report"])
def test_bad_input_is_one_line_and_writes_nothing(command, tmp_path, make_store):
    run = {
        "summary": lambda path: summary_command(path, None),
        "figures": lambda path: figures_command(path, None),
        "report": lambda path: report_command(path, None),
    }[command]
    with pytest.raises(AnalysisInputError) as info:
        run(str(tmp_path / "missing"))
    assert _one_line(info) == f"no such store directory: {tmp_path / 'missing'}"
    (tmp_path / "plain").mkdir()
    with pytest.raises(AnalysisInputError) as info:
        run(str(tmp_path / "plain"))
    assert _one_line(info) == f"not an insitu store (no store.json): {tmp_path / 'plain'}"
    store = make_store("empty")
    with pytest.raises(AnalysisInputError) as info:
        run(str(store.root))
    assert _one_line(info) == f"store {store.root} has no results yet (no rows in parts/)"
    assert sorted(p.name for p in store.root.iterdir()) == [
        "parts", "spec.json", "spec.toml", "store.json"]
    assert list(tmp_path.glob("plain/*")) == []
    # rows that are all of another spec: not "no rows", but why they do not count
    alien = make_store("alien", grid={"bs_error": [0.0]}, seeds=(0,))
    alien.write_part([alien.row({**alien.fixed, "bs_error": 0.3}, 0, "digital", {"test_accuracy": 0.5})], "L1")
    with pytest.raises(AnalysisInputError) as info:
        run(str(alien.root))
    assert _one_line(info) == (f"store {alien.root} has no results yet (its 1 stored rows are not "
                               f"trials of its spec; `insitu verify {alien.root}` quarantines their parts)")


def test_output_path_that_is_a_file(classify_store, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AnalysisInputError, match="output directory is a file"):
        figures_command(str(classify_store.root), str(blocker))
    with pytest.raises(AnalysisInputError, match="cannot create output directory under a file"):
        report_command(str(classify_store.root), str(blocker / "sub" / "r.html"))


def test_small_gaps_keep_their_digits_and_accuracies_three_decimals():
    from insitu.analysis.report import _stat_text

    tiny = {"mean": -2.4e-5, "ci_half_width": 1.1e-5, "n": 4, "ci_low": -3.5e-5, "ci_high": -1.3e-5}
    assert _stat_text(tiny, False, signed=True) == "-2.40e-05 ± 1.10e-05"
    usual = {"mean": 0.1234, "ci_half_width": 0.0081, "n": 4, "ci_low": 0.115, "ci_high": 0.13}
    assert _stat_text(usual, False, signed=True) == "+0.123 ± 0.008"
    zero = {"mean": 0.0, "ci_half_width": 0.0, "n": 4, "ci_low": 0.0, "ci_high": 0.0}
    assert _stat_text(zero, False) == "0.000 ± 0.000"


def test_the_provenance_line_names_versions_and_commit():
    from insitu.analysis.report import provenance_line

    line = provenance_line({"versions": {"insitu": "0.9", "python": "3.11.9", "numpy": "2.1.0", "ray": None},
                            "git": {"commit": "0123456789abcdef" * 2 + "01234567", "dirty": True},
                            "host": "node7"})
    assert line.startswith("Created by insitu 0.9 (git 0123456789, with uncommitted changes) with "
                           "python 3.11.9, numpy 2.1.0 on node7")
    assert "ray" not in line  # not installed: not named
    assert provenance_line(None) == ""


def test_figures_at_a_column_width(classify_store, tmp_path):
    from matplotlib.text import Text
    from PIL import Image

    from insitu.analysis.figures import MIN_FONT_PT, figure_width

    paths = figures_command(str(classify_store.root), str(tmp_path / "single"), width="single",
                            where="depth == 2")
    for png in (p for p in paths if p.suffix == ".png"):
        assert Image.open(png).size[0] == round(3.5 * 150)  # 150 dpi
    assert figure_width("double") == 7.16 and figure_width("4.5") == 4.5
    for bad in ("wide", "0.5", "25"):
        with pytest.raises(AnalysisInputError) as info:
            figures_command(str(classify_store.root), str(tmp_path / "bad"), width=bad)
        assert "figure width" in _one_line(info)
    assert not (tmp_path / "bad").exists()  # refused before anything was drawn or written
    from insitu.analysis.figures import fit_width
    from matplotlib.figure import Figure

    from insitu.analysis.figures import metric_vs_axis
    from insitu.analysis.load import read_store

    store = read_store(str(classify_store.root))
    at_width = metric_vs_axis(store.rows, "bs_error", facet="depth", params=store.params, width=5.0)
    assert at_width.get_size_inches()[0] == 5.0  # every figure function takes width=
    fig = Figure(figsize=(10, 4))
    ax = fig.subplots()
    ax.set_title("a title", fontsize=12)
    fit_width(fig, "single")
    assert tuple(fig.get_size_inches()) == (3.5, 4 * 0.6)
    assert all(t.get_fontsize() >= MIN_FONT_PT for t in fig.findobj(Text))


def test_the_setup_line_names_the_fixed_errors(make_store, fill, tmp_path):
    """Errors fixed away from their default are the chip every cell shares: named with units."""
    from insitu.analysis.report import _setup_line
    from insitu.analysis.load import read_store

    store = make_store("classify", fixed={"task": "moons", "tap_noise": 0.01, "bs_error": 0.0},
                       grid={"depth": [2, 4]}, seeds=(0, 1), defaults={"tap_noise": 0.0, "bs_error": 0.0})
    fill.classify(store)
    line = _setup_line(read_store(str(store.root)))
    assert "fixed errors tap noise s (√(launch power)) 0.01" in line
    assert "splitting error" not in line  # at its default: not a fixed error
