"""Constant folding: an elementwise op whose operands are all constants becomes a constant.

(Tensor ops are never folded: constants are scalars; ``index(pack(...))`` is the re-rolling
pass's business.)

Folding evaluates with the op table's own ``eval`` -- the same IEEE functions the eager
engine and the Python backend run -- so a folded graph computes exactly what the unfolded
one did, inf, nan and -0.0 included.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..graph import Builder, Graph
from ..graph_arrays import CONST
from .base import PassResult, PassStats, rebuild, unchanged


def fold(graph: Graph) -> PassResult:
    """Replace every all-constant op by its value (cascading within one pass)."""
    foldable = _foldable(graph)
    if not foldable:
        return unchanged("fold", graph)
    folded = 0

    def visit(b: Builder, i: int, remap: list[int]) -> int:
        nonlocal folded
        operands = [remap[a] for a in graph.args[i]]
        if ops.TABLE[graph.ops[i]].elementwise and all(b.ops[a] == "const" for a in operands):
            folded += 1
            op = ops.TABLE[graph.ops[i]]
            return b.const(op.eval(*[b.attrs[a][0] for a in operands], *graph.attrs[i]))
        return b.add(graph.ops[i], tuple(operands), graph.attrs[i])

    # nothing before the first foldable node changes; after it, only nodes foldable as they
    # are or reading a folded one
    result = rebuild(graph, visit, start=foldable[0], visit_only=set(foldable))
    return PassResult(result, PassStats("fold", len(graph), len(result), {"folded": folded}))


def _foldable(graph: Graph) -> list[int]:
    """The elementwise op nodes whose operands are all constants."""
    arrays = graph.arrays
    return np.flatnonzero(arrays.of(_ELEMENTWISE) & arrays.all_operands(arrays.codes == CONST)).tolist()


_ELEMENTWISE = [name for name, op in ops.TABLE.items() if op.elementwise]
