"""The IR: listing, networkx view, verify(), Builder."""
from __future__ import annotations

import math

import networkx as nx
import pytest

from graphc import Graph, GraphcError, Value, trace
from graphc.graph import Builder


def small_graph() -> Graph:
    w = Value(0.5, label="w")
    b = Value(-1.0, label="b")
    return trace(lambda x: (x * w + b).tanh() * 2.0, 1.0)


def test_listing_is_jaxpr_like_and_stable():
    assert str(small_graph()) == (
        "{ lambda x ; w b .\n"
        "  let v3 = mul x w\n"
        "      v4 = add v3 b\n"
        "      v5 = tanh v4\n"
        "      v7 = mul v5 2.0\n"
        "  in ( v7 ) }")


def test_nx_view_has_ops_operands_and_orders():
    g = small_graph()
    view = g.nx
    assert isinstance(view, nx.DiGraph) and nx.is_directed_acyclic_graph(view)
    assert all("op" in data for _, data in view.nodes(data=True))
    assert view.graph["inputs"] == g.inputs and view.graph["outputs"] == g.outputs
    assert view.number_of_nodes() == len(g)
    assert list(nx.topological_sort(view))[-1] == g.outputs[0]
    with pytest.raises(nx.NetworkXError, match="Frozen"):  # the Graph keeps it (an outside hunt edited it in place)
        view.add_edge(0, len(g) - 1)
    edited = view.copy()
    edited.add_node("new", op="input")
    assert len(edited) == len(g) + 1 and len(g.nx) == len(g)


def test_repeated_operands_are_kept_in_order():
    g = trace(lambda x: x * x - x, 3.0)
    mul = g.ops.index("mul")
    assert g.args[mul] == (g.inputs[0], g.inputs[0])
    assert g.nx.nodes[mul]["args"] == (g.inputs[0], g.inputs[0])


def test_verify_accepts_traced_graphs_and_names_broken_invariants():
    small_graph().verify(allow_dead=False)
    broken = [
        (lambda g: g.args.__setitem__(3, (5, 1)), "not topological"),
        (lambda g: g.ops.__setitem__(3, "frob"), "unknown op"),
        (lambda g: g.args.__setitem__(3, (0,)), "operands; mul takes 2"),
        (lambda g: g.outputs.append(99), "not a node"),
        (lambda g: g.inputs.append(1), "exactly once"),
    ]
    for damage, message in broken:
        g = small_graph()
        damage(g)
        with pytest.raises(GraphcError, match=message):
            g.verify()


def test_verify_can_require_no_dead_code():
    b = Builder()
    x = b.add("input", (), ("x",))
    used, unused = b.add("neg", (x,)), b.add("exp", (x,))
    g = b.finish([x], [], [used])
    g.verify()
    with pytest.raises(GraphcError, match="reach no output"):
        g.verify(allow_dead=False)


def test_builder_shares_constants_bit_for_bit():
    b = Builder()
    assert b.const(0.0) == b.const(0.0)
    assert b.const(0.0) != b.const(-0.0)
    assert b.const(math.nan) == b.const(float("nan"))
    assert len(b) == 3


def test_units_by_lane_groups_each_lanes_scalars_in_the_order_given():
    b = Builder()
    like, x, y, z = (b.add("input", (), (name,)) for name in "vxyz")
    units = [b.add("unit", (s, like), (k,)) for s, k in [(x, 2), (y, 0), (z, 2)]]
    assert b.units_by_lane(units) == {2: [x, z], 0: [y]}
    assert b.units_by_lane(units[::-1]) == {2: [z, x], 0: [y]}
    lane0, lane1, lane2, lane3 = b.lane_totals(b.units_by_lane(units), 4)
    assert lane0 == y and lane1 == lane3 == b.const(0.0) and (b.ops[lane2], b.args[lane2]) == ("add", (x, z))


def test_repr_and_counts():
    g = small_graph()
    assert repr(g).startswith("<Graph lambda: 8 nodes, 1 inputs, 2 params, 1 outputs>")
    assert g.counts()["mul"] == 2


# -- networkx interchange: graph.nx and Graph.from_nx -----------------------------------------

def _programs_for_nx():
    from graphc import Value, trace
    w = Value(0.75, label="w")
    yield trace(lambda x, y: ((x * w - y) ** 2 + x.relu() * y).tanh() + (x * x).abs().sqrt(), 1.5, -0.5)
    yield trace(lambda x: [x.exp(), (2 - x) / x, x ** x], 0.3)
    yield trace(lambda x, y: {"q": ((2 - x) / x, y), "e": x.exp()}, 0.3, -0.5)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_from_nx_of_nx_computes_the_same_and_keeps_ids(k):
    from graphc import as_function
    graph = list(_programs_for_nx())[k]
    back = Graph.from_nx(graph.nx)
    assert (back.ops, back.args, back.attrs) == (graph.ops, graph.args, graph.attrs)
    assert (back.inputs, back.params, back.outputs) == (graph.inputs, graph.params, graph.outputs)
    assert (back.in_tree, back.out_tree, back.name) == (graph.in_tree, graph.out_tree, graph.name)
    args = [(1.5, -0.5), (0.3,), (0.3, -0.5)][k]
    want = as_function(graph)(*args)
    got = as_function(back)(*args)
    if k == 2:
        assert (got["e"].data, got["q"][0].data, got["q"][1].data) == (want["e"].data, want["q"][0].data, -0.5)
        return
    flat = lambda out: [v.data for v in (out if isinstance(out, (list, tuple)) else [out])]  # noqa: E731
    assert flat(got) == flat(want)


def test_from_nx_renumbers_new_nodes_topologically():
    import networkx as nx
    G = nx.DiGraph(inputs=["x"], params=[], outputs=["out"])
    G.add_node("out", op="neg", args=("s",))  # added before its operand: from_nx sorts
    G.add_node("s", op="sin", args=("x",))
    G.add_node("x", op="input", attr=("x",))
    G.add_edges_from([("x", "s"), ("s", "out")])
    g = Graph.from_nx(G)
    assert g.ops == ["input", "sin", "neg"] and g.outputs == [2]
    assert str(g).splitlines()[1].strip() == "let v1 = sin x"


@pytest.mark.parametrize("edit, message", [
    (lambda G: G.add_edge(2, 1), "has a cycle|args"),
    (lambda G: G.remove_edge(*next(iter(G.edges))), "in-edges"),
    (lambda G: G.graph.pop("outputs"), "lacks the graph attribute"),
    (lambda G: G.graph.update(outputs=["nope"]), "names nodes the DiGraph does not have"),
    (lambda G: G.nodes[len(G) - 1].update(op="frobnicate"), "unknown op"),
    (lambda G: G.nodes[len(G) - 1].pop("op"), "no 'op' attribute"),
    # found by an outside tester: accepted, then a crash far away (or an output lost)
    (lambda G: G.nodes[1].update(attr=("0.1",)), r"node 1 \(const\) holds '0.1'; a constant is a real number"),
    (lambda G: G.nodes[0].update(attr=(7,)), r"node 0 \(input\) is named 7; an input's name is a str"),
    # an outside hunt: accepted, then an OverflowError at printing, a TypeError at compiling
    (lambda G: G.nodes[1].update(attr=(10 ** 400,)), r"node 1 \(const\) holds 1000.*real number that fits in a float"),
    (lambda G: G.nodes[3].update(op="pow", attr=("2",)), r"node 3 \(pow\) has parameters \('2',\); pow's"),
    (lambda G: G.nodes[3].update(op="pow", attr=(10 ** 400,)), r"node 3 \(pow\) has parameters \(1000"),
    (lambda G: G.nodes[1].update(attr=1.0), "node 1: 'attr' must be a tuple"),
    (lambda G: G.nodes[2].update(args=([0], [1])), "node 2: 'args' must be node ids"),
    (lambda G: G.graph.update(out_tree=("tuple", ("scalar", "scalar"))), "has 2 leaves for the graph's 1 outputs"),
    (lambda G: G.graph.update(in_tree="garbage"), "graph.in_tree 'garbage' is not a structure"),
    (lambda G: G.graph.update(out_tree=("dict", (("a", "scalar"), ("a", "scalar")))), "is not a structure"),
    (lambda G: G.graph.update(out_tree=("dict", ((1, "scalar"),))), "is not a structure"),
    (lambda G: G.graph.update(out_tree=("namedtuple", (tuple, ("scalar",)))), "is not a structure"),
    (lambda G: G.graph.update(out_tree=("namedtuple", (type("NotTuple", (), {"_fields": ("a",), "_make": 0}),
                                                       ("scalar",)))), "is not a structure"),
])
def test_from_nx_rejects_bad_input_with_a_graphc_error(edit, message):
    from graphc import trace
    G = trace(lambda x: (x * 2.0).sin(), 1.0).nx.copy()
    edit(G)
    with pytest.raises(GraphcError, match=message):
        Graph.from_nx(G)
    with pytest.raises(GraphcError, match="takes a networkx.DiGraph"):
        Graph.from_nx({"op": "add"})


@pytest.mark.parametrize("op, attr, message", [("index", (1.0,), "index 1.0 does not address a lane"),
                                                ("index", (True,), "index True does not address a lane"),
                                                ("index", (2,), "index 2 does not address a lane"),
                                                ("index", (-1,), "index -1 does not address a lane"),
                                                ("index", (0, 1), r"has parameters \(0, 1\); index takes")])
def test_lanes_and_shapes_of_tensor_ops_are_ints(op, attr, message):
    """Found by an outside tester: a lane of 1.0 passed verify() and failed in evaluation."""
    import networkx as nx
    G = nx.DiGraph(inputs=[0, 1], params=[], outputs=[3])
    G.add_node(0, op="input", attr=("x",))
    G.add_node(1, op="input", attr=("y",))
    G.add_node(2, op="pack", args=(0, 1), attr=((2,),))
    G.add_node(3, op=op, args=(2,), attr=attr)
    G.add_edges_from([(0, 2), (1, 2), (2, 3)])
    with pytest.raises(GraphcError, match=message):
        Graph.from_nx(G)
    G.nodes[3]["attr"] = (1,)
    G.nodes[2]["attr"] = ((2.0,),)
    with pytest.raises(GraphcError, match=r"a pack's shape is a tuple of positive ints; got \(2.0,\)"):
        Graph.from_nx(G)
    G.nodes[2]["attr"] = ((2,),)
    assert Graph.from_nx(G).verify().shapes[2] == (2,)


def test_the_networkx_pass_example_keeps_one_output():
    from conftest import load_example
    from graphc import as_function, trace
    example = load_example("networkx_pass")
    graph = trace(example.two_outputs, 0.5, -1.5)
    first = example.keep_output(graph, 0)
    assert len(first) < len(graph) and len(first.outputs) == 1 and first.inputs == [0, 1]
    assert as_function(first)(0.5, -1.5)[0].data == as_function(graph)(0.5, -1.5)[0].data


def test_an_input_or_param_named_like_a_constant_is_renamed_in_the_listing():
    """``mul nan nan`` was an input named nan times the constant nan (an outside hunt)."""
    inf_param = Value(2.0, label="inf")
    listing = str(trace(lambda nan: nan * math.nan + inf_param * math.inf, 1.0))
    assert "lambda nan_1 ; inf_1 ." in listing and "mul nan_1 nan" in listing and "mul inf_1 inf" in listing
