"""Every batched backend (graphc.compile.BACKENDS, new ones included) against eager, on random graphs.

``map`` must give eager's forward values per row and ``mean`` eager's mean and its
gradient, exactly for the Python backend and within each backend's error budget
(fuzzing.ULPS: NumPy's SIMD exp, tanh, pow, ... differ from libm by a few ulps).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import graphc
from graphc import Value, autodiff
from graphc.compile import BACKENDS
from graphc.engine import topological_order
from fuzzing import (EPS, abs_gradient, agree, budget, examples, forward_slack, graph_values, programs,
                     reassociation_slack, replay, scalars)

PARAMS = (0.75, -1.25)


def batch(data, n_inputs: int = 3) -> np.ndarray:
    n = data.draw(st.integers(1, 4), label="rows")
    special = data.draw(st.sampled_from([0.0, 0.5]), label="share of special values")
    return np.array([[data.draw(scalars(special)) for _ in range(n_inputs)] for _ in range(n)]).reshape(n, n_inputs)


@pytest.mark.parametrize("backend", BACKENDS)
@examples(200)
@given(spec=programs(), data=st.data())
def test_map_matches_eager_row_by_row(backend, spec, data):
    X = batch(data)
    params = [Value(v) for v in PARAMS]

    def fn(x):
        return replay(spec, x, params)
    mapped = graphc.compile(fn, backend=backend).map(X, allow_nonfinite=True)
    ulps = budget(backend)
    for r, row in enumerate(X):
        for k, out in enumerate(fn([Value(v) for v in row])):
            slack = forward_slack(out, ulps)
            assert agree(float(mapped[k][r]), out.data, slack, 1e-12 if ulps else 0.0), \
                (backend, r, k, mapped[k][r], out.data, slack)


def test_the_budget_bounds_nothing_where_first_order_does_not_hold():
    """``make fuzz`` drew ``log(cos((x**3)**(x**3)))`` at x = 3: NumPy's ``27.0**27.0`` is an
    ulp below libm's, and ``cos`` of 4.4e38 then lands anywhere in [-1, 1] (eager: 0.95;
    NumPy: negative, and its log nan).  The first-order slack, 7.4e24, is no bound there, so
    it is inf; a well-conditioned program keeps a finite one."""
    x = Value(3.0)
    cube = x ** 3
    assert forward_slack((cube ** cube).cos().log(), budget("numpy")) == float("inf")
    assert 0 < forward_slack((x.tanh() * 3.0).exp().log(), budget("numpy")) < 1e-14


@pytest.mark.parametrize("backend", BACKENDS)
@examples(200)
@given(spec=programs(), data=st.data())
def test_mean_and_its_gradient_match_eager(backend, spec, data):
    X = batch(data)
    n = len(X)
    params = [Value(v) for v in PARAMS]

    def fn(x):
        return replay(spec, x, params)[0]
    compiled = graphc.compile(fn, backend=backend)
    loss = compiled.mean(X, allow_nonfinite=True)
    loss.backward()
    got = [p.grad for p in params]
    for p in params:
        p.grad = 0
    rows = [fn([Value(v) for v in row]) for row in X]
    total = sum(rows) * (1.0 / n)
    total.backward()
    want = [p.grad for p in params]

    ulps = budget(backend)
    value_slack = sum(forward_slack(r, ulps) for r in rows) / n + 4 * n * EPS * sum(abs(r.data) for r in rows) / n
    assert agree(loss.data, total.data, value_slack, 1e-12), (loss.data, total.data, value_slack)

    # Gradient budget: reassociation (optimized graph, rows summed in another order), plus
    # each row's gradient code erring by the backend's ulps (first order, on the joint graph).
    absolute = abs_gradient(total)
    nodes = len(topological_order((total,)))
    joint = autodiff.grad(compiled.graph, 0, wrt_inputs=False)
    n_forward = len(compiled.graph.outputs)
    elementwise = [0.0] * len(params)
    if ulps:
        for row in X:
            values = graph_values(joint, list(row) + [1.0 / n], [p.data for p in joint.param_values])
            for j, o in enumerate(joint.outputs[n_forward:]):
                elementwise[j] += forward_slack(values[o], ulps)
    slack_of = dict(zip(map(id, joint.param_values), elementwise))
    for p, a, b in zip(params, got, want):
        g = absolute.get(id(p))
        if g is None:
            assert a == 0 and b == 0, (a, b)
            continue
        slack = reassociation_slack(g, nodes) + slack_of.get(id(p), 0.0)
        assert agree(a, b, slack, 1e-9, zero_sign=False), (backend, a, b, slack, str(compiled.graph))
