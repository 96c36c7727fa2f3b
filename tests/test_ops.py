"""The op table: every entry complete, every derivative rule right (finite differences, SymPy)."""
from __future__ import annotations

import gc
import math
import random
import weakref

import pytest
import sympy as sp

import graphc
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
    "log1p": lambda r: (r.uniform(-0.9, 5.0),),
    "relu": lambda r: (r.choice([-1, 1]) * r.uniform(0.1, 3.0),),
    "step": lambda r: (r.choice([-1, 1]) * r.uniform(0.1, 3.0),),
    "max": lambda r: (lambda a: (a, a + r.choice([-1, 1]) * r.uniform(0.1, 2.0)))(r.uniform(-3, 3)),
    "sum": lambda r: tuple(r.uniform(-3, 3) for _ in range(4)),
    "abs": lambda r: (r.choice([-1, 1]) * r.uniform(0.1, 3.0),),
    "sqrt": lambda r: (r.uniform(0.1, 5.0),),
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
    assert op.arity is None or op.arity >= 1
    assert len(op.attr_names) <= 1
    assert op.elementwise or callable(op.shape), f"tensor op {op.name} needs a shape rule"


@pytest.mark.parametrize("op", [op for op in OPS if not op.stops_gradient], ids=lambda o: o.name)
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


def test_stop_gradient_passes_its_value_and_no_gradient():
    """Its derivative is 0 by definition, where finite differences measure 1: the one op
    whose vjp is not its calculus (``stops_gradient``), so check_grad's finite differences
    hold it at its value at the point."""
    assert [op.name for op in ALL_OPS if op.stops_gradient] == ["stop_gradient"]
    x = Value(-0.0)
    out = apply("stop_gradient", x) * 3.0 + x
    out.backward()
    assert math.copysign(1.0, out._prev[0]._prev[0].data) == -1.0 and x.grad == 1.0
    assert out._prev[0]._prev[0]._op == "stop_gradient"


def test_eager_detach_is_a_new_leaf_that_frees_the_history():
    """As PyTorch's: ``h = h.detach()`` at each step kept every earlier step alive, and each
    ``backward()`` walked them all (2,000 steps of truncated backpropagation: 14 s)."""
    x, w = Value(-0.0), Value(2.0)
    y = x * w
    detached = y.detach()
    assert (math.copysign(1.0, detached.data), detached._prev, detached._op) == (-1.0, (), "")
    below = weakref.ref(y)
    del y
    gc.collect()
    assert below() is None
    h, steps = Value(0.5), []
    for _ in range(3):
        h = (h.detach() * w + 1.0).tanh()
        h.backward()
        steps.append(len(graphc.engine.topological_order([h])))
    assert steps == [steps[0]] * 3 and w.grad != 0


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
def test_derivative_and_value_match_sympy(op):
    rng = random.Random("sympy" + op.name)
    attr = PARAMS.get(op.name, ())
    n = len(point(op, rng))
    symbols = sp.symbols(f"x0:{n}", real=True)  # graph values are real: Abs' derivative is sign
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


def test_abs_and_sqrt_follow_c99_at_special_values():
    inf, nan = math.inf, math.nan
    assert math.copysign(1, runtime.fabs(-0.0)) == 1 and runtime.fabs(-inf) == inf and math.isnan(runtime.fabs(nan))
    assert math.copysign(1, runtime.sqrt(-0.0)) == -1 and runtime.sqrt(inf) == inf
    assert math.isnan(runtime.sqrt(-1.0)) and math.isnan(runtime.sqrt(-inf)) and math.isnan(runtime.sqrt(nan))
    assert runtime.sqrt(2.0) == math.sqrt(2.0) and runtime.sqrt(4.0) == 2.0


def test_abs_derivative_at_zero_is_zero_like_pytorch_and_sqrt_derivative_is_half_over_root():
    for x0, want in ((0.0, 0.0), (-0.0, 0.0), (2.5, 1.0), (-2.5, -1.0)):
        x = Value(x0)
        abs(x).backward()
        assert x.grad == want
    x = Value(4.0)
    x.sqrt().backward()
    assert x.grad == 0.25
    x = Value(0.0)
    x.sqrt().backward()
    assert x.grad == math.inf  # as PyTorch


@pytest.mark.parametrize("x, y", [(0.0, 2.0), (0.0, 0.0), (-0.0, 0.5), (3.0, 0.0), (2.0, 3.0), (0.5, -1.5)])
def test_vpow_gradients_where_the_base_or_the_exponent_is_zero_are_pytorchs(x, y):
    """0 ** y is constant in y for y >= 0 (log(0) * 0 was nan: a learned exponent on a relu
    output put a nan into training), and x ** 0 constant in x (0 * inf was nan at x = 0)."""
    torch = pytest.importorskip("torch")
    tx, ty = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x, y))
    (tx ** ty).backward()
    a, b = Value(x), Value(y)
    (a ** b).backward()
    assert (a.grad, b.grad) == (float(tx.grad), float(ty.grad))


def test_operators_and_sums_come_from_the_table():
    table = ops.operators()
    assert [op.name for op in table["__pow__"]] == ["pow", "vpow"] and table["__abs__"] == (ops.TABLE["abs"],)
    assert all(hasattr(Value, name) for name in table)
    assert ops.is_reflected("__rsub__") and not ops.is_reflected("__sub__")
    assert ops.sum_op(2) == "add" and ops.sum_op(3) == "sum" and set(ops.SUMS) == {"add", "sum"}


def test_pow_matches_python_power_bit_for_bit():
    rng = random.Random(0)
    for _ in range(10_000):
        x, e = rng.uniform(0, 100), rng.choice([2, 3, -1, 0.5, -2.5, rng.uniform(-4, 4)])
        assert runtime.pow(x, e) == x ** e


def test_lookup_rejects_unknown_ops():
    from graphc import GraphcError
    with pytest.raises(GraphcError, match="unknown op 'frobnicate'"):
        ops.lookup("frobnicate")


# -- tensor ops: exercised through graphs (eager Values are scalars) -------------------------

# op -> operand shapes (a scalar is ()), and params
TENSOR_CASES = {
    "pack": ([(), (), (), ()], ((2, 2),)),
    "index": ([(3,)], (1,)),
    "unit": ([(), (3,)], (2,)),
    "dot": ([(), (3,), (3,)], ()),
    "matvec": ([(2,), (2, 3), (3,)], ()),
    "vecmat": ([(3,), (2,), (2, 3)], ()),
    "outer": ([(2,), (3,)], ()),
}


def tensor_graph(name):
    """A graph applying op ``name`` to packs of inputs, reduced to one scalar by fixed weights."""
    from graphc.graph import Builder
    shapes, params = TENSOR_CASES[name]
    b = Builder()
    inputs, operands = [], []
    for shape in shapes:
        lanes = [b.add("input", (), (f"x{len(inputs) + k}",)) for k in range(ops.size_of(shape))]
        inputs += lanes
        operands.append(lanes[0] if not shape else b.add("pack", tuple(lanes), (shape,)))
    if name == "pack":
        operands = inputs
    out = b.add(name, tuple(operands), params)
    from graphc.graph import infer_shapes
    size = ops.size_of(infer_shapes(b.ops, b.args, b.attrs)[out] or (1,))
    lanes = [out] if size == 1 and name in ("index", "dot") else \
        [b.add("index", (out,), (k,)) for k in range(size)]
    terms = [b.add("mul", (lane, b.const(0.5 + 0.25 * k)), ()) for k, lane in enumerate(lanes)]
    total = b.add("sum", tuple(terms)) if len(terms) > 1 else terms[0]
    return b.finish(inputs, [], [total]).verify(allow_dead=False)


@pytest.mark.parametrize("name", sorted(TENSOR_CASES))
def test_tensor_op_gradients_match_central_differences_and_sympy(name):
    from graphc.autodiff import grad
    from graphc.codegen import python as python_backend
    assert set(TENSOR_CASES) == {op.name for op in TENSOR_OPS}
    g = tensor_graph(name)
    forward, _ = python_backend.compile_graph(g, "f")
    joint = grad(g).verify()
    backward, _ = python_backend.compile_graph(joint, "j")
    rng = random.Random(name)
    symbols = sp.symbols(f"x0:{len(g.inputs)}")
    expr = _sympy_of(g, symbols)
    for _ in range(5):
        xs = [rng.uniform(-2, 2) for _ in g.inputs]
        value = forward(xs, [])[0]
        grads = backward(xs + [1.0], [])[1:]
        at = dict(zip(symbols, xs))
        assert rel_err(value, float(expr.subs(at))) < 1e-13
        for k, x in enumerate(xs):
            h = 1e-6
            up, down = list(xs), list(xs)
            up[k], down[k] = x + h, x - h
            numeric = (forward(up, [])[0] - forward(down, [])[0]) / (2 * h)
            assert abs(grads[k] - numeric) <= 1e-6 * max(1.0, abs(numeric)), (name, k)
            assert rel_err(grads[k], float(sp.diff(expr, symbols[k]).subs(at))) < 1e-12, (name, k)


def _sympy_of(g, symbols):
    """The graph's output as a SymPy expression, built from each op's sympy form."""
    values = {}
    for i, op in enumerate(g.ops):
        if op == "input":
            values[i] = symbols[g.inputs.index(i)]
        elif op == "const":
            values[i] = sp.Float(g.attrs[i][0])
        else:
            values[i] = ops.TABLE[op].sympy(sp, *[values[a] for a in g.args[i]], *g.attrs[i])
    return values[g.outputs[0]]


def test_tensor_evals_keep_the_scalar_summation_order():
    big = 1e16  # (big + 1) + 1 - big = 0 left to right, 2 in any order that adds the ones first
    assert ops.TABLE["dot"].eval(big, (1.0, 1.0, -1.0), (1.0, 1.0, big)) == 0.0
    W = (1.0, 1.0, -1.0)
    assert ops.TABLE["matvec"].eval((big,), W, (1.0, 1.0, big)) == (0.0,)
    # vecmat adds the last row first: (big + 1) + 1 is big; the first row first would give big + 2
    assert ops.TABLE["vecmat"].eval(-0.0, (1.0, 1.0, big), (1.0, 1.0, 1.0)) == (big,)
    # ... after its accumulator: (big + 1) + 1 is big; adding the rows first would give big + 2
    assert ops.TABLE["vecmat"].eval((big,), (1.0, 1.0), (1.0, 1.0)) == (big,)
    assert ops.TABLE["vecmat"].eval(-0.0, (-0.0,), (1.0,)) == (-0.0,)
    assert ops.TABLE["outer"].eval((1.0, 2.0), (3.0, 4.0, 5.0)) == (3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
    assert ops.TABLE["unit"].eval(-0.0, (9.0, 9.0), 1) == (0.0, -0.0)


def test_shape_rules_reject_mismatched_operands():
    with pytest.raises(ValueError, match="matvec takes"):
        ops.TABLE["matvec"].result_shape([(2,), (2, 3), (2,)])
    with pytest.raises(ValueError, match="different shapes"):
        ops.TABLE["add"].result_shape([(2,), (3,)])
    with pytest.raises(ValueError, match="cannot have shape"):
        ops.TABLE["pack"].result_shape([(), ()], ((3,),))
    assert ops.TABLE["mul"].result_shape([(), (4,)]) == (4,)  # a scalar broadcasts


def test_the_readme_lists_every_op():
    """README's op table names every table op, and its "More ops" line every Value method:
    adding an op without documenting it fails here."""
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme[readme.index("| op | computes | Value API |"):]
    table = table[:table.index("\n\n")]
    listed = {name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split(" | ")[0])}
    assert listed == set(ops.TABLE), set(ops.TABLE) ^ listed
    more = readme[readme.index("- More ops:"):]
    more = more[:more.index("\n- ")]
    methods = {op.method for op in ops.TABLE.values() if op.method} - {"relu"}  # relu is micrograd's own
    assert methods <= set(re.findall(r"`(\w+)`", more)), methods - set(re.findall(r"`(\w+)`", more))
