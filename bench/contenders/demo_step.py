"""In-process tables of bench/peers.py: micrograd's moons demo step six ways (section 1 of
its docstring), and where graphc's C step spends its time."""
from __future__ import annotations

import random
import statistics
import time
import warnings

import graphc
from graphc import Value
from graphc.nn import MLP

from .workloads import median_seconds, moons


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
    compiled = graphc.compile(full_batch, backend="python")  # straight-line code, no batch recovery
    return lambda: _compiled_step(model, lambda: compiled(X, y))


def graphc_batched_step(X, y, backend="numpy"):
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
    rows.append(("graphc NumPy, demo loop", median_seconds(graphc_batched_step(X, y, "numpy"), repeat)))
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


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 10 else f"{seconds:.1f} s"
