"""What both estimators share: parameters, the network, the objective, predicting, pickling."""
from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ..nn import MLP, glorot_uniform
from ._lbfgs import _LbfgsSolver
from ._params import ACTIVATIONS, RULES, STOCHASTIC_SOLVERS, check_params
from ._programs import _add_l2, _programs
from ._stochastic import _StochasticSolver

#: Rows of sparse X densified at a time for a prediction.
_SPARSE_CHUNK = 1000
#: The attributes only the stochastic solvers fit (scikit-learn's lbfgs leaves them out).
_STOCHASTIC_ATTRIBUTES = ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_")


def has_stochastic_solver(estimator: "_BaseMLP") -> bool:
    """For ``available_if``: partial_fit exists for the stochastic solvers only, as in scikit-learn."""
    if estimator.solver not in STOCHASTIC_SOLVERS:
        raise AttributeError(f"partial_fit is only available for the stochastic solvers {STOCHASTIC_SOLVERS}; "
                             f"solver is {estimator.solver!r}")
    return True


class _BaseMLP(_StochasticSolver, _LbfgsSolver, BaseEstimator):
    """The estimators' common part; the solvers are in :mod:`._stochastic` and :mod:`._lbfgs`."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, backend="auto"):
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
        self.max_fun = max_fun
        self.backend = backend

    # -- fitted views -------------------------------------------------------------------

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices of shape (fan_in, fan_out), scikit-learn's layout: copies of
        ``model_``'s (an edit in place changes nothing; assigning a list of them sets them)."""
        check_is_fitted(self)
        return [np.array([[w.data for w in n.w] for n in layer.neurons]).T for layer in self.model_.layers]

    @coefs_.setter
    def coefs_(self, matrices) -> None:
        arrays = self._fitted_shapes(matrices, "coefs_", lambda layer: (len(layer.neurons[0].w), len(layer.neurons)))
        for layer, matrix in zip(self.model_.layers, arrays):
            for j, n in enumerate(layer.neurons):
                for w, value in zip(n.w, matrix[:, j].tolist()):
                    w.data = value

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, one per layer: copies of ``model_``'s (assigning a list of them sets them)."""
        check_is_fitted(self)
        return [np.array([n.b.data for n in layer.neurons]) for layer in self.model_.layers]

    @intercepts_.setter
    def intercepts_(self, vectors) -> None:
        arrays = self._fitted_shapes(vectors, "intercepts_", lambda layer: (len(layer.neurons),))
        for layer, vector in zip(self.model_.layers, arrays):
            for n, value in zip(layer.neurons, vector.tolist()):
                n.b.data = value

    def _fitted_shapes(self, values, name: str, shape_of) -> list[np.ndarray]:
        """``values`` as float64 arrays of the fitted layers' shapes (checked, all of them
        before any is written), as scikit-learn lets one assign ``coefs_`` and ``intercepts_``."""
        check_is_fitted(self)
        want = [shape_of(layer) for layer in self.model_.layers]
        if not isinstance(values, (list, tuple)) or len(values) != len(want):
            got = f"{len(values)} of them" if isinstance(values, (list, tuple)) else type(values).__name__
            raise ValueError(f"{name} is a list of {len(want)} arrays, one per layer; got {got}")
        arrays = [np.asarray(v, dtype=np.float64) for v in values]
        for k, (array, shape) in enumerate(zip(arrays, want)):
            if array.shape != shape:
                raise ValueError(f"{name}[{k}] must have shape {shape}; got {array.shape}")
        return arrays

    # -- fitting ------------------------------------------------------------------------

    def _fit(self, X, y, sample_weight, incremental: bool):
        hidden = check_params(self, self._rules())
        first = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first)
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, X, dtype=np.float64)
        with np.errstate(over="ignore"):
            total = None if weights is None else weights.sum()
        if total is not None and not np.isfinite(total):  # an outside hunt: a fit that did nothing
            raise ValueError(f"sample_weight must have a finite total, which a fit divides by; its {len(weights)} "
                             f"weights add up to {total} (largest {weights.max()}): scale them down")
        if not first and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} output(s), but {type(self).__name__} was fitted with "
                             f"{self.n_outputs_}")
        if not first:
            self._require_the_fitted_network(hidden, "partial_fit" if incremental else "a fit with warm_start=True")
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True: fit sets the validation data aside")
        rng = check_random_state(self.random_state)
        if first:
            self._initialize(X.shape[1], hidden, Y.shape[1], rng)
        else:
            self._follow_params()
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, weights)
        else:
            if not hasattr(self, "loss_curve_"):  # a warm start after lbfgs
                self._initialize_stochastic()
            self._fit_stochastic(X.tocsr() if sparse.issparse(X) else X, Y, weights, rng, incremental)
        self.backend_ = self._loss_step.backend
        if not np.all(np.isfinite([p.data for p in self.model_.parameters()])):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                             "values and need to be preprocessed.")
        return self

    def _rules(self) -> dict:
        return RULES

    def _initialize(self, n_features: int, hidden: list[int], n_outputs: int, rng) -> None:
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(hidden) + 2
        self.out_activation_ = self._out_activation()
        factor = 2.0 if ACTIVATIONS[self.activation] == "sigmoid" else 6.0
        self.model_ = MLP(n_features, hidden + [n_outputs], activation=ACTIVATIONS[self.activation],
                          init=glorot_uniform(rng, factor))
        self.n_iter_ = 0
        self.t_ = 0
        self._optimizer = None
        for name in _STOCHASTIC_ATTRIBUTES:
            self.__dict__.pop(name, None)
        if self.solver in STOCHASTIC_SOLVERS:
            self._initialize_stochastic()
        self._compile()

    def _require_the_fitted_network(self, hidden: list[int], what: str) -> None:
        """A ValueError where the parameters now ask for another network than the fitted one
        (an outside hunt: after ``set_params(hidden_layer_sizes=...)`` or ``loss=...``, a
        warm fit went on training the old network, saying nothing)."""
        fitted = [len(layer.neurons) for layer in self.model_.layers[:-1]]
        if fitted != hidden:
            raise ValueError(f"{what} continues the fitted network, of hidden_layer_sizes {tuple(fitted)}; they are "
                             f"{tuple(hidden)} now: fit a new network (warm_start=False, or fit in place of "
                             f"partial_fit)")
        if self._out_activation() != self.out_activation_:
            raise ValueError(f"{what} continues the fitted network, whose output activation is "
                             f"{self.out_activation_!r}; the parameters ask for {self._out_activation()!r} now: fit "
                             f"a new network (warm_start=False, or fit in place of partial_fit)")

    def _follow_params(self) -> None:
        """A warm start after ``set_params``: the network keeps its weights but takes the
        ``activation`` and ``backend`` asked for now, as scikit-learn's reads its activation
        at each pass (a refit kept training the old activation)."""
        activation, layers = ACTIVATIONS[self.activation], self.model_.layers
        if any(n.activation != activation for layer in layers[:-1] for n in layer.neurons):
            coefs, intercepts = iter(self.coefs_), iter(self.intercepts_)
            self.model_ = MLP(len(layers[0].neurons[0].w), [len(layer.neurons) for layer in layers],
                              activation=activation, init=lambda fan_in, fan_out: (next(coefs), next(intercepts)))
            self._compile()
        elif self.backend != self._compiled_for:
            self._compile()

    def _initialize_stochastic(self) -> None:
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._best_params = self._params()
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
        else:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf

    def _compile(self) -> None:
        """The compiled per-sample loss and forward pass for this architecture (shared, see
        :func:`._programs._programs`), and which params are weights (the L2 penalty's)."""
        self._loss_step, self._forward = _programs(self.model_, self.out_activation_, self.backend)
        self._compiled_for = self.backend
        self._is_weight = np.array([k < len(n.w) for layer in self.model_.layers for n in layer.neurons
                                    for k in range(len(n.w) + 1)])

    def _params(self) -> np.ndarray:
        """``model_``'s params as one array, in ``model_.parameters()`` order."""
        params = self.model_.parameters()
        return np.fromiter((p.data for p in params), np.float64, len(params))

    def _set_params(self, values: np.ndarray) -> None:
        for p, v in zip(self.model_.parameters(), values.tolist()):
            p.data = v

    def _objective(self, params: np.ndarray, X: np.ndarray, Y: np.ndarray, weights) -> tuple[float, np.ndarray]:
        """scikit-learn's objective on some rows, as it reports it, and its gradient (one
        batched call): the loss averaged over the rows -- weighted by ``weights`` if given --
        plus ``alpha / (2 * total weight) * ||W||^2`` over the weights, not the biases."""
        n = X.shape[0]
        loss, grad = self._loss_step.mean_and_grad(X, Y, np.ones(n) if weights is None else weights, params=params)
        total_weight = n
        if weights is not None:  # the compiled mean is sum(w * loss) / n
            total_weight = float(weights.sum())
            loss, grad = loss * (n / total_weight), grad * (n / total_weight)
        penalty = _add_l2(params, self._is_weight, self.alpha / (2 * total_weight), grad) if self.alpha else 0.0
        return (loss / self.n_outputs_ if self._reports_mean_over_outputs() else loss) + penalty, grad

    def _reports_mean_over_outputs(self) -> bool:
        """Whether loss_ and loss_curve_ average the loss over the outputs, as scikit-learn
        reports the squared error (while its gradient is that of the sum)."""
        return False

    # -- predicting ---------------------------------------------------------------------

    def _outputs(self, X) -> np.ndarray:
        """The network's linear outputs for validated rows, shape (N, n_outputs_): one
        batched call (for sparse X, one per chunk of rows, densified a chunk at a time)."""
        if sparse.issparse(X):
            X = X.tocsr()
            return np.concatenate([self._outputs(X[rows].toarray()) for rows in gen_batches(X.shape[0], _SPARSE_CHUNK)])
        out = self._forward.map(X, params=self._params())
        return out.reshape(X.shape[0], 1) if isinstance(out, np.ndarray) else np.stack(out, axis=1)

    def _validated(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, accept_sparse=("csr", "csc"), dtype=np.float64, reset=False)

    # -- pickling: compiled code is rebuilt, not stored ----------------------------------

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # a copy: BaseEstimator's may be the live __dict__
        for key in ("_loss_step", "_forward", "_is_weight", "_compiled_for"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "model_" in state:
            self._compile()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
