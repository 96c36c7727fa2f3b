"""Handwritten digits with micrograd-style code: MLP(64, [32, 10]), softmax cross-entropy.

Run with ``python examples/digits.py``.  scikit-learn's bundled 8x8 digits (1797 images,
10 classes, no download), 75/25 split, minibatch SGD.  The loss is written per sample,
micrograd style -- ``graphc.losses.softmax_cross_entropy``, a numerically stable
log-sum-exp built from ``max``, ``exp`` and ``log`` -- and compiled once; each minibatch
is one batched call, ``step.mean(Xb, Yb)``.  ``--backend c`` runs generated C instead of
NumPy; ``--fused`` runs each epoch as one ``step.train(...)`` call (the same SGD steps,
with the params kept in one array instead of a Python loop over 2,410 Values per
minibatch).
"""
from __future__ import annotations

import argparse
import random
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphc
from graphc.losses import softmax_cross_entropy
from graphc.nn import MLP


def make_data(seed: int = 0):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixels 0..16 -> 0..1
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    random.seed(seed)
    model = MLP(64, [32, 10])
    return X_train, X_test, y_train, y_test, model


def cross_entropy(model):
    """Per-sample softmax cross-entropy: log(sum(exp(logits))) - logit of the true class, the
    log-sum-exp shifted by the largest logit so that exp never overflows (graphc.losses)."""
    def loss(x, onehot):
        return softmax_cross_entropy(model(x), onehot)
    return loss


def train(epochs: int = 20, batch_size: int = 32, learning_rate: float = 0.3, seed: int = 0, backend=None,
          log=print, fused: bool = False):
    """Train and return (per-epoch losses, test accuracy, seconds per epoch)."""
    X_train, X_test, y_train, y_test, model = make_data(seed)
    onehot = np.eye(10)[y_train]
    step = graphc.compile(cross_entropy(model), backend=backend)
    predict = graphc.compile(model, backend=backend)
    rng = np.random.default_rng(seed)
    losses, seconds = [], []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(X_train))
        total = 0.0
        rate = learning_rate * (1.0 - epoch / epochs)  # linear decay, as micrograd's demo
        if fused:
            losses_per_batch = step.train(X_train, onehot, lr=rate, batch_size=batch_size, order=order)
            sizes = [len(order[b:b + batch_size]) for b in range(0, len(order), batch_size)]
            total = float(np.dot(losses_per_batch, sizes))
        for begin in range(0, len(order) if not fused else 0, batch_size):
            batch = order[begin:begin + batch_size]
            loss = step.mean(X_train[batch], onehot[batch])
            model.zero_grad()
            loss.backward()
            for p in model.parameters():
                p.data -= rate * p.grad
            total += loss.data * len(batch)
        seconds.append(time.perf_counter() - start)
        losses.append(total / len(order))
        accuracy = float(np.mean(predict(X_test).argmax(axis=1) == y_test))
        log(f"epoch {epoch + 1:2d}  loss {losses[-1]:.4f}  test accuracy {accuracy * 100:5.1f}%  "
            f"({seconds[-1]:.3f} s)")
    return losses, accuracy, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.3)
    parser.add_argument("--backend", choices=["numpy", "c", "python"], default="numpy")
    parser.add_argument("--fused", action="store_true", help="one step.train call per epoch")
    args = parser.parse_args()
    _, accuracy, seconds = train(args.epochs, args.batch_size, args.lr, backend=args.backend, fused=args.fused)
    print(f"test accuracy {accuracy * 100:.1f}%; median epoch {sorted(seconds)[len(seconds) // 2]:.3f} s")


if __name__ == "__main__":
    main()
