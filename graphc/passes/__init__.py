"""Graph-to-graph optimization passes and the driver that runs them to a fixed point.

Each pass is a pure function ``Graph -> PassResult(graph, stats)``: it never modifies
its input, and returns the input itself when it has nothing to change.  ``stats`` says
what it did: node counts before and after and hits per rule.  No pass recurses over the
graph; all are single loops over the topologically numbered nodes.
"""
from __future__ import annotations

from .base import PassResult, PassStats
from .cse import cse
from .dce import dce
from .flatten import flatten
from .fold import fold
from .pipeline import (DIFFERENTIABLE_PIPELINE, DIFFERENTIABLE_VECTOR_PIPELINE, FLAT_DIFFERENTIABLE_PIPELINE,
                       JOINT_VECTOR_PIPELINE, NUMERICS, PIPELINE, VECTOR_PIPELINE, OptimizeReport, check_numerics,
                       optimize, optimize_for_output)
from .reroll import reroll
from .simplify import RULES, simplify
from .stabilize import stabilize

__all__ = ["PassResult", "PassStats", "OptimizeReport", "NUMERICS", "PIPELINE", "VECTOR_PIPELINE",
           "JOINT_VECTOR_PIPELINE", "DIFFERENTIABLE_PIPELINE", "DIFFERENTIABLE_VECTOR_PIPELINE", "FLAT_DIFFERENTIABLE_PIPELINE", "RULES", "check_numerics", "cse", "dce", "flatten", "fold", "optimize", "optimize_for_output", "reroll", "simplify", "stabilize"]
