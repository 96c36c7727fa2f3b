"""Layer-shaped random programs: what the re-rolling pass turns into dot, matvec, outer and vecmat.

The straight-line programs of :mod:`fuzzing` draw one op at a time over 2 params, so they
almost never contain a sum of two or more products sharing an operand vector -- the shape
:mod:`graphc.passes.reroll` rewrites into tensor ops, and the shape of every model.  The
programs here are built from it: layers of "neurons" ``b + w0*x0 + w1*x1 + ...`` whose
weights are params, elementwise functions of params (``w*0.5``, ``w.tanh()``,
``w.exp()``), inputs or constants; whose operands are the previous layer's lanes, inputs or
constants (a layer of constant rows); summed as an add chain, one ``sum`` op, or two
chains added (``(a*x + b*y) + (c*x + d*y)``), params on either side of a product, with
mixed extra terms (``w*x + y*0.5 + b``); a layer as wide as its input may add that input
back (a residual connection).  A neuron may read one lane only (``w*x``, which nothing
rolls), so the next layer reads scalars of their own rather than a vector's lanes, with
its neurons' products turned either way.  Outputs are some lanes of some layers, and the
scalar loss is one of them or their sum.
"""
from __future__ import annotations

import random

import numpy as np
from hypothesis import strategies as st

from graphc import Value, apply
from graphc.nn import ACTIVATIONS, MLP

#: Elementwise functions of a param used as a weight (defect 5: C "undeclared vN_t").
WEIGHT_FUNCTIONS = {"half": lambda w: w * 0.5, "tanh": lambda w: w.tanh(), "exp": lambda w: w.exp()}
#: Ordinary numbers: these programs look for structural bugs, not IEEE corner cases
#: (test_fuzz_exact.py and test_fuzz_backends.py cover those), so data stays finite.
NUMBERS = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
CONSTANTS = st.sampled_from([0.5, -1.0, 2.0, 0.0, -0.0, 0.1, 3.0])


class _Draws:
    """The pieces a program is drawn from; ``params`` collects the params' initial values."""

    def __init__(self, draw, n_inputs: int) -> None:
        self.draw, self.n_inputs, self.params = draw, n_inputs, []

    def param(self) -> int:
        if self.params and self.draw(st.integers(0, 11)) == 0:  # a shared weight
            return self.draw(st.integers(0, len(self.params) - 1))
        self.params.append(self.draw(NUMBERS))
        return len(self.params) - 1

    def input(self) -> int:
        return self.draw(st.integers(0, self.n_inputs - 1))

    def weight(self, weights: str) -> tuple:
        """A weight: a param (``weights`` "params"), that function of a param (a name of
        WEIGHT_FUNCTIONS), or ("mixed") any kind."""
        kind = weights if weights in ("params", "mixed") else "function"
        if kind == "mixed":
            kind = self.draw(st.sampled_from(["params"] * 6 + ["function"] * 2 + ["input", "const"]))
        if kind == "params":
            return ("param", self.param())
        if kind == "function":
            function = weights if weights in WEIGHT_FUNCTIONS else self.draw(st.sampled_from(sorted(WEIGHT_FUNCTIONS)))
            return ("function", function, self.param())
        return ("input", self.input()) if kind == "input" else ("const", self.draw(CONSTANTS))

    def extra(self) -> tuple:
        """A term that is not weight * lane: a bias, a scaled input (``y*0.5``), a constant."""
        kind = self.draw(st.sampled_from(["param", "param", "scaled input", "const"]))
        if kind == "param":
            return ("param", self.param())
        if kind == "scaled input":
            return ("scaled input", self.input(), self.draw(CONSTANTS))
        return ("const", self.draw(CONSTANTS))

    def neuron(self, width: int, weights: str) -> dict:
        lanes = list(range(width))
        shape = self.draw(st.sampled_from(["all lanes"] * 3 + ["skip one", "each twice", "one lane"]))
        if shape == "skip one" and width > 1:
            del lanes[self.draw(st.integers(0, width - 1))]
        if shape == "one lane":  # a single product, which nothing rolls: the next layer's lanes are scalars
            lanes = [self.draw(st.integers(0, width - 1))]
        if shape == "each twice":  # (a*x + b*y) + (c*x + d*y), when split in halves
            lanes += lanes
        terms = [(self.weight(weights), lane, self.draw(st.booleans())) for lane in lanes]
        extras = [self.extra() for _ in range(self.draw(st.sampled_from([0, 0, 1, 2])))]
        styles = ["split", "split", "add", "sum"] if shape == "each twice" else ["add", "add", "sum", "split"]
        return {"terms": terms, "extras": extras, "extras_first": self.draw(st.booleans()),
                "style": self.draw(st.sampled_from(styles))}


@st.composite
def layer_programs(draw, max_inputs: int = 4, max_layers: int = 3, max_width: int = 4) -> dict:
    """A program of 1 to ``max_layers`` layers over 1 to ``max_inputs`` inputs (see the module docstring)."""
    n_inputs = draw(st.integers(1, max_inputs), label="inputs")
    draws = _Draws(draw, n_inputs)
    # layer 0 reads sources: inputs, or all constants (constant rows), or a mix (one input twice)
    width = draw(st.integers(1, max_width), label="sources")
    mode = draw(st.sampled_from(["inputs", "inputs", "mixed", "constants"]), label="sources are")
    sources = [("const", draw(CONSTANTS)) if mode == "constants" or (mode == "mixed" and draw(st.booleans()))
               else ("input", draws.input() if mode == "mixed" else k % n_inputs) for k in range(width)]
    layers = []
    for _ in range(draw(st.integers(1, max_layers), label="layers")):
        # a layer's weights: all params, all one function of params (a matrix of tanh(w)), or mixed
        weights = draw(st.sampled_from(["mixed", "mixed", "params", "params"] + sorted(WEIGHT_FUNCTIONS)),
                       label="weights")
        neurons = [draws.neuron(width, weights) for _ in range(draw(st.integers(1, max_width), label="width"))]
        residual = len(neurons) == width and draw(st.sampled_from([False, False, False, True]), label="residual")
        layers.append({"neurons": neurons, "activation": draw(st.sampled_from(sorted(ACTIVATIONS))),
                       "residual": residual})
        width = len(neurons)
    outputs = draw(st.lists(st.tuples(st.integers(0, len(layers) - 1), st.integers(0, max_width - 1)),
                            max_size=2), label="more outputs")
    last = len(layers) - 1
    if draw(st.booleans(), label="every lane of the last layer"):  # sum(layer(x)), with loss "sum"
        outputs = [(last, lane) for lane in range(width)] + outputs
    else:
        outputs = [(last, draw(st.integers(0, width - 1)))] + outputs
    return {"n_inputs": n_inputs, "params": draws.params, "sources": sources, "layers": layers,
            "outputs": [(k, lane % len(layers[k]["neurons"])) for k, lane in outputs],
            "loss": draw(st.sampled_from(["first", "sum"]), label="loss"),
            "l2": draw(st.sampled_from([None, "after", "before"]), label="an L2 term inside the loss")}


def _operand(term: tuple, inputs: list, params: list):
    kind = term[0]
    if kind == "param":
        return params[term[1]]
    if kind == "function":
        return WEIGHT_FUNCTIONS[term[1]](params[term[2]])
    if kind == "input":
        return inputs[term[1]]
    if kind == "scaled input":
        return inputs[term[1]] * term[2]
    return term[1]  # a constant


def _neuron(neuron: dict, lanes: list, inputs: list, params: list):
    products = []
    for weight, lane, weight_left in neuron["terms"]:
        w, x = _operand(weight, inputs, params), lanes[lane]
        products.append(w * x if weight_left else x * w)
    extras = [_operand(e, inputs, params) for e in neuron["extras"]]
    half = len(products) // 2
    if neuron["style"] == "split" and half:  # two sums of products added, the extras in one of them
        first, second = products[:half], products[half:]
        first, second = (extras + first, second) if neuron["extras_first"] else (first, second + extras)
        return _chain(first) + _chain(second)
    terms = extras + products if neuron["extras_first"] else products + extras
    if neuron["style"] == "sum" and len(terms) > 1:
        return apply("sum", *[_as_value(t) for t in terms])
    return _chain(terms)


def _as_value(x):
    return x if isinstance(x, Value) else Value(x)


def _chain(terms: list) -> Value:
    total = _as_value(terms[0])
    for t in terms[1:]:
        total = total + t
    return total


def _activate(v, activation: str):
    return v if activation == "identity" or not isinstance(v, Value) else getattr(v, activation)()


def run_layers(spec: dict, inputs: list, params: list) -> list:
    """The program's outputs (Values) for ``inputs`` (numbers or Values) and ``params`` (Values)."""
    lanes = [inputs[s[1]] if s[0] == "input" else s[1] for s in spec["sources"]]
    results = []
    for layer in spec["layers"]:
        sums = [_neuron(n, lanes, inputs, params) for n in layer["neurons"]]
        results.append(sums)
        activated = [_activate(s, layer["activation"]) for s in sums]
        lanes = [a + x for a, x in zip(activated, lanes)] if layer["residual"] else activated
    outs = [results[k][lane] for k, lane in spec["outputs"]]
    return [o if isinstance(o, Value) else Value(o) for o in outs]


def layer_loss(spec: dict, inputs: list, params: list) -> Value:
    """The program's scalar loss: its first output or the sum of its outputs, and an L2 term
    over every param written after it or before it if the spec says so (then each weight's
    gradient is its layer's plus the L2 term's: what the C kernels sum as a biased outer
    product)."""
    outs = run_layers(spec, inputs, params)
    loss = outs[0] if spec["loss"] == "first" else sum(outs[1:], outs[0])
    if spec["l2"] is None:
        return loss
    reg = 1e-3 * sum(p * p for p in params)
    return loss + reg if spec["l2"] == "after" else reg + loss


@st.composite
def mlps(draw) -> tuple[int, list[int], str, int]:
    """``MLP(nin, nouts, activation=...)`` arguments and a seed for its weights; nin may be 0."""
    nin = draw(st.integers(0, 3), label="nin")
    nouts = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="nouts")
    return nin, nouts, draw(st.sampled_from(sorted(ACTIVATIONS))), draw(st.integers(0, 2**16))


def build_mlp(nin: int, nouts: list[int], activation: str, seed: int) -> MLP:
    """The same model for the same arguments (weights from ``random.seed(seed)``, micrograd's draws)."""
    state = random.getstate()
    random.seed(seed)
    try:
        return MLP(nin, nouts, activation=activation)
    finally:
        random.setstate(state)


@st.composite
def batches(draw, n_inputs: int, min_rows: int = 1, max_rows: int = 5) -> np.ndarray:
    """An (N, n_inputs) batch of ordinary numbers; sometimes a column is the same in every row."""
    n = draw(st.integers(min_rows, max_rows), label="rows")
    X = np.array(draw(st.lists(NUMBERS, min_size=n * n_inputs, max_size=n * n_inputs)),
                 dtype=np.float64).reshape(n, n_inputs)
    if n and n_inputs and draw(st.integers(0, 3)) == 0:
        X[:, draw(st.integers(0, n_inputs - 1))] = draw(NUMBERS)
    return X
