"""graphc.losses: values against the textbook formulas, gradients against their closed forms."""
from __future__ import annotations

import functools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc
from graphc import Value
from graphc.losses import half_poisson_deviance, half_squared_error, log_sum_exp, logistic_loss, softmax_cross_entropy
from graphc.nn import MLP
from conftest import rel_err

LOGITS = [[0.1, -2.0, 3.0], [1000.0, 999.0, -1000.0], [-800.0, -801.0, -799.5], [0.0, 0.0, 0.0]]


def grads_of(loss_fn, outputs, target):
    """The loss value and its gradient with respect to each output, by eager backward()."""
    values = [Value(v) for v in outputs]
    loss = loss_fn(values if len(values) > 1 else values[0], target)
    loss.backward()
    return loss.data, [v.grad for v in values]


def softmax(z):
    top = max(z)
    e = [math.exp(v - top) for v in z]
    return [x / sum(e) for x in e]


@pytest.mark.parametrize("logits", LOGITS)
def test_log_sum_exp_never_overflows(logits):
    top = max(logits)
    assert log_sum_exp([Value(v) for v in logits]).data == pytest.approx(
        top + math.log(sum(math.exp(v - top) for v in logits)), rel=1e-15)


@pytest.mark.parametrize("logits", LOGITS)
@pytest.mark.parametrize("label", [0, 2])
def test_softmax_cross_entropy_and_its_gradient_softmax_minus_onehot(logits, label):
    onehot = [1.0 if k == label else 0.0 for k in range(3)]
    value, grads = grads_of(softmax_cross_entropy, logits, onehot)
    probabilities = softmax(logits)
    top = max(logits)
    assert value == pytest.approx(top + math.log(sum(math.exp(v - top) for v in logits)) - logits[label], rel=1e-14)
    np.testing.assert_allclose(grads, np.array(probabilities) - onehot, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("z", [-1000.0, -30.0, -1.5, 0.0, 0.7, 40.0, 1000.0])
@pytest.mark.parametrize("t", [0.0, 1.0, 0.25])
def test_logistic_loss_is_stable_softplus_and_its_gradient_sigmoid_minus_target(z, t):
    value, (grad,) = grads_of(logistic_loss, [z], t)
    softplus = max(z, 0.0) + math.log1p(math.exp(-abs(z)))
    assert rel_err(value, softplus - t * z) <= 1e-15  # without log1p, log(1 + 1e-13) keeps ~3 digits of 1e-13
    sigmoid = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
    assert grad == pytest.approx(sigmoid - t, rel=1e-12, abs=1e-15)


def test_logistic_loss_sums_over_labels():
    z, t = [0.3, -2.0, 5.0], [1.0, 0.0, 1.0]
    value, grads = grads_of(logistic_loss, z, t)
    assert value == pytest.approx(sum(math.log1p(math.exp(zi)) - ti * zi for zi, ti in zip(z, t)), rel=1e-14)
    np.testing.assert_allclose(grads, [1 / (1 + math.exp(-zi)) - ti for zi, ti in zip(z, t)], rtol=1e-13)


def test_half_squared_error_and_its_gradient_prediction_minus_target():
    value, grads = grads_of(half_squared_error, [1.5, -2.0], np.array([0.5, 1.0]))
    assert value == 0.5 * (1.0 ** 2 + 3.0 ** 2)
    assert grads == [1.0, -3.0]
    assert grads_of(half_squared_error, [2.0], 0.5) == (0.5 * 1.5 ** 2, [1.5])


@pytest.mark.parametrize("z", [-30.0, -1.5, 0.0, 0.7, 5.0])
@pytest.mark.parametrize("t", [0.0, 1.0, 3.5, 1e-300])
def test_half_poisson_deviance_is_scipys_and_its_gradient_exp_minus_target(z, t):
    from scipy.special import xlogy
    value, (grad,) = grads_of(half_poisson_deviance, [z], t)
    expected = xlogy(t, t / math.exp(z)) - t + math.exp(z)  # scikit-learn's poisson_loss, one sample
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert grad == pytest.approx(math.exp(z) - t, rel=1e-15, abs=1e-300)
    traced_target = half_poisson_deviance(Value(z), Value(t))  # the branch-free t log t of a traced target
    assert traced_target.data == value


def test_half_poisson_deviance_sums_over_outputs():
    value, grads = grads_of(half_poisson_deviance, [0.5, -1.0], [2.0, 0.0])
    assert value == pytest.approx(math.exp(0.5) - 1.0 + 2.0 * math.log(2.0) - 2.0 + math.exp(-1.0), rel=1e-14)
    assert grads == [math.exp(0.5) - 2.0, math.exp(-1.0)]


LOSSES = [softmax_cross_entropy, logistic_loss, half_squared_error, half_poisson_deviance]


@pytest.mark.parametrize("loss", LOSSES)
def test_compiled_batched_mean_equals_the_eager_average(loss):
    rng = np.random.default_rng(1)
    Z, T = rng.normal(scale=5.0, size=(40, 3)), np.eye(3)[rng.integers(0, 3, size=40)]
    weights = [Value(v) for v in rng.normal(size=3)]

    def per_sample(z, t):
        return loss([w * zi for w, zi in zip(weights, z)], t)
    mean = graphc.compile(per_sample).mean(Z, T)
    mean.backward()
    compiled_grads = [w.grad for w in weights]
    for w in weights:
        w.grad = 0
    eager = sum(per_sample(z.tolist(), t.tolist()) for z, t in zip(Z, T)) * (1 / len(Z))
    eager.backward()
    assert mean.data == pytest.approx(eager.data, rel=1e-12)
    np.testing.assert_allclose(compiled_grads, [w.grad for w in weights], rtol=1e-10)


@pytest.mark.parametrize("loss", LOSSES)
def test_a_target_of_the_wrong_length_is_an_error(loss):
    with pytest.raises(ValueError, match="one entry per output \\(3\\); got 2"):
        loss([Value(0.0)] * 3, [1.0, 0.0])
    with pytest.raises(ValueError, match="at least one value"):
        log_sum_exp([])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-700.0, 700.0), min_size=1, max_size=5), st.data())
def test_gradients_are_the_closed_forms_for_any_logits(logits, data):
    label = data.draw(st.integers(0, len(logits) - 1))
    onehot = [1.0 if k == label else 0.0 for k in range(len(logits))]
    value, grads = grads_of(softmax_cross_entropy, logits, onehot)
    assert math.isfinite(value) and value >= -1e-12
    np.testing.assert_allclose(grads, np.array(softmax(logits)) - onehot, rtol=1e-9, atol=1e-12)
    value, grads = grads_of(logistic_loss, logits, onehot)
    assert math.isfinite(value) and value >= 0.0
    sigmoids = [1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z)) for z in logits]
    np.testing.assert_allclose(grads, np.array(sigmoids) - onehot, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("logits, expected", [
    ([math.inf, 1.0], math.inf), ([1.0, math.inf, -math.inf], math.inf), ([-math.inf, -math.inf], -math.inf),
    ([-math.inf, 2.0], 2.0), ([1e308, 1e308], 1e308 + math.log(2.0)), ([math.nan, 1.0], math.nan),
    ([-1e308, -math.inf], -1e308),
])
def test_log_sum_exp_of_infinite_values(logits, expected):
    # Regression: the shift by the maximum gave inf - inf = nan for an infinite maximum.
    got = log_sum_exp([Value(v) for v in logits]).data
    assert got == expected or (math.isnan(got) and math.isnan(expected))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e300, 1e300), min_size=1, max_size=5))
def test_clamping_the_shift_changes_nothing_for_finite_values(logits):
    """The clamped shift equals the maximum, so values and gradients are the unclamped formula's
    bits (the maximum detached, as PyTorch's logsumexp detaches it)."""
    def unclamped(vs):
        top = functools.reduce(lambda a, b: a.max(b), vs).detach()
        return top + sum((v - top).exp() for v in vs).log()
    results = []
    for f in (log_sum_exp, unclamped):
        vs = [Value(v) for v in logits]
        out = f(vs)
        out.backward()
        results.append([out.data] + [v.grad for v in vs])
    assert results[0] == results[1] or all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(*results))


def test_log_sum_exp_of_an_infinity_has_pytorchs_gradient():
    """The shift is detached, as PyTorch's: through the maxima, ``1 - sum(softmax)`` was
    ``inf - inf`` and made every gradient nan ([nan, nan] where PyTorch's is [0, nan])."""
    def same(got, want):
        return all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(got, want, strict=True))

    cases = [([0.0, math.inf], [0.0, math.nan]), ([-math.inf, 1.0], [0.0, 1.0]),
             ([math.inf, math.inf], [math.nan, math.nan])]
    for values, grads in cases:
        vs = [Value(v) for v in values]
        log_sum_exp(vs).backward()
        assert same([v.grad for v in vs], grads)
    torch = pytest.importorskip("torch")  # the expected gradients are PyTorch's
    for values, grads in cases:
        tensor = torch.tensor(values, dtype=torch.float64, requires_grad=True)
        torch.logsumexp(tensor, 0).backward()
        assert same(tensor.grad.tolist(), grads)


@pytest.mark.parametrize("loss", [logistic_loss, half_squared_error, softmax_cross_entropy, half_poisson_deviance])
def test_plain_number_outputs_give_the_same_loss_value_and_non_numbers_a_type_error(loss):
    outputs, target = ([0.5, -1.5], [0.0, 1.0])
    from_numbers = loss(outputs, target)
    assert isinstance(from_numbers, Value) and from_numbers.data == loss([Value(v) for v in outputs], target).data
    assert loss(0.5, 1.0).data == loss(Value(0.5), 1.0).data
    assert log_sum_exp(np.array(outputs)).data == log_sum_exp([Value(v) for v in outputs]).data
    for bad in ["ab", None, [Value(1.0), "x"]]:
        with pytest.raises(TypeError, match=rf"{loss.__name__}: the model output must be"):
            loss(bad, target)
    with pytest.raises(TypeError, match=rf"{loss.__name__}: the target must be a Value, a number, or a sequence"):
        loss([Value(1.0)], None)


@pytest.mark.parametrize("loss", [logistic_loss, half_squared_error, softmax_cross_entropy, half_poisson_deviance])
def test_no_outputs_is_a_clear_error_for_every_loss(loss):
    """Each gave its own answer: None, 0.0 or a ValueError (an outside hunt)."""
    with pytest.raises(ValueError, match=rf"{loss.__name__} needs at least one output; got none"):
        loss([], [])


def test_poisson_counts_are_checked():
    with pytest.raises(ValueError, match=r"half_poisson_deviance: the targets are counts, >= 0; got -1.0"):
        half_poisson_deviance([Value(0.0)], [-1.0])


@pytest.mark.parametrize("z, t", [(20.0, 1.0), (30.0, 1.0), (40.0, 1.0), (-30.0, 0.0), (0.5, 0.3), (-3.0, 1.0)])
def test_logistic_loss_and_its_gradient_are_accurate_where_the_loss_is_tiny(z, t):
    """``softplus(z) - t z`` cancelled: 1.3% off at z = 30 and 0 at 40 for t = 1, where
    PyTorch's binary_cross_entropy_with_logits is exact (an outside hunt)."""
    import mpmath
    mpmath.mp.dps = 50
    v = Value(z)
    loss = logistic_loss([v], [t])
    loss.backward()
    exact = mpmath.log(1 + mpmath.e ** mpmath.mpf(z)) - t * mpmath.mpf(z)
    slope = 1 / (1 + mpmath.e ** -mpmath.mpf(z)) - t
    assert abs(loss.data - exact) <= 4e-16 * abs(exact) and abs(v.grad - slope) <= 4e-16 * abs(slope)


def test_softmax_cross_entropy_keeps_a_small_loss_next_to_large_logits():
    """``log_sum_exp(z) - t . z`` lost the low bits at logits near -800 (4.4e-14 relative, an
    outside hunt); formed from the shifted logits, as PyTorch's cross_entropy, it is exact."""
    import mpmath
    mpmath.mp.dps = 50
    z = [-800.0, -800.0, -801.0]
    exact = mpmath.log(sum(mpmath.e ** mpmath.mpf(v) for v in z)) + 800
    assert softmax_cross_entropy([Value(v) for v in z], [1.0, 0.0, 0.0]).data == float(exact)


@pytest.mark.parametrize("target", [[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1, 1, 0], [0.5, 0.0, 0.0]])
def test_softmax_cross_entropy_refuses_a_target_of_numbers_that_is_no_probability_vector(target):
    """The loss is formed for targets summing to 1: an all-zero one-hot (an out-of-range label)
    gave log_sum_exp(z) silently, where -sum t log softmax is -0.0 (an outside hunt)."""
    with pytest.raises(ValueError, match="probability vector"):
        softmax_cross_entropy([Value(1.0), Value(2.0), Value(3.0)], target)
    loss = softmax_cross_entropy([Value(1.0), Value(2.0), Value(3.0)], [0.1, 0.2, 0.7])  # sums to 1 in floats
    assert loss.data == pytest.approx(-sum(t * (z - math.log(sum(math.exp(v) for v in (1, 2, 3))))
                                          for t, z in zip([0.1, 0.2, 0.7], [1, 2, 3])), rel=1e-15)


def test_numpy_targets_and_labels_are_checked_as_pythons_are():
    """NumPy's numbers skipped the checks Python's get (an outside hunt): an all-zero one-hot
    from ``np.zeros`` or an out-of-range ``np.arange(n) == label`` gave lse(z) - max(z),
    ``np.full(3, 0.5)`` a loss that is no cross-entropy, and a ``np.float64`` label out of
    range nan where an int raises; a NumPy label in range is the int's loss, bit for bit."""
    z = [1.0, 2.0, 0.5]
    for target in (np.zeros(3), (np.arange(3) == 5).astype(float), np.arange(3) == 5, np.full(3, 0.5)):
        with pytest.raises(ValueError, match="the target must be a probability vector"):
            softmax_cross_entropy([Value(v) for v in z], target)
    for label in (np.float64(5.0), np.float64(-1.0), np.int64(3)):
        with pytest.raises(ValueError, match=f"label {label} is out of range for 3 logits"):
            softmax_cross_entropy([Value(v) for v in z], label)
    with pytest.raises(ValueError, match="label 1.5 is not a class index"):
        softmax_cross_entropy(z, np.float64(1.5))
    for label in (np.float64(1.0), np.eye(3)[1] == 1):
        zs, hs = [Value(v) for v in z], [Value(v) for v in z]
        want = softmax_cross_entropy(hs, [k == 1 for k in range(3)] if label.ndim else int(label))
        got = softmax_cross_entropy(zs, label)
        got.backward()
        want.backward()
        assert got.data == want.data and [v.grad for v in zs] == [v.grad for v in hs]


def test_a_numpy_bool_label_is_pythons_bool():
    """``True`` is label 1, as Python's bools are ints; ``np.True_`` (``labels == c`` indexed)
    was refused with a TypeError naming bool (an outside hunt)."""
    z = [0.3, -1.2]
    for label in (np.True_, np.False_):
        got = softmax_cross_entropy([Value(v) for v in z], label)
        assert got.data == softmax_cross_entropy([Value(v) for v in z], bool(label)).data
    compiled = graphc.compile(lambda a, b, t: softmax_cross_entropy([a, b], t))
    assert compiled(0.3, -1.2, np.True_).data == softmax_cross_entropy([Value(v) for v in z], 1).data


def test_a_logit_masked_with_minus_inf_keeps_a_labels_loss_finite_as_pytorchs():
    """The other classes' ``0 * (shift - z)`` was ``0 * inf`` for a logit of -inf: nan, where
    PyTorch's cross_entropy with a class index gives log 2 here (an outside hunt)."""
    for compiled in (False, True):
        zs = [Value(-math.inf), Value(0.0), Value(0.0)]
        fn = (lambda *z: softmax_cross_entropy(list(z), 1))
        loss = graphc.compile(fn)(*zs) if compiled else fn(*zs)
        loss.backward()
        assert loss.data == math.log(2.0) and [v.grad for v in zs] == [0.0, -0.5, 0.5]


def test_softmax_cross_entropy_takes_a_class_index_as_pytorchs():
    """A PyTorch habit (an outside review): the target a label, not a one-hot list; in a
    compiled function a label passed in is compared live, one program for every label."""
    z = [0.5, -1.25, 2.0]
    for label in (0, 1, 2, np.int64(2), True):
        hot = [1.0 if k == label else 0.0 for k in range(3)]
        zs, hs = [Value(v) for v in z], [Value(v) for v in z]
        got, want = softmax_cross_entropy(zs, label), softmax_cross_entropy(hs, hot)
        got.backward()
        want.backward()
        assert got.data == want.data and [v.grad for v in zs] == [v.grad for v in hs]
    for label in (3, -1):
        with pytest.raises(ValueError, match=f"label {label} is out of range for 3 logits"):
            softmax_cross_entropy(z, label)
    with pytest.raises(TypeError, match="a class index is a number, not a Value"):
        softmax_cross_entropy(z, Value(1.0))
    random.seed(5)
    model = MLP(2, [3, 3])
    X = np.array([[0.5, -1.0], [2.0, 0.25], [-1.0, 1.0]])
    labels = np.array([2, 0, 1])
    by_label = graphc.compile(lambda x, t: softmax_cross_entropy(model(x), t), backend="c")
    by_data = graphc.compile(lambda x, t: softmax_cross_entropy(model(x), t), backend="c")
    got, want = by_label.mean_and_grad(X, labels), by_data.mean_and_grad(X, np.eye(3)[labels])
    assert got[0] == want[0] and got[1].tolist() == want[1].tolist() and by_label.trace_count == 1
    # out of range where it is compared live: nan, not the loss of no class (a review: silently plausible)
    rows = by_label.map(X, np.array([2, 7, -1]), allow_nonfinite=True)
    assert rows[0] == by_data.map(X[:1], np.eye(3)[[2]])[0] and np.isnan(rows[1:]).all()
    assert math.isnan(by_label(X[0], 1.5).data)
    for backend in ("python", "numpy", "c"):  # the gradient too (an outside hunt: finite, and train stepped on it)
        loss, grad = graphc.compile(lambda x, t: softmax_cross_entropy(model(x), t),
                                    backend=backend).mean_and_grad(X, np.array([2, 3, 1]), allow_nonfinite=True)
        assert math.isnan(loss) and np.isnan(grad).any()
