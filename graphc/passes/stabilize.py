"""Numerically stable rewrites, opt-in (``optimize(graph, numerics="stable")``).

They are opt-in because they change results.

Each rule replaces a formula that loses accuracy, overflows or underflows by an op that
computes the same mathematical function to within an ulp or two everywhere.  On ordinary
inputs the two agree to a few ulps, but not bit for bit -- the rewritten graph is *more*
accurate, and where the original overflows to inf, underflows to 0 or rounds ``1 + x`` to
1 it differs entirely (``tests/test_stabilize.py`` measures both against mpmath).  A
zero result keeps the sign the exact function gives it (``log1p(-0.0)`` is -0.0 where
``log(1 + -0.0)`` is +0.0).  The default pipeline is exact, so these rules are not in it.

Gradients follow the rewritten graph: ``softplus``'s derivative is ``sigmoid``, and
``log(exp(x)) -> x`` has derivative exactly 1 where eager's ``exp(x) * exp(x)**-1`` is
nan past exp's overflow.
"""
from __future__ import annotations

from typing import Sequence

from ..graph import Graph
from ..ops import COMPARISONS
from .base import PassResult
from .simplify import C, P, Rule, X, rewrite

RULES: list[Rule] = [
    Rule("log(1+x)", P("log", P("add", C(1.0), X)), P("log1p", X)),   # log(1 + x) -> log1p(x)
    Rule("log(x+1)", P("log", P("add", X, C(1.0))), P("log1p", X)),   # log(x + 1) -> log1p(x)
    Rule("log1p(exp(x))", P("log1p", P("exp", X)), P("softplus", X)),  # log(1 + exp(x)) -> softplus(x)
    Rule("log(sigmoid(x))", P("log", P("sigmoid", X)),                 # log(sigmoid(x)) -> -softplus(-x)
         P("neg", P("softplus", P("neg", X)))),
    Rule("1-sigmoid(x)", P("sub", C(1.0), P("sigmoid", X)), P("sigmoid", P("neg", X))),  # 1 - sigmoid(x) -> sigmoid(-x)
    Rule("log(exp(x))", P("log", P("exp", X)), X),                     # log(exp(x)) -> x
]


def stabilize(graph: Graph, exact_outputs: Sequence[int] = ()) -> PassResult:
    """Apply the stability rules (see the module docstring), but not to the nodes the
    outputs at the positions ``exact_outputs`` read: a compiled function's guards, which must
    compute the numbers its trace decided on (``if log(1 + x).data > 0``), as eager does --
    nor to those a comparison reads, a decision too: ``x * ((1 + x).log().data > 0)`` took
    ``log1p``'s side of 0 where eager's ``log(1 + 1e-17)`` is 0 (an outside hunt)."""
    decided = [a for op, operands in zip(graph.ops, graph.args) if op in COMPARISONS for a in operands]
    read = [graph.outputs[k] for k in exact_outputs] + decided
    return rewrite(graph, RULES, "stabilize", kept=graph.live(read) if read else None)
