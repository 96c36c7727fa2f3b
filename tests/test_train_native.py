"""The C backend's whole-run ``train``: the same steps, bit for bit, as the Python loop of
``mean_and_grad`` and ``opt.apply`` it replaces; all or nothing when interrupted."""
from __future__ import annotations

import random

import numpy as np
import pytest

import graphc
from graphc import ArgumentError, ShapeError, train_native
from graphc.codegen import c as c_backend
from graphc.codegen import c_train
from graphc.codegen.c_train import Driver
from graphc.nn import MLP
from graphc.optim import SGD, Adam, AdamW

pytestmark = pytest.mark.skipif(c_backend.find_compiler() is None, reason="no C compiler")

DRIVER_RUN = Driver.run
OPTIMIZERS = {
    "lr": None,
    "sgd": lambda ps: SGD(ps, lr=0.05),
    "momentum": lambda ps: SGD(ps, lr=0.05, momentum=0.9),
    "nesterov": lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda ps: Adam(ps[::-1], lr=0.01),  # any order of the params
    "adam_eps_hat": lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-3, eps_hat=True),
    "sgd_weight_decay": lambda ps: SGD(ps, lr=0.05, weight_decay=0.3),  # at one row too: the kernel's own step is plain SGD's
    "nesterov_weight_decay": lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.3),
    "adam_weight_decay": lambda ps: Adam(ps, lr=0.01, weight_decay=0.3),
    "adamw": lambda ps: AdamW(ps[::-1], lr=0.01, weight_decay=0.3),
}


def data(n: int):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 2))
    return X, np.sign(X[:, 0] * X[:, 1] + 0.05)


def setup(kind: str, backend: str = "c", numerics: str = "exact"):
    random.seed(7)
    model = MLP(2, [5, 4, 1])
    step = graphc.compile(lambda x, t: (1 + -t * model(x)).relu(), backend=backend, numerics=numerics)
    make = OPTIMIZERS[kind]
    return model, step, (make(model.parameters()) if make else None)


def python_loop(kind, X, y, batch_size, epochs, seed, schedule=None, numerics="exact"):
    """The loop train replaces: mean_and_grad on each batch of a fresh permutation per
    epoch, then opt.apply (or p -= lr * g), params in an array in compiled.params order."""
    model, step, opt = setup(kind, numerics=numerics)
    step.mean_and_grad(X[:1], y[:1])
    params = np.array([p.data for p in step.params])
    where = None if opt is None else np.array([step.params.index(p) for p in opt.params])
    rng, losses, k = np.random.default_rng(seed), [], 0
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            rows = order[start:start + batch_size]
            loss, grad = step.mean_and_grad(X[rows], y[rows], params=params)
            lr = schedule(k) if schedule else 0.05 if opt is None else opt.lr
            if opt is None:
                params = params - lr * grad
            else:
                opt.lr = lr
                params[where] = opt.apply(params[where], grad[where])
            losses.append(loss)
            k += 1
    return losses, params.tolist(), opt


def test_the_driver_is_one_library_for_every_model_and_mean_and_grad_builds_without_it(tmp_path, monkeypatch):
    """A model's library is its kernel alone (the driver added 0.06-0.11 s to each model's
    build): the driver is built on the first native ``train``, once, and runs every model
    through its step entry -- numerics="fast" ones too, which do not take the step themselves."""
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(c_train, "_driver", c_train._driver.__wrapped__)  # builds or finds it in tmp_path
    X, y = data(12)
    steps = [setup(kind, numerics=numerics)[1] for kind, numerics in (("lr", "exact"), ("sgd", "fast"))]
    for step in steps:
        step.mean_and_grad(X, y)
    assert not [path for path in tmp_path.rglob("*.c") if "gc_train" in path.read_text()]
    for step in steps:
        assert "gc_train" not in step._latest.batched_program("mean").source
        step.train(X, y, lr=0.05, batch_size=1, epochs=2, shuffle=False)
    assert len([path for path in tmp_path.rglob("*.c") if "gc_train" in path.read_text()]) == 1
    assert [step._latest.batched_program("mean").driver.may_step for step in steps] == [1, 0]


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
@pytest.mark.parametrize("n, batch_size", [(23, 5), (1, 1), (17, 17), (9, 4)])
def test_native_train_takes_the_python_loops_steps_bit_for_bit(kind, n, batch_size):
    X, y = data(n)
    expected, params, opt = python_loop(kind, X, y, batch_size, epochs=3, seed=11)
    model, step, native_opt = setup(kind)
    train = dict(lr=0.05) if native_opt is None else dict(optimizer=native_opt)
    losses = step.train(X, y, batch_size=batch_size, epochs=3, shuffle=np.random.default_rng(11), **train)
    assert step._latest.batched_program("mean").driver is not None  # it ran natively
    assert losses.tolist() == expected
    assert [p.data for p in step.params] == params
    if opt is not None:
        for name in opt.native()[2]:
            assert getattr(native_opt, name).tolist() == getattr(opt, name).tolist()
        assert getattr(native_opt, "t", None) == getattr(opt, "t", None)


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
@pytest.mark.parametrize("n, batch_size", [(23, 5), (1, 1), (40, 40)])
def test_fast_train_takes_the_fast_loops_steps_bit_for_bit(kind, n, batch_size):
    """Regression (a review's probes): numerics="fast" built the driver with fused
    multiply-adds too, so ``p - lr*g`` became one fnmadd where the loop rounds ``lr*g``
    first (1 ulp in 19 of 20 runs' first step).  Only the kernel's gradient is fast."""
    X, y = data(n)
    expected, params, _ = python_loop(kind, X, y, batch_size, epochs=2, seed=3, numerics="fast")
    model, step, native_opt = setup(kind, numerics="fast")
    train = dict(lr=0.05) if native_opt is None else dict(optimizer=native_opt)
    losses = step.train(X, y, batch_size=batch_size, epochs=2, shuffle=np.random.default_rng(3), **train)
    assert step._latest.batched_program("mean").driver is not None
    assert losses.tolist() == expected and [p.data for p in step.params] == params


@pytest.mark.parametrize("layout", ["fortran", "strided", "int32"])
def test_the_driver_reads_any_layout_of_the_data_as_the_loop_does(layout):
    """The driver reads each argument's rows (Batch.parts): an array that is not C-contiguous
    float64 is copied into one, never misread."""
    X, y = data(13)
    expected, params, _ = python_loop("lr", X, y, 4, epochs=2, seed=5)
    given = {"fortran": (np.asfortranarray(X), y), "strided": (np.repeat(X, 2, axis=1)[:, ::2], y[::-1][::-1]),
             "int32": (X, y.astype(np.int32))}[layout]
    model, step, _ = setup("lr")
    losses = step.train(*given, lr=0.05, batch_size=4, epochs=2, shuffle=np.random.default_rng(5))
    assert losses.tolist() == expected and [p.data for p in step.params] == params


@pytest.mark.parametrize("kind", ["lr", "momentum", "adam", "adamw"])
def test_a_schedule_sets_each_steps_rate_as_the_loop_does(kind):
    X, y = data(20)
    schedule = lambda k: 0.1 / (1 + k)  # noqa: E731
    expected, params, opt = python_loop(kind, X, y, 6, epochs=2, seed=3, schedule=schedule)
    model, step, native_opt = setup(kind)
    train = dict(lr=0.05) if native_opt is None else dict(optimizer=native_opt)
    losses = step.train(X, y, batch_size=6, epochs=2, shuffle=3, schedule=schedule, **train)
    assert losses.tolist() == expected and [p.data for p in step.params] == params
    if opt is not None:
        assert native_opt.lr == opt.lr == schedule(7)


@pytest.mark.parametrize("kind", ["momentum", "adam"])
def test_native_and_python_backends_agree_on_a_run(kind):
    X, y = data(31)
    runs = []
    for backend in ("c", "python"):
        model, step, opt = setup(kind, backend)
        losses = step.train(X, y, optimizer=opt, batch_size=8, epochs=2, shuffle=5)
        runs.append((losses.tolist(), [p.data for p in model.parameters()]))
    assert runs[0] == runs[1]


def test_chunked_runs_take_the_same_steps(monkeypatch):
    X, y = data(40)
    runs = []
    for seconds in (train_native.CHUNK_SECONDS, 0.0):
        monkeypatch.setattr(train_native, "CHUNK_SECONDS", seconds)
        model, step, opt = setup("adam")
        runs.append((step.train(X, y, optimizer=opt, batch_size=3, epochs=2).tolist(),
                     [p.data for p in model.parameters()], opt.m.tolist(), opt.t))
    assert runs[0] == runs[1]


def test_a_chunk_of_one_row_steps_is_sized_by_the_time_of_a_step(monkeypatch):
    """A step's update costs the same at any batch size: a driver whose last call took 10 ms
    a step, however few seconds a row, runs about CHUNK_SECONDS / 10 ms steps of one row in
    its next call (sized by the seconds per row alone, after a call of big batches, a Ctrl-C
    waited seconds for the call to end: outside hunt)."""
    X, y = data(400)
    _, step, opt = setup("adam")
    step.train(X, y, optimizer=opt, batch_size=400)
    driver = step._latest.batched_program("mean").driver
    steps_per_call = []
    original = type(driver).run

    def counted(self, parts, rows, bounds, *args, **kwargs):
        steps_per_call.append(len(bounds) - 1)
        return original(self, parts, rows, bounds, *args, **kwargs)
    monkeypatch.setattr(type(driver), "run", counted)
    driver.seconds = (0.01, 1e-9)  # the last call: 10 ms a step, 1 ns a row
    step.train(X, y, optimizer=opt, batch_size=1)
    assert steps_per_call[0] == int(train_native.CHUNK_SECONDS / 0.01)


def test_an_interrupt_leaves_params_and_optimizer_as_they_were(monkeypatch):
    X, y = data(40)
    model, step, opt = setup("adam")
    step.train(X, y, optimizer=opt, batch_size=8)  # some state to keep
    before = ([p.data for p in model.parameters()], opt.m.tolist(), opt.v.tolist(), opt.t, opt.lr)
    driver = step._latest.batched_program("mean").driver
    calls = []
    original = type(driver).run

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)
    monkeypatch.setattr(train_native, "CHUNK_SECONDS", 0.0)  # one step per chunk
    monkeypatch.setattr(type(driver), "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        step.train(X, y, optimizer=opt, batch_size=4, epochs=5, schedule=lambda k: 0.5)
    assert len(calls) == 3
    assert ([p.data for p in model.parameters()], opt.m.tolist(), opt.v.tolist(), opt.t, opt.lr) == before


def test_a_subclassed_optimizer_runs_the_python_loop():
    class Halved(SGD):
        def _update(self, grad):
            return super()._update(grad) / 2
    X, y = data(10)
    model, step, _ = setup("lr")
    opt = Halved(model.parameters(), lr=0.1)
    assert opt.native() is None
    losses = step.train(X, y, optimizer=opt, batch_size=4)
    assert len(losses) == 3


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_an_optimizer_with_its_own_apply_takes_its_own_steps(backend):
    """Regression (a review's probes): the C driver checked only ``_update``, so a subclass
    clipping the gradient in ``apply`` trained as plain SGD there (0.1 from NumPy's run)."""
    class Clipped(SGD):
        def apply(self, data, grad):
            return super().apply(data, np.clip(np.asarray(grad, dtype=float), -0.01, 0.01))
    X, y = data(12)
    model, step, _ = setup("lr", backend)
    opt = Clipped(model.parameters(), lr=0.1)
    assert opt.native() is None
    step.train(X, y, optimizer=opt, batch_size=4)
    _, loop, _ = setup("lr", backend)
    loop.mean_and_grad(X[:1], y[:1])
    params, again = np.array([p.data for p in loop.params]), Clipped(loop.params, lr=0.1)
    for start in range(0, 12, 4):
        params = again.apply(params, loop.mean_and_grad(X[start:start + 4], y[start:start + 4], params=params)[1])
    assert [p.data for p in step.params] == params.tolist()


def test_an_optimizer_overriding_step_alone_is_refused_not_bypassed():
    class ClippedStep(SGD):
        def step(self):
            for p in self.params:
                p.grad = max(-0.01, min(0.01, p.grad))
            super().step()
    X, y = data(12)
    model, step, _ = setup("lr")
    before = [p.data for p in model.parameters()]
    with pytest.raises(ArgumentError, match=r"ClippedStep overrides step\(\), which train would not run: move that code into apply\(\)"):
        step.train(X, y, optimizer=ClippedStep(model.parameters(), lr=0.1))
    assert [p.data for p in model.parameters()] == before


def test_train_checks_epochs_shuffle_and_schedule():
    model, step, _ = setup("lr")
    X, y = data(6)
    with pytest.raises(ArgumentError, match="epochs must be an int >= 0"):
        step.train(X, y, lr=0.1, epochs=-1)
    with pytest.raises(ArgumentError, match="shuffle must be True, False, an int seed or a numpy.random.Generator"):
        step.train(X, y, lr=0.1, shuffle="yes")
    with pytest.raises(ArgumentError, match="shuffle: an int seed must be >= 0; got -1"):  # not NumPy's bare error (hunt)
        step.train(X, y, lr=0.1, shuffle=np.int64(-1))
    with pytest.raises(ArgumentError, match="order= or shuffle=, not both"):
        step.train(X, y, lr=0.1, order=[0, 1], shuffle=1)
    with pytest.raises(ArgumentError, match="schedule must be a function"):
        step.train(X, y, lr=0.1, schedule=0.1)
    before = [p.data for p in model.parameters()]
    with pytest.raises(ValueError, match="lr must be >= 0"):
        step.train(X, y, lr=0.1, schedule=lambda k: -1.0)
    with pytest.raises(graphc.DataError, match="lr must be >= 0; got nan"):  # a GraphcError (outside hunt)
        step.train(X, y, lr=float("nan"))
    assert [p.data for p in model.parameters()] == before
    assert step.train(X, y, lr=0.1, epochs=0).shape == (0,)
    with pytest.raises(ShapeError, match="order must be"):
        step.train(X, y, lr=0.1, order=[7])


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_the_estimators_native_epochs_take_the_python_loops_steps(solver):
    from graphc.sklearn import MLPClassifier
    X, y = data(90)
    fits = [MLPClassifier((6,), solver=solver, batch_size=16, max_iter=4, alpha=1e-3, random_state=0, tol=0,
                          learning_rate="invscaling" if solver == "sgd" else "constant", backend=backend).fit(X, y)
            for backend in ("c", "python")]
    assert [c.tolist() for c in fits[0].coefs_] == [c.tolist() for c in fits[1].coefs_]  # the same steps
    np.testing.assert_allclose(fits[0].loss_curve_, fits[1].loss_curve_, rtol=1e-13)  # the L2 sum's order


@pytest.mark.parametrize("backend", ["c", "numpy"])
@pytest.mark.parametrize("where", [(0, 1), (37, 0), (63, 1)])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_data_with_an_inf_or_nan_is_refused_and_nothing_moves(backend, where, kind, monkeypatch):
    """On C the driver checks each step's rows as it copies them (train's own pass over the
    data) and stops before the step; the error is the one a check up front gives, and the
    params, the optimizer's state and lr stay as they were."""
    model, step, opt = setup(kind, backend)
    X, y = data(64)
    X[where] = np.nan if where[0] % 2 else np.inf
    before, state = [p.data for p in model.parameters()], opt.snapshot()
    runs = []
    monkeypatch.setattr(Driver, "run", lambda self, *a, **k: runs.append(k.get("check")) or DRIVER_RUN(self, *a, **k))
    with pytest.raises(graphc.DataError, match=rf"argument x: expected finite numbers; x\[{where[0]}, {where[1]}\] is "):
        step.train(X, y, optimizer=opt, batch_size=8, shuffle=3, epochs=2)
    # on C found by the driver as it read the rows, not before it; the first row (which the
    # trace reads) up front
    assert bool(runs) == (backend == "c" and where[0] > 0) and all(runs)
    assert [p.data for p in model.parameters()] == before
    after = opt.snapshot()
    assert after.keys() == state.keys() and all(np.array_equal(after[k], v) for k, v in state.items())
    X[where] = 0.0
    assert np.isfinite(step.train(X, y, optimizer=opt, batch_size=8)).all()  # and nothing was left behind


def test_a_row_no_step_reads_is_checked_up_front_all_the_same():
    model, step, _ = setup("lr")
    X, y = data(16)
    X[5, 0] = np.nan
    with pytest.raises(graphc.DataError, match=r"x\[5, 0\] is nan"):
        step.train(X, y, lr=0.1, order=[0, 1, 2])
    assert np.isnan(step.train(X, y, lr=0.1, order=[4, 5], allow_nonfinite=True)).all()


@pytest.mark.parametrize("kept", [c_train.KEPT_COLUMNS, 8])
def test_calls_of_growing_and_shrinking_batches_take_the_loops_steps(kept, monkeypatch):
    """The driver keeps its working arrays between calls, growing them for a wider step and
    letting go of large ones (``kept``: what it keeps): each call's steps are the loop's."""
    monkeypatch.setattr(c_train, "KEPT_COLUMNS", kept)
    X, y = data(40)
    model, step, _ = setup("lr")
    step.mean_and_grad(X[:1], y[:1])
    params = np.array([p.data for p in step.params])
    for batch_size in (3, 40, 2, 40, 7):
        expected, params = sgd_in_order(step, X, y, batch_size, params)
        assert step.train(X, y, lr=0.05, batch_size=batch_size).tolist() == expected
        assert [p.data for p in step.params] == params.tolist()


def sgd_in_order(step, X, y, batch_size, params):
    """The loop a ``train(lr=0.05, batch_size=...)`` call over the rows in order replaces:
    its losses and the params it leaves."""
    losses = []
    for start in range(0, len(X), batch_size):
        loss, grad = step.mean_and_grad(X[start:start + batch_size], y[start:start + batch_size], params=params)
        params = params - 0.05 * grad
        losses.append(loss)
    return losses, params


def wide_setup():
    random.seed(3)
    model = MLP(11, [3, 1])
    return model, graphc.compile(lambda x, t: (1 + -t * model(x)).relu(), backend="c")


@pytest.mark.parametrize("batch_size", [1, 5, 13, 16])
def test_the_drivers_copy_of_wide_rows_takes_the_loops_steps(batch_size):
    """Eleven inputs: the copy's paths for eight rows at a time, for the last rows one at a
    time (eight inputs at a time, then the rest), all read as the loop reads them."""
    rng = np.random.default_rng(batch_size)
    X, y = rng.normal(size=(37, 11)), np.sign(rng.normal(size=37))
    _, step = wide_setup()
    step.mean_and_grad(X[:1], y[:1])
    expected, params = sgd_in_order(step, X, y, batch_size, np.array([p.data for p in step.params]))
    assert step.train(X, y, lr=0.05, batch_size=batch_size).tolist() == expected
    assert [p.data for p in step.params] == params.tolist()


@pytest.mark.parametrize("batch_size", [5, 13])
@pytest.mark.parametrize("where", [(1, 0), (9, 7), (10, 8), (12, 10), (20, 3), (36, 10)])
def test_the_drivers_copy_finds_an_inf_or_nan_on_each_of_its_paths(batch_size, where, monkeypatch):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(37, 11)), np.sign(rng.normal(size=37))
    model, step = wide_setup()
    step.mean_and_grad(X[:1], y[:1])  # traced: the first row's check is no longer made up front
    X[where] = np.inf if where[1] % 2 else np.nan
    before, runs = [p.data for p in model.parameters()], []
    monkeypatch.setattr(Driver, "run", lambda self, *a, **k: runs.append(k.get("check")) or DRIVER_RUN(self, *a, **k))
    with pytest.raises(graphc.DataError, match=rf"x\[{where[0]}, {where[1]}\] is "):
        step.train(X, y, lr=0.05, batch_size=batch_size)
    assert runs and all(runs) and [p.data for p in model.parameters()] == before
