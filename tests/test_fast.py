"""``numerics="fast"``: BLAS in NumPy, FMA and reassociation in C, within a stated budget of exact."""
from __future__ import annotations

import random

import numpy as np
import pytest

import graphc
from graphc import Value
from graphc.codegen import c as c_backend
from graphc.codegen import c_toolchain
from graphc.errors import ArgumentError
from graphc.losses import softmax_cross_entropy
from graphc.nn import MLP

BACKENDS = ["numpy", "c"]
#: The budget of fast against exact (README, "Exactness"): per array -- all the rows' values,
#: a gradient -- the largest difference is at most (largest fan-in) * 2**-52 times the largest
#: magnitude in the exact array.  Measured worst: 0.4 of it (4.1e-15 at 784-50-10).
EPS = 2.0 ** -52


def normwise(fast: np.ndarray, exact: np.ndarray) -> float:
    """max |fast - exact| / max |exact|: the error relative to the array's scale."""
    return float(np.max(np.abs(fast - exact)) / np.max(np.abs(exact)))


def skip_without_a_compiler(backend: str) -> None:
    if backend == "c" and c_backend.find_compiler() is None:
        pytest.skip("no C compiler")


def mlp_loss(sizes: tuple[int, list[int]], loss: str, seed: int):
    """A loss over MLP(*sizes) and data for it: softmax cross-entropy or the moons SVM loss."""
    random.seed(seed)
    model = MLP(*sizes)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(32, sizes[0]))
    if loss == "ce":
        classes = sizes[1][-1]
        return (lambda x, t: softmax_cross_entropy(model(x), t)), (X, np.eye(classes)[rng.integers(0, classes, 32)])
    return (lambda x, y: (1 + -y * model(x)).relu()), (X, np.sign(rng.normal(size=32)))


CASES = [((2, [16, 16, 1]), "svm"), ((64, [32, 10]), "ce"), ((200, [40, 1]), "svm"), ((30, [60, 60, 10]), "ce")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_is_within_its_budget_of_exact_on_mlps(backend):
    skip_without_a_compiler(backend)
    differs = False
    for sizes, loss in CASES:
        budget = max(sizes[0], *sizes[1]) * EPS
        for seed in range(2):
            fn, args = mlp_loss(sizes, loss, seed)
            exact, fast = graphc.compile(fn, backend=backend), graphc.compile(fn, backend=backend, numerics="fast")
            rows, fast_rows = exact.map(*args), fast.map(*args)
            (value, grad), (fast_value, fast_grad) = exact.mean_and_grad(*args), fast.mean_and_grad(*args)
            assert normwise(fast_rows, rows) <= budget, (sizes, seed)
            assert normwise(fast_grad, grad) <= budget, (sizes, seed)
            assert abs(fast_value - value) <= budget * abs(value)
            differs |= fast_grad.tolist() != grad.tolist() or fast_rows.tolist() != rows.tolist()
    assert differs  # fast really sums in another order: the bound is not met by equality


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_keeps_inf_and_nan(backend):
    """No -ffinite-math-only: inf and nan come out where exact gives them."""
    skip_without_a_compiler(backend)
    random.seed(0)
    model = MLP(3, [4, 2])

    def fn(x):
        return [v.tanh() + v.relu() for v in model(x)] + [x[0].exp(), x[1].log()]
    X = np.array([[1.0, 2.0, 3.0], [np.nan, 1.0, 0.0], [np.inf, -1.0, 2.0], [800.0, 0.0, -np.inf]])
    exact = graphc.compile(fn, backend=backend).map(X, allow_nonfinite=True)
    fast = graphc.compile(fn, backend=backend, numerics="fast").map(X, allow_nonfinite=True)
    for e, f in zip(exact, fast):
        assert np.isnan(e).tolist() == np.isnan(f).tolist()
        assert np.isinf(e).tolist() == np.isinf(f).tolist() and (e[np.isinf(e)] == f[np.isinf(f)]).all()
        finite = np.isfinite(e)
        assert np.allclose(e[finite], f[finite], rtol=1e-14, atol=0)


def test_fast_numpy_spells_the_layer_ops_with_blas_and_exact_does_not():
    random.seed(0)
    model = MLP(3, [4, 1])
    X = np.ones((5, 3))
    sources = {}
    for numerics in ("exact", "fast"):
        step = graphc.compile(lambda x: model(x) * 1.0, backend="numpy", numerics=numerics)
        step.mean_and_grad(X)
        sources[numerics] = step.source
    for helper in ("_vmatvec_fast(", "_vdot_fast(", "_vouter_rowsum_fast("):
        assert helper in sources["fast"] and helper not in sources["exact"]


def test_fast_leaves_the_graph_and_scalar_calls_exact():
    """The freedom is the batched code generators': the optimized graph and the scalar
    (Python) calls are exact's, bit for bit."""
    w, b = Value(0.3), Value(-0.7)

    def fn(x, y):
        return (w * x + b * y).tanh()
    exact, fast = graphc.compile(fn), graphc.compile(fn, numerics="fast")
    assert fast(1.5, 2.5).data == exact(1.5, 2.5).data
    assert str(fast.graph) == str(exact.graph)
    assert str(graphc.optimize(graphc.trace(fn, 1.0, 2.0), numerics="fast")) == str(exact.graph)


def test_numerics_must_be_one_of_the_three():
    with pytest.raises(ArgumentError, match="'exact', 'stable', 'fast'"):
        graphc.compile(lambda x: x, numerics="reckless")


def test_fast_c_flags_are_in_the_cache_key():
    if c_backend.find_compiler() is None:
        pytest.skip("no C compiler")
    assert "-ffp-contract=fast" in c_toolchain.FAST_FLAGS and "-ffp-contract=off" in c_toolchain.FLAGS
    assert not {"-ffast-math", "-ffinite-math-only", "-freciprocal-math"} & set(c_toolchain.FAST_FLAGS)
    source, *_ = c_backend.generate(graphc.optimize(graphc.trace(lambda x: x * 2.0 + 1.0, 1.0)), "f")
    assert c_toolchain.build(source) != c_toolchain.build(source, fast=True)
    assert c_toolchain.optimization_level(source) == "-O2"  # fast too: -O3 measured slower (c_toolchain)


@pytest.mark.parametrize("backend", [b for b in ("numpy", "c") if b != "c" or c_backend.find_compiler()])
def test_a_comparison_within_the_budget_of_its_threshold_may_come_out_the_other_way(backend):
    """README, "Exactness": a comparison compares fast mode's numbers exactly, so a score
    that reassociation puts under its threshold flips the flag (an outside hunt)."""
    random.seed(0)
    ws = [Value(random.uniform(-1, 1)) for _ in range(16)]
    score = lambda x: sum((wi * xi for wi, xi in zip(ws, x)), Value(0.0))  # noqa: E731
    X = np.random.default_rng(0).normal(size=(2000, 16))
    exact = graphc.compile(score, backend=backend).map(X)
    fast = graphc.compile(score, backend=backend, numerics="fast").map(X)
    under = np.flatnonzero(fast < exact)
    assert len(under) and np.allclose(fast, exact, rtol=0, atol=16 * 2 ** -52 * np.abs(exact).max())
    r, t = under[0], float(exact[under[0]])
    flag = lambda x: sum((wi * xi for wi, xi in zip(ws, x)), Value(0.0)).data >= t  # noqa: E731
    assert graphc.compile(flag, backend=backend).map(X)[r] == 1.0 == float(flag(X[r].tolist()))
    assert graphc.compile(flag, backend=backend, numerics="fast").map(X)[r] == 0.0  # X: BLAS sums one row as in fast
