"""PyTensor's contenders: one compiled ``pytensor.function`` per workload computing the loss
and its gradients, with the SGD update as the function's ``updates`` (params in shared
variables), called once per step.  float64, its default C backend, one thread (OpenMP off,
set by bench/peers.py before this process starts)."""
from __future__ import annotations

import os
import tempfile
import time

from .workloads import (MNIST_LR, MOONS_L2, MOONS_LR, MOONS_STEPS, ROWS, Result, layer_arrays, median_seconds,
                        mnist_data, mnist_model, mnist_rows, moons, moons_model)

PACKAGE = "pytensor"


def _modules():
    """pytensor and pytensor.tensor, imported here so that bench/peers.py can list this family without it."""
    import pytensor
    import pytensor.tensor as pt
    return pytensor, pt


def version() -> str:
    return f"PyTensor {_modules()[0].__version__}"


def shared_params(model) -> list:
    pytensor, _ = _modules()
    return [(pytensor.shared(W), pytensor.shared(b)) for W, b in layer_arrays(model)]


def mlp(params, X):
    _, pt = _modules()
    h = X
    for W, b in params[:-1]:
        h = pt.maximum(h @ W.T + b, 0.0)
    W, b = params[-1]
    return h @ W.T + b


def svm_loss(params, X, y, l2=MOONS_L2):
    _, pt = _modules()
    loss = pt.mean(pt.maximum(1.0 - y * mlp(params, X)[:, 0], 0.0))
    return loss + l2 * sum(pt.sum(W * W) + pt.sum(b * b) for W, b in params) if l2 else loss


def cross_entropy(params, X, T):
    _, pt = _modules()
    z = mlp(params, X)
    top = pt.max(z, axis=1, keepdims=True)
    return pt.mean(top[:, 0] + pt.log(pt.sum(pt.exp(z - top), axis=1)) - pt.sum(T * z, axis=1))


def sgd_function(loss_of, model, lr: float, target: str = "vector"):
    """pytensor.function([X, target], loss) that also moves every param by -lr * its gradient."""
    pytensor, pt = _modules()
    params = shared_params(model)
    X, t = pt.matrix("X"), getattr(pt, target)("t")
    loss = loss_of(params, X, t)
    flat = [p for layer in params for p in layer]
    grads = pytensor.grad(loss, flat)
    return pytensor.function([X, t], loss, updates=[(p, p - lr * g) for p, g in zip(flat, grads)])


def per_call(function, batches):
    return lambda: [float(function(*batch)) for batch in batches]


def step(quick: bool) -> Result:
    run = per_call(sgd_function(svm_loss, moons_model(), MOONS_LR), [moons()] * MOONS_STEPS)
    losses = run()
    return Result(median_seconds(run, 5 if quick else 30) / MOONS_STEPS, losses)


def mnist(batch: int, quick: bool) -> Result:
    X, Y = mnist_data(mnist_rows(batch, quick))
    function = sgd_function(cross_entropy, mnist_model(), MNIST_LR, "matrix")
    run = per_call(function, [(X[s:s + batch], Y[s:s + batch]) for s in range(0, len(X), batch)])
    losses = run()
    return Result(median_seconds(run, 2 if quick else 10) / mnist_rows(batch, quick), losses)


def compile_cold(hidden: int) -> Result:
    """From building the graph to the first step's result, with an empty compile cache (PyTensor
    compiles its ops' C code there on first use), as a new user's first run does."""
    with tempfile.TemporaryDirectory() as cache:
        os.environ["PYTENSOR_FLAGS"] = f"{os.environ.get('PYTENSOR_FLAGS', '')},base_compiledir={cache}"
        pytensor, _ = _modules()
        X, Y = mnist_data(32)
        model = mnist_model(hidden)  # made before, as the JAX contender's params are
        start = time.perf_counter()
        loss = float(sgd_function(cross_entropy, model, MNIST_LR, "matrix")(X, Y))
        seconds = time.perf_counter() - start
        assert str(pytensor.config.compiledir).startswith(cache), "the cold cache is PyTensor's"
    return Result(seconds, [loss])


def rows(quick: bool) -> Result:
    pytensor, pt = _modules()
    params = shared_params(moons_model())
    X, y = pt.matrix("X"), pt.vector("y")
    loss = svm_loss(params, X, y, 0.0)
    function = pytensor.function([X, y], [loss, *pytensor.grad(loss, [p for layer in params for p in layer])])
    data = moons(ROWS)
    first = float(function(*data)[0])
    return Result(median_seconds(lambda: function(*data), 5 if quick else 30) / ROWS, [first])


CONTENDERS = {
    "step": {"PyTensor function, one call per step": step},
    "mnist32": {"PyTensor function, one call per batch": lambda q: mnist(32, q)},
    "mnist1": {"PyTensor function, one call per sample": lambda q: mnist(1, q)},
    "compile50": {"PyTensor function, cold cache": lambda q: compile_cold(50)},
    "compile100": {"PyTensor function, cold cache": lambda q: compile_cold(100)},
    "rows": {"PyTensor function (loss and gradients)": rows},
}
