"""graphc's contenders: the C and NumPy backends through ``train`` (many steps in one call)
and ``mean_and_grad`` (one call per step, params in an array), and ``graphc.compile``
around micrograd's demo loss as written."""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
import warnings

import numpy as np

import graphc
from graphc import Value, demo
from graphc.losses import softmax_cross_entropy

from .workloads import (MNIST_LR, MOONS_L2, MOONS_LR, MOONS_STEPS, ROWS, Result, demo_rate, median_seconds,
                        mnist_data, mnist_model, mnist_rows, moons, moons_model)

PACKAGE = "graphc"


def version() -> str:
    return f"graphc {graphc.__version__}"


@contextlib.contextmanager
def cold_cache():
    """graphc's C library cache pointed at a new, empty directory for the duration."""
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


def moons_step(backend: str, numerics: str = "exact"):
    """The demo's per-row SVM loss with the L2 term inside: its mean is data loss + L2."""
    model = moons_model()
    params = model.parameters()
    return graphc.compile(lambda x, yi: (1 + -yi * model(x)).relu() + MOONS_L2 * sum(p * p for p in params),
                          backend=backend, numerics=numerics)


def mnist_step(backend: str, hidden: int = 50, numerics: str = "exact", model=None):
    model = mnist_model(hidden) if model is None else model
    return graphc.compile(lambda x, t: softmax_cross_entropy(model(x), t), backend=backend, numerics=numerics)


def sgd_per_call(step, X, Y, lr: float, batch: int, steps: int):
    """``steps`` SGD steps, one ``mean_and_grad`` call each, over batches of X in turn:
    a function of no arguments returning the losses."""
    step.mean_and_grad(X[:batch], Y[:batch])  # compiles, and makes step.params known
    params = np.array([p.data for p in step.params])
    starts = [(k * batch) % len(X) for k in range(steps)]

    def run():
        nonlocal params
        losses = []
        for s in starts:
            loss, grad = step.mean_and_grad(X[s:s + batch], Y[s:s + batch], params=params)
            params = params - lr * grad
            losses.append(loss)
        return losses
    return run


def step_train(backend: str, quick: bool, numerics: str = "exact") -> Result:
    X, y = moons()
    step = moons_step(backend, numerics)
    order = np.tile(np.arange(len(X)), MOONS_STEPS)
    losses = step.train(X, y, lr=MOONS_LR, order=order, batch_size=len(X)).tolist()
    seconds = median_seconds(lambda: step.train(X, y, lr=MOONS_LR, order=order, batch_size=len(X)), 5 if quick else 30)
    return Result(seconds / MOONS_STEPS, losses)


def step_per_call(backend: str, quick: bool, numerics: str = "exact") -> Result:
    X, y = moons()
    run = sgd_per_call(moons_step(backend, numerics), X, y, MOONS_LR, len(X), MOONS_STEPS)
    losses = run()
    return Result(median_seconds(run, 5 if quick else 30) / MOONS_STEPS, losses)


def mnist_train(backend: str, batch: int, quick: bool, numerics: str = "exact") -> Result:
    X, Y = mnist_data(mnist_rows(batch, quick))
    step = mnist_step(backend, numerics=numerics)
    epoch = lambda: step.train(X, Y, lr=MNIST_LR, batch_size=batch)  # noqa: E731
    losses = epoch().tolist()
    return Result(median_seconds(epoch, 1 if quick else 5, 0) / len(X), losses)


def mnist_per_call(backend: str, batch: int, quick: bool) -> Result:
    X, Y = mnist_data(mnist_rows(batch, quick))
    run = sgd_per_call(mnist_step(backend), X, Y, MNIST_LR, batch, len(X) // batch)
    losses = run()
    return Result(median_seconds(run, 1 if quick else 5, 0) / len(X), losses)


def compile_cold(backend: str, hidden: int) -> Result:
    """From ``graphc.compile`` to the first loss and gradient (and SGD step), cold C cache; the
    model is made before, as the JAX contender's params are."""
    X, Y = mnist_data(32)
    model = mnist_model(hidden)
    with cold_cache():
        start = time.perf_counter()
        step = mnist_step(backend, hidden, model=model)
        loss, grad = step.mean_and_grad(X, Y)
        np.array([p.data for p in step.params]) - MNIST_LR * grad
        seconds = time.perf_counter() - start
    return Result(seconds, [loss])


def rows(backend: str, quick: bool, numerics: str = "exact") -> Result:
    X, y = moons(ROWS)
    model = moons_model()
    step = graphc.compile(lambda x, yi: (1 + -yi * model(x)).relu(), backend=backend, numerics=numerics)
    loss, _ = step.mean_and_grad(X, y)
    return Result(median_seconds(lambda: step.mean_and_grad(X, y), 5 if quick else 30) / ROWS, [loss])


def demo_loss(model, X, y, value=Value):
    """micrograd demo.ipynb's ``loss()`` (graphc.demo.loss), X, y and the model from outside."""
    return lambda batch_size=None: demo.loss(model, X, y, value)


def demo_loop(model, loss, steps: int) -> tuple[list, list]:
    """demo.ipynb's optimization loop for ``steps`` steps: (seconds per step, losses)."""
    times, losses = [], []
    for k in range(steps):
        start = time.perf_counter()
        total_loss, _ = loss()
        model.zero_grad()
        total_loss.backward()
        learning_rate = demo_rate(k)
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        times.append(time.perf_counter() - start)
        losses.append(total_loss.data)
    return times, losses


def demo_compiled(quick: bool, backend: str | None = None) -> Result:
    """``graphc.compile`` around the loss, nothing else changed; the first (compiling) step untimed."""
    X, y = moons()
    model = moons_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", graphc.errors.TracerWarning)  # frozen data: X and y are captured
        times, losses = demo_loop(model, graphc.compile(demo_loss(model, X, y), backend=backend),
                                  6 if quick else 31)
    return Result(float(np.median(times[1:])), losses)


CONTENDERS = {
    "step": {"graphc C, 100 steps in one `train` call": lambda q: step_train("c", q),
             "graphc C, `mean_and_grad` per step": lambda q: step_per_call("c", q),
             "graphc NumPy, 100 steps in one `train` call": lambda q: step_train("numpy", q),
             "graphc NumPy, `mean_and_grad` per step": lambda q: step_per_call("numpy", q)},
    "mnist32": {"graphc C, one `train` call per epoch": lambda q: mnist_train("c", 32, q),
                "graphc C, `mean_and_grad` per batch": lambda q: mnist_per_call("c", 32, q),
                "graphc NumPy, one `train` call per epoch": lambda q: mnist_train("numpy", 32, q)},
    "mnist1": {"graphc C, one `train` call per epoch": lambda q: mnist_train("c", 1, q),
               "graphc C, `mean_and_grad` per sample": lambda q: mnist_per_call("c", 1, q),
               "graphc NumPy, one `train` call per epoch": lambda q: mnist_train("numpy", 1, q)},
    "compile50": {"graphc C": lambda q: compile_cold("c", 50),
                  "graphc NumPy": lambda q: compile_cold("numpy", 50)},
    "compile100": {"graphc C": lambda q: compile_cold("c", 100),
                   "graphc NumPy": lambda q: compile_cold("numpy", 100)},
    "rows": {"graphc C, `mean_and_grad`": lambda q: rows("c", q),
             "graphc NumPy, `mean_and_grad`": lambda q: rows("numpy", q)},
    "demo": {"graphc.compile around the loss, unchanged (the default backend: C)": demo_compiled,
             "graphc.compile(..., backend='numpy') around the loss": lambda q: demo_compiled(q, "numpy")},
}
