"""The compiled code the estimators run, and the L2 penalty added to the compiled loss.

The code is shared by every estimator of one architecture."""
from __future__ import annotations

import functools
import math
import numbers
import operator
from collections import OrderedDict

import numpy as np

from .. import forksafe, losses
from ..backends import choose_auto
from ..compile import compile as graphc_compile
from ..engine import Value
from ..nn import MLP, Module

#: The range scikit-learn's log losses keep each output's loss in: they clip a probability
#: to [eps, 1 - eps] before its log.
_EPS = float(np.finfo(np.float64).eps)
_LOG_LOSS_RANGE = (-math.log(1 - _EPS), -math.log(_EPS))


def _as_reported(exact: Value, clipped: Value) -> Value:
    """``clipped``'s value with ``exact``'s gradient, as scikit-learn's objective has them: its
    loss clips probabilities, its gradient (softmax or sigmoid minus the target) does not.
    ``exact - exact.detach()`` is +0.0 and passes ``exact``'s gradient on unchanged."""
    return clipped.detach() + (exact - exact.detach())


def _clip(v: Value, low: float, high: float) -> Value:
    """``np.clip(v, low, high)`` in Value ops: ``min(max(v, low), high)`` (nan stays nan)."""
    return -((-(v.max(low))).max(-high))


def _log_loss(logits: list, target: list) -> Value:
    """scikit-learn's ``log_loss`` of a softmax output: the cross-entropy, clipped in value
    (a row whose true class has a probability under eps reported 60 where scikit-learn's
    36.04, and lbfgs, whose line search reads the loss, took another path: an outside hunt)."""
    exact = losses.softmax_cross_entropy(logits, target)
    return _as_reported(exact, _clip(exact, *_LOG_LOSS_RANGE))


def _binary_log_loss(logits: Value | list, target: list) -> Value:
    """scikit-learn's ``binary_log_loss`` of logistic outputs: each output's
    ``-(t log(p) + (1 - t) log(1 - p))`` of ``p = sigmoid(z)`` clipped, summed, in value; the
    gradient is that of graphc's exact :func:`~graphc.losses.logistic_loss`.  Its ``1 - p``
    loses the bits of a saturated output that ``softplus`` keeps, so the value is written as
    scikit-learn writes it (a hunt found loss curves 7e-5 apart at outputs near z = 33)."""
    terms = losses.logistic_terms(logits, target)
    reported = []
    for z, t in zip(_as_list(logits), _as_list(target)):
        p = _clip(z.sigmoid(), _EPS, 1 - _EPS)  # as scikit-learn clips it
        reported.append(-(t * p.log() + (1 - t) * (1 - p).log()))
    return _as_reported(functools.reduce(operator.add, terms), functools.reduce(operator.add, reported))


def _as_list(x: Value | float | list) -> list:
    """One output's Value or number as a list of one; a row of several as a list."""
    return [x] if isinstance(x, (Value, numbers.Real)) else list(x)


#: out_activation_ -> the per-sample loss it is trained with.
_LOSSES = {"logistic": _binary_log_loss, "softmax": _log_loss,
           "identity": losses.half_squared_error, "exp": losses.half_poisson_deviance}

#: (input width, layer widths, activation, output activation, backend) -> the compiled
#: per-sample loss and forward pass of such a network, least recently used first.
#: Compiled code takes the params as an array, so estimators of one architecture share
#: it: a grid search or a cross-validation traces and generates code once per
#: architecture, not once per fit.  Four are kept: one holds ~150 MB for a 784-100-10
#: network (its graphs), a few MB for the examples' networks.
_PROGRAMS: OrderedDict = OrderedDict()
_PROGRAMS_KEPT = 4
_PROGRAMS_LOCK = forksafe.Lock()


class _Objective(Module):
    """The per-sample training loss of a network times the sample's weight, as a Module so
    that its compiled params are the network's ``parameters()`` in order.  The weight is a
    batched argument: ``mean_and_grad(X, Y, w)`` is ``sum(w * loss) / rows``, which the
    estimators rescale to scikit-learn's weighted mean (all ones when no weights are given:
    ``1 * loss`` is ``loss`` bit for bit)."""

    def __init__(self, model: MLP, loss) -> None:
        self.model, self.loss = model, loss

    def __call__(self, x, target, weight):
        return weight * self.loss(self.model(x), target)

    def parameters(self) -> list:
        return self.model.parameters()


def _programs(model: MLP, out_activation: str, backend: str) -> tuple:
    """The compiled ``(loss_step, forward)`` for ``model``'s architecture, made on first use
    from ``model`` (whose params then only give the shapes: callers pass theirs as arrays)."""
    key = (len(model.layers[0].neurons[0].w), tuple(len(layer.neurons) for layer in model.layers),
           model.layers[0].neurons[0].activation, out_activation, backend)
    with _PROGRAMS_LOCK:
        programs = _PROGRAMS.get(key)
        if programs is None:
            if backend == "auto":
                backend = choose_auto()
            programs = (graphc_compile(_Objective(model, _LOSSES[out_activation]), backend=backend),
                        graphc_compile(model, backend=backend))
            _PROGRAMS[key] = programs
            while len(_PROGRAMS) > _PROGRAMS_KEPT:
                _PROGRAMS.popitem(last=False)
        _PROGRAMS.move_to_end(key)
    return programs


def _add_l2(params: np.ndarray, is_weight: np.ndarray, scale: float, grad: np.ndarray) -> float:
    """``scale * sum(w * w)`` over the weights, whose gradient ``2 * scale * w`` is added into ``grad``.

    The sum runs first to last in params order, as the native training driver sums it
    (:mod:`graphc.codegen.c_train`; ``np.cumsum`` adds one term at a time, where ``w @ w``
    would let BLAS split the sum): a sparse or weighted fit reports the dense fit's losses,
    bit for bit, so its stopping rule stops at the same epoch.  The same numbers as adding
    the eager Value expression to the loss before ``backward()`` (tested), without building
    and walking two nodes per weight, which would cost more than the batched loss itself.
    """
    w = params[is_weight]
    grad[is_weight] += 2.0 * scale * w
    return scale * float(np.cumsum(w * w)[-1]) if len(w) else 0.0


def packed_order(model: MLP) -> np.ndarray:
    """Where scikit-learn's packed vector (every layer's coefs, row-major (fan_in, fan_out),
    then every layer's intercepts) finds each entry in ``model.parameters()`` order, which
    runs neuron by neuron (its weights, then its bias): ``params[order]`` is the packed
    vector, and ``params[order] = packed`` unpacks it."""
    coefs, intercepts, start = [], [], 0
    for layer in model.layers:
        fan_in, fan_out = len(layer.neurons[0].w), len(layer.neurons)
        neuron_starts = start + np.arange(fan_out) * (fan_in + 1)
        coefs.append((neuron_starts[None, :] + np.arange(fan_in)[:, None]).ravel())
        intercepts.append(neuron_starts + fan_in)
        start += fan_out * (fan_in + 1)
    return np.concatenate(coefs + intercepts)
