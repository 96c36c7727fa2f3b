"""Dead-code elimination: drop every op and constant that no output depends on.

Inputs and params always stay, so argument positions and gradient slots never move.
"""
from __future__ import annotations

import numpy as np

from ..graph import Graph, const_key, first_repeated_const
from ..graph_arrays import CONST, INPUT, PARAM
from .base import PassResult, PassStats, renumbered, unchanged


def dce(graph: Graph) -> PassResult:
    """Remove the ops and constants no output depends on (inputs and params stay)."""
    arrays = graph.arrays  # the last dead node (in id order) has no use at all: is there one?
    if not ((arrays.uses == 0) & (arrays.codes != INPUT) & (arrays.codes != PARAM)).any():
        return unchanged("dce", graph)
    live = np.array(graph.live(), dtype=bool) | (arrays.codes == INPUT) | (arrays.codes == PARAM)
    dead = np.flatnonzero(~live)
    numbers = np.where(live, np.arange(len(graph)), -1)
    first: dict = {}  # a live constant equal to an earlier live one is read as that one
    for i in np.flatnonzero(live & (arrays.codes == CONST)).tolist():
        numbers[i] = first.setdefault(const_key(graph.attrs[i][0]), i)
    result = renumbered(graph, numbers, first_repeated_const(graph, int(dead[0])))
    return PassResult(result, PassStats("dce", len(graph), len(result), {"removed": len(dead)}))
