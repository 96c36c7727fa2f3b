"""The workloads every contender runs: the same data, the same initial weights (drawn by
graphc.nn.MLP and handed to the peers as arrays), the same loss and SGD settings.

Each workload's contenders report seconds per ``unit`` (a step, a sample, a compile, a row)
and the losses of their first steps, which bench/peers.py compares with graphc's.
"""
from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from graphc.nn import MLP, glorot_uniform

MOONS_LR, MOONS_L2, MOONS_STEPS = 0.5, 1e-4, 100
MNIST_LR = 0.01
ROWS = 10_000


@dataclass(frozen=True)
class Workload:
    """One table of bench/peers.py (``--only GROUP`` runs a group's tables); ``full_only``:
    left out of ``--quick`` runs."""
    key: str
    group: str
    title: str
    unit: str
    full_only: bool = False


WORKLOADS = [
    Workload("step", "step", f"moons step: MLP(2, [16, 16, 1]), 100 rows, SVM loss + L2, SGD ({MOONS_STEPS} steps)",
             "step"),
    Workload("mnist32", "mnist", "MLP(784, [50, 10]) softmax cross-entropy, SGD at batch 32", "sample"),
    Workload("mnist1", "mnist", "MLP(784, [50, 10]) softmax cross-entropy, SGD at batch 1 (per-sample SGD)",
             "sample"),
    Workload("compile50", "compile", "compile MLP(784, [50, 10]) loss + gradient + SGD step, cold, to first result",
             "compile"),
    Workload("compile100", "compile", "compile MLP(784, [100, 10]), the same", "compile", full_only=True),
    Workload("rows", "rows", f"moons MLP forward + gradient of the mean SVM loss over {ROWS:,} rows", "row"),
    Workload("demo", "demo", "micrograd's demo loop: full-batch loss (100 rows, L2), zero_grad, backward, "
             "SGD with its decaying rate", "step"),
]
BY_KEY = {w.key: w for w in WORKLOADS}


class Result(NamedTuple):
    """What a contender reports: seconds per unit, and its losses from the start weights."""
    seconds: float
    losses: list


def median_seconds(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def moons(n: int = 100, seed: int = 1337) -> tuple[np.ndarray, np.ndarray]:
    """micrograd's demo data: make_moons with noise 0.1, labels -1 and 1."""
    from sklearn.datasets import make_moons  # here: importing scikit-learn takes a second
    np.random.seed(seed)
    X, y = make_moons(n_samples=n, noise=0.1)
    return X, (y * 2 - 1).astype(np.float64)


def moons_model() -> MLP:
    """micrograd's demo network with its seeded weights."""
    random.seed(1337)
    return MLP(2, [16, 16, 1])


def mnist_rows(batch: int, quick: bool) -> int:
    """Rows per timed epoch: 64 batches of 32, or 128 single rows (a quarter of that when quick)."""
    return (2048 if batch > 1 else 128) // (4 if quick else 1)


def mnist_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped rows (784 uniform 'pixels' in [0, 1)) with one-hot labels of 10 classes."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (rows, 784)), np.eye(10)[rng.integers(0, 10, rows)]


def mnist_model(hidden: int = 50) -> MLP:
    """MLP(784, [hidden, 10]) with Glorot-uniform weights (micrograd's uniform(-1, 1) saturates at 784 inputs)."""
    return MLP(784, [hidden, 10], init=glorot_uniform(np.random.default_rng(0)))


def layer_arrays(model: MLP) -> list[tuple[np.ndarray, np.ndarray]]:
    """The model's (weight of shape (out, in), bias) per layer, as float64 arrays."""
    state = model.state_dict()
    return [(state[f"layers.{k}.weight"], state[f"layers.{k}.bias"]) for k in range(len(model.layers))]


def demo_rate(k: int) -> float:
    """micrograd demo.ipynb's learning rate at step k."""
    return 1.0 - 0.9 * k / 100
