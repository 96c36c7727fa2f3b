"""micrograd's neural-network modules, with its signatures, reprs and initialisation order.

``random.seed(s)`` before building a model gives micrograd's exact weights, and a neuron
sums ``b + w0*x0 + w1*x1 + ...`` left to right as micrograd does, so forward results are
bit-identical.  graphc adds names: every parameter gets a ``label`` such as
``L0.N3.w1`` (layer 0, neuron 3, weight 1) that the compiler uses for readable code.

Two keyword-only additions, whose defaults keep micrograd's behaviour and weights:
``activation=`` picks the hidden nonlinearity (micrograd hard-codes relu), and ``init=``
draws a layer's weights and biases at once, e.g. :func:`glorot_uniform` as scikit-learn
does (micrograd draws ``random.uniform(-1, 1)`` weights and zero biases, neuron by neuron).
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable, Sequence

import numpy as np

from .engine import Value
from .errors import ShapeError

#: Hidden nonlinearities: name (a Value method, or "identity") -> the prefix of a Neuron's repr.
ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "identity": "Linear"}

#: ``init(fan_in, fan_out) -> (weights, biases)``: weights of shape (fan_in, fan_out) --
#: column j feeds neuron j, scikit-learn's ``coefs_`` layout -- and biases of shape (fan_out,).
Initializer = Callable[[int, int], "tuple[Any, Any]"]


class Module:
    """Base class: a bag of parameters."""

    def zero_grad(self) -> None:
        """Set every parameter's gradient back to 0, as before each backward()."""
        for p in self.parameters():
            p.grad = 0

    def parameters(self) -> list[Value]:
        """The trainable Values, in a fixed order (micrograd's)."""
        return []


class Neuron(Module):
    """``act(b + sum_i w_i * x_i)``: relu unless ``nonlin=False`` (linear) or another ``activation``.

    ``w`` and ``b`` give the initial weights and bias; by default the weights are
    micrograd's ``random.uniform(-1, 1)`` draws and the bias is 0.
    """

    def __init__(self, nin: int, nonlin: bool = True, *, activation: str = "relu",
                 w: Sequence[float] | None = None, b: float = 0) -> None:
        _check_size(nin, "Neuron(nin)", "a number of inputs")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}; got {activation!r}")
        if w is None:
            self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        else:
            if len(w) != nin:
                raise ValueError(f"a neuron with {nin} inputs needs {nin} initial weights; got {len(w)}")
            self.w = [Value(float(wi)) for wi in w]
        self.b = Value(b)
        self.nonlin = nonlin
        self.activation = activation

    def __call__(self, x):
        """The activation of b + w0*x0 + w1*x1 + ..., summed left to right as micrograd does."""
        if len(x) != len(self.w):  # micrograd's zip would silently drop or ignore inputs
            raise ShapeError(f"{self!r} takes {len(self.w)} inputs; got {len(x)}")
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        if not self.nonlin or self.activation == "identity":
            return act
        return act.relu() if self.activation == "relu" else getattr(act, self.activation)()

    def parameters(self) -> list[Value]:
        """The weights, then the bias."""
        return self.w + [self.b]

    def _name(self, prefix: str) -> None:
        for i, w in enumerate(self.w):
            w.label = f"{prefix}w{i}"
        self.b.label = f"{prefix}b"

    def __repr__(self) -> str:
        return f"{ACTIVATIONS[self.activation] if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons reading the same inputs; a single neuron's output is returned bare.

    ``init`` (see :data:`Initializer`) draws the whole layer at once; other keyword
    arguments go to every :class:`Neuron`.
    """

    def __init__(self, nin: int, nout: int, *, init: Initializer | None = None, **kwargs) -> None:
        _check_size(nout, "Layer(nin, nout)", "nout, a number of neurons", minimum=1)
        if init is None:
            self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]
            return
        weights, biases = init(nin, nout)
        weights, biases = np.asarray(weights, dtype=np.float64), np.asarray(biases, dtype=np.float64)
        if weights.shape != (nin, nout) or biases.shape != (nout,):
            raise ValueError(f"init({nin}, {nout}) must return weights of shape ({nin}, {nout}) and biases of "
                             f"shape ({nout},); got {weights.shape} and {biases.shape}")
        self.neurons = [Neuron(nin, w=weights[:, j].tolist(), b=float(biases[j]), **kwargs) for j in range(nout)]

    def __call__(self, x):
        """Every neuron on the same inputs: a list, or a bare Value for one neuron."""
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        """Every neuron's parameters, neuron by neuron."""
        return [p for n in self.neurons for p in n.parameters()]

    def _name(self, prefix: str) -> None:
        for j, n in enumerate(self.neurons):
            n._name(f"{prefix}N{j}.")

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A multi-layer perceptron: hidden layers with ``activation`` (relu), then a linear output layer.

    ``init`` draws each layer's weights and biases, first layer first (default: micrograd's).
    """

    def __init__(self, nin: int, nouts: list[int], *, activation: str = "relu",
                 init: Initializer | None = None) -> None:
        _check_size(nin, "MLP(nin, nouts)", "nin, a number of inputs")
        if not isinstance(nouts, (list, tuple)) or not nouts:
            raise TypeError(f"MLP(nin, nouts): nouts is a non-empty list of layer sizes, e.g. [16, 16, 1]; "
                            f"got {type(nouts).__name__} {nouts!r}"[:160])
        for size in nouts:
            _check_size(size, "MLP(nin, nouts)", "every layer size in nouts", minimum=1)
        sz = [nin] + list(nouts)
        self.layers = [Layer(sz[i], sz[i + 1], init=init, nonlin=i != len(nouts) - 1, activation=activation)
                       for i in range(len(nouts))]
        for i, layer in enumerate(self.layers):
            layer._name(f"L{i}.")

    def __call__(self, x):
        """The layers applied in turn."""
        for layer in self.layers:
            x = layer([x] if isinstance(x, Value) else x)  # a hidden layer of one neuron returns it bare
        return x

    def parameters(self) -> list[Value]:
        """Every layer's parameters, first layer first."""
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


def _check_size(n: Any, where: str, what: str, minimum: int = 0) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"{where}: {what} must be an int; got {type(n).__name__} {n!r}"[:160])
    if n < minimum:
        raise ValueError(f"{where}: {what} must be at least {minimum}; got {n}")


def glorot_uniform(rng: Any, factor: float = 6.0) -> Initializer:
    """scikit-learn's MLP initialisation (Glorot & Bengio 2010): weights, then biases, of each
    layer drawn from ``rng.uniform(-bound, bound, shape)`` with ``bound = sqrt(factor /
    (fan_in + fan_out))``.  scikit-learn uses ``factor=2`` for logistic hidden units, 6 otherwise;
    with its ``RandomState`` this reproduces its initial ``coefs_`` and ``intercepts_`` exactly."""
    def init(fan_in: int, fan_out: int):
        bound = math.sqrt(factor / (fan_in + fan_out))
        return rng.uniform(-bound, bound, (fan_in, fan_out)), rng.uniform(-bound, bound, fan_out)
    return init
