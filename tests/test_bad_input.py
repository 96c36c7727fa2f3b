"""Bad input to every public entry point: the error's class, and a message saying what was
expected and what was given.  One parametrized test per entry point, one case per class of
bad input (wrong type, wrong length or shape, strings, None, mismatched nesting, non-finite
or oversized numbers, unknown names, calls out of order)."""
from __future__ import annotations

import decimal
import math

import numpy as np
import pytest

import graphc
from graphc import ArgumentError, DataError, GraphcError, ShapeError, TraceError, Value, apply
from graphc.autodiff import grad
from graphc.losses import log_sum_exp, softmax_cross_entropy
from graphc.nn import MLP, Layer, Neuron

HUGE = 10 ** 400  # an int no float can hold
p = Value(1.0)


def raises(call, error, message):
    with pytest.raises(error, match=message):
        call()


def self_containing():
    items = [1.0]
    items.append(items)
    return items


@pytest.mark.parametrize("call, error, message", [
    (lambda: Value("1.5"), TypeError, r"takes a real number .* got str '1.5'"),
    (lambda: Value(None), TypeError, r"takes a real number .* got NoneType None"),
    (lambda: Value([1.0]), TypeError, r"takes a real number .* got list \[1.0\]"),
    (lambda: Value(1 + 2j), TypeError, r"takes a real number .* got complex"),
    (lambda: Value(np.ones(2)), TypeError, r"takes a real number .* got ndarray"),
    (lambda: Value(Value(1.0)), TypeError, r"got a Value \(use it directly"),
    (lambda: Value(HUGE), DataError, r"fits in a float .* got int 1000.*\(401 digits\)"),
    (lambda: setattr(Value(1.0), "data", "a"), TypeError, r"takes a real number .* got str 'a'"),
], ids=["str", "None", "list", "complex", "array", "Value", "huge int", "data= str"])
def test_value(call, error, message):
    raises(call, error, message)


@pytest.mark.parametrize("call, error, message", [
    (lambda: Value(1.0) + "a", TypeError, r"unsupported operand type\(s\) for \+: 'Value' and 'str'"),
    (lambda: "a" + Value(1.0), TypeError, r"can only concatenate str \(not \"Value\"\)"),
    (lambda: Value(1.0) * None, TypeError, r"for \*: 'Value' and 'NoneType'"),
    (lambda: Value(1.0) ** None, TypeError, r"for \*\* or pow\(\): 'Value' and 'NoneType'"),
    (lambda: Value(1.0) / "x", TypeError, r"for /: 'Value' and 'str'"),
    (lambda: Value(1.0) - [1.0], TypeError, r"for -: 'Value' and 'list'"),
    (lambda: Value(1.0) ** decimal.Decimal(2), TypeError, r"'Value' and 'decimal.Decimal'"),
    (lambda: Value(1.0) ** HUGE, DataError, r"an exponent must be a real number that fits in a float"),
    (lambda: Value(1.0) * HUGE, DataError, r"an operand must be a real number that fits in a float"),
    (lambda: Value(1.0).max("x"), TypeError, r"max\(\) takes a Value or a number; got str"),  # returned NotImplemented
    (lambda: Value(1.0).max(None), TypeError, r"max\(\) takes a Value or a number; got NoneType"),
], ids=["+str", "str+", "*None", "**None", "/str", "-list", "**Decimal", "**huge", "*huge", "max(str)",
                          "max(None)"])
def test_value_operators(call, error, message):
    raises(call, error, message)


@pytest.mark.parametrize("call, error, message", [
    (lambda: apply("max", Value(1.0), "x"), TypeError, r"max takes Values or numbers; got str"),
    (lambda: apply("max", Value(1.0)), TypeError, r"max takes 2 operand\(s\), got 1"),
    (lambda: apply("sum"), TypeError, r"sum takes at least 1 operand\(s\), got 0"),
    (lambda: apply("frobnicate", Value(1.0)), GraphcError, r"unknown op 'frobnicate'; graphc knows add, "),
    (lambda: apply(3, Value(1.0)), TypeError, r"an op name or an ops.Op; got int"),
    (lambda: apply("pow", Value(1.0)), TypeError, r"pow takes 1 parameter\(s\) \('exponent',\) in attr=; got \(\)"),
    (lambda: apply("pow", Value(1.0), attr=("a",)), TypeError, r"parameters \('exponent',\) are numbers; got \('a',\)"),
    (lambda: apply("pow", Value(1.0), attr=(None,)), TypeError, r"are numbers; got \(None,\)"),
    (lambda: apply("exp", Value(1.0), attr=(2,)), TypeError, r"exp takes 0 parameter\(s\)"),
    (lambda: apply("dot", 1.0, 2.0, 3.0), TypeError, r"dot is a tensor op"),
], ids=["str operand", "too few", "no operands", "unknown op", "op not a name", "missing param",
        "str param", "None param", "extra param", "tensor op"])
def test_apply(call, error, message):
    raises(call, error, message)


@pytest.mark.parametrize("call, error, message", [
    (lambda: graphc.trace(3, 1.0), ArgumentError, r"needs a function or a Module to run; got int"),
    (lambda: graphc.trace(lambda x: x, "a"), ArgumentError, r"argument x: expected a number, .* got str 'a'"),
    (lambda: graphc.trace(lambda x: x, None), ArgumentError, r"argument x: expected .* got NoneType None"),
    (lambda: graphc.trace(lambda x: x, {"a": 1.0}), ArgumentError, r"argument x: expected .* got dict"),
    (lambda: graphc.trace(lambda x: x, [1.0, [2.0, "b"]]), ArgumentError, r"argument x\[1\]\[1\]: expected .* got str"),
    (lambda: graphc.trace(lambda x: x, self_containing()), ArgumentError, r"nested more than 100 levels"),
    (lambda: graphc.trace(lambda x: x, HUGE), DataError, r"argument x must be a real number that fits in a float"),
    (lambda: graphc.trace(lambda x: x, np.array(["a"])), ArgumentError, r"expected an array of numbers, got dtype <U1"),
    (lambda: graphc.trace(lambda x: "s", 1.0), TraceError, r"must return a Value, a number, .* its result is str 's'"),
    (lambda: graphc.trace(lambda x: object(), 1.0), TraceError, r"must return a Value, .* its result is object"),
    (lambda: graphc.trace(lambda x: {("k",): x}, 1.0), TraceError, r"its result: a dict's keys must be str"),
    (lambda: graphc.trace(lambda x: [x, ["s"]], 1.0), TraceError, r"its result\[1\]\[0\] is str"),
    (lambda: graphc.trace(lambda x: np.array([x]), 1.0), TraceError, r"its result is ndarray"),
    (lambda: graphc.trace(lambda x: x, 1.0, params=[1.0]), TraceError, r"params\[0\] is float, not a Value"),
    (lambda: graphc.trace(lambda x, y: x, 1.0), TypeError, r"missing 1 required positional argument: 'y'"),
], ids=["not callable", "str", "None", "dict", "nested str", "self-containing list", "huge int", "str array",
        "returns str", "returns None", "returns dict key", "returns nested str", "returns array", "params not Values",
        "too few args"])
def test_trace(call, error, message):
    raises(call, error, message)


@pytest.mark.parametrize("call, error, message", [
    (lambda: graphc.optimize(3), ArgumentError, r"optimize takes a graphc.Graph .* got int"),
    (lambda: graphc.optimize(graphc.trace(lambda x: x, 1.0), numerics="reckless"), ArgumentError,
     r"numerics must be one of 'exact', 'stable', 'fast'; got 'reckless'"),
    (lambda: grad(graphc.trace(lambda x: x, 1.0), 5), GraphcError, r"output 5 does not exist: the graph has 1 output"),
    (lambda: graphc.to_sympy("x + 1"), ArgumentError, r"to_sympy takes a graphc.Graph .* got str"),
], ids=["optimize non-graph", "unknown numerics", "grad of a missing output", "to_sympy non-graph"])
def test_graph_functions(call, error, message):
    raises(call, error, message)


@pytest.mark.parametrize("call, error, message", [
    (lambda: graphc.compile(3), ArgumentError, r"needs a function or a Module; got int"),
    (lambda: graphc.compile(lambda x: x, backend="fortran"), ArgumentError,
     r"unknown backend 'fortran'; choose one of auto, numpy, python, c"),
    (lambda: graphc.compile(lambda x: x, backend=3), ArgumentError, r"unknown backend 3"),
    (lambda: graphc.compile(lambda x: x, numerics=None), ArgumentError, r"numerics must be one of .* got None"),
], ids=["not callable", "unknown backend", "backend not a str", "numerics None"])
def test_compile(call, error, message):
    raises(call, error, message)


one = graphc.compile(lambda x: x * p)
two = graphc.compile(lambda x, y: x * y)


@pytest.mark.parametrize("args, error, message", [
    (("text",), ArgumentError, r"argument x: expected a number, a Value, a NumPy array of numbers, .* got str"),
    ((None,), ArgumentError, r"argument x: expected .* got NoneType None"),
    (({"x": 1.0},), ArgumentError, r"argument x: expected .* got dict"),
    ((object(),), ArgumentError, r"argument x: expected .* got object"),
    (([1.0, "x"],), ArgumentError, r"argument x\[1\]: expected .* got str 'x'"),
    ((1 + 2j,), ArgumentError, r"got complex"),
    ((np.array(["a"]),), ArgumentError, r"expected an array of numbers, got dtype <U1"),
    ((np.array([1.0, None], dtype=object),), ArgumentError, r"got dtype object"),
    ((HUGE,), DataError, r"argument x must be a real number that fits in a float"),
    ((self_containing(),), ArgumentError, r"nested more than 100 levels deep \(a list or dict that contains itself\?\)"),
    ((), TypeError, r"missing 1 required positional argument: 'x'"),
    ((1.0, 2.0), TypeError, r"takes 1 positional argument but 2 were given"),
], ids=["str", "None", "dict", "object", "nested str", "complex", "str array", "object array", "huge int",
        "self-containing list", "too few", "too many"])
def test_compiled_call(args, error, message):
    before = one.trace_count
    raises(lambda: one(*args), error, message)
    assert one.trace_count == before


def failing(x):
    raise ZeroDivisionError("division by zero")


@pytest.mark.parametrize("call, error, message", [
    # Python's TypeError, as eager's [1.0, 2.0] * 3.0 raises (an int argument repeats the list, as eager's 3 does)
    (lambda: two([1.0, 2.0], 3.0), TypeError, r"argument y \(a float\) used as an index, a size or a count"),
    (lambda: graphc.compile(failing)(1.0), ZeroDivisionError, r"division by zero"),
    (lambda: graphc.compile(lambda x: "s")(1.0), TraceError, r"must return a Value, a number, .* its result is str"),
    (lambda: graphc.compile(lambda x: graphc.compile(lambda y: y * 2.0, numerics="fast")(x))(1.0), TraceError,
     r"lambda \(numerics='fast'\) was called inside another trace, which traces it through with its own "
     r"numerics: compile the plain function instead"),
], ids=["nesting fn does not accept", "fn raises", "returns non-Value", "compiled with other numerics inside traced"])
def test_compiled_call_of_a_failing_function(call, error, message):
    raises(call, error, message)


@pytest.mark.parametrize("call, error, message", [
    (lambda: one.map(), ArgumentError, r"need at least one batched argument \(an array of shape \(N, \.\.\.\)\)"),
    (lambda: one.map("abc"), ArgumentError, r"expected an array of numbers with a leading batch axis; got dtype <U3"),
    (lambda: one.map(None), ArgumentError, r"expected an array of numbers .* got dtype object"),
    (lambda: one.map([HUGE]), DataError, r"argument x: expected numbers that fit in a float .*; got an int too large"),
    (lambda: one.map([2 ** 64, None]), ArgumentError, r"got dtype object"),
    (lambda: one.map(np.array([1j])), ArgumentError, r"got dtype complex128"),
    (lambda: one.map(3.0), ShapeError, r"expected a leading batch axis \(shape \(N, \.\.\.\)\); got a scalar"),
    (lambda: one.map([[1.0], [1.0, 2.0]]), ShapeError, r"cannot be read as an array of shape \(N, \.\.\.\)"),
    (lambda: two.map(np.zeros(3), np.zeros(4)), ShapeError, r"same number of rows: x has 3, y has 4"),
    (lambda: two.map(np.zeros(3)), TypeError, r"missing 1 required positional argument: 'y'"),
    (lambda: one.map(np.array([1.0, np.nan])), DataError, r"expected finite numbers; x\[1\] is nan \(pass allow_nonfinite"),
    (lambda: one.map(np.array([[0.0, -np.inf]])), DataError, r"x\[0, 1\] is -inf|x\[0,1\] is -inf|x\[0\]\[1\]|is -inf"),
    (lambda: one.map(np.array([1e4000], dtype=np.longdouble)), DataError, r"is inf"),
], ids=["no args", "str", "None", "huge int", "int and None", "complex", "scalar", "ragged", "row counts", "too few",
        "nan", "-inf", "longdouble overflow"])
def test_map(call, error, message):
    raises(call, error, message)


@pytest.mark.parametrize("call, error, message", [
    (lambda: one.mean(np.zeros(0)), ShapeError, r"mean over zero rows is undefined: pass at least one row"),
    (lambda: graphc.compile(lambda x: [x, x]).mean(np.zeros(3)), GraphcError,
     r"mean needs a function returning one scalar; lambda returns \[scalar, scalar\]"),
    (lambda: one.mean(np.array([np.inf])), DataError, r"expected finite numbers"),
    (lambda: one.mean("a"), ArgumentError, r"got dtype <U1"),
], ids=["zero rows", "non-scalar fn", "inf", "str"])
def test_mean(call, error, message):
    raises(call, error, message)


@pytest.mark.parametrize("call, error, message", [
    (lambda: one.mean_and_grad(np.ones(2), params=np.array([np.longdouble("1e400")])), DataError,
     r"params: expected real numbers that fit in a float \(\|x\| < 1.8e308\); item \[0\] is"),
    (lambda: one.mean_and_grad(np.ones(2), params=[HUGE]), DataError, r"params: expected numbers that fit in a float"),
    (lambda: one.mean_and_grad(np.ones(2), params=["a"]), ArgumentError, r"params: expected numbers, one per param"),
    (lambda: one.mean_and_grad(np.ones(2), params=[1.0, 2.0]), ShapeError, r"params: expected 1 numbers"),
    (lambda: one.mean_and_grad(np.ones(2), params=[None]), ArgumentError, r"got list of dtype object"),
    (lambda: one.mean_and_grad(np.ones(2), params=["1.5"]), ArgumentError, r"got list of dtype <U3"),
    (lambda: one.mean_and_grad(np.ones(2), params=np.array([1 + 2j])), ArgumentError, r"dtype complex128"),
    (lambda: one.mean_and_grad(np.ones(2), params=np.ma.masked_array([1.0], mask=[True])), ArgumentError,
     r"params: a masked array with masked entries"),
], ids=["longdouble overflow", "huge int", "str", "too many", "None", "text", "complex", "masked"])
def test_params_arrays(call, error, message):
    """Found by an outside hunt and a review: a longdouble 1e400 became inf, a huge int an
    OverflowError, None nan, "1.5" 1.5, a complex number its real part, a masked entry the
    number under the mask."""
    raises(call, error, message)


@pytest.mark.parametrize("attribute", ["source", "graph", "stats"])
def test_inspection_before_a_call(attribute):
    raises(lambda: getattr(graphc.compile(lambda x: x), attribute), GraphcError,
           r"lambda has not been called yet: call it once so it can be traced")


@pytest.mark.parametrize("call, error, message", [
    (lambda: Neuron("a"), TypeError, r"Neuron\(nin\): a number of inputs must be an int; got str 'a'"),
    (lambda: Neuron(-1), ValueError, r"must be at least 0; got -1"),
    (lambda: Neuron(2, activation="gelu"), ValueError, r"activation must be one of 'relu', .* got 'gelu'"),
    (lambda: Neuron(2, w=[1.0]), ValueError, r"needs 2 initial weights; got 1"),
    (lambda: Layer(2, 0), ValueError, r"nout, a number of neurons must be at least 1; got 0"),
    (lambda: MLP(2, 3), TypeError, r"nouts is a non-empty list of layer sizes, e.g. \[16, 16, 1\]; got int 3"),
    (lambda: MLP(2, []), TypeError, r"non-empty list .* got list \[\]"),
    (lambda: MLP(2, [4, "a"]), TypeError, r"every layer size in nouts must be an int; got str 'a'"),
    (lambda: MLP(3, [2])([1.0, 2.0]), ShapeError, r"LinearNeuron\(3\) takes 3 inputs; got 2"),
    (lambda: graphc.compile(MLP(3, [2]))([1.0, 2.0, 3.0, 4.0]), ShapeError, r"takes 3 inputs; got 4"),
    (lambda: graphc.compile(MLP(3, [2]))(np.zeros((5, 2))), ShapeError, r"takes 3 inputs; got 2"),
], ids=["nin str", "nin negative", "activation", "weights", "nout 0", "nouts int", "nouts empty",
        "nouts str", "model short input", "compiled long input", "compiled narrow batch"])
def test_nn(call, error, message):
    raises(call, error, message)


@pytest.mark.parametrize("call, error, message", [
    (lambda: graphc.export(3, "/nonexistent/x.py"), TypeError, r"takes a graphc.compile\(\.\.\.\) result; got int"),
    (lambda: graphc.export(graphc.compile(lambda x: x), "/nonexistent/x.py"), GraphcError, r"has not been called yet"),
    (lambda: graphc.check_grad(3, 1.0), ArgumentError, r"needs a function or a Module; got int"),
    (lambda: graphc.check_grad(lambda x: x, "a"), ArgumentError, r"argument x: expected .* got str 'a'"),
    (lambda: log_sum_exp([]), ValueError, r"needs at least one value; got none"),
    (lambda: softmax_cross_entropy([Value(1.0)], [1.0, 0.0]), ValueError, r"one entry per output \(1\); got 2"),
], ids=["export non-compiled", "export before call", "check_grad non-callable", "check_grad str",
        "log_sum_exp empty", "cross-entropy lengths"])
def test_other_entry_points(call, error, message):
    raises(call, error, message)


def test_tensors_as_data_are_told_how_to_pass_them():
    """A torch tensor that requires grad raised torch's own RuntimeError from map; one as a
    scalar argument was called another library's Value (an outside hunt)."""
    torch = pytest.importorskip("torch")
    compiled = graphc.compile(lambda x: x * Value(0.5))
    with pytest.raises(ArgumentError, match=r"argument x: NumPy cannot read this Tensor .*x.detach\(\).numpy\(\)"):
        compiled.mean_and_grad(torch.ones(3, requires_grad=True))
    with pytest.raises(ArgumentError, match=r"argument x is a torch.Tensor: graphc takes data as NumPy arrays"):
        compiled(torch.tensor(1.0))
    assert compiled.map(torch.ones(2, dtype=torch.float64)).tolist() == [0.5, 0.5]


def test_every_error_class_is_a_graphc_error_and_a_builtin_one():
    assert issubclass(ArgumentError, (GraphcError, TypeError)) and issubclass(ArgumentError, TypeError)
    assert issubclass(ShapeError, GraphcError) and issubclass(ShapeError, ValueError)
    assert issubclass(DataError, GraphcError) and issubclass(DataError, ValueError)
    assert not math.isnan(one(2.0).data)  # the entry points still work after all the above
