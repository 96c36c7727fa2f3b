"""Flatten left-nested addition chains into n-ary sums.

``((a + b) + c) + d`` becomes ``sum(a, b, c, d)``, which every backend evaluates left to
right, so results stay bit-identical.  Only the *left* operand is absorbed, and only when
that inner sum has no other user: ``a + (b + c)`` is a different rounding and stays.
Absorbed nodes are never emitted, so the pass leaves no dead code behind.
"""
from __future__ import annotations

import bisect

import numpy as np

from .. import ops
from ..graph import Builder, Graph
from ..walk import depth_first_ids
from .base import PassResult, PassStats, rebuild, unchanged

#: The ops flatten's rebuild copies as they are: all but the sums.
_NOT_SUMS = frozenset(ops.TABLE) - set(ops.SUMS)


def flatten(graph: Graph) -> PassResult:
    """Absorb every single-use left operand sum into its user: ((a + b) + c) -> sum(a, b, c)."""
    args = graph.args
    arrays = graph.arrays
    is_sum = arrays.of(ops.SUMS)
    firsts = arrays.operand(np.flatnonzero(is_sum), 0)
    is_absorbed = np.zeros(len(graph), bool)  # a sum whose only use is as the first operand of a sum
    is_absorbed[firsts[is_sum[firsts] & (arrays.uses[firsts] == 1)]] = True
    _keep_gradient_order(graph, is_absorbed)
    absorbed_ids = np.flatnonzero(is_absorbed)
    count = len(absorbed_ids)
    if not count:
        return unchanged("flatten", graph)
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


def _keep_gradient_order(graph: Graph, is_absorbed: np.ndarray) -> None:
    """Un-absorb the sums whose absorption would change the order of gradient parts.

    Reverse mode reaches a sum's operands when it reaches the sum (:mod:`graphc.autodiff`:
    reversed depth-first post-order from the output).  Absorbing a link ``s`` into the sum
    ``t`` at the top of its chain moves the gradient parts of ``s``'s operands from ``s``'s
    place in that order to ``t``'s; where an operand has another reader visited between the
    two (``b`` in ``(b + w*x) + x + c*(b*b)``: ``b*b`` lies between), its parts would come
    in another order than eager ``backward()`` adds them.  Such a link stays a sum of its
    own (the links below it then have it as their top).  The order is the one from output
    0; only links with an operand read elsewhere are looked at, from the top down, each
    chain's top found once (path compression) and each operand's readers bisected, so a
    chain of n such links costs about n log n, not n^2.  A constant operand is never
    looked at (an outside hunt: the 0.0 that ``sum(w * x ...)`` starts from, shared by every
    neuron, kept a layer's neurons from flattening, so they were no layer for re-rolling)."""
    arrays = graph.arrays
    operand_uses = arrays.reads.copy()
    operand_uses[arrays.of(("const",))] = 1  # a constant gets no gradient parts: ``p + 0.0`` of a shared 0.0 is safe
    node = np.repeat(np.arange(arrays.n), arrays.lengths)
    risky = np.unique(node[is_absorbed[node] & (operand_uses[arrays.indices] > 1)]).tolist()
    if not risky or not graph.outputs:
        return
    at = np.full(arrays.n, -1, dtype=np.int64)
    order = depth_first_ids((graph.outputs[0],), graph.args)
    at[order] = np.arange(len(order))
    position = at.tolist()
    user_of = np.full(arrays.n, -1, dtype=np.int64)  # an absorbed sum's one user: the next link up
    slots = np.flatnonzero(is_absorbed[arrays.indices])
    user_of[arrays.indices[slots]] = node[slots]
    user_of, absorbed, uses = user_of.tolist(), is_absorbed.tolist(), operand_uses.tolist()
    tops: dict[int, int] = {}
    readers_at: dict[int, list[int]] = {}
    for s in reversed(risky):  # the links above s are settled first: its top is final
        path, t = [], user_of[s]
        while absorbed[t]:
            if t in tops:
                t = tops[t]
                break
            path.append(t)
            t = user_of[t]
        for link in path:
            tops[link] = t
        if position[s] < 0:
            continue
        for x in graph.args[s]:
            if uses[x] < 2:
                continue
            if x not in readers_at:
                readers_at[x] = sorted(position[u] for u in arrays.users(x))
            readers = readers_at[x]
            k = bisect.bisect_right(readers, position[s])
            if k < len(readers) and readers[k] < position[t]:
                is_absorbed[s] = absorbed[s] = False
                break


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
