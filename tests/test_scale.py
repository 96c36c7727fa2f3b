"""Deep and wide graphs compile and run without recursion (bench/scale.py goes to 10^6)."""
from __future__ import annotations

import sys

import numpy as np

import graphc
from graphc import Value


def test_a_chain_far_deeper_than_the_recursion_limit_compiles_and_differentiates():
    depth = 30_000
    assert depth > 20 * sys.getrecursionlimit()
    w = Value(0.999)

    def chain(x):
        for _ in range(depth):
            x = x * w
        return x
    compiled = graphc.compile(chain)
    out = compiled(1.0)
    out.backward()
    assert out.data == chain(Value(1.0)).data
    assert abs(w.grad - depth * 0.999 ** (depth - 1)) <= 1e-9 * abs(w.grad)


def test_a_sum_of_many_terms_is_one_node_and_compiles():
    terms = 5_000
    ps = [Value(float(k % 7)) for k in range(terms)]
    compiled = graphc.compile(lambda x: sum((p * x for p in ps), Value(0.0)))
    out = compiled(2.0)
    assert out.data == 2.0 * sum(float(k % 7) for k in range(terms))
    out.backward()
    assert all(p.grad == 2.0 for p in ps[:10])
    assert compiled.graph.counts()["sum"] == 1


def test_batched_backend_on_a_deep_graph():
    w = Value(0.5)

    def chain(x):
        for _ in range(5_000):
            x = (x * w).tanh() + x
        return x
    out = graphc.compile(chain).map(np.array([0.1, -0.2]))
    assert out.shape == (2,) and np.all(np.isfinite(out))
