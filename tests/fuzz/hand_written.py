"""Layers written out by hand: the programs people write before they write a ``Layer``.

:mod:`layer_programs` builds layers the way a loop does, one neuron after another, each
reading the whole previous layer.  Written by hand, neurons read their lanes in any order
or only some of them; products are written ``w*h`` or ``h*w`` neuron by neuron, and
weights are params, constants, or a param under one op (``-p``, ``p*0.5``, ``tanh(p)``);
inputs come in as they are or through a param (``x + p``, ``p*x``); a sum starts from its
first product or from a zero (``sum(w*h for ...)`` starts from 0: ``p0 + 0``, an outside
hunt's spelling ``sum(...) + b``); biases come first, last (``+ b`` or ``b + ``),
subtracted or not at all; activations are one op or several (``1 / (1 + (-n).exp())``); a
neuron may get an activation its layer's others lack;
an L2 term is added before, after, or between the data terms; a neuron may read the lanes an
earlier one read, in its order (re-rolled, the two share one pack).  Outside hunts with such
a generator found re-rolling orders 1 ulp off eager that the loop-built layers never drew.

Every param is read in one place (the L2 term apart), so the compiled gradients must be
eager's bits (README, "Exactness": a param read in several places is the exception).
"""
from __future__ import annotations

from hypothesis import strategies as st

from conftest import numpy_pow_is_libm
from graphc import Value

INPUTS = ["plain", "plain", "x+p", "p+x", "x*p", "p*x", "x-p", "p*x+p"]
WEIGHTS = ["param", "param", "const", "neg", "half", "half_left", "tanh"]
ACTIVATIONS = ["none", "none", "tanh", "relu", "half_relu", "sigmoid_written", "tanh_written"]
#: Activations written with several ops (the lecture's tanh), which re-rolling vectorizes from a layer's lanes.
WRITTEN = {"half_relu": lambda n: n.relu() * 0.5, "sigmoid_written": lambda n: 1 / (1 + (-n).exp()),
           "tanh_written": lambda n: ((2 * n).exp() - 1) / ((2 * n).exp() + 1)}
NOT_LIBM = ("tanh", "sigmoid_written", "tanh_written")  # NumPy's tanh and exp are not libm's
BIASES = ["first", "last", "last_left", "none", "sub"]  # last_left: b + (the products' sum)
STARTS = ["product", "product", 0, 0.0, -0.0]  # Python's sum() adds its products to 0: micrograd's p0 + 0
LOSSES = ["squared", "squared_turned", "hinge", "hinge_negated"]
L2_PLACES = ["before", "between", "after"]
L2_FORMS = ["c*p*p", "p*p*c", "c*(p*p)", "p*c*p"]
NUMBERS = st.floats(-1.9, 1.9, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 3) or 0.37)


@st.composite
def hand_written_programs(draw, smooth: bool = False) -> dict:
    """A spec for :func:`hand_written_loss`; ``smooth``: no ``tanh`` or ``exp`` (NumPy's are not
    libm's), nor a squared loss where NumPy's ``pow`` is its own SIMD one (AVX-512)."""
    weights = [w for w in WEIGHTS if not (smooth and w == "tanh")]
    activations = [a for a in ACTIVATIONS if not (smooth and a in NOT_LIBM)]
    losses = [loss for loss in LOSSES if not (smooth and loss.startswith("squared") and not numpy_pow_is_libm())]
    n_inputs = draw(st.integers(2, 4))
    width, layers = n_inputs, []
    for k in range(draw(st.integers(1, 3))):
        layer_weight, layer_order = draw(st.sampled_from(weights)), draw(st.sampled_from(["wh", "hw"]))
        mixed = draw(st.booleans())
        neurons = []
        for _ in range(draw(st.integers(1, 4))):
            lanes = draw(st.permutations(range(width)))
            if draw(st.integers(0, 2)) == 0:  # a neuron reading some of the lanes
                lanes = lanes[:draw(st.integers(1, width))]
            if neurons and draw(st.integers(0, 3)) == 0:  # the lanes of an earlier neuron: one pack of both
                lanes = [lane for lane, *_ in neurons[draw(st.integers(0, len(neurons) - 1))]["terms"]]
            terms = [(lane, draw(st.sampled_from(weights)) if mixed else layer_weight, draw(NUMBERS),
                      draw(st.sampled_from(["wh", "hw"])) if mixed else layer_order) for lane in lanes]
            neurons.append({"terms": terms, "start": draw(st.sampled_from(STARTS)),
                            "bias": draw(st.sampled_from(BIASES)), "bias_param": draw(st.booleans()),
                            "bias_value": draw(NUMBERS), "activation": draw(st.sampled_from(activations))})
        layers.append(neurons)
        width = len(neurons)
    l2 = None
    if draw(st.booleans()):
        l2 = {"place": draw(st.sampled_from(L2_PLACES)), "form": draw(st.sampled_from(L2_FORMS)),
              "every": draw(st.sampled_from([1, 1, 2, 3])), "c": draw(st.sampled_from([0.5, 1e-3, 0.01]))}
    return {"inputs": [draw(st.sampled_from(INPUTS)) for _ in range(n_inputs)], "layers": layers,
            "summed": width > 1 and draw(st.booleans()), "loss": draw(st.sampled_from(losses)), "l2": l2}


def n_params(spec: dict) -> int:
    """How many params :func:`hand_written_loss` reads (an upper bound: one per slot)."""
    return 2 * len(spec["inputs"]) + sum(len(n["terms"]) + 1 for layer in spec["layers"] for n in layer)


def hand_written_loss(spec: dict, params: list[Value]):
    """The per-row loss ``fn(x, y)`` of ``spec``, reading ``params`` in order, each once
    (the L2 term apart)."""
    def fn(x, y):
        taken = iter(params)
        read: list[Value] = []

        def param() -> Value:
            p = next(taken)
            read.append(p)
            return p
        lanes = [_input(kind, xi, param) for kind, xi in zip(spec["inputs"], x)]
        for layer in spec["layers"]:
            lanes = [_neuron(neuron, lanes, param) for neuron in layer]
        outputs = [sum(lanes[1:], lanes[0])] if spec["summed"] else lanes
        data = [_loss(spec["loss"], o, y) for o in outputs]
        l2 = spec["l2"]
        if l2 is None or not read:  # no param read: no L2 term
            return sum(data[1:], data[0])
        reg = [_square(l2["form"], l2["c"], p) for p in read[::l2["every"]]]
        reg_total = sum(reg[1:], reg[0])
        terms = {"before": [reg_total, *data], "after": [*data, reg_total],
                 "between": [data[0], reg_total, *data[1:]]}[l2["place"]]
        return sum(terms[1:], terms[0])
    return fn


def _input(kind: str, x, param):
    if kind == "plain":
        return x
    return {"x+p": lambda: x + param(), "p+x": lambda: param() + x, "x*p": lambda: x * param(),
            "p*x": lambda: param() * x, "x-p": lambda: x - param(), "p*x+p": lambda: param() * x + param()}[kind]()


def _weight(kind: str, value: float, param):
    if kind == "const":
        return value
    return {"param": lambda: param(), "neg": lambda: -param(), "half": lambda: param() * 0.5,
            "half_left": lambda: 0.5 * param(), "tanh": lambda: param().tanh()}[kind]()


def _neuron(neuron: dict, lanes: list, param):
    products = []
    for lane, kind, value, order in neuron["terms"]:
        w = _weight(kind, value, param)
        products.append(w * lanes[lane] if order == "wh" else lanes[lane] * w)
    total = products[0] if neuron["start"] == "product" else neuron["start"] + products[0]
    where = neuron["bias"]
    bias = None if where == "none" else (param() if neuron["bias_param"] else neuron["bias_value"])
    if where == "first":
        total = bias + total
    for product in products[1:]:
        total = total + product
    if where == "last":
        total = total + bias
    elif where == "last_left":
        total = bias + total
    elif where == "sub":
        total = total - bias
    activation = neuron["activation"]
    if activation in WRITTEN:
        return WRITTEN[activation](total)
    return total if activation == "none" else getattr(total, activation)()


def _loss(kind: str, o, y):
    return {"squared": lambda: (y - o) ** 2, "squared_turned": lambda: (o - y) ** 2,
            "hinge": lambda: (1 - y * o).relu(), "hinge_negated": lambda: (1 + -y * o).relu()}[kind]()


def _square(form: str, c: float, p: Value) -> Value:
    return {"c*p*p": lambda: c * p * p, "p*p*c": lambda: p * p * c, "c*(p*p)": lambda: c * (p * p),
            "p*c*p": lambda: p * c * p}[form]()
