"""Common-subexpression elimination by value numbering.

Two nodes with the same op, the same parameters and the same operands compute the same
value, so the later one is replaced by the earlier.  Operands of commutative ops are
compared as a sorted tuple: IEEE addition and multiplication are commutative bit for bit.
Inputs and params are never merged; equal constants already share a node.

**How.**  Value numbering node by node, in id order, gives each node the first node with
its key (op, parameters, operands' numbers).  The same numbers are the fixed point of
numbering every node at once from its operands' numbers of the round before: each round
sorts the nodes' keys as rows of arrays, a few rounds settle it (one per level of merges
that enable others), and the graph is rebuilt from the numbers in one sweep.  Where merges
chain deeper than ``ROUNDS`` levels, the node-by-node numbering runs instead.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Builder, Graph, const_key, first_repeated_const
from ..graph_arrays import CODES, CONST
from .base import PassResult, PassStats, rebuild, renumbered, unchanged

ROUNDS = 8
_PACKED = (1 << 21) - 1  # graphs with fewer nodes number three operands in one int64
_COMMUTATIVE = frozenset(name for name, op in ops.TABLE.items() if op.commutative)


def cse(graph: Graph) -> PassResult:
    """Replace each node that repeats an earlier one (same op, parameters, operands) by it."""
    return _cse(graph, "cse", None)


def cse_packs(graph: Graph) -> PassResult:
    """:func:`cse` of ``pack`` nodes alone: the CSE a graph takes before reverse mode.  A
    pack only moves numbers, and reverse mode hands each lane's parts on one by one where the
    lane has parts already (:mod:`graphc.autodiff`), so merging two packs of the same
    params (a layer's weights and an L2 term's) keeps every gradient's order; merging two
    equal sums or products would add their gradient parts before passing them on."""
    return _cse(graph, "cse_packs", frozenset({"pack"}))


def _cse(graph: Graph, name: str, only: frozenset[str] | None) -> PassResult:
    keys = _Keys(graph, only)
    first = keys.first_repeat()
    if first is None:
        return unchanged(name, graph)
    start = first_repeated_const(graph, first)  # nothing changes below it
    numbers = keys.fixed_point(keys.numbers(np.arange(len(graph))))
    if numbers is None:
        result, merged = _one_by_one(graph, start, only)
    else:
        result = renumbered(graph, numbers, start)
        merged = int(((numbers != np.arange(len(graph))) & (graph.arrays.lengths > 0)).sum())
    return PassResult(result, PassStats(name, len(graph), len(result), {"merged": merged}))


class _Keys:
    """The nodes' keys as arrays, given the numbers of their operands (see the module docstring)."""

    def __init__(self, graph: Graph, only: frozenset[str] | None = None) -> None:
        self.graph = graph
        arrays = self.arrays = graph.arrays
        nodes = np.flatnonzero(arrays.lengths)
        if only is not None:  # the other nodes keep their own numbers: never merged
            nodes = nodes[np.isin(arrays.codes[nodes], [CODES[name] for name in only])]
        lengths = arrays.lengths[nodes]
        self.long = nodes[lengths > 3].tolist()  # few: keys in Python
        self.short, self.lengths = nodes[lengths <= 3], lengths[lengths <= 3]
        self.kind = arrays.codes[self.short].astype(np.int64) << 48 | self.lengths << 44 | _attr_ids(graph, self.short)
        self.operands = [np.where(self.lengths > k, arrays.indices[arrays.indptr[self.short]
                                                                  + np.minimum(k, self.lengths - 1)], -1)
                         for k in range(3)]
        self.swap = np.isin(arrays.codes[self.short], [CODES[name] for name in _COMMUTATIVE])
        self.consts = self._const_numbers()

    def _const_numbers(self) -> dict[int, int]:
        """Each constant equal to an earlier one -> that one (the builder merges them)."""
        first: dict = {}
        out = {}
        for i in np.flatnonzero(self.arrays.codes == CONST).tolist():
            j = first.setdefault(const_key(self.graph.attrs[i][0]), i)
            if j != i:
                out[i] = j
        return out

    def first_repeat(self) -> int | None:
        """The first op node whose key (its operands as they are) an earlier one has, or None:
        value numbering's first merge, before anything is renamed."""
        found = []
        if len(self.short):
            order, new = self._grouped(None)
            repeats = self.short[order[1:][~new[1:]]]
            if len(repeats):
                found.append(int(repeats.min()))
        seen: set = set()
        for i in self.long:
            key = self._long_key(i, self.graph.args[i])
            if key in seen:
                found.append(i)
                break
            seen.add(key)
        return min(found) if found else None

    def numbers(self, previous: np.ndarray) -> np.ndarray:
        """Each node's number: the first node whose key, with its operands' ``previous``
        numbers, is its own."""
        out = np.arange(self.arrays.n)
        for i, j in self.consts.items():
            out[i] = j
        if len(self.short):
            order, new = self._grouped(previous)
            first = self.short[order][np.flatnonzero(new)]
            out[self.short[order]] = first[np.cumsum(new) - 1]
        seen: dict = {}
        indices, indptr = self.arrays.indices, self.arrays.indptr
        for i in self.long:
            out[i] = seen.setdefault(self._long_key(i, tuple(previous[indices[indptr[i]:indptr[i + 1]]].tolist())), i)
        return out

    def _grouped(self, previous: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The short nodes sorted by key (equal keys in id order), and where each new key starts."""
        columns = self.operands if previous is None else [np.where(c >= 0, previous[c], -1) for c in self.operands]
        columns = _sorted_lanes(columns, self.lengths, self.swap)
        if self.arrays.n < _PACKED:  # the three operands in one integer (+1: -1 is "none")
            columns = [(columns[0] + 1) << 42 | (columns[1] + 1) << 21 | (columns[2] + 1)]
        order = np.lexsort((*columns[::-1], self.kind))  # stable: equal rows in id order
        new = np.ones(len(order), dtype=bool)
        new[1:] = self.kind[order[1:]] != self.kind[order[:-1]]
        for column in columns:
            new[1:] |= column[order[1:]] != column[order[:-1]]
        return order, new

    def _long_key(self, i: int, operands: tuple) -> tuple:
        op = self.graph.ops[i]
        return op, tuple(sorted(operands)) if op in _COMMUTATIVE else operands, self.graph.attrs[i]

    def fixed_point(self, numbers: np.ndarray) -> np.ndarray | None:
        for _ in range(ROUNDS):
            again = self.numbers(numbers)
            if np.array_equal(again, numbers):
                return numbers
            numbers = again
        return None


def _one_by_one(graph: Graph, start: int, only: frozenset[str] | None) -> tuple[Graph, int]:
    """Value numbering node by node (merges chained too deep for the rounds)."""
    seen = _numbering(graph, start)
    merged = 0

    def visit(b: Builder, i: int, remap: list[int]) -> int:
        nonlocal merged
        op = graph.ops[i]
        operands = tuple([remap[a] for a in graph.args[i]])
        if only is not None and op not in only:
            return b.add(op, operands, graph.attrs[i])
        key = (op, tuple(sorted(operands)) if op in _COMMUTATIVE else operands, graph.attrs[i])
        j = seen.get(key)
        if j is not None:
            merged += 1
            return j
        seen[key] = j = b.add(op, operands, graph.attrs[i])
        return j

    result = rebuild(graph, visit, start=start)  # the nodes before `start`: numbered in `seen`
    return result, merged


def _numbering(graph: Graph, stop: int) -> dict[tuple, int]:
    """The value number (id) of each op node below ``stop``, by its key (``visit``'s):
    no node there repeats another, so operands are their own numbers."""
    seen: dict[tuple, int] = {}
    node_ops, node_args, node_attrs = graph.ops, graph.args, graph.attrs
    for i in range(stop):
        operands = node_args[i]
        if operands:
            op = node_ops[i]
            if op in _COMMUTATIVE:
                operands = tuple(sorted(operands))
            seen[(op, operands, node_attrs[i])] = i
    return seen


def _attr_ids(graph: Graph, nodes: np.ndarray) -> np.ndarray:
    """A number per node, equal where their parameters are equal (``==``, as a dict key): 0
    for an op without parameters (most nodes), so only the others are looked up."""
    attrs = graph.attrs
    with_params = nodes[np.isin(graph.arrays.codes[nodes], _WITH_PARAMS)].tolist()
    ids = np.zeros(len(nodes), np.int64)
    numbers: dict = {(): 0}
    ids[np.searchsorted(nodes, with_params)] = [numbers.setdefault(attrs[i], len(numbers)) for i in with_params]
    return ids


_WITH_PARAMS = [CODES[name] for name, op in ops.TABLE.items() if op.attr_names]


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
