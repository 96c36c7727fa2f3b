"""Compile time and step time of micrograd's full-batch demo loss under graphc.compile (issue 16).

Run: python bench/rows_compile.py [--backend numpy|c|python] [--profile]  (from the repo root),
or graphc bench rows_compile -- --backend numpy.

``--rows N --loss passed`` (or ``scores``) times the same loss over N rows of the moons data
passed in as arguments (``graphc.demo.batch_loss``: the loss, or the loss and every row's
score), from an empty C cache (``--cold``): batch recovery's build time as the rows grow."""
import argparse
import cProfile
import os
import tempfile
import time
import warnings

import numpy as np
import graphc
from graphc.demo import batch_loss, loss, make_data, make_moons

X, y, model = make_data()
warnings.simplefilter("ignore", graphc.FrozenDataWarning)  # X and y are captured, as in micrograd's demo


def demo_loss():
    """micrograd's demo loss as written (graphc.demo.loss): the loss and the accuracy."""
    return loss(model, X, y)


def with_scores(X, y):
    """The demo's loss with its data passed in, returning every row's score too."""
    return batch_loss(model)(X, y)


def passed(X, y):
    """The demo's loss with its data passed in."""
    return batch_loss(model)(X, y)[0]


def once(backend, fn=demo_loss, args=()):
    step = graphc.compile(fn, backend=backend)
    t = time.perf_counter()
    out = _loss_of(step(*args))
    model.zero_grad()
    out.backward()
    total = time.perf_counter() - t
    return step, total


def _loss_of(result):
    return result[0] if isinstance(result, tuple) else result


def main() -> None:
    global X, y
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["numpy", "c", "python"], default=None,
                        help="the backend (default: graphc's default)")
    parser.add_argument("--profile", action="store_true", help="profile the first call and exit")
    parser.add_argument("--loss", choices=["demo", "passed", "scores"], default="demo",
                        help="the demo's loss on captured data (default), or with its data passed in, "
                             "returning the loss alone or the loss and the scores")
    parser.add_argument("--rows", type=int, default=100, help="rows of moons data (default: the demo's 100)")
    parser.add_argument("--cold", action="store_true", help="an empty C cache")
    args = parser.parse_args()
    if args.cold:
        os.environ["GRAPHC_CACHE_DIR"] = tempfile.mkdtemp()
    if args.rows != 100:
        np.random.seed(1337)
        X, labels = make_moons(args.rows)
        y = labels * 2 - 1
    fn, call_args = demo_loss, ()
    if args.loss != "demo":
        fn, call_args = {"passed": passed, "scores": with_scores}[args.loss], (X, y)
    if args.profile:
        cProfile.runctx("once(backend, fn, call_args)", globals(),
                        {"backend": args.backend, "fn": fn, "call_args": call_args}, sort="cumtime")
        return
    step, total = once(args.backend, fn, call_args)
    print(f"first call+backward {total:.3f} s; stats: {step.stats}")
    times = []
    for _ in range(50):
        t = time.perf_counter()
        out = _loss_of(step(*call_args))
        model.zero_grad()
        out.backward()
        times.append(time.perf_counter() - t)
    print(f"median step {np.median(times) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
