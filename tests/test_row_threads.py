"""threads=: the rows split across threads, the partial sums combined in a fixed order."""
from __future__ import annotations

import os
import random
import signal
import threading
import time

import numpy as np
import pytest

import graphc
from graphc import ArgumentError, Value
from graphc.codegen.c import find_compiler
from graphc.nn import MLP
from graphc.row_threads import check_threads, slices

BACKENDS = ["numpy", "python"] + (["c"] if find_compiler() else [])


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, [2]])
def test_threads_must_be_a_positive_int(bad):
    with pytest.raises(ArgumentError, match="threads must be a positive int"):
        check_threads(bad)
    with pytest.raises(ArgumentError, match="threads must be a positive int"):
        graphc.compile(lambda x: x * 2.0).mean_and_grad(np.ones(3), threads=bad)


def test_threads_none_is_one():
    assert check_threads(None) == 1 and check_threads(np.int64(3)) == 3


@pytest.mark.parametrize("n", range(0, 13))
@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_slices_cover_the_rows_in_order_in_near_equal_parts(n, threads):
    parts = slices(n, threads)
    assert parts[0].start == 0 and parts[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
    assert len(parts) == max(1, min(threads, n))
    sizes = [s.stop - s.start for s in parts]
    assert max(sizes) - min(sizes) <= 1


def model_loss(seed: int = 0):
    random.seed(seed)
    model = MLP(2, [8, 8, 1])
    return model, (lambda x, yi: (1 + -yi * model(x)).relu())


def data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("threads", [2, 3, 7])
def test_map_in_threads_gives_one_threads_numbers(backend, threads):
    _, loss = model_loss()
    step = graphc.compile(loss, backend=backend)
    X, y = data(101)
    assert step.map(X, y, threads=threads).tolist() == step.map(X, y).tolist()
    assert step.map(X[:0], y[:0], threads=threads).shape == (0,)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "python"])
def test_map_in_threads_in_fast_mode(backend):
    """numerics="fast": a slice's rows may round otherwise than the whole batch's (NumPy's
    layers are BLAS products over a call's rows, whose method depends on their count; C's
    blocks of rows and one-row loop are contracted apart; an adversarial tester found 1 ulp
    at 2 rows): deterministic for a given count, within fast mode's budget."""
    random.seed(3)
    model = MLP(3, [5, 4, 1])
    step = graphc.compile(lambda x, y: (model(x) - y) ** 2 + model(x).tanh(), backend=backend, numerics="fast")
    for n in (2, 17, 101):
        rng = np.random.default_rng(n)
        X, y = rng.normal(size=(n, 3)), rng.normal(size=n)
        one = step.map(X, y)
        for threads in (2, 3, 8):
            split = step.map(X, y, threads=threads)
            assert step.map(X, y, threads=threads).tolist() == split.tolist()
            assert np.max(np.abs(split - one)) <= 5 * 2.0 ** -52 * np.max(np.abs(one))


@pytest.mark.parametrize("backend", BACKENDS)
def test_mean_and_grad_in_threads_keeps_the_mean_and_is_deterministic(backend):
    _, loss = model_loss()
    step = graphc.compile(loss, backend=backend)
    X, y = data(257)
    value, grads = step.mean_and_grad(X, y)
    for threads in (2, 4):
        v, g = step.mean_and_grad(X, y, threads=threads)
        assert v == value  # each row's value is one thread's, and the mean adds them in order
        assert step.mean_and_grad(X, y, threads=threads)[1].tolist() == g.tolist()
        np.testing.assert_allclose(g, grads, rtol=1e-12, atol=1e-15)  # reassociated, no more


@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_sums_are_added_in_slice_order_and_none_is_lost(backend):
    """Integer gradients over 8 rows (1/8 exact): any order gives the same bits, so a slice
    dropped or added twice would show; out= receives the result."""
    w, b = Value(0.5), Value(0.25)
    step = graphc.compile(lambda x: w * x + b, backend=backend)
    X = np.arange(1.0, 9.0)
    want = step.mean_and_grad(X)
    out = np.empty(2)
    for threads in (2, 3, 8, 20):
        got = step.mean_and_grad(X, threads=threads, out=out)
        assert got[0] == want[0] and got[1] is out and out.tolist() == want[1].tolist() == [4.5, 1.0]


def test_mean_in_threads_backpropagates_the_combined_gradient():
    model, loss = model_loss(1)
    step = graphc.compile(loss, backend=BACKENDS[-1])
    X, y = data(64, 1)
    value, grads = step.mean_and_grad(X, y, threads=2)
    model.zero_grad()
    mean = step.mean(X, y, threads=2)
    mean.backward()
    assert mean.data == value and [p.grad for p in step.params] == grads.tolist()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_runs_threads_of_its_own():
    """The parent's pool has no threads in a child (multiprocessing's fork workers): the
    child's call hung waiting for them."""
    _, loss = model_loss()
    step = graphc.compile(loss, backend="numpy")
    X, y = data(64)
    expected = step.mean_and_grad(X, y, threads=2)  # the parent's pool starts
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its answer, or nothing if it hangs (the alarm ends it)
        signal.alarm(20)
        value, grads = step.mean_and_grad(X, y, threads=2)
        os.write(write, repr((value, grads.tolist())).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        got = answer.read()
    os.waitpid(pid, 0)
    assert got == repr((expected[0], expected[1].tolist()))


def test_one_pool_serves_every_thread_count():
    _, loss = model_loss()
    step = graphc.compile(loss, backend="numpy")
    X, y = data(64)
    for threads in range(2, 12):
        step.mean_and_grad(X, y, threads=threads)
    time.sleep(0.2)  # the replaced pools' threads end once idle
    assert sum(t.name.startswith("graphc-rows") for t in threading.enumerate()) <= 10
