"""micrograd's neural-network modules, with its signatures, reprs and initialisation order.

``random.seed(s)`` before building a model gives micrograd's exact weights, and a neuron
sums ``b + w0*x0 + w1*x1 + ...`` left to right as micrograd does, so forward results are
bit-identical.  graphc adds names: every parameter gets a ``label`` such as
``L0.N3.w1`` (layer 0, neuron 3, weight 1) that the compiler uses for readable code.
"""
from __future__ import annotations

import random

from .engine import Value


class Module:
    """Base class: a bag of parameters."""

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0

    def parameters(self) -> list[Value]:
        return []


class Neuron(Module):
    """``act(b + sum_i w_i * x_i)``, with relu as the activation unless ``nonlin=False``."""

    def __init__(self, nin: int, nonlin: bool = True) -> None:
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def _name(self, prefix: str) -> None:
        for i, w in enumerate(self.w):
            w.label = f"{prefix}w{i}"
        self.b.label = f"{prefix}b"

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons reading the same inputs; a single neuron's output is returned bare."""

    def __init__(self, nin: int, nout: int, **kwargs) -> None:
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def _name(self, prefix: str) -> None:
        for j, n in enumerate(self.neurons):
            n._name(f"{prefix}N{j}.")

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A multi-layer perceptron: relu layers, then a linear output layer."""

    def __init__(self, nin: int, nouts: list[int]) -> None:
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1) for i in range(len(nouts))]
        for i, layer in enumerate(self.layers):
            layer._name(f"L{i}.")

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
