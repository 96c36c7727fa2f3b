"""Common-subexpression elimination by value numbering.

Two nodes with the same op, the same parameters and the same operands compute the same
value, so the later one is replaced by the earlier.  Operands of commutative ops are
compared as a sorted tuple: IEEE addition and multiplication are commutative bit for bit.
Inputs and params are never merged; equal constants already share a node.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Builder, Graph, first_repeated_const
from ..graph_arrays import CODES
from .base import PassResult, PassStats, rebuild, unchanged


def cse(graph: Graph) -> PassResult:
    """Replace each node that repeats an earlier one (same op, parameters, operands) by it."""
    commutative = frozenset(name for name, op in ops.TABLE.items() if op.commutative)
    first = _first_duplicate(graph, commutative)
    if first is None:
        return unchanged("cse", graph)
    start = first_repeated_const(graph, first)  # where the rebuild stops sharing nodes
    seen = _numbering(graph, commutative, start)
    merged = 0

    def visit(b: Builder, i: int, remap: list[int]) -> int:
        nonlocal merged
        op = graph.ops[i]
        operands = tuple([remap[a] for a in graph.args[i]])
        key = (op, tuple(sorted(operands)) if op in commutative else operands, graph.attrs[i])
        j = seen.get(key)
        if j is not None:
            merged += 1
            return j
        seen[key] = j = b.add(op, operands, graph.attrs[i])
        return j

    result = rebuild(graph, visit, start=start)  # the nodes before `start`: numbered in `seen`
    return PassResult(result, PassStats("cse", len(graph), len(result), {"merged": merged}))


def _numbering(graph: Graph, commutative: frozenset, stop: int) -> dict[tuple, int]:
    """The value number (id) of each op node below ``stop``, by its key (``visit``'s):
    no node there repeats another, so operands are their own numbers."""
    seen: dict[tuple, int] = {}
    node_ops, node_args, node_attrs = graph.ops, graph.args, graph.attrs
    for i in range(stop):
        operands = node_args[i]
        if operands:
            op = node_ops[i]
            if op in commutative:
                operands = tuple(sorted(operands))
            seen[(op, operands, node_attrs[i])] = i
    return seen


def _first_duplicate(graph: Graph, commutative: frozenset) -> int | None:
    """The first op node with the op, parameters and operands (sorted, for a commutative op)
    of an earlier one, or None: value numbering without building anything (nothing is
    renamed before the first repeat).  Nodes of up to three operands are compared as rows
    of arrays, sorted; longer ones (few) as Python keys."""
    arrays = graph.arrays
    nodes = np.flatnonzero(arrays.lengths)
    lengths = arrays.lengths[nodes]
    first = _first_long_repeat(graph, nodes[lengths > 3].tolist(), commutative)
    short, lengths = nodes[lengths <= 3], lengths[lengths <= 3]
    if not len(short):
        return first
    columns = [np.where(lengths > k, arrays.indices[arrays.indptr[short] + np.minimum(k, lengths - 1)], -1)
               for k in range(3)]
    swap = np.isin(arrays.codes[short], [CODES[name] for name in commutative])
    columns[:3] = _sorted_lanes(columns, lengths, swap)
    kind = arrays.codes[short].astype(np.int64) << 48 | lengths << 44 | _attr_ids(graph, short)
    order = np.lexsort((columns[2], columns[1], columns[0], kind))  # stable: equal rows in id order
    same = (kind[order[1:]] == kind[order[:-1]])
    for column in columns:
        same &= column[order[1:]] == column[order[:-1]]
    repeats = short[order[1:][same]]
    if len(repeats):
        first = min(int(repeats.min()), first) if first is not None else int(repeats.min())
    return first


def _attr_ids(graph: Graph, nodes: np.ndarray) -> np.ndarray:
    """A number per node, equal where their parameters are equal (``==``, as a dict key): 0
    for none (most op nodes), so only nodes with parameters are looked up."""
    attrs = graph.attrs
    with_params = nodes[np.fromiter(map(len, attrs), np.int64, len(attrs))[nodes] > 0]
    ids = np.zeros(len(attrs), np.int64)
    numbers: dict = {(): 0}
    ids[with_params] = [numbers.setdefault(attrs[i], len(numbers)) for i in with_params.tolist()]
    return ids[nodes]


def _sorted_lanes(columns: list[np.ndarray], lengths: np.ndarray, swap: np.ndarray) -> list[np.ndarray]:
    """The operand columns with each commutative row's operands in ascending order."""
    a, b, c = columns
    two, three = swap & (lengths == 2), swap & (lengths == 3)
    low, high = np.minimum(a, b), np.maximum(a, b)
    a, b = np.where(two, low, a), np.where(two, high, b)
    if three.any():
        rows = np.sort(np.stack([a[three], b[three], c[three]], axis=1), axis=1)
        a, b, c = a.copy(), b.copy(), c.copy()
        a[three], b[three], c[three] = rows[:, 0], rows[:, 1], rows[:, 2]
    return [a, b, c]


def _first_long_repeat(graph: Graph, nodes: list[int], commutative: frozenset) -> int | None:
    seen = set()
    for i in nodes:
        op, operands = graph.ops[i], graph.args[i]
        key = (op, tuple(sorted(operands)) if op in commutative else operands, graph.attrs[i])
        if key in seen:
            return i
        seen.add(key)
    return None
