"""Tracing: inputs, params, constants, structures, warnings and errors."""
from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

import graphc
from graphc import ArgumentError, GraphcError, TraceError, TracerWarning, Value, trace
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
    assert issubclass(seen["type"][0], list) and issubclass(seen["type"][1], list) and issubclass(seen["type"][2], Value)
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


def test_a_value_computed_outside_is_a_param_read_as_it_is_and_backward_goes_on_into_its_history():
    """Regression (an outside tester): ``h = p * 3`` made before the trace was recomputed from
    ``p`` on every call, so a write to ``h.data`` was ignored, a change of ``p.data`` showed
    where eager's ``h`` keeps its number, and ``h.grad`` stayed 0.  Now it is read as eager
    reads it, and the gradient flows on through it into ``p``, as eager's does."""
    p, q = Value(2.0, label="p"), Value(5.0, label="q")
    h = p * 3.0
    g = trace(lambda x: h * x + q, 1.0)
    assert g.param_values == [q, h] and "mul" in g.ops and len([o for o in g.ops if o == "mul"]) == 1
    f = graphc.compile(lambda x: h * x + q)
    p.data = 4.0  # eager's h keeps 6.0
    assert f(2.0).data == (h * 2.0 + q).data == 17.0
    h.data = 10.0
    assert f(2.0).data == 25.0
    out = f(2.0)
    out.backward()
    assert (h.grad, p.grad, q.grad) == (2.0, 6.0, 1.0)
    inner = graphc.compile(lambda x: x * x)
    earlier = inner(Value(3.0, label="y"))  # an earlier compiled call's output, captured
    outer = graphc.compile(lambda x: earlier * x)
    assert outer(2.0).data == 18.0


def test_deciding_on_traced_values_warns_naming_the_guards():
    def branchy(x):
        return x * 2.0 if (x * 1.0).data > 0 else x
    with pytest.warns(TracerWarning, match=r"holds the branch .* guard at test_trace.py:\d+ .*`\(x \* 1.0\) > 0.0`"):
        trace(branchy, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Value(x.data): x's number, live, through stop_gradient; no guard
        g = trace(lambda x: Value(x.data), 1.0)
    assert [g.ops[i] for i in g.outputs] == ["stop_gradient"]


def test_constants_read_without_warning_and_params_read_as_guards():
    p = Value(2.0)

    def fn(x):
        c = Value(3.0)
        return x * c.data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = trace(fn, 1.0)
    assert g.param_values == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # p.data is live: computed through stop_gradient, no guard
        g = trace(lambda x: x * (p.data + Value(3.0).data), 1.0)
    assert g.param_values == [p] and "stop_gradient" in g.ops


def test_returning_a_non_value_is_a_clear_error():
    with pytest.raises(TraceError, match="must return a Value, a number"):
        trace(lambda x: "nope", 1.0)
    with pytest.raises(TraceError, match=r"\[1\] is set"):
        trace(lambda x: [x, {x}], 1.0)
    with pytest.raises(TraceError, match=r"its result\[1\]: a dict.s keys must be str .* got key int 2"):
        trace(lambda x: [x, {2: x}], 1.0)


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


class ForeignValue:
    """A stand-in for another library's Value: micrograd's shape, in a few lines."""

    def __init__(self, data, _children=()):
        self.data, self.grad, self._prev = data, 0, set(_children)

    def __mul__(self, other):
        other = other if isinstance(other, ForeignValue) else ForeignValue(other)
        return ForeignValue(self.data * other.data, (self, other))

    __rmul__ = __mul__

    def relu(self):
        return ForeignValue(0 if self.data < 0 else self.data, (self,))

    def log(self):
        return ForeignValue(self.data.bit_length(), (self,))  # an int method: fails on a graphc Value


class ForeignModule:
    def __init__(self):
        self.w = ForeignValue(2.0)

    def __call__(self, x):
        return (self.w * x[0]).relu()

    def parameters(self):
        return [self.w]


FOREIGN = r"ForeignValue, another library's Value: graphc traces graphc.Value only.*from graphc.nn import MLP"


def test_a_foreign_module_is_refused_at_compile_and_trace():
    with pytest.raises(GraphcError, match="a parameter of ForeignModule is a .*" + FOREIGN):
        graphc.compile(ForeignModule())
    with pytest.raises(TraceError, match=FOREIGN):
        trace(ForeignModule(), [1.0])


def test_foreign_values_as_arguments_outputs_or_operands_get_the_same_advice():
    w = ForeignValue(3.0)
    with pytest.raises(ArgumentError, match="argument x is a .*" + FOREIGN):
        graphc.compile(lambda x: x * 2.0)(ForeignValue(1.0))
    with pytest.raises(TraceError, match="its result is a .*" + FOREIGN):
        trace(lambda x: x * w, 1.0)  # Value.__mul__ declines, ForeignValue.__rmul__ takes it
    with pytest.raises(TraceError, match="its result is a .*" + FOREIGN):
        trace(lambda x: (w * x).relu(), 1.0)  # relu compares a traced Value with 0: a guard, then its result
    with pytest.raises(TraceError, match="computed with is a .*" + FOREIGN) as caught:
        trace(lambda x: (w * x).log(), 1.0)  # its method fails on a graphc Value
    assert isinstance(caught.value.__cause__, AttributeError)  # the original error is kept


def test_errors_of_fn_itself_pass_through_unchanged():
    with pytest.raises(ZeroDivisionError):
        trace(lambda x: 1 / 0, 1.0)
    with pytest.raises(TypeError, match="unsupported operand"):
        trace(lambda x: x + "a", 1.0)


def test_a_graphc_module_and_objects_with_other_parameters_are_not_foreign():
    class Tuning:  # parameters() that are not Values at all: nothing to say, tracing decides
        def __call__(self, x):
            return x * 2.0

        def parameters(self):
            return ["lr", 0.1]
    assert graphc.compile(Tuning())(3.0).data == 6.0
    random.seed(0)
    assert len(trace(MLP(2, [1]), [1.0, 2.0]).params) == 3


def test_micrograd_mlp_itself_gets_the_advice():
    micrograd_nn = pytest.importorskip("micrograd.nn")
    with pytest.raises(GraphcError, match="micrograd.engine.Value, another library's Value.*import Value"):
        graphc.compile(micrograd_nn.MLP(2, [4, 1]))


def test_writing_data_while_traced_is_refused_naming_the_line_and_nothing_is_written():
    """Regression (an outside tester): a weight clipped inside the function (``v.data =
    min(v.data, 1.0)``) was written once, at the trace, and every later call computed with
    whatever ``v.data`` held; an update inside (``w.data -= 0.25``) got a misleading "not
    deterministic" error."""
    v = Value(5.0, label="v")

    def clipped(x):
        v.data = min(v.data, 1.0)
        return x * v

    def stepped(x):
        loss = (x * v - 1) ** 2
        v.data -= 0.25
        return loss

    def made_inside(x):
        h = x * 2
        h.data = 3.0
        return h
    for fn in (clipped, stepped, made_inside):
        with pytest.raises(TraceError, match=r"test_trace\.py:\d+: the function writes .*while it is traced"):
            graphc.compile(fn)(1.0)
        with pytest.raises(TraceError, match="while it is traced"):
            trace(fn, 1.0)
    assert v.data == 5.0
    v.data = 2.0  # outside a trace, as ever
    assert graphc.compile(lambda x: x * v)(3.0).data == 6.0


def test_zero_grad_or_backward_inside_the_traced_function_is_refused_at_the_users_line():
    """PyTorch's closure pattern (``zero_grad(); loss = ...; loss.backward()``) compiled as
    is: each would run once, at the trace -- later calls' gradients piling onto the first's,
    or never written -- so each is refused, naming the user's line, and no .grad is changed."""
    random.seed(0)
    model = MLP(2, [3, 1])

    def zeroing(x):
        model.zero_grad()
        return (model(x) - 1.0) ** 2

    def by_hand(x):
        for p in model.parameters():
            p.grad = 0.0
        return (model(x) - 1.0) ** 2

    def backward_inside(x):
        loss = (model(x) - 1.0) ** 2
        loss.backward()
        return loss
    for fn, what in ((zeroing, "the function writes the .grad of 'L0.N0.w0'"),
                     (by_hand, "the function writes the .grad"),
                     (backward_inside, r"backward\(\) inside the traced function")):
        with pytest.raises(TraceError, match=rf"test_trace\.py:\d+: {what}"):
            graphc.compile(fn)([1.0, 2.0])
        assert all(p.grad == 0 and type(p.grad) is int for p in model.parameters())
    step = graphc.compile(lambda x: (model(x) - 1.0) ** 2)
    for _ in range(2):  # the loop as micrograd writes it: zero_grad outside, then backward
        model.zero_grad()
        step([1.0, 2.0]).backward()
    eager = (model([Value(1.0), Value(2.0)]) - 1.0) ** 2
    grads = [p.grad for p in model.parameters()]
    model.zero_grad()
    eager.backward()
    assert grads == [p.grad for p in model.parameters()]
