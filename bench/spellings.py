"""micrograd code as people spell it, against graphc.nn's MLP: training step time and build.

    .venv/bin/python bench/spellings.py [--steps N] [--backends numpy,c] [--cold]

Each row is MLP(16, [32, 32, 1]) with a hinge loss, written with a Neuron of one's own as the
lecture writes it, but for one spelling: the neuron's sum (``sum(..., b)`` as micrograd's,
``sum(...) + b``, ``b + sum(...)``, the loop ``act += wi * xi``) or its activation
(``.relu()``, the lecture's tanh ``(e - 1) / (e + 1)``, ``1 / (1 + (-n).exp())``,
``relu() * 0.5``).  It prints milliseconds per ``train`` step (batches of 32 of 256
rows) and the ratio to ``graphc.nn.MLP`` with the same activation (``relu`` or ``tanh``,
graphc.nn's one-op form), then how many layer ops re-rolling found.  ``--cold`` also
times the first call of each (C built from an empty cache).  Before re-rolling knew these
spellings an outside hunt measured ``sum(...) + b`` at 6-11x the step of micrograd's own
``sum(..., b)``, and the written tanh at 4-16x ``.tanh()``'s.
"""
from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import warnings

import numpy as np

import graphc
from graphc import Value
from graphc.nn import MLP

SUMS = {
    "sum(..., b)": lambda w, b, x: sum((wi * xi for wi, xi in zip(w, x)), b),
    "sum(...) + b": lambda w, b, x: sum(wi * xi for wi, xi in zip(w, x)) + b,
    "b + sum(...)": lambda w, b, x: b + sum(wi * xi for wi, xi in zip(w, x)),
    "act += wi * xi": lambda w, b, x: _loop(w, b, x),
}
ACTIVATIONS = {
    "relu()": ("relu", lambda n: n.relu()),
    "(e - 1) / (e + 1)": ("tanh", lambda n: (lambda e: (e - 1) / (e + 1))((2 * n).exp())),
    "1 / (1 + (-n).exp())": ("sigmoid", lambda n: 1 / (1 + (-n).exp())),
    "relu() * 0.5": ("relu", lambda n: n.relu() * 0.5),
}


def _loop(w, b, x):
    act = 0.0
    for wi, xi in zip(w, x):
        act += wi * xi
    return act + b


class Written:
    """The lecture's MLP, neuron by neuron, with ``neuron_sum`` and ``activation``."""

    def __init__(self, sizes: list[int], neuron_sum, activation) -> None:
        self.layers = [[([Value(random.uniform(-1, 1)) for _ in range(n_in)], Value(random.uniform(-1, 1)))
                        for _ in range(n_out)] for n_in, n_out in zip(sizes, sizes[1:])]
        self.neuron_sum, self.activation = neuron_sum, activation

    def __call__(self, x):
        for k, layer in enumerate(self.layers):
            x = [self.neuron_sum(w, b, x) for w, b in layer]
            x = x if k == len(self.layers) - 1 else [self.activation(n) for n in x]
        return x[0]


def time_steps(model, backend: str, X, y, steps: int, cold: bool) -> tuple[float, float, int]:
    """(seconds per step, seconds to the first step, layer ops in the re-rolled graph)."""
    step = graphc.compile(lambda x, yi: (1 + -yi * model(x)).relu(), backend=backend)
    previous = os.environ.get("GRAPHC_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache:
        if cold:
            os.environ["GRAPHC_CACHE_DIR"] = cache
        start = time.perf_counter()
        step.train(X[:32], y[:32], lr=0.01, batch_size=32)
        first = time.perf_counter() - start
        if previous is None:
            os.environ.pop("GRAPHC_CACHE_DIR", None)
        else:
            os.environ["GRAPHC_CACHE_DIR"] = previous
    batches = len(X) // 32
    epochs = max(1, steps // batches)
    start = time.perf_counter()
    step.train(X, y, lr=0.01, batch_size=32, epochs=epochs)
    per_step = (time.perf_counter() - start) / (epochs * batches)
    graph = str(step.vector_graph)
    return per_step, first, graph.count(" matvec ") + graph.count(" dot ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--backends", default="numpy,c")
    parser.add_argument("--cold", action="store_true", help="also time the first call with an empty C cache")
    args = parser.parse_args()
    warnings.simplefilter("ignore", graphc.FrozenDataWarning)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 16))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0)
    sizes = [16, 32, 32, 1]
    for backend in args.backends.split(","):
        print(f"\n{backend}: ms per train step (batch 32), ratio to graphc.nn.MLP, layer ops found"
              + (", first call (s)" if args.cold else ""))
        reference = {}
        for name in ("relu", "tanh", "sigmoid"):
            random.seed(0)
            reference[name] = time_steps(MLP(16, [32, 32, 1], activation=name), backend, X, y, args.steps, args.cold)
        rows = [(f"neuron {s}, relu()", SUMS[s], "relu()") for s in SUMS] + \
            [(f"activation {a}", SUMS["sum(..., b)"], a) for a in ACTIVATIONS if a != "relu()"]
        for label, neuron_sum, activation in rows:
            random.seed(0)
            kind, act = ACTIVATIONS[activation]
            per_step, first, layers = time_steps(Written(sizes, neuron_sum, act), backend, X, y, args.steps,
                                                 args.cold)
            ref = reference[kind]
            cold = f"  {first:6.2f} s" if args.cold else ""
            print(f"  {label:34s} {per_step * 1e3:8.3f} ms  {per_step / ref[0]:5.2f}x "
                  f"(graphc.nn {kind}: {ref[0] * 1e3:.3f} ms)  {layers} layer ops{cold}")


if __name__ == "__main__":
    main()
