"""Compiled Python backend vs micrograd on the moons demo step, and compile time vs graph size.

    .venv/bin/python bench/compile.py [--steps N] [--sizes 1e4,1e5,1e6] [--no-micrograd]

Part 1 times one training step (full-batch loss, zero_grad, backward, SGD update) of
micrograd's moons demo three ways in this process -- micrograd eager, graphc eager and
graphc compiled (Python backend) -- and prints medians and ratios.  Part 2 compiles the
same loss over more and more samples (graphs of ~10^4, 10^5, 10^6 traced nodes) and
prints each stage's seconds, so linear growth is visible as a flat seconds-per-node
column.  Part 3 times CPython's ``compile()`` alone on synthetic straight-line functions
of 10^4 to 3x10^5 lines, the floor under the codegen column.
"""
from __future__ import annotations

import argparse
import gc
import random
import statistics
import time

import numpy as np
from sklearn.datasets import make_moons

import graphc
from graphc import Value
from graphc.nn import MLP

NODES_PER_SAMPLE = 660  # traced nodes per moons sample with MLP(2, [16, 16, 1])


def moons(n: int = 100):
    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=n, noise=0.1)
    return X, y * 2 - 1


def loss_of(model):
    def loss(X, y):
        scores = [model(row) for row in X]
        data_loss = sum((1 + -yi * si).relu() for yi, si in zip(y, scores)) * (1.0 / len(scores))
        return data_loss + 1e-4 * sum(p * p for p in model.parameters())
    return loss


def time_steps(step, model, steps: int) -> list[float]:
    times = []
    for k in range(steps):
        start = time.perf_counter()
        total = step()
        model.zero_grad()
        total.backward()
        for p in model.parameters():
            p.data -= (1.0 - 0.9 * k / 100) * p.grad
        times.append(time.perf_counter() - start)
    return times


def demo_step(steps: int, with_micrograd: bool) -> None:
    X, y = moons()
    rows = []
    if with_micrograd:
        from micrograd.engine import Value as MgValue
        from micrograd.nn import MLP as MgMLP
        random.seed(1337)
        mg_model = MgMLP(2, [16, 16, 1])
        mg_loss = loss_of(mg_model)
        rows.append(("micrograd eager", time_steps(lambda: mg_loss([list(map(MgValue, r)) for r in X], y),
                                                   mg_model, min(steps, 5))))
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    eager = loss_of(model)
    rows.append(("graphc eager", time_steps(lambda: eager([list(map(Value, r)) for r in X], y), model,
                                            min(steps, 10))))
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    compiled = graphc.compile(loss_of(model))
    start = time.perf_counter()
    compiled(X, y)
    first = time.perf_counter() - start
    rows.append(("graphc compiled (python)", time_steps(lambda: compiled(X, y), model, steps)))
    base = statistics.median(rows[0][1])
    print(f"moons demo step (100 samples, MLP(2, [16, 16, 1])), median per step; ratio vs {rows[0][0]}")
    for name, times in rows:
        median = statistics.median(times)
        print(f"  {name:<26} {median * 1e3:10.2f} ms   {base / median:8.1f}x")
    stats = compiled.stats
    print(f"  compile (first call, trace to loaded code): {first:.2f} s -- {stats}")


def compile_scaling(sizes: list[int]) -> None:
    print("compile time vs graph size (moons loss over n samples; Python backend, forward + gradient)")
    print(f"  {'traced':>10} {'optimized':>10} {'joint':>10}  {'trace':>7} {'optimize':>8} {'autodiff':>8} "
          f"{'codegen':>8} {'total':>7}  {'us/node':>7}")
    for target in sizes:
        n = max(1, round(target / NODES_PER_SAMPLE))
        X, y = moons(n)
        random.seed(1)
        model = MLP(2, [16, 16, 1])
        compiled = graphc.compile(loss_of(model))
        gc.collect()
        compiled(X, y)
        s = compiled.stats
        t = s.seconds
        print(f"  {s.traced_nodes:>10,} {s.optimized_nodes:>10,} {s.joint_optimized_nodes:>10,}  "
              f"{t['trace']:7.2f} {t['optimize']:8.2f} {t['autodiff']:8.2f} {t['codegen+load']:8.2f} "
              f"{s.total_seconds:7.2f}  {s.total_seconds / s.traced_nodes * 1e6:7.1f}")
        del compiled, model
        gc.collect()


def cpython_compile_cost(lines: tuple[int, ...] = (10_000, 30_000, 100_000, 300_000)) -> None:
    """CPython's compile() per line of one straight-line function, as the function grows."""
    print("CPython compile() of one straight-line function (v_k = v_(k-1) * b + a), per line")
    for n in lines:
        body = "".join(f"    v{k} = v{k - 1} * b + a\n" for k in range(1, n))
        source = f"def f(a, b):\n    v0 = a * b\n{body}    return v{n - 1}\n"
        start = time.perf_counter()
        compile(source, "synthetic", "exec")
        seconds = time.perf_counter() - start
        print(f"  {n:>10,} lines  {seconds:6.2f} s  {seconds / n * 1e6:5.2f} us/line")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sizes", default="1e4,1e5,1e6", help="traced-node counts for the scaling table")
    parser.add_argument("--no-micrograd", action="store_true", help="skip micrograd (the slow baseline)")
    args = parser.parse_args()
    demo_step(args.steps, not args.no_micrograd)
    compile_scaling([int(float(s)) for s in args.sizes.split(",") if s])
    cpython_compile_cost()


if __name__ == "__main__":
    main()
