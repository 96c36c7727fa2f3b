"""micrograd itself (the package, version 0.1.0), eager: demo.ipynb's loop as written."""
from __future__ import annotations

import statistics

from . import graphc_
from .workloads import Result, moons, moons_model

PACKAGE = "micrograd"


def version() -> str:
    from importlib.metadata import version as installed
    return f"micrograd {installed('micrograd')}"


def demo(quick: bool) -> Result:
    """The demo loop on micrograd's Value and MLP, from graphc's initial weights (same seed)."""
    from micrograd.engine import Value
    from micrograd.nn import MLP
    X, y = moons()
    model = MLP(2, [16, 16, 1])
    for p, q in zip(model.parameters(), moons_model().parameters()):
        p.data = q.data
    times, losses = graphc_.demo_loop(model, graphc_.demo_loss(model, X, y, Value), 2 if quick else 5)
    return Result(statistics.median(times), losses)


CONTENDERS = {"demo": {"micrograd eager": demo}}
