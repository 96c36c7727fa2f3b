"""The stochastic solvers ("sgd", "adam"): epochs of minibatch steps, scikit-learn's schedule and stopping."""
from __future__ import annotations

import time
import warnings

import numpy as np
from scipy import sparse
from sklearn.base import ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import gen_batches, shuffle

from .. import optim


def dense_rows(X, rows) -> np.ndarray:
    """Rows of X as a dense float array: sparse input is densified one minibatch at a time."""
    return X[rows].toarray() if sparse.issparse(X) else X[rows]


class _StochasticSolver:
    """Minibatch training of a :class:`_BaseMLP`, step for step as scikit-learn's."""

    def _make_optimizer(self) -> optim.Optimizer:
        params = self.model_.parameters()
        if self.solver == "sgd":
            return optim.SGD(params, lr=self.learning_rate_init, momentum=self.momentum,
                             nesterov=self.nesterovs_momentum and self.momentum > 0)
        return optim.Adam(params, lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                          eps_hat=True)

    def _split_validation(self, X, Y, weights, rng) -> tuple:
        """``X, Y, weights`` to train on and ``(X, y, weights)`` to score, split as
        scikit-learn splits them for early stopping (no validation part without)."""
        if not self.early_stopping:
            return X, Y, weights, None
        stratify = Y if isinstance(self, ClassifierMixin) and self.n_outputs_ == 1 else None
        parts = train_test_split(X, Y, *([] if weights is None else [weights]), random_state=rng,
                                 test_size=self.validation_fraction, stratify=stratify)
        if parts[1].shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                             "your dataset.")
        train, held_out = [*parts[0::2], None][:3], [*parts[1::2], None][:3]
        held_out[1] = self._decode(held_out[1])
        return (*train, tuple(held_out))

    def _fit_stochastic(self, X, Y, weights, rng, incremental: bool) -> None:
        """Epochs until stopped; a KeyboardInterrupt ends training as scikit-learn's does: with
        a warning, keeping the weights of the last completed step (of the last completed
        epoch where epochs run natively, all or nothing) and the counts of the completed
        epochs."""
        if not incremental or self._optimizer is None:
            self._optimizer = self._make_optimizer()
        X, Y, weights, validation = self._split_validation(X, Y, weights, rng)
        batch_size = self._batch_size(X.shape[0])
        order = np.arange(X.shape[0])
        params = self._params()  # updated in place by each step: what an interrupt keeps
        native = self._native_run(X, Y, weights)
        self.n_iter_ = 0  # epochs of this call, as scikit-learn counts them (t_ counts all samples seen)
        try:
            for _ in range(self.max_iter):
                if self.shuffle:
                    order = shuffle(order, random_state=rng)
                if self._epoch(params, X, Y, weights, order, batch_size, validation, native) or incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                                  "optimization hasn't converged yet.", ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        self._set_params(self._best_params if self.early_stopping else params)

    def _native_run(self, X, Y, weights):
        """The native training session of the compiled loss over these rows, where one runs
        the same steps: dense unweighted rows, an optimizer of :mod:`graphc.optim` itself."""
        if weights is not None or sparse.issparse(X) or self._optimizer.native() is None:
            return None
        return self._loss_step._native_run(X, Y, np.ones(X.shape[0]))

    def _epoch(self, params: np.ndarray, X, Y, weights, order, batch_size: int, validation, native=None) -> bool:
        """One pass over the rows in ``order`` (in one native call with ``native``, a
        :meth:`_native_run` session), then the epoch's bookkeeping; True to stop."""
        start = time.perf_counter()
        total = 0.0
        if native is not None:  # all the epoch's steps in one native call
            decay = (self._is_weight, self.alpha) if self.alpha else None
            means, penalties = native.epoch(params, self._optimizer, order, batch_size, decay)
            sizes = np.diff([*range(0, len(order), batch_size), len(order)])
            for mean, penalty, size in zip(means.tolist(), penalties.tolist(), sizes.tolist()):
                total += ((mean / self.n_outputs_ if self._reports_mean_over_outputs() else mean) + penalty) * size
        for rows in gen_batches(len(order), batch_size) if native is None else ():
            batch = order[rows]
            total += self._step(params, dense_rows(X, batch), Y[batch], None if weights is None else weights[batch]) \
                * len(batch)
        self.n_iter_ += 1
        self.t_ += len(order)
        self.loss_ = total / len(order)
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f} ({time.perf_counter() - start:.2f} s)")
        if self.early_stopping:
            self._set_params(params)  # scored on the validation rows, and kept if the best
        self._update_no_improvement_count(validation)
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            self._optimizer.lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
        if self._no_improvement_count > self.n_iter_no_change:
            if self._stop():
                return True
            self._no_improvement_count = 0
        return False

    def _step(self, params: np.ndarray, X: np.ndarray, Y: np.ndarray, weights) -> float:
        """One optimizer step on a minibatch, params updated in place; the batch's loss as
        scikit-learn reports it.  A batch whose weights sum to zero carries no information:
        it moves nothing and reports 0 (scikit-learn's step would be 0 / 0)."""
        if weights is not None and not weights.sum():
            return 0.0
        loss, grad = self._objective(params, X, Y, weights)
        np.copyto(params, self._optimizer.apply(params, grad))
        return loss

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(f"Got batch_size={self.batch_size} larger than the number of samples ({n}): using {n}")
        return min(self.batch_size, n)

    def _update_no_improvement_count(self, validation) -> None:
        if self.early_stopping:
            score = self._score_arrays(*validation)
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
