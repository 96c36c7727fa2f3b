"""Eager Value: micrograd's semantics and numbers, NumPy scalars, depth, IEEE edge cases."""
from __future__ import annotations

import copy
import math
import sys
import warnings

import numpy as np
import pytest

import graphc

from graphc import DataError, Value, engine, runtime


def test_micrograd_readme_example():
    # micrograd's README: prints 24.7041, 138.8338, 645.5773.
    a = Value(-4.0)
    b = Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    assert f"{g.data:.4f}" == "24.7041"
    assert f"{a.grad:.4f}" == "138.8338"
    assert f"{b.grad:.4f}" == "645.5773"


def test_micrograd_sanity_check():
    # micrograd's test/test_engine.py::test_sanity_check (checked there against PyTorch).
    x = Value(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    assert y.data == -20.0
    assert x.grad == 46.0


def test_node_structure_is_micrograds():
    x, y = Value(2.0), Value(3.0)
    assert x._op == "" and x.grad == 0 and x._prev == ()
    assert (x + y)._op == "+" and (x * y)._op == "*" and (x**2)._op == "**2"
    assert x.relu()._op == "ReLU" and (x * y)._prev == (x, y)
    assert (1 + x)._prev[0] is x  # __radd__ builds self + other, as micrograd
    sq = x * x
    assert sq._prev == (x, x)
    sq.backward()
    assert x.grad == 4.0


def test_reused_subexpressions_accumulate():
    a = Value(1.5)
    b = a * a + a          # a used three times
    c = b * b              # b used twice
    c.backward()
    assert b.grad == 2 * b.data
    assert a.grad == pytest.approx(2 * b.data * (2 * a.data + 1))


def test_backward_twice_double_counts_like_micrograd():
    a = Value(3.0)
    out = a * 2
    out.backward()
    out.backward()
    assert a.grad == 4.0


@pytest.mark.parametrize("scalar", [np.float64(2.5), np.int64(3), np.float32(0.5), np.int32(-2), 2, 2.5, True])
def test_numpy_and_python_scalars_on_both_sides(scalar):
    v = Value(1.25)
    f = float(scalar)
    results = {
        "add": (v + scalar, scalar + v, 1.25 + f),
        "sub": (v - scalar, None, 1.25 - f),
        "rsub": (scalar - v, None, f - 1.25),
        "mul": (v * scalar, scalar * v, 1.25 * f),
        "div": (v / scalar, None, 1.25 * runtime.pow(f, -1)),
        "rdiv": (scalar / v, None, f * 1.25**-1),
        "pow": (v ** scalar, None, runtime.pow(1.25, f)),
        "rpow": (scalar ** v, None, runtime.pow(f, 1.25)),  # nan for a negative base
    }
    for name, (left, right, expected) in results.items():
        for r in (left, right):
            if r is not None:
                assert isinstance(r, Value), (name, type(r))
                assert r.data == expected or (math.isnan(r.data) and math.isnan(expected)), name
                assert type(r.data) is float


def test_moons_demo_operand_types():
    # The demo computes `-yi*scorei` with yi an np.int64 and feeds np.float64 rows to Value.
    yi, score = np.int64(-1), Value(0.75)
    out = 1 + -yi * score
    assert isinstance(out, Value) and out.data == 1.75
    assert Value(np.float64(0.1)).data == 0.1


def test_a_format_spec_formats_the_number():
    """A compiled function returns Values where eager code returned floats (``round(acc, 2)``):
    ``f"{acc:.2f}"`` raised (an outside hunt).  Without a spec, the repr, as before."""
    v = Value(2.0 / 3)
    assert f"{v:.2f}|{v:>9.1e}|{v}" == f"0.67|  6.7e-01|{v!r}"
    accuracy = graphc.compile(lambda x: (x, round(x.data * 0.5, 2)))(3.0)[1]
    assert f"{accuracy:.1%}" == "150.0%"


def test_data_is_a_float_and_rejects_non_numbers():
    assert type(Value(3).data) is float and type(Value(np.float32(1.5)).data) is float
    assert Value(np.array(2.0)).data == 2.0
    for bad in ["1.5", None, [1.0], 1 + 2j, Value(1.0)]:
        with pytest.raises(TypeError, match="Value\\(\\) takes a real number"):
            Value(bad)
    with pytest.raises(TypeError):
        Value(1.0) + "a"
    with pytest.raises(TypeError):
        "a" * Value(1.0)
    with pytest.raises(TypeError):
        Value(1.0) ** None
    v = Value(1.0)
    v.data = np.float64(2.0)
    assert type(v.data) is float


def test_million_deep_chain_backpropagates():
    depth = 1_000_000
    x = Value(0.5)
    y = x
    for _ in range(depth):
        y = y * 1.0 + 0.0
    assert sys.getrecursionlimit() < depth
    y.backward()
    assert y.data == 0.5 and x.grad == 1.0


@pytest.mark.parametrize("x", [1000.0, -1000.0, 1e308, -1e308])
def test_tanh_and_sigmoid_are_stable(x):
    t, s = Value(x).tanh(), Value(x).sigmoid()
    assert t.data == math.copysign(1.0, x)
    assert s.data == (1.0 if x > 0 else 0.0)
    t.backward()
    s.backward()
    assert t._prev[0].grad == 0.0 and s._prev[0].grad == 0.0


def test_ieee_results_where_micrograd_raises():
    assert Value(1000.0).exp().data == math.inf
    assert (Value(0.0) ** -1).data == math.inf
    assert (1 / Value(0.0)).data == math.inf
    assert Value(0.0).log().data == -math.inf
    assert math.isnan(Value(-1.0).log().data)
    assert math.isnan((Value(-8.0) ** (1 / 3)).data)


def test_value_power_and_named_ops():
    x, y = Value(2.0), Value(3.0)
    z = x ** y
    z.backward()
    assert z.data == 8.0 and x.grad == 12.0 and y.grad == pytest.approx(8.0 * math.log(2.0))
    for name in ["relu", "tanh", "exp", "log", "sigmoid", "sin", "cos"]:
        assert callable(getattr(Value(1.0), name))
        assert getattr(Value, name).__doc__


def test_longdouble_too_large_for_a_float_is_a_data_error_not_inf():
    big = np.longdouble("1e400")  # float(big) is a silent inf, not an OverflowError
    for make in [lambda: Value(big), lambda: Value(np.array(big)), lambda: setattr(Value(1.0), "data", -big),
                 lambda: Value(1.0) * big, lambda: big + Value(1.0)]:
        with pytest.raises(DataError, match=r"fits in a float .* got (longdouble|ndarray) -?1e\+400"):
            make()
    assert Value(np.longdouble("0.1")).data == 0.1 and Value(np.longdouble("-1e300")).data == -1e300
    assert Value(np.longdouble("inf")).data == math.inf and math.isnan(Value(np.longdouble("nan")).data)


def test_numpy_bools_are_numbers_like_python_bools():
    assert Value(np.bool_(True)).data == 1.0
    assert (Value(2.0) * np.bool_(True)).data == 2.0 and (np.bool_(True) + Value(2.0)).data == 3.0
    assert (Value(2.0) - np.array(0.5)).data == 1.5  # 0-d arrays, as Value() takes them


def test_abs_and_sqrt_micrograd_style():
    x = Value(-2.25)
    a, b, c = abs(x), x.abs(), (-x).sqrt()
    assert (a.data, b.data, c.data) == (2.25, 2.25, 1.5)
    assert (a._op, b._op, c._op) == ("abs", "abs", "sqrt") and a._prev == (x,)
    (a + b + c).backward()
    assert x.grad == pytest.approx(-1.0 - 1.0 - 1 / 3, rel=1e-15)  # d|x| = sign(x); d sqrt(-x) = -0.5 / sqrt(-x)
    assert math.isnan(Value(-1.0).sqrt().data) and math.copysign(1, abs(Value(-0.0)).data) == 1


def test_operators_are_generated_from_the_op_table_with_micrograds_operand_order():
    x = Value(3.0)
    assert [v._prev[0] is x for v in (x + 2, 2 + x, x * 2, 2 * x, x - 2)] == [True] * 5  # radd/rmul: self first
    assert (2 - x)._prev[1] is x and (2 ** x)._prev[1] is x and (2 ** x)._op == "**"
    assert (x ** 2)._op == "**2" and (x ** x)._op == "**" and (-x)._op == "neg"
    assert (x / 2).data == 1.5 and (6 / x).data == 6 * 3.0 ** -1
    with pytest.raises(TypeError):
        x + "a"


def test_tracing_state_is_one_thread_local_restored_on_exit():
    from graphc.guards import Record
    from graphc.trace import TracedValue
    outer, inner = Record(), Record()
    with engine.tracing(TracedValue, outer):
        with engine.tracing(TracedValue, inner):
            assert engine.current_record() is inner and engine._this_thread.depth == 2
        assert engine.current_record() is outer
    assert engine.current_record() is None and not engine.is_tracing()
    assert engine._this_thread.node_class is Value and not engine._tracing_threads


def test_data_is_read_by_a_c_getter_while_no_thread_traces():
    from graphc.guards import Record
    from graphc.trace import TracedValue
    assert Value.__dict__["data"] is engine._PLAIN_DATA
    with engine.tracing(TracedValue, Record()):
        assert Value.__dict__["data"] is engine._TRACED_DATA
    assert Value.__dict__["data"] is engine._PLAIN_DATA and Value.data.__doc__ == engine._TRACED_DATA.__doc__
    v = Value(1.0)
    v.data = np.float32(0.5)
    assert type(v.data) is float and v.data == 0.5


def test_data_epoch_changes_after_any_write_and_a_claim_holds_only_when_nothing_else_wrote():
    v = Value(1.0)
    epoch = engine.data_epoch()
    assert engine.data_epoch() == epoch  # nothing written
    v.data = 2.0
    assert engine.data_epoch() == epoch + 1
    epoch = engine.data_epoch()
    v._data = 3.0  # graphc's own write of numbers it holds (train's write-back)
    assert engine.claim_writes(epoch) == epoch + 1 and engine.data_epoch() == epoch + 1
    epoch = engine.data_epoch()
    v.data = 4.0  # another writer between the read and the claim: no claim, and a new epoch
    assert engine.claim_writes(epoch) is None and engine.data_epoch() == epoch + 1


def _micrograd_tanh(x):
    """micrograd's tanh as its lecture writes it: a node of its own, with its own _backward."""
    t = math.tanh(x.data)
    out = Value(t, (x,), "tanh")

    def _backward():
        x.grad += (1 - t**2) * out.grad
    out._backward = _backward
    return out


def test_an_op_written_the_micrograd_way_backpropagates_through_its_own_backward():
    x, w, b = Value(0.5), Value(-1.5), Value(0.3)
    out = _micrograd_tanh(x * w + b) * 2 + x ** 2
    out.backward()
    assert out._prev[0]._prev[0]._op == "tanh" and out._prev[0]._prev[0]._prev[0]._op == "+"
    t = math.tanh(0.5 * -1.5 + 0.3)
    dz = (1 - t**2) * 2.0  # its _backward's formula, by hand
    assert [x.grad, w.grad, b.grad] == [dz * -1.5 + 2 * 0.5, dz * 0.5, dz]


def test_a_micrograd_op_with_no_backward_set_passes_nothing_on_as_micrograds_default():
    x = Value(2.0)
    out = Value(x.data * 3, (x,), "triple") + x
    out.backward()
    assert x.grad == 1.0


def test_the_lectures_own_backward_loop_over_each_node_backward_gives_backward():
    """Calling ``node._backward()`` in reverse topological order, as micrograd's lecture does
    before writing ``backward()``, gives what ``backward()`` gives, bit for bit."""
    def build(a, b, c):
        return _micrograd_tanh(a * b + c) * 2 + a ** 2 + (b / c).relu() - c.exp() * a

    manual, auto = [Value(0.5), Value(-1.5), Value(0.3)], [Value(0.5), Value(-1.5), Value(0.3)]
    out = build(*manual)
    topo, seen = [], set()

    def visit(v):
        if v not in seen:
            seen.add(v)
            for child in v._prev:
                visit(child)
            topo.append(v)
    visit(out)
    out.grad = 1.0
    for node in reversed(topo):
        node._backward()
    build(*auto).backward()
    assert [v.grad for v in manual] == [v.grad for v in auto]


def test_a_micrograd_backward_that_raises_restores_every_grad():
    x = Value(2.0)
    out = Value(4.0, (x,), "square")

    def _backward():
        x.grad += 2 * x.data * out.grad
        raise RuntimeError("boom")
    out._backward = _backward
    with pytest.raises(RuntimeError, match="boom"):
        (out * 3).backward()
    assert x.grad == 0 and out.grad == 0


def test_micrograds_default_children_make_a_leaf():
    leaf = Value(2.0, ())
    assert leaf.label == "" and leaf._prev == () and leaf._op == ""
    assert graphc.compile(lambda x: x * leaf)(3.0).data == 6.0  # a param, as Value(2.0) is


def test_micrograd_nodes_are_refused_where_graphc_cannot_follow_them():
    with pytest.raises(AttributeError, match="'\\+' node's derivatives from its op table"):
        (Value(1.0) + 2)._backward = lambda: None
    with pytest.raises(TypeError, match="_children must be Values, _op and label strs; got int, str and str"):
        Value(2.0, 5)
    with pytest.raises(TypeError, match="_children must be Values"):
        Value(2.0, (1.0,), "op")
    with pytest.raises(TypeError, match="label strs; got tuple, str and int"):
        Value(2.0, label=3)
    with pytest.raises(TypeError, match=r"a label \('x'\) in place of micrograd's _children takes no _op"):
        Value(2.0, "x", "op")
    with pytest.raises(TypeError, match="function of no arguments"):
        Value(1.0, (Value(2.0),), "f")._backward = 3
    with pytest.raises(graphc.TraceError, match="cannot trace an op made the micrograd way.*'tanh'"):
        graphc.compile(lambda x: _micrograd_tanh(x * 2))(Value(0.3))
    inner = Value(0.4)
    made_before = _micrograd_tanh(inner)  # eagerly, outside the function: a param, read as it is
    out = graphc.compile(lambda x: x * made_before)(2.0)
    out.backward()  # and backward() goes on through its own _backward, as eager's does
    assert (out.data, made_before.grad, inner.grad) == (2.0 * math.tanh(0.4), 2.0, 2.0 * (1 - math.tanh(0.4) ** 2))


def test_the_lectures_own_constructor_calls_and_copies_of_micrograd_nodes():
    x = Value(0.5, label="x")
    out = Value(math.tanh(x.data), (x,), "tanh", label="t")
    keyword = Value(1.0, _children=(x,), _op="f")
    assert (out.label, out._op, out._prev, keyword._op, keyword._prev) == ("t", "tanh", (x,), "f", (x,))
    copied = copy.copy(out)
    copied._backward = lambda: None  # the copy's own: out keeps its backward (nothing, still)
    out._backward = lambda: setattr(x, "grad", x.grad + 2.0)
    out.grad = 1  # an int seed, as a user may write: micrograd's step runs all the same
    out._backward()
    copied.grad = 1.0
    copied._backward()
    assert x.grad == 2.0


def test_a_label_set_afterwards_to_a_non_str_still_traces():
    w = Value(2.0)
    w.label = 1  # set afterwards: the trace names the param by its text
    assert graphc.compile(lambda x: x * w)(3.0).data == 6.0


@pytest.mark.parametrize("k", [0, False, np.int64(0), np.bool_(False), 0.0, -0.0, np.float64(-0.0), 2, -3, 1.5])
def test_subtracting_a_number_is_micrograds_x_plus_minus_k_to_the_sign_of_zero(k):
    """Found by an outside differential test against micrograd: micrograd's x - k is
    x + (-k), and Python's -0 of an int is +0, so (-0.0) - 0 is +0.0 there; graphc's sub(x,
    0.0) kept -0.0.  A number argument is a float in eager code, whose x - 0 keeps -0.0."""
    for x in (-0.0, 0.0, 2.5):
        got = (Value(x) - k).data
        want = x + (0 if isinstance(k, np.bool_) else -k)  # NumPy refuses -np.bool_: as a Python bool
        assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", graphc.FrozenDataWarning)  # a NumPy k is data frozen in
            compiled = graphc.compile(lambda v: v - k)
            traced, number = compiled(Value(x)).data, compiled(x).data
        assert traced == got and math.copysign(1.0, traced) == math.copysign(1.0, got)  # the traced constant
        assert number == x - k and math.copysign(1.0, number) == math.copysign(1.0, x - k)  # Python's floats
    zero = Value(0.0)  # a float's 0.0 read as a traced number stays a float: x - 0.0 keeps -0.0
    difference = graphc.compile(lambda v: v - zero.data)(-0.0)
    assert type(difference) is float and math.copysign(1.0, difference) == -1.0  # two floats': a float


def test_micrograd_agrees_where_its_ops_match_and_the_documented_differences_show():
    micrograd = pytest.importorskip("micrograd.engine")
    for V in (micrograd.Value, Value):  # the same answers from the same lines
        x = V(-0.0)
        assert math.copysign(1.0, (x - 0).data) == 1.0
    # documented differences: micrograd's hidden -b node re-adds its stale .grad on a second
    # backward(); graphc's sub has none.  x ** 0 passes no gradient (PyTorch's and JAX's zero)
    grads = []
    for V in (micrograd.Value, Value):
        x, y = V(2.0), V(3.0)
        out = x - y
        out.backward()
        out.backward()
        grads.append(y.grad)
    assert grads == [-3, -2.0]
    x = Value(float("nan"))
    (x ** 0).backward()
    assert x.grad == 0
