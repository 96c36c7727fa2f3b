"""grad, value_and_grad, make_graph: against eager backward and central finite differences."""
from __future__ import annotations

import collections
import math
import random
import re

import numpy as np
import pytest

import graphc
from graphc import ArgumentError, GraphcError, Value
from graphc.interpret import evaluate, replay
from graphc.nn import MLP
from conftest import ROOT, rel_err


def softplus_dot(W, x):
    """A scalar of a 2x3 matrix and a 3-vector: softplus(sum_ij W[i][j] * x[j] * (i + 1))."""
    s = sum(W[i][j] * x[j] * (i + 1) for i in range(2) for j in range(3))
    return (1.0 + s.exp()).log()


def as_values(a) -> np.ndarray:
    """An object array of fresh Values holding the numbers of ``a``."""
    return np.vectorize(Value, otypes=[object])(np.asarray(a, dtype=float))


def eager_call(fn, values: list[np.ndarray]) -> Value:
    return fn(*[v.tolist() if v.ndim else v.item() for v in values])


def eager_grads(fn, *args):
    """Value and gradients by eager backward on Values built from the arguments."""
    values = [as_values(a) for a in args]
    out = eager_call(fn, values)
    out.backward()
    return out.data, [np.vectorize(lambda v: float(v.grad))(v) for v in values]


def finite_difference(fn, args, k, h=1e-6):
    """Central differences of fn (on floats) with respect to argument k."""
    args = [np.asarray(a, dtype=float) for a in args]
    grad = np.zeros_like(args[k])
    for idx in np.ndindex(args[k].shape):
        plus, minus = [a.copy() for a in args], [a.copy() for a in args]
        plus[k][idx] += h
        minus[k][idx] -= h
        f_plus, f_minus = (eager_call(fn, [as_values(a) for a in side]).data for side in (plus, minus))
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


W0, X0 = np.array([[0.3, -0.2, 0.1], [0.05, 0.4, -0.6]]), np.array([1.5, -0.5, 2.0])


def test_grad_is_shaped_like_the_argument_and_equals_eager_backward():
    g = graphc.grad(softplus_dot)(W0, X0)
    _, (eager_W, _) = eager_grads(softplus_dot, W0, X0)
    assert isinstance(g, np.ndarray) and g.shape == (2, 3) and g.dtype == np.float64
    assert max(rel_err(a, b) for a, b in zip(g.ravel(), eager_W.ravel())) <= 1e-9
    assert np.allclose(g, finite_difference(softplus_dot, [W0, X0], 0), rtol=1e-6, atol=1e-8)


def test_argnums_tuple_gives_a_tuple_and_value_and_grad_the_value():
    value, (gW, gx) = graphc.value_and_grad(softplus_dot, argnums=(0, 1))(W0, X0)
    eager_value, (eager_W, eager_x) = eager_grads(softplus_dot, W0, X0)
    assert value == eager_value and isinstance(value, float)
    assert np.allclose(gW, eager_W, rtol=1e-12) and np.allclose(gx, eager_x, rtol=1e-12)
    assert np.allclose(gx, finite_difference(softplus_dot, [W0, X0], 1), rtol=1e-6, atol=1e-8)
    assert np.array_equal(graphc.grad(softplus_dot, argnums=-1)(W0, X0), gx)


def test_scalars_give_floats_and_lists_and_tuples_keep_their_structure():
    def f(a, pair):
        return (a * pair[0][1] + pair[1] ** 2).tanh()
    ga, gpair = graphc.grad(f, argnums=(0, 1))(0.7, ([1.0, 2.0], -0.5))
    assert isinstance(ga, float) and type(gpair) is tuple and type(gpair[0]) is list
    a, p01, p1 = Value(0.7), Value(2.0), Value(-0.5)
    f(a, ([Value(1.0), p01], p1)).backward()
    assert (ga, gpair) == (a.grad, ([0.0, p01.grad], p1.grad))  # an unused leaf gets 0.0


def test_params_are_read_live_but_not_differentiated_and_keep_their_grad():
    random.seed(1)
    model = MLP(2, [3, 1])
    for p in model.parameters():
        p.grad = 0.5
    loss = graphc.value_and_grad(lambda x: (model(x) - 1.0) ** 2)
    value, gx = loss([0.5, -1.5])
    assert [p.grad for p in model.parameters()] == [0.5] * len(model.parameters())
    assert value == ((model([0.5, -1.5]) - 1.0) ** 2).data
    model.parameters()[-1].data += 1.0  # no retrace: the new bias is read at the next call
    assert loss([0.5, -1.5])[0] == ((model([0.5, -1.5]) - 1.0) ** 2).data
    assert loss.compiled.trace_count == 1 and len(gx) == 2


def test_value_arguments_are_not_written():
    x = Value(2.0)
    assert graphc.grad(lambda v: v * v * v)(x) == 12.0
    assert x.grad == 0


def test_values_passed_but_not_differentiated_keep_their_grad():
    y = Value(3.0)
    for _ in range(2):
        assert graphc.grad(lambda x, y: x * y)(2.0, y) == 3.0
    assert y.grad == 0


def test_the_eager_graphs_behind_params_and_value_arguments_get_no_gradient():
    """Found by an outside hunt: a Value argument or a param made by eager arithmetic
    (``y = a * 2``, ``w = b * b``) had its own ``.grad`` put back, but ``backward()`` went on
    into the graph that made it, and ``a.grad``, ``b.grad`` grew at every call."""
    a, b = Value(3.0), Value(5.0)
    y, w = a * 2.0, b * b
    for _ in range(2):
        assert graphc.grad(lambda x, y: x * y)(1.0, y) == 6.0
        assert graphc.value_and_grad(lambda x: x * w)(1.0) == (25.0, 25.0)
        assert graphc.grad(lambda x, y: x * y, argnums=(0, 1))(1.0, y) == (6.0, 1.0)
    assert (a.grad, b.grad, y.grad, w.grad) == (0, 0, 0, 0)


def test_grad_of_grad_is_the_second_derivative():
    torch = pytest.importorskip("torch")
    cube = graphc.grad(graphc.grad(lambda x: x ** 3))
    assert [cube(x) for x in (2.0, 3.0, -0.5)] == [12.0, 18.0, -3.0]  # 6x, exactly
    assert cube.compiled.trace_count == 1  # live for every x, not a frozen one
    third = graphc.grad(graphc.grad(graphc.grad(lambda x: (x * 1.5).tanh() * x)))
    mixed = graphc.grad(graphc.grad(lambda x, y: (x * y).tanh() * x, 0), 1)
    for x, y in [(0.3, -0.4), (-1.2, 0.7), (2.0, 0.1)]:
        tx, ty = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x, y))
        (d1,) = torch.autograd.grad(torch.tanh(tx * 1.5) * tx, tx, create_graph=True)
        (d2,) = torch.autograd.grad(d1, tx, create_graph=True)
        (d3,) = torch.autograd.grad(d2, tx)
        (dx,) = torch.autograd.grad(torch.tanh(tx * ty) * tx, tx, create_graph=True)
        (dxy,) = torch.autograd.grad(dx, ty)
        assert rel_err(third(x), float(d3)) <= 1e-14 and rel_err(mixed(x, y), float(dxy)) <= 1e-14


def test_a_compiled_grad_maps_over_rows_with_eagers_gradients():
    """JAX's vmap(grad(f)): the gradient traced into the compiled program, bit for bit the
    gradient grad(f) gives one number at a time (eager backward), -0.0 included."""
    def f(x):
        return (x * 1.3).tanh() * x + (x * x).relu() * 0.5 - (x * -2.0).exp()
    X = np.array([-2.0, -0.5, -0.0, 0.0, 1e-300, 0.25, 3.0])
    for backend in ("python", "c"):  # NumPy's SIMD tanh and exp need not give libm's bits
        mapped = graphc.compile(graphc.grad(f), backend=backend).map(X)
        expected = np.array([graphc.grad(f)(float(x)) for x in X])
        assert np.array_equal(mapped, expected) and np.array_equal(np.signbit(mapped), np.signbit(expected))


def test_grad_inside_a_trace_reads_the_values_it_closes_over_live():
    def outer(x, y):
        return graphc.grad(lambda a: a * a * y)(x)
    compiled = graphc.compile(outer)
    assert compiled(Value(2.0), Value(3.0)).data == 12.0 and compiled(Value(2.0), Value(5.0)).data == 20.0
    assert compiled.trace_count == 1 and graphc.grad(outer, 1)(2.0, 3.0) == 4.0


def test_grad_inside_a_trace_keeps_the_guards_of_the_branch_it_took():
    def f(x):
        return x * x if x.data > 0 else -x
    compiled = graphc.compile(graphc.grad(f))
    assert [compiled(Value(x)).data for x in (2.0, -2.0, 3.0, -1.0)] == [4.0, -1.0, 6.0, -1.0]
    assert compiled.trace_count == 2


def test_bad_uses_are_clear_errors():
    with pytest.raises(GraphcError, match="returning one scalar Value .*; .* returns \\(scalar, scalar\\)"):
        graphc.grad(lambda x: (x, x * 2.0))(1.0)
    with pytest.raises(GraphcError, match="returning one scalar Value; .* returns \\[scalar, scalar, scalar\\]"):
        graphc.grad(lambda x: [x, x, x])(1.0)
    with pytest.raises(ArgumentError, match="argnums 2 is out of range"):
        graphc.grad(lambda x, y: x * y, argnums=2)(1.0, 2.0)
    with pytest.raises(ArgumentError, match="argnums must be an int"):
        graphc.grad(lambda x: x, argnums="0")
    with pytest.raises(ArgumentError, match="argnums must be an int or a non-empty tuple of ints; got 1.0"):
        graphc.grad(lambda x: x, argnums=1.0)
    for f in (graphc.grad(lambda x: x.data * 2.0), graphc.grad(graphc.grad(lambda x: x.data * 2.0))):
        with pytest.raises(GraphcError, match=r"returns a plain number \(computed from .data or float\(x\)"):
            f(1.0)
    # math.sin(x) is a float of float(x), which the trace guards: its graph's output is a
    # constant, whose gradient 0 grad returned (an outside hunt); jax.grad(math.sin) raises too
    for f in (graphc.grad(math.sin), graphc.value_and_grad(lambda x: math.exp(x)),
              graphc.grad(lambda x: (math.sin(x), x), has_aux=True), graphc.grad(graphc.grad(math.sin))):
        with pytest.raises(GraphcError, match=r"returns a plain number \(.* as math.sin\(x\) does, .* as x.exp\(\)"):
            f(2.0)
    assert isinstance(graphc.compile(lambda x: (x * x, 3))(2.0)[1], Value)  # still a Value: the public contract
    # a constant a branch returns has gradient 0, as before (a review: refusing every plain
    # number broke these): only one the trace computed from a frozen traced value is refused
    assert graphc.grad(lambda x: x * x if x.data > 0 else 0.0)(-1.0) == 0.0
    assert graphc.grad(lambda xs: sum(v * v for v in xs if v.data > 0))([-1.0, -2.0]) == [0.0, 0.0]
    assert graphc.value_and_grad(lambda x: x * x if x.data > 0 else 0.0)(-1.0) == (0.0, 0.0)

    def repeated(x, n):  # an int argument used as a count is no number computed from x (a review)
        total = 0.0
        for _ in range(n):
            total = total + x * x
        return total
    assert graphc.grad(repeated)(1.5, 0) == 0.0 and graphc.grad(repeated)(1.5, 2) == 6.0
    with pytest.raises(ArgumentError, match="argument x: expected a number"):
        graphc.grad(lambda x: x)("one")


def test_make_graph_prints_the_optimized_graph_like_make_jaxpr():
    graph = graphc.make_graph(lambda x, y: x * y + x * y)(1.0, 2.0)
    assert str(graph) == ("{ lambda x y ; .\n"
                          "  let v2 = mul x y\n"
                          "      v3 = add v2 v2\n"
                          "  in ( v3 ) }")
    raw = graphc.make_graph(lambda x, y: x * y + x * y, optimize=False)(1.0, 2.0)
    assert raw.ops.count("mul") == 2


def test_make_graph_of_grad_is_the_forward_and_gradient_graph():
    f = graphc.grad(lambda x: (x * x).tanh())
    graph = graphc.make_graph(f)(0.5)
    assert [graph.attrs[i][0] for i in graph.inputs] == ["x", "seed"] and len(graph.outputs) == 2
    values = evaluate(graph, [0.5, 1.0], [])
    assert rel_err(values[graph.outputs[1]], f(0.5)) <= 1e-12


def test_make_graph_of_grad_refuses_what_grad_refuses():
    """As ``jax.make_jaxpr(jax.grad(f))``: it drew the graph of a 'gradient' 1 of .data (an
    outside hunt), and of a function returning a list."""
    for f, match in ((lambda x: x.data, "returns a plain number"),
                     (lambda x: [x * x, x], r"returning one scalar Value .*; lambda returns \[scalar, scalar\]")):
        with pytest.raises(GraphcError, match=match):
            graphc.make_graph(graphc.grad(f))(2.0)
    with pytest.raises(GraphcError, match="returns a plain number"), pytest.warns(graphc.TracerWarning):
        graphc.make_graph(graphc.grad(lambda x: math.sin(x)))(2.0)
    with pytest.raises(GraphcError, match=r"returning a pair \(scalar Value, aux\)"):
        graphc.make_graph(graphc.grad(lambda x: x * x, has_aux=True))(2.0)
    assert len(graphc.make_graph(graphc.grad(lambda x: (x * x, 3.0), has_aux=True))(2.0).outputs) == 3


def test_the_readme_example_prints_what_the_readme_shows(capsys):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### For JAX users"):readme.index("## Saving and shipping")]
    code, shown = re.findall(r"```(?:python|text)\n(.*?)```", section, re.S)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102  (the README's own example)
    assert capsys.readouterr().out == shown


def test_make_graph_warns_at_the_callers_line():
    """Regression (an outside tester): its TracerWarning pointed into graphc/functional.py."""
    with pytest.warns(graphc.TracerWarning) as caught:
        graphc.make_graph(lambda x: x if x.data > 0 else -x)(1.0)
    assert [w.filename for w in caught] == [__file__]


def test_a_namedtuple_argument_gets_a_namedtuple_gradient_as_in_jax():
    Point = collections.namedtuple("Point", "x y")
    g = graphc.grad(lambda q: q.x * q.y * q.y)(Point(2.0, 3.0))
    assert type(g) is Point and g == Point(9.0, 12.0)
    value, (gq, gs) = graphc.value_and_grad(lambda q, s: (q.x * s).tanh(), argnums=(0, 1))(Point(0.5, 1.0), 2.0)
    x, s = Value(0.5), Value(2.0)
    out = (x * s).tanh()
    out.backward()
    assert (value, gq, gs) == (out.data, Point(x.grad, 0.0), s.grad)


def test_has_aux_returns_the_aux_beside_the_gradient_as_jax_does():
    def f(x, y):
        return (x * y).tanh() + x * x, {"pred": x * y, "hit": x.data > 0, "n": [y, 3.0]}
    aux = {"hit": True, "n": [2.0, 3.0], "pred": 1.0}
    x, y = Value(0.5), Value(2.0)
    out = (x * y).tanh() + x * x
    out.backward()
    assert graphc.grad(f, has_aux=True)(0.5, 2.0) == (x.grad, aux)
    assert graphc.value_and_grad(f, argnums=(0, 1), has_aux=True)(0.5, 2.0) == ((out.data, aux), (x.grad, y.grad))
    assert graphc.grad(f, argnums=np.int64(1), has_aux=True)(0.5, 2.0) == (y.grad, aux)  # a NumPy int, as JAX takes
    compiled = graphc.compile(graphc.grad(f, has_aux=True))  # inside a trace: live, and a comparison stays a bool
    for point, hit in (((0.5, 2.0), True), ((-0.5, 2.0), False)):
        g, got = compiled(*point)
        assert g.data == graphc.grad(f, has_aux=True)(*point)[0] and got["hit"] is hit
    assert compiled.trace_count == 1
    assert graphc.grad(lambda z: graphc.grad(lambda u: (u * u * u, u * 2.0), has_aux=True)(z)[0])(2.0) == 12.0
    with_none = graphc.grad(lambda x: (x * x, {"a": None, "b": x}), has_aux=True)  # JAX's pytrees hold None
    assert with_none(3.0) == (6.0, {"a": None, "b": 3.0})
    g, got = graphc.compile(with_none)(3.0)
    assert (g.data, got["a"], got["b"].data) == (6.0, None, 3.0)


@pytest.mark.parametrize("fn, has_aux, match", [
    (lambda x: x * 2.0, True, r"has_aux=True needs a function returning a pair \(scalar Value, aux\); lambda returns scalar"),
    (lambda x: (x, x, x), True, r"a pair .* returns \(scalar, scalar, scalar\)"),
    (lambda x: {"a": x, "b": x}, True, r"a pair .* returns \{'a': scalar, 'b': scalar\}"),
    (lambda x: (x.data, x), True, r"returns a plain number"),
    (lambda x: (x * 2.0, x), False, r"one scalar Value \(with has_aux=True, a pair \(value, aux\)\)"),
])
def test_has_aux_needs_a_pair_and_says_so(fn, has_aux, match):
    for call in (lambda: graphc.grad(fn, has_aux=has_aux)(1.0),
                 lambda: graphc.compile(graphc.grad(fn, has_aux=has_aux))(1.0)):
        with pytest.raises(graphc.GraphcError, match=match):
            call()
    with pytest.raises(graphc.ArgumentError, match="has_aux must be True or False; got 1"):
        graphc.grad(fn, has_aux=1)


def test_stable_numerics_hold_for_a_grad_compiled_mapped_or_nested():
    """``grad(f, numerics="stable")`` differentiated its traced graph unrewritten wherever it
    ran inside a trace: the derivative of log(1 + exp(x)) at 800 was nan (an outside hunt)."""
    def f(x):
        return (1 + x.exp()).log()
    g = graphc.grad(f, numerics="stable")
    assert g(800.0) == 1.0
    assert graphc.compile(g)(800.0).data == 1.0 and graphc.compile(g, numerics="stable")(800.0).data == 1.0
    assert graphc.compile(g).map(np.array([800.0]))[0] == 1.0
    assert graphc.grad(g, numerics="stable")(800.0) == 0.0


def test_a_nested_stable_grad_rewrites_its_gradient_as_a_call_does():
    """Inside a trace, ``grad(f, numerics="stable")`` rewrote f before reverse mode but not
    the gradient it formed: ``-s * (1 - s)`` for ``1 - sigmoid(x)`` stayed, 0.0 at x = -40
    where the call gives -sigmoid(40) * sigmoid(-40), and 2-3 ulps off elsewhere; and
    ``make_graph`` showed the exact graph (an outside hunt)."""
    g = graphc.grad(lambda x: 1 - x.sigmoid(), numerics="stable")
    points = [-40.0, -2.8548665935407724, -0.3, 0.0, 1.7, 25.0]
    called = [g(x) for x in points]
    assert called[0] == -4.248354255291589e-18
    assert [graphc.compile(lambda x: g(x))(x).data for x in points] == called
    for backend in ("python", "c"):
        assert graphc.compile(lambda x: g(x), backend=backend).map(np.array(points)).tolist() == called
    graph = graphc.make_graph(g)(points[0])
    assert [replay(graph, [x, 1.0])[1].data for x in points] == called
    assert str(graphc.make_graph(g, numerics="exact")(points[0])) != str(graph)


def test_keyword_arguments_are_passed_on_not_differentiated_as_jax_does():
    def f(x, y=2.0):
        return x * x * y
    assert graphc.grad(f)(2.0, y=3.0) == 12.0 and graphc.value_and_grad(f)(2.0, y=3.0) == (12.0, 12.0)
    assert graphc.grad(f, argnums=-1)(2.0, y=3.0) == 12.0  # -1: the last positional argument
    assert graphc.compile(lambda x: graphc.grad(f)(x, y=3.0))(2.0).data == 12.0
    with pytest.raises(ArgumentError, match="out of range"):
        graphc.grad(f, argnums=1)(2.0, y=3.0)


def test_make_graph_binds_keyword_arguments_as_a_compiled_call_does():
    """An outside hunt: ``make_graph(f)(x, s=3.0)`` raised graph_of()'s bare TypeError, where
    jax.make_jaxpr takes keyword arguments."""
    graph = graphc.make_graph(lambda x, s=2.0: x * s)(1.0, s=3.0)
    assert [evaluate(graph, [2.0, 3.0])[i] for i in graph.outputs] == [6.0]
    with pytest.raises(TypeError, match="got an unexpected keyword argument 't'"):
        graphc.make_graph(lambda x, s=2.0: x * s)(1.0, t=3.0)
