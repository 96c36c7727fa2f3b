"""Index expressions over the params and gradient arrays: slices, grids, index arrays."""
from __future__ import annotations

import numpy as np
import pytest

from graphc.codegen import numpy_layout
from graphc.codegen.numpy_layout import Indexes

GRID = [0, 1, 2, 5, 6, 7]  # two runs of three, five apart: a layer's weights around its biases


def run(source: str, indexes: Indexes, **arrays) -> dict:
    scope = {"np": np, **arrays}
    exec("\n".join(indexes.lines), scope)  # the module-level index arrays
    exec(source, scope)
    return scope


@pytest.mark.parametrize("positions, spelled, view", [
    ([3, 4, 5], "a[3:6, None]", True),
    ([1, 4, 7], "a[1:8:3, None]", True),
    ([6], "a[6:7, None]", True),
    (GRID, "a[0:10].reshape(2, 5)[:, :3].reshape(-1, 1)", False),
    ([2, 0, 1], "a[_i0, None]", False),
    ([5, 6, 7, 8], "a[5:9, None]", True),
])
def test_a_column_of_params_is_a_view_where_a_slice_gives_it(positions, spelled, view):
    indexes = Indexes()
    expression = numpy_layout.column("a", positions, 10, indexes)
    a = np.arange(10.0)
    out = run(f"out = {expression}", indexes, a=a)["out"]
    assert expression == spelled and out.shape == (len(positions), 1)
    assert out[:, 0].tolist() == [float(p) for p in positions] and np.shares_memory(out, a) == view


def test_a_grid_that_would_run_past_the_array_is_an_index_array():
    indexes = Indexes()
    assert numpy_layout.column("a", GRID, 9, indexes) == "a[_i0, None]"  # 0 + 2 * 5 > 9
    assert indexes.lines == ["_i0 = np.array([\n    0, 1, 2, 5, 6, 7,\n])"]


@pytest.mark.parametrize("positions", [[3, 4, 5], [1, 4, 7], [6], GRID, [0, 2, 3]])
def test_assign_fills_exactly_the_positions_in_place(positions):
    indexes = Indexes()
    value = np.arange(1.0, len(positions) + 1)
    grads = np.zeros(10)
    run(numpy_layout.assign("grads", positions, 10, "value", indexes), indexes, grads=grads, value=value)
    want = np.zeros(10)
    want[positions] = value
    assert grads.tolist() == want.tolist()
    run(numpy_layout.assign("grads", positions, 10, "-1.0", indexes, scalar=True), indexes, grads=grads)
    assert grads[positions].tolist() == [-1.0] * len(positions)


def test_entries_take_the_whole_array_a_slice_or_an_index_array():
    indexes = Indexes()
    assert numpy_layout.entries("s", [0, 1, 2, 3], 4, indexes) == "s"
    assert numpy_layout.entries("s", [1, 2], 4, indexes) == "s[1:3]"
    assert numpy_layout.entries("s", [3, 1], 4, indexes) == "s[_i0]"
