"""Params into the kernel layout and gradients out of it by strided blocks: exactly what the
index table gives, for every layout, array stride and size; the table where blocks do not pay."""
from __future__ import annotations

import numpy as np
import pytest

from graphc.codegen import c_moves
from graphc.codegen.c_moves import Moves


def mlp_layout(sizes: list[int]) -> np.ndarray:
    """The kernel layout of an MLP's params (kernel position -> public slot): the first
    layer's weights and biases stored transposed (input by input, its biases last), later
    layers' weights as they are, then their biases; publicly each neuron's weights then bias."""
    perm, base = [], 0
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        neuron = base + np.arange(n_out) * (n_in + 1)
        if k == 0:
            perm += [neuron + i for i in range(n_in + 1)]
        else:
            perm += [(neuron[:, None] + np.arange(n_in)).ravel(), neuron + n_in]
        base += n_out * (n_in + 1)
    return np.concatenate(perm).astype(np.intp)


LAYOUTS = {
    "784-50-10": mlp_layout([784, 50, 10]),
    "784-100-10": mlp_layout([784, 100, 10]),
    "64-32-10": mlp_layout([64, 32, 10]),
    "2-16-16-1": mlp_layout([2, 16, 16, 1]),
    "reversed": np.arange(5000)[::-1].copy(),
    "random": np.random.default_rng(0).permutation(5000),
    "two-step rows": np.concatenate([np.arange(0, 4000, 2), np.arange(1, 4000, 2)]),
}


@pytest.mark.parametrize("name", list(LAYOUTS))
@pytest.mark.parametrize("view", ["contiguous", "read-only", "strided"])
def test_gather_and_scatter_give_what_the_index_table_gives(name, view):
    perm = LAYOUTS[name]
    assert sorted(perm.tolist()) == list(range(len(perm)))
    moves = Moves(perm)
    rng = np.random.default_rng(len(perm))
    public = rng.normal(size=len(perm))
    if view == "read-only":
        public.flags.writeable = False
    elif view == "strided":
        public = np.repeat(public, 2)[::2]
    out = np.full(len(perm), np.nan)
    moves.gather(public, out)
    assert np.array_equal(out, public[perm])
    kernel = rng.normal(size=len(perm))
    back = np.full(len(perm), np.nan) if view != "strided" else np.full(2 * len(perm), np.nan)[::2]
    moves.scatter(kernel, back)
    want = np.empty(len(perm))
    want[perm] = kernel
    assert np.array_equal(back, want)


def test_a_layers_layout_is_a_few_blocks_and_anything_else_the_table():
    assert Moves(LAYOUTS["784-50-10"]).blocks == [(0, 785, 50, 0, 1, 785), (39250, 10, 50, 39250, 51, 1),
                                                  (39750, 1, 10, 39300, 1, 51)]
    assert Moves(LAYOUTS["2-16-16-1"]).blocks is None  # 337 params: too few for blocks to pay
    assert Moves(LAYOUTS["random"]).blocks is None
    assert Moves(LAYOUTS["reversed"]).blocks is None  # a negative step
    assert Moves(LAYOUTS["two-step rows"]).blocks == [(0, 2, 2000, 0, 1, 2)]


def test_blocks_that_would_not_give_the_permutation_fall_back_to_the_table(monkeypatch):
    monkeypatch.setattr(c_moves, "_blocks", lambda perm: [(0, 1, len(perm), 0, 1, 1)])
    perm = LAYOUTS["784-50-10"]
    moves = Moves(perm)
    assert moves.blocks is None
    out = np.empty(len(perm))
    moves.gather(np.arange(len(perm), dtype=np.float64), out)
    assert np.array_equal(out, perm)
