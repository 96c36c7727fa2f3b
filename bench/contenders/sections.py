"""In-process tables of bench/peers.py: digits epochs, moons throughput, C build time and
the scikit-learn estimators' fits (sections 2 to 5 of its docstring)."""
from __future__ import annotations

import random
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, make_moons

import graphc
from graphc.nn import MLP

from .demo_step import _fmt, sklearn_iteration, torch_moons
from .graphc_ import cold_cache
from .workloads import median_seconds, moons

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import digits  # noqa: E402  (examples/digits.py: the same data split and loss)


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
