"""``MLPClassifier`` and ``MLPRegressor``: what differs between the two estimators."""
from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import validate_data

from ._base import _BaseMLP, has_stochastic_solver
from ._params import LOSS_RULE, RULES

#: What validate_data accepts for X in fit, as scikit-learn's MLPs do.
_SPARSE_FORMATS = ("csr", "csc")


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by graphc.

    Binary targets get one logistic output, multiclass a softmax over one output per
    class, multi-label indicator targets one logistic output per label; labels may be any
    type scikit-learn accepts (strings too).  Fitted attributes as scikit-learn's --
    ``classes_``, ``loss_``, ``loss_curve_``, ``best_loss_``, ``n_iter_``, ``t_``,
    ``coefs_``, ``intercepts_``, ``n_features_in_``, ``n_outputs_``, ``n_layers_``,
    ``out_activation_`` (the stochastic solvers' ``loss_curve_`` and ``best_loss_`` are
    absent after lbfgs, as in scikit-learn) -- plus ``model_``, the trained
    :class:`graphc.nn.MLP`, and ``backend_``, the backend that ran: "c", "numpy" or "python".
    """

    def fit(self, X, y, sample_weight=None) -> "MLPClassifier":
        """Train on (X, y), rows weighted by ``sample_weight`` (default: all 1), from a fresh
        network (or, with ``warm_start``, the current one).  X may be a sparse matrix."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(has_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None) -> "MLPClassifier":
        """One epoch over (X, y), rows weighted by ``sample_weight``; ``classes`` (every label)
        is required on the first call.  Only for the stochastic solvers, as in scikit-learn."""
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
        return self._fit(X, y, sample_weight, incremental=True)

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        X, y = validate_data(self, X, y, accept_sparse=_SPARSE_FORMATS, multi_output=True, dtype=np.float64,
                             reset=reset)
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

    def _probabilities(self, X) -> np.ndarray:
        return self._activated(self._outputs(X))

    def _activated(self, Z: np.ndarray) -> np.ndarray:
        """The output activation of the network's outputs ``Z``: one column per output."""
        return softmax(Z, axis=1) if self.out_activation_ == "softmax" else expit(Z)

    def _score_arrays(self, X, y: np.ndarray, weights=None) -> float:
        return accuracy_score(y, self._decode(self._probabilities(X)), sample_weight=weights)

    def predict(self, X) -> np.ndarray:
        """The predicted labels (rows of label indicators for multi-label targets)."""
        return self._decode(self._probabilities(self._validated(X)))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order (each label's for multi-label
        targets).  Two classes: ``expit(-z)`` and ``expit(z)`` of the output ``z``, where
        scikit-learn's ``1 - expit(z)`` is 0 from z = 37 on."""
        return self._columns(self._outputs(self._validated(X)))

    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))``, which scikit-learn's checks hold it to: computed from the
        outputs (``log_softmax``, ``log_expit``), not from a probability that has lost digits,
        wherever that probability is a normal float; -inf where it underflows to 0."""
        Z = self._outputs(self._validated(X))
        P = self._columns(Z)
        if self.out_activation_ == "softmax":
            logs = log_softmax(Z, axis=1)
        else:
            logs = np.column_stack([log_expit(-Z[:, 0]), log_expit(Z[:, 0])]) if self.n_outputs_ == 1 else log_expit(Z)
        with np.errstate(divide="ignore"):
            return np.where(P < np.finfo(np.float64).tiny, np.log(P), logs)

    def _columns(self, Z: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba`'s columns of the outputs ``Z``: one per class, or per label."""
        if self.n_outputs_ == 1 and self.out_activation_ == "logistic":
            return np.column_stack([expit(-Z[:, 0]), expit(Z[:, 0])])
        return self._activated(Z)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, trained by graphc.

    ``loss="squared_error"`` (the default) minimises half the squared error summed over the
    outputs, averaged over the rows (its gradient is ``prediction - target``); like
    scikit-learn, ``loss_`` and ``loss_curve_`` report it averaged over the outputs too.
    ``loss="poisson"`` minimises half the Poisson deviance of ``exp(z)`` (the network's
    linear output ``z``) against targets >= 0, and predicts ``exp(z)``.  Fitted attributes
    as :class:`MLPClassifier`'s, without ``classes_``.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="squared_error", solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, backend="auto"):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start,
            momentum=momentum, nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, backend=backend)
        self.loss = loss

    def fit(self, X, y, sample_weight=None) -> "MLPRegressor":
        """Train on (X, y), rows weighted by ``sample_weight`` (default: all 1), from a fresh
        network (or, with ``warm_start``, the current one).  X may be a sparse matrix."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(has_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None) -> "MLPRegressor":
        """One epoch over (X, y), rows weighted by ``sample_weight``, continuing from the current
        network.  Only for the stochastic solvers, as in scikit-learn."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _rules(self) -> dict:
        return {**RULES, **LOSS_RULE}

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        X, y = validate_data(self, X, y, accept_sparse=_SPARSE_FORMATS, multi_output=True, y_numeric=True,
                             dtype=np.float64, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(f"MLPRegressor(loss='poisson') needs targets >= 0; y has {float(np.min(y))!r}")
        return X, y.reshape(len(y), -1).astype(np.float64)

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _reports_mean_over_outputs(self) -> bool:
        return self.loss == "squared_error"

    def _decode(self, Y: np.ndarray) -> np.ndarray:
        return Y[:, 0] if self.n_outputs_ == 1 else Y

    def _predictions(self, X) -> np.ndarray:
        Z = self._outputs(X)
        return self._decode(np.exp(Z) if self.out_activation_ == "exp" else Z)

    def _score_arrays(self, X, y: np.ndarray, weights=None) -> float:
        return r2_score(y, self._predictions(X), sample_weight=weights)

    def predict(self, X) -> np.ndarray:
        """The predicted values: shape (N,) for one output, else (N, n_outputs_)."""
        return self._predictions(self._validated(X))
