"""Huge and deep graphs: seconds and peak memory of every compiler stage.

    .venv/bin/python bench/scale.py [--nodes 1e6] [--graphs wide,deep]

Two graphs of about ``--nodes`` traced nodes each: *wide*, micrograd's moons loss over
enough samples (an MLP's shape: many short paths), and *deep*, one chain of that many ops
(depth = node count, far past Python's recursion limit).  Each stage runs separately --
trace, optimize, autodiff, optimize the joint graph, generate Python, load (CPython
compiles it), then one call and backward -- and the table shows its seconds, the node
count it produced, the resident memory after it and the process's peak so far.
"""
from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
from pathlib import Path

import graphc
from graphc import Value, autodiff
from graphc.codegen import loader
from graphc.codegen import python as python_backend
from graphc.nn import MLP

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compile import NODES_PER_SAMPLE, loss_of, moons  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def wide(nodes: int):
    X, y = moons(max(1, round(nodes / NODES_PER_SAMPLE)))
    random.seed(1)
    return loss_of(MLP(2, [16, 16, 1])), (X, y)


def deep(nodes: int):
    w, b = Value(0.9, label="w"), Value(0.1, label="b")

    def chain(x):
        for k in range(nodes // 2):
            x = (x * w).tanh() if k % 2 else x + b
        return x
    return chain, (0.5,)


def run(name: str, fn, args) -> None:
    print(f"\n{name}")
    print(f"  {'stage':<16} {'seconds':>8} {'nodes':>11} {'RSS MB':>8} {'peak MB':>8}")
    rows = []

    def stage(label, work, size=None):
        gc.collect()
        start = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - start
        count = size(result) if size else (len(result) if hasattr(result, "ops") else "")
        rows.append(seconds)
        print(f"  {label:<16} {seconds:>8.2f} {count:>11,} {rss_mb():>8.0f} {peak_mb():>8.0f}"
              if count != "" else f"  {label:<16} {seconds:>8.2f} {'':>11} {rss_mb():>8.0f} {peak_mb():>8.0f}",
              flush=True)
        return result

    graph = stage("trace", lambda: graphc.trace(fn, *args))
    graph = stage("optimize", lambda: graphc.optimize(graph))
    joint = stage("autodiff", lambda: autodiff.grad(graph, 0, wrt_inputs=False))
    joint = stage("optimize joint", lambda: graphc.optimize(joint))
    source, entry, blocks = stage("generate Python", lambda: python_backend.generate(
        joint, "f", seed=joint.inputs[-1], n_forward=len(graph.outputs)), size=lambda r: r[0].count("\n"))
    function = stage("load (compile)", lambda: loader.load(source, entry, python_backend.NAMESPACE, "scale", blocks))
    inputs = [float(x) for x in _flat(args)]
    params = [p.data for p in joint.param_values]

    def call():
        frame = function(inputs, params)
        next(frame)
        return frame.send(1.0)
    stage("call + backward", call)
    print(f"  {'total':<16} {sum(rows):>8.2f}")


def _flat(args):
    import numpy as np
    out = []
    for a in args:
        out.extend(np.asarray(a, dtype=float).ravel().tolist())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1e6", help="traced nodes per graph")
    parser.add_argument("--graphs", default="wide,deep")
    args = parser.parse_args()
    nodes = int(float(args.nodes))
    print(f"graphc {graphc.__version__}; Python {sys.version.split()[0]}; recursion limit {sys.getrecursionlimit()}")
    for name in args.graphs.split(","):
        fn, fn_args = {"wide": wide, "deep": deep}[name](nodes)
        run(f"{name}: ~{nodes:,} traced nodes", fn, fn_args)
        del fn, fn_args
        gc.collect()


if __name__ == "__main__":
    main()
