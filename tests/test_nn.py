"""nn: micrograd's initialisation order, parameter counts, reprs and names."""
from __future__ import annotations

import random

import numpy as np
import pytest

import graphc
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
    assert [p.label for p in Neuron(2).parameters()] == ["w0", "w1", "b"]
    assert [p.label for p in Layer(2, 2).parameters()] == ["N0.w0", "N0.w1", "N0.b", "N1.w0", "N1.w1", "N1.b"]
    import numpy as np
    from graphc.nn import glorot_uniform
    assert Layer(3, 2, init=glorot_uniform(np.random.RandomState(0))).neurons[1].w[2].label == "N1.w2"


def test_a_compiled_neuron_or_layer_names_its_params_in_its_code():
    """Compiled alone, a Neuron's or Layer's params are named as in an MLP, without the
    layer's prefix (not p0, p1, ...)."""
    neuron, layer = Neuron(2, activation="tanh"), Layer(2, 2)
    neuron_code = graphc.compile(neuron, backend="python")
    neuron_code([1.0, 2.0])
    assert "(w0, w1, b) = params" in neuron_code.source
    layer_code = graphc.compile(layer, backend="python")
    layer_code([1.0, 2.0])
    assert "(N0_w0, N0_w1, N0_b, N1_w0, N1_w1, N1_b) = params" in layer_code.source


# -- graphc's additions: activation= and init= (their defaults are micrograd's, tested above) --

def test_activations_and_their_reprs():
    import math
    random.seed(3)
    x = [0.5, -1.5, 2.0]
    for activation, prefix, f in [("relu", "ReLU", lambda s: max(s, 0.0)), ("tanh", "Tanh", math.tanh),
                                  ("sigmoid", "Sigmoid", lambda s: 1 / (1 + math.exp(-s))),
                                  ("identity", "Linear", lambda s: s)]:
        n = Neuron(3, activation=activation, w=[0.2, 0.4, -0.3], b=0.1)
        linear = 0.1 + 0.2 * 0.5 + 0.4 * -1.5 + -0.3 * 2.0
        assert n(x).data == pytest.approx(f(linear), rel=1e-15)
        assert repr(n) == f"{prefix}Neuron(3)"
    model = MLP(2, [3, 3, 1], activation="tanh")
    assert repr(model) == ("MLP of [Layer of [TanhNeuron(2), TanhNeuron(2), TanhNeuron(2)], Layer of "
                           "[TanhNeuron(3), TanhNeuron(3), TanhNeuron(3)], Layer of [LinearNeuron(3)]]")


def test_glorot_uniform_draws_scikit_learns_layout_and_order():
    import numpy as np
    from graphc.nn import glorot_uniform
    state = random.getstate()
    model = MLP(3, [4, 2], init=glorot_uniform(np.random.RandomState(0)))
    assert random.getstate() == state  # micrograd's global stream is untouched
    rng = np.random.RandomState(0)
    for layer, (fan_in, fan_out) in zip(model.layers, [(3, 4), (4, 2)]):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        weights, biases = rng.uniform(-bound, bound, (fan_in, fan_out)), rng.uniform(-bound, bound, fan_out)
        assert [[w.data for w in n.w] for n in layer.neurons] == weights.T.tolist()  # column j -> neuron j
        assert [n.b.data for n in layer.neurons] == biases.tolist()
    assert model.layers[1].neurons[1].w[3].label == "L1.N1.w3"
    seeded = MLP(3, [4, 2], init=glorot_uniform(0))  # an int seed, as scikit-learn's random_state
    assert [p.data for p in seeded.parameters()] == [p.data for p in model.parameters()]
    with pytest.raises(TypeError, match="glorot_uniform takes a NumPy random generator .* got str"):
        glorot_uniform("0")


def test_bad_activation_and_init_shapes_are_errors():
    with pytest.raises(ValueError, match="activation must be one of 'relu', 'tanh', 'sigmoid', 'identity'; got 'elu'"):
        MLP(2, [3, 1], activation="elu")
    with pytest.raises(ValueError, match=r"weights of shape \(2, 3\) and biases of shape \(3,\); got \(3, 2\) and \(3,\)"):
        Layer(2, 3, init=lambda fan_in, fan_out: ([[0.0] * fan_in] * fan_out, [0.0] * fan_out))
    with pytest.raises(ValueError, match="needs 2 initial weights; got 3"):
        Neuron(2, w=[1.0, 2.0, 3.0])


def test_a_hidden_layer_of_one_neuron_feeds_the_next_layer():
    # micrograd's MLP(2, [1, 3]) raises: its one-neuron layer returns a bare Value, not a list
    random.seed(0)
    model = MLP(2, [1, 3])
    hidden = model.layers[0]([0.5, -0.5])
    assert [o.data for o in model([0.5, -0.5])] == [o.data for o in model.layers[1]([hidden])]


def test_an_init_numpy_cannot_read_is_a_value_error():
    """A torch tensor that requires grad raised torch's RuntimeError from inside Layer (an
    outside hunt)."""
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"init\(3, 2\) must return two arrays of numbers .* RuntimeError"):
        graphc.nn.Layer(3, 2, init=lambda a, b: (torch.zeros(a, b, requires_grad=True), np.zeros(b)))


def test_a_subclass_of_neuron_or_layer_keeps_its_own_params_in_its_state_dict():
    """A Neuron or Layer subclass with a param of its own (a gain) left it out of state_dict(),
    silently, and a strict load reported nothing missing (an outside hunt)."""
    class Scaled(Neuron):
        def __init__(self, nin):
            super().__init__(nin)
            self.scale = Value(2.0)

        def parameters(self):
            return super().parameters() + [self.scale]

    class Gained(Layer):
        def __init__(self, nin, nout):
            super().__init__(nin, nout)
            self.gain = [Value(3.0)]

        def parameters(self):
            return super().parameters() + self.gain
    source, target = Scaled(2), Scaled(2)
    target.scale.data = 5.0
    assert list(source.state_dict()) == ["weight", "bias", "scale"]
    target.load_state_dict(source.state_dict())
    assert target.scale.data == 2.0
    assert list(Gained(2, 3).state_dict()) == ["weight", "bias", "gain"]
    assert list(Neuron(2).state_dict()) == ["weight", "bias"]
    plain, target = Layer(2, 2), Layer(2, 2)  # a plain Layer of such neurons: their scales were left out too
    plain.neurons, target.neurons = [Scaled(2), Scaled(2)], [Scaled(2), Scaled(2)]
    plain.neurons[1].scale.data = 7.0
    assert list(plain.state_dict()) == ["weight", "bias", "neurons.0.scale", "neurons.1.scale"]
    target.load_state_dict(plain.state_dict())
    assert [n.scale.data for n in target.neurons] == [2.0, 7.0]
