"""PyTorch's contenders: eager CPU, float64, one thread -- the same networks built from
``torch.nn.Linear`` with graphc's initial weights, ``loss.backward()`` and an SGD update
under ``no_grad`` (what a PyTorch user writes)."""
from __future__ import annotations

import statistics
import time

from .workloads import (MNIST_LR, MOONS_L2, MOONS_LR, MOONS_STEPS, ROWS, Result, demo_rate, layer_arrays,
                        median_seconds, mnist_data, mnist_model, mnist_rows, moons, moons_model)

PACKAGE = "torch"


def _torch():
    """torch, imported here so that bench/peers.py can list this family without PyTorch."""
    import torch
    torch.set_num_threads(1)
    return torch


def version() -> str:
    return f"PyTorch {_torch().__version__}"


def network(model):
    """torch.nn.Sequential of Linear and ReLU layers holding ``model``'s weights."""
    torch = _torch()
    layers = []
    for W, b in layer_arrays(model):
        linear = torch.nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def svm_loss(net, X, y, l2=MOONS_L2, scores=None):
    """The mean SVM loss plus ``l2`` times the sum of squared params (``scores``: net(X), if known)."""
    scores = net(X).squeeze(1) if scores is None else scores
    loss = _torch().relu(1 - y * scores).mean()
    return loss + l2 * sum((p * p).sum() for p in net.parameters()) if l2 else loss


def cross_entropy(net, X, T):
    z = net(X)
    return (_torch().logsumexp(z, dim=1) - (T * z).sum(dim=1)).mean()


def sgd(net, loss, lr: float) -> float:
    """zero_grad, backward, ``p -= lr * p.grad``: the loss before the step."""
    net.zero_grad()
    loss.backward()
    with _torch().no_grad():
        for p in net.parameters():
            p -= lr * p.grad
    return loss.item()


def per_call(net, loss_fn, batches, lr: float):
    return lambda: [sgd(net, loss_fn(net, *batch), lr) for batch in batches]


def step(quick: bool) -> Result:
    torch = _torch()
    X, y = (torch.from_numpy(a) for a in moons())
    run = per_call(network(moons_model()), svm_loss, [(X, y)] * MOONS_STEPS, MOONS_LR)
    losses = run()
    return Result(median_seconds(run, 5 if quick else 30) / MOONS_STEPS, losses)


def mnist(batch: int, quick: bool) -> Result:
    torch = _torch()
    X, Y = (torch.from_numpy(a) for a in mnist_data(mnist_rows(batch, quick)))
    batches = [(X[s:s + batch], Y[s:s + batch]) for s in range(0, len(X), batch)]
    run = per_call(network(mnist_model()), cross_entropy, batches, MNIST_LR)
    losses = run()
    return Result(median_seconds(run, 2 if quick else 10) / mnist_rows(batch, quick), losses)


def rows(quick: bool) -> Result:
    torch = _torch()
    X, y = (torch.from_numpy(a) for a in moons(ROWS))
    net = network(moons_model())

    def forward_backward():
        net.zero_grad()
        loss = svm_loss(net, X, y, 0.0)
        loss.backward()
        return loss.item()
    loss = forward_backward()
    return Result(median_seconds(forward_backward, 5 if quick else 30) / ROWS, [loss])


def demo(quick: bool) -> Result:
    """demo.ipynb's loop in PyTorch: full-batch loss with L2 and accuracy, backward, SGD."""
    torch = _torch()
    X, y = (torch.from_numpy(a) for a in moons())
    net = network(moons_model())
    times, losses = [], []
    for k in range(30 if quick else 100):
        start = time.perf_counter()
        scores = net(X).squeeze(1)
        total_loss = svm_loss(net, X, y, scores=scores)
        ((y > 0) == (scores > 0)).double().mean().item()  # the demo's accuracy, read every step
        losses.append(sgd(net, total_loss, demo_rate(k)))
        times.append(time.perf_counter() - start)
    return Result(statistics.median(times[1:]), losses)


CONTENDERS = {
    "step": {"PyTorch eager": step},
    "mnist32": {"PyTorch eager": lambda q: mnist(32, q)},
    "mnist1": {"PyTorch eager": lambda q: mnist(1, q)},
    "rows": {"PyTorch eager": rows},
    "demo": {"PyTorch eager": demo},
}
