"""graphc.optim: SGD, Adam and AdamW against their formulas, written out in plain Python, and PyTorch's."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

import graphc
from graphc import Value
from graphc.codegen.c import find_compiler
from graphc.nn import MLP
from graphc.optim import SGD, Adam, AdamW

GRADS = [[0.5, -2.0, 1e-9, 0.0], [0.25, 3.0, -1e-9, 0.0], [-1.0, 0.5, 2e-9, 0.0], [0.1, -0.1, 0.0, 0.0]]
START = [0.3, -1.2, 2.0, 0.0]


def run(optimizer_factory, lrs=None):
    """Apply GRADS as successive gradients; the params after each step."""
    params = [Value(v) for v in START]
    opt = optimizer_factory(params)
    history = []
    for k, grads in enumerate(GRADS):
        if lrs is not None:
            opt.lr = lrs[k]
        opt.zero_grad()
        for p, g in zip(params, grads):
            p.grad += g
        opt.step()
        history.append([p.data for p in params])
    return history


def test_plain_sgd_is_micrograds_update_bit_for_bit():
    expected, data = [], list(START)
    for grads in GRADS:
        data = [d - 0.1 * g for d, g in zip(data, grads)]  # micrograd: p.data -= lr * p.grad
        expected.append(data)
    assert run(lambda ps: SGD(ps, lr=0.1)) == expected


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_follows_the_velocity_formula_even_when_lr_changes(nesterov):
    lrs = [0.1, 0.1, 0.02, 0.5]
    expected, data, velocity = [], list(START), [0.0] * len(START)
    for lr, grads in zip(lrs, GRADS):
        velocity = [0.9 * v - lr * g for v, g in zip(velocity, grads)]
        step = [0.9 * v - lr * g for v, g in zip(velocity, grads)] if nesterov else velocity
        data = [d + s for d, s in zip(data, step)]
        expected.append(data)
    assert run(lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=nesterov), lrs) == expected


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_with_a_constant_rate_equals_pytorchs_form(nesterov):
    expected, data, buf = [], list(START), [0.0] * len(START)
    for grads in GRADS:  # torch.optim.SGD: buf = momentum * buf + g; p -= lr * (g + momentum * buf or buf)
        buf = [0.9 * b + g for b, g in zip(buf, grads)]
        direction = [g + 0.9 * b for g, b in zip(grads, buf)] if nesterov else buf
        data = [d - 0.1 * s for d, s in zip(data, direction)]
        expected.append(data)
    np.testing.assert_allclose(run(lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=nesterov)), expected,
                               rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("eps_hat", [False, True])
def test_adam_follows_its_formula(eps_hat):
    b1, b2, eps, lr = 0.8, 0.99, 1e-8, 0.05
    expected, data = [], list(START)
    m, v = [0.0] * len(START), [0.0] * len(START)
    for t, grads in enumerate(GRADS, start=1):
        m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)]
        v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)]
        if eps_hat:  # Kingma & Ba, Section 2; scikit-learn's AdamOptimizer
            rate = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            data = [d - rate * mi / (math.sqrt(vi) + eps) for d, mi, vi in zip(data, m, v)]
        else:  # Algorithm 1; torch.optim.Adam
            data = [d - lr * (mi / (1 - b1 ** t)) / (math.sqrt(vi / (1 - b2 ** t)) + eps)
                    for d, mi, vi in zip(data, m, v)]
        expected.append(data)
    ours = run(lambda ps: Adam(ps, lr=lr, betas=(b1, b2), eps=eps, eps_hat=eps_hat))
    np.testing.assert_allclose(ours, expected, rtol=1e-14, atol=0)
    assert ours[-1][3] == 0.0  # a param that never had a gradient never moves


def test_weight_decay_adds_to_the_gradient_before_the_update():
    """PyTorch's coupled weight decay: ``g + weight_decay * p`` is the gradient SGD steps by."""
    expected, data = [], list(START)
    for grads in GRADS:
        data = [d - 0.1 * (g + 0.3 * d) for d, g in zip(data, grads)]
        expected.append(data)
    assert run(lambda ps: SGD(ps, lr=0.1, weight_decay=0.3)) == expected


def test_adamw_shrinks_the_params_then_takes_adams_step_from_the_gradient_alone():
    b1, b2, eps, lr, decay = 0.9, 0.999, 1e-8, 0.05, 0.2
    expected, data = [], list(START)
    m, v = [0.0] * len(START), [0.0] * len(START)
    for t, grads in enumerate(GRADS, start=1):
        m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)]
        v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)]
        data = [d * (1 - lr * decay) - lr * (mi / (1 - b1 ** t)) / (math.sqrt(vi / (1 - b2 ** t)) + eps)
                for d, mi, vi in zip(data, m, v)]
        expected.append(data)
    assert run(lambda ps: AdamW(ps, lr=lr, weight_decay=decay)) == expected
    assert AdamW([Value(1.0)]).weight_decay == 0.01  # PyTorch's default


@pytest.mark.parametrize("ours, theirs", [
    (lambda ps: SGD(ps, lr=0.1, weight_decay=0.3), lambda torch, ts: torch.optim.SGD(ts, lr=0.1, weight_decay=0.3)),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.3),
     lambda torch, ts: torch.optim.SGD(ts, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.3)),
    (lambda ps: Adam(ps, lr=0.05, weight_decay=0.3), lambda torch, ts: torch.optim.Adam(ts, lr=0.05, weight_decay=0.3)),
    (lambda ps: AdamW(ps, lr=0.05, weight_decay=0.3),
     lambda torch, ts: torch.optim.AdamW(ts, lr=0.05, weight_decay=0.3)),
])
def test_weight_decay_takes_pytorchs_steps(ours, theirs):
    """The same sequence of params as PyTorch's optimizers (which order and fuse their float
    operations their own way, so the last bits may differ)."""
    torch = pytest.importorskip("torch")
    tensors = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in START]
    opt = theirs(torch, tensors)
    expected = []
    for grads in GRADS:
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        expected.append([t.item() for t in tensors])
    np.testing.assert_allclose(run(ours), expected, rtol=1e-13, atol=1e-15)


def test_adams_first_step_is_lr_times_the_sign_of_the_gradient():
    history = run(lambda ps: Adam(ps, lr=0.01))
    np.testing.assert_allclose(np.array(history[0][:2]) - START[:2], [-0.01, 0.01], rtol=1e-6)


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda ps: Adam(ps, lr=0.1)])
def test_optimizers_minimise_an_eager_loss(make):
    targets = [1.5, -2.0, 0.25]
    params = [Value(0.0) for _ in targets]
    opt = make(params)
    for _ in range(300):
        loss = sum((p - t) ** 2 for p, t in zip(params, targets))
        opt.zero_grad()
        loss.backward()
        opt.step()
    np.testing.assert_allclose([p.data for p in params], targets, atol=1e-3)


def test_adam_trains_a_compiled_batched_loss():
    random.seed(0)
    model = MLP(2, [8, 1])
    step = graphc.compile(lambda x, y: (model(x) - y) ** 2)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    y = X[:, 0] * X[:, 1]
    opt = Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(150):
        loss = step.mean(X, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.data)
    assert losses[-1] < losses[0] / 4


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda ps: Adam(ps, lr=0.1, eps_hat=True)])
def test_apply_on_arrays_takes_the_steps_step_takes_on_values(make):
    expected = run(make)
    opt = make([Value(v) for v in START])
    data, history = np.array(START), []
    for grads in GRADS:
        data = opt.apply(data, np.array(grads))
        history.append(data.tolist())
    assert history == expected
    assert [p.data for p in opt.params] == START  # the Values are not touched
    with pytest.raises(ValueError, match=r"apply needs data and grad of shape \(4,\), one entry per param"):
        opt.apply(np.zeros(3), np.zeros(3))


def test_zero_grad_and_untouched_gradients():
    params = [Value(1.0), Value(2.0)]
    opt = SGD(params, lr=0.5)
    opt.step()  # grads still the int 0 a new Value starts with: nothing moves
    assert [p.data for p in params] == [1.0, 2.0]
    params[0].grad = 3.0
    opt.zero_grad()
    assert [p.grad for p in params] == [0, 0]


@pytest.mark.parametrize("make, error, message", [
    (lambda: SGD([Value(1.0), 2.0]), TypeError, "param 1 is a float"),
    (lambda: SGD([Value(1.0)] * 2), ValueError, "more than once"),
    (lambda: SGD([Value(1.0)], lr=-0.1), ValueError, "lr must be >= 0; got -0.1"),
    (lambda: SGD([Value(1.0)], lr="0.1"), TypeError, "lr must be a real number; got str"),
    (lambda: SGD([Value(1.0)], momentum=-0.5), ValueError, "momentum must be >= 0"),
    (lambda: SGD([Value(1.0)], nesterov=True), ValueError, "nesterov momentum needs momentum > 0"),
    (lambda: Adam([Value(1.0)], betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be in \[0, 1\); got 1.0"),
    (lambda: Adam([Value(1.0)], betas=0.9), TypeError, "betas must be a pair"),
    (lambda: Adam([Value(1.0)], eps=-1.0), ValueError, "eps must be >= 0"),
    (lambda: SGD([Value(1.0)], weight_decay=-0.1), ValueError, "weight_decay must be >= 0; got -0.1"),
    (lambda: AdamW([Value(1.0)], weight_decay=math.nan), ValueError, "weight_decay must be >= 0; got nan"),
    (lambda: Adam([Value(1.0)], weight_decay=None), TypeError, "weight_decay must be a real number; got NoneType"),
    (lambda: SGD([Value(1.0)], lr=10**400), ValueError, r"lr must be a number that fits in a float .* 1329 bits"),
    (lambda: Adam([Value(1.0)], eps=-10**400), ValueError, "eps must be a number that fits in a float"),
])
def test_bad_arguments_say_what_was_expected(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.skipif(np.finfo(np.longdouble).bits == 64, reason="np.longdouble is float64 here")
@pytest.mark.parametrize("make, name", [
    (lambda ps: SGD(ps, lr=np.longdouble(1) / 3), "lr"),
    (lambda ps: SGD(ps, lr=0.1, momentum=np.longdouble(9) / 10), "momentum"),
    (lambda ps: Adam(ps, lr=0.1, eps=np.longdouble(1) / 3), "eps"),
    (lambda ps: Adam(ps, lr=0.1, betas=(np.longdouble(9) / 10, 0.999)), r"betas\[0\]"),
])
def test_a_longdouble_setting_is_refused_since_c_steps_in_float64(make, name):
    """An outside hunt: step() computed in extended precision with it, train on C in float64."""
    with pytest.raises(graphc.ArgumentError, match=name + r" is a numpy.longdouble: .* in float64 in C"):
        make([Value(1.0)])
    opt = SGD([Value(1.0)], lr=0.1)
    opt.lr = np.longdouble(1) / 3  # a plain attribute: train checks it before the first step
    with pytest.raises(graphc.ArgumentError, match="optimizer.lr is a numpy.longdouble"):
        graphc.compile(lambda x: x * opt.params[0]).train(np.ones(2), optimizer=opt)
    assert opt.params[0].data == 1.0


def test_a_restored_state_is_float64_as_the_c_driver_reads_it():
    opt = SGD([Value(1.0), Value(2.0)], lr=0.1, momentum=0.9)
    state = opt.snapshot()
    state["velocity"] = np.array([0.1, 0.2], dtype=np.float32)
    opt.restore(state)
    assert opt.velocity.dtype == np.float64 and opt.velocity.tolist() == [float(np.float32(0.1)), float(np.float32(0.2))]
    state["velocity"][0] = 5.0
    assert opt.velocity[0] != 5.0  # a copy


@pytest.mark.parametrize("make, bad, error", [
    (lambda ps: Adam(ps, lr=0.1), {"lr": -1.0}, "lr must be >= 0"),
    (lambda ps: Adam(ps, lr=0.1), {"lr": math.nan}, "lr must be >= 0"),
    (lambda ps: Adam(ps, lr=0.1), {"betas": (2.0, 0.9)}, r"betas\[0\] must be in \[0, 1\)"),
    (lambda ps: Adam(ps, lr=0.1), {"eps": -1.0}, "eps must be >= 0"),
    (lambda ps: Adam(ps, lr=0.1), {"t": "x"}, r"t \(the steps taken\) must be an int >= 0"),
    (lambda ps: Adam(ps, lr=0.1), {"m": ["a", "b"]}, "restore: m must hold numbers"),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9), {"momentum": -0.5}, "momentum must be >= 0"),
    (lambda ps: AdamW(ps, lr=0.1), {"weight_decay": -1.0}, "weight_decay must be >= 0"),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True), {"momentum": 0.0}, "nesterov momentum needs"),
])
def test_restore_checks_a_snapshots_settings_as_the_constructor_does(make, bad, error):
    """A snapshot with ``lr=nan`` or ``betas=(2.0, 0.9)`` was put back silently, where the
    constructor refuses them (an outside hunt); refused, nothing changes."""
    opt = make([Value(1.0), Value(2.0)])
    before = opt.snapshot()
    state = {**before, **bad}
    with pytest.raises((ValueError, TypeError), match=error):
        opt.restore(state)
    after = opt.snapshot()
    assert after.keys() == before.keys()
    assert all(np.array_equal(after[k], before[k]) if isinstance(before[k], np.ndarray) else after[k] == before[k]
               for k in before)


def test_apply_takes_lists_and_refuses_non_numbers_with_a_type_error():
    opt, same = SGD([Value(v) for v in START], lr=0.5), SGD([Value(v) for v in START], lr=0.5)
    assert opt.apply(START, GRADS[0]).tolist() == same.apply(np.array(START), np.array(GRADS[0])).tolist()
    for data, grad in [(["a", 1.0, 2.0, 3.0], GRADS[0]), (START, {"g": 1.0}), (START, [[1.0], [1.0, 2.0]])]:
        with pytest.raises(TypeError, match=r"apply's (data|grad) must be an array of numbers, one per param"):
            opt.apply(data, grad)


def test_a_grad_of_none_is_a_clear_error_not_nan():
    """PyTorch's ``zero_grad(set_to_none=True)`` leaves None: step() read it as nan into the
    param and Adam's moments, silently (an outside hunt)."""
    a, b = Value(0.5), Value(2.0)
    a.grad, b.grad = 1.0, None
    opt = Adam([a, b], lr=0.1)
    with pytest.raises(TypeError, match=r"param 1's .grad is None .* set it to 0"):
        opt.step()
    assert (a.data, b.data) == (0.5, 2.0) and not np.isnan(opt.m).any()
    b.grad = "1"  # np.fromiter parsed it as 1.0 (an outside hunt)
    with pytest.raises(TypeError, match=r"param 1's .grad is a str; a .grad is a number"):
        opt.step()
    b.grad = 10**400
    with pytest.raises(graphc.DataError, match="too large for a float"):
        opt.step()
    b.grad = np.float32(0.5)  # any real number is read
    opt.step()
    assert opt.t == 1


def test_apply_refuses_what_numpy_cannot_read_as_a_type_error():
    torch = pytest.importorskip("torch")
    opt = SGD([Value(1.0)], lr=0.1)
    with pytest.raises(TypeError, match="apply's data must be an array of numbers"):
        opt.apply(torch.zeros(1, requires_grad=True), np.zeros(1))


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.1)])
def test_a_restored_snapshot_resumes_training_on_the_optimizers_own_params(make):
    """A snapshot held the params, and restoring it into a new optimizer over a reloaded model
    made that optimizer update the old Values: training silently stopped (an outside hunt).
    Now the state alone moves, as PyTorch's optimizer state_dict does, bit for bit."""
    def run(model, opt, steps):
        for _ in range(steps):
            model.zero_grad()
            loss = sum((o - 1.0) ** 2 for o in [model([0.5, -1.0])])
            loss.backward()
            opt.step()
    random.seed(4)
    model = MLP(2, [3, 1])
    opt = make(model.parameters())
    run(model, opt, 3)
    saved, state = model.state_dict(), opt.state_dict()
    run(model, opt, 2)
    random.seed(9)
    resumed = MLP(2, [3, 1])
    resumed.load_state_dict(saved)
    again = make(resumed.parameters())
    again.load_state_dict(state)
    run(resumed, again, 2)
    assert again.params == resumed.parameters() and "params" not in state
    assert [p.data for p in resumed.parameters()] == [p.data for p in model.parameters()]
    with pytest.raises(ValueError, match="restore"):
        make(resumed.parameters()[:2]).restore(state)


def test_an_optimizer_over_no_params_is_refused():
    """A Module subclassed without parameters() has none: SGD([]) trained nothing, silently."""
    with pytest.raises(ValueError, match="empty list of params"):
        SGD([], lr=0.1)


def _train_and_loop(make, edit, backend: str = "python"):
    """Params after ``train`` and after the loop of ``mean_and_grad`` plus ``step()`` it
    replaces, each from the same start with an optimizer made by ``make`` and set by ``edit``."""
    X = np.random.default_rng(0).normal(size=(8, 2))
    y = np.sign(X[:, 0])
    out = []
    for way in ("train", "loop"):
        random.seed(3)
        model = MLP(2, [3, 1])
        opt = make(model.parameters())
        edit(opt)
        step = graphc.compile(lambda x, t: (model(x) - t) ** 2, backend=backend)
        if way == "train":
            step.train(X, y, optimizer=opt, batch_size=4, epochs=2, shuffle=False)
        else:
            for _ in range(2):
                for s in range(0, 8, 4):
                    model.zero_grad()
                    step.mean(X[s:s + 4], y[s:s + 4]).backward()
                    opt.step()
        out.append([p.data for p in model.parameters()])
    return out


@pytest.mark.parametrize("make, edit", [
    (lambda ps: AdamW(ps, lr=np.float32(0.05), weight_decay=np.float32(0.3)), lambda opt: None),
    (lambda ps: Adam(ps, lr=0.05), lambda opt: setattr(opt, "betas", (np.float32(0.8), 0.99))),
    (lambda ps: Adam(ps, lr=0.05), lambda opt: setattr(opt, "m", np.zeros(len(opt.params), np.float32))),
    (lambda ps: SGD(ps, lr=0.05, momentum=0.5), lambda opt: setattr(opt, "velocity", np.zeros(len(opt.params),
                                                                                                np.float32))),
])
@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_float32_settings_and_state_step_in_float64_in_step_as_in_train(make, edit):
    """An outside hunt: AdamW's ``1 - lr * weight_decay`` of float32 settings was float32 in
    ``step()`` and float64 in ``train``'s C driver (2.7e-8 apart), and so were float32 betas
    and state arrays set after the constructor."""
    trained, looped = _train_and_loop(make, edit, backend="c")
    assert trained == looped


@pytest.mark.parametrize("edit, error, message", [
    (lambda opt: setattr(opt, "betas", (0.9, 1.5)), graphc.DataError, r"betas\[1\] must be in \[0, 1\)"),
    (lambda opt: setattr(opt, "weight_decay", -1.0), graphc.DataError, "weight_decay must be >= 0"),
    (lambda opt: setattr(opt, "t", 2**70), TypeError, "t .the steps taken. must be an int"),
    (lambda opt: setattr(opt, "m", np.zeros(3)), ValueError, "m holds .3,. numbers"),
])
def test_train_checks_settings_set_after_the_constructor(edit, error, message):
    """An outside hunt: train checked ``optimizer.lr`` alone."""
    with pytest.raises(error, match=message):
        _train_and_loop(lambda ps: Adam(ps, lr=0.05), edit)


class _Counting(SGD):
    """A subclass with state of its own, made on its first step, kept in a dict."""

    def _update(self, grad):
        self.count = getattr(self, "count", 0) + 1
        self.seen = getattr(self, "seen", {"steps": 0})
        self.seen["steps"] += 1
        if self.count == 3:
            raise RuntimeError("boom")
        return super()._update(grad)


def test_an_interrupted_train_rolls_back_state_made_or_changed_in_place():
    """An outside hunt: restore refused the attribute the first step made (its ValueError hid
    the exception, and nothing was put back), and a dict of state kept the failed steps."""
    opt = _Counting([Value(1.0), Value(2.0)], lr=0.1, momentum=0.5)
    opt.seen = {"steps": 0}
    compiled = graphc.compile(lambda x: (x * opt.params[0] + opt.params[1]) ** 2, backend="python")
    with pytest.raises(RuntimeError, match="boom"):
        compiled.train(np.ones(4), optimizer=opt, batch_size=1)
    assert not hasattr(opt, "count") and opt.seen == {"steps": 0} and opt.velocity.tolist() == [0.0, 0.0]
    assert [p.data for p in opt.params] == [1.0, 2.0]
