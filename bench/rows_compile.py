"""Compile time and step time of micrograd's full-batch demo loss under graphc.compile (issue 16).

Run: python bench/rows_compile.py [numpy|c] [--profile]  (from the repo root)."""
import cProfile
import sys
import time
import warnings

import numpy as np
import graphc
from graphc.demo import loss, make_data

X, y, model = make_data()
warnings.simplefilter("ignore", graphc.FrozenDataWarning)  # X and y are captured, as in micrograd's demo

def demo_loss():
    """micrograd's demo loss as written (graphc.demo.loss): the loss and the accuracy."""
    return loss(model, X, y)

def once():
    step = graphc.compile(demo_loss, backend=sys.argv[1] if len(sys.argv) > 1 else None)
    t = time.perf_counter()
    out, _ = step()
    model.zero_grad()
    out.backward()
    total = time.perf_counter() - t
    return step, total

if "--profile" in sys.argv:
    cProfile.run("once()", sort="cumtime")
    sys.exit()
step, total = once()
print(f"first call+backward {total:.3f} s; stats: {step.stats}")
times = []
for k in range(50):
    t = time.perf_counter()
    out, _ = step(); model.zero_grad(); out.backward()
    times.append(time.perf_counter() - t)
print(f"median step {np.median(times)*1e3:.3f} ms")
