"""examples/digits.py: the second workload trains to >= 95% held-out accuracy."""
from __future__ import annotations

import math

import numpy as np

from graphc import Value
from conftest import load_example, rel_err

digits = load_example("digits")


def test_stable_cross_entropy_matches_the_formula_even_for_huge_logits():
    class Fixed:  # a "model" returning given logits
        def __init__(self, logits):
            self.logits = logits

        def __call__(self, x):
            return [Value(v) * x[0] for v in self.logits]
    for logits in ([0.1, -2.0, 3.0], [1000.0, 999.0, -1000.0]):
        loss = digits.cross_entropy(Fixed(logits))([Value(1.0)], [0.0, 1.0, 0.0])
        top = max(logits)
        expected = (top - logits[1]) + math.log(sum(math.exp(v - top) for v in logits))  # no cancellation
        assert math.isfinite(loss.data) and rel_err(loss.data, expected) <= 1e-15


def test_digits_trains_to_95_percent():
    losses, accuracy, _ = digits.train(epochs=20, log=lambda line: None)
    assert accuracy >= 0.95
    assert losses[-1] < losses[0] / 5
    assert np.all(np.isfinite(losses))
