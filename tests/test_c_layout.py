"""The C kernel's layout of params and gradients, and ``mean_and_grad(out=...)``."""
from __future__ import annotations

import random

import numpy as np
import pytest

import graphc
from graphc import ArgumentError, ShapeError
from graphc.codegen import c as c_backend
from graphc.nn import MLP, Neuron

pytestmark = pytest.mark.skipif(c_backend.find_compiler() is None, reason="no C compiler")


def hinge(model):
    return lambda x, y: (1 + -y * model(x)).relu()


def mlp_step(backend="c"):
    random.seed(5)
    model = MLP(3, [6, 5, 1])
    return model, graphc.compile(hinge(model), backend=backend)


def data(n=13):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 3))
    return X, np.sign(X[:, 0] + 0.1)


def test_the_kernel_reads_every_layer_in_place_and_sums_gradients_in_place():
    model, step = mlp_step()
    X, y = data()
    step.mean_and_grad(X, y)
    program = step._latest.batched_program("mean")
    body = program.source[program.source.index(c_backend.PRELUDE) + len(c_backend.PRELUDE):]
    kernel = body[:body.index("\n}\n")]
    assert "_from[" not in kernel and "_slot[" not in kernel and "memcpy" not in kernel  # no gather, no scatter
    assert kernel.count("= params + ") == 5  # three weight matrices, two bias vectors
    assert kernel.count("gc_transpose") == 1  # only the hidden matrix, which vecmat also reads
    layout = program.layout
    assert not layout.identity and sorted(layout.perm.tolist()) == list(range(len(step.params)))


def test_a_permuted_layout_gives_the_python_backends_numbers():
    X, y = data()
    results = []
    for backend in ("c", "python"):
        _, step = mlp_step(backend)
        value, grad = step.mean_and_grad(X, y)
        results.append((value, grad.tolist()))
    assert results[0] == results[1]


def test_a_single_neuron_is_read_in_its_own_order():
    random.seed(1)
    neuron = Neuron(4, nonlin=False)
    step = graphc.compile(lambda x: neuron(x) ** 2, backend="c")
    X = np.random.default_rng(0).normal(size=(6, 4))
    value, grad = step.mean_and_grad(X)
    assert step._latest.batched_program("mean").layout.identity
    reference = graphc.compile(lambda x: neuron(x) ** 2, backend="python").mean_and_grad(X)
    assert value == reference[0] and grad.tolist() == reference[1].tolist()


@pytest.mark.parametrize("backend", ["c", "numpy", "python"])
def test_out_receives_the_gradient(backend):
    model, step = mlp_step(backend)
    X, y = data()
    params = np.array([p.data for p in model.parameters()]) * 0.5
    value, grad = step.mean_and_grad(X, y, params=params)
    out = np.full(len(params), np.nan)
    value_out, returned = step.mean_and_grad(X, y, params=params, out=out)
    assert returned is out and value_out == value and out.tolist() == grad.tolist()
    aliased = params.copy()  # out may be the params array itself: read first, then overwritten
    step.mean_and_grad(X, y, params=aliased, out=aliased)
    assert aliased.tolist() == grad.tolist()


def test_out_is_checked():
    model, step = mlp_step()
    X, y = data()
    n = len(model.parameters())
    with pytest.raises(ArgumentError, match="out must be a writable C-contiguous float64 NumPy array; got list"):
        step.mean_and_grad(X, y, out=[0.0] * n)
    with pytest.raises(ArgumentError, match="of dtype float32"):
        step.mean_and_grad(X, y, out=np.zeros(n, dtype=np.float32))
    with pytest.raises(ArgumentError, match="not C-contiguous"):
        step.mean_and_grad(X, y, out=np.zeros(2 * n)[::2])
    with pytest.raises(ShapeError, match=rf"out must have shape \({n},\), one entry per param; got \(3,\)"):
        step.mean_and_grad(X, y, out=np.zeros(3))
    frozen = np.zeros(n)
    frozen.flags.writeable = False
    with pytest.raises(ArgumentError, match="writable"):
        step.mean_and_grad(X, y, out=frozen)


def test_strided_params_are_copied_never_misread():
    model, step = mlp_step()
    X, y = data()
    big = np.random.default_rng(2).normal(size=2 * len(model.parameters()))
    want = step.mean_and_grad(X, y, params=np.array(big[::2]))
    got = step.mean_and_grad(X, y, params=big[::2])
    assert got[0] == want[0] and got[1].tolist() == want[1].tolist()
