"""The moons demo reproduces micrograd's own numbers (tests/data/micrograd_moons.json).

The recorded losses come from running micrograd 0.1.0 itself
(tests/data/record_micrograd_moons.py) with one change that makes it reproducible:
children kept in operand order instead of a set.  Stock micrograd differs from itself in
the last bit from step 1 on, because a set iterates in address order.
"""
from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest

from graphc.codegen.c import find_compiler
from graphc.demo import make_moons

RECORD = json.loads((Path(__file__).parent / "data" / "micrograd_moons.json").read_text())
MICROGRAD_LOSSES = [float.fromhex(r["loss"]) for r in RECORD["steps"]]
MICROGRAD_ACCURACY = [r["accuracy"] for r in RECORD["steps"]]


def test_eager_demo_reproduces_micrograd_bit_for_bit(moons):
    X, y, model = moons.make_data()
    gc.collect()
    gc.freeze()  # 100 eager steps allocate ~7M objects; don't rescan the test session's heap
    try:
        history = moons.train(model, X, y, steps=100, log=lambda line: None)
    finally:
        gc.unfreeze()
    assert [loss for loss, _ in history] == MICROGRAD_LOSSES
    assert [acc for _, acc in history] == MICROGRAD_ACCURACY
    assert history[-1][1] == 1.0


def test_compiled_demo_reproduces_micrograd_with_one_trace(moons):
    X, y, model = moons.make_data()
    lines = []
    history = moons.train_compiled(model, X, y, steps=100, log=lines.append)
    assert lines[0].startswith("compiled (python): ")  # straight-line Python, as --python says (an outside hunt)
    losses = [loss for loss, _ in history]
    assert max(abs(a - b) / abs(b) for a, b in zip(losses, MICROGRAD_LOSSES)) <= 1e-9
    assert losses == MICROGRAD_LOSSES  # in fact bit for bit: same rules, same order
    assert [acc for _, acc in history] == MICROGRAD_ACCURACY


def test_batched_demo_matches_micrograd_within_1e9(moons):
    X, y, model = moons.make_data()
    history = moons.train_batched(model, X, y, steps=100, log=lambda line: None)
    losses = [loss for loss, _ in history]
    assert max(abs(a - b) / abs(b) for a, b in zip(losses, MICROGRAD_LOSSES)) <= 1e-9
    if find_compiler():  # C, the default: + * and relu alone, in row order (README: 1e-14, the final loss the same)
        assert max(abs(a - b) / abs(b) for a, b in zip(losses, MICROGRAD_LOSSES)) <= 2e-14
        assert losses[-1] == MICROGRAD_LOSSES[-1]
    assert [acc for _, acc in history] == MICROGRAD_ACCURACY


def test_the_demos_own_make_moons_is_scikit_learns():
    """graphc.demo draws the moons itself (no scikit-learn in an installed graphc's demo)."""
    datasets = pytest.importorskip("sklearn.datasets")
    for n, noise, seed in [(100, 0.1, 1337), (7, 0.3, 0), (1000, 0.2, 5)]:
        np.random.seed(seed)
        expected = datasets.make_moons(n_samples=n, noise=noise)
        np.random.seed(seed)
        got = make_moons(n, noise)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
