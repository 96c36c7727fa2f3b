"""graphc.codegen.c_heap: a generated function's largest arrays on the heap, and many as slices of one."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest

import graphc
from graphc import Value
from graphc.codegen.c import find_compiler
from graphc.codegen import c_heap
from graphc.codegen.c_heap import STACK_BYTES, on_the_heap, pooled
from conftest import run_in_threads


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_a_layer_too_wide_for_the_stack_keeps_its_arrays_on_the_heap():
    """An outside hunt: a Neuron over 10^5 inputs declared its blocks of rows as arrays on the
    stack (10^5 * GC_B doubles, beyond Python's 8 MB), and the interpreter died of SIGSEGV.
    Here 40,000 inputs (2.5 MB a block at least) run in a thread of a 2 MB stack."""
    n = 40_000
    random.seed(1)
    model = graphc.nn.Neuron(n, nonlin=False)
    X = np.random.default_rng(0).normal(size=(2, n))
    y = np.array([0.5, -1.0])
    forward = graphc.compile(model, backend="c")
    loss = graphc.compile(lambda x, t: (model(x) - t) ** 2, backend="c")
    got = {}

    def calls():
        got["map"], got["mean_and_grad"] = forward.map(X), loss.mean_and_grad(X, y)
    previous = threading.stack_size(2 << 20)
    try:
        run_in_threads(calls, 1)
    finally:
        threading.stack_size(previous)
    assert got["map"].tolist() == [model(row).data for row in X.tolist()]
    want = graphc.compile(lambda x, t: (model(x) - t) ** 2, backend="numpy").mean_and_grad(X, y)
    assert got["mean_and_grad"][0] == want[0] and np.allclose(got["mean_and_grad"][1], want[1], rtol=1e-13, atol=0)


def test_arrays_move_to_the_heap_largest_first_until_the_rest_fit_the_stack():
    small = ["{", "    double a[10];", "    double b[20 * GC_B];", "}"]
    assert on_the_heap(small) == (small, "")
    big = STACK_BYTES // 8
    body = ["{", f"    double a[{big}];", "    double b[8];", "    for (;;) { ", f"        double c[{big // 16} * GC_B];",
            "    }", f"    double d[{big // 2}];", "}"]
    moved, helper = on_the_heap(body)
    assert "gc_heap_block" in helper and moved[1] == f"    double *gc_heap = gc_heap_block({big} + {big // 16} * GC_B);"
    assert moved[2] == "    double *a = gc_heap + 0;  /* on the heap: too large for the stack */"
    assert moved[5] == f"        double *c = gc_heap + {big};  /* on the heap: too large for the stack */"
    assert moved[7] == f"    double d[{big // 2}];" and moved[-2:] == ["    free(gc_heap);", "}"]


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_labels_spelled_like_the_heap_blocks_names_stay_apart():
    """The block's pointer, its helper and the functions it declares are reserved names."""
    n = 70_000
    weights = [Value(0.5, label=["gc_heap", "free", "malloc", "block"][k % 4]) for k in range(n)]
    X = np.ones((3, n))
    got = graphc.compile(lambda x: sum(w * v for w, v in zip(weights, x)), backend="c").map(X)
    assert got.tolist() == [sum(0.5 for _ in range(n))] * 3


def test_a_function_of_many_arrays_declares_them_as_slices_of_one(monkeypatch):
    body = ["{", "    double a[10];", "    for (;;) {", "        double b[3 * GC_B];", "        double c[GC_B];", "    }",
            "    double d[4] = {1, 2, 3, 4};", "}"]
    assert pooled(body) == body  # three arrays: declared one by one
    monkeypatch.setattr(c_heap, "MAX_ARRAYS", 2)
    assert pooled(body) == [
        "{", "    double gc_arrays[10 + 4 * GC_B];  /* 3 arrays: one for gcc */",
        "    double *const a = gc_arrays + 0 + 0 * GC_B;", "    for (;;) {",
        "        double *const b = gc_arrays + 10 + 0 * GC_B;", "        double *const c = gc_arrays + 10 + 3 * GC_B;",
        "    }", "    double d[4] = {1, 2, 3, 4};", "}"]


def _moons_programs(X, y):
    random.seed(4)
    model = graphc.nn.MLP(2, [16, 16, 1])
    loss = graphc.compile(lambda x, t: (1 + -t * model(x)).relu() + (model(x) - t) * (model(x) - t), backend="c")
    forward = graphc.compile(model, backend="c")
    value, grads = loss.mean_and_grad(X, y)
    return value, grads.tolist(), forward.map(X).tolist(), loss.source


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_arrays_as_slices_of_one_compute_the_same_bits(monkeypatch, tmp_path):
    """Every array of the moons programs a slice of one (blocks of rows, the row left over, the
    gradient's sums): the same numbers as the arrays declared one by one."""
    X = np.random.default_rng(5).standard_normal((37, 2))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    want = _moons_programs(X, y)
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(c_heap, "MAX_ARRAYS", 0)
    got = _moons_programs(X, y)
    assert "gc_arrays" in got[3] and "gc_arrays" not in want[3]
    assert got[:3] == want[:3]


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_a_network_of_many_layers_builds_one_array_and_keeps_the_scalar_programs_bits():
    """``MLP(2, [4] * 300 + [1])``: 1,800 arrays, gcc's time growing with their square (an
    outside hunt: 248 s to build 2,000 layers); now one, and the Python backend's bits (linear
    layers: relu's would leave one gradient that is not 0)."""
    random.seed(2)
    model = graphc.nn.MLP(2, [4] * 300 + [1], activation="identity")
    X = np.random.default_rng(2).standard_normal((20, 2))
    y = np.ones(20)
    got, want = (graphc.compile(lambda x, t: (model(x) - t) * (model(x) - t), backend=b) for b in ("c", "python"))
    value, grads = got.mean_and_grad(X, y)
    assert "gc_arrays" in got.source and np.count_nonzero(grads) == grads.size
    assert (value, grads.tolist()) == (lambda v, g: (v, g.tolist()))(*want.mean_and_grad(X, y))
