"""``optimize``: run the passes in order, round after round, until nothing changes."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Sequence

from ..errors import ArgumentError
from ..gcpause import gc_paused
from ..graph import Graph
from .base import PassStats
from .cse import cse, cse_packs
from .dce import dce
from .flatten import flatten
from .fold import fold
from .reroll import reroll, reroll_final
from .simplify import simplify
from .stabilize import stabilize

log = logging.getLogger("graphc.passes")

#: The passes, in the order each round runs them.
PIPELINE = (fold, simplify, flatten, cse, dce)
#: For the batched backends (NumPy, C): the same, plus re-rolling dot products into tensor
#: ops (see :mod:`graphc.passes.reroll` for why it is not in ``PIPELINE``).
VECTOR_PIPELINE = (fold, simplify, flatten, reroll, cse, dce)
#: For a joint forward and gradient graph, which is not differentiated again: the same, with
#: :func:`~graphc.passes.reroll.reroll_final`.
JOINT_VECTOR_PIPELINE = (fold, simplify, flatten, reroll_final, cse, dce)
#: For a graph reverse mode then differentiates, for any output: the passes that keep its
#: nodes where they were.  Reverse mode adds a value's gradient parts in the order it
#: reaches them (eager ``backward()``'s), so a rewrite before it that moves a part moves it
#: in that order too: simplify's ``x * 1.0 -> x`` has reverse mode reach ``x``'s part from
#: there first, where eager reaches it after the parts of ``x``'s readers in between, 1 ulp
#: off; merging two equal nodes (CSE) adds their gradient parts before passing them on --
#: ``(g1 + g2) * 2.0`` to ``w`` where eager adds ``g1 * 2.0`` and ``g2 * 2.0``.  The other
#: passes run on the joint graph instead, where each gradient part is a node of its own and
#: no rewrite changes a number.
DIFFERENTIABLE_PIPELINE = (fold, dce)
#: The same for a graph differentiated for output 0 (see :func:`optimize_for_output`):
#: flatten too, whose absorptions keep output 0's order of gradient parts (a sum whose
#: operand another output's nodes read in between it and its user is left as it is only
#: if that output is output 0).  Differentiating flat sums costs less.
FLAT_DIFFERENTIABLE_PIPELINE = (fold, flatten, dce)
#: For a re-rolled graph differentiated for output 0: what re-rolling needs, flatten, and
#: CSE of packs alone (:func:`~graphc.passes.cse.cse_packs`, which keeps every gradient's
#: order).
DIFFERENTIABLE_VECTOR_PIPELINE = (fold, flatten, reroll, cse_packs, dce)
MAX_ROUNDS = 10
#: ``optimize(numerics=...)``: "exact" keeps every result bit for bit; "stable" also applies
#: graphc.passes.stabilize; "fast" optimizes as "exact" (its freedom -- fused multiply-adds,
#: sums in any order, BLAS -- is taken by the batched code generators, not by the passes).
NUMERICS = ("exact", "stable", "fast")


@dataclass
class OptimizeReport:
    """Per-pass statistics of one ``optimize`` run; ``str()`` is a table."""

    before: int
    after: int = 0
    rounds: list[list[PassStats]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"optimize: {self.before:,} -> {self.after:,} nodes in {len(self.rounds)} round(s)"]
        for k, stats in enumerate(self.rounds, 1):
            lines += [f"  round {k}  {s}" for s in stats]
        return "\n".join(lines)


def optimize(graph: Graph, *, report: bool = False, passes=None, max_rounds: int = MAX_ROUNDS,
             numerics: str = "exact", exact_outputs: Sequence[int] = ()):
    """The graph with every pass applied to a fixed point; never changes what it computes.

    Each round runs the passes in order, except those that already ran on the current
    graph without changing it; the last round is the one in which nothing changed.

    With ``report=True`` returns ``(graph, OptimizeReport)``.  Each pass's counts are
    also logged to the ``graphc.passes`` logger at DEBUG level.  ``numerics="stable"``
    adds the :mod:`~graphc.passes.stabilize` rewrites (``log(1 + x) -> log1p(x)``, ...),
    which change results: more accurate, no longer bit-identical to eager.
    ``numerics="fast"`` changes nothing here: the graph stays exact (see :data:`NUMERICS`).
    ``exact_outputs``: positions of outputs whose nodes the stable rewrites leave alone (a
    compiled function's guards).
    """
    if not isinstance(graph, Graph):
        raise ArgumentError(f"optimize takes a graphc.Graph (from graphc.trace); got {type(graph).__name__}")
    check_numerics(numerics)
    passes = PIPELINE if passes is None else passes
    if numerics == "stable" and stabilize not in passes:
        passes = tuple(passes) + ((functools.partial(stabilize, exact_outputs=exact_outputs),) if exact_outputs
                                  else (stabilize,))
    summary = OptimizeReport(before=len(graph))
    with gc_paused():
        graph = _fixed_point(graph, passes, max_rounds, summary)
    summary.after = len(graph)
    return (graph, summary) if report else graph


def optimize_for_output(graph: Graph, output: int, passes, *, report: bool = False):
    """``optimize(graph, passes=passes)`` for reverse mode to differentiate output
    ``output``: run with that output first, whose order of gradient parts flatten and
    re-rolling keep (:data:`FLAT_DIFFERENTIABLE_PIPELINE`), then put back in its place."""
    graph, summary = optimize(_output_moved(graph, output, 0), report=True, passes=passes)
    graph = _output_moved(graph, 0, output)
    return (graph, summary) if report else graph


def _output_moved(graph: Graph, source: int, to: int) -> Graph:
    """``graph`` (its nodes shared) with output ``source`` moved to position ``to``."""
    if source == to:
        return graph
    outputs = list(graph.outputs)
    outputs.insert(to, outputs.pop(source))
    return Graph(graph.ops, graph.args, graph.attrs, graph.inputs, graph.params, outputs,
                 param_values=graph.param_values, in_tree=graph.in_tree, out_tree=graph.out_tree, name=graph.name)


def check_numerics(numerics: str) -> None:
    """An ArgumentError listing :data:`NUMERICS` unless ``numerics`` is one of them."""
    if numerics not in NUMERICS:
        raise ArgumentError(f"numerics must be one of {', '.join(map(repr, NUMERICS))}; got {numerics!r}")


def _fixed_point(graph: Graph, passes, max_rounds: int, summary: OptimizeReport) -> Graph:
    """Rounds of ``passes`` until none of them changes the graph (at most ``max_rounds``),
    each recorded in ``summary``.  A pass that already ran on the current graph without
    changing it is not run again in a later round: passes are deterministic functions, so
    it would change nothing (on the moons demo's forward graph, 8 pass runs instead of 10)."""
    clean: set[int] = set()  # passes that ran on the current graph and left it unchanged
    for _ in range(max_rounds):
        stats_this_round = []
        for k, run in enumerate(passes):
            if k in clean:
                continue
            graph, stats = run(graph)
            stats_this_round.append(stats)
            log.debug("%s", stats)
            clean = set() if stats.changed else clean | {k}
        summary.rounds.append(stats_this_round)
        if len(clean) == len(passes):
            break
    return graph
