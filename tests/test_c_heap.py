"""graphc.codegen.c_heap: a generated function's largest arrays on the heap."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest

import graphc
from graphc import Value
from graphc.codegen.c import find_compiler
from graphc.codegen.c_heap import STACK_BYTES, on_the_heap
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
