"""The moons demo reproduces micrograd's own numbers (tests/data/micrograd_moons.json).

The recorded losses come from running micrograd 0.1.0 itself
(tests/data/record_micrograd_moons.py) with one change that makes it reproducible:
children kept in operand order instead of a set.  Stock micrograd differs from itself in
the last bit from step 1 on, because a set iterates in address order.
"""
from __future__ import annotations

import json
from pathlib import Path

RECORD = json.loads((Path(__file__).parent / "data" / "micrograd_moons.json").read_text())
MICROGRAD_LOSSES = [float.fromhex(r["loss"]) for r in RECORD["steps"]]
MICROGRAD_ACCURACY = [r["accuracy"] for r in RECORD["steps"]]


def test_eager_demo_reproduces_micrograd_bit_for_bit(moons):
    X, y, model = moons.make_data()
    history = moons.train(model, X, y, steps=100, log=lambda line: None)
    assert [loss for loss, _ in history] == MICROGRAD_LOSSES
    assert [acc for _, acc in history] == MICROGRAD_ACCURACY
    assert history[-1][1] == 1.0
