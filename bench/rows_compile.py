"""Compile time and step time of micrograd's full-batch demo loss under graphc.compile (issue 16).

Run: python bench/rows_compile.py [numpy|c] [--profile]  (from the repo root)."""
import sys, time, cProfile, pstats
import numpy as np
import graphc
from graphc import Value
from graphc.demo import make_data

X, y, model = make_data()

def demo_loss():
    inputs = [list(map(Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    alpha = 1e-4
    reg_loss = alpha * sum((p * p for p in model.parameters()))
    return data_loss + reg_loss

def once():
    step = graphc.compile(demo_loss, backend=sys.argv[1] if len(sys.argv) > 1 else None)
    t = time.perf_counter()
    out = step()
    model.zero_grad()
    out.backward()
    total = time.perf_counter() - t
    return step, total

if "--profile" in sys.argv:
    cProfile.run("once()", "/tmp/rows/prof")
    pstats.Stats("/tmp/rows/prof").sort_stats("cumtime").print_stats(40)
    sys.exit()
step, total = once()
print(f"first call+backward {total:.3f} s; stats: {step.stats}")
times = []
for k in range(50):
    t = time.perf_counter()
    out = step(); model.zero_grad(); out.backward()
    times.append(time.perf_counter() - t)
print(f"median step {np.median(times)*1e3:.3f} ms")
