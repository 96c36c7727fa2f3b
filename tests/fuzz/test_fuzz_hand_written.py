"""Layers written out by hand (hand_written.py) on C and NumPy, bit for bit against the Python backend.

The Python backend runs the scalar program row by row, eager's bits.  C must give them for
every program and batch: loss and every gradient.  NumPy must give them on one row of a
program without ``tanh`` (its ``tanh`` is NumPy's own, and it sums the rows' gradients
pairwise: README, "Exactness"), nor a square where its ``pow`` is its own too (AVX-512).
``make asan`` runs the C test with AddressSanitizer.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import graphc
from graphc import Value
from graphc.codegen.c import find_compiler
from fuzzing import examples, same
from hand_written import NUMBERS, hand_written_loss, hand_written_programs, n_params


def _rows(data, n_inputs: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    X = [[data.draw(NUMBERS, label="x") for _ in range(n_inputs)] for _ in range(n)]
    Y = [data.draw(st.sampled_from([1.0, -1.0, 0.5, -0.3]), label="y") for _ in range(n)]
    return np.array(X), np.array(Y)


def _assert_eagers_bits(spec: dict, data, backend: str, n_rows: int) -> None:
    params = [Value(data.draw(NUMBERS, label="param")) for _ in range(n_params(spec))]
    fn = hand_written_loss(spec, params)
    X, Y = _rows(data, len(spec["inputs"]), n_rows)
    want = graphc.compile(fn, backend="python").mean_and_grad(X, Y)
    got = graphc.compile(fn, backend=backend).mean_and_grad(X, Y)
    assert same(got[0], want[0]), (got[0], want[0])
    off = [(k, g, w) for k, (g, w) in enumerate(zip(got[1].tolist(), want[1].tolist())) if not same(g, w)]
    assert not off, off


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
@examples(30)
@given(spec=hand_written_programs(), data=st.data())
def test_hand_written_layers_on_c_are_eagers_bits(spec, data):
    _assert_eagers_bits(spec, data, "c", data.draw(st.integers(1, 4), label="rows"))


@examples(60)
@given(spec=hand_written_programs(smooth=True), data=st.data())
def test_hand_written_layers_on_numpy_are_eagers_bits_on_a_row(spec, data):
    _assert_eagers_bits(spec, data, "numpy", 1)


@st.composite
def masked_layers(draw) -> tuple[list[tuple[int, ...]], int, str]:
    """A hidden layer of 2-4 units and 1-6 output neurons, each reading one of 1-3 subsets of
    the units, in order (neurons reading the same subset share one pack, re-rolled), biases
    first as ``sum(products, b)`` writes them, the outputs summed into a squared error."""
    width = draw(st.integers(2, 4), label="hidden")
    pool = [tuple(sorted(draw(st.sets(st.integers(0, width - 1), min_size=1), label="subset")))
            for _ in range(draw(st.integers(1, 3), label="subsets"))]
    subsets = [draw(st.sampled_from(pool), label="reads") for _ in range(draw(st.integers(1, 6), label="outputs"))]
    return subsets, width, draw(st.sampled_from(["relu", "tanh", "none"]), label="activation")


def _masked_loss(subsets, width, activation, params):
    hidden = iter(params[:3 * width])
    W1 = [(next(hidden), next(hidden), next(hidden)) for _ in range(width)]
    rest = iter(params[3 * width:])
    W2 = [([next(rest) for _ in subset], next(rest)) for subset in subsets]

    def f(x, y):
        h = [sum((w * xi for w, xi in zip(ws[:2], x)), ws[2]) for ws in W1]
        h = h if activation == "none" else [getattr(v, activation)() for v in h]
        o = [sum((w * h[j] for w, j in zip(ws, subset)), b) for (ws, b), subset in zip(W2, subsets)]
        d = sum(o) - y
        return d * d
    return f


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
@examples(40)
@given(layers=masked_layers(), data=st.data())
def test_neurons_reading_subsets_of_a_layer_on_c_are_eagers_bits(layers, data):
    """An outside hunt's shape: two neurons reading one pack of a layer's lanes around a third
    reading an overlapping one gave the shared lanes' gradients 1 ulp off (reverse mode
    added the pack's parts after the third's); and, found by this test, two neighbours
    reading one subset between neurons reading the whole layer (re-rolled into a layer of
    their own, whose gradient totalled the two rows' parts before adding the first's: rule 5
    now starts it from the parts before, a whole layer's or one lane's)."""
    subsets, width, activation = layers
    params = [Value(data.draw(NUMBERS, label="param")) for _ in range(3 * width + sum(len(s) + 1 for s in subsets))]
    fn = _masked_loss(subsets, width, activation, params)
    X, Y = _rows(data, 2, data.draw(st.integers(1, 3), label="rows"))
    want = graphc.compile(fn, backend="python").mean_and_grad(X, Y)
    got = graphc.compile(fn, backend="c").mean_and_grad(X, Y)
    assert same(got[0], want[0]), (got[0], want[0])
    off = [(k, g, w) for k, (g, w) in enumerate(zip(got[1].tolist(), want[1].tolist())) if not same(g, w)]
    assert not off, off
