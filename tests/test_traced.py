"""Traced plain numbers (graphc.traced): Python's numbers while a trace runs, recorded."""
from __future__ import annotations

import math

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


def test_a_traced_number_met_by_a_value_is_a_guarded_constant():
    out, record = traced_run(lambda x: x * x.data, 1.5)
    assert isinstance(out, Value) and out.data == 2.25
    assert [g.text for g in record.guards] == ["x == 1.5"]


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
