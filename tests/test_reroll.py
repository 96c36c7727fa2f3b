"""The re-rolling pass: what it finds, that it finds it anywhere, and that nothing changes value."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

import graphc
from graphc import Value, apply, ops, trace
from graphc.autodiff import grad
from graphc.codegen import python as python_backend
from graphc.graph import Builder
from graphc.losses import softmax_cross_entropy
from graphc.nn import MLP
from graphc.passes import PIPELINE, VECTOR_PIPELINE, optimize, reroll
from graphc.passes.reroll import rerolled
from conftest import rel_err
from strategies import SPECIAL_CONSTANTS, programs, replay

ACTIVATIONS = ["relu", "tanh", "sigmoid", "exp", "sin", "neg", "step"]


def run(graph, inputs, params=()):
    fn, _ = python_backend.compile_graph(graph, "f")
    return list(fn(list(inputs), list(params)))


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def rolled(graph):
    return optimize(graph, passes=VECTOR_PIPELINE)


def mlp_graph(nin=2, sizes=(3, 2, 1), seed=0):
    random.seed(seed)
    model = MLP(nin, list(sizes))
    g = optimize(trace(lambda x: model(x), [0.0] * nin, params=model.parameters()))
    return g, model


def test_an_mlp_becomes_matvecs_relus_and_a_dot():
    g, model = mlp_graph()
    r, report = optimize(g, passes=VECTOR_PIPELINE, report=True)
    r.verify(allow_dead=False)
    assert str(r) == (
        "{ lambda x_0 x_1 ; L0_N0_w0 L0_N0_w1 L0_N0_b L0_N1_w0 L0_N1_w1 L0_N1_b L0_N2_w0 L0_N2_w1 L0_N2_b\n"
        "    L1_N0_w0 L1_N0_w1 L1_N0_w2 L1_N0_b L1_N1_w0 L1_N1_w1 L1_N1_w2 L1_N1_b L2_N0_w0 L2_N0_w1\n"
        "    L2_N0_b .\n"
        "  let v2:f64[2] = pack[shape=(2,)] x_0 x_1\n"
        "      v11:f64[3,2] = pack[shape=(3, 2)] L0_N0_w0 L0_N0_w1 L0_N1_w0 L0_N1_w1 L0_N2_w0 L0_N2_w1\n"
        "      v13:f64[3] = pack[shape=(3,)] L0_N0_b L0_N1_b L0_N2_b\n"
        "      v14:f64[3] = matvec v13 v11 v2\n"
        "      v15:f64[3] = relu v14\n"
        "      v23:f64[2,3] = pack[shape=(2, 3)] L1_N0_w0 L1_N0_w1 L1_N0_w2 L1_N1_w0 L1_N1_w1 L1_N1_w2\n"
        "      v25:f64[2] = pack[shape=(2,)] L1_N0_b L1_N1_b\n"
        "      v26:f64[2] = matvec v25 v23 v15\n"
        "      v27:f64[2] = relu v26\n"
        "      v30:f64[2] = pack[shape=(2,)] L2_N0_w0 L2_N0_w1\n"
        "      v32 = dot L2_N0_b v30 v27\n"
        "  in ( v32 ) }")
    hits = report.rounds[0][VECTOR_PIPELINE.index(reroll)].hits
    assert hits == {"dot": 1, "matvec": 2, "rows": 5, "vectorized": 2, "pack(index)": 2}
    assert "reroll" in str(report)
    assert r.nx.nodes[r.args[r.outputs[0]][2]]["shape"] == (2,)  # the networkx view carries shapes
    x = [0.3, -1.7]
    params = [p.data for p in model.parameters()]
    assert run(r, x, params) == run(g, x, params) == [model(x).data]


def test_optimize_does_not_reroll():
    g, _ = mlp_graph()
    assert "matvec" not in optimize(g).counts() and reroll not in PIPELINE


def test_the_backward_pass_is_vectorized_too():
    g, model = mlp_graph()
    joint = rolled(grad(rolled(g), wrt_inputs=False))
    joint.verify()
    counts = joint.counts()
    assert counts["outer"] == 2 and counts["vecmat"] == 1 and counts["matvec"] == 2
    x = [0.3, -1.7]
    params = [p.data for p in model.parameters()]
    out = model(x)
    model.zero_grad()
    out.backward()
    got = run(joint, x + [1.0], params)
    assert got[0] == out.data
    assert got[1:] == [p.grad for p in model.parameters()]  # bit for bit: same products, same order


def test_rows_are_grouped_by_the_operand_they_share_whichever_side_it_is_on():
    # x * w and w * x both read x; the two sums share (x0, x1) on different sides
    def f(x0, x1, a, b, c, d):
        return [x0 * a + x1 * b, c * x0 + d * x1, a * b + c * d]
    g = trace(f, *[0.5] * 6)
    r = rolled(g)
    assert r.counts()["matvec"] == 1 and r.counts()["dot"] == 1
    xs = [0.1, 0.2, 0.3, 0.7, -0.4, 2.5]
    assert run(r, xs) == run(g, xs)


def test_products_with_other_users_and_sums_around_the_run_stay_exact():
    def f(x, y, z):
        shared = x * y  # used twice: never absorbed
        return [(shared + y * z) + z * z + x, shared * 2.0, z + x * z + y * y + 1.5]
    g = trace(f, 1.0, 2.0, 3.0)
    r = rolled(g)
    assert r.counts()["dot"] == 2
    for xs in ([1e16, 1.0, -1e16], [0.1, 0.2, 0.3], [-0.0, 0.0, -0.0]):
        assert all(same(a, b) for a, b in zip(run(r, xs), run(g, xs)))


def test_dependent_rows_are_not_grouped():
    def f(x0, x1, a, b):
        s = a * x0 + b * x1
        t = s * x0 + b * x1  # shares (x0, x1) but its weight is the first row's result
        return t
    g = trace(f, 1.0, 2.0, 3.0, 4.0)
    r = rolled(g)
    assert r.counts()["matvec"] == 0 and r.counts()["dot"] == 1  # t reads s within its products: a sum
    assert run(r, [0.5, 1.5, -2.0, 3.0]) == run(g, [0.5, 1.5, -2.0, 3.0])


def test_index_users_of_a_layer_get_one_gathered_cotangent():
    random.seed(3)
    model = MLP(3, [4, 3])  # three logits, each used by scalar code
    g = optimize(trace(lambda x: functools_max(model(x)), [0.0] * 3, params=model.parameters()))
    joint = rolled(grad(rolled(g), wrt_inputs=False))
    assert "unit" not in joint.counts()  # sum(unit, unit, unit) became one pack
    x = [0.2, -0.3, 0.9]
    out = functools_max(model(x))
    model.zero_grad()
    out.backward()
    got = run(joint, x + [1.0], [p.data for p in model.parameters()])
    assert got[0] == out.data and all(rel_err(a, p.grad) <= 1e-15 for a, p in zip(got[1:], model.parameters()))


def functools_max(values):
    top = values[0]
    for v in values[1:]:
        top = top.max(v)
    return top


def test_a_deep_graph_does_not_recurse():
    def chain(x, u, w, v):
        for _ in range(10_000):
            x = (x + w * u + v * 0.5).tanh()
        return x
    g = trace(chain, 0.1, 0.3, -0.2, 0.7)
    r = rolled(g)
    assert r.counts()["dot"] == 10_000
    assert run(r, [0.1, 0.3, -0.2, 0.7]) == run(g, [0.1, 0.3, -0.2, 0.7])


@st.composite
def layered(draw):
    """A random stack of layers: shared inputs, random activations, biases or none; the
    outputs are the last layer's, after the sum of some of them (``read``, in the order
    drawn, repeats allowed) when that is drawn."""
    nin = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    acts = [draw(st.sampled_from(ACTIVATIONS)) for _ in sizes]
    bias = [draw(st.booleans()) for _ in sizes]
    read = draw(st.none() | st.lists(st.integers(0, sizes[-1] - 1), min_size=1, max_size=3))
    return nin, sizes, acts, bias, read


def layered_fn(nin, sizes, acts, bias, params, read=None):
    it = iter(params)

    def f(*x):
        x = list(x)
        for size, act, has_bias in zip(sizes, acts, bias):
            x = [apply(act, sum((next(it) * xi for xi in x), next(it) if has_bias else 0.0)) for _ in range(size)]
        return x if read is None else [sum(x[k] for k in read)] + x
    return f


@settings(max_examples=60, deadline=None)
@given(layered(), st.integers(0, 2**31), st.sampled_from([1.5, 400.0]))
@example((3, [2, 3, 2], ["exp", "exp", "exp"], [True, False, False], None), 0, 1.5)  # lane 1 overflows, lane 0 is read
@example((2, [3, 3], ["exp", "tanh"], [True, True], [0, 1]), 2, 400.0)  # rows 0, 1 read, the layer's input inf
def test_rerolled_layers_equal_the_scalar_graph_bit_for_bit(spec, seed, scale):
    """Weights up to 400 overflow exp and saturate the rest: lanes go inf where others are read."""
    nin, sizes, acts, bias, read = spec
    rng = random.Random(seed)
    params = [Value(rng.uniform(-scale, scale)) for _ in range(sum(s * 10 for s in sizes) + 50)]
    f = layered_fn(nin, sizes, acts, bias, params, read)
    g = optimize(trace(f, *[0.0] * nin))
    r = rolled(g)
    r.verify(allow_dead=False)
    xs = [rng.uniform(-2, 2) for _ in range(nin)]
    ps = [p.data for p in g.param_values]
    assert all(same(a, b) for a, b in zip(run(r, xs, ps), run(g, xs, ps))), str(r)
    plain, vector = grad(g, wrt_inputs=True), rolled(grad(r, wrt_inputs=True))
    vector.verify()
    for a, b in zip(run(vector, xs + [1.0], ps), run(optimize(plain), xs + [1.0], ps)):
        assert same(a, b), str(vector)


@pytest.mark.parametrize("read", [None, [0, 1], [1, 0, 1]])
def test_rows_of_a_layer_read_apart_ignore_the_other_rows(read):
    """The output reads rows of the second layer apart from row 2 (None: output 0 is row 0),
    whose input overflowed to inf: the scalar graph never differentiates row 2, so its
    weights get 0.0, not 0 * inf."""
    rng = random.Random(1)
    params = [Value(rng.uniform(-1.5, 1.5)) for _ in range(21)]
    params[0] = Value(800.0)  # exp(800 * x0) is inf
    g = optimize(trace(layered_fn(2, [3, 3], ["exp", "tanh"], [True, True], params, read), 0.0, 0.0))
    r = rolled(g)
    assert r.counts()["matvec"] == 2
    xs, ps = [1.0, 0.5, 1.0], [p.data for p in g.param_values]
    scalar = run(optimize(grad(g, wrt_inputs=True)), xs, ps)
    vector = run(rolled(grad(r, wrt_inputs=True)), xs, ps)
    assert all(same(a, b) for a, b in zip(vector, scalar))
    by_param = dict(zip(map(id, g.param_values), scalar[-len(ps):]))
    assert [by_param[id(p)] for p in params[17:]] == [0.0] * 4  # the third row's weights and bias


def _computed_layer(which: str):
    """A layer of two rows whose biases or weights are exp of params, one of them exp(800) =
    inf; output 0 reads row 0 alone."""
    a, theta = [Value(0.5), Value(800.0)], [[Value(0.1), Value(-0.2)], [Value(800.0), Value(0.3)]]
    plain = [[Value(0.3), Value(-0.7)], [Value(1.1), Value(0.2)]]

    def f(x0, x1):
        if which == "bias":
            rows = [a[j].exp() + plain[j][0] * x0 + plain[j][1] * x1 for j in range(2)]
            return [rows[0], rows[0], rows[1], a[1].exp()]
        rows = [a[j] + theta[j][0].exp() * x0 + theta[j][1].exp() * x1 for j in range(2)]
        return [rows[0]] + rows
    return f


@pytest.mark.parametrize("which", ["bias", "weights"])
def test_computed_rows_of_a_layer_read_apart_take_no_derivative_from_the_others(which):
    """The unread row's bias or weight is inf: its pack (and the exp under it) must get no
    cotangent at all, as in the scalar graph, not 0.0 times inf."""
    g = optimize(trace(_computed_layer(which), 0.0, 0.0))
    r = rolled(g)
    assert r.counts()["matvec"] == 1
    xs, ps = [1.0, 2.0, 1.0], [p.data for p in g.param_values]
    scalar, vector = run(optimize(grad(g)), xs, ps), run(rolled(grad(r)), xs, ps)
    assert all(same(a, b) for a, b in zip(vector, scalar)) and not any(map(math.isnan, scalar))


def test_a_lane_packed_twice_and_read_once_keeps_its_gradients_sign():
    """``pack(x0, x0)`` under a layer whose row 0 alone is read: the unread lane must not add
    +0.0 to x0's -0.0 gradient."""
    params = [Value(v) for v in [-0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]

    def f(*x):  # each row's first product, then 0.5, then the rest: an accumulator of x0's products
        rows = [(sum((params[4 * r] * x[0], 0.5, *(params[4 * r + k] * x[k] for k in (1, 2, 3))))).tanh()
                for r in range(2)]
        return [0 + rows[0], *rows]
    g = optimize(trace(f, 0.0, 0.0, 0.0, 0.0))
    r = rolled(g)
    xs, ps = [1.0] * 5, [p.data for p in g.param_values]
    scalar, vector = run(optimize(grad(g)), xs, ps), run(rolled(grad(r)), xs, ps)
    assert "pack[shape=(2,)] x0 x0" in str(r) and math.copysign(1.0, scalar[3]) == -1.0
    assert all(same(a, b) for a, b in zip(vector, scalar))


@settings(max_examples=100, deadline=None)
@given(programs(constants=SPECIAL_CONSTANTS, max_ops=16))
def test_reroll_keeps_random_graphs_valid_and_their_values(spec):
    params = [Value(0.75), Value(-1.25)]
    g = optimize(trace(lambda *xs: replay(spec, xs, params), 0.5, -1.5, 2.0))
    xs, ps = [0.5, -1.5, 2.0], [p.data for p in g.param_values]
    expected = run(g, xs, ps)
    r = reroll(g).graph.verify()
    assert all(same(a, b) for a, b in zip(run(r, xs, ps), expected)), str(r)
    current = r
    for p in PIPELINE:  # every pass still works on tensor graphs
        current = p(current).graph.verify()
        assert all(same(a, b) for a, b in zip(run(current, xs, ps), expected)), (p.__name__, str(r))


def test_gradient_parts_made_before_a_layers_become_its_vecmats_accumulator():
    """Rule 5: h feeds a layer and, after it, the output itself; reverse mode adds the
    output's part to each lane first, then the layer's rows -- so does vecmat(acc, g, W)."""
    random.seed(1)
    model = MLP(2, [3, 2], activation="identity")

    def f(x):
        h = model.layers[0](x)
        return sum(model.layers[1](h)) + sum(h)
    g = trace(f, [0.0, 0.0], params=model.parameters())
    joint, report = optimize(grad(rolled(g), wrt_inputs=False), report=True, passes=VECTOR_PIPELINE)
    assert sum(r.hits.get("accumulated", 0) for rnd in report.rounds for r in rnd if r.name == "reroll") == 1
    (v,) = [i for i, op in enumerate(joint.ops) if op == "vecmat"]
    assert joint.ops[joint.args[v][0]] != "const"  # starts from the output's parts, not -0.0
    x = [0.3, -1.7]
    params = [p.data for p in model.parameters()]
    out = f(x)
    model.zero_grad()
    out.backward()
    assert run(joint, x + [1.0], params)[1:] == [p.grad for p in model.parameters()]


def test_rows_with_another_reader_of_their_lanes_between_them_stay_dots():
    """Rule 2's order condition: the last neuron is split around the product a0*w8, so
    rolling it with the two before into one matvec would add a0's gradient parts in another
    order than reverse mode; they stay dots over the same vector, whose parts arrive in order."""
    def f(x0, x1, *w):
        a = [x0 * w[0] + x1 * w[1], x0 * w[2] + x1 * w[3]]
        n2 = (a[0] * w[8] + w[9] * a[1]) + (w[10] * a[0] + w[11] * a[1])
        return [a[0] * w[4] + a[1] * w[5], a[0] * w[6] + a[1] * w[7], n2]
    counts = rolled(trace(f, *[0.5] * 14)).counts()
    assert counts["matvec"] == 1 and counts["dot"] == 4  # the first layer; the rows above it


def graphs_reroll_sees(fn, *args):
    """Every graph the re-rolling pass is handed while ``fn``'s forward and gradient graphs
    are optimized for the batched backends."""
    from graphc.passes import JOINT_VECTOR_PIPELINE, VECTOR_PIPELINE, pipeline, reroll_check
    from graphc.passes.reroll import reroll_final
    seen = []

    def spying(run):
        def spy(graph):
            seen.append(graph)
            return run(graph)
        return spy
    forward = pipeline.optimize(trace(fn, *args), passes=tuple(spying(p) if p is reroll else p for p in VECTOR_PIPELINE))
    pipeline.optimize(grad(forward, wrt_inputs=False),
                      passes=tuple(spying(p) if p is reroll_final else p for p in JOINT_VECTOR_PIPELINE))
    return seen, reroll_check


def random_mlp_loss(seed: int):
    """One of four losses of a random MLP(3, [4, 3, 2]): softmax cross-entropy, a sum with a
    param read twice, a permuted input with two calls, an L2 term inside."""
    random.seed(seed)
    model = MLP(3, [4, 3, 2], activation=random.choice(["relu", "tanh", "identity"]))
    losses = [lambda x: softmax_cross_entropy(model(x), [0.0, 1.0]),
              lambda x: sum(model(x)) * 0.5 + x[0] * model.parameters()[0],
              lambda x: model([x[2], x[1], x[0]])[seed % 2].relu() + model(x)[0],
              lambda x: model(x)[1] + 1e-3 * sum(p * p for p in model.parameters())]
    return losses[seed % 4]


@pytest.mark.parametrize("seed", range(12))
def test_the_quick_check_says_no_only_where_no_rule_fires(seed):
    """reroll_check.could_change is a necessary condition of every rule: where it says no,
    the full pass changes nothing (the last round of every optimize asks)."""
    seen, check = graphs_reroll_sees(random_mlp_loss(seed), [0.5, -1.0, 2.0])
    said_no = [g for g in seen if not check.could_change(g)]
    # the last round's graphs at least -- but for the L2 term inside, which joins the last
    # neuron's sum as a product of a deep factor: no dot (see reroll_sums._simple), and the
    # quick check cannot tell
    assert said_no or seed % 4 == 3
    for g in said_no:
        assert rerolled(g).graph is g
    for g in seen:
        if rerolled(g).graph is not g:
            assert check.could_change(g)


def l2_gradient_graph(sizes=(3, 2), l2=1e-3, seed=0):
    """A per-sample loss with an L2 term inside, re-rolled, and its re-rolled gradient graph:
    each param's gradient is the L2 term's plus the layer's (``add(index(l2, j), index(outer, k))``)."""
    random.seed(seed)
    model = MLP(2, list(sizes))
    params = model.parameters()
    forward = rolled(trace(lambda x: sum(model(x)) + l2 * sum(p * p for p in params), [0.0, 0.0], params=params))
    return model, params, grad(forward, wrt_inputs=False)


def test_gradients_over_a_layers_lanes_become_one_elementwise_op():
    model, params, raw = l2_gradient_graph()
    joint = rolled(raw)
    joint.verify()
    grads = joint.outputs[1:]
    tensors = {joint.args[o][0] for o in grads if joint.ops[o] == "index"}
    # the last layer's weight gradients: add(L2 lanes, outer(cotangent, hidden))
    assert any(joint.ops[t] == "add" and "outer" in [joint.ops[a] for a in joint.args[t]] for t in tensors)
    x = [0.3, -1.7]
    loss = sum(model(x)) + 1e-3 * sum(p * p for p in params)
    model.zero_grad()
    loss.backward()
    assert run(joint, x + [1.0], [p.data for p in params]) == [loss.data] + [p.grad for p in params]


def lanes_plus_constants(reread: bool = False, lanes: int = 4):
    """Outputs ``0.25 * k + index(outer(x, y), k)`` for the first ``lanes`` lanes of the 2x2
    outer (``reread``: the last also read by a node, which is an output too)."""
    b = Builder()
    x, y = b.add("input", (), ("x",)), b.add("input", (), ("y",))
    outer = b.add("outer", (b.add("pack", (x, y), ((2,),)), b.add("pack", (y, x), ((2,),))))
    outputs = [b.add("add", (b.const(0.25 * k), b.add("index", (outer,), (k,)))) for k in range(lanes)]
    if reread:
        outputs.append(b.add("mul", (outputs[-1], x)))
    return b.finish([x, y], [], outputs)


def test_outputs_covering_a_tensors_lanes_once_become_lanes_of_one_op():
    g = lanes_plus_constants()
    r = rerolled(g).graph
    assert all(r.ops[o] == "index" for o in r.outputs) and len({r.args[o][0] for o in r.outputs}) == 1
    assert run(r, [0.5, -3.0]) == run(g, [0.5, -3.0])


@pytest.mark.parametrize("graph", [lanes_plus_constants(reread=True), lanes_plus_constants(lanes=3)],
                         ids=["a lane read by a node", "a lane missing"])
def test_outputs_read_by_a_node_or_covering_part_of_a_tensor_stay_scalar(graph):
    assert rerolled(graph).graph is graph
    assert run(rolled(graph), [0.5, -3.0]) == run(graph, [0.5, -3.0])


def kahn_emit(work):
    """The re-sort as Kahn's algorithm with a heap over every node, keyed (is original, id):
    the order the pointer sweep of reroll_work._stable_order must give."""
    import heapq
    graph, n_original = work.graph, work.n_original
    args = [tuple(work.resolve(a) for a in operands) for operands in work.args]
    outputs = [work.resolve(o) for o in graph.outputs]
    live = [False] * len(work.ops)
    for i in list(graph.inputs) + list(graph.params) + outputs:
        live[i] = True
    stack = list(outputs)
    while stack:
        for a in args[stack.pop()]:
            if not live[a]:
                live[a] = True
                stack.append(a)
    waiting = [len(args[i]) if live[i] else 0 for i in range(len(live))]
    users = [[] for _ in live]
    for i in range(len(live)):
        if live[i]:
            for a in args[i]:
                users[a].append(i)
    heap = [(i < n_original, i) for i in range(len(live)) if live[i] and not waiting[i]]
    heapq.heapify(heap)
    b, remap = Builder(), [-1] * len(live)
    while heap:
        _, i = heapq.heappop(heap)
        if work.ops[i] == "const":
            remap[i] = b.const(work.attrs[i][0])
        else:
            remap[i] = b.add(work.ops[i], tuple(remap[a] for a in args[i]), work.attrs[i])
        for u in users[i]:
            waiting[u] -= 1
            if not waiting[u]:
                heapq.heappush(heap, (u < n_original, u))
    return b.finish([remap[i] for i in graph.inputs], [remap[i] for i in graph.params],
                    [remap[o] for o in outputs], like=graph)


@pytest.mark.parametrize("seed", range(12))
def test_the_pointer_sweep_places_nodes_as_kahns_algorithm_does(seed, monkeypatch):
    """reroll shares the unchanged prefix and sweeps the rest with a pointer, a heap only for
    new and delayed nodes: the same order as a heap over every node."""
    import importlib
    module = importlib.import_module("graphc.passes.reroll")
    seen, _ = graphs_reroll_sees(random_mlp_loss(seed), [0.5, -1.0, 2.0])
    for g in seen:
        fast = rerolled(g).graph
        monkeypatch.setattr(module, "emit", kahn_emit)
        plain = rerolled(g).graph
        monkeypatch.undo()
        assert (fast.ops, fast.args, fast.attrs, fast.outputs) == (plain.ops, plain.args, plain.attrs, plain.outputs)


def test_a_dots_products_are_turned_so_each_operand_is_on_one_side():
    """``w*x + x*v``: x on both sides would reach its gradient parts through two packs;
    turned, the dot is dot(pack(w, v), pack(x, x)).  A triangle ``a*b + b*c + c*a`` cannot
    be turned and stays a sum of products; a square ``x*x`` is no obstacle."""
    def turned(x, w, v):
        return w * x + x * v
    r = rolled(trace(turned, 0.5, 1.5, -2.0))
    (d,) = [i for i, op in enumerate(r.ops) if op == "dot"]
    u, v = (r.args[r.args[d][k]] for k in (1, 2))
    assert len(set(u) & set(v)) == 0 and len(set(v)) == 1
    assert run(r, [0.5, 1.5, -2.0]) == run(trace(turned, 0.5, 1.5, -2.0), [0.5, 1.5, -2.0])
    assert rolled(trace(lambda a, b, c: a * b + b * c + c * a, 1.0, 2.0, 3.0)).counts()["dot"] == 0
    assert rolled(trace(lambda x, y: x * x + y * x, 1.0, 2.0)).counts()["dot"] == 1


def test_a_softmax_layers_gradient_re_rolls_in_one_run():
    """Reverse mode packs the lanes' cotangents itself and the pass counts only live uses
    (the ``unit`` s left dead do not make a lane look shared): one run of the pass does all,
    and the next round finds nothing -- a round over the gradient of MNIST's MLP costs
    about a quarter of a second."""
    random.seed(3)
    model = MLP(4, [3, 3])
    r = rolled(optimize(trace(lambda *x: softmax_cross_entropy(model(list(x[:4])), list(x[4:])), *[0.0] * 7)))
    joint, report = optimize(grad(r, wrt_inputs=False), report=True, passes=VECTOR_PIPELINE)
    changed = [s.name for round_ in report.rounds for s in round_ if s.changed]
    assert changed.count("reroll") == 1 and len(report.rounds) == 2, str(report)
    g = optimize(trace(lambda *x: softmax_cross_entropy(model(list(x[:4])), list(x[4:])), *[0.0] * 7))
    xs, ps = [0.3, -1.2, 2.0, 0.1, 0.0, 1.0, 0.0, 1.0], [p.data for p in g.param_values]
    assert all(same(a, b) for a, b in zip(run(joint, xs, ps), run(optimize(grad(g, wrt_inputs=False)), xs, ps)))


def _with_a_layer_output(b, xs, ws):
    """An output ``w0*x0 + w1*x1 + ...``: something the pass re-rolls, so it runs in full."""
    products = tuple(b.add("mul", (w, x)) for w, x in zip(ws, xs))
    return b.add(ops.sum_op(len(products)), products)


def test_dead_nodes_are_never_rewritten():
    """A dead pack of two negations that live nodes use too (passes before dce leave such
    nodes): vectorizing it would make its lanes constants under their live users."""
    b = Builder()
    xs = [b.add("input", (), (f"x{k}",)) for k in range(2)]
    ws = [b.add("param", (), (f"w{k}",)) for k in range(2)]
    negs = [b.add("neg", (x,)) for x in xs]
    b.add("pack", tuple(negs), ((2,),))
    outputs = [b.add("mul", (s, b.const(c))) for s, c in zip(negs, (2.0, 3.0))] + [_with_a_layer_output(b, xs, ws)]
    g = b.finish(xs, ws, outputs)
    r = reroll(g).graph.verify()
    assert run(r, [1.0, 2.0], [0.5, 0.25]) == run(g, [1.0, 2.0], [0.5, 0.25]) == [-2.0, -6.0, 1.0]


@settings(max_examples=100, deadline=None)
@given(programs(constants=SPECIAL_CONSTANTS, max_ops=16), st.data())
def test_dead_packs_and_sums_over_live_nodes_change_nothing(spec, data):
    """A dead pack and a dead sum over live nodes of one op, as passes before dce leave."""
    params = [Value(0.75), Value(-1.25)]
    g = optimize(trace(lambda *xs: replay(spec, xs, params), 0.5, -1.5, 2.0))
    by_op: dict[str, list[int]] = {}  # lanes of one op are what the pass would vectorize
    for i, op in enumerate(g.ops):
        if not g.shapes[i]:
            by_op.setdefault(op, []).append(i)
    group = data.draw(st.sampled_from([nodes for nodes in by_op.values() if len(nodes) > 1]))  # the inputs at least
    picked = tuple(data.draw(st.lists(st.sampled_from(group), min_size=2, max_size=4, unique=True)))
    b = Builder.from_graph(g)
    b.add("pack", picked, ((len(picked),),))
    b.add(ops.sum_op(len(picked)), picked)
    ws = [b.add("param", (), (f"w{k}",)) for k in range(3)]
    dead = b.finish(g.inputs, g.params + ws, g.outputs + [_with_a_layer_output(b, g.inputs, ws)])
    xs, ps = [0.5, -1.5, 2.0], [p.data for p in g.param_values] + [0.5, 0.25, -2.0]
    expected = run(dead, xs, ps)
    assert all(same(a, b) for a, b in zip(run(reroll(dead).graph.verify(), xs, ps), expected))


@pytest.mark.parametrize("read", [[3, 0, 1], [0, 2, 1], [2, 0, 3], [1, 3, 0, 2]])
def test_lanes_read_out_of_order_add_into_the_layers_input_as_reverse_mode_reached_them(read):
    """Output 1 reads a layer's rows out of order: reverse mode reaches them in another order
    than vecmat's last row first, and the scalar graph adds their parts into the layer's
    input in the order it reached them (three rows or more tell the orders apart)."""
    for seed in range(10):
        rng = random.Random(seed)
        params = [Value(rng.uniform(-1.5, 1.5)) for _ in range(40)]

        def f(*x):
            it = iter(params)
            h = [apply("tanh", sum((next(it) * xi for xi in x), next(it))) for _ in range(3)]
            y = [apply("tanh", sum((next(it) * hi for hi in h), next(it))) for _ in range(4)]
            return [y[0] * 2.0, sum(y[k] for k in read)]
        g = optimize(trace(f, 0.0, 0.0))
        r = rolled(g)
        xs, ps = [rng.uniform(-2, 2), rng.uniform(-2, 2), 1.0], [p.data for p in g.param_values]
        for output in (0, 1):
            scalar = run(optimize(grad(g, output, wrt_inputs=True)), xs, ps)
            vector = run(rolled(grad(r, output, wrt_inputs=True)), xs, ps)
            assert all(same(a, b) for a, b in zip(vector, scalar)), (seed, output)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_an_l2_term_over_a_layers_input_vector_keeps_each_products_two_parts_together(backend):
    """Neurons ``0.5 * p_k`` summed, then ``1e-3 * sum(p_k * p_k)``: both sums are rows over the
    vector ``p``, which is also the second row's weights.  As one matvec, ``p_3``'s gradient
    would be the vecmat's (L2 part + layer part), then the outer's L2 part: 0.5009999999999999.
    Reverse mode adds the L2 product's two parts first (0.501); the rows stay dots."""
    import graphc
    import numpy as np
    values = [0.0, 0.0, 0.0, 0.5]

    def loss(p):
        outs = [0.5 * pk for pk in p]
        return sum(outs[1:] + [outs[0], outs[0]], outs[0]) + 1e-3 * sum(pk * pk for pk in p)
    eager = [Value(v) for v in values]
    loss(eager).backward()
    params = [Value(v) for v in values]
    _, grads = graphc.compile(lambda x: loss(params) + x[0], backend=backend).mean_and_grad(np.zeros((1, 1)))
    assert [float(g) for g in grads] == [p.grad for p in eager] and eager[3].grad == 0.501
    counts = rolled(trace(lambda x: loss(params) + x, 0.0, params=params)).counts()
    assert counts["matvec"] == 0 and counts["dot"] == 2


def _neuron_spelled(spelling: str, w: list, b: Value, x: list) -> Value:
    """One neuron as people write it (micrograd's own is ``sum((wi * xi ...), b)``)."""
    if spelling == "sum() + b":
        return sum(wi * xi for wi, xi in zip(w, x)) + b
    if spelling == "b + sum()":
        return b + sum(wi * xi for wi, xi in zip(w, x))
    if spelling == "sum(, 0.0) + b":
        return sum((wi * xi for wi, xi in zip(w, x)), 0.0) + b
    act = 0.0  # the loop of the lecture
    for wi, xi in zip(w, x):
        act += wi * xi
    return act + b


@pytest.mark.parametrize("spelling", ["sum() + b", "b + sum()", "sum(, 0.0) + b", "act += wi * xi"])
def test_a_neuron_summed_from_zero_with_its_bias_last_becomes_a_layer(spelling):
    """Python's ``sum(w * x ...)`` starts from 0 (micrograd's ``p0 + 0``), so ``sum(...) + b``
    traced to ``sum(p0, 0.0, p1, ..., b)``: no run of products, no layer, and the spelling
    trained 6-10x slower a step than ``sum(..., b)`` (an outside hunt).  Now the zero goes to
    the front (exactly: see reroll_sums._zeros_first) and the biases are one vector: the
    same matvecs, and the same bits as the scalar program, on C and NumPy, L2 term or not."""
    rng = random.Random(3)
    layers = [[([Value(rng.uniform(-1, 1)) for _ in range(n_in)], Value(rng.uniform(-1, 1))) for _ in range(n_out)]
              for n_in, n_out in ((3, 8), (8, 8), (8, 1))]
    params = [p for layer in layers for w, b in layer for p in (*w, b)]

    def model(x):
        for k, layer in enumerate(layers):
            x = [_neuron_spelled(spelling, w, b, x) for w, b in layer]
            x = x if k == len(layers) - 1 else [v.relu() for v in x]
        return x[0]
    g = optimize(trace(lambda x: model(x), [0.0] * 3, params=params))
    r = rolled(g)
    assert r.ops.count("matvec") + r.ops.count("dot") == 3 and "mul" not in r.ops
    x = [0.3, -1.7, 0.25]
    assert run(r, x, [p.data for p in params]) == run(g, x, [p.data for p in params]) == [model(x).data]
    X = np.array([[rng.uniform(-2, 2) for _ in range(3)] for _ in range(37)])
    y = np.array([rng.choice([-1.0, 1.0]) for _ in range(37)])
    rows = {"numpy": 1} | ({"c": len(X)} if graphc.codegen.c.find_compiler() else {})  # NumPy sums rows pairwise
    for l2 in (False, True):
        def loss(x, yi):
            data = (1 + -yi * model(x)).relu()
            return data + 1e-3 * sum(p * p for p in params) if l2 else data
        for backend, n in rows.items():
            want = graphc.compile(loss, backend="python").mean_and_grad(X[:n], y[:n])
            got = graphc.compile(loss, backend=backend).mean_and_grad(X[:n], y[:n])
            assert got[0] == want[0] and got[1].tolist() == want[1].tolist(), (backend, l2)


WRITTEN_ACTIVATIONS = {  # activations written with several ops, as the lecture and people write them
    "tanh": lambda n: ((2 * n).exp() - 1) / ((2 * n).exp() + 1),
    "tanh, e once": lambda n: (lambda e: (e - 1) / (e + 1))((2 * n).exp()),
    "sigmoid": lambda n: 1 / (1 + (-n).exp()),
    "half relu": lambda n: n.relu() * 0.5,
    "leaky relu": lambda n: n.relu() + 0.01 * -(-n).relu(),
}


@pytest.mark.parametrize("name", list(WRITTEN_ACTIVATIONS))
def test_an_activation_written_with_several_ops_is_vectorized_from_the_layers_lanes(name):
    """Rule 7: such an activation left every lane its own chain of scalar ops, so the next
    layer had no run of simple products either (4-16x slower a step than ``.tanh()``, and
    20 s to build a full-batch loss's C against 1.8: an outside hunt).  Now the ops act on
    the layer's vector, and values and gradients are the scalar program's bits."""
    activation = WRITTEN_ACTIVATIONS[name]
    rng = random.Random(5)
    layers = [[([Value(rng.uniform(-1, 1)) for _ in range(n_in)], Value(rng.uniform(-1, 1))) for _ in range(n_out)]
              for n_in, n_out in ((3, 6), (6, 6), (6, 1))]
    params = [p for layer in layers for w, b in layer for p in (*w, b)]

    def loss(x, y):
        for k, layer in enumerate(layers):
            x = [sum((wi * xi for wi, xi in zip(w, x)), b) for w, b in layer]
            x = x if k == len(layers) - 1 else [activation(v) for v in x]
        return (x[0] - y) ** 2
    g = optimize(trace(loss, [0.0] * 3, 0.5, params=params))
    r, report = optimize(g, passes=VECTOR_PIPELINE, report=True)
    assert r.ops.count("matvec") == 2 and r.ops.count("dot") == 1 and "index" not in r.ops
    assert sum(stats.hits.get("lanes", 0) for stats in report.rounds[0] if stats.name == "reroll") >= 2
    x = [0.3, -1.7, 0.25]
    assert run(r, [*x, 0.5], [p.data for p in params]) == run(g, [*x, 0.5], [p.data for p in params])
    X = np.array([[rng.uniform(-2, 2) for _ in range(3)] for _ in range(37)])
    y = np.array([rng.uniform(-1, 1) for _ in range(37)])
    rows = ({"c": len(X)} if graphc.codegen.c.find_compiler() else {}) | \
        ({"numpy": 1} if name in ("half relu", "leaky relu") else {})  # NumPy's exp is not libm's
    for backend, n in rows.items():
        want = graphc.compile(loss, backend="python").mean_and_grad(X[:n], y[:n])
        got = graphc.compile(loss, backend=backend).mean_and_grad(X[:n], y[:n])
        assert got[0] == want[0] and got[1].tolist() == want[1].tolist(), backend


def test_lanes_read_both_by_the_activation_and_elsewhere_stay_lanes():
    """A lane's node read by the activation's ops and by something else too (``e`` added
    into the loss), or the layer's vector read whole too, would get its gradient parts in
    another order as a vector: rule 7 leaves that layer's lanes as they are, and the values
    and gradients stay the scalar program's."""
    rng = random.Random(6)
    w = [[Value(rng.uniform(-1, 1)) for _ in range(3)] for _ in range(4)]
    v = [Value(rng.uniform(-1, 1)) for _ in range(4)]
    params = [p for row in w for p in row] + v

    def loss(x):
        hidden = [sum(wi * xi for wi, xi in zip(row, x)) for row in w]
        es = [h.exp() for h in hidden]
        acts = [e / (e + 1) for e in es]
        return sum(vi * a for vi, a in zip(v, acts)) + es[2] * 0.1
    def whole(x):  # the layer's vector read whole too (a dot over its lanes), and lane by lane
        hidden = [sum(wi * xi for wi, xi in zip(row, x)) for row in w]
        return sum(vi * h for vi, h in zip(v, hidden)) + sum((h * 2.0).exp() for h in hidden)
    for fn in (loss, whole):
        g = optimize(trace(fn, [0.0] * 3, params=params))
        r, report = optimize(g, passes=VECTOR_PIPELINE, report=True)
        assert not any(stats.hits.get("lanes") for round_ in report.rounds for stats in round_)
        x = [0.3, -1.7, 0.25]
        assert run(r, x, [p.data for p in params]) == run(g, x, [p.data for p in params])
        if graphc.codegen.c.find_compiler():
            X = np.array([[rng.uniform(-2, 2) for _ in range(3)] for _ in range(9)])
            want = graphc.compile(fn, backend="python").mean_and_grad(X)
            got = graphc.compile(fn, backend="c").mean_and_grad(X)
            assert got[0] == want[0] and got[1].tolist() == want[1].tolist()
