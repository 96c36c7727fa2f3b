"""Call plans: repeat ``mean_and_grad`` and ``mean`` calls of one shape take the fast path
with the general way's numbers, errors and thread safety."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest

import graphc
from graphc import ArgumentError, DataError, ShapeError, Value
from graphc.batches import Batch
from graphc.call_plans import MAX_PLANS, MAX_VALUES, column_views, shapes_key
from graphc.codegen import c as c_backend
from graphc.nn import MLP, Neuron

pytestmark = pytest.mark.skipif(c_backend.find_compiler() is None, reason="no C compiler")


def hinge(model):
    return lambda x, y: (1 + -y * model(x)).relu() + 1e-4 * sum(p * p for p in model.parameters())


def mlp():
    random.seed(5)
    return MLP(3, [6, 5, 1])


def neuron():
    random.seed(1)
    return Neuron(3, nonlin=False)


def pair(make_model, numerics="exact"):
    """The same function compiled twice: ``fast`` keeps plans, ``general`` never makes one."""
    model = make_model()
    fast = graphc.compile(hinge(model), backend="c", numerics=numerics)
    general = graphc.compile(hinge(model), backend="c", numerics=numerics)
    general._plans.learn = lambda *args: None
    return model, fast, general


def data(n=13, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.sign(X[:, 0] + 0.1)


def same(a, b):
    """Equal bit for bit: floats and float arrays (nan and -0.0 included)."""
    return np.asarray(a, dtype=np.float64).tobytes() == np.asarray(b, dtype=np.float64).tobytes()


@pytest.mark.parametrize("make_model", [mlp, neuron], ids=["permuted layout", "identity layout"])
@pytest.mark.parametrize("numerics", ["exact", "fast"])
def test_repeat_calls_give_the_general_ways_numbers_bit_for_bit(make_model, numerics):
    model, fast, general = pair(make_model, numerics)
    X, y = data()
    for k, (xs, ys) in enumerate([(X, y), (X, y), (np.asfortranarray(X), y), (X[::-1], y[::-1]),
                                  (np.repeat(X, 2, axis=0)[::2], y.copy())]):
        params = np.random.default_rng(k).normal(size=len(model.parameters()))
        got = [fast.mean_and_grad(xs, ys), fast.mean_and_grad(xs, ys, params=params),
               fast.mean_and_grad(xs, ys, params=np.repeat(params, 2)[::2]),
               fast.mean_and_grad(xs, ys, params=params, out=np.empty(len(params)))]
        want = [general.mean_and_grad(xs, ys), general.mean_and_grad(xs, ys, params=params),
                general.mean_and_grad(xs, ys, params=params),
                general.mean_and_grad(xs, ys, params=params, out=np.empty(len(params)))]
        for (v1, g1), (v2, g2) in zip(got, want):
            assert same(v1, v2) and same(g1, g2)
    assert len(fast._plans._plans) == 1 and not general._plans._plans


def test_repeat_calls_of_the_common_kinds_skip_the_general_checks(monkeypatch):
    model, fast, _ = pair(mlp)
    X, y = data()
    params = np.ones(len(model.parameters()))
    fast.mean_and_grad(X, y)

    def general(*args):
        raise AssertionError("the general way ran")
    monkeypatch.setattr(fast, "_batch", general)
    fast.mean_and_grad(X, y)
    fast.mean_and_grad(np.asfortranarray(X), y[::-1], params=params[::-1], out=np.empty_like(params))
    fast.mean(X, y)
    with pytest.raises(AssertionError, match="the general way ran"):
        fast.mean_and_grad(X.astype(np.float32), y)


def test_mean_repeats_give_the_general_ways_value_and_gradients():
    model, fast, general = pair(mlp)
    X, y = data()
    for _ in range(3):
        grads = []
        for step in (fast, general):
            model.zero_grad()
            loss = step.mean(X, y)
            (loss * 2.0).backward()
            grads.append((loss.data, [p.grad for p in model.parameters()]))
        assert same(grads[0][0], grads[1][0]) and grads[0][1] == grads[1][1]
        for p in model.parameters():
            p.data -= 0.1 * p.grad


def test_the_data_is_read_anew_on_every_call():
    _, fast, general = pair(mlp)
    X, y = data()
    base = X
    X = base.view()
    X.setflags(write=False)  # a read-only array is no promise either: its base may change
    fast.mean_and_grad(X, y)
    for k in range(3):
        base[...] = data(seed=k + 1)[0]
        assert all(same(a, b) for a, b in zip(fast.mean_and_grad(X, y), general.mean_and_grad(X, y)))


def test_bad_input_after_a_plan_raises_the_general_ways_errors():
    _, fast, general = pair(mlp)
    X, y = data()
    fast.mean_and_grad(X, y)
    n = len(fast.params)
    bad = X.copy()
    bad[4, 1] = np.nan
    cases = [((bad, y), {}, DataError, r"argument x: expected finite numbers; x\[4, 1\] is nan"),
             ((X, y), {"params": np.zeros(n + 1)}, ShapeError, "params: expected"),
             ((X, y), {"params": np.zeros(n, dtype=np.float32), "out": np.zeros(3)}, ShapeError,
              r"out must have shape"),
             ((X, y), {"out": np.zeros(n, dtype=np.float32)}, ArgumentError, "out must be a writable"),
             ((X, y), {"out": np.zeros(2 * n)[::2]}, ArgumentError, "not C-contiguous")]
    for args, kwargs, error, message in cases:
        for step in (fast, general):
            with pytest.raises(error, match=message):
                step.mean_and_grad(*args, **kwargs)
    with pytest.raises(DataError, match="expected finite numbers"):
        fast.mean(bad, y)
    out = np.full(n, 7.0)
    with pytest.raises(DataError):
        fast.mean_and_grad(bad, y, out=out)
    assert (out == 7.0).all()  # nothing written
    assert all(same(a, b) for a, b in zip(fast.mean_and_grad(bad, y, allow_nonfinite=True),
                                           general.mean_and_grad(bad, y, allow_nonfinite=True)))


def test_params_given_as_a_list_or_ints_take_the_general_way_with_the_same_numbers():
    model, fast, _ = pair(mlp)
    X, y = data()
    fast.mean_and_grad(X, y)
    params = [1] * len(model.parameters())
    assert all(same(a, b) for a, b in zip(fast.mean_and_grad(X, y, params=params),
                                           fast.mean_and_grad(X, y, params=np.ones(len(params)))))


def test_out_may_be_the_params_array_itself():
    _, fast, general = pair(neuron)
    X, y = data()
    fast.mean_and_grad(X, y)
    p1, p2 = np.linspace(-1, 1, 4), np.linspace(-1, 1, 4)
    v1, g1 = fast.mean_and_grad(X, y, params=p1, out=p1)
    v2, g2 = general.mean_and_grad(X, y, params=p2, out=p2)
    assert same(v1, v2) and same(g1, g2) and g1 is p1


def test_arguments_of_any_rank_are_laid_out_as_the_general_way_lays_them():
    p = Value(0.5)
    fn = lambda a, b, c: (a[1][0] * b + c[0] * p + a[0][1]).tanh()  # noqa: E731
    fast, general = graphc.compile(fn, backend="c"), graphc.compile(fn, backend="c")
    general._plans.learn = lambda *args: None
    rng = np.random.default_rng(3)
    a, b, c = rng.normal(size=(9, 2, 2)), rng.normal(size=9), rng.normal(size=(9, 1))
    for _ in range(2):
        assert all(same(u, v) for u, v in zip(fast.mean_and_grad(a, b, c), general.mean_and_grad(a, b, c)))
    cols = np.empty((6, 9))
    for view, arg in zip(column_views(cols, shapes_key((a, b, c))), (a, b, c)):
        view[...] = arg
    assert same(cols, Batch((a, b, c), ["a", "b", "c"]).cols)


def test_threads_calling_one_plan_each_get_their_own_answers():
    _, fast, general = pair(mlp)
    X, y = data()
    fast.mean_and_grad(X, y)
    inputs = [data(seed=k) for k in range(8)]
    want = [general.mean_and_grad(*xy) for xy in inputs]
    barrier, results = threading.Barrier(8), [None] * 8

    def work(k):
        barrier.wait()
        results[k] = [fast.mean_and_grad(*inputs[k]) for _ in range(50)]
    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, (value, grad) in zip(results, want):
        assert all(same(v, value) and same(g, grad) for v, g in got)


def test_plans_are_kept_per_shape_up_to_the_cap():
    _, fast, general = pair(mlp)
    X, y = data(MAX_PLANS + 4)
    for n in range(2, MAX_PLANS + 4):
        for _ in range(2):
            assert all(same(a, b) for a, b in zip(fast.mean_and_grad(X[:n], y[:n]),
                                                   general.mean_and_grad(X[:n], y[:n])))
    assert len(fast._plans._plans) == MAX_PLANS


def test_big_batches_get_no_plan():
    p = Value(2.0)
    step = graphc.compile(lambda x: x * p, backend="c")
    for n in (MAX_VALUES, MAX_VALUES + 1):
        step.mean_and_grad(np.ones(n))
    assert [key for key in step._plans._plans] == [((MAX_VALUES,),)]


def test_a_new_trace_retires_the_plans_made_before_it():
    p = Value(1.5)
    step = graphc.compile(lambda x: sum(x) * p, backend="c")
    X = np.arange(6.0).reshape(3, 2)
    step.mean_and_grad(X)
    plan = step._plans.find((X,))
    step.mean_and_grad(np.ones((3, 4)))  # another signature: a trace
    assert step.mean_and_grad(X)[0] == 7.5 and step._plans.find((X,)) is not plan


def test_the_numpy_backend_makes_no_plans_and_source_follows_the_latest_call():
    X, y = data()
    step = graphc.compile(hinge(mlp()), backend="numpy")
    step.mean_and_grad(X, y)
    assert not step._plans._plans
    step = graphc.compile(hinge(mlp()), backend="c")
    step.mean_and_grad(X, y)
    mean_source = step.source
    step.map(X, y)
    assert step.source != mean_source
    step.mean_and_grad(X, y)
    assert step.source == mean_source
