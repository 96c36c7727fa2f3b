"""Losses that hold numbers made from Values -- micrograd's stable softmax, shifted by the
largest logit's ``.data`` -- compiled, against eager ``backward()`` bit for bit.

Eager code holds a float (``.data``), a leaf (``detach()``) or a bool (a comparison) where a
trace records a node reading the Value, and reverse mode must not walk through it: it did,
and gave a hidden layer's gradients an ulp off (an outside hunt; random programs of a few
ops never drew a layer wide enough).  Every backend's scalar call runs the compiled
gradient graph, so the Python and C backends must both give eager's bits.
"""
from __future__ import annotations

import random

import pytest
from hypothesis import given, strategies as st

import graphc
from graphc import Value
from graphc.codegen.c import find_compiler
from graphc.nn import MLP
from fuzzing import examples, same

#: What the logits are shifted by, as people write it.
SHIFTS = {
    "max of .data": lambda o, k: max(v.data for v in o),
    "a logit's .data": lambda o, k: o[k].data,
    "a logit detached": lambda o, k: o[k].detach(),
    "a comparison": lambda o, k: (o[k] > 0) * 2.0,
}
BACKENDS = ["python"] + (["c"] if find_compiler() else [])


def _loss(model, shift: str, k: int, form: str):
    def loss(x, t):
        o = model(x)
        m = SHIFTS[shift](o, k)
        if form == "log-sum-exp":
            return m + sum((v - m).exp() for v in o).log() - o[t]
        es = [(v - m).exp() for v in o]
        return -(es[t] / sum(es)).log()
    return loss


@pytest.mark.parametrize("backend", BACKENDS)
@examples(25)
@given(sizes=st.tuples(st.integers(1, 3), st.integers(2, 5), st.integers(2, 5)), data=st.data())
def test_a_loss_shifted_by_a_number_made_from_its_logits_gets_eagers_gradient(backend, sizes, data):
    nin, width, nout = sizes
    random.seed(data.draw(st.integers(0, 2**16), label="weights"))
    model = MLP(nin, [width, nout], activation=data.draw(st.sampled_from(["tanh", "relu"]), label="activation"))
    shift = data.draw(st.sampled_from(sorted(SHIFTS)), label="shift")
    loss = _loss(model, shift, data.draw(st.integers(0, nout - 1), label="shifted by"),
                 data.draw(st.sampled_from(["log-sum-exp", "softmax"]), label="form"))
    compiled = graphc.compile(loss, backend=backend)
    for _ in range(2):
        x = [data.draw(st.floats(-3, 3), label="x") for _ in range(nin)]
        t = data.draw(st.integers(0, nout - 1), label="target")
        model.zero_grad()
        want = loss([Value(v) for v in x], t)
        want.backward()
        eager = [p.grad for p in model.parameters()]
        model.zero_grad()
        got = compiled([Value(v) for v in x], t)
        got.backward()
        assert same(got.data, want.data), (got.data, want.data)
        off = [(p.label, p.grad, e) for p, e in zip(model.parameters(), eager) if not same(p.grad, e)]
        assert not off, off
