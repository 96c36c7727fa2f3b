"""Traced plain numbers (graphc.traced): Python's numbers while a trace runs, recorded."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import graphc
from graphc import Value, engine
from graphc.guards import Record
from graphc.trace import TracedValue
from graphc.traced import TracedNumber


def traced_run(fn, *values):
    """fn on fresh traced Values (as a trace sees them), and the record of what it assumed."""
    record = Record()
    with engine.tracing(TracedValue, record):
        xs = [Value(v, label=name) for v, name in zip(values, "xyz")]
        for x in xs:
            x._attr = engine.PLACEHOLDER
        out = fn(*xs)
    return out, record


def test_data_of_a_traced_value_is_a_traced_float_and_of_a_constant_a_float():
    (data, const), record = traced_run(lambda x: (x.data, Value(2.0).data), 1.5)
    assert isinstance(data, TracedNumber) and data.kind is float and repr(data) == "1.5"
    assert type(const) is float and not record.guards


@pytest.mark.parametrize("fn, kind, value", [
    (lambda x: x.data > 0, bool, True),
    (lambda x: (x.data > 0) + (x.data > 2), int, 1),
    (lambda x: sum([x.data > 0, x.data < 0, True]), int, 2),
    (lambda x: (x.data > 0) / 4, float, 0.25),
    (lambda x: -(x.data > 0), int, -1),
    (lambda x: abs(-x.data), float, 1.5),
    (lambda x: (x.data > 0) * 2.5, float, 2.5),
    (lambda x: np.int64(3) * (x.data > 0), int, 3),
    (lambda x: np.bool_(True) == (x.data > 0), bool, True),
    (lambda x: np.float64(2.0) < x.data, bool, False),  # NumPy hands a 0-d array to __array_ufunc__
    (lambda x: np.float64(2.0) * x.data, float, 3.0),
    (lambda x: x.data ** np.int64(2), float, 2.25),
    (lambda x: (x.data > 0) & (x.data < 2), bool, True),  # booleans: & | ^ as 0/1 arithmetic
    (lambda x: (x.data < 0) | (x.data > 2), bool, False),
    (lambda x: (x.data > 0) ^ np.True_, bool, False),
    (lambda x: np.float64(1.0) / (x.data - 1.5), float, math.inf),  # NumPy divides by zero to inf
    (lambda x: 2 - x.data ** 2, float, 2 - 1.5 ** 2),
    (lambda x: ~(x.data > 0), int, -2),  # found by an outside hunt: ~ was a TypeError
    (lambda x: ~((x.data > 0) + (x.data > 2)), int, -2),
])
def test_arithmetic_keeps_pythons_types_and_records_no_guard(fn, kind, value):
    out, record = traced_run(fn, 1.5)
    assert isinstance(out, TracedNumber) and out.kind is kind and out.value == value
    assert not record.guards


def test_invert_of_a_traced_float_is_pythons_type_error():
    with pytest.raises(TypeError, match="bad operand type for unary ~: 'float'"):
        traced_run(lambda x: ~x.data, 1.5)


@pytest.mark.parametrize("fn, result, n_guards", [
    (lambda x: bool(x.data > 0), True, 1),
    (lambda x: float(x.data * 2), 3.0, 1),
    (lambda x: int(x.data), 1, 2),  # 1 <= x < 2
    (lambda x: round(x.data), 2, 2),  # 1.5 <= x <= 2.5
    (lambda x: math.floor(x.data), 1, 2),
    (lambda x: math.ceil(x.data), 2, 2),
    (lambda x: [10, 20, 30][(x.data > 0) + 0], 20, 1),  # an index: exactly that int
    (lambda x: x.data.is_integer(), False, 1),
    (lambda x: f"{x.data:.2f}", "1.50", 0),  # printing decides nothing
])
def test_decisions_give_plain_numbers_and_record_guards(fn, result, n_guards):
    out, record = traced_run(fn, 1.5)
    assert out == result and type(out) is type(result)
    assert len(record.guards) == n_guards


@pytest.mark.parametrize("fn, result, n_guards", [
    (lambda x: np.bool_(x.data > 0), np.True_, 1),
    (lambda x: np.int64(x.data), np.int64(1), 2),
    (lambda x: np.float32(x.data * 2), np.float32(3.0), 1),
    (lambda x: np.asarray([x.data, 2.0], dtype=np.float64)[0], np.float64(1.5), 2),  # NumPy asks twice: one check, twice
    (lambda x: np.asarray(x.data, dtype=complex)[()], np.complex128(1.5), 1),
    (lambda x: np.where(x.data > 0, 1.0, 2.0)[()], np.float64(1.0), 1),  # a traced bool: NumPy's loop decides
    (lambda x: np.ndim(x.data > 0), 0, 0),
])
def test_numpy_numbers_of_a_numeric_dtype_are_pythons_conversions_guarded(fn, result, n_guards):
    """A traced number made a NumPy number or array of a bool, int or float dtype is the
    number bool(), int() or float() makes (an array holding it with no dtype is refused:
    tests/test_guards.py)."""
    out, record = traced_run(fn, 1.5)
    assert out == result and type(out) is type(result)
    assert len(record.guards) == n_guards


def test_numpy_asked_for_an_array_without_a_copy_refuses_as_for_a_float():
    """NumPy 2's copy=False: a number is no array to share (a review: the copy was made)."""
    with pytest.raises(ValueError, match="without a copy"):
        traced_run(lambda x: np.asarray(x.data, dtype=float, copy=False), 1.5)
    with pytest.raises(ValueError):
        np.asarray(1.5, dtype=float, copy=False)  # as eager code gets


def test_a_traced_number_met_by_a_value_is_computed_live_with_no_gradient():
    """It was a guarded constant: every new number traced again, and map refused it."""
    out, record = traced_run(lambda x: x * x.data, 1.5)
    assert isinstance(out, Value) and out.data == 2.25 and not record.guards
    assert out._prev[1]._op == "stop_gradient"
    compiled = graphc.compile(lambda x: x * x.data + (x * x).data / x)
    for at in (1.5, -2.0, 3.0):
        v, eager_v = Value(at), Value(at)
        out, eager = compiled(v), eager_v * eager_v.data + (eager_v * eager_v).data / eager_v
        out.backward()
        eager.backward()
        assert (out.data, v.grad) == (eager.data, eager_v.grad)
    assert compiled.trace_count == 1
    eager_rows = [(v * v.data + (v * v).data / v).data for v in (Value(1.5), Value(-2.0))]
    assert compiled.map(np.array([1.5, -2.0])).tolist() == eager_rows


@pytest.mark.parametrize("backend", ["python", "c"])
def test_a_traced_divisor_or_exponent_is_computed_live_with_no_gradient(backend):
    """A review: ``loss / loss.data`` and ``x ** s.data`` were guarded (a divisor and an
    exponent are taken as numbers), so each new number traced again."""
    w = Value(1.5)

    def f(x):
        y = (w * x).tanh()
        return y / y.data + x ** (w * x).data + x / (x.data > 0) + graphc.stop_gradient(y.data) * x

    compiled = graphc.compile(f, backend=backend)
    for at in (0.5, 1.5, 2.5):
        v, eager_v = Value(at), Value(at)
        out, eager = compiled(v), f(eager_v)
        w.grad = 0
        out.backward()
        compiled_grads = (v.grad, w.grad)
        w.grad = 0
        eager.backward()
        assert out.data == eager.data and compiled_grads == (eager_v.grad, w.grad)
    assert compiled.trace_count == 1


def test_stop_gradient_of_a_number_argument_is_the_number():
    """A review: ``graphc.stop_gradient(n)`` of an int passed in made it a Value, no index."""
    compiled = graphc.compile(lambda x, n: x * len(range(graphc.stop_gradient(n))) - graphc.stop_gradient(n))
    assert compiled(Value(2.0), 3).data == 3.0


def test_a_value_made_of_a_traced_number_is_computed_live_with_no_gradient():
    """``Value(x.data)``, micrograd's detach, and ``Value(x.data > 0)``: they were frozen and
    guarded, so each new number traced again."""
    def f(x):
        return x * Value((x * x).data) + Value(x.data > 0) * x + Value(sum([x.data > 1, x.data > 2]))

    compiled = graphc.compile(f, backend="python")
    for at in (1.5, -2.0, 3.0, -0.0):
        v, eager_v = Value(at), Value(at)
        out, eager = compiled(v), f(eager_v)
        out.backward()
        eager.backward()
        assert (out.data, v.grad) == (eager.data, eager_v.grad) and math.copysign(1, out.data) == \
            math.copysign(1, eager.data)
    assert compiled.trace_count == 1


def test_comparing_values_gives_traced_booleans():
    out, record = traced_run(lambda a, b: (a < b, a >= 1.0, 2.0 > a), 1.0, 2.0)
    assert [o.value for o in out] == [True, True, True] and all(o.kind is bool for o in out)
    assert [o.node._op for o in out] == ["lt", "ge", "lt"] and not record.guards


def test_guards_name_the_users_line_and_predicate():
    _, record = traced_run(lambda x: x if x.data > 0 else -x, 1.5)
    (guard,) = record.guards
    assert guard.where.startswith("test_traced.py:") and guard.outcome is True and guard.text == "x > 0.0"


def test_eager_values_compare_and_convert_by_their_data():
    a, b = Value(1.5), Value(2.0)
    assert (a < b, a <= 1.5, a > 2, b >= a) == (True, True, False, True)
    assert max([a, b]) is b and sorted([b, a]) == [a, b]
    assert (float(a), int(a), round(a), round(a, 0)) == (1.5, 1, 2, 2.0)
    with pytest.raises(TypeError):
        a < "x"  # noqa: B015


def test_compiled_outputs_of_traced_numbers_are_plain_python_numbers():
    f = graphc.compile(lambda x: (x.data > 0, (x.data > 0) + 1, x.data * 2))
    assert f(1.5) == (True, 2, 3.0) and f(-1.0) == (False, 1, -2.0)
    assert [type(v) for v in f(0.0)] == [bool, int, float] and f.trace_count == 1


def test_a_zero_divisor_is_guarded_so_a_caught_zero_division_serves_only_zero_divisors():
    """Regression (an outside tester): ``x.data / y.data`` raised at y = 0 without a guard; a
    function catching it left a variant with no guard, which then answered every call."""
    def f(x, y):
        try:
            r = x.data / y.data
        except ZeroDivisionError:
            r = 0.0
        return x * r
    compiled = graphc.compile(f)
    calls = [(3.0, 1.0), (3.0, 0.0), (3.0, 1.0), (6.0, 2.0), (6.0, -0.0)]
    assert [compiled(*args).data for args in calls] == [f(Value(a), Value(b)).data for a, b in calls]
    assert compiled.trace_count == 2


def test_dividing_by_a_traced_zero_raises_as_python_does_after_a_trace_at_another_divisor():
    compiled = graphc.compile(lambda x, y: x.data / y.data)
    assert compiled(1.0, 2.0) == 0.5
    with pytest.raises(ZeroDivisionError):
        compiled(1.0, 0.0)
    power = graphc.compile(lambda x: x.data ** -1)
    assert power(2.0) == 0.5
    with pytest.raises(ZeroDivisionError):
        power(0.0)
    assert graphc.compile(lambda x, y: x.data / y.data)(1.0, 4.0) == 0.25  # and the divisor's guard holds


@pytest.mark.parametrize("convert", [int, round, math.floor, math.ceil])
def test_int_of_nan_or_inf_is_guarded_so_a_caught_error_serves_only_that_number(convert):
    """Regression (an outside tester): ``int(nan)`` raised with no guard recorded."""
    def g(x):
        try:
            k = convert(x.data)
        except (ValueError, OverflowError):
            k = -1
        return x * k
    compiled = graphc.compile(g)
    calls = [2.5, math.nan, 2.5, 7.5, math.inf, 3.25, -math.inf, math.nan]
    got, want = [compiled(a).data for a in calls], [g(Value(a)).data for a in calls]
    assert [repr(v) for v in got] == [repr(v) for v in want]


def test_a_negative_traced_number_to_a_fractional_power_is_refused_and_a_positive_one_guarded():
    """Python gives a complex number there; graphc's programs compute floats."""
    with pytest.raises(graphc.TraceError, match="fractional power"):
        graphc.compile(lambda x: x * x.data ** 0.5)(-4.0)
    root = graphc.compile(lambda x: x * x.data ** 0.5)
    assert root(4.0).data == 8.0
    with pytest.raises(graphc.TraceError, match="fractional power"):
        root(-4.0)


def test_a_traced_power_that_overflows_is_inf_unguarded_so_batched_calls_take_it():
    """README "Guarded": the one exception to Python's raising -- a guard on every float
    power (tried) made map refuse ``x.data ** 2``."""
    out, record = traced_run(lambda x: x.data ** 2, 1e200)
    assert out.value == math.inf and not record.guards
    w = Value(0.5)
    got = graphc.compile(lambda x: (x * w, x.data ** 2), backend="c").map(np.array([1.0, 2.0, 1e200]))
    assert got[1].tolist() == [1.0, 4.0, math.inf]


BIG = 2 ** 53 + 1  # no float: float(BIG) == 2.0 ** 53


@pytest.mark.parametrize("other", [BIG, -BIG, 10 ** 400, -10 ** 400, Fraction(1, 3), Fraction(-7, 2), 2 ** 60],
                         ids=["2**53+1", "-(2**53+1)", "10**400", "-10**400", "1/3", "-7/2", "2**60"])
def test_a_traced_comparison_with_an_int_or_fraction_no_float_holds_is_exact_as_pythons(other):
    """An outside hunt: the constant was rounded to a float first, so ``x.data < 2**53 + 1``
    at 2.0**53 was false (and 10**400 a DataError), silently taking the other branch."""
    near = float(other) if abs(other) < 2 ** 1000 else (1e308 if other > 0 else -1e308)
    points = [near, math.nextafter(near, math.inf), math.nextafter(near, -math.inf), math.inf, -math.inf,
              math.nan, 0.0]

    def tests(x):
        d = x.data
        return d < other, d <= other, d > other, d >= other, d == other, d != other, other < d, other == d

    compiled = graphc.compile(tests)
    branch = graphc.compile(lambda x: x * 2.0 if x < other else x * 3.0)
    for point in points:
        got = [float(getattr(o, "data", o)) for o in compiled(point)]  # a Fraction's == freezes: a Value
        assert got == [float(t) for t in tests(Value(point))]
        assert branch(point).data == (Value(point) * 2.0 if point < other else Value(point) * 3.0).data \
            or math.isnan(point)


def test_powers_python_gives_floats_for_are_not_refused_and_stay_guarded():
    """An outside hunt: 0.0 ** -inf raised ZeroDivisionError (Python gives inf), and a negative
    base to an inf or nan power, or -inf to a fractional one, was refused as complex."""
    power = graphc.compile(lambda x, y: x.data ** y.data)
    for base, exponent in [(0.0, -math.inf), (-1.0, math.inf), (-8.0, math.inf), (-0.5, math.inf),
                           (-8.0, -math.inf), (-math.inf, 0.5), (-math.inf, -0.5), (-math.inf, math.inf)]:
        assert power(base, exponent) == base ** exponent
    assert math.isnan(power(-8.0, math.nan))
    root = graphc.compile(lambda x: x.data ** 0.5)
    assert root(-math.inf) == math.inf
    with pytest.raises(graphc.TraceError, match="fractional power"):
        root(-4.0)  # the guard of -inf's trace fails here: traced again, and refused
    with pytest.raises(ZeroDivisionError):
        graphc.compile(lambda x: x.data ** -1.0)(0.0)


def same_bits(a, b):
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b) or (a != a and b != b)


def test_a_comparison_as_a_values_operand_is_computed_live_with_eager_gradients():
    """An outside hunt: ``x * (x.data > 0)`` and a one-hot target ``[t == k ...]`` of a
    label passed in were guards, so map refused them and each sign or label traced again."""
    w = Value(1.5)
    forms = [lambda x: x * (x.data > 0), lambda x: (x.data > 0) * x * w, lambda x: x - (x.data > 0),
             lambda x: (x.data > 0) - x * w, lambda x: x + ((x.data > 0) + (x.data > 1)) * -1,
             lambda x: x * w - ((x.data > 0) * -1), lambda x: x + sum(x.data > c for c in (-1.0, 0.0, 1.0)) / 3,
             # an int's zero has no sign: -(False) and False * -1 are +0 (a review: -0.0, then float)
             lambda x: x * (-(x.data > 0) * 1.0), lambda x: x * (((x.data > 0) * -1) * 1.0) + w]
    points = [2.0, -2.0, 0.0, -0.0, 0.5, math.inf, -math.inf]
    for form in forms:
        for backend in ("python", "c"):
            compiled = graphc.compile(form, backend=backend)
            for point in points:
                x, cx = Value(point), Value(point)
                want = form(x)
                want.backward()
                w_grad, w.grad = w.grad, 0
                got = compiled(cx)
                got.backward()
                assert same_bits(got.data, want.data) and same_bits(cx.grad, x.grad), (point, backend)
                assert same_bits(w.grad, w_grad)
                w.grad = 0
            assert compiled.trace_count == 1
            rows = compiled.map(np.array(points), allow_nonfinite=True)
            assert all(same_bits(r, form(Value(p)).data) for r, p in zip(rows.tolist(), points))


def test_a_one_hot_of_a_label_passed_in_trains_as_one_program():
    """The same bits as the one-hot passed in as data, on one program for every label."""
    from graphc.losses import softmax_cross_entropy
    from graphc.nn import MLP
    import random
    random.seed(3)
    model = MLP(2, [4, 3])
    X = np.array([[0.5, -1.0], [2.0, 0.25], [-1.0, 1.0], [0.0, 0.5], [1.0, 1.0]])
    labels = np.array([0, 2, 1, 2, 0])
    for backend in ("python", "c"):
        by_label = graphc.compile(lambda x, t: softmax_cross_entropy(model(x), [t == k for k in range(3)]),
                                  backend=backend)
        by_data = graphc.compile(lambda x, t: softmax_cross_entropy(model(x), t), backend=backend)
        mean, grads = by_label.mean_and_grad(X, labels)
        want_mean, want_grads = by_data.mean_and_grad(X, np.eye(3)[labels])
        assert mean == want_mean and grads.tolist() == want_grads.tolist()
        assert [by_label(x, int(t)).data for x, t in zip(X, labels)] == by_data.map(X, np.eye(3)[labels]).tolist()
        assert by_label.trace_count == 1
