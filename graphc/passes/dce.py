"""Dead-code elimination: drop every op and constant that no output depends on.

Inputs and params always stay, so argument positions and gradient slots never move.
"""
from __future__ import annotations

from .. import ops
from ..graph import Graph
from ..graph_arrays import INPUT, PARAM
from .base import PassResult, PassStats, rebuild, unchanged


def dce(graph: Graph) -> PassResult:
    """Remove the ops and constants no output depends on (inputs and params stay)."""
    arrays = graph.arrays  # the last dead node (in id order) has no use at all: is there one?
    if not ((arrays.uses == 0) & (arrays.codes != INPUT) & (arrays.codes != PARAM)).any():
        return unchanged("dce", graph)
    live = graph.live()
    dead = [i for i, alive in enumerate(live) if not alive and graph.ops[i] not in ("input", "param")]

    result = rebuild(graph, lambda b, i, remap: b.copy_node(graph, i, remap), keep=live, start=dead[0],
                     copied=ops.TABLE)
    return PassResult(result, PassStats("dce", len(graph), len(result), {"removed": len(dead)}))
