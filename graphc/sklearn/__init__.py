"""scikit-learn estimators trained by graphc: ``MLPClassifier`` and ``MLPRegressor``.

Drop-ins for ``sklearn.neural_network``'s classes: the same parameters, defaults, fitted
attributes, initialisation and random number sequence, for the three solvers ("adam",
"sgd", "lbfgs"), ``sample_weight`` in ``fit`` and ``partial_fit``, dense or sparse X,
and ``MLPRegressor(loss="poisson")``; ``activation`` also accepts "sigmoid", a synonym of
"logistic".  The network is a :class:`graphc.nn.MLP`.  Its per-sample loss
(:mod:`graphc.losses`) times the sample's weight is compiled once per architecture and
shared by every estimator of that architecture (a grid search compiles each shape once);
a fit keeps the params in one array, and every minibatch is one batched call,
``loss_step.mean_and_grad(X_batch, Y_batch, weights, params=params)``, followed by a
:mod:`graphc.optim` update of the array (``Optimizer.apply``); "lbfgs" hands the same
call over all rows to ``scipy.optimize.minimize(method="L-BFGS-B")``.  ``model_`` gets the
params when the fit ends.  ``backend`` (an extra parameter): ``"auto"``, the default, runs
the generated C when a C compiler is found and NumPy otherwise; ``backend_`` says which
ran.  The objective is scikit-learn's: the loss averaged over the batch (weighted: divided
by the batch's total weight) plus ``alpha / (2 * total weight) * ||W||^2`` over the
weights, not the biases; a classifier's log loss is clipped in value as scikit-learn's
(each probability to [eps, 1 - eps]), not in its gradient.  Sparse X is densified one minibatch at a time (all at once for
"lbfgs", which reads every row at every step; 1,000 rows at a time to predict).

Given the same ``random_state``, a fit retraces scikit-learn's own run: the same
initial weights (:func:`graphc.nn.glorot_uniform`), the same shuffles and the same
updates (Adam in scikit-learn's form, ``eps_hat=True``), so ``loss_curve_`` agrees to
rounding (tested).  A KeyboardInterrupt during a stochastic fit stops it as scikit-learn's
does: a warning, and the weights of the last completed step.  Requires scikit-learn >= 1.6
and scipy (``pip install 'graphc[sklearn]'``).
"""
from __future__ import annotations

try:
    import scipy.optimize  # noqa: F401
    import sklearn  # noqa: F401
except ImportError as error:
    raise ImportError(f"graphc.sklearn needs scikit-learn and scipy ({error}): "
                      "pip install 'graphc[sklearn]'") from error

from ._estimators import MLPClassifier, MLPRegressor
from ._programs import _PROGRAMS, _PROGRAMS_KEPT  # noqa: F401  (the cache, for benchmarks and tests)

__all__ = ["MLPClassifier", "MLPRegressor"]
