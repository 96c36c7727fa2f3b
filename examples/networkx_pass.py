"""A user pass written with networkx: keep one output of a graph, and only what it needs.

    python examples/networkx_pass.py

``graph.nx`` is the IR as a ``networkx.DiGraph``; any networkx algorithm runs on it, and
``Graph.from_nx`` takes the rewritten DiGraph back (renumbered, checked by ``verify()``).
Here ``nx.ancestors`` finds what output ``k`` depends on, a subgraph drops the rest, and
``nx.dag_longest_path_length`` measures the result's depth.  tests/test_graph.py runs it.
"""
import networkx as nx

import graphc
from graphc import Graph


def keep_output(graph: Graph, k: int) -> Graph:
    """``graph`` computing only its output ``k``: inputs and params stay (the signature is
    unchanged), the nodes no other output needs go."""
    G = graph.nx
    out = G.graph["outputs"][k]
    keep = nx.ancestors(G, out) | {out} | set(G.graph["inputs"]) | set(G.graph["params"])
    H = G.subgraph(keep).copy()  # a copy: graph.nx is cached and must not change
    H.graph["outputs"] = [out]
    H.graph["out_tree"] = None   # one scalar output now; from_nx fills in the default
    return Graph.from_nx(H)


def two_outputs(x, y):
    return (x * y + 1.0).tanh(), (x - y).exp() * 2.0


if __name__ == "__main__":
    graph = graphc.trace(two_outputs, 0.5, -1.5)
    first = keep_output(graph, 0)
    print(f"{len(graph)} nodes -> {len(first)} nodes, depth {nx.dag_longest_path_length(first.nx)}")
    print(first)
    value = graphc.as_function(first)(0.5, -1.5)[0].data
    print(f"output 0: {value!r} (the full graph: {graphc.as_function(graph)(0.5, -1.5)[0].data!r})")
