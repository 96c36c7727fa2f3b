"""Passes: every rule, exactness on IEEE special values, and optimized == unoptimized."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

import graphc
from graphc import Value, apply, trace
from graphc.autodiff import grad
from graphc.codegen import python as python_backend
from graphc.passes import PIPELINE, RULES, cse, dce, flatten, fold, optimize, simplify
from graphc.passes.base import rebuild
from strategies import SPECIAL_CONSTANTS, programs, replay


def run(graph, *inputs):
    fn, _ = python_backend.compile_graph(graph, "f")
    return list(fn(list(inputs), [p.data for p in graph.param_values]))


def same(a: float, b: float) -> bool:
    """Equal bit for bit up to nan payloads (so 0.0 and -0.0 differ)."""
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


# One line per rule: a function that triggers it, and an input where a wrong rule would show.
RULE_CASES = {
    "x*1": lambda x: x * 1.0,
    "1*x": lambda x: apply("mul", 1.0, x),
    "x*-1": lambda x: x * -1.0,
    "-1*x": lambda x: apply("mul", -1.0, x),
    "(-x)*(-y)": lambda x: (-x) * (-(x + 1.0)),
    "x+(-0)": lambda x: x + -0.0,
    "(-0)+x": lambda x: apply("add", -0.0, x),
    "x+0": lambda x: x.exp() + 0.0,
    "0+x": lambda x: apply("add", 0.0, x.exp()),
    "sum(x,-0,...)": lambda x: apply("sum", x, -0.0, x * 2.0),
    "sum(-0,x,...)": lambda x: apply("sum", -0.0, x),
    "sum(x,0,...)": lambda x: apply("sum", x.exp(), 0.0, x, x * 2.0),
    "sum(0,x,...)": lambda x: apply("sum", 0.0, x.exp(), x),
    "x-0": lambda x: x - 0.0,
    "(-0)-x": lambda x: apply("sub", -0.0, x),
    "x+(-y)": lambda x: x + (-(x * 3.0)),
    "(-x)+y": lambda x: (-x) + x * 3.0,
    "x-(-y)": lambda x: x - (-(x * 3.0)),
    "-(-x)": lambda x: -(-x),
    "x**1": lambda x: x ** 1,
    "x**0": lambda x: x ** 0,
    "x**c": lambda x: x ** Value(3.0),
    "relu(relu(x))": lambda x: x.relu().relu(),
    "step(relu(x))": lambda x: apply("step", x.relu()),
}


def test_every_rule_has_a_case():
    assert set(RULE_CASES) == {r.name for r in RULES}


SPECIAL_POINTS = [0.0, -0.0, 1.5, -2.5, math.inf, -math.inf, math.nan, 1e-310, -1e300]


@pytest.mark.parametrize("name", sorted(RULE_CASES))
def test_rule_fires_and_keeps_every_special_value(name):
    g = trace(RULE_CASES[name], 1.0)
    optimized, stats = simplify(g)
    assert stats.hits.get(name, 0) >= 1, f"rule {name} did not fire on {g}"
    optimized.verify()
    for x in SPECIAL_POINTS:
        assert same(run(g, x)[0], run(optimized, x)[0]), (name, x)


@pytest.mark.parametrize("name", sorted(RULE_CASES))
def test_rule_keeps_derivatives_at_special_points(name):
    g = trace(RULE_CASES[name], 1.0)
    rewritten = simplify(g).graph
    for x in SPECIAL_POINTS:
        for seed in (1.0, -0.0, math.inf, math.nan):
            before, after = run(grad(g), x, seed), run(grad(rewritten), x, seed)
            assert all(same(a, b) for a, b in zip(before, after)), (name, x, seed, before, after)


def test_x_plus_zero_is_kept_where_x_may_be_negative_zero():
    g = trace(lambda x: [x + 0.0, apply("sum", x, 0.0, x), apply("sum", 0.0, x, x)], 1.0)  # x = -0.0: +0.0
    assert simplify(g).stats.hits == {}
    assert all(math.copysign(1, y) == 1 for y in run(optimize(g), -0.0))


def test_a_zero_after_the_head_of_a_sum_stays():
    """Only the head's ``+ 0`` goes: a partial sum further on can be -0.0 where the head is not."""
    g = trace(lambda x: apply("sum", x.exp(), x, 0.0, x), 1.0)
    assert simplify(g).stats.hits == {}


def test_fold_evaluates_like_the_runtime_including_special_values():
    g = trace(lambda x: [x + Value(0.0).log(), Value(-0.0) * 1.0, Value(1000.0).exp() * x,
                         Value(-1.0).log(), Value(0.0) ** -1], 1.0)
    folded, stats = fold(g)
    assert stats.hits["folded"] == 5
    assert [folded.ops[o] for o in folded.outputs].count("const") == 3
    assert all(same(a, b) for a, b in zip(run(folded, 1.0), run(g, 1.0)))
    assert math.copysign(1, run(folded, 1.0)[1]) == -1


def test_cse_merges_commutative_duplicates_only():
    g = trace(lambda x, y: (x * y) + (y * x) + (x - y) + (y - x), 1.0, 2.0)
    merged, stats = cse(g)
    assert stats.hits["merged"] == 1
    assert run(merged, 1.5, -0.25) == run(g, 1.5, -0.25)


def test_cse_packs_merges_packs_alone_and_the_rounds_agree_with_one_by_one(monkeypatch):
    """Before reverse mode only packs are merged (graphc.passes.cse.cse_packs): a layer's
    weights and an L2 term's read as one pack keep every gradient's order; two equal
    products would add their gradient parts first."""
    import importlib
    from graphc.graph import Builder
    cse_module = importlib.import_module("graphc.passes.cse")  # (graphc.passes.cse is the function)
    b = Builder()
    a, c = b.add("input", (), ("a",)), b.add("input", (), ("c",))
    dot = b.add("dot", (b.const(0.0), b.add("pack", (a, c), ((2,),)), b.add("pack", (a, c), ((2,),))))
    products = b.add("mul", (b.add("mul", (a, c)), b.add("mul", (a, c))))
    g = b.finish([a, c], [], [b.add("add", (dot, products))])
    merged, stats = cse_module.cse_packs(g)
    assert stats.name == "cse_packs" and stats.hits["merged"] == 1
    assert merged.counts()["pack"] == 1 and merged.counts()["mul"] == 3
    assert cse(g)[0].counts()["mul"] == 2  # full CSE merges the products too
    monkeypatch.setattr(cse_module, "ROUNDS", 0)  # the node-by-node numbering: the same merges
    by_one, _ = cse_module.cse_packs(g)
    assert by_one.ops == merged.ops and by_one.args == merged.args
    assert run(merged, 1.5, -2.0) == run(g, 1.5, -2.0)


def test_dce_keeps_inputs_and_params_and_drops_the_rest():
    p = Value(1.0)
    g = trace(lambda x, y: [x * 2.0 + p, y * 3.0], 1.0, 2.0)
    g.outputs, g.out_tree = g.outputs[:1], ("list", ("scalar",))  # y * 3.0 is now dead code
    cleaned, stats = dce(g)
    assert stats.hits["removed"] == 2  # the mul and its constant
    assert len(cleaned.inputs) == 2 and len(cleaned.params) == 1
    cleaned.verify(allow_dead=False)


@pytest.mark.parametrize("backend", ["python", "numpy", "c"])
def test_a_sum_is_not_flattened_where_that_would_reorder_an_operands_gradient_parts(backend):
    """Regression (found by the layer fuzz with an L2 term): flattening ``b + w*x`` into the
    sum after it moved b's part from that sum ahead of b's part from ``b * b``."""
    b, w = Value(0.25), Value(-0.5)

    def f(x):
        return (b + w * x) + x + 1e-3 * (b * b)
    f(Value(0.0)).backward()
    want = b.grad
    b.grad = w.grad = 0
    graphc.compile(f, backend=backend)(0.0).backward()
    assert b.grad == want == 1.0005  # 1.0005000000000002 with the sum flattened


def test_flatten_keeps_left_to_right_order_and_shared_partial_sums():
    g = trace(lambda a, b, c, d: ((a + b) + c) + d, 1e16, 1.0, -1e16, 1.0)
    flat, stats = flatten(g)
    assert flat.counts()["sum"] == 1 and stats.hits["absorbed"] == 2
    assert run(flat, 1e16, 1.0, -1e16, 1.0) == run(g, 1e16, 1.0, -1e16, 1.0) == [1.0]
    shared = trace(lambda a, b, c: (lambda s: [s + c, s])(a + b), 1.0, 2.0, 3.0)
    assert flatten(shared).stats.hits == {}
    right = trace(lambda a, b, c: a + (b + c), 1.0, 2.0, 3.0)
    assert flatten(right).stats.hits == {}


def test_flatten_keeps_a_link_whose_operand_reverse_mode_reaches_again_before_the_top():
    """``b + w*x`` stays a sum of its own where ``b * b`` lies between it and the top of its
    chain in reverse mode's order; where ``b`` is read nowhere else, or before the chain, it
    is absorbed as always."""
    def sums(f):
        g = flatten(trace(f, 0.25, -0.5, 0.0)).graph
        return sorted(len(g.args[i]) for i, op in enumerate(g.ops) if op in ("add", "sum"))
    assert sums(lambda b, w, x: (b + w * x) + x + 1e-3 * (b * b)) == [2, 3]  # add(b, w*x), sum(it, x, ...)
    assert sums(lambda b, w, x: (b + w * x) + x + 1e-3 * (w * w)) == [4]
    assert sums(lambda b, w, x: 1e-3 * (b * b) + ((b + w * x) + x)) == [2, 3]  # add(..., sum(b, w*x, x))


def test_flatten_checks_long_chains_of_reused_operands_link_by_link():
    """Every link of ``sum(xs)`` reads an x that is read again; the check finds each chain's
    top once, so 20,000 links flatten in one pass, and only the link that a reader lies
    above (x0, read again by ``x0 * x0`` before the top) stays apart."""
    n = 20_000
    def sums(f, count):
        g = flatten(trace(f, *[0.5] * count)).graph
        return sorted(len(a) for i, a in enumerate(g.args) if g.ops[i] in ("add", "sum"))
    assert sums(lambda *xs: sum(xs) * sum(x * 2.0 for x in xs), n) == [n + 1, n + 1]
    assert sums(lambda *xs: (sum(xs) + xs[0] * xs[0]) * 1.5, 50) == [2, 51]  # add(x0, 0.0), sum(it, x1, ...)


def test_optimize_reports_per_pass_counts():
    g = trace(lambda x: (x * 1.0 + 2.0 * 3.0) + x * 1.0, 1.0)
    optimized, report = optimize(g, report=True)
    text = str(report)
    assert text.startswith(f"optimize: {len(g)} -> {len(optimized)} nodes")
    for p in PIPELINE:
        assert p.__name__ in text
    assert optimize(g) is not g and len(optimize(g)) < len(g)


def test_optimize_does_not_rerun_a_pass_on_a_graph_it_left_unchanged():
    runs = []

    def counted(p):
        def run(graph):
            runs.append(p.__name__)
            return p(graph)
        run.__name__ = p.__name__
        return run

    g = trace(lambda x: x * (Value(2.0) * 3.0), 1.0)  # fold, then dce, change it once
    optimized, report = optimize(g, report=True, passes=[counted(p) for p in (fold, dce, cse)])
    # round 1: fold folds, dce drops the folded constants, cse sees the result and leaves
    # it; round 2: fold and dce run again on the result and change nothing -- cse, which
    # has seen exactly this graph, is not rerun -- and the fixed point is reached
    assert [[s.changed for s in r] for r in report.rounds] == [[True, True, False], [False, False]]
    assert runs == ["fold", "dce", "cse", "fold", "dce"]
    assert str(optimized) == str(optimize(g))


@settings(max_examples=150, deadline=None)
@given(programs(constants=SPECIAL_CONSTANTS))
def test_every_pass_keeps_the_graph_valid_and_its_values(spec):
    params = [Value(0.75), Value(-1.25)]
    g = trace(lambda *xs: replay(spec, xs, params), 0.5, -1.5, 2.0)
    xs = [0.5, -1.5, 2.0]
    expected = run(g, *xs)
    current = g
    for _ in range(3):
        for p in PIPELINE:
            current = p(current).graph
            current.verify()
            assert all(same(a, b) for a, b in zip(run(current, *xs), expected)), (p.__name__, str(g))
    current.verify(allow_dead=False)


def negative_zero_facts(graph) -> list[bool]:
    """may_be_negative_zero of every node, computed the plain way: node by node, in id order."""
    from graphc import ops
    facts = []
    for op, operands, attr in zip(graph.ops, graph.args, graph.attrs):
        rule = "maybe" if op in ("input", "param") else None if op == "const" else ops.TABLE[op].negative_zero
        if rule is None:
            facts.append(attr[0] == 0.0 and math.copysign(1.0, attr[0]) < 0)
        elif rule in ("all", "any"):
            facts.append((all if rule == "all" else any)(facts[a] for a in operands))
        else:
            facts.append(rule == "maybe")
    return facts


@settings(max_examples=200)
@given(programs(constants=SPECIAL_CONSTANTS))
def test_negative_zero_analysis_asks_only_what_decides_a_node_and_agrees_with_the_plain_way(spec):
    from graphc.passes.simplify import Analysis
    g = trace(lambda *xs: replay(spec, list(xs[:3]), list(xs[3:])), *[0.5] * (3 + spec["n_params"]))
    want = negative_zero_facts(g)
    for order in (list(range(len(g))), list(reversed(range(len(g))))):
        facts = Analysis(g)
        assert [facts.may_be_negative_zero(i) for i in order] == [want[i] for i in order]


# -- the rebuild shortcuts change nothing --------------------------------------------------

@st.composite
def programs_with_repeats(draw):
    """A program, then some of its instructions again (operands sometimes swapped): work for CSE."""
    spec = draw(programs(constants=SPECIAL_CONSTANTS, max_ops=14))
    program = list(spec["program"])
    for _ in range(draw(st.integers(0, 4))):
        name, operands, attr = draw(st.sampled_from(program))
        program.append((name, operands[::-1] if draw(st.booleans()) else operands, attr))
    return {**spec, "program": program}


def reference_cse(graph):
    """CSE as value numbering node by node, no shortcut: what cse() must equal."""
    from graphc import ops
    from graphc.graph import Builder
    commutative = {name for name, op in ops.TABLE.items() if op.commutative}
    b, seen, remap = Builder(), {}, []
    for op, operands, attr in zip(graph.ops, graph.args, graph.attrs):
        if op in ("input", "param"):
            remap.append(b.add(op, (), attr))
        elif op == "const":
            remap.append(b.const(attr[0]))
        else:
            new = tuple(remap[a] for a in operands)
            key = (op, tuple(sorted(new)) if op in commutative else new, attr)
            if key not in seen:
                seen[key] = b.add(op, new, attr)
            remap.append(seen[key])
    return b.finish([remap[i] for i in graph.inputs], [remap[i] for i in graph.params],
                    [remap[o] for o in graph.outputs], like=graph)


def same_graph(a, b) -> bool:
    return (a.ops, a.args, [repr(x) for x in a.attrs], a.inputs, a.params, a.outputs) == \
        (b.ops, b.args, [repr(x) for x in b.attrs], b.inputs, b.params, b.outputs)


@settings(max_examples=300)
@given(programs_with_repeats())
def test_passes_give_the_graph_their_plain_rebuild_gives(spec):
    """fold, simplify and flatten share the unchanged prefix and visit only what can change
    (rebuild's start= and visit_only=): with both off they build the same graph; dce in one
    sweep builds what a plain rebuild keeping the live nodes does; cse equals value
    numbering node by node."""
    import importlib
    g = trace(lambda *xs: replay(spec, list(xs[:3]), list(xs[3:])), *[0.5] * (3 + spec["n_params"]))
    graphs = [g, grad(g)]
    for p in PIPELINE:
        graphs.append(p(graphs[-1]).graph)
    modules = [importlib.import_module(f"graphc.passes.{name}") for name in ("fold", "simplify", "flatten")]
    for graph in graphs:
        fast = [m.__dict__[m.__name__.rsplit(".", 1)[1]](graph).graph for m in modules]
        for m in modules:
            real = m.rebuild
            m.rebuild = lambda *args, real=real, **kwargs: real(*args, **{**kwargs, "start": 0, "visit_only": None})
        try:
            plain = [m.__dict__[m.__name__.rsplit(".", 1)[1]](graph).graph for m in modules]
        finally:
            for m in modules:
                m.rebuild = importlib.import_module("graphc.passes.base").rebuild
        assert all(same_graph(x, y) for x, y in zip(fast, plain))
        pruned = dce(graph).graph
        assert same_graph(pruned, rebuild(graph, lambda b, i, remap: b.copy_node(graph, i, remap), keep=graph.live()))
        merged = cse(graph).graph
        assert same_graph(merged, reference_cse(graph)) or merged is graph and same_graph(graph, reference_cse(graph))


def test_cse_merges_what_a_repeated_constant_hides_as_value_numbering_does():
    """A graph from outside (Graph.from_nx) may hold one constant twice: the rebuild merges
    the two, and with them the nodes reading them, where sharing the prefix must stop."""
    from graphc.graph import Graph
    g = Graph(["input", "const", "const", "mul", "mul", "exp", "exp", "add", "add", "add"],
              [(), (), (), (0, 1), (0, 2), (0,), (0,), (3, 4), (5, 6), (7, 8)],
              [("x",), (2.0,), (2.0,), (), (), (), (), (), (), ()], [0], [], [9])
    assert same_graph(cse(g).graph, reference_cse(g))
    assert len(cse(g).graph) == 7  # x, one 2.0, one mul, one exp, three adds


@settings(max_examples=200)
@given(programs_with_repeats())
def test_cse_numbering_in_rounds_equals_numbering_node_by_node(spec):
    import importlib
    module = importlib.import_module("graphc.passes.cse")
    g = trace(lambda *xs: replay(spec, list(xs[:3]), list(xs[3:])), *[0.5] * (3 + spec["n_params"]))
    for graph in (g, grad(g)):
        rounds = cse(graph)
        module.ROUNDS = 0  # straight to the node-by-node numbering
        try:
            one_by_one = cse(graph)
        finally:
            module.ROUNDS = 8
        assert same_graph(rounds.graph, one_by_one.graph) and rounds.stats == one_by_one.stats


def test_cse_merges_a_chain_computed_twice_whatever_its_length():
    """Each level of a repeated chain merges only once the level below has: past ROUNDS
    levels the numbering goes node by node, with the same result."""
    for steps in (3, 40):
        def f(x, steps=steps):
            a, b = x, x
            for k in range(steps):
                a, b = (a * 1.5).tanh(), (b * 1.5).tanh()
            return a + b
        g = trace(f, 0.5)
        merged = cse(g)
        assert same_graph(merged.graph, reference_cse(g)) and merged.stats.hits["merged"] == 2 * steps


def test_dce_keeps_the_first_live_copy_of_a_repeated_constant_as_a_plain_rebuild_does():
    from graphc.graph import Graph
    g = Graph(["input", "const", "const", "const", "mul", "exp", "mul", "add"],
              [(), (), (), (), (0, 1), (0,), (0, 3), (5, 6)],
              [("x",), (2.0,), (3.0,), (2.0,), (), (), (), ()], [0], [], [7])  # node 1 and mul 4: dead
    pruned = dce(g)
    assert same_graph(pruned.graph, rebuild(g, lambda b, i, remap: b.copy_node(g, i, remap), keep=g.live()))
    assert pruned.stats.hits == {"removed": 3} and pruned.graph.ops.count("const") == 1
