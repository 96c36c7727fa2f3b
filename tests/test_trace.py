"""Tracing: inputs, params, constants, structures, warnings and errors."""
from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from graphc import TraceError, TracerWarning, Value, trace
from graphc.nn import MLP


def test_inputs_params_and_constants():
    w = Value(3.0, label="w")
    g = trace(lambda x, y: x * w + Value(2.0) + 1.5, 1.0, 2.0)
    assert [g.ops[i] for i in g.inputs] == ["input", "input"]
    assert g.param_values == [w]
    consts = sorted(g.attrs[i][0] for i, op in enumerate(g.ops) if op == "const")
    assert consts == [1.5, 2.0]


def test_inputs_keep_one_node_per_scalar_used_or_not():
    g = trace(lambda x, y: x[0] * 2.0, [1.0, 2.0, 3.0], 4.0)
    assert len(g.inputs) == 4
    assert [g.attrs[i][0] for i in g.inputs] == ["x[0]", "x[1]", "x[2]", "y"]


def test_numpy_array_arrives_as_nested_lists_of_values():
    seen = {}

    def fn(X):
        seen["type"] = (type(X), type(X[0]), type(X[0][0]), len(X), len(X[0]))
        return X[1][0] + X[0][2]
    g = trace(fn, np.arange(6.0).reshape(2, 3))
    assert seen["type"][0] is list and seen["type"][1] is list and issubclass(seen["type"][2], Value)
    assert seen["type"][3:] == (2, 3)
    assert len(g.inputs) == 6 and g.attrs[g.inputs[4]][0] == "X[1][1]"


def test_params_in_creation_order_and_given_order_first():
    random.seed(0)
    model = MLP(3, [4, 1])
    g = trace(lambda x: model(x), [1.0, 2.0, 3.0])
    assert g.param_values == model.parameters()
    a, b = Value(1.0), Value(2.0)
    g = trace(lambda x: b * x + a, 1.0, params=[b])
    assert g.param_values == [b, a]


def test_captured_intermediates_are_recomputed_from_their_params():
    p = Value(2.0)
    h = p * 3.0  # built before tracing: its constant 3.0 is not a param
    g = trace(lambda x: h * x, 1.0)
    assert g.param_values == [p]
    assert "mul" in g.ops


def test_reading_data_of_traced_values_warns():
    def branchy(x):
        return x * 2.0 if (x * 1.0).data > 0 else x
    with pytest.warns(TracerWarning, match="frozen at trace time"):
        trace(branchy, 1.0)
    with pytest.warns(TracerWarning):
        trace(lambda x: Value(x.data), 1.0)


def test_constants_and_params_read_without_warning():
    p = Value(2.0)

    def fn(x):
        c = Value(3.0)
        return x * (p.data + c.data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = trace(fn, 1.0)
    assert g.param_values == []


def test_returning_a_non_value_is_a_clear_error():
    with pytest.raises(TraceError, match="must return a Value, a number"):
        trace(lambda x: "nope", 1.0)
    with pytest.raises(TraceError, match=r"\[1\] is dict"):
        trace(lambda x: [x, {}], 1.0)


def test_output_structure_and_number_outputs():
    g = trace(lambda x: (x, [x * 2.0, 7.0]), 1.0)
    assert g.out_tree == ("tuple", ("scalar", ("list", ("scalar", "scalar"))))
    assert g.ops[g.outputs[2]] == "const" and g.attrs[g.outputs[2]] == (7.0,)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_paused_while_tracing_and_left_as_found(enabled):
    import gc
    seen = []

    def fn(x):
        seen.append(gc.isenabled())
        inner = trace(lambda y: y * 2.0, 1.0)  # a nested trace does not switch it back on
        seen.append(gc.isenabled())
        return x + inner.ops.count("mul")

    (gc.enable if enabled else gc.disable)()
    try:
        trace(fn, 1.0)
        assert seen == [False, False] and gc.isenabled() == enabled
        with pytest.raises(ZeroDivisionError):
            trace(lambda x: 1 / 0, 1.0)
        assert gc.isenabled() == enabled
    finally:
        gc.enable()
