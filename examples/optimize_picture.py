"""Before and after optimization: pictures of a small expression's graph, with values and gradients.

    python examples/optimize_picture.py [OUTDIR]

writes OUTDIR/before.svg and OUTDIR/after.svg (OUTDIR defaults to out/) and prints what each
pass did.  Needs Graphviz's ``dot`` program (apt-get / brew / conda install graphviz).
"""
from __future__ import annotations

import sys
from pathlib import Path

import graphc
from graphc import Value
from graphc.interpret import backprop, evaluate
from graphc.viz import render

w = Value(0.5, label="w")


def f(x, y):
    xy = x * y
    again = x * y  # the same product twice: common subexpression elimination merges them
    scale = Value(2.0) * 3.0  # a Value made inside f is a constant: folded to 6.0
    return (xy * w + again.tanh()) * scale + x * 1.0  # x * 1: simplified away


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "out")
    out.mkdir(parents=True, exist_ok=True)
    before = graphc.trace(f, 1.5, -0.5)
    after, report = graphc.optimize(before, report=True)
    print(report)
    for name, graph in (("before", before), ("after", after)):
        values = evaluate(graph, [1.5, -0.5])
        path = render(graph, out / f"{name}.svg", values=values, grads=backprop(graph, values),
                      title=f"{name} optimization: {len(graph)} nodes")
        print(f"{name}: {len(graph)} nodes -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
