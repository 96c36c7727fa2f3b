"""Record micrograd's own moons-demo losses, the oracle for tests/test_demo.py.

Run with micrograd installed (`pip install micrograd==0.1.0`):

    python tests/data/record_micrograd_moons.py > tests/data/micrograd_moons.json

micrograd keeps a node's children in a ``set``, so the order in which backward()
accumulates gradient contributions follows object ids and changes from run to run:
two runs of the stock demo differ in the last bit from step 1 on.  To get a
reproducible oracle we run micrograd's own code with one change: ``_prev`` becomes
an insertion-ordered set (``dict.fromkeys``), i.e. children in operand order.  That
is the order graphc uses, so graphc must reproduce these numbers bit for bit.
"""
import json
import random
import sys

import numpy as np
from sklearn.datasets import make_moons

import micrograd
from micrograd import engine
from micrograd.nn import MLP

_stock_init = engine.Value.__init__


def _ordered_init(self, data, _children=(), _op=""):
    _stock_init(self, data, _children, _op)
    self._prev = dict.fromkeys(_children)


def main(steps: int = 100) -> None:
    engine.Value.__init__ = _ordered_init
    Value = engine.Value
    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    model = MLP(2, [16, 16, 1])
    records = []
    for k in range(steps):
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * sum((p * p for p in model.parameters()))
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        records.append({"step": k, "loss": float(total_loss.data).hex(),
                        "accuracy": sum(accuracy) / len(accuracy)})
        print(k, float(total_loss.data), file=sys.stderr)
    json.dump({"source": "micrograd %s (PyPI), children in operand order" % getattr(micrograd, "__version__", "0.1.0"),
               "command": "python tests/data/record_micrograd_moons.py",
               "steps": records}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
