"""scikit-learn estimators trained by graphc: ``MLPClassifier`` and ``MLPRegressor``.

Drop-ins for ``sklearn.neural_network``'s classes with the stochastic solvers ("sgd",
"adam"): the same parameters, defaults, fitted attributes, initialisation and random
number sequence.  Not supported: ``solver="lbfgs"`` (and its ``max_fun``),
``sample_weight``, ``MLPRegressor(loss="poisson")``; ``activation`` also accepts
"sigmoid", a synonym of "logistic".  The network is a :class:`graphc.nn.MLP`.  Its per-sample
loss (:mod:`graphc.losses`) is compiled once per architecture and shared by every
estimator of that architecture (a grid search compiles each shape once); a fit keeps the
params in one array, and every minibatch is one batched call,
``loss_step.mean_and_grad(X_batch, Y_batch, params=params)``, followed by a
:mod:`graphc.optim` update of the array (``Optimizer.apply``); ``model_`` gets the params
when the fit ends.  ``backend`` (an extra parameter): ``"auto"``, the default, runs the
generated C when a C compiler is found and NumPy otherwise.  The objective is
scikit-learn's: the mean loss over the batch plus ``alpha / (2 * batch_rows) * ||W||^2``
over the weights, not the biases.

Given the same ``random_state``, a fit retraces scikit-learn's own run: the same
initial weights (:func:`graphc.nn.glorot_uniform`), the same shuffles and the same
updates (Adam in scikit-learn's form, ``eps_hat=True``), so ``loss_curve_`` agrees to
rounding (tested).  Requires scikit-learn >= 1.6.
"""
from __future__ import annotations

import numbers
import threading
import time
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d, gen_batches, shuffle
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from . import losses, optim
from .codegen.c import find_compiler
from .compile import BACKENDS, compile as graphc_compile
from .nn import MLP, Module, glorot_uniform

#: scikit-learn's activation names -> graphc.nn's ("sigmoid" is accepted as a synonym).
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu"}
#: out_activation_ -> the per-sample loss it is trained with.
_LOSSES = {"logistic": losses.logistic_loss, "softmax": losses.softmax_cross_entropy,
           "identity": losses.half_squared_error}


def _real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _bool(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_))


#: parameter -> (type test, value test, what is expected); checked by fit, never by __init__.
_RULES = {
    "activation": (lambda v: isinstance(v, str), lambda v: v in _ACTIVATIONS, f"one of {sorted(_ACTIVATIONS)}"),
    "solver": (lambda v: isinstance(v, str), lambda v: v in ("sgd", "adam"), "'sgd' or 'adam'"),
    "alpha": (_real, lambda v: v >= 0, "a real number >= 0"),
    "batch_size": (lambda v: isinstance(v, str) or _int(v), lambda v: v == "auto" or (_int(v) and v >= 1),
                   "'auto' or an int >= 1"),
    "learning_rate": (lambda v: isinstance(v, str), lambda v: v in ("constant", "invscaling", "adaptive"),
                      "'constant', 'invscaling' or 'adaptive'"),
    "learning_rate_init": (_real, lambda v: v > 0, "a real number > 0"),
    "power_t": (_real, lambda v: v >= 0, "a real number >= 0"),
    "max_iter": (_int, lambda v: v >= 1, "an int >= 1"),
    "shuffle": (_bool, lambda v: True, "a bool"),
    "tol": (_real, lambda v: v >= 0, "a real number >= 0"),
    "verbose": (lambda v: _bool(v) or _int(v), lambda v: True, "a bool or an int"),
    "warm_start": (_bool, lambda v: True, "a bool"),
    "momentum": (_real, lambda v: 0 <= v <= 1, "a real number in [0, 1]"),
    "nesterovs_momentum": (_bool, lambda v: True, "a bool"),
    "early_stopping": (_bool, lambda v: True, "a bool"),
    "validation_fraction": (_real, lambda v: 0 < v < 1, "a real number in (0, 1)"),
    "beta_1": (_real, lambda v: 0 <= v < 1, "a real number in [0, 1)"),
    "beta_2": (_real, lambda v: 0 <= v < 1, "a real number in [0, 1)"),
    "epsilon": (_real, lambda v: v > 0, "a real number > 0"),
    "n_iter_no_change": (lambda v: _int(v) or v == np.inf, lambda v: v >= 1, "an int >= 1 or np.inf"),
    "backend": (lambda v: isinstance(v, str), lambda v: v in ("auto", *BACKENDS),
                f"'auto' (C if a C compiler is found, else NumPy) or one of {BACKENDS}"),
}


class _BaseMLP(BaseEstimator):
    """What both estimators share: parameters, the network, the training loop, pickling."""

    #: Whether loss_ and loss_curve_ average the loss over the outputs, as scikit-learn
    #: reports the regression loss (while its gradient is that of the sum).
    _loss_averages_outputs = False

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, backend="auto"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend

    # -- fitted views -------------------------------------------------------------------

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices of shape (fan_in, fan_out), scikit-learn's layout: copies of ``model_``'s."""
        check_is_fitted(self)
        return [np.array([[w.data for w in n.w] for n in layer.neurons]).T for layer in self.model_.layers]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, one per layer: copies of ``model_``'s."""
        check_is_fitted(self)
        return [np.array([n.b.data for n in layer.neurons]) for layer in self.model_.layers]

    # -- fitting ------------------------------------------------------------------------

    def _fit(self, X, y, incremental: bool):
        hidden = self._check_params()
        first = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first)
        if not first and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} output(s), but {type(self).__name__} was fitted with "
                             f"{self.n_outputs_}")
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True: fit sets the validation data aside")
        rng = check_random_state(self.random_state)
        if first:
            self._initialize(X.shape[1], hidden, Y.shape[1], rng)
        self._fit_stochastic(X, Y, rng, incremental)
        if not np.all(np.isfinite([p.data for p in self.model_.parameters()])):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                             "values and need to be preprocessed.")
        return self

    def _check_params(self) -> list[int]:
        """Every parameter checked (TypeError / ValueError saying what was expected); the hidden sizes."""
        name = type(self).__name__
        for param, (type_ok, value_ok, expected) in _RULES.items():
            value = getattr(self, param)
            if not type_ok(value):
                raise TypeError(f"{name}: {param} must be {expected}; got {type(value).__name__} {value!r}")
            if not value_ok(value):
                raise ValueError(f"{name}: {param} must be {expected}; got {value!r}")
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if _int(sizes) else list(sizes) if hasattr(sizes, "__iter__") else None
        if sizes is None or not all(_int(s) and s >= 1 for s in sizes):
            raise ValueError(f"{name}: hidden_layer_sizes must be an int >= 1 or a sequence of them; "
                             f"got {self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _initialize(self, n_features: int, hidden: list[int], n_outputs: int, rng) -> None:
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(hidden) + 2
        self.out_activation_ = self._out_activation()
        factor = 2.0 if _ACTIVATIONS[self.activation] == "sigmoid" else 6.0
        self.model_ = MLP(n_features, hidden + [n_outputs], activation=_ACTIVATIONS[self.activation],
                          init=glorot_uniform(rng, factor))
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._best_params = self._params()
        self._optimizer = None
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
        else:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf
        self._compile()

    def _compile(self) -> None:
        """The compiled per-sample loss and forward pass for this architecture (shared, see
        :func:`_programs`), and which params are weights (the L2 penalty's)."""
        self._loss_step, self._forward = _programs(self.model_, self.out_activation_, self.backend)
        self._is_weight = np.array([k < len(n.w) for layer in self.model_.layers for n in layer.neurons
                                    for k in range(len(n.w) + 1)])

    def _params(self) -> np.ndarray:
        """``model_``'s params as one array, in ``model_.parameters()`` order."""
        params = self.model_.parameters()
        return np.fromiter((p.data for p in params), np.float64, len(params))

    def _set_params(self, values: np.ndarray) -> None:
        for p, v in zip(self.model_.parameters(), values.tolist()):
            p.data = v

    def _make_optimizer(self) -> optim.Optimizer:
        params = self.model_.parameters()
        if self.solver == "sgd":
            return optim.SGD(params, lr=self.learning_rate_init, momentum=self.momentum,
                             nesterov=self.nesterovs_momentum and self.momentum > 0)
        return optim.Adam(params, lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                          eps_hat=True)

    def _fit_stochastic(self, X: np.ndarray, Y: np.ndarray, rng, incremental: bool) -> None:
        if not incremental or self._optimizer is None:
            self._optimizer = self._make_optimizer()
        X_val = y_val = None
        if self.early_stopping:
            stratify = Y if isinstance(self, ClassifierMixin) and self.n_outputs_ == 1 else None
            X, X_val, Y, Y_val = train_test_split(X, Y, random_state=rng, test_size=self.validation_fraction,
                                                  stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                                 "your dataset.")
            y_val = self._decode(Y_val)
        n = X.shape[0]
        batch_size = self._batch_size(n)
        order = np.arange(n)
        params = self._params()
        self.n_iter_ = 0  # epochs of this call, as scikit-learn counts them (t_ counts all samples seen)
        for _ in range(self.max_iter):
            start = time.perf_counter()
            if self.shuffle:
                order = shuffle(order, random_state=rng)
            total = 0.0
            for rows in gen_batches(n, batch_size):
                batch = order[rows]
                params, loss = self._train_batch(params, X[batch], Y[batch])
                total += loss * len(batch)
            self.n_iter_ += 1
            self.t_ += n
            self.loss_ = total / n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f} ({time.perf_counter() - start:.2f} s)")
            if self.early_stopping:
                self._set_params(params)  # scored on the validation rows, and kept if the best
            self._update_no_improvement_count(X_val, y_val)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._optimizer.lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                if self._stop():
                    break
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                              "optimization hasn't converged yet.", ConvergenceWarning)
        self._set_params(self._best_params if self.early_stopping else params)

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(f"Got batch_size={self.batch_size} larger than the number of samples ({n}): using {n}")
        return min(self.batch_size, n)

    def _train_batch(self, params: np.ndarray, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, float]:
        """One optimizer step on a minibatch, on the params as an array: the new params, and
        the batch's loss as scikit-learn reports it, L2 penalty included."""
        loss, grad = self._loss_step.mean_and_grad(X, Y, params=params)
        penalty = _add_l2(params, self._is_weight, self.alpha / (2 * X.shape[0]), grad) if self.alpha else 0.0
        params = self._optimizer.apply(params, grad)
        return params, (loss / self.n_outputs_ if self._loss_averages_outputs else loss) + penalty

    def _update_no_improvement_count(self, X_val, y_val) -> None:
        if self.early_stopping:
            score = self._score_arrays(X_val, y_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            self._no_improvement_count = self._no_improvement_count + 1 \
                if score < self.best_validation_score_ + self.tol else 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self._params()
        else:
            self._no_improvement_count = self._no_improvement_count + 1 \
                if self.loss_curve_[-1] > self.best_loss_ - self.tol else 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])

    def _stop(self) -> bool:
        """No improvement for n_iter_no_change epochs: stop, or divide an adaptive rate by 5."""
        what = "Validation score" if self.early_stopping else "Training loss"
        message = (f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} "
                   "consecutive epochs.")
        if self.learning_rate != "adaptive" or self.solver != "sgd":
            if self.verbose:
                print(message + " Stopping.")
            return True
        if self._optimizer.lr <= 1e-6:
            if self.verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        self._optimizer.lr /= 5.0
        if self.verbose:
            print(message + f" Setting learning rate to {self._optimizer.lr:f}")
        return False

    # -- predicting ---------------------------------------------------------------------

    def _outputs(self, X) -> np.ndarray:
        """The network's outputs for validated rows, shape (N, n_outputs_): one batched call."""
        out = self._forward.map(X, params=self._params())
        return out.reshape(X.shape[0], 1) if isinstance(out, np.ndarray) else np.stack(out, axis=1)

    def _validated(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype=np.float64, reset=False)

    # -- pickling: compiled code is rebuilt, not stored ----------------------------------

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # a copy: BaseEstimator's may be the live __dict__
        for key in ("_loss_step", "_forward", "_is_weight"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "model_" in state:
            self._compile()


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` (sgd and adam), trained by graphc.

    Binary targets get one logistic output, multiclass a softmax over one output per
    class, multi-label indicator targets one logistic output per label; labels may be any
    type scikit-learn accepts (strings too).  Fitted attributes as scikit-learn's --
    ``classes_``, ``loss_``, ``loss_curve_``, ``best_loss_``, ``n_iter_``, ``t_``,
    ``coefs_``, ``intercepts_``, ``n_features_in_``, ``n_outputs_``, ``n_layers_``,
    ``out_activation_`` -- plus ``model_``, the trained :class:`graphc.nn.MLP`.
    """

    def fit(self, X, y) -> "MLPClassifier":
        """Train on (X, y) from a fresh network (or, with ``warm_start``, the current one)."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y, classes=None) -> "MLPClassifier":
        """One epoch over (X, y); ``classes`` (every label) is required on the first call."""
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit (every label, e.g. "
                                 "np.unique(y_all))")
            self.classes_ = unique_labels(classes)
            multilabel = type_of_target(y).startswith("multilabel")
            self._label_binarizer = LabelBinarizer().fit(y if multilabel else self.classes_)
        elif classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(f"classes={classes!r} is not the same as on the first call to partial_fit: "
                             f"{self.classes_!r}")
        return self._fit(X, y, incremental=True)

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        X, y = validate_data(self, X, y, multi_output=True, dtype=np.float64, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental and set(classes) != set(self.classes_):
                raise ValueError(f"warm_start needs y with the classes of the previous fit, {self.classes_}; "
                                 f"y has {classes}")
            if len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"y has classes not in classes_ {self.classes_}: {classes}")
        return X, self._label_binarizer.transform(y).astype(np.float64)

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _decode(self, Y: np.ndarray) -> np.ndarray:
        return self._label_binarizer.inverse_transform(Y[:, 0] if self.n_outputs_ == 1 else Y)

    def _probabilities(self, X: np.ndarray) -> np.ndarray:
        Z = self._outputs(X)
        return softmax(Z, axis=1) if self.out_activation_ == "softmax" else expit(Z)

    def _score_arrays(self, X: np.ndarray, y: np.ndarray) -> float:
        return accuracy_score(y, self._decode(self._probabilities(X)))

    def predict(self, X) -> np.ndarray:
        """The predicted labels (rows of label indicators for multi-label targets)."""
        return self._decode(self._probabilities(self._validated(X)))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order (each label's for multi-label targets)."""
        P = self._probabilities(self._validated(X))
        return np.column_stack([1.0 - P[:, 0], P[:, 0]]) if self.n_outputs_ == 1 else P

    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))``, computed from the outputs without underflowing to -inf."""
        Z = self._outputs(self._validated(X))
        if self.out_activation_ == "softmax":
            return log_softmax(Z, axis=1)
        return np.column_stack([log_expit(-Z[:, 0]), log_expit(Z[:, 0])]) if self.n_outputs_ == 1 else log_expit(Z)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` (sgd and adam), trained by graphc.

    Minimises half the squared error summed over the outputs, averaged over the rows (its
    gradient is ``prediction - target``); like scikit-learn, ``loss_`` and ``loss_curve_``
    report it averaged over the outputs too.  Fitted attributes as
    :class:`MLPClassifier`'s, without ``classes_``.
    """

    _loss_averages_outputs = True

    def fit(self, X, y) -> "MLPRegressor":
        """Train on (X, y) from a fresh network (or, with ``warm_start``, the current one)."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y) -> "MLPRegressor":
        """One epoch over (X, y), continuing from the current network."""
        return self._fit(X, y, incremental=True)

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y.reshape(len(y), -1).astype(np.float64)

    def _out_activation(self) -> str:
        return "identity"

    def _decode(self, Y: np.ndarray) -> np.ndarray:
        return Y[:, 0] if self.n_outputs_ == 1 else Y

    def _score_arrays(self, X: np.ndarray, y: np.ndarray) -> float:
        return r2_score(y, self._decode(self._outputs(X)))

    def predict(self, X) -> np.ndarray:
        """The predicted values: shape (N,) for one output, else (N, n_outputs_)."""
        return self._decode(self._outputs(self._validated(X)))


def _add_l2(params: np.ndarray, is_weight: np.ndarray, scale: float, grad: np.ndarray) -> float:
    """``scale * sum(w * w)`` over the weights, whose gradient ``2 * scale * w`` is added into ``grad``.

    The same numbers as adding the eager Value expression to the loss before
    ``backward()`` (tested), without building and walking two nodes per weight, which
    would cost more than the batched loss itself.
    """
    w = params[is_weight]
    grad[is_weight] += 2.0 * scale * w
    return scale * float(w @ w)


#: (input width, layer widths, activation, output activation, backend) -> the compiled
#: per-sample loss and forward pass of such a network, least recently used first.
#: Compiled code takes the params as an array, so estimators of one architecture share
#: it: a grid search or a cross-validation traces and generates code once per
#: architecture, not once per fit.  Four are kept: one holds ~150 MB for a 784-100-10
#: network (its graphs), a few MB for the examples' networks.
_PROGRAMS: OrderedDict = OrderedDict()
_PROGRAMS_KEPT = 4
_PROGRAMS_LOCK = threading.Lock()


class _Objective(Module):
    """The per-sample training loss of a network, as a Module so that its compiled params
    are the network's ``parameters()`` in order."""

    def __init__(self, model: MLP, loss) -> None:
        self.model, self.loss = model, loss

    def __call__(self, x, target):
        return self.loss(self.model(x), target)

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
                backend = "c" if find_compiler() is not None else "numpy"
            programs = (graphc_compile(_Objective(model, _LOSSES[out_activation]), backend=backend),
                        graphc_compile(model, backend=backend))
            _PROGRAMS[key] = programs
            while len(_PROGRAMS) > _PROGRAMS_KEPT:
                _PROGRAMS.popitem(last=False)
        _PROGRAMS.move_to_end(key)
    return programs
