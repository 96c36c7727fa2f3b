"""signature: one argument signature's stages, each made once and cached by kind; Stages."""
from __future__ import annotations

import math

import numpy as np
import pytest

import graphc
from graphc import GraphcError, Value
from graphc.signature import BatchedKey, JointKey, ScalarKey


def test_each_cache_holds_one_kind_of_thing_under_a_typed_key():
    p = Value(0.5)
    compiled = graphc.compile(lambda x: (x * p).tanh())
    compiled(Value(1.0)).backward()
    p.grad = 0
    compiled(2.0).backward()
    signature = compiled._latest
    assert list(signature._programs) == [ScalarKey(0, True), ScalarKey(0, False)]
    assert list(signature._joints) == [JointKey(0, True, False), JointKey(0, False, False)]
    compiled(2.0).backward()  # into p.grad holding a number: the sums start from it
    assert list(signature._programs)[2:] == [ScalarKey(0, False, starts=True)]
    p.grad = 0
    compiled.mean(np.ones(3))  # rows of one scalar: the same signature
    assert compiled._latest is signature and list(signature._programs)[3:] == [BatchedKey("mean")]
    assert list(signature._joints)[3:] == [JointKey(0, False, True)]
    assert signature.vector_graph() is signature.vector_graph()


def test_rows_are_sought_by_the_first_scalar_call_only(monkeypatch):
    """Batch recovery serves scalar calls alone: map, mean and train never pay for it."""
    from graphc import signature as signature_module
    sought = []
    monkeypatch.setattr(signature_module, "rows_program", lambda *args: sought.append(args) or None)
    compiled = graphc.compile(lambda x: (1 + x).relu() * 2.0)
    compiled.mean(np.ones(3))
    compiled.map(np.ones(3))
    assert sought == [] and compiled._latest.stats.seconds.get("rows") is None
    compiled(1.0)
    compiled(2.0)
    assert len(sought) == 1 and compiled._latest.rows is None and "rows" in compiled._latest.stats.seconds


def test_stages_are_what_the_calls_run():
    compiled = graphc.compile(lambda x: (1 + x).log() * 2.0, numerics="stable")
    with pytest.raises(GraphcError, match="has not been called yet"):
        compiled.stages()
    compiled(Value(0.25))
    stages = compiled.stages()
    assert stages.graph is compiled.graph and stages.program.source == compiled.source
    assert stages.joint is stages.program.joint and "log1p" in str(stages.joint)  # the compile's numerics
    assert stages.report is compiled.stats.reports["forward"]
    with pytest.raises(GraphcError, match="output 1 does not exist"):
        compiled.stages(1).joint


def test_the_signature_cache_counts_traces_and_keeps_the_latest():
    compiled = graphc.compile(lambda *x: x[0] * 2.0)
    compiled(1.0)
    compiled(Value(3.0))
    compiled(1.0, 2.0)
    assert compiled.trace_count == len(compiled._signatures) == 2
    assert compiled._latest is list(compiled._signatures.values())[-1]


def test_compiled_outputs_and_means_are_one_kind_of_eager_op():
    p = Value(0.5)
    compiled = graphc.compile(lambda x: [x * p, x + p])
    first, second = compiled(1.0)
    mean = graphc.compile(lambda x: x * p).mean(np.array([1.0, 3.0]))
    assert (first._op, second._op, mean._op) == ("lambda[0]", "lambda[1]", "mean(lambda)")
    assert type(first._kind) is type(mean._kind)
    (second + mean * 2.0).backward()
    assert p.grad == 1.0 + 2.0 * 2.0


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_params_read_once_are_read_again_after_any_write_of_a_number(backend):
    """A signature keeps its params' numbers between calls while no Value's number is written
    (``train`` writes its own back and keeps them); every other write is seen by the next
    call, ``mean_and_grad``'s, ``mean``'s and ``map``'s alike."""
    import random
    from graphc.nn import MLP
    random.seed(4)
    model = MLP(3, [4, 1])
    step = graphc.compile(lambda x, y: (model(x) - y) ** 2, backend=backend)
    X, y = np.random.default_rng(0).normal(size=(9, 3)), np.zeros(9)

    def fresh():  # the same numbers, read by a new compiled function, its gradient in step's params' order
        other = graphc.compile(lambda x, y: (model(x) - y) ** 2, backend=backend)
        loss, grad = other.mean_and_grad(X, y)
        by_param = dict(zip(map(id, other.params), grad.tolist()))  # (a param re-initialised is made anew: last)
        return loss, np.array([by_param[id(p)] for p in step.params])
    for write in (lambda p: setattr(p, "data", p.data + 0.5),  # micrograd's SGD writes .data
                  lambda p: p.__init__(p.data - 0.25),  # re-initialised in place: was not seen (an outside hunt)
                  lambda p: model.load_state_dict({**model.state_dict(),
                                                   "layers.0.bias": model.state_dict()["layers.0.bias"] + 1.0}),
                  lambda p: step.train(X, y, lr=0.1)):
        step.mean_and_grad(X, y)
        step.mean(X, y, threads=2)
        mapped = step.map(X, y)
        write(model.parameters()[3])
        got, want = step.mean_and_grad(X, y), fresh()
        assert got[0] == want[0] and got[1].tolist() == want[1].tolist()
        assert step.mean(X, y, threads=2).data == want[0]  # batches.mean: the plans' path is one thread's
        now = step.map(X, y)
        assert now.tolist() != mapped.tolist()
        assert now.tolist() == graphc.compile(lambda x, y: (model(x) - y) ** 2, backend=backend).map(X, y).tolist()
    before = [p.data for p in model.parameters()]
    step.train(X, y, lr=0.1, batch_size=3)
    assert [p.data for p in model.parameters()] != before  # train's writes stand, and are its numbers next time
    assert step.mean_and_grad(X, y)[0] == fresh()[0]


def _eager_grads(model, loss) -> list[float]:
    model.zero_grad()
    loss().backward()
    return [p.grad for p in model.parameters()]


@pytest.mark.parametrize("backend", ["python", "numpy", "c"])
def test_gradients_are_eagers_bits_where_captured_data_repeats_a_value(backend):
    """Found by an outside hunt: CSE before differentiation merged ``w * 2.5`` made for two
    rows whose column holds 2.5, and reverse mode added the rows' gradient parts before the
    product, not after as eager ``backward()`` does (1-80 ulps, on every backend).  CSE now
    runs on the joint graph, where merging changes no number."""
    import random
    from graphc.nn import MLP
    random.seed(1)
    model = MLP(2, [4, 4, 1])
    X = [[1.5, 2.5], [3.5, -1.5], [0.5, 0.25], [2.25, 2.5], [-1.5, -3.5], [1, 2], [2, 2]]
    y = [1, -1, 1, -1, 1, 1, -1]

    def loss():
        scores = [model([Value(x) for x in row]) for row in X]
        losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
        return sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in model.parameters())
    want = _eager_grads(model, loss)
    compiled = graphc.compile(loss, backend=backend)
    with pytest.warns(graphc.FrozenDataWarning, match="10 Python numbers made Values"):  # X is captured (its floats): said
        assert _eager_grads(model, compiled) == want
    assert _eager_grads(model, compiled) == want


def test_batched_gradients_of_a_repeated_subexpression_are_the_row_loops_and_eagers_bits():
    """Found by a review: with CSE gone from the scalar gradient, C and NumPy (whose re-rolled
    graph was merged by CSE before differentiation) were 1 ulp from the Python backend's
    row loop and eager where ``a + b`` is written twice.  Before reverse mode only packs
    are merged now (graphc.passes.cse.cse_packs)."""
    w, v = Value(0.7), Value(-1.3)

    def f(x, y):
        a, b = (x * w).exp(), (x * v).exp()
        return (a / (a + b)).log() * y + (b / (a + b)).log()
    X, Y = np.array([-2.5, 0.3, 1.7]), np.array([1.9, -0.4, 0.8])
    rows = [f(Value(x), Value(y)) for x, y in zip(X, Y)]
    (sum(rows) * (1.0 / len(rows))).backward()
    for backend in ("python", "numpy", "c"):
        value, grads = graphc.compile(f, backend=backend).mean_and_grad(X, Y)
        assert value == sum(r.data for r in rows) / len(rows), backend  # the mean: the sum divided by n
        assert [g.hex() for g in grads] == [w.grad.hex(), v.grad.hex()], backend


@pytest.mark.parametrize("backend", ["python", "numpy", "c"])
def test_a_compiled_backward_into_a_nonzero_grad_adds_each_part_as_eager_does(backend):
    """README "Exactness": a compiled backward() into a .grad holding a number runs the
    gradient program from that number, so each part is added in turn, as eager adds them.
    It added one total (found by an outside hunt: gradients accumulated without zero_grad),
    1 ulp from eager here."""
    w = Value(1.0)

    def f():
        return w * 0.1 + w * 0.2  # two parts: eager adds them into .grad one by one
    compiled = graphc.compile(f, backend=backend)
    grads = {}
    for name, fn in (("eager", f), ("compiled", compiled)):
        w.grad = 0
        fn().backward()
        once = w.grad
        fn().backward()
        grads[name] = (once, w.grad)
    once = grads["eager"][0]
    assert grads["compiled"] == grads["eager"]
    assert grads["eager"][1] == math.nextafter(once + once, 0.0)  # not one total: 1 ulp apart
