"""Per-sample loss functions on Values, written micrograd style so they trace and compile.

Each takes one sample's model output (a Value, or a list of Values for several outputs)
and its target (numbers or Values), and returns a scalar Value; ``graphc.compile`` of a
function calling one, then ``.mean(X, Y)``, averages it over a batch.  They are the
losses scikit-learn's MLPs minimise, computed so that no intermediate overflows: their
gradients with respect to the outputs are ``softmax(z) - t``, ``sigmoid(z) - t``,
``prediction - target`` and ``exp(z) - t``.
"""
from __future__ import annotations

import functools
import math
import numbers
import operator
import sys
from typing import Sequence, Union

import numpy as np

from .engine import Value, _coerce, apply
from .traced import TracedNumber

Outputs = Union[Value, Sequence[Value]]
_LARGEST = sys.float_info.max
#: The smallest positive float: ``max(t, _TINIEST)`` is ``t`` for every ``t > 0``.
_TINIEST = math.ulp(0.0)


def _values(x, name: str = "a loss", what: str = "the target") -> list:
    """A Value or number as a one-element list; a sequence (list, tuple, array) as a list."""
    if isinstance(x, (Value, numbers.Real)):
        return [x]
    try:
        return list(x)
    except TypeError:
        raise TypeError(f"{name}: {what} must be a Value, a number, or a sequence of those; "
                        f"got {type(x).__name__}") from None


def _outputs(x, name: str) -> list[Value]:
    """The model's outputs as Values: a plain number becomes a constant, so that the loss
    is a Value whatever mix it is given; anything else is a TypeError naming it."""
    outputs = [v if isinstance(v, Value) else _coerce(v) for v in _values(x, name, "the model output")]
    if any(out is None for out in outputs):
        bad = next(v for v, out in zip(_values(x), outputs) if out is None)
        raise TypeError(f"{name}: the model output must be Values or numbers; got {type(bad).__name__} {bad!r}"[:200])
    return outputs


def log_sum_exp(values: Sequence[Value]) -> Value:
    """``log(sum(exp(v)))``, shifted by the maximum so that ``exp`` never overflows.

    The shift is the maximum clamped to the finite floats, as PyTorch's ``logsumexp`` does:
    an infinite maximum would give ``inf - inf = nan``, but the clamped shift gives +inf
    when some value is +inf and -inf when all are -inf; for a finite maximum it is the
    maximum itself, so values and gradients are unchanged bit for bit.
    """
    values = _outputs(values, "log_sum_exp")
    if not values:
        raise ValueError("log_sum_exp needs at least one value; got none")
    shift = _shift(values)
    return shift + _log_sum_shifted(values, shift)


def _log_sum_shifted(values: list[Value], shift: Value) -> Value:
    """``log(sum(exp(v - shift)))``: what :func:`log_sum_exp` adds to its shift."""
    return sum((v - shift).exp() for v in values).log()


def _shift(values: list[Value]) -> Value:
    """The maximum of ``values`` clamped to the finite floats (see :func:`log_sum_exp`),
    detached, as PyTorch's ``logsumexp`` detaches it: the result does not depend on the shift,
    so its derivative there is 0 exactly in calculus, and ``1 - sum(softmax)`` in floats --
    rounding noise on the largest value's gradient, and ``inf - inf`` (nan on every value's
    gradient through the maxima) where a value is inf."""
    top = functools.reduce(lambda a, b: a.max(b), values)
    return (-((-top).max(-_LARGEST))).max(-_LARGEST).detach()  # max(min(top, largest), -largest)


def softmax_cross_entropy(logits: Outputs, target: Sequence) -> Value:
    """``-sum_k t_k log softmax(z)_k`` for a probability vector ``t`` (one-hot for a label):
    ``sum_k t_k (m - z_k) + log(sum_k exp(z_k - m))``, ``m`` the (clamped) maximum, since
    ``sum_k t_k = 1``.  Each term is formed from the shifted logits, as PyTorch's
    ``cross_entropy`` forms them: ``log_sum_exp(z) - sum_k t_k z_k`` lost the low bits of a
    small loss next to large logits (4e-14 relative at logits near -800: an outside hunt).
    As PyTorch's, a loss much smaller than 1 keeps only its rounding against 1 in
    ``log(1 + ...)`` (the term of the largest logit would need picking out), and logits a
    float's range apart (``1e308, -1e308``) make ``0 * inf``: nan.

    ``target`` may be a class index, as PyTorch's: a number where there are several logits
    is the one-hot ``[target == k for k in range(n)]`` -- in a compiled function, a label
    passed in is compared live, so one program serves every label (:mod:`graphc.traced`),
    and a label out of range gives nan there, the loss and its gradient (eager code raises
    ValueError)."""
    logits = _outputs(logits, "softmax_cross_entropy")
    labelled = len(logits) > 1 and isinstance(target, (Value, numbers.Real, np.bool_))
    if labelled:
        target = _one_hot(target, len(logits))
    target = _values(target, "softmax_cross_entropy")
    _same_length(logits, target, "softmax_cross_entropy")
    _probabilities(target)
    shift = _shift(logits)
    if labelled and all(type(t) is bool for t in target):  # a label known now: its term alone, as PyTorch's
        # nll picks it (the others' 0 * (shift - z) was 0 * inf, nan, for a logit masked with -inf)
        label = target.index(True)
        return (shift - logits[label]) + _log_sum_shifted(logits, shift)
    loss = sum(t * (shift - z) for t, z in zip(target, logits)) + _log_sum_shifted(logits, shift)
    if labelled:  # a label compared live, in a compiled function: no guard can raise for a label out of
        # range, so the loss and its gradient are nan there (times 1.0 elsewhere); a nan term added to the
        # loss left its gradient finite, and train went on stepping on it (an outside hunt)
        loss = loss * (1.0 + apply("log", sum(target)) * 0.0)
    return loss


def _one_hot(label, n: int) -> list:
    """``label`` (a class index) as a one-hot target of ``n`` entries: Python bools for a
    number (``np.float64(5.0)`` too, whose ``==`` gives NumPy bools: it took the path of a
    label compared live, nan out of range where eager code raises -- an outside hunt)."""
    if not isinstance(label, (Value, TracedNumber)):
        if not 0 <= label < n:
            raise ValueError(f"softmax_cross_entropy: label {label} is out of range for {n} logits (0 to {n - 1})")
        if label != math.floor(label):
            raise ValueError(f"softmax_cross_entropy: label {label} is not a class index (a whole number)")
        return [bool(label == k) for k in range(n)]
    hot = [label == k for k in range(n)]
    if isinstance(label, Value) and all(type(h) is bool for h in hot):  # compared by identity, as micrograd's
        raise TypeError("softmax_cross_entropy: a class index is a number, not a Value (its == is identity); "
                        "pass int(label.data), or a one-hot target")
    return hot


def _probabilities(target: list) -> None:
    """A target of plain numbers must sum to 1: the loss is formed for one (an all-zero
    one-hot of an out-of-range label gave log_sum_exp(z), silently: an outside hunt).  A
    target of Values (data passed in) is the caller's to check.  NumPy's numbers are plain
    numbers too (an all-zero ``np.zeros(3)`` went unchecked: an outside hunt)."""
    if all(isinstance(t, (numbers.Real, np.bool_)) and not isinstance(t, (Value, TracedNumber)) for t in target):
        total = math.fsum(target)
        if not abs(total - 1.0) <= 1e-6:
            raise ValueError(f"softmax_cross_entropy: the target must be a probability vector (one-hot for a "
                             f"label: [1.0 if k == label else 0.0 for k in range(n)]), summing to 1; "
                             f"got {target!r:.120} summing to {total!r}")


def logistic_loss(logits: Outputs, target: Sequence | float) -> Value:
    """Binary cross-entropy of ``sigmoid(z)`` against ``t`` in [0, 1], summed over the outputs
    (one for binary, several for multi-label): ``t softplus(-z) + (1 - t) softplus(z)``,
    which is ``softplus(z) - t z`` without its cancellation: for ``t = 1`` the loss is
    ``softplus(-z)`` itself, exact when it is tiny (``softplus(z) - z`` was 1.3% off at
    ``z = 30`` and 0 at 40: an outside hunt, against PyTorch's
    ``binary_cross_entropy_with_logits``), and the gradient ``(1 - t) sigmoid(z) - t
    sigmoid(-z)`` is ``sigmoid(z) - t`` without one either."""
    return functools.reduce(operator.add, logistic_terms(logits, target, "logistic_loss"))


def logistic_terms(logits: Outputs, target: Sequence | float, name: str = "logistic_terms") -> list[Value]:
    """:func:`logistic_loss`'s term of each output, which it adds first to last (for losses
    that treat the outputs apart, as scikit-learn's clips each output's loss)."""
    logits, target = _outputs(logits, name), _values(target, name)
    _same_length(logits, target, name)
    return [t * (-z).softplus() + (1 - t) * z.softplus() for z, t in zip(logits, target)]


def half_squared_error(prediction: Outputs, target: Sequence | float) -> Value:
    """``0.5 * sum_k (p_k - t_k)**2``: scikit-learn's regression loss (its gradient is ``p - t``)."""
    prediction, target = _outputs(prediction, "half_squared_error"), _values(target, "half_squared_error")
    _same_length(prediction, target, "half_squared_error")
    return 0.5 * sum((p - t) ** 2 for p, t in zip(prediction, target))


def half_poisson_deviance(log_prediction: Outputs, target: Sequence | float) -> Value:
    """Half the Poisson deviance of the prediction ``p = exp(z)`` against counts ``t >= 0``,
    summed over the outputs: ``t log(t / p) - t + p = exp(z) - t z + t log(t) - t``.

    scikit-learn's ``MLPRegressor(loss="poisson")`` loss, ``z`` being the network's linear
    output (its gradient is ``exp(z) - t``).  ``t log(t)`` is 0 at ``t = 0`` (``xlogy``),
    computed as ``t * log(max(t, tiniest float))``, which is ``t log(t)`` for every ``t > 0``
    and ``0 * log(5e-324) = -0.0`` at 0 without a branch, so traced targets compile.
    """
    log_prediction = _outputs(log_prediction, "half_poisson_deviance")
    target = _values(target, "half_poisson_deviance")
    _same_length(log_prediction, target, "half_poisson_deviance")
    negative = next((t for t in target if not isinstance(t, Value) and t < 0), None)
    if negative is not None:
        raise ValueError(f"half_poisson_deviance: the targets are counts, >= 0; got {negative!r}")
    total = None
    for z, t in zip(log_prediction, target):
        t_log_t = t * t.max(_TINIEST).log() if isinstance(t, Value) else t * math.log(max(t, _TINIEST))
        term = z.exp() - t * z + t_log_t - t
        total = term if total is None else total + term
    return total


def _same_length(outputs: list, target: list, name: str) -> None:
    if not outputs:  # a sum of no terms would be 0.0 or None, not the scalar Value each loss is
        raise ValueError(f"{name} needs at least one output; got none")
    if len(outputs) != len(target):
        raise ValueError(f"{name}: the target must have one entry per output ({len(outputs)}); got {len(target)}")
