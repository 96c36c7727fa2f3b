"""The op table: every entry complete, every derivative rule right (finite differences, SymPy)."""
from __future__ import annotations

import math
import random

import pytest
import sympy as sp

from graphc import Value, apply, ops, runtime
from conftest import rel_err

ALL_OPS = list(ops.TABLE.values())
OPS = [op for op in ALL_OPS if op.elementwise]  # scalar ops: eager Values can apply them
TENSOR_OPS = [op for op in ALL_OPS if not op.elementwise]

# Points where every op is smooth: away from relu/step/max kinks and inside log's domain.
POINTS = {
    "pow": lambda r: (r.uniform(0.5, 3.0),),
    "vpow": lambda r: (r.uniform(0.5, 3.0), r.uniform(-2.0, 2.0)),
    "log": lambda r: (r.uniform(0.1, 5.0),),
    "relu": lambda r: (r.choice([-1, 1]) * r.uniform(0.1, 3.0),),
    "step": lambda r: (r.choice([-1, 1]) * r.uniform(0.1, 3.0),),
    "max": lambda r: (lambda a: (a, a + r.choice([-1, 1]) * r.uniform(0.1, 2.0)))(r.uniform(-3, 3)),
    "sum": lambda r: tuple(r.uniform(-3, 3) for _ in range(4)),
}
PARAMS = {"pow": (3,), }


def point(op, rng):
    make = POINTS.get(op.name, lambda r: tuple(r.uniform(-3, 3) for _ in range(op.arity)))
    return make(rng)


def eager_grads(op, xs, attr=()):
    leaves = [Value(x) for x in xs]
    out = apply(op, *leaves, attr=attr)
    out.backward()
    return out.data, [v.grad for v in leaves]


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda o: o.name)
def test_every_op_fills_every_field(op):
    assert op.name and callable(op.eval) and callable(op.vjp) and callable(op.sympy)
    assert op.python, f"{op.name} has no Python spelling"
    assert op.numpy, f"{op.name} has no NumPy spelling"
    assert op.c, f"{op.name} has no C spelling"
    assert op.arity is None or op.arity >= 1
    assert len(op.params) <= 1
    assert op.elementwise or callable(op.shape), f"tensor op {op.name} needs a shape rule"


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
def test_derivative_matches_central_differences(op):
    rng = random.Random(op.name)
    attr = PARAMS.get(op.name, ())
    for _ in range(20):
        xs = point(op, rng)
        _, grads = eager_grads(op, xs, attr)
        for i, x in enumerate(xs):
            h = 1e-6 * max(1.0, abs(x))
            up = list(xs); up[i] = x + h
            down = list(xs); down[i] = x - h
            numeric = (op.eval(*up, *attr) - op.eval(*down, *attr)) / (2 * h)
            assert abs(grads[i] - numeric) <= 1e-6 * max(1.0, abs(numeric)), (op.name, xs, i)


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
def test_derivative_and_value_match_sympy(op):
    rng = random.Random("sympy" + op.name)
    attr = PARAMS.get(op.name, ())
    n = len(point(op, rng))
    symbols = sp.symbols(f"x0:{n}")
    expr = op.sympy(sp, *symbols, *attr)
    for _ in range(5):
        xs = point(op, rng)
        value, grads = eager_grads(op, xs, attr)
        at = dict(zip(symbols, xs))
        assert rel_err(value, float(expr.subs(at))) < 1e-13
        for sym, g in zip(symbols, grads):
            assert rel_err(g, float(sp.diff(expr, sym).subs(at))) < 1e-12, (op.name, xs)


def test_runtime_returns_ieee_values_instead_of_raising():
    inf, nan = math.inf, math.nan
    assert runtime.exp(1000.0) == inf and runtime.exp(-inf) == 0.0
    assert runtime.log(0.0) == -inf and math.isnan(runtime.log(-1.0))
    assert runtime.pow(0.0, -1) == inf and runtime.pow(-0.0, -1) == -inf and runtime.pow(-0.0, -2) == inf
    assert math.isnan(runtime.pow(-8.0, 1 / 3))
    assert runtime.pow(10.0, 400) == inf and runtime.pow(-10.0, 401) == -inf
    assert math.isnan(runtime.sin(inf)) and math.isnan(runtime.cos(-inf))
    assert runtime.sigmoid(1000.0) == 1.0 and runtime.sigmoid(-1000.0) == 0.0
    assert runtime.tanh(1000.0) == 1.0 and runtime.tanh(-1000.0) == -1.0
    assert math.copysign(1, runtime.relu(-0.0)) == -1 and math.isnan(runtime.relu(nan))
    assert runtime.step(0.0) == 0.0 and runtime.step(1e-300) == 1.0
    assert math.isnan(runtime.maximum(nan, 1.0)) and math.isnan(runtime.maximum(1.0, nan))
    assert math.copysign(1, runtime.maximum(-0.0, 0.0)) == -1  # ties keep the first operand


def test_pow_matches_python_power_bit_for_bit():
    rng = random.Random(0)
    for _ in range(10_000):
        x, e = rng.uniform(0, 100), rng.choice([2, 3, -1, 0.5, -2.5, rng.uniform(-4, 4)])
        assert runtime.pow(x, e) == x ** e


def test_format_number_round_trips_special_values():
    for x in [0.0, -0.0, 1.0, -1.5, 1e-320, 1.7976931348623157e308, math.inf, -math.inf, 0.1]:
        text = ops.format_number(x)
        back = float(text)
        assert back == x and math.copysign(1, back) == math.copysign(1, x)
    assert math.isnan(float(ops.format_number(math.nan)))


def test_lookup_rejects_unknown_ops():
    from graphc import GraphcError
    with pytest.raises(GraphcError, match="unknown op 'frobnicate'"):
        ops.lookup("frobnicate")
