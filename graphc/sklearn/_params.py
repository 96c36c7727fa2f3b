"""The estimators' parameters: what each must be, checked by ``fit`` (never by ``__init__``)."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.utils._param_validation import InvalidParameterError

from ..backends import BACKENDS

#: scikit-learn's activation names -> graphc.nn's ("sigmoid" is accepted as a synonym).
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu"}
#: The solvers that step through minibatches (partial_fit exists for them only).
STOCHASTIC_SOLVERS = ("sgd", "adam")


def _real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _bool(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_))


def _text(x: Any) -> bool:
    return isinstance(x, str)


#: parameter -> (type test, value test, what is expected).
RULES = {
    "activation": (_text, lambda v: v in ACTIVATIONS, f"one of {sorted(ACTIVATIONS)}"),
    "solver": (_text, lambda v: v in ("lbfgs", *STOCHASTIC_SOLVERS), "'lbfgs', 'sgd' or 'adam'"),
    "alpha": (_real, lambda v: 0 <= v < np.inf, "a finite real number >= 0"),
    "batch_size": (lambda v: _text(v) or _int(v), lambda v: v == "auto" or (_int(v) and v >= 1),
                   "'auto' or an int >= 1"),
    "learning_rate": (_text, lambda v: v in ("constant", "invscaling", "adaptive"),
                      "'constant', 'invscaling' or 'adaptive'"),
    "learning_rate_init": (_real, lambda v: 0 < v < np.inf, "a finite real number > 0"),
    "power_t": (_real, lambda v: 0 <= v < np.inf, "a finite real number >= 0"),
    "max_iter": (_int, lambda v: v >= 1, "an int >= 1"),
    "shuffle": (_bool, lambda v: True, "a bool"),
    "tol": (_real, lambda v: 0 <= v < np.inf, "a finite real number >= 0"),
    "verbose": (lambda v: _bool(v) or _int(v), lambda v: True, "a bool or an int"),
    "warm_start": (_bool, lambda v: True, "a bool"),
    "momentum": (_real, lambda v: 0 <= v <= 1, "a real number in [0, 1]"),
    "nesterovs_momentum": (_bool, lambda v: True, "a bool"),
    "early_stopping": (_bool, lambda v: True, "a bool"),
    "validation_fraction": (_real, lambda v: 0 < v < 1, "a real number in (0, 1)"),
    "beta_1": (_real, lambda v: 0 <= v < 1, "a real number in [0, 1)"),
    "beta_2": (_real, lambda v: 0 <= v < 1, "a real number in [0, 1)"),
    "epsilon": (_real, lambda v: 0 < v < np.inf, "a finite real number > 0"),
    "n_iter_no_change": (lambda v: _int(v) or v == np.inf, lambda v: v >= 1, "an int >= 1 or np.inf"),
    "max_fun": (_int, lambda v: v >= 1, "an int >= 1"),
    "random_state": (lambda v: v is None or _int(v) or isinstance(v, np.random.RandomState),
                     lambda v: not _int(v) or 0 <= v <= 2 ** 32 - 1,
                     "None, an int in [0, 4294967295] or a numpy.random.RandomState"),
    "backend": (_text, lambda v: v in ("auto", *BACKENDS),
                f"'auto' (C if a C compiler is found, else NumPy) or one of {BACKENDS}"),
}
#: MLPRegressor's extra parameter.
LOSS_RULE = {"loss": (_text, lambda v: v in ("squared_error", "poisson"), "'squared_error' or 'poisson'")}


def check_params(estimator: Any, rules: dict) -> list[int]:
    """Every parameter in ``rules`` checked: scikit-learn's InvalidParameterError (a ValueError
    and a TypeError, as its estimators raise) saying what was expected; returns the hidden
    layer sizes as a list."""
    name = type(estimator).__name__
    for param, (type_ok, value_ok, expected) in rules.items():
        value = getattr(estimator, param)
        if not type_ok(value):
            raise InvalidParameterError(f"{name}: {param} must be {expected}; got {type(value).__name__} {value!r}")
        if not value_ok(value):
            raise InvalidParameterError(f"{name}: {param} must be {expected}; got {value!r}")
    sizes = estimator.hidden_layer_sizes
    sizes = [sizes] if _int(sizes) else list(sizes) if hasattr(sizes, "__iter__") else None
    if sizes is None or not all(_int(s) and s >= 1 for s in sizes):
        raise InvalidParameterError(f"{name}: hidden_layer_sizes must be an int >= 1 or a sequence of them; "
                                    f"got {estimator.hidden_layer_sizes!r}")
    return [int(s) for s in sizes]
