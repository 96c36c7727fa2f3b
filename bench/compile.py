"""Compiled Python backend vs micrograd on the moons demo step, and compile time vs graph size.

    .venv/bin/python bench/compile.py [--steps N] [--sizes 1e4,1e5,1e6] [--no-micrograd]
    .venv/bin/python bench/compile.py --targets [--chain 1e6]   (the compile-speed targets only)
    .venv/bin/python bench/compile.py --layers 300,1000,2000   (deep networks only)

``--targets`` prints the compile-speed targets of issues 15 and 16, each from trace to loaded
code: micrograd's demo loss compiled as written (best of 3 compiles; on NumPy, which builds
nothing, then on the default backend -- C where a compiler is found -- with an empty C cache
each time, and with its libraries already cached), MNIST-shaped
MLP(784, [100, 10]) on C with a cold cache next to JAX's first ``jit`` call (each in a fresh
process through bench/peers.py's worker; JAX only if installed), and a chain of ``--chain``
scalar ops that nothing re-rolls, with its process's peak memory.

``--layers`` times ``mean_and_grad`` of a squared loss on ``MLP(2, [4] * L + [1])`` over 32
rows, from ``graphc.compile`` to the first gradient, on C with an empty C cache and on
NumPy: networks that deep declare thousands of arrays in one C function.

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
import contextlib
import gc
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

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
    compiled = graphc.compile(loss_of(model), backend="python")
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
    print(f"  {'traced':>10} {'joint':>10} {'optimized':>10}  {'trace':>7} {'optimize':>8} {'autodiff':>8} "
          f"{'codegen':>8} {'total':>7}  {'us/node':>7}")
    for target in sizes:
        n = max(1, round(target / NODES_PER_SAMPLE))
        X, y = moons(n)
        random.seed(1)
        model = MLP(2, [16, 16, 1])
        compiled = graphc.compile(loss_of(model), backend="python")
        gc.collect()
        compiled(X, y)
        s = compiled.stats
        t = s.seconds
        print(f"  {s.traced_nodes:>10,} {s.joint_nodes:>10,} {s.joint_optimized_nodes:>10,}  "
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


def demo_compile(repeat: int = 3, backend: str | None = None, warm: bool = False) -> tuple[float, float]:
    """Seconds from trace to loaded code (the first call and its backward) of micrograd's demo
    loss as written, under ``graphc.compile`` with ``backend`` (None: the default), each
    compile with an empty C cache, or with ``warm`` one holding this program's libraries
    (a later run on the machine): the best of ``repeat``, wall and CPU (this process's CPU
    seconds: what a quiet machine's wall time would be; gcc runs in a child process)."""
    from graphc.demo import make_data
    X, y, model = make_data()

    def loss():
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        return data_loss + 1e-4 * sum((p * p for p in model.parameters()))
    best = (float("inf"), float("inf"))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from contenders.graphc_ import cold_cache
    with cold_cache(), warnings.catch_warnings():
        warnings.simplefilter("ignore", graphc.FrozenDataWarning)  # the demo's captured data, on purpose
        if warm:
            graphc.compile(loss, backend=backend)().backward()
        for _ in range(repeat):
            compiled = graphc.compile(loss, backend=backend)
            with contextlib.nullcontext() if warm else cold_cache():
                start, cpu = time.perf_counter(), time.process_time()
                out = compiled()
                model.zero_grad()
                out.backward()
                best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    return best


def peer_compile(family: str, label: str) -> str:
    """bench/peers.py's ``compile100`` workload for one contender, in a fresh process."""
    bench = Path(__file__).resolve().parent
    sys.path.insert(0, str(bench))
    from contenders import isolate
    if not isolate.installed(family):
        return "not installed"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(bench.parent), os.environ.get("PYTHONPATH", "")])
    result = isolate.run(family, "compile100", label, quick=False)
    return result if isinstance(result, str) else f"{result.seconds:.3f} s"


def chain(nodes: int) -> None:
    """Compile a chain of ~``nodes`` scalar ops (x + b, then tanh(x * w), alternating: nothing
    re-rolls) with the Python backend; prints seconds to loaded code and the peak memory."""
    w, b = Value(0.9), Value(0.1)

    def fn(x):
        for k in range(nodes // 2):
            x = (x * w).tanh() if k % 2 else x + b
        return x
    compiled = graphc.compile(fn, backend="python")
    start = time.perf_counter()
    out = compiled(0.5)
    out.backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{seconds:.2f} s, peak {peak:,.0f} MB -- {compiled.stats}")


def deep_networks(layers: list[int]) -> None:
    """Seconds to the first ``mean_and_grad`` of networks ``layers`` deep (see the docstring)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from contenders.graphc_ import cold_cache
    X = np.random.default_rng(0).standard_normal((32, 2))
    y = np.ones(32)
    print("MLP(2, [4] * L + [1]), squared loss, 32 rows: seconds to the first mean_and_grad")
    def squared_error(x, t):
        d = model(x) - t
        return d * d
    for depth in layers:
        random.seed(0)
        model = MLP(2, [4] * depth + [1])
        seconds = []
        for backend in ("c", "numpy"):
            step = graphc.compile(squared_error, backend=backend)
            with cold_cache():
                start = time.perf_counter()
                step.mean_and_grad(X, y)
                seconds.append(time.perf_counter() - start)
        print(f"  L = {depth:5,}: C {seconds[0]:6.2f} s (cold cache), NumPy {seconds[1]:6.2f} s")


def targets(chain_nodes: int) -> None:
    """The compile-speed targets (issue 15: MNIST and the chain; issue 16 item 6: the demo)."""
    print("compile-speed targets, trace to loaded code")
    wall, cpu = demo_compile(backend="numpy")
    print(f"  demo full-batch loss, NumPy (issue 16: <= 0.3 s):    {wall:.3f} s (CPU {cpu:.3f} s)")
    wall, _ = demo_compile()
    print(f"  the default (C), cold C cache (gcc included):        {wall:.3f} s")
    wall, _ = demo_compile(warm=True)
    print(f"  the default (C), its libraries cached (a later run): {wall:.3f} s")
    print(f"  MLP(784,[100,10]) C, cold cache (issue 15: <= JAX):  {peer_compile('graphc', 'graphc C')}")
    print(f"  JAX jit, first call, same workload:                  {peer_compile('jax', 'JAX jit, first call')}")
    done = subprocess.run([sys.executable, __file__, "--chain-worker", str(chain_nodes)],
                          capture_output=True, text=True)
    shown = done.stdout.strip() or (done.stderr.strip().splitlines() or ["failed"])[-1]
    print(f"  chain of {chain_nodes:,} scalar ops (issue 15: <= 10 s, < 2 GB): {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sizes", default="1e4,1e5,1e6", help="traced-node counts for the scaling table")
    parser.add_argument("--no-micrograd", action="store_true", help="skip micrograd (the slow baseline)")
    parser.add_argument("--targets", action="store_true", help="only the compile-speed targets")
    parser.add_argument("--chain", default="1e6", help="ops in the targets' scalar chain")
    parser.add_argument("--chain-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--layers", help="only deep networks' compile times: depths, e.g. 300,1000,2000")
    args = parser.parse_args()
    if args.chain_worker:
        return chain(args.chain_worker)
    if args.layers:
        return deep_networks([int(float(n)) for n in args.layers.split(",") if n])
    if args.targets:
        return targets(int(float(args.chain)))
    demo_step(args.steps, not args.no_micrograd)
    compile_scaling([int(float(s)) for s in args.sizes.split(",") if s])
    cpython_compile_cost()


if __name__ == "__main__":
    main()
