"""Graph.arrays: the same graph as the lists, in NumPy arrays; each query against the plain loop."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from graphc import trace
from graphc.graph_arrays import CODES
from strategies import programs, replay


def traced(spec):
    return trace(lambda *xs: replay(spec, list(xs[:3]), list(xs[3:])), *[0.5] * (3 + spec["n_params"]))


@settings(max_examples=150)
@given(programs(max_ops=16))
def test_arrays_hold_the_graph_and_answer_as_the_plain_loops(spec):
    g = traced(spec)
    a = g.arrays
    assert a.codes.tolist() == [CODES[op] for op in g.ops]
    assert [tuple(a.indices[a.indptr[i]:a.indptr[i + 1]].tolist()) for i in range(len(g))] == g.args
    uses = [0] * len(g)
    for operands in g.args:
        for x in operands:
            uses[x] += 1
    for o in g.outputs:
        uses[o] += 1
    assert a.uses.tolist() == uses == g.use_counts()
    for i in range(len(g)):
        assert a.users(i) == [j for j, operands in enumerate(g.args) for x in operands if x == i]
    flags = np.array([op == "const" for op in g.ops])
    assert a.all_operands(flags).tolist() == [bool(ops_) and all(flags[x] for x in ops_) for ops_ in g.args]
    nodes = np.flatnonzero(a.lengths)
    assert a.operand(nodes, 0).tolist() == [g.args[i][0] for i in nodes.tolist()]
    assert a.of(("add", "sum")).tolist() == [op in ("add", "sum") for op in g.ops]
    assert g.arrays is a  # built once
