"""Every backend against the Python backend on layer-shaped programs and MLPs (layer_programs.py).

These are the graphs re-rolling turns into dot, matvec, outer and vecmat -- what models
are made of, and what the straight-line programs of test_fuzz_backends.py almost never
build.  Each example runs ``map`` (N = 0 rows included: empty arrays), a Module call on a
2-D array, ``mean_and_grad`` with ``params=`` as an array, a strided view, a reversed
view and a list, ``mean(...).backward()``, and ``train(..., order=perm)`` in one batch
and in several.  The rule: C gives the Python backend's bits, forward and gradients and
trained params; NumPy agrees within the error budget of fuzzing.py; every way of passing
the same numbers gives the same result as the contiguous array.  A backend that builds a
library per example (C) runs fewer examples than the others (BUILDING); ``make asan`` runs
its tests with AddressSanitizer and UBSan.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import graphc
from graphc import Value, autodiff
from graphc.codegen import c_writer
from graphc.codegen.c import find_compiler
from graphc.compile import BACKENDS
from graphc.engine import topological_order
from fuzzing import (EPS, abs_gradient, agree, budget, examples, forward_slack, graph_values,
                     reassociation_slack, same)
from layer_programs import NUMBERS, batches, build_mlp, layer_loss, layer_programs, mlps, run_layers

LR = 0.05
#: A backend held to the scalar program's bits, on a program reading a param in several
#: places: its gradient's parts may be added in another order (reassociation only).
REORDERED = {"reordered": 0}
#: Backends that compile a library per example (0.2-0.5 s each) run fewer examples (C, where
#: a C compiler is found: without one, "c" would run NumPy under C's names and bits).
BUILDING = [b for b in BACKENDS if b == "c" and find_compiler() is not None]
QUICK = [b for b in BACKENDS if b != "c"]


def bits(a) -> list[float]:
    return np.asarray(a, dtype=np.float64).ravel().tolist()


def assert_same_bits(got, want, what: str) -> None:
    got, want = bits(got), bits(want)
    assert len(got) == len(want), (what, got, want)
    bad = [k for k, (a, b) in enumerate(zip(got, want)) if not same(a, b)]
    # two assertions, so that hypothesis reports a wrong number and a wrong sign of zero apart
    assert all(got[k] == want[k] for k in bad), (what, [(k, got[k], want[k]) for k in bad[:4]])
    assert not bad, ("sign of zero", what, [(k, got[k], want[k]) for k in bad[:4]])


def strided_views(values: np.ndarray) -> dict:
    """The same numbers as a contiguous array, a strided view, a reversed view and a list."""
    big = np.full(2 * len(values), 7.5)
    big[::2] = values
    return {"array": values.copy(), "strided view": big[::2], "reversed view": values[::-1].copy()[::-1],
            "list": values.tolist()}


# -- budgets for the NumPy backend ------------------------------------------------------------

def mean_budget(compiled, fn, X: np.ndarray, params: list[Value], ulps: dict) -> tuple[float, dict]:
    """The slack of the mean (value) and of each param's gradient (by id), as test_fuzz_backends
    computes them: reassociation of the sums plus each op's ulps through the joint graph."""
    n = len(X)
    rows = [fn([Value(v) for v in row]) for row in X]
    total = sum(rows[1:], rows[0]) * (1.0 / n)
    value_slack = sum(forward_slack(r, ulps) for r in rows) / n + 4 * n * EPS * sum(abs(r.data) for r in rows) / n
    absolute = abs_gradient(total)
    nodes = len(topological_order((total,)))
    joint = autodiff.grad(compiled.graph, 0, wrt_inputs=False)
    n_forward = len(compiled.graph.outputs)
    elementwise = {id(p): 0.0 for p in joint.param_values}
    for row in X:
        values = graph_values(joint, list(row) + [1.0 / n], [p.data for p in joint.param_values])
        for p, o in zip(joint.param_values, joint.outputs[n_forward:]):
            elementwise[id(p)] += forward_slack(values[o], ulps)
    # two reassociated results, each within the bound of the exact sum: twice the bound apart
    return value_slack, {id(p): 2 * reassociation_slack(absolute[id(p)], nodes) + elementwise.get(id(p), 0.0)
                         for p in params if id(p) in absolute}


def assert_gradients(ulps: dict, got, want, params: list[Value], slack: dict | None, what: str) -> None:
    if not ulps:
        assert_same_bits(got, want, what)
        return
    for p, a, b in zip(params, bits(got), bits(want)):
        if id(p) not in slack:
            assert a == 0 and b == 0, (what, a, b)
        else:
            assert agree(a, b, slack[id(p)], 1e-9, zero_sign=False), (what, a, b, slack[id(p)])


# -- layer-shaped programs -----------------------------------------------------------------

@pytest.mark.parametrize("backend", QUICK)
@examples(50)
@given(spec=layer_programs(), data=st.data())
def test_layer_programs_map_like_the_python_backend(backend, spec, data):
    check_map(backend, spec, data)


@pytest.mark.parametrize("backend", BUILDING)
@examples(12)
@given(spec=layer_programs(), data=st.data())
def test_built_layer_programs_map_like_the_python_backend(backend, spec, data):
    check_map(backend, spec, data)


def check_map(backend: str, spec, data) -> None:
    X = data.draw(batches(spec["n_inputs"], min_rows=0), label="X")
    params = [Value(v) for v in spec["params"]]

    def fn(x):
        return run_layers(spec, list(x), params)
    want = graphc.compile(fn, backend="python").map(X)
    compiled = graphc.compile(fn, backend=backend)
    got = compiled.map(X)
    assert len(got) == len(want) and all(a.shape == (len(X),) for a in got), [a.shape for a in got]
    wide = np.full((2 * len(X), spec["n_inputs"] + 1), 7.5)
    wide[::2, 1:] = X
    assert_same_bits(compiled.map(wide[::2, 1:]), got, "map of a strided view")
    if not budget(backend):
        assert_same_bits(got, want, "map")
        return
    ulps = budget(backend)
    for r, row in enumerate(X):
        for k, out in enumerate(run_layers(spec, [Value(v) for v in row], params)):
            assert agree(float(got[k][r]), float(want[k][r]), forward_slack(out, ulps), 1e-12), \
                (r, k, got[k][r], want[k][r])


@pytest.mark.parametrize("backend", QUICK)
@examples(50)
@given(spec=layer_programs(), data=st.data())
def test_layer_programs_gradients_and_training_like_the_python_backend(backend, spec, data):
    check_layer_gradients(backend, spec, data)


@pytest.mark.parametrize("backend", BUILDING)
@examples(12)
@given(spec=layer_programs(), data=st.data())
def test_built_layer_programs_gradients_and_training_like_the_python_backend(backend, spec, data):
    check_layer_gradients(backend, spec, data)


@st.composite
def layers_over_scalars(draw) -> tuple[int, list[list[bool]], list[float]]:
    """A hidden layer of scalars of their own (one product each, ``x * a``: nothing rolls
    them into a vector) read by a layer whose neurons turn each product either way
    (``w * h`` or ``h * w``): (inputs, for each neuron whether each product has its weight
    on the left, the params' values)."""
    n_inputs = draw(st.integers(1, 3), label="inputs")
    width = draw(st.integers(2, 3), label="scalars")
    turned = draw(st.lists(st.lists(st.booleans(), min_size=width, max_size=width), min_size=2, max_size=5),
                  label="weight on the left")
    values = draw(st.lists(NUMBERS, min_size=width + width * len(turned), max_size=width + width * len(turned)))
    return n_inputs, turned, values


def scalars_loss(spec, x, params: list[Value]) -> Value:
    n_inputs, turned, _ = spec
    width = len(turned[0])
    h = [x[k % n_inputs] * params[k] for k in range(width)]
    weights = iter(params[width:])
    neurons = []
    for row in turned:
        products = []
        for k, left in enumerate(row):
            w = next(weights)
            products.append(w * h[k] if left else h[k] * w)
        neurons.append(sum(products[1:], products[0]))
    return sum((n.tanh() for n in neurons[1:]), neurons[0].tanh())


@pytest.mark.parametrize("backend", BACKENDS)
@examples(30)
@given(spec=layers_over_scalars(), data=st.data())
def test_layers_over_scalars_with_products_turned_either_way_like_the_python_backend(backend, spec, data):
    """The shape an adversarial generator found (1-3 ulps in C's gradients): neurons that
    turn their products differently read the same scalars between the others' rows."""
    if backend == "c" and not BUILDING:
        return
    X = data.draw(batches(spec[0], min_rows=1), label="X")
    perm = np.array(data.draw(st.permutations(range(len(X))), label="order"), dtype=np.intp)

    def make():
        params = [Value(v) for v in spec[2]]
        return (lambda x: scalars_loss(spec, list(x), params)), params
    check_gradients_and_training(backend, make, X, perm)


def check_layer_gradients(backend: str, spec, data) -> None:
    X = data.draw(batches(spec["n_inputs"], min_rows=1), label="X")
    perm = np.array(data.draw(st.permutations(range(len(X))), label="order"), dtype=np.intp)

    def make():
        params = [Value(v) for v in spec["params"]]
        return (lambda x: layer_loss(spec, list(x), params)), params
    check_gradients_and_training(backend, make, X, perm, reordered=reads_a_value_in_several_places(spec))


def reads_a_value_in_several_places(spec: dict) -> bool:
    """Whether some param of ``spec`` is read in more than one place (a weight twice, or a
    weight and a function's operand), or an input is used as a weight (then read by the
    first layer and again as a weight: a value read in several places of one row), or a
    layer has a residual connection (its input read by the layer and, between its
    neurons, by the residual additions), or a neuron of a layer past the first reads a
    hidden value twice (it stays out of its layer's matvec, and reads the layer's input
    between the other neurons): README, "Exactness", the two exceptions.  An L2 term, which
    reads every param again, is held to the bit, written after the data loss or before."""
    operands = [operand for layer in spec["layers"] for neuron in layer["neurons"]
                for operand in [term[0] for term in neuron["terms"]] + neuron["extras"]]
    reads = [operand[-1] for operand in operands if operand[0] in ("param", "function")]
    input_weights = any(term[0][0] == "input" for layer in spec["layers"] for neuron in layer["neurons"]
                        for term in neuron["terms"])
    residual = any(layer["residual"] for layer in spec["layers"])
    twice = any(len(neuron["terms"]) != len({term[1] for term in neuron["terms"]}) and len(layer["neurons"]) > 1
                for layer in spec["layers"][1:] for neuron in layer["neurons"])
    return len(reads) != len(set(reads)) or input_weights or residual or twice


def check_gradients_and_training(backend, make, X: np.ndarray, perm: np.ndarray, reordered: bool = False) -> None:
    """mean_and_grad (params from the Values, and as array, views and list), mean().backward()
    and train in one batch and in several, each against the Python backend.  ``make()``
    returns a fresh loss function of one row and the params it reads.  ``reordered``: some
    param is read in several places, or an input serves as a weight, so a batched backend
    may add a gradient's parts in another order than the scalar program (README,
    Exactness): gradients within the reassociation budget, values still bit for bit."""
    ulps = budget(backend) or (REORDERED if reordered else {})
    fn, params = make()
    reference = graphc.compile(fn, backend="python")
    compiled = graphc.compile(fn, backend=backend)
    want_value, want_grads = reference.mean_and_grad(X)
    value, grads = compiled.mean_and_grad(X)
    used = compiled.params
    slack = None
    if ulps:
        value_slack, slack = mean_budget(compiled, fn, X, params, ulps)
        assert agree(value, want_value, value_slack, 1e-12), (value, want_value, value_slack)
    if not budget(backend):
        assert_same_bits(value, want_value, "mean")
    assert_gradients(ulps, grads, want_grads, used, slack, "mean_and_grad")

    loss = compiled.mean(X)
    loss.backward()
    assert_same_bits(loss.data, value, "mean().data")
    assert_same_bits([p.grad for p in used], grads, "mean().backward() grads")

    moved = np.array([p.data for p in used]) + 0.25  # other numbers, so params= is really read
    want_moved = reference.mean_and_grad(X, params=moved)
    got_moved = compiled.mean_and_grad(X, params=moved)
    if not budget(backend):
        assert_same_bits(got_moved[0], want_moved[0], "mean, params=")
    if not ulps:
        assert_same_bits(got_moved[1], want_moved[1], "mean_and_grad, params=")
    for how, given_params in strided_views(moved).items():
        value_as, grads_as = compiled.mean_and_grad(X, params=given_params)
        assert_same_bits(value_as, got_moved[0], f"mean, params= as a {how}")
        assert_same_bits(grads_as, got_moved[1], f"mean_and_grad, params= as a {how}")

    for batch_size in (None, 2):
        want = trained(make, "python", X, batch_size, perm)
        got = trained(make, backend, X, batch_size, perm)
        what = f"params after train(batch_size={batch_size}, order=perm)"
        if not ulps:
            assert_same_bits(got, want, what)
            continue
        steps = 1 if batch_size is None else -(-len(X) // batch_size)
        for p, a, b in zip(params, got, want):  # each step's gradient error, times lr
            assert agree(a, b, 2 * steps * LR * slack.get(id(p), 0.0), 1e-9), (what, a, b)


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
@examples(6)
@given(spec=layer_programs(), data=st.data())
def test_built_layer_programs_in_blocks_of_rows_like_the_c_row_loop(spec, data):
    """C's blocked row body (GC_B rows at a time) against its row loop alone: the same bits
    for map, mean_and_grad and train on rows filling blocks and leaving some over."""
    X = data.draw(batches(spec["n_inputs"], min_rows=8, max_rows=19), label="X")
    params = [Value(v) for v in spec["params"]]

    def fn(x):
        return layer_loss(spec, list(x), params)
    blocked, rowwise = graphc.compile(fn, backend="c"), graphc.compile(fn, backend="c")
    got_map = blocked.map(X)
    moved = np.array([p.data for p in blocked.params]) + 0.25  # the params the loss reads
    got = got_map, blocked.mean_and_grad(X, params=moved)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(c_writer, "BLOCK_LIMIT", -1)
        want = rowwise.map(X), rowwise.mean_and_grad(X, params=moved)
    assert "GC_B rows at a time" in blocked.source and "GC_B rows at a time" not in rowwise.source
    assert_same_bits(got[0], want[0], "map")
    assert_same_bits(got[1][0], want[1][0], "mean")
    assert_same_bits(got[1][1], want[1][1], "mean_and_grad")


def trained(make, backend: str, X: np.ndarray, batch_size, perm) -> list[float]:
    """The params after ``train`` on fresh copies of them."""
    fn, params = make()
    compiled = graphc.compile(fn, backend=backend)
    compiled.train(X, lr=LR, batch_size=batch_size, order=perm)
    return [p.data for p in params]


# -- MLPs --------------------------------------------------------------------------------------

def mlp_loss(model, x, l2: str | None = None) -> Value:
    """The sum of the outputs, plus an L2 term written after it or before it (``reg +
    data``: then the L2 term's two parts of each param's gradient come after the model's)."""
    out = model(list(x))
    loss = out if isinstance(out, Value) else sum(out[1:], out[0])
    if l2 is None:
        return loss
    reg = 1e-3 * sum(p * p for p in model.parameters())
    return loss + reg if l2 == "after" else reg + loss


@pytest.mark.parametrize("backend", QUICK)
@examples(40)
@given(shape=mlps(), data=st.data())
def test_mlps_like_the_python_backend(backend, shape, data):
    check_mlp(backend, shape, data)


@pytest.mark.parametrize("backend", BUILDING)
@examples(8)
@given(shape=mlps(), data=st.data())
def test_built_mlps_like_the_python_backend(backend, shape, data):
    check_mlp(backend, shape, data)


def check_mlp(backend: str, shape, data) -> None:
    nin = shape[0]
    X = data.draw(batches(nin, min_rows=0, max_rows=19), label="X")  # C: blocks of rows and the rest
    model = build_mlp(*shape)
    want = graphc.compile(model, backend="python")(X)
    got = graphc.compile(model, backend=backend)(X)
    assert got.shape == want.shape and got.shape[0] == len(X), (got.shape, want.shape)
    if not budget(backend):
        assert_same_bits(got, want, "Module call")
    else:
        ulps = budget(backend)
        for r, row in enumerate(X):
            outs = model([Value(v) for v in row])
            outs = [outs] if isinstance(outs, Value) else outs
            for k, out in enumerate(outs):
                assert agree(float(got.reshape(len(X), -1)[r, k]), float(want.reshape(len(X), -1)[r, k]),
                             forward_slack(out, ulps), 1e-12), (r, k)
    if len(X) == 0:
        return
    perm = np.array(data.draw(st.permutations(range(len(X))), label="order"), dtype=np.intp)
    l2 = data.draw(st.sampled_from([None, "after", "before"]), label="an L2 term inside the loss")

    def make():
        fresh = build_mlp(*shape)
        return (lambda x: mlp_loss(fresh, x, l2)), fresh.parameters()
    check_gradients_and_training(backend, make, X, perm)


#: Two programs ``make fuzz`` drew (all params 0 but one): in their gradient graphs, rows
#: of one group are weights of another's rows and the other way round, directly or through
#: ``sigmoid`` or a product -- rolling both made a cycle (C: a build error, NumPy: a crash).
_CYCLES = [
{'l2': None,
 'layers': [{'activation': 'identity',
             'neurons': [{'extras': [],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 0), 0, False), (('param', 1), 1, True)]},
                         {'extras': [],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 2), 0, False), (('param', 3), 1, False)]},
                         {'extras': [('param', 5)],
                          'extras_first': True,
                          'style': 'add',
                          'terms': [(('input', 0), 0, False), (('param', 4), 1, False)]}],
             'residual': False},
            {'activation': 'identity',
             'neurons': [{'extras': [('scaled input', 0, 0.5), ('const', 0.5)],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 6), 0, True)]},
                         {'extras': [('param', 0), ('param', 0)],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 7), 0, False), (('function', 'half', 8), 1, False),
                                    (('param', 0), 2, False)]},
                         {'extras': [],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 8), 0, False)]},
                         {'extras': [],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 0), 0, False), (('param', 0), 1, False),
                                    (('param', 0), 2, False)]}],
             'residual': False},
            {'activation': 'identity',
             'neurons': [{'extras': [],
                          'extras_first': False,
                          'style': 'split',
                          'terms': [(('param', 0), 0, False), (('param', 0), 1, False),
                                    (('param', 0), 2, False), (('param', 3), 3, False),
                                    (('param', 1), 0, False), (('param', 0), 1, False),
                                    (('param', 4), 2, False), (('param', 1), 3, False)]}],
             'residual': False}],
 'loss': 'first',
 'n_inputs': 1,
 'outputs': [(2, 0)],
 'params': [0.0, -0.2865969916097373, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
 'sources': [('input', 0), ('input', 0)]},
{'l2': None,
 'layers': [{'activation': 'identity',
             'neurons': [{'extras': [],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 0), 0, True), (('param', 1), 1, False)]},
                         {'extras': [],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 2), 0, True), (('param', 3), 1, False)]},
                         {'extras': [('param', 5)],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('input', 0), 0, False), (('param', 4), 1, False)]}],
             'residual': False},
            {'activation': 'sigmoid',
             'neurons': [{'extras': [('scaled input', 0, 0.5), ('const', 0.5)],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 6), 0, True)]},
                         {'extras': [('param', 0), ('param', 0)],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 7), 0, False), (('function', 'half', 8), 1, False),
                                    (('param', 0), 2, False)]},
                         {'extras': [],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 8), 0, False)]},
                         {'extras': [],
                          'extras_first': False,
                          'style': 'add',
                          'terms': [(('param', 0), 0, False), (('param', 0), 1, False),
                                    (('param', 0), 2, False)]}],
             'residual': False},
            {'activation': 'identity',
             'neurons': [{'extras': [],
                          'extras_first': False,
                          'style': 'split',
                          'terms': [(('param', 0), 0, False), (('param', 0), 1, False),
                                    (('param', 3), 2, False), (('param', 0), 3, False),
                                    (('param', 1), 0, False), (('param', 5), 1, False),
                                    (('param', 0), 2, False), (('param', 1), 3, False)]}],
             'residual': False}],
 'loss': 'first',
 'n_inputs': 1,
 'outputs': [(2, 0)],
 'params': [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
 'sources': [('input', 0), ('input', 0)]},
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", _CYCLES, ids=["directly", "through sigmoid and a product"])
def test_groups_of_rows_reading_each_others_rows_as_weights_roll_without_a_cycle(backend, spec):
    def make():
        params = [Value(v) for v in spec["params"]]
        return (lambda x: layer_loss(spec, list(x), params)), params
    X = np.array([[0.0], [0.5]])
    check_gradients_and_training(backend, make, X, np.arange(len(X)), reordered=reads_a_value_in_several_places(spec))
