"""The "lbfgs" solver: scipy's L-BFGS-B on the compiled loss over every row, as scikit-learn runs it."""
from __future__ import annotations

import warnings

import numpy as np
import scipy.optimize
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning

from ._programs import packed_order


class _LbfgsSolver:
    """Full-batch training of a :class:`_BaseMLP` by ``scipy.optimize.minimize(method="L-BFGS-B")``.

    The vector scipy moves is scikit-learn's packing (coefs, then intercepts), and its
    options are scikit-learn's (``maxiter=max_iter``, ``maxfun=max_fun``, ``gtol=tol``), so
    the iterates are scikit-learn's to rounding.  Sparse X is densified once: every
    function evaluation reads every row.
    """

    def _fit_lbfgs(self, X, Y, weights) -> None:
        X = X.toarray() if sparse.issparse(X) else X
        order = packed_order(self.model_)
        params = self._params()

        def loss_and_grad(packed: np.ndarray) -> tuple[float, np.ndarray]:
            params[order] = packed
            loss, grad = self._objective(params, X, Y, weights)
            return loss, grad[order]

        result = scipy.optimize.minimize(loss_and_grad, params[order], method="L-BFGS-B", jac=True,
                                         options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        self.n_iter_ = min(result.nit, self.max_iter)
        if result.status != 0:
            message = f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status={result.status}):\n" \
                      f"{result.message}\n"
            if self.n_iter_ == self.max_iter:
                message += f"\nIncrease the number of iterations to improve the convergence (max_iter={self.max_iter})."
            warnings.warn(message, ConvergenceWarning)
        self.loss_ = float(result.fun)
        params[order] = result.x
        self._set_params(params)
