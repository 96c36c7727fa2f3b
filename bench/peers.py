"""graphc against its peers, all in one run on this machine: medians and ratios.

    make bench-peers      # or: .venv/bin/python bench/peers.py [--quick] [--no-micrograd] [--only SECTION]

1. micrograd's moons demo step (full batch of 100, MLP(2, [16, 16, 1]), SVM loss + L2,
   forward + backward + SGD): micrograd eager, graphc eager, graphc compiled (Python),
   graphc batched (NumPy, ``step.mean(X, y) + reg``), PyTorch CPU eager (the same MLP
   with ``torch.nn.Linear``, float64, one thread) and scikit-learn's ``MLPClassifier``
   (one SGD iteration over the same 100 rows; log-loss, so comparable in cost only).
2. digits: seconds per epoch of MLP(64, [32, 10]) with softmax cross-entropy, minibatch
   32, for graphc batched, PyTorch and scikit-learn.
3. throughput of the moons MLP (forward + gradient of the mean loss) at N = 100, 1,000
   and 10,000 rows: graphc batched vs PyTorch.
4. fit time of the scikit-learn estimators: ``graphc.sklearn.MLPClassifier`` against
   scikit-learn's ``MLPClassifier`` with the same settings (architecture, solver, batch
   size, epochs, seed) on moons (1000 rows) and digits, with held-out accuracies.

Times drift between runs on a shared machine; ratios from the same run are what to read.
"""
from __future__ import annotations

import argparse
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
    scores = [model(list(map(value_type, row))) for row in X]
    loss = sum((1 + -yi * si).relu() for yi, si in zip(y, scores)) * (1.0 / len(scores))
    loss = loss + 1e-4 * sum(p * p for p in model.parameters())
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= 0.5 * p.grad


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


def _compiled_step(model, loss_fn):
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
    rows.append(("graphc batched, NumPy", median_seconds(graphc_batched_step(X, y), 100 if quick else 300)))
    rows.append(("PyTorch CPU eager (float64)", median_seconds(torch_step(X, y), 100 if quick else 300, 10)))
    rows.append(("scikit-learn MLPClassifier", statistics.median(
        sklearn_iteration(X, (y > 0).astype(int)) for _ in range(3))))
    base = rows[0][1]
    print(f"\n1. moons demo step, median (ratios: how many times faster than {rows[0][0]})")
    print(f"   {'':<30} {'per step':>12} {'ratio':>10}")
    for name, seconds in rows:
        print(f"   {name:<30} {_fmt(seconds):>12} {base / seconds:>9.1f}x")
    torch_seconds = dict(rows)["PyTorch CPU eager (float64)"]
    numpy_seconds = dict(rows)["graphc batched, NumPy"]
    print(f"   graphc batched vs PyTorch: {torch_seconds / numpy_seconds:.2f}x "
          f"({'faster' if numpy_seconds < torch_seconds else 'slower'})")


# -- digits -----------------------------------------------------------------------------

def digits_table(quick: bool) -> None:
    import torch
    torch.set_num_threads(1)
    epochs = 2 if quick else 3
    _, _, graphc_seconds = digits.train(epochs=epochs, log=lambda line: None)
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
    rows = [("graphc batched, NumPy", statistics.median(graphc_seconds[1:])),
            ("PyTorch CPU eager (float64)", median_seconds(torch_epoch, epochs)),
            ("scikit-learn MLPClassifier", sklearn_iteration(X_train, y_train, (32,), 32, 5))]
    print("\n2. digits epoch (1347 rows, MLP(64, [32, 10]), minibatch 32), median seconds per epoch")
    for name, seconds in rows:
        print(f"   {name:<30} {_fmt(seconds):>12} {rows[0][1] / seconds:>9.2f}x graphc's time")


# -- throughput -------------------------------------------------------------------------

def throughput_table(quick: bool) -> None:
    import torch
    torch.set_num_threads(1)
    print("\n3. moons MLP, forward + gradient of the mean loss, rows per second")
    print(f"   {'rows':>8} {'graphc NumPy':>14} {'PyTorch':>14} {'graphc / PyTorch':>17}")
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    step = graphc.compile(lambda x, yi: (1 + -yi * model(x)).relu())
    for n in (100, 1000, 10000):
        X, y = moons(n)

        def ours():
            step.mean(X, y).backward()
        tm, Xt, yt = torch_moons(X, y)

        def theirs():
            tm.zero_grad()
            torch.relu(1 - yt * tm(Xt).squeeze(1)).mean().backward()
        repeat = 10 if quick else 50
        a, b = median_seconds(ours, repeat), median_seconds(theirs, repeat, 5)
        print(f"   {n:>8,} {n / a:>14,.0f} {n / b:>14,.0f} {b / a:>16.2f}x")


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

    from graphc.sklearn import MLPClassifier
    repeat = 1 if quick else 3
    print("\n4. MLPClassifier fit, graphc vs scikit-learn (same settings and seed), median of "
          f"{repeat}; held-out accuracy")
    print(f"   {'dataset, solver':<16} {'scikit-learn':>13} {'graphc':>10} {'ratio':>8} {'of it compiling':>16} "
          f"{'accuracy sklearn':>17} {'graphc':>7}")
    for dataset, (hidden, batch_size, epochs) in ESTIMATOR_SETTINGS.items():
        X_train, X_test, y_train, y_test = estimator_split(dataset)
        for solver in ("sgd", "adam"):
            params = dict(hidden_layer_sizes=hidden, solver=solver, batch_size=batch_size, max_iter=epochs,
                          random_state=0, learning_rate_init=0.1 if solver == "sgd" else 0.01)
            rows, compiling = {}, []
            for name, cls in (("sklearn", SklearnMLP), ("graphc", MLPClassifier)):
                times = []
                for _ in range(repeat):
                    clf = cls(**params)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        start = time.perf_counter()
                        clf.fit(X_train, y_train)
                        times.append(time.perf_counter() - start)
                    if name == "graphc":
                        compiling.append(clf._loss_step.stats.total_seconds)
                rows[name] = (statistics.median(times), clf.score(X_test, y_test))
            (sk_s, sk_acc), (gc_s, gc_acc) = rows["sklearn"], rows["graphc"]
            compiling = statistics.median(compiling)
            print(f"   {dataset + ', ' + solver:<16} {_fmt(sk_s):>13} {_fmt(gc_s):>10} {gc_s / sk_s:>7.1f}x "
                  f"{_fmt(compiling):>16} {sk_acc * 100:>16.1f}% {gc_acc * 100:>6.1f}%")


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 10 else f"{seconds:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-micrograd", action="store_true", help="skip micrograd (about 1.5 s per step)")
    parser.add_argument("--only", choices=["moons", "digits", "throughput", "estimators"],
                        help="run one section")
    args = parser.parse_args()
    import sklearn
    import torch
    print(f"graphc {graphc.__version__}, PyTorch {torch.__version__} (1 thread), scikit-learn {sklearn.__version__}, "
          f"NumPy {np.__version__}, Python {sys.version.split()[0]}")
    sections = {"moons": lambda: moons_table(args.quick, not args.no_micrograd),
                "digits": lambda: digits_table(args.quick),
                "throughput": lambda: throughput_table(args.quick),
                "estimators": lambda: estimator_table(args.quick)}
    for name, run in sections.items():
        if args.only in (None, name):
            run()


if __name__ == "__main__":
    main()
