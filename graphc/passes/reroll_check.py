"""Whether re-rolling could change a graph: each rule's necessary conditions, checked in bulk.

:func:`graphc.passes.reroll.reroll` copies the graph, infers every shape and runs its rules
even where none applies -- the last round of ``optimize`` always asks it once more.
:func:`could_change` answers the same question from :attr:`graphc.graph.Graph.arrays` and a
look at the few packs and vecmats: False only where no rule can fire (each check below
holds wherever its rule would rewrite something), so ``reroll`` may return the graph
unchanged at once.  The rules run in order on the rewritten graph; but where none fires,
each sees the graph as it is, which is what these checks read.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from .. import ops
from ..graph import Graph
from ..graph_arrays import CODES

_SUMS = ops.SUMS
_ELEMENTWISE = frozenset(name for name, op in ops.TABLE.items() if op.elementwise)


def could_change(graph: Graph) -> bool:
    """False only if no rule of :mod:`graphc.passes.reroll` can rewrite ``graph``."""
    arrays = graph.arrays
    codes = arrays.codes
    is_sum = arrays.of(_SUMS)
    sums = np.flatnonzero(is_sum)
    if len(sums):
        firsts = arrays.operand(sums, 0)
        if (codes[firsts] == CODES["unit"]).any():  # rule 4: a sum of units
            return True
        if _products_in_a_row(arrays, is_sum):  # rules 1 and 2: a run of products in a sum
            return True
    indexes = np.flatnonzero(codes == CODES["index"])
    if len(indexes) and (codes[arrays.operand(indexes, 0)] == CODES["pack"]).any():  # rule 3: index(pack)
        return True
    if any(_vectorizable(graph, arrays, p) for p in np.flatnonzero(codes == CODES["pack"]).tolist()):
        return True
    if any(_accumulable(graph, arrays, v) for v in np.flatnonzero(codes == CODES["vecmat"]).tolist()):
        return True
    if not len(indexes):
        return _outputs_over_lanes(graph, arrays)
    tensors = arrays.operand(indexes, 0)  # of lanes some node reads: a joint graph's gradients are read by none
    readers = arrays.uses[indexes] - np.bincount(np.asarray(graph.outputs, dtype=np.int64), minlength=arrays.n)[indexes]
    read = np.isin(tensors, tensors[readers > 0])
    return _outputs_over_lanes(graph, arrays) or _lanes_read_alike(graph, arrays, indexes[read].tolist())


def _products_in_a_row(arrays, is_sum: np.ndarray) -> bool:
    """Whether some sum has two operands in a row that are products used only there."""
    node = np.repeat(np.arange(arrays.n), arrays.lengths)
    operands = arrays.indices
    product = (arrays.codes[operands] == CODES["mul"]) & (arrays.uses[operands] == 1) & is_sum[node]
    return bool((product[:-1] & product[1:] & (node[:-1] == node[1:])).any())


def _vectorizable(graph: Graph, arrays, p: int) -> bool:
    """Rule 3 at pack ``p``: lanes ``index(v, 0), index(v, 1), ...``, or lanes of one
    elementwise op, each used only there."""
    lanes = graph.args[p]
    first = graph.ops[lanes[0]]
    if first == "index":
        v = graph.args[lanes[0]][0]
        return all(graph.ops[s] == "index" and graph.args[s][0] == v and graph.attrs[s][0] == k
                   for k, s in enumerate(lanes))
    if first not in _ELEMENTWISE:
        return False
    attr, arity, uses = graph.attrs[lanes[0]], len(graph.args[lanes[0]]), arrays.uses
    return len(set(lanes)) == len(lanes) and all(
        graph.ops[s] == first and graph.attrs[s] == attr and len(graph.args[s]) == arity and uses[s] == 1
        for s in lanes)


def _outputs_over_lanes(graph: Graph, arrays) -> bool:
    """Rule 6: two outputs, read by no node, of one elementwise op reading lanes of one tensor."""
    seen = set()
    for o, times in Counter(graph.outputs).items():
        op = graph.ops[o]
        if op not in _ELEMENTWISE or arrays.uses[o] != times:
            continue
        for position, a in enumerate(graph.args[o]):
            if graph.ops[a] == "index":
                key = (op, position, graph.args[a][0])
                if key in seen:
                    return True
                seen.add(key)
    return False


def _accumulable(graph: Graph, arrays, v: int) -> bool:
    """Rule 5 at vecmat ``v``: it starts from -0.0, and it (used once), or one of the lanes
    read from it (each read once), is a part of a sum."""
    acc = graph.args[v][0]
    if graph.ops[acc] != "const" or graph.attrs[acc][0] != 0.0 or math.copysign(1.0, graph.attrs[acc][0]) > 0:
        return False
    users, ops_ = arrays.users(v), graph.ops
    if arrays.uses[v] == 1 and users and ops_[users[0]] in _SUMS:
        return True
    if not all(ops_[u] == "index" for u in users):
        return False
    for u in users:
        lane_users = arrays.users(u)
        if arrays.uses[u] == 1 and len(lane_users) == 1 and ops_[lane_users[0]] in _SUMS:
            return True
    return False


def _lanes_read_alike(graph: Graph, arrays, indexes: list[int]) -> bool:
    """Rule 7: some tensor's lanes 0 .. L-1 (L >= 2) each read by one ``index``, lanes 0 and 1
    read alike by an elementwise op whose other operands are a constant both share or a
    leaf each of its own (the first ops rule 7 vectorizes take nothing else; the tensor's
    size is not looked up: one of more lanes passes too, which is no harm)."""
    by_tensor: dict[int, list[int]] = {}
    for i in indexes:
        by_tensor.setdefault(graph.args[i][0], []).append(i)
    for found in by_tensor.values():
        lanes = {graph.attrs[i][0]: i for i in found}
        if len(found) < 2 or len(lanes) != len(found) or sorted(lanes) != list(range(len(found))):
            continue
        if any(lanes_alike(graph, arrays, u0, lanes[0], u1, lanes[1]) for u0 in arrays.users(lanes[0])
               for u1 in arrays.users(lanes[1])):
            return True
    return False


def lanes_alike(graph: Graph, arrays, u0: int, lane0: int, u1: int, lane1: int) -> bool:
    """Whether ``u0`` does to ``lane0`` what ``u1`` does to ``lane1`` (see :func:`_lanes_read_alike`;
    rule 7 looks with it too, before it finds every node's readers)."""
    op, a0, a1 = graph.ops[u0], graph.args[u0], graph.args[u1]
    if op not in _ELEMENTWISE or graph.ops[u1] != op or graph.attrs[u0] != graph.attrs[u1] or len(a0) != len(a1):
        return False
    for x, y in zip(a0, a1):
        if (x == lane0) != (y == lane1):
            return False
        if x != lane0 and not (graph.ops[x] == "const" and x == y or graph.ops[x] in ops.LEAVES and
                               graph.ops[y] in ops.LEAVES and x != y and arrays.uses[x] == arrays.uses[y] == 1):
            return False
    return True
