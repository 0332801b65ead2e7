import numpy as np
import pytest

from insitu.photonics import from_columns, make_layout, rectangular, triangular


@pytest.mark.parametrize("n", [2, 3, 4, 7, 8])
def test_triangular_counts(n):
    lay = triangular(n)
    assert lay.n_mzis == n * (n - 1) // 2
    assert lay.depth == (1 if n == 2 else 2 * n - 3)


@pytest.mark.parametrize("n,depth", [(4, None), (5, None), (6, 3), (8, 12)])
def test_rectangular_columns_alternate(n, depth):
    lay = rectangular(n, depth)
    assert lay.depth == (n if depth is None else depth)
    for c, tops in enumerate(lay.columns):
        assert tops[0] == c % 2
        assert np.all(np.diff(tops) == 2)
        assert tops[-1] <= n - 2
    if depth is None:
        assert lay.n_mzis == n * (n - 1) // 2


def test_flat_order_is_column_by_column_top_to_bottom():
    lay = rectangular(5, 3)
    assert lay.top_modes.tolist() == [0, 2, 1, 3, 0, 2]
    assert lay.column_range(1) == slice(2, 4)


def test_generic_layout_and_validation():
    lay = from_columns(4, [[0, 2], [1], [0]])
    assert (lay.n_ports, lay.n_mzis, lay.depth) == (4, 4, 3)
    with pytest.raises(ValueError, match="overlap"):
        from_columns(4, [[0, 1]])
    with pytest.raises(ValueError, match="top modes"):
        from_columns(4, [[3]])
    with pytest.raises(ValueError, match="depth"):
        rectangular(4, 0)
    with pytest.raises(ValueError, match="topology"):
        make_layout("hexagonal", 4)


def test_neighbours_are_adjacent_in_a_column():
    lay = rectangular(6)
    pairs = lay.neighbours()
    tops = lay.top_modes
    assert np.all(tops[pairs[:, 1]] - tops[pairs[:, 0]] == 2)
    # column 0 of a 6-port mesh has 3 MZIs -> 2 pairs; column 1 has 2 -> 1 pair
    assert len(pairs) == 3 * 2 + 3 * 1
