"""Compiled objects pickle (fn and options, not generated code), so joblib and dask workers get them."""
from __future__ import annotations

import copy
import io
import pickle
import random

import numpy as np
import pytest

import graphc
from graphc import Value
from graphc.nn import MLP


def model_and_data():
    random.seed(11)
    model = MLP(3, [6, 2], activation="tanh")
    X = np.random.default_rng(1).normal(size=(40, 3))
    return model, X


def square_loss(x, y):
    """A module-level function: pickled by reference."""
    return (x * x + 3 * x * y - y) ** 2


def test_a_leaf_value_and_a_module_pickle_with_their_numbers():
    v = Value(2.5, label="w")
    v.grad = 0.25
    back = pickle.loads(pickle.dumps(v))
    assert (back.data, back.grad, back.label, back._prev, back._op) == (2.5, 0.25, "w", (), "")
    model, _ = model_and_data()
    copied = pickle.loads(pickle.dumps(model))
    assert repr(copied) == repr(model)
    assert [(p.data, p.label) for p in copied.parameters()] == [(p.data, p.label) for p in model.parameters()]
    assert [v.data for v in copied([0.1, 0.2, 0.3])] == [v.data for v in model([0.1, 0.2, 0.3])]


def test_a_value_with_a_history_pickles_and_copies_its_ops_as_the_tables():
    """An outside hunt: pickle named the op table's lambdas (PicklingError) for any history."""
    import copy
    x, a = Value(0.3), Value(0.9)
    y = (x * a).tanh() + x ** 2
    copies = [pickle.loads(pickle.dumps(y)), copy.deepcopy(y)]
    y.backward()
    for back in copies:
        back.backward()
        assert back.data == y.data and back._prev[0]._kind is y._prev[0]._kind
        assert [v.grad for v in back._prev[0]._prev[0]._prev] == [x.grad, a.grad]


def chain(x: Value, ops: int) -> Value:
    """``x`` through ``ops`` ops, each reading the one before (a neuron's sum is such a chain)."""
    y = x
    for i in range(ops // 2):
        y = y * 0.5 + float(i)
    return y


@pytest.mark.parametrize("copier", ["pickle", "deepcopy"], ids=str)
def test_a_history_of_any_depth_pickles_and_copies_sharing_what_it_shared(copier):
    """Each node stored as its slots hit the recursion limit at a chain of 200 ops."""
    def copied(obj):
        return pickle.loads(pickle.dumps(obj)) if copier == "pickle" else copy.deepcopy(obj)

    x, w = Value(0.75, label="x"), Value(-1.5, label="w")
    middle = chain(x * w, 4_000)
    top = (middle.tanh() + middle * w).relu()
    top.backward()
    back_middle, back_top, back_w = copied([middle, top, w])
    assert back_top._prev[0]._prev[0]._prev[0] is back_middle and back_top._prev[0]._prev[1]._prev[1] is back_w
    assert (back_top.data, back_top.grad, back_middle.data, back_middle.grad) == \
        (top.data, top.grad, middle.data, middle.grad)
    for v in (x, w, back_w):
        v.grad = 0
    top.backward()
    back_top.backward()
    assert back_w.grad == w.grad
    alone = copied(middle)  # listed again, though the copy above found it stored already
    assert alone.data == middle.data and alone is not middle
    assert copy.copy(top)._prev is top._prev


def partial_sums(n: int) -> list[Value]:
    total, sums = Value(1.0), []
    for i in range(n):
        total = total * 1.0001 + float(i)
        sums.append(total)
    return sums


@pytest.mark.parametrize("copier", ["pickle", "deepcopy"], ids=str)
def test_values_sharing_one_history_pickle_it_once(copier):
    """Each Value listed its whole history: 4,000 partial sums of one chain took 78 s and
    80 MB to pickle.  The list stops at what the pickle stored already."""
    sums = partial_sums(2_000)
    data = pickle.dumps(sums)
    assert len(data) < 400 * len(sums)  # was 20 MB
    back = pickle.loads(data) if copier == "pickle" else copy.deepcopy(sums)
    assert [v.data for v in back] == [v.data for v in sums]
    assert all(back[i]._prev[0]._prev[0] is back[i - 1] for i in range(1, len(back)))


def test_a_pickler_kept_alive_does_not_cut_another_pickles_lists():
    """The nodes a pickle stored are noted while its memo lives: a second pickle must not
    take them for its own (its reductions would nest down the whole chain)."""
    sums = partial_sums(4_000)
    kept = pickle.Pickler(io.BytesIO())
    kept.dump(sums)
    assert pickle.loads(pickle.dumps(sums[-1])).data == sums[-1].data
    assert [v.data for v in copy.deepcopy(sums[::-1])] == [v.data for v in sums[::-1]]


@pytest.mark.parametrize("backend", ["numpy", "python"])
def test_a_compiled_module_round_trips_and_recompiles(backend):
    model, X = model_and_data()
    compiled = graphc.compile(model, backend=backend, numerics="stable")
    expected = compiled(X)  # traced and generated before pickling
    copied = pickle.loads(pickle.dumps(compiled))
    assert (copied.backend, copied.numerics, copied.trace_count) == (backend, "stable", 0)
    assert np.array_equal(copied(X), expected)
    assert [v.data for v in copied(X[0].tolist())] == [v.data for v in compiled(X[0].tolist())]
    assert copied.fn is not model and copied.trace_count == 2


DECORATED = """
import graphc

@graphc.compile
def loss(x):
    return (x * 0.5).tanh()

@graphc.compile(backend="python")
def scaled(x):
    return x * 3.0

class Model:
    @graphc.compile
    def __call__(self, x):
        return x * 2.0
"""


def test_a_decorated_module_level_function_pickles_by_its_name(tmp_path, monkeypatch):
    """An outside hunt: fn by reference found the Compiled that the decorator left under
    its name ("not the same object as mod.loss").  The Compiled is that name, as the
    function was; a decorated method's class was fine and stays so."""
    (tmp_path / "decorated_mod.py").write_text(DECORATED)
    monkeypatch.syspath_prepend(str(tmp_path))
    import decorated_mod
    for compiled in (decorated_mod.loss, decorated_mod.scaled):
        compiled(1.0)
        assert pickle.loads(pickle.dumps(compiled)) is compiled
    model = pickle.loads(pickle.dumps(decorated_mod.Model()))
    assert model(1.5).data == 3.0


def test_a_pickle_keeps_a_model_shared_with_its_compiled_function():
    model, X = model_and_data()
    model2, compiled = pickle.loads(pickle.dumps((model, graphc.compile(model))))
    assert compiled.fn is model2
    model2.parameters()[0].data += 1.0  # training the unpickled model moves the unpickled function
    assert np.array_equal(compiled(X), graphc.compile(model2)(X))
    assert not np.array_equal(compiled(X), graphc.compile(model)(X))


def test_a_compiled_module_level_function_round_trips_with_gradients():
    compiled = graphc.compile(square_loss)
    x = Value(0.5)
    compiled(x, 2.0).backward()
    copied = pickle.loads(pickle.dumps(compiled))
    assert copied.fn is square_loss
    y = Value(0.5)
    out = copied(y, 2.0)
    out.backward()
    assert (out.data, y.grad) == (compiled(0.5, 2.0).data, x.grad)


def test_a_closure_over_values_needs_cloudpickle():
    w = Value(1.5)

    def scaled(x):
        return w * x
    compiled = graphc.compile(scaled)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(compiled)
    cloudpickle = pytest.importorskip("cloudpickle")
    copied = cloudpickle.loads(cloudpickle.dumps(compiled))
    assert copied(2.0).data == 3.0 and copied.params[0] is not w


def test_deepcopy_gives_an_independent_compiled_model():
    model, X = model_and_data()
    compiled = graphc.compile(model)
    expected = compiled(X)
    duplicate = copy.deepcopy(compiled)
    model.parameters()[0].data += 1.0
    assert np.array_equal(duplicate(X), expected)


def test_joblib_workers_run_a_compiled_model():
    joblib = pytest.importorskip("joblib")
    model, X = model_and_data()
    compiled = graphc.compile(model)
    chunks = np.array_split(X, 4)
    results = joblib.Parallel(n_jobs=2)(joblib.delayed(compiled)(chunk) for chunk in chunks)
    assert np.array_equal(np.concatenate(results), compiled(X))


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


def test_a_dask_worker_runs_a_compiled_model(dask_client):
    model, X = model_and_data()
    compiled = graphc.compile(model)
    assert np.array_equal(dask_client.submit(compiled, X).result(), compiled(X))


def test_a_dask_worker_runs_a_compiled_closure(dask_client):
    """dask pickles with cloudpickle, so a loss closing over a local model travels too."""
    model, X = model_and_data()

    def loss(x, y):
        return (model(x)[0] - y) ** 2
    step = graphc.compile(loss)
    y = X[:, 0]
    value, grad = dask_client.submit(step.mean_and_grad, X, y).result()
    expected_value, expected_grad = step.mean_and_grad(X, y)
    assert value == expected_value and np.array_equal(grad, expected_grad)


def test_a_compiled_output_refuses_pickle_and_deepcopy_saying_why():
    """pickle and deepcopy of a compiled call's output raised "cannot pickle '_thread.RLock'
    object" (an outside hunt): it holds the program that made it.  Its number stays."""
    w = graphc.Value(2.0)
    out = graphc.compile(lambda x: w * x)(3.0)
    for copying in (pickle.dumps, copy.deepcopy):
        with pytest.raises(TypeError, match=r"the output of a compiled call.*Keep its number \(out.data\)"):
            copying(out)
    assert pickle.loads(pickle.dumps(graphc.Value(out.data))).data == 6.0
