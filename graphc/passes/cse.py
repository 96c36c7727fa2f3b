"""Common-subexpression elimination by value numbering.

Two nodes with the same op, the same parameters and the same operands compute the same
value, so the later one is replaced by the earlier.  Operands of commutative ops are
compared as a sorted tuple: IEEE addition and multiplication are commutative bit for bit.
Inputs and params are never merged; equal constants already share a node.
"""
from __future__ import annotations

from .. import ops
from ..graph import Builder, Graph, first_repeated_const
from .base import PassResult, PassStats, rebuild, unchanged


def cse(graph: Graph) -> PassResult:
    """Replace each node that repeats an earlier one (same op, parameters, operands) by it."""
    commutative = frozenset(name for name, op in ops.TABLE.items() if op.commutative)
    first, seen = _first_duplicate(graph, commutative)
    if first is None:
        return unchanged("cse", graph)
    start = first_repeated_const(graph, first)  # where the rebuild stops sharing nodes
    if start < first:
        seen = {key: j for key, j in seen.items() if j < start}
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


def _first_duplicate(graph: Graph, commutative: frozenset) -> tuple[int | None, dict[tuple, int]]:
    """Value numbering without building anything: the first node repeating an earlier one
    (None if none does), and the value numbers of the nodes before it.  Nothing is renamed
    before the first repeat, so operands are their own numbers, and those nodes keep their
    ids in the rebuilt graph."""
    seen: dict[tuple, int] = {}
    for i, (op, operands, attr) in enumerate(zip(graph.ops, graph.args, graph.attrs)):
        if not operands:
            continue
        if op in commutative:
            if len(operands) == 2:
                a, b = operands
                if b < a:
                    operands = (b, a)
            else:
                operands = tuple(sorted(operands))
        key = (op, operands, attr)
        if key in seen:
            return i, seen
        seen[key] = i
    return None, seen
