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


def test_repr_and_counts():
    g = small_graph()
    assert repr(g).startswith("<Graph lambda: 8 nodes, 1 inputs, 2 params, 1 outputs>")
    assert g.counts()["mul"] == 2
