"""depth_first_ids and depth_first_through: depth_first's order over graph node ids, and over
Values of one class (the trace's walk)."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from graphc import Value, trace
from graphc.walk import depth_first, depth_first_ids, depth_first_through
from strategies import programs, replay


@settings(max_examples=200)
@given(programs(max_ops=20), st.data())
def test_depth_first_ids_is_depth_first(spec, data):
    g = trace(lambda *xs: replay(spec, list(xs[:3]), list(xs[3:])), *[0.5] * (3 + spec["n_params"]))
    roots = data.draw(st.lists(st.integers(0, len(g) - 1), min_size=1, max_size=4))
    assert depth_first_ids(roots, g.args) == depth_first(roots, g.args.__getitem__)


class Own(Value):
    __slots__ = ()


@settings(max_examples=200)
@given(programs(max_ops=20), st.data())
def test_depth_first_through_is_depth_first_stopping_at_other_classes(spec, data):
    roots = replay(spec, [Value(0.5) for _ in range(3)], [Value(0.5) for _ in range(spec["n_params"])])
    everything = depth_first(roots, lambda v: v._prev)
    for v, own in zip(everything, data.draw(st.lists(st.booleans(), min_size=len(everything),
                                                       max_size=len(everything)))):
        if own:
            v.__class__ = Own
    order, stops = depth_first_through(roots, Own)
    expected = depth_first(roots, lambda v: v._prev if type(v) is Own else ())
    assert list(order) == expected and set(order.values()) == {None}
    assert stops == [v for v in expected if type(v) is not Own]
