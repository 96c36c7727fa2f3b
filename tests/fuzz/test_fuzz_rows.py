"""Batch recovery against the scalar program: random micrograd-style full-batch losses.

A full-batch loss written as micrograd's demo writes it -- a model over every row, one
loss per row, their sum times ``1/n`` or divided by ``n``, an L2 term after or before it,
sometimes the accuracy as a second output, or another row sum, the one differentiated,
sometimes with every row's score or loss (or every third score) returned too (and one of
them differentiated after the loss, its gradient added onto the loss's) -- runs as one per-row program over the rows (graphc.rows_program) on the batched backends.
Each example draws the shapes that program is made of: a layer of one neuron, a row
count that leaves rows to the one-row loop after the blocks of ``GC_B``, data with signed
zeros, repeated rows and numbers, captured data and data passed in as arguments (each
number wrapped in a Value or not).  The rule: for two training steps (loss, ``zero_grad``, ``backward``,
SGD), the outputs and every param's gradient are the Python backend's scalar program's
bits; NumPy only where no op with NumPy's own SIMD rounding is drawn (tanh, and pow on
CPUs with AVX-512).  The C kernels write the per-row gradients through tables of rows
(graphc.codegen.c_writer), which these shapes exercise; ``make fuzz`` draws GRAPHC_FUZZ
times as many.
"""
from __future__ import annotations

import functools
import random
from unittest import mock

import numpy as np
import pytest
from hypothesis import example, given, strategies as st

import graphc
from graphc import Value
from graphc.compile import BACKENDS
from graphc import backends, signature
from graphc.nn import MLP
from graphc.rows_program import rows_program
from conftest import numpy_pow_is_libm
from fuzzing import examples

#: The losses read captured NumPy data, as micrograd's demo does: frozen, and said so.
pytestmark = pytest.mark.filterwarnings("ignore::graphc.FrozenDataWarning")
#: The default too: C's row kernels with its scalar calls in Python (where no C compiler is found,
#: it is NumPy, held to NumPy's exceptions below).
BATCHED = [b for b in BACKENDS if b != "python"] + [backends.DEFAULT]


@st.composite
def full_batch_losses(draw):
    return {
        "nin": draw(st.integers(1, 3)),
        "sizes": draw(st.lists(st.integers(1, 6), min_size=0, max_size=2)) + [1],
        "activation": draw(st.sampled_from(["relu", "tanh", "identity"])),
        "rows": draw(st.integers(4, 21)),
        "loss": draw(st.sampled_from(["svm", "square"])),
        "l2": draw(st.sampled_from([None, "after", "before"])),
        "mean": draw(st.sampled_from(["mul", "div"])),
        "accuracy": draw(st.booleans()),
        "second": draw(st.booleans()),
        "passed": draw(st.booleans()),
        "zeros": draw(st.booleans()),
        "repeats": draw(st.booleans()),
        "returned": draw(st.sampled_from([None, "scores", "losses", "some scores"])),  # rows', with the result
        "row_backward": draw(st.one_of(st.none(), st.integers(0, 20))),  # and backward() of one of them
        "seed": draw(st.integers(0, 2**16)),
    }


def _data(case):
    rng = np.random.default_rng(case["seed"])
    X = rng.standard_normal((case["rows"], case["nin"]))
    if case["zeros"]:
        X[rng.random(X.shape) < 0.3] = -0.0
        X[rng.random(X.shape) < 0.2] = 0.0
    y = np.where(rng.random(case["rows"]) > 0.5, 1.0, -1.0)
    if case.get("repeats"):  # rows, and single numbers, read again further on
        X[rng.integers(0, len(X), len(X) // 2)] = X[rng.integers(0, len(X), len(X) // 2)]
        X[rng.integers(0, len(X)), 0] = X[0, 0]
    return X, y


def _loss(case, model):
    def loss(X, y):
        rows = [list(map(Value, row)) for row in X] if not case["passed"] or case.get("repeats") else X
        scores = [model(row) for row in rows]
        if case["loss"] == "svm":
            losses = [(1 + -yi * s).relu() for yi, s in zip(y, scores)]
        else:
            losses = [(s - yi) ** 2 for yi, s in zip(y, scores)]
        result = _result(case, model, y, scores, losses)
        if case.get("returned"):
            return result, {"scores": scores, "losses": losses, "some scores": scores[1::3]}[case["returned"]]
        return result
    return loss


def _result(case, model, y, scores, losses):
    data_loss = sum(losses) * (1.0 / len(losses)) if case["mean"] == "mul" else sum(losses) / len(losses)
    total = data_loss
    if case["l2"]:
        reg = 1e-3 * sum(p * p for p in model.parameters())
        total = data_loss + reg if case["l2"] == "after" else reg + data_loss
    if case.get("second"):  # another row sum, the one differentiated
        return total, sum(s.relu() * yi for yi, s in zip(y, scores)) * (1.0 / len(scores))
    if not case["accuracy"]:
        return total
    hits = [(yi > 0) == (s.data > 0) for yi, s in zip(y, scores)]
    return total, sum(hits) / len(hits)


def _train(case, backend):
    """Two steps: (outputs, gradients) as hex strings, and whether the rows path ran."""
    random.seed(case["seed"])
    model = MLP(case["nin"], case["sizes"], activation=case["activation"])
    X, y = _data(case)
    loss = _loss(case, model)
    compiled = graphc.compile(loss if case["passed"] else (lambda: loss(X, y)), backend=backend)
    history = []
    for step in range(2):
        out = compiled(X, y) if case["passed"] else compiled()
        out, returned = out if case.get("returned") else (out, [])
        total, extra = (out[::-1] if case.get("second") else out if case["accuracy"] else (out, None))
        model.zero_grad()
        total.backward()
        if returned and case.get("row_backward") is not None:  # onto the loss's gradients, as eager adds
            returned[case["row_backward"] % len(returned)].backward()
        history.append((total.data.hex(), repr(extra), [float(p.grad).hex() for p in model.parameters()],
                        [r.data.hex() for r in returned]))
        for p in model.parameters():
            p.data -= (0.5 - 0.2 * step) * p.grad
    return history, compiled._latest.rows is not None


@pytest.mark.parametrize("backend", BATCHED)
@given(case=full_batch_losses())
@example(case={"nin": 3, "sizes": [1], "activation": "relu", "rows": 21, "loss": "square", "l2": "after",
               "mean": "mul", "accuracy": False, "passed": False, "zeros": False, "seed": 949})  # pow(s, 2) is not s*s
@examples(8)
def test_full_batch_losses_on_the_rows_path_equal_the_scalar_program(backend, case):
    runs = backends.choose_auto() if backend == backends.DEFAULT else backend  # the default: C, or NumPy
    if runs == "numpy" and case["activation"] == "tanh":
        case["activation"] = "relu"  # NumPy's tanh is its own, a few ulps from libm's
    if runs == "numpy" and case["loss"] == "square" and not numpy_pow_is_libm():
        case["loss"] = "svm"  # so is its pow on CPUs with AVX-512
    # rows are sought in graphs of any size (compile skips those under MIN_NODES traced nodes)
    with mock.patch.object(signature, "rows_program", functools.partial(rows_program, min_nodes=0)):
        got, on_rows = _train(case, backend)
    want, _ = _train(case, "python")
    assert got == want
    if case["loss"] == "svm":
        assert on_rows  # the demo's own shape must run as rows: repeated data, an L2 term first and all
