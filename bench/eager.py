"""Eager engines on micrograd's moons demo step: micrograd itself vs graphc's eager Value.

    make bench            # or: .venv/bin/python bench/eager.py [--steps N]

One training step = build the full-batch loss (100 samples, MLP(2, [16, 16, 1])),
zero_grad, backward, SGD update.  Both engines start from the same seeded weights and run
in this process; the script prints each median and the ratio, and checks that the two
engines' losses agree (step 0 is bit-identical; later steps may differ in the last bit
because stock micrograd's gradient order follows set iteration order).
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np
from sklearn.datasets import make_moons

from graphc.demo import sgd_step


def demo_step_timer(Value, MLP, steps: int):
    """Per-step seconds and losses of micrograd's demo loop written against (Value, MLP)."""
    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    model = MLP(2, [16, 16, 1])
    times, losses = [], []
    for k in range(steps):
        start = time.perf_counter()
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        data_loss = sum((1 + -yi * si).relu() for yi, si in zip(y, scores)) * (1.0 / len(scores))
        total_loss = data_loss + 1e-4 * sum((p * p for p in model.parameters()))
        sgd_step(model, total_loss, k)
        times.append(time.perf_counter() - start)
        losses.append(float(total_loss.data))
    return times, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="training steps per engine")
    args = parser.parse_args()

    import micrograd
    from micrograd.engine import Value as MicrogradValue
    from micrograd.nn import MLP as MicrogradMLP

    import graphc
    from graphc import Value
    from graphc.nn import MLP

    mg_times, mg_losses = demo_step_timer(MicrogradValue, MicrogradMLP, args.steps)
    gc_times, gc_losses = demo_step_timer(Value, MLP, args.steps)
    mg, gc = statistics.median(mg_times), statistics.median(gc_times)
    print(f"moons demo step, median of {args.steps} (micrograd {getattr(micrograd, '__version__', '0.1.0')}, "
          f"graphc {graphc.__version__})")
    print(f"  micrograd eager  {mg * 1e3:9.1f} ms")
    print(f"  graphc eager     {gc * 1e3:9.1f} ms")
    print(f"  ratio            {mg / gc:9.1f}x faster")
    assert gc_losses[0] == mg_losses[0], "step-0 losses must be bit-identical"
    drift = max(abs(a - b) / max(abs(a), abs(b)) for a, b in zip(gc_losses, mg_losses))
    print(f"  losses: step 0 bit-identical; max relative difference over {args.steps} steps {drift:.1e}")


if __name__ == "__main__":
    main()
