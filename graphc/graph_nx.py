"""networkx interchange: a Graph as a ``networkx.DiGraph``, and such a DiGraph back as a Graph.

:attr:`graphc.graph.Graph.nx` and :meth:`graphc.graph.Graph.from_nx` call these, so a user
can run networkx algorithms on the IR and hand a rewritten DiGraph back (see
``examples/networkx_pass.py``).  This module knows the Graph only by its attributes (it
imports no graphc module but the errors), so graph.py imports it without a cycle.
"""
from __future__ import annotations

from typing import Any, Iterable

from .errors import GraphcError


def to_nx(graph: Any) -> Any:
    """``graph`` as a frozen DiGraph (``.copy()`` edits): node ``i`` with ``op``, ``args``,
    ``attr``, ``name``, ``shape``; an edge per operand; the orders and metadata as graph
    attributes."""
    import networkx as nx

    g = nx.DiGraph(name=graph.name, inputs=list(graph.inputs), params=list(graph.params),
                   outputs=list(graph.outputs), param_values=list(graph.param_values),
                   in_tree=graph.in_tree, out_tree=graph.out_tree)
    names, shapes = graph.names, graph.shapes
    for i, op in enumerate(graph.ops):
        g.add_node(i, op=op, args=graph.args[i], attr=graph.attrs[i], name=names[i], shape=shapes[i])
    g.add_edges_from((a, i) for i, operands in enumerate(graph.args) for a in operands)
    return nx.freeze(g)  # the Graph caches it: an edit in place would leave the two disagreeing


def from_nx(cls: type, G: Any) -> Any:
    """A ``cls`` (Graph) built from ``G`` as :meth:`graphc.graph.Graph.from_nx` documents;
    the caller verifies it."""
    import networkx as nx

    if not isinstance(G, nx.DiGraph):
        raise GraphcError(f"Graph.from_nx takes a networkx.DiGraph (as graph.nx is); got {type(G).__name__}")
    meta = G.graph
    missing = [key for key in ("inputs", "params", "outputs") if key not in meta]
    if missing:
        raise GraphcError(f"Graph.from_nx: the DiGraph lacks the graph attribute(s) {', '.join(missing)} "
                          f"(lists of node ids in G.graph, as graph.nx has)")
    for node, data in G.nodes(data=True):
        _check_node(G, node, data)
    position = {node: k for k, node in enumerate(G)}
    try:
        order = list(nx.lexicographical_topological_sort(G, key=position.__getitem__))
    except nx.NetworkXUnfeasible:
        raise GraphcError("Graph.from_nx: the DiGraph has a cycle") from None
    ids = {node: k for k, node in enumerate(order)}
    nodes = G.nodes
    inputs, params, outputs = (_renumber(ids, meta[key], key) for key in ("inputs", "params", "outputs"))
    return cls([nodes[n]["op"] for n in order], [tuple(ids[a] for a in nodes[n].get("args", ())) for n in order],
               [tuple(nodes[n].get("attr", ())) for n in order], inputs, params, outputs,
               param_values=list(meta.get("param_values") or []), name=meta.get("name") or "fn",
               in_tree=meta.get("in_tree") or ("tuple", ("scalar",) * len(inputs)),
               out_tree=meta.get("out_tree") or ("tuple", ("scalar",) * len(outputs)))


def _check_node(G: Any, node: Any, data: dict) -> None:
    """A node needs an op, and ``args`` naming exactly its in-edges."""
    if not isinstance(data.get("op"), str):
        raise GraphcError(f"Graph.from_nx: node {node!r} has no 'op' attribute (a string)")
    args = data.get("args", ())
    if not isinstance(args, (tuple, list)):
        raise GraphcError(f"Graph.from_nx: node {node!r}: 'args' must be a tuple of node ids; got {args!r}")
    attr = data.get("attr", ())
    if not isinstance(attr, (tuple, list)):
        raise GraphcError(f"Graph.from_nx: node {node!r}: 'attr' must be a tuple (of its op's parameters, or a "
                          f"leaf's name or number); got {attr!r:.60}")
    try:
        named = set(args)
    except TypeError:
        raise GraphcError(f"Graph.from_nx: node {node!r}: 'args' must be node ids; got {tuple(args)!r:.60}") from None
    if named != set(G.predecessors(node)):
        raise GraphcError(f"Graph.from_nx: node {node!r} ({data['op']}) has args {tuple(args)!r} but in-edges "
                          f"from {sorted(map(repr, G.predecessors(node)))}: keep the two the same")


def _renumber(ids: dict, nodes: Iterable, key: str) -> list[int]:
    try:
        return [ids[node] for node in nodes]
    except (KeyError, TypeError):
        raise GraphcError(f"Graph.from_nx: G.graph[{key!r}] names nodes the DiGraph does not have") from None
