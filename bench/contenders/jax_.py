"""JAX's contenders: ``jax.jit`` of a value_and_grad + SGD step called once per step, and
``jax.lax.scan`` over the steps inside one jitted call.  float64 (jax_enable_x64), CPU,
one thread (XLA_FLAGS, set by bench/peers.py before this process starts).  Data is put on
the device before timing; the loop blocks on the last result, so JAX's asynchronous
dispatch may overlap a step's Python with the previous step's run, as it would for a user."""
from __future__ import annotations

import time

from .workloads import (MNIST_LR, MOONS_L2, MOONS_LR, MOONS_STEPS, ROWS, Result, layer_arrays, median_seconds,
                        mnist_data, mnist_model, mnist_rows, moons, moons_model)

PACKAGE = "jax"


def _modules():
    """jax and jax.numpy, imported here so that bench/peers.py can list this family without JAX."""
    import jax
    jax.config.update("jax_enable_x64", True)
    return jax, jax.numpy


def version() -> str:
    import jax
    import jaxlib
    return f"JAX {jax.__version__} (jaxlib {jaxlib.__version__})"


def mlp(params, X):
    jax, _ = _modules()
    h = X
    for W, b in params[:-1]:
        h = jax.nn.relu(h @ W.T + b)
    W, b = params[-1]
    return h @ W.T + b


def svm_loss(params, X, y, l2=MOONS_L2):
    jax, jnp = _modules()
    data = jnp.mean(jax.nn.relu(1.0 - y * mlp(params, X)[:, 0]))
    return data + l2 * sum(jnp.sum(W * W) + jnp.sum(b * b) for W, b in params)


def cross_entropy(params, X, T):
    jax, jnp = _modules()
    z = mlp(params, X)
    return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.sum(T * z, axis=1))


def sgd_step(loss, lr: float):
    """(params, *batch) -> (params after one SGD step, the loss before it)."""
    jax, _ = _modules()

    def step(params, *batch):
        value, grads = jax.value_and_grad(loss)(params, *batch)
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), value
    return step


def device_params(model):
    _, jnp = _modules()
    return [(jnp.asarray(W), jnp.asarray(b)) for W, b in layer_arrays(model)]


def per_call(step, params, batches):
    """A function of no arguments running the jitted step once per batch: the losses."""
    def run():
        nonlocal params
        losses = []
        for batch in batches:
            params, loss = step(params, *batch)
            losses.append(loss)
        params[0][0].block_until_ready()
        return [float(v) for v in losses]
    return run


def step_jit(quick: bool) -> Result:
    jax, jnp = _modules()
    X, y = (jnp.asarray(a) for a in moons())
    run = per_call(jax.jit(sgd_step(svm_loss, MOONS_LR)), device_params(moons_model()), [(X, y)] * MOONS_STEPS)
    losses = run()
    return Result(median_seconds(run, 5 if quick else 30) / MOONS_STEPS, losses)


def step_scan(quick: bool) -> Result:
    jax, jnp = _modules()
    X, y = (jnp.asarray(a) for a in moons())
    step = sgd_step(svm_loss, MOONS_LR)
    train = jax.jit(lambda p, X, y: jax.lax.scan(lambda q, _: step(q, X, y), p, None, length=MOONS_STEPS))
    params = device_params(moons_model())
    losses = [float(v) for v in train(params, X, y)[1]]
    seconds = median_seconds(lambda: train(params, X, y)[1].block_until_ready(), 5 if quick else 30)
    return Result(seconds / MOONS_STEPS, losses)


def mnist_batches(batch: int, quick: bool):
    _, jnp = _modules()
    X, Y = mnist_data(mnist_rows(batch, quick))
    return [(jnp.asarray(X[s:s + batch]), jnp.asarray(Y[s:s + batch])) for s in range(0, len(X), batch)]


def mnist_jit(batch: int, quick: bool) -> Result:
    jax, _ = _modules()
    batches = mnist_batches(batch, quick)
    run = per_call(jax.jit(sgd_step(cross_entropy, MNIST_LR)), device_params(mnist_model()), batches)
    losses = run()
    return Result(median_seconds(run, 2 if quick else 10) / mnist_rows(batch, quick), losses)


def mnist_scan(batch: int, quick: bool) -> Result:
    jax, jnp = _modules()
    batches = mnist_batches(batch, quick)
    Xb, Yb = jnp.stack([b[0] for b in batches]), jnp.stack([b[1] for b in batches])
    step = sgd_step(cross_entropy, MNIST_LR)
    epoch = jax.jit(lambda p, Xb, Yb: jax.lax.scan(lambda q, b: step(q, *b), p, (Xb, Yb)))
    params = device_params(mnist_model())
    losses = [float(v) for v in epoch(params, Xb, Yb)[1]]
    seconds = median_seconds(lambda: epoch(params, Xb, Yb)[1].block_until_ready(), 2 if quick else 10)
    return Result(seconds / mnist_rows(batch, quick), losses)


def compile_cold(hidden: int) -> Result:
    """From ``jax.jit`` to the first step's result: trace, XLA compile, run (backend already up)."""
    jax, jnp = _modules()
    X, Y = (jnp.asarray(a) for a in mnist_data(32))
    params = device_params(mnist_model(hidden))
    jnp.zeros(1).block_until_ready()
    start = time.perf_counter()
    params, loss = jax.jit(sgd_step(cross_entropy, MNIST_LR))(params, X, Y)
    loss.block_until_ready()
    return Result(time.perf_counter() - start, [float(loss)])


def rows(quick: bool) -> Result:
    jax, jnp = _modules()
    X, y = (jnp.asarray(a) for a in moons(ROWS))
    value_and_grad = jax.jit(jax.value_and_grad(lambda p, X, y: svm_loss(p, X, y, 0.0)))
    params = device_params(moons_model())
    loss = float(value_and_grad(params, X, y)[0])
    seconds = median_seconds(lambda: value_and_grad(params, X, y)[1][0][0].block_until_ready(), 5 if quick else 30)
    return Result(seconds / ROWS, [loss])


CONTENDERS = {
    "step": {"JAX jit, one call per step": step_jit,
             "JAX lax.scan, 100 steps in one call": step_scan},
    "mnist32": {"JAX jit, one call per batch": lambda q: mnist_jit(32, q),
                "JAX lax.scan over the batches, one call": lambda q: mnist_scan(32, q)},
    "mnist1": {"JAX jit, one call per sample": lambda q: mnist_jit(1, q),
               "JAX lax.scan over the samples, one call": lambda q: mnist_scan(1, q)},
    "compile50": {"JAX jit, first call": lambda q: compile_cold(50)},
    "compile100": {"JAX jit, first call": lambda q: compile_cold(100)},
    "rows": {"JAX jit of value_and_grad": rows},
}

