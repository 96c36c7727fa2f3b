"""The C prelude's one-row layer helpers (graphc/codegen/c_runtime.py: outputs side by side
in vector lanes) and the first-row writes of large sums (c_sums.FIRST_WRITES):
bit for bit the Python backend's row loop, at a batch of one above all.

Layer widths on both sides of GC_V (8 with AVX-512, else 4) and of a pass of four vectors
(16 or 32 outputs) exercise the overlapping last vector; gradient matrices of 256 lanes
or more the first-row writes, with 0 rows (the sums still zeroed), fewer rows than a block
(every row in the one-row loop) and more (blocks first).
"""
from __future__ import annotations

import random

import numpy as np
import pytest

import graphc
from graphc.codegen import c as c_backend, c_sums, c_writer
from graphc.losses import softmax_cross_entropy
from graphc.nn import MLP
from graphc.optim import SGD, Adam
from test_c_blocks import assert_bits, assert_the_row_loops_bits, data, pair, squared

pytestmark = pytest.mark.skipif(c_backend.find_compiler() is None, reason="no C compiler")

#: (inputs, layer widths): 1 output; widths 2, 5, 7, 9, 17, 31, 33 not a multiple of GC_V; 32
#: a whole pass; 50 and 97 a pass of twelve vectors (48 or 96 outputs) and the rest; gradients
#: of 300 lanes (one neuron's weights, not an outer product) and matrices of 260 (2 columns,
#: fewer than a vector), 288, 561, 1240 and 1023 lanes.
SHAPES = [(300, [1]), (130, [2, 1]), (9, [32, 4]), (33, [17, 9, 1]), (40, [31, 33, 7]), (3, [5, 7]),
          (4, [50, 97, 3])]
ROWS = (1, 2, 3, 7, 9, 17)


def softmax(model):
    return lambda x, t: softmax_cross_entropy(model(x), t)


def one_hot(rows: int, classes: int, seed: int) -> np.ndarray:
    return np.eye(classes)[np.random.default_rng(seed).integers(0, classes, rows)]


@pytest.mark.parametrize("nin, layers", SHAPES)
def test_one_row_and_few_rows_give_the_python_backends_bits(nin, layers):
    fast = assert_the_row_loops_bits(nin, layers, ROWS)
    if any(nin * width >= c_sums.FIRST_WRITES for width in layers[:1]):
        assert "if (fresh && r == 0) " in fast.source


@pytest.mark.parametrize("nin, layers", SHAPES[:3])
def test_a_first_row_writes_plus_zero_where_its_gradient_is_minus_zero(nin, layers):
    """Inputs of 0.0 and -0.0 make gradients of -0.0 (x * g, g < 0): a sum from +0.0 holds
    +0.0 there, and so does a sum the first row wrote (``0.0 + value``)."""
    fast, slow, model = pair(nin, layers, squared)
    params = np.array([p.data for p in model.parameters()])
    X, y = data(6, nin, 9)
    X[:, ::2], X[:, 1::4] = 0.0, -0.0
    for row in range(6):
        (a, ga), (b, gb) = (c.mean_and_grad(X[row:row + 1], y[row:row + 1], params=params) for c in (fast, slow))
        assert_bits(ga, gb)
        assert (ga == 0).any()


@pytest.mark.parametrize("nin, layers", SHAPES[2:5])
def test_softmax_cross_entropy_at_a_batch_of_one(nin, layers):
    fast, slow, model = pair(nin, layers, softmax)
    params = np.array([p.data for p in model.parameters()])
    X, T = data(3, nin, 5)[0], one_hot(3, layers[-1], 5)
    for row in range(3):
        (a, ga), (b, gb) = (c.mean_and_grad(X[row:row + 1], T[row:row + 1], params=params) for c in (fast, slow))
        assert_bits([a], [b])
        assert_bits(ga, gb)


def test_zero_rows_after_one_leave_zeros_in_the_callers_array():
    """A call of no rows zeroes the large sums (no first row writes them), also in an
    ``out=`` array a call of one row filled."""
    fast, _, model = pair(33, [17, 9, 1], squared)
    X, y = data(1, 33, 4)
    fast.mean_and_grad(X, y)
    program = fast._latest.batched_program("mean")
    params = np.array([p.data for p in fast.params])
    out = np.full(len(params), np.nan)
    _, sums = program.function(np.vstack([X.T, y[None]]), params, 1.0, 1, out=out)
    assert sums is out and np.isfinite(out).all() and out.any()
    _, sums = program.function(np.empty((X.shape[1] + 1, 0)), params, 1.0, 0, out=out)
    assert sums is out and out.tobytes() == np.zeros(len(params)).tobytes()


def test_without_blocks_the_first_row_of_many_writes_the_sums(monkeypatch):
    """A row body too long for a blocked copy: the one-row loop takes every row of every
    call, its first row writing the large sums, the others adding to them."""
    monkeypatch.setattr(c_writer, "BLOCK_LIMIT", -1)
    fast, slow, model = pair(40, [31, 33, 7], squared)
    params = np.array([p.data for p in model.parameters()])
    for rows in (1, 2, 9, 17):
        X, y = data(rows, 40, rows)
        (a, ga), (b, gb) = fast.mean_and_grad(X, y, params=params), slow.mean_and_grad(X, y, params=params)
        assert_bits([a], [b])
        assert_bits(ga, gb)
    assert "GC_B rows at a time" not in fast.source and "const int fresh = n > 0;" in fast.source


OPTIMIZERS = {"lr": None, "sgd": lambda ps: SGD(ps, lr=0.03), "momentum": lambda ps: SGD(ps, lr=0.03, momentum=0.9),
              "adam": lambda ps: Adam(ps, lr=0.01)}


@pytest.mark.parametrize("kind, batch_size", [(kind, 1) for kind in OPTIMIZERS] + [("lr", 3), ("sgd", 9)])
@pytest.mark.parametrize("nin, layers", [(33, [17, 9, 3]), (130, [2, 3]), (300, [2])])
def test_train_at_a_batch_of_one_takes_the_python_backends_steps(kind, batch_size, nin, layers):
    """With lr or plain SGD the kernel takes each step of one row itself (c_sums.py): the
    blocks of 256 lanes or more in the row, the other params after it; not a step of more
    rows (the first row of 3 writes the sums, of 9 a block adds to zeros)."""
    results = []
    for backend in ("c", "python"):
        random.seed(3)
        model = MLP(nin, layers)
        step = graphc.compile(softmax(model), backend=backend)
        X, T = data(19, nin, 8)[0], one_hot(19, layers[-1], 8)
        X[::2, ::3] = 0.0  # gradients of -0.0
        make = OPTIMIZERS[kind]
        settings = dict(lr=0.05) if make is None else dict(optimizer=make(model.parameters()))
        losses = step.train(X, T, batch_size=batch_size, epochs=2, shuffle=np.random.default_rng(1), **settings)
        results.append((losses, [p.data for p in model.parameters()], step.source))
    assert_bits(results[0][0], results[1][0])
    assert_bits(results[0][1], results[1][1])
    assert "gc_outer_step(" in results[0][2] or nin == 300


def test_a_gradient_of_a_param_vector_reads_it_as_it_was_before_the_step():
    """The weights of a layer whose input is a param vector: their gradient, an outer
    product of that vector, reads it after the vector's own gradient (260 lanes) was
    stepped in the row -- into the next params, so it reads the vector of before."""
    random.seed(11)
    p = [graphc.Value(random.uniform(-1, 1)) for _ in range(260)]
    V = [[graphc.Value(random.uniform(-1, 1)) for _ in range(260)] for _ in range(3)]
    leaves = p + [v for row in V for v in row]

    def loss(w, y):
        outs = [sum((vjk * pk for vjk, pk in zip(V[j], p)), y).tanh() for j in range(3)]
        return sum(o * wj for o, wj in zip(outs, w))
    results = []
    for backend in ("c", "python"):
        start = [leaf.data for leaf in leaves]
        step = graphc.compile(loss, backend=backend)
        W, y = data(5, 3, 2)
        losses = step.train(W, y, lr=0.02, batch_size=1)
        results.append((losses, [leaf.data for leaf in leaves], step.source))
        for leaf, v in zip(leaves, start):
            leaf.data = v
    assert_bits(results[0][0], results[1][0])
    assert_bits(results[0][1], results[1][1])
    assert "gc_outer_step(next_params" in results[0][2] and "next_params[0 + lane] = gc_sgd(" in results[0][2]


@pytest.mark.parametrize("cflags", ["-DGC_PORTABLE", "-mno-avx512f"])
def test_the_portable_and_four_lane_one_row_helpers_give_the_same_bits(cflags, tmp_path, monkeypatch):
    fast, slow, model = pair(40, [31, 33, 7], squared)
    params = np.array([p.data for p in model.parameters()])
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_CFLAGS", cflags)
    for rows in (1, 3, 5):
        X, y = data(rows, 40, rows)
        (a, ga), (b, gb) = fast.mean_and_grad(X, y, params=params), slow.mean_and_grad(X, y, params=params)
        assert_bits([a], [b])
        assert_bits(ga, gb)
