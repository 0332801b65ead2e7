"""One store schema: sweeps' schema module, analysis' column list, docs/store.md's table,
the experiment registry's reserved names (derived from the schema) and the analysis test
fixture agree.

``analysis`` imports nothing of ``sweeps``, so it spells the fixed columns itself; this test
is what keeps the two spellings (and the documented contract) the same list.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pyarrow as pa

from analysis.load import IDENTITY_COLUMNS
from sweeps.registry import RESERVED_COLUMNS, get_experiment
from sweeps.schema import FIXED_COLUMNS, PARAM_ARROW_TYPES

ROOT = Path(__file__).resolve().parent.parent
DOC_TYPES = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}


def _fixture():
    """tests/analysis/conftest.py, loaded by path (conftest modules share one name)."""
    spec = importlib.util.spec_from_file_location("analysis_fixture",
                                                  ROOT / "tests" / "analysis" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _documented_columns() -> list[tuple[str, pa.DataType]]:
    """The fixed columns of docs/store.md's "Rows" table, in order, with their types."""
    text = (ROOT / "docs" / "store.md").read_text()
    section = text[text.index("## Rows"):]
    columns = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2 or not cells[0].startswith("`"):
            if columns and not line.startswith("|"):
                break
            continue
        type_name = cells[1].split()[0]
        for name in re.findall(r"`([^`]+)`", cells[0]):
            columns.append((name, DOC_TYPES[type_name]))
    return columns


def test_fixed_columns_are_one_list():
    names = [name for name, _ in FIXED_COLUMNS]
    assert list(IDENTITY_COLUMNS) == names
    assert _documented_columns() == list(FIXED_COLUMNS)
    assert set(RESERVED_COLUMNS) == set(names)
    assert list(_fixture().IDENTITY_TYPES.items()) == list(FIXED_COLUMNS)


def test_parameter_types_are_one_list():
    assert _fixture().KIND_TYPES == PARAM_ARROW_TYPES


def test_analysis_fixture_declares_the_real_parameters():
    fixture = _fixture()
    for name, params, fixed in (("classify", fixture.CLASSIFY_PARAMS, fixture.CLASSIFY_FIXED),
                                ("gradient", fixture.GRADIENT_PARAMS, fixture.GRADIENT_FIXED)):
        experiment = get_experiment(name)
        assert params == {p.name: p.type for p in experiment.params}, name
        assert list(fixed) == list(params), name
        kinds = {"float": float, "int": int, "str": str, "bool": bool}
        assert all(type(fixed[p]) is kinds[kind] for p, kind in params.items()), name


def test_analysis_knows_every_error_axis_and_training_mode():
    """analysis may not import photonics, so its lists of error axes and modes are held here
    to the error model's fields and the training-mode registry."""
    from dataclasses import fields

    from analysis.labels import ERROR_AXES, LABELS, MODE_ORDER
    from photonics.errors import ErrorModel
    from photonics.modes import MODES

    magnitudes = [f.name for f in fields(ErrorModel) if f.metadata.get("choices") is None]  # not a choice
    # the error axes are the error model's magnitudes and the calibration's error, no more
    assert set(ERROR_AXES) == set(magnitudes) | {"calibration_error"}
    assert len(ERROR_AXES) == len(set(ERROR_AXES))
    assert "calibration_error" in get_experiment("classify").by_name
    assert all(name in LABELS for name in ERROR_AXES)
    assert set(MODES) <= set(MODE_ORDER)
    # every declared parameter of every experiment a store can hold has a display label
    for name in ("classify", "gradient"):
        unlabelled = [p.name for p in get_experiment(name).params if p.name not in LABELS]
        assert not unlabelled, (name, unlabelled)
