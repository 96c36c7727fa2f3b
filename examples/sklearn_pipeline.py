"""graphc's MLPClassifier inside scikit-learn's machinery: a Pipeline in GridSearchCV on digits.

Run with ``python examples/sklearn_pipeline.py``.  ``graphc.sklearn.MLPClassifier`` is a
scikit-learn estimator, so it composes with everything that takes one: here a
``StandardScaler`` in front of it, and a 3-fold grid search over the network's width and
L2 strength.  Estimators of one architecture share its compiled per-sample loss, so the
13 fits compile twice (once per width) and train with batched calls: about 1 s with a
C compiler (the generated C), about 2 s without (NumPy).
"""
from __future__ import annotations

import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from graphc.sklearn import MLPClassifier

GRID = {"mlp__hidden_layer_sizes": [(16,), (32,)], "mlp__alpha": [1e-4, 1.0]}


def search(grid: dict = GRID, seed: int = 0):
    """Fit the grid search on 75% of digits; return it and its accuracy on the other 25%."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    pipeline = Pipeline([("scale", StandardScaler()),
                         ("mlp", MLPClassifier(batch_size=200, max_iter=15, learning_rate_init=0.01,
                                               random_state=seed))])
    searched = GridSearchCV(pipeline, grid, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 15 epochs: short on purpose
        searched.fit(X_train, y_train)
    return searched, searched.score(X_test, y_test)


def main() -> None:
    start = time.perf_counter()
    grid, accuracy = search()
    for params, score in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"]):
        print(f"{params}  cross-validated accuracy {score * 100:.1f}%")
    print(f"best params {grid.best_params_}")
    print(f"test accuracy {accuracy * 100:.1f}% ({time.perf_counter() - start:.0f} s for "
          f"{len(grid.cv_results_['params']) * grid.n_splits_ + 1} fits)")


if __name__ == "__main__":
    main()
