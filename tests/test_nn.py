"""nn: micrograd's initialisation order, parameter counts, reprs and names."""
from __future__ import annotations

import random

import pytest

from graphc import Value
from graphc.nn import MLP, Layer, Module, Neuron


def test_weights_are_micrographs_draws_in_order():
    random.seed(7)
    model = MLP(3, [4, 2])
    random.seed(7)
    expected = []
    for nin, nout in [(3, 4), (4, 2)]:
        for _ in range(nout):
            expected += [random.uniform(-1, 1) for _ in range(nin)] + [0.0]
    assert [p.data for p in model.parameters()] == expected


def test_matches_micrograd_itself_when_installed():
    micrograd_nn = pytest.importorskip("micrograd.nn")
    random.seed(1337)
    theirs = micrograd_nn.MLP(2, [16, 16, 1])
    random.seed(1337)
    ours = MLP(2, [16, 16, 1])
    assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]
    assert repr(ours) == repr(theirs)
    x = [0.3, -1.2]
    assert ours(x).data == theirs(x).data


def test_parameter_counts_and_reprs():
    model = MLP(2, [16, 16, 1])
    assert len(model.parameters()) == 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1 == 337
    assert repr(Neuron(3)) == "ReLUNeuron(3)"
    assert repr(Neuron(3, nonlin=False)) == "LinearNeuron(3)"
    assert repr(Layer(2, 2)) == "Layer of [ReLUNeuron(2), ReLUNeuron(2)]"
    assert repr(model).startswith("MLP of [Layer of [ReLUNeuron(2)")
    assert Module().parameters() == []


def test_forward_sums_left_to_right_from_the_bias():
    random.seed(0)
    n = Neuron(3, nonlin=False)
    x = [0.1, 0.2, 0.3]
    expected = n.b.data
    for w, xi in zip(n.w, x):
        expected = expected + w.data * xi
    assert n(x).data == expected


def test_zero_grad_and_single_output_layer():
    model = MLP(2, [3, 1])
    out = model([Value(1.0), Value(-1.0)])
    assert isinstance(out, Value)
    out.backward()
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())


def test_parameters_are_labelled_by_position():
    model = MLP(2, [3, 1])
    assert model.layers[0].neurons[2].w[1].label == "L0.N2.w1"
    assert model.layers[1].neurons[0].b.label == "L1.N0.b"
