"""graphc against its peers, all in one run on this machine: medians and ratios.

    make bench-peers      # or: .venv/bin/python bench/peers.py [--quick] [--no-micrograd] [--only SECTION]

1. micrograd's moons demo step (full batch of 100, MLP(2, [16, 16, 1]), SVM loss + L2,
   forward + backward + SGD): micrograd eager, graphc eager, graphc compiled (Python),
   graphc batched on the re-rolled graph (NumPy and C, the demo's own loop:
   ``step.mean(X, y) + reg`` with the L2 term ``reg`` built eagerly, then ``backward()``
   and the Python SGD loop), graphc C with the L2 term inside the compiled loss (the same
   function, so no eager graph but the mean node), PyTorch CPU eager (the same MLP with
   ``torch.nn.Linear``, float64, one thread) and scikit-learn's ``MLPClassifier`` (one SGD
   iteration over the same 100 rows; log-loss, so comparable in cost only).  Then where
   the C step's time goes.
2. digits: seconds per epoch of MLP(64, [32, 10]) with softmax cross-entropy, minibatch
   32 (examples/digits.py: 43 calls of ``step.mean`` plus the Python SGD loop over 2,410
   params per epoch), for graphc NumPy and C, PyTorch and scikit-learn.
3. throughput of the moons MLP (forward + gradient of the mean loss) at N = 100, 1,000
   and 10,000 rows: graphc NumPy and C vs PyTorch.
4. fit time of the scikit-learn estimators: ``graphc.sklearn.MLPClassifier`` (NumPy and C
   backends) against scikit-learn's ``MLPClassifier`` with the same settings
   (architecture, solver, batch size, epochs, seed) on moons (1000 rows) and digits, with
   held-out accuracies: graphc's first fit of an architecture (compiling, cold C cache)
   and later fits (which share the compiled code); then the first fit of a 784-100-10
   network, where compiling dominates.
5. C build time of the moons and digits gradient programs (cold cache: from trace to
   loaded library).

Times drift between runs on a shared machine; ratios from the same run are what to read.
"""
from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, make_moons

import graphc
from graphc import Value
from graphc.nn import MLP

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import digits  # noqa: E402  (examples/digits.py: the same data split and loss)


def median_seconds(fn, repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def moons(n: int = 100, seed: int = 1337):
    np.random.seed(seed)
    X, y = make_moons(n_samples=n, noise=0.1)
    return X, (y * 2 - 1).astype(np.float64)


# -- the moons step, six ways -----------------------------------------------------------

def micrograd_step(X, y):
    from micrograd.engine import Value as MgValue
    from micrograd.nn import MLP as MgMLP
    random.seed(1337)
    model = MgMLP(2, [16, 16, 1])
    return lambda: _eager_step(MgValue, model, X, y)


def graphc_eager_step(X, y):
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    return lambda: _eager_step(Value, model, X, y)


def _eager_step(value_type, model, X, y):
    def loss_fn():
        scores = [model(list(map(value_type, row))) for row in X]
        loss = sum((1 + -yi * si).relu() for yi, si in zip(y, scores)) * (1.0 / len(scores))
        return loss + 1e-4 * sum(p * p for p in model.parameters())
    _compiled_step(model, loss_fn)


def graphc_python_step(X, y):
    random.seed(1337)
    model = MLP(2, [16, 16, 1])

    def full_batch(X, y):
        scores = [model(row) for row in X]
        loss = sum((1 + -yi * si).relu() for yi, si in zip(y, scores)) * (1.0 / len(scores))
        return loss + 1e-4 * sum(p * p for p in model.parameters())
    compiled = graphc.compile(full_batch)
    return lambda: _compiled_step(model, lambda: compiled(X, y))


def graphc_batched_step(X, y, backend=None):
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    step = graphc.compile(lambda x, yi: (1 + -yi * model(x)).relu(), backend=backend)
    params = model.parameters()
    return lambda: _compiled_step(model, lambda: step.mean(X, y) + 1e-4 * sum(p * p for p in params))


def graphc_fused_l2_step(X, y, backend="c"):
    """The same step with the L2 term inside the compiled per-sample loss: its mean over the
    rows is data_loss + reg, and the eager graph is one node."""
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    params = model.parameters()
    step = graphc.compile(lambda x, yi: (1 + -yi * model(x)).relu() + 1e-4 * sum(p * p for p in params),
                          backend=backend)
    return lambda: _compiled_step(model, lambda: step.mean(X, y))


def graphc_train_step(X, y, backend="c"):
    """The L2-in-loss step as one ``Compiled.train`` call: the same SGD update, params in an array."""
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    params = model.parameters()
    step = graphc.compile(lambda x, yi: (1 + -yi * model(x)).relu() + 1e-4 * sum(p * p for p in params),
                          backend=backend)
    return lambda: step.train(X, y, lr=0.5)


def _compiled_step(model, loss_fn):
    """micrograd's step: the loss, then zero_grad, backward and SGD at rate 0.5."""
    loss = loss_fn()
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= 0.5 * p.grad


def torch_moons(X, y):
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16),
                                torch.nn.ReLU(), torch.nn.Linear(16, 1)).double()
    return model, torch.from_numpy(X), torch.from_numpy(y)


def torch_step(X, y):
    import torch
    model, Xt, yt = torch_moons(X, y)
    params = list(model.parameters())

    def step():
        scores = model(Xt).squeeze(1)
        loss = torch.relu(1 - yt * scores).mean() + 1e-4 * sum((p * p).sum() for p in params)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.5 * p.grad
    return step


def sklearn_iteration(X, y, hidden=(16, 16), batch_size=100, iterations=20):
    """Seconds per SGD iteration (epoch) of scikit-learn's MLPClassifier on (X, y)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=hidden, solver="sgd", batch_size=batch_size, momentum=0.0,
                        learning_rate_init=0.1, alpha=1e-4, max_iter=iterations, tol=0, n_iter_no_change=10**9,
                        random_state=0, shuffle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        clf.fit(X, y)
    return (time.perf_counter() - start) / clf.n_iter_


def moons_table(quick: bool, with_micrograd: bool) -> None:
    import torch
    torch.set_num_threads(1)
    X, y = moons()
    rows = []
    if with_micrograd:
        rows.append(("micrograd eager", median_seconds(micrograd_step(X, y), 3 if quick else 5)))
    rows.append(("graphc eager", median_seconds(graphc_eager_step(X, y), 5 if quick else 10)))
    rows.append(("graphc compiled, Python", median_seconds(graphc_python_step(X, y), 20 if quick else 50)))
    repeat = 100 if quick else 300
    rows.append(("graphc NumPy, demo loop", median_seconds(graphc_batched_step(X, y), repeat)))
    rows.append(("graphc C, demo loop", median_seconds(graphc_batched_step(X, y, "c"), repeat)))
    rows.append(("graphc C, L2 in compiled loss", median_seconds(graphc_fused_l2_step(X, y), repeat * 3)))
    rows.append(("graphc C, ... as step.train", median_seconds(graphc_train_step(X, y), repeat * 3)))
    rows.append(("PyTorch CPU eager (float64)", median_seconds(torch_step(X, y), repeat * 3, 10)))
    rows.append(("scikit-learn MLPClassifier", statistics.median(
        sklearn_iteration(X, (y > 0).astype(int)) for _ in range(3))))
    base = rows[0][1]
    print(f"\n1. moons demo step, median (ratios: how many times faster than {rows[0][0]})")
    print(f"   {'':<30} {'per step':>12} {'ratio':>10}")
    for name, seconds in rows:
        print(f"   {name:<30} {_fmt(seconds):>12} {base / seconds:>9.1f}x")
    times = dict(rows)
    for name in ("graphc NumPy, demo loop", "graphc C, demo loop", "graphc C, L2 in compiled loss",
                 "graphc C, ... as step.train"):
        for peer in ("PyTorch CPU eager (float64)", "scikit-learn MLPClassifier"):
            ratio = times[peer] / times[name]
            print(f"   {name} vs {peer.split(' (')[0]}: {ratio:.2f}x ({'faster' if ratio > 1 else 'slower'})")
    c_step_breakdown(X, y, quick)


def c_step_breakdown(X, y, quick: bool) -> None:
    """Where the C step's time goes: generated code, graphc's Python, the user's loop."""
    from graphc.batches import Batch
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    params = model.parameters()
    step = graphc.compile(lambda x, yi: (1 + -yi * model(x)).relu(), backend="c")
    step.mean(X, y)
    program = step._latest.batched_program("mean")
    batch = Batch((X, y), ["x", "yi"])
    values = [p.data for p in params]
    repeat = 200 if quick else 1000
    parts = [
        ("generated C (call included)", median_seconds(lambda: program.function(batch.cols, values, 0.01, 100), repeat)),
        ("step.mean(X, y) in all", median_seconds(lambda: step.mean(X, y), repeat)),
        ("... + backward() of the mean node", median_seconds(lambda: step.mean(X, y).backward(), repeat)),
        ("eager L2 term: build it", median_seconds(lambda: 1e-4 * sum(p * p for p in params), repeat // 4)),
        ("eager L2 term: build + backward()", median_seconds(lambda: (1e-4 * sum(p * p for p in params)).backward(),
                                                             repeat // 4)),
        ("model.zero_grad()", median_seconds(model.zero_grad, repeat)),
        ("SGD loop over 337 params", median_seconds(lambda: [setattr(p, "data", p.data - 0.0 * p.grad)
                                                             for p in params], repeat)),
    ]
    print("   where a C step goes (medians, measured one by one):")
    for name, seconds in parts:
        print(f"     {name:<38} {seconds * 1e6:8.1f} us")


# -- digits -----------------------------------------------------------------------------

def digits_table(quick: bool) -> None:
    import torch
    torch.set_num_threads(1)
    epochs = 2 if quick else 3
    _, _, numpy_seconds = digits.train(epochs=epochs, log=lambda line: None)
    _, _, c_seconds = digits.train(epochs=epochs, backend="c", log=lambda line: None)
    _, _, fused_seconds = digits.train(epochs=epochs + 2, backend="c", fused=True, log=lambda line: None)
    X_train, X_test, y_train, y_test, _ = digits.make_data()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)).double()
    Xt, yt = torch.from_numpy(X_train), torch.from_numpy(y_train)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def torch_epoch():
        order = torch.randperm(len(Xt))
        for begin in range(0, len(order), 32):
            batch = order[begin:begin + 32]
            loss = loss_fn(model(Xt[batch]), yt[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    rows = [("graphc NumPy", statistics.median(numpy_seconds[1:])),
            ("graphc C", statistics.median(c_seconds[1:])),
            ("graphc C, step.train per epoch", statistics.median(fused_seconds[1:])),
            ("PyTorch CPU eager (float64)", median_seconds(torch_epoch, epochs)),
            ("scikit-learn MLPClassifier", sklearn_iteration(X_train, y_train, (32,), 32, 5))]
    print("\n2. digits epoch (1347 rows, MLP(64, [32, 10]), minibatch 32), median per epoch")
    for name, seconds in rows:
        print(f"   {name:<30} {_fmt(seconds):>12} {rows[2][1] / seconds:>9.2f}x step.train's time")


# -- throughput -------------------------------------------------------------------------

def throughput_table(quick: bool) -> None:
    import torch
    torch.set_num_threads(1)
    print("\n3. moons MLP, forward + gradient of the mean loss, rows per second")
    print(f"   {'rows':>8} {'graphc NumPy':>14} {'graphc C':>14} {'PyTorch':>14} {'C vs PyTorch':>13}")
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    steps = [graphc.compile(lambda x, yi: (1 + -yi * model(x)).relu(), backend=b) for b in ("numpy", "c")]
    for n in (100, 1000, 10000):
        X, y = moons(n)
        tm, Xt, yt = torch_moons(X, y)

        def theirs():
            tm.zero_grad()
            torch.relu(1 - yt * tm(Xt).squeeze(1)).mean().backward()
        repeat = 10 if quick else 50
        a, c = (median_seconds(lambda: s.mean(X, y).backward(), repeat) for s in steps)
        b = median_seconds(theirs, repeat, 5)
        print(f"   {n:>8,} {n / a:>14,.0f} {n / c:>14,.0f} {n / b:>14,.0f} {b / c:>12.2f}x")


# -- C build time -----------------------------------------------------------------------

def build_table() -> None:
    """Seconds from a fresh compile() to a loaded C library, with an empty cache."""
    from graphc.codegen import c as c_backend
    print("\n5. C build, cold cache (trace, optimize, re-roll, differentiate, generate, gcc, load)")
    if c_backend.find_compiler() is None:
        print("   no C compiler found")
        return
    with cold_cache():
        X, y = moons()
        random.seed(1337)
        model = MLP(2, [16, 16, 1])
        step = graphc.compile(lambda x, yi: (1 + -yi * model(x)).relu(), backend="c")
        start = time.perf_counter()
        step.mean(X, y)
        moons_seconds = time.perf_counter() - start
        X_train, _, y_train, _, dmodel = digits.make_data()
        dstep = graphc.compile(digits.cross_entropy(dmodel), backend="c")
        start = time.perf_counter()
        dstep.mean(X_train[:32], np.eye(10)[y_train[:32]])
        digits_seconds = time.perf_counter() - start
    for name, seconds, s in (("moons MLP(2, [16, 16, 1])", moons_seconds, step),
                             ("digits MLP(64, [32, 10])", digits_seconds, dstep)):
        print(f"   {name:<28} {seconds:6.2f} s   ({s.stats.traced_nodes:,} traced nodes; "
              f"{s.stats.seconds.get('codegen+load', 0):.2f} s of it generating and compiling C)")


# -- scikit-learn estimators ----------------------------------------------------------------

#: dataset: (hidden layers, batch size, epochs) -- the settings tests/test_sklearn.py checks.
ESTIMATOR_SETTINGS = {"moons": ((16, 16), 32, 20), "digits": ((32,), 200, 25)}


def estimator_split(dataset: str):
    """moons (1000 rows, noise 0.1) or digits (pixels / 16); a stratified 75/25 split."""
    from sklearn.model_selection import train_test_split
    if dataset == "moons":
        X, y = make_moons(n_samples=1000, noise=0.1, random_state=0)
    else:
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def estimator_table(quick: bool) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    from graphc import sklearn as graphc_sklearn
    from graphc.codegen import c as c_backend
    repeat = 1 if quick else 3
    backends = ["numpy"] + (["c"] if c_backend.find_compiler() is not None else [])
    print(f"\n4. MLPClassifier fit, graphc vs scikit-learn (same settings and seed), median of {repeat}; "
          "held-out accuracy.\n   graphc's first fit of an architecture compiles (cold C cache); later fits "
          "(new estimators, as in a grid search) reuse the compiled code")
    print(f"   {'dataset, solver':<16} {'backend':<7} {'scikit-learn':>13} {'graphc, first':>14} {'later':>10} "
          f"{'later / sklearn':>16} {'accuracy sklearn':>17} {'graphc':>7}")

    def fit(cls, **params):
        clf = cls(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            clf.fit(X_train, y_train)
            return time.perf_counter() - start, clf.score(X_test, y_test)

    for dataset, (hidden, batch_size, epochs) in ESTIMATOR_SETTINGS.items():
        X_train, X_test, y_train, y_test = estimator_split(dataset)
        for solver in ("sgd", "adam"):
            params = dict(hidden_layer_sizes=hidden, solver=solver, batch_size=batch_size, max_iter=epochs,
                          random_state=0, learning_rate_init=0.1 if solver == "sgd" else 0.01)
            sk_s = statistics.median(fit(SklearnMLP, **params)[0] for _ in range(repeat))
            sk_acc = fit(SklearnMLP, **params)[1]
            for backend in backends:
                graphc_sklearn._PROGRAMS.clear()
                with cold_cache():
                    first_s, _ = fit(graphc_sklearn.MLPClassifier, backend=backend, **params)
                runs = [fit(graphc_sklearn.MLPClassifier, backend=backend, **params) for _ in range(repeat)]
                later_s, acc = statistics.median(r[0] for r in runs), runs[0][1]
                print(f"   {dataset + ', ' + solver:<16} {backend:<7} {_fmt(sk_s):>13} {_fmt(first_s):>14} "
                      f"{_fmt(later_s):>10} {later_s / sk_s:>15.2f}x {sk_acc * 100:>16.1f}% {acc * 100:>6.1f}%")
    rng = np.random.default_rng(0)
    X_big, y_big = rng.normal(size=(500, 784)), rng.integers(0, 10, 500)
    graphc_sklearn._PROGRAMS.clear()
    with cold_cache(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        clf = graphc_sklearn.MLPClassifier(max_iter=1, random_state=0).fit(X_big, y_big)
        seconds = time.perf_counter() - start
    print(f"   first fit of scikit-learn's default width on MNIST-sized rows (784-100-10, 500 random rows, one "
          f"epoch, backend {clf._loss_step.backend}): {seconds:.1f} s, {clf._loss_step.stats.traced_nodes:,} traced "
          f"nodes, {clf._loss_step.stats.total_seconds:.1f} s of it compiling")


@contextlib.contextmanager
def cold_cache():
    """graphc's C library cache pointed at a new, empty directory for the duration."""
    import os
    import tempfile
    previous = os.environ.get("GRAPHC_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["GRAPHC_CACHE_DIR"] = cache
        try:
            yield
        finally:
            if previous is None:
                del os.environ["GRAPHC_CACHE_DIR"]
            else:
                os.environ["GRAPHC_CACHE_DIR"] = previous


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 10 else f"{seconds:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-micrograd", action="store_true", help="skip micrograd (about 1.5 s per step)")
    parser.add_argument("--only", choices=["moons", "digits", "throughput", "estimators", "build"],
                        help="run one section")
    args = parser.parse_args()
    import sklearn
    import torch
    print(f"graphc {graphc.__version__}, PyTorch {torch.__version__} (1 thread), scikit-learn {sklearn.__version__}, "
          f"NumPy {np.__version__}, Python {sys.version.split()[0]}")
    sections = {"moons": lambda: moons_table(args.quick, not args.no_micrograd),
                "digits": lambda: digits_table(args.quick),
                "throughput": lambda: throughput_table(args.quick),
                "estimators": lambda: estimator_table(args.quick),
                "build": build_table}
    for name, run in sections.items():
        if args.only in (None, name):
            run()


if __name__ == "__main__":
    main()
