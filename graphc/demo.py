"""micrograd's moons demo on graphc: a 2-16-16-1 MLP trained with an SVM max-margin loss.

Run with ``graphc demo`` (``python -m graphc demo``), ``make demo`` or ``python
examples/moons.py``; it ships inside the package so an installed graphc runs it too.
Same data, same model, same loss and the same learning-rate schedule as micrograd's
demo.ipynb.  Three ways to run the same 100 steps:

* default: the per-sample loss is compiled once and evaluated over all 100 rows in one
  batched call (``step.mean(X, y) + reg``), generated C where a C compiler is found, else NumPy;
* ``--python``: the full-batch loss compiled to straight-line Python;
* ``--eager``: micrograd's own loop on graphc's eager engine.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np

import graphc
from graphc import Value
from graphc.nn import MLP
from graphc.progress import progress_bar


def make_moons(n_samples: int = 100, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``make_moons(n_samples, noise=noise)``, drawn the same way from NumPy's
    global random state, so the demo needs no scikit-learn (tests/test_demo.py compares)."""
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    X = np.vstack([np.append(np.cos(t_out), 1 - np.cos(t_in)),
                   np.append(np.sin(t_out), 1 - np.sin(t_in) - 0.5)]).T
    y = np.hstack([np.zeros(n_out, dtype=np.intp), np.ones(n_in, dtype=np.intp)])
    order = np.arange(n_samples)
    np.random.shuffle(order)
    X, y = X[order], y[order]
    X += np.random.normal(scale=noise, size=X.shape)
    return X, y


def make_data():
    """micrograd's dataset and model: seeds 1337, 100 points, labels -1/+1, MLP(2, [16, 16, 1])."""
    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    model = MLP(2, [16, 16, 1])
    return X, y, model


def loss(model, X, y, value=Value):
    """SVM max-margin loss averaged over the batch, plus L2 regularization; and the accuracy
    (micrograd demo.ipynb's ``loss()``; ``value``: the Value class, graphc's or micrograd's)."""
    inputs = [list(map(value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    alpha = 1e-4
    reg_loss = alpha * sum((p * p for p in model.parameters()))
    total_loss = data_loss + reg_loss
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
    return total_loss, sum(accuracy) / len(accuracy)


def sgd_step(model, total_loss, k: int) -> None:
    """micrograd's update: gradients from zero, backward, then SGD with lr = 1.0 - 0.9*k/100."""
    model.zero_grad()
    total_loss.backward()
    learning_rate = 1.0 - 0.9 * k / 100
    for p in model.parameters():
        p.data -= learning_rate * p.grad


def batch_loss(model):
    """The same loss as a function of the data, for graphc.compile: X and y arrive as Values."""
    def loss(X, y):
        scores = [model(row) for row in X]
        losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        return data_loss + reg_loss, scores
    return loss


def train_compiled(model, X, y, steps: int = 100, log=print, progress: bool = False):
    """micrograd's loop on compiled code: trace once, then call the generated Python each step
    (named, as ``--python`` says: the default backend is C where a compiler is found)."""
    step = graphc.compile(batch_loss(model), backend="python")
    history = []
    with progress_bar(steps, "moons", enabled=progress) as bar:
        for k in range(steps):
            start = time.perf_counter()
            total_loss, scores = step(X, y)
            sgd_step(model, total_loss, k)
            acc = sum((yi > 0) == (s.data > 0) for yi, s in zip(y, scores)) / len(y)
            history.append((total_loss.data, acc))
            if k == 0:
                log(f"compiled ({step.backend}): {step.stats}")
            _step_done(k, total_loss.data, acc, f"{(time.perf_counter() - start) * 1e3:.1f} ms", log, bar)
    assert step.trace_count == 1
    return history


def train_batched(model, X, y, steps: int = 100, log=print, progress: bool = False):
    """The batched loop: a per-sample loss, averaged over the rows by generated code (the
    default backend's: C where a compiler is found, else NumPy)."""
    def sample_loss(x, yi):
        return (1 + -yi * model(x)).relu()

    step = graphc.compile(sample_loss)
    scores = graphc.compile(model)  # the model itself, for the accuracy: X (N, 2) -> (N,)
    history, times = [], []
    with progress_bar(steps, "moons", enabled=progress) as bar:
        for k in range(steps):
            acc = float(np.mean((y > 0) == (scores(X) > 0)))  # before the update, as micrograd reports it
            start = time.perf_counter()
            total_loss = step.mean(X, y) + 1e-4 * sum(p * p for p in model.parameters())
            sgd_step(model, total_loss, k)
            times.append(time.perf_counter() - start)
            history.append((total_loss.data, acc))
            if k == 0:
                log(f"compiled: {step.stats}")
            _step_done(k, total_loss.data, acc, f"{times[-1] * 1e3:.2f} ms", log, bar)
    log(f"median step {sorted(times)[len(times) // 2] * 1e3:.2f} ms (forward, backward and update; "
        f"the first step includes compiling)")
    assert step.trace_count == 1
    return history


def train(model, X, y, steps: int = 100, log=print, progress: bool = False):
    """micrograd's training loop: full batch SGD with lr = 1.0 - 0.9*k/100. Returns the losses."""
    history = []
    with progress_bar(steps, "moons", enabled=progress) as bar:
        for k in range(steps):
            start = time.perf_counter()
            total_loss, acc = loss(model, X, y)
            sgd_step(model, total_loss, k)
            history.append((total_loss.data, acc))
            _step_done(k, total_loss.data, acc, f"{(time.perf_counter() - start) * 1e3:.1f} ms", log, bar)
    return history


def _step_done(k: int, loss_value: float, accuracy: float, took: str, log, bar) -> None:
    """One step's line, as micrograd prints it; or, with a progress bar, the bar moved on."""
    if bar is None:
        log(f"step {k:3d}  loss {loss_value:.6f}  accuracy {accuracy * 100:5.1f}%  ({took})")
    else:
        bar.update(loss=loss_value, accuracy=accuracy)


def plot_decision_boundary(model, X, y, path: Path) -> bool:
    """Write micrograd's decision-boundary picture to ``path``; False if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    h = 0.25
    x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
    y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    grid = np.c_[xx.ravel(), yy.ravel()]
    Z = (graphc.compile(model)(grid) > 0).reshape(xx.shape)
    fig = plt.figure()
    plt.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
    plt.scatter(X[:, 0], X[:, 1], c=y, s=40, cmap=plt.cm.Spectral)
    plt.xlim(xx.min(), xx.max())
    plt.ylim(yy.min(), yy.max())
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    argv = argv or []
    loop = train if "--eager" in argv else train_compiled if "--python" in argv else train_batched
    X, y, model = make_data()
    print(model)
    print(f"number of parameters {len(model.parameters())}")
    history = loop(model, X, y, progress=True)
    final_loss, final_acc = history[-1]
    print(f"final loss {final_loss:.6f}, accuracy {final_acc * 100:.1f}%")
    out = Path("out/moons_decision_boundary.png")
    if plot_decision_boundary(model, X, y, out):
        print(f"decision boundary written to {out}")
    else:
        print("matplotlib is not installed: skipped the decision-boundary plot")
    return 0 if final_acc == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
