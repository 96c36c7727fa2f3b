"""depth_first_ids: depth_first's order over graph node ids."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from graphc import trace
from graphc.walk import depth_first, depth_first_ids
from strategies import programs, replay


@settings(max_examples=200)
@given(programs(max_ops=20), st.data())
def test_depth_first_ids_is_depth_first(spec, data):
    g = trace(lambda *xs: replay(spec, list(xs[:3]), list(xs[3:])), *[0.5] * (3 + spec["n_params"]))
    roots = data.draw(st.lists(st.integers(0, len(g) - 1), min_size=1, max_size=4))
    assert depth_first_ids(roots, g.args) == depth_first(roots, g.args.__getitem__)
