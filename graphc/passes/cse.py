"""Common-subexpression elimination by value numbering.

Two nodes with the same op, the same parameters and the same operands compute the same
value, so the later one is replaced by the earlier.  Operands of commutative ops are
compared as a sorted tuple: IEEE addition and multiplication are commutative bit for bit.
Inputs and params are never merged; equal constants already share a node.
"""
from __future__ import annotations

from .. import ops
from ..graph import Builder, Graph
from .base import PassResult, PassStats, rebuild, unchanged


def cse(graph: Graph) -> PassResult:
    """Replace each node that repeats an earlier one (same op, parameters, operands) by it."""
    commutative = frozenset(name for name, op in ops.TABLE.items() if op.commutative)
    if not _has_duplicates(graph, commutative):
        return unchanged("cse", graph)
    seen: dict[tuple, int] = {}
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

    result = rebuild(graph, visit)
    return PassResult(result, PassStats("cse", len(graph), len(result), {"merged": merged}))


def _has_duplicates(graph: Graph, commutative: frozenset) -> bool:
    """Value numbering without building anything: does some node repeat an earlier one?
    (Nothing is renamed before the first repeat, so operands are their own numbers.)"""
    seen: set[tuple] = set()
    add = seen.add
    for op, operands, attr in zip(graph.ops, graph.args, graph.attrs):
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
            return True
        add(key)
    return False
