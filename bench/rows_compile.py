"""Compile time and step time of micrograd's full-batch demo loss under graphc.compile (issue 16).

Run: python bench/rows_compile.py [--backend numpy|c|python] [--profile]  (from the repo root),
or graphc bench rows_compile -- --backend numpy."""
import argparse
import cProfile
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


def once(backend):
    step = graphc.compile(demo_loss, backend=backend)
    t = time.perf_counter()
    out, _ = step()
    model.zero_grad()
    out.backward()
    total = time.perf_counter() - t
    return step, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["numpy", "c", "python"], default=None,
                        help="the backend (default: graphc's default)")
    parser.add_argument("--profile", action="store_true", help="profile the first call and exit")
    args = parser.parse_args()
    if args.profile:
        cProfile.runctx("once(backend)", globals(), {"backend": args.backend}, sort="cumtime")
        return
    step, total = once(args.backend)
    print(f"first call+backward {total:.3f} s; stats: {step.stats}")
    times = []
    for _ in range(50):
        t = time.perf_counter()
        out, _ = step()
        model.zero_grad()
        out.backward()
        times.append(time.perf_counter() - t)
    print(f"median step {np.median(times) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
