"""micrograd's neural-network modules, with its signatures, reprs and initialisation order.

``random.seed(s)`` before building a model gives micrograd's exact weights, and a neuron
sums ``b + w0*x0 + w1*x1 + ...`` left to right as micrograd does, so forward results are
bit-identical.  graphc adds names: every parameter gets a ``label`` such as
``L0.N3.w1`` (layer 0, neuron 3, weight 1) that the compiler uses for readable code.

Two keyword-only additions, whose defaults keep micrograd's behaviour and weights:
``activation=`` picks the hidden nonlinearity (micrograd hard-codes relu), and ``init=``
draws a layer's weights and biases at once, e.g. :func:`glorot_uniform` as scikit-learn
does (micrograd draws ``random.uniform(-1, 1)`` weights and zero biases, neuron by neuron).

``state_dict()`` and ``load_state_dict()`` read and set the numbers by name, as in PyTorch:
a Layer is ``weight`` (nout, nin) and ``bias`` (nout,), like ``torch.nn.Linear``, so an MLP's
keys are ``layers.0.weight``, ``layers.0.bias``, ``layers.1.weight``, ...
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from .engine import Value, data_written
from .errors import ArgumentError, GraphcError, LoadError, ShapeError
from .tree import numbers_array, plain_array

#: Hidden nonlinearities: name (a Value method, or "identity") -> the prefix of a Neuron's repr.
ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "identity": "Linear"}

#: ``init(fan_in, fan_out) -> (weights, biases)``: weights of shape (fan_in, fan_out) --
#: column j feeds neuron j, scikit-learn's ``coefs_`` layout -- and biases of shape (fan_out,).
Initializer = Callable[[int, int], "tuple[Any, Any]"]

#: A state-dict entry: its shape, and the Values that hold its numbers in C (row-major) order.
_Entry = "tuple[tuple[int, ...], list[Value]]"


class LoadResult(NamedTuple):
    """What ``load_state_dict`` left alone: keys the model has but the state lacked, and the reverse."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class: a bag of parameters."""

    def zero_grad(self) -> None:
        """Set every parameter's gradient back to 0, as before each backward()."""
        for p in self.parameters():
            p.grad = 0

    def parameters(self) -> list[Value]:
        """The trainable Values, in a fixed order (micrograd's)."""
        return []

    def state_dict(self) -> dict[str, np.ndarray]:
        """The params' numbers by name, as PyTorch's ``state_dict``: float64 NumPy arrays (copies).

        A Layer is ``weight`` (nout, nin) -- row j is neuron j's weights -- and ``bias``
        (nout,), as ``torch.nn.Linear``; a Neuron is ``weight`` (nin,) and ``bias`` (a 0-d
        array).  Any other Module names what its attributes hold, joined with dots, in
        attribute order: a Module by its own keys (an MLP's ``layers.0.weight``), a list by
        index, a Value param by the attribute's name, a list of Value params as a 1-D array.
        """
        return {key: np.array([v._data for v in values], dtype=np.float64).reshape(shape)
                for key, (shape, values) in self._state_entries().items()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> LoadResult:
        """Set the params from ``state`` (a mapping as :meth:`state_dict` returns: arrays, or
        anything ``np.asarray`` reads as numbers of the same shapes).

        All or nothing: every entry is checked first, and on a mismatch -- with ``strict``
        a missing or unexpected key (:class:`LoadError`), else a wrong shape
        (:class:`ShapeError`) or something other than numbers (:class:`ArgumentError`) --
        the error names the key and no param changes.  ``strict=False`` loads the keys both
        have.  Returns the keys the model has that ``state`` lacks, and the reverse.
        """
        if not isinstance(state, Mapping):
            raise ArgumentError(f"load_state_dict needs a mapping from names to arrays (as state_dict() "
                                f"returns); got {type(state).__name__}")
        entries = self._state_entries()
        missing = [key for key in entries if key not in state]
        unexpected = [key for key in state if key not in entries]
        if strict and (missing or unexpected):
            raise LoadError(f"load_state_dict: {_key_mismatch(missing, unexpected)}; "
                            f"{type(self).__name__} has keys {', '.join(entries)}"[:600])
        updates = []
        for key, (shape, values) in entries.items():
            if key in state:
                updates += zip(values, _checked_numbers(key, state[key], shape))
        for value, number in updates:
            value._data = number
        data_written()
        return LoadResult(missing, unexpected)

    def _state_entries(self) -> dict[str, _Entry]:
        """Key -> entry, found through the attributes and checked to cover parameters()."""
        return self._covering({})

    def _covering(self, entries: dict[str, _Entry], skip: tuple[str, ...] = ()) -> dict[str, _Entry]:
        """``entries`` and those the attributes but ``skip`` reach, checked to cover parameters()."""
        seen = {id(self)}
        for name, value in getattr(self, "__dict__", {}).items():
            if name not in skip:
                _collect(entries, f"{name}.", value, seen)
        params = {id(p) for p in self.parameters()}
        entries = {k: e for k, e in entries.items() if all(id(v) in params for v in e[1])}
        found = {id(v) for _, values in entries.values() for v in values}
        lost = [p.label or f"parameters()[{k}]" for k, p in enumerate(self.parameters()) if id(p) not in found]
        if lost:
            raise GraphcError(f"state_dict: {type(self).__name__} holds params that none of its attributes "
                              f"(Modules, Values, lists of them) reaches: {', '.join(lost)}"[:400])
        return entries


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
        self._name("")  # w0, w1, ..., b: what a compiled neuron's code calls them (a layer prefixes them)

    def __call__(self, x):
        """The activation of b + w0*x0 + w1*x1 + ..., summed left to right as micrograd does."""
        if len(x) != len(self.w):  # micrograd's zip would silently drop or ignore inputs
            raise ShapeError(f"{self!r} takes {len(self.w)} inputs; got {len(x)}")
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        if not self.nonlin or self.activation == "identity":
            return act
        return getattr(act, self.activation)()  # relu, tanh, ... (checked in __init__)

    def parameters(self) -> list[Value]:
        """The weights, then the bias."""
        return self.w + [self.b]

    def _state_entries(self) -> dict[str, _Entry]:
        entries = {"weight": ((len(self.w),), list(self.w)), "bias": ((), [self.b])}
        # a subclass's params of its own (a gain) were left out, silently (an outside hunt)
        return entries if type(self) is Neuron else self._covering(entries, skip=("w", "b"))

    def _name(self, prefix: str) -> None:
        for i, w in enumerate(self.w):
            w.label = f"{prefix}w{i}"
        self.b.label = f"{prefix}b"

    def __repr__(self) -> str:
        return f"{ACTIVATIONS[self.activation] if self.nonlin else 'Linear'}Neuron({len(self.w)})"


_NEURON_PARAMETERS = Neuron.parameters  # Layer.parameters joins what it would return, inline


class Layer(Module):
    """``nout`` neurons reading the same inputs; a single neuron's output is returned bare.

    ``init`` (see :data:`Initializer`) draws the whole layer at once; other keyword
    arguments go to every :class:`Neuron`.
    """

    def __init__(self, nin: int, nout: int, *, init: Initializer | None = None, **kwargs) -> None:
        _check_size(nout, "Layer(nin, nout)", "nout, a number of neurons", minimum=1)
        if init is None:
            self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]
        else:
            weights, biases = init(nin, nout)
            try:
                weights, biases = np.asarray(weights, dtype=np.float64), np.asarray(biases, dtype=np.float64)
            except Exception as error:  # text, ragged lists, a torch tensor that requires grad
                raise ValueError(f"init({nin}, {nout}) must return two arrays of numbers (weights, biases); "
                                 f"NumPy cannot read them: {type(error).__name__}: {error}"[:300]) from None
            if weights.shape != (nin, nout) or biases.shape != (nout,):
                raise ValueError(f"init({nin}, {nout}) must return weights of shape ({nin}, {nout}) and biases of "
                                 f"shape ({nout},); got {weights.shape} and {biases.shape}")
            self.neurons = [Neuron(nin, w=weights[:, j].tolist(), b=float(biases[j]), **kwargs) for j in range(nout)]
        self._name("")  # N0.w0, ..., N0.b, N1.w0, ...: an MLP prefixes them with its layer's L0., L1., ...

    def __call__(self, x):
        """Every neuron on the same inputs: a list, or a bare Value for one neuron."""
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        """Every neuron's parameters, neuron by neuron."""
        joined: list[Value] = []
        for n in self.neurons:  # a list at a time: half the time of a comprehension over Values
            if type(n).parameters is _NEURON_PARAMETERS:  # its weights, then its bias, without the call
                joined += n.w
                joined.append(n.b)
            else:
                joined += n.parameters()
        return joined

    def _state_entries(self) -> dict[str, _Entry]:
        nin = len(self.neurons[0].w)
        entries = {"weight": ((len(self.neurons), nin), [w for n in self.neurons for w in n.w]),
                   "bias": ((len(self.neurons),), [n.b for n in self.neurons])}
        if type(self) is Layer and all(type(n) is Neuron for n in self.neurons):
            return entries
        # a neuron subclass's params of its own (a gain), as neurons.k.g: they were left out, and
        # load_state_dict left them as they were, silently (an outside hunt)
        for k, neuron in enumerate(self.neurons):
            entries.update((f"neurons.{k}.{key}", entry) for key, entry in neuron._state_entries().items()
                           if key not in ("weight", "bias"))
        return self._covering(entries, skip=("neurons",))

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
        joined: list[Value] = []
        for layer in self.layers:
            joined += layer.parameters()
        return joined

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


def _collect(entries: dict, prefix: str, obj: Any, seen: set) -> None:
    """Add the state-dict entries of the attribute value ``obj``, its keys starting with
    ``prefix``: depth first, attributes in order, with a stack of its own (a chain of 3,000
    Modules each holding the next hit Python's recursion limit: an outside hunt)."""
    stack = [(prefix, obj)]
    while stack:
        prefix, obj = stack.pop()
        if isinstance(obj, Value):
            entries[prefix[:-1]] = ((), [obj])
        elif isinstance(obj, (list, tuple)) and obj and all(isinstance(v, Value) for v in obj):
            entries[prefix[:-1]] = ((len(obj),), list(obj))
        elif id(obj) in seen or not isinstance(obj, (Module, list, tuple)):
            continue  # a cycle, or a setting such as an activation name
        elif isinstance(obj, Module) and type(obj)._state_entries is not Module._state_entries:
            entries.update((prefix + key, entry) for key, entry in obj._state_entries().items())
        else:
            seen.add(id(obj))
            items = enumerate(obj) if isinstance(obj, (list, tuple)) else getattr(obj, "__dict__", {}).items()
            stack += reversed([(f"{prefix}{name}.", value) for name, value in items])


def _key_mismatch(missing: list[str], unexpected: list[Any]) -> str:
    parts = [f"missing keys {', '.join(missing)}"] if missing else []
    if unexpected:
        parts.append(f"unexpected keys {', '.join(map(repr, unexpected))}")
    return "; ".join(parts)


def _checked_numbers(key: str, value: Any, shape: tuple[int, ...]) -> list[float]:
    """``value``'s numbers as floats in C order, if it is an array of numbers of ``shape``."""
    try:
        array = numbers_array(value)
    except OverflowError:
        raise ArgumentError(f"load_state_dict: {key} holds a number that does not fit in a float "
                            f"(|x| < 1.8e308)") from None
    if array is None or array.dtype.kind not in "iuf":
        dtype = "" if array is None else f" of dtype {array.dtype}"
        hint = " that requires grad: pass its .detach(), as PyTorch's state_dict() holds" \
            if getattr(value, "requires_grad", False) is True and hasattr(value, "detach") else ""
        raise ArgumentError(f"load_state_dict: {key} must be numbers (an array of shape {shape}); "
                            f"got {type(value).__name__}{dtype}{hint}"[:300])
    if array.shape != shape:
        raise ShapeError(f"load_state_dict: {key} must have shape {shape}; got {array.shape}")
    return plain_array(array, f"load_state_dict: {key}").astype(np.float64).ravel().tolist()


def _check_size(n: Any, where: str, what: str, minimum: int = 0) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"{where}: {what} must be an int; got {type(n).__name__} {n!r}"[:160])
    if n < minimum:
        raise ValueError(f"{where}: {what} must be at least {minimum}; got {n}")


def glorot_uniform(rng: Any, factor: float = 6.0) -> Initializer:
    """scikit-learn's MLP initialisation (Glorot & Bengio 2010): weights, then biases, of each
    layer drawn from ``rng.uniform(-bound, bound, shape)`` with ``bound = sqrt(factor /
    (fan_in + fan_out))``.  scikit-learn uses ``factor=2`` for logistic hidden units, 6 otherwise;
    with its ``RandomState`` this reproduces its initial ``coefs_`` and ``intercepts_`` exactly.
    ``rng`` may be an int seed or None, as scikit-learn's ``random_state``: a ``RandomState`` of it."""
    if rng is None or isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        rng = np.random.RandomState(rng)
    elif not callable(getattr(rng, "uniform", None)):
        raise TypeError(f"glorot_uniform takes a NumPy random generator (RandomState, Generator), an int seed "
                        f"or None; got {type(rng).__name__}")

    def init(fan_in: int, fan_out: int):
        bound = math.sqrt(factor / (fan_in + fan_out))
        return rng.uniform(-bound, bound, (fan_in, fan_out)), rng.uniform(-bound, bound, fan_out)
    return init
