"""Flatten left-nested addition chains into n-ary sums.

``((a + b) + c) + d`` becomes ``sum(a, b, c, d)``, which every backend evaluates left to
right, so results stay bit-identical.  Only the *left* operand is absorbed, and only when
that inner sum has no other user: ``a + (b + c)`` is a different rounding and stays.
Absorbed nodes are never emitted, so the pass leaves no dead code behind.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Builder, Graph
from .base import PassResult, PassStats, rebuild, unchanged

#: The ops flatten's rebuild copies as they are: all but the sums.
_NOT_SUMS = frozenset(ops.TABLE) - set(ops.SUMS)


def flatten(graph: Graph) -> PassResult:
    """Absorb every single-use left operand sum into its user: ((a + b) + c) -> sum(a, b, c)."""
    node_ops, args = graph.ops, graph.args
    arrays = graph.arrays
    is_sum = arrays.of(ops.SUMS)
    firsts = arrays.operand(np.flatnonzero(is_sum), 0)
    absorbed_ids = np.unique(firsts[is_sum[firsts] & (arrays.uses[firsts] == 1)])
    count = len(absorbed_ids)
    if not count:
        return unchanged("flatten", graph)
    is_absorbed = np.zeros(len(graph), bool)  # a sum whose only use is as the first operand of a sum
    is_absorbed[absorbed_ids] = True
    absorbed = is_absorbed.tolist()
    # nodes before the first absorbed sum are copied as they are, but a sum of two is
    # respelled as ``add`` (ops.sum_op)
    start = _first_sum_of_two(graph, int(absorbed_ids[0]))

    def visit(b: Builder, i: int, remap: list[int]) -> int:  # a sum that is not absorbed
        links, first = [i], args[i][0]
        while absorbed[first]:  # the chain it absorbs, walked down its first operands
            links.append(first)
            first = args[first][0]
        operands = [remap[first]]
        for link in reversed(links):
            operands += [remap[a] for a in args[link][1:]]
        return b.add(ops.sum_op(len(operands)), tuple(operands))

    result = rebuild(graph, visit, keep=(~is_absorbed).tolist(), start=start, copied=_NOT_SUMS)
    return PassResult(result, PassStats("flatten", len(graph), len(result), {"absorbed": count}))


def _first_sum_of_two(graph: Graph, stop: int) -> int:
    """The first ``sum`` node of two operands below ``stop`` (a rebuild respells it ``add``), else ``stop``."""
    node_ops, i = graph.ops, -1
    while True:
        try:
            i = node_ops.index("sum", i + 1, stop)
        except ValueError:
            return stop
        if len(graph.args[i]) == 2:
            return i
