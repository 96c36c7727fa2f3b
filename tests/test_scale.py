"""Deep and wide graphs compile and run without recursion (bench/scale.py goes to 10^6)."""
from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest

import graphc
from graphc import Value
from graphc.compile import BACKENDS


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


@pytest.fixture
def shallow_stack():
    """Python's recursion limit lowered to ~150 frames above the test: any stage of graphc
    that recursed once per level of a deep graph would raise RecursionError."""
    def recurse(n):
        return n and recurse(n - 1)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 150)
    with pytest.raises(RecursionError):  # the check can fail
        recurse(200)
    yield
    sys.setrecursionlimit(limit)


@pytest.mark.parametrize("backend", BACKENDS)
def test_deep_graphs_on_every_backend_without_recursion(backend, shallow_stack):
    """A chain 12,000 nodes deep (80 times the allowed stack): trace, optimize, autodiff,
    codegen, load, scalar call and backward, map, mean and backward on every backend --
    and eager backward, the reference."""
    w, b = Value(0.999), Value(0.001)

    def chain(x):
        for k in range(4_000):
            x = (x * w).tanh() + b if k % 2 else (x * w + b).sigmoid() * 2.0
        return x
    compiled = graphc.compile(chain, backend=backend)
    x = Value(0.3)
    out = compiled(x)
    out.backward()
    eager_x = Value(0.3)
    for p in (w, b):
        p.grad = 0
    eager = chain(eager_x)
    eager.backward()
    assert out.data == eager.data and abs(x.grad - eager_x.grad) <= 1e-9 * abs(eager_x.grad)
    X = np.array([0.3, -0.4, 1.5])
    mapped = compiled.map(X)
    assert mapped[0] == eager.data or abs(mapped[0] - eager.data) <= 1e-12 * abs(eager.data)
    for p in (w, b):
        p.grad = 0
    compiled.mean(X).backward()
    assert np.isfinite(w.grad) and np.isfinite(b.grad) and w.grad != 0
    assert compiled.trace_count == 1
