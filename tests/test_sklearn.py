"""graphc.sklearn: scikit-learn's own estimator checks, and fits that retrace scikit-learn's runs.

scikit-learn's MLPs are the oracle: given the same ``random_state`` a graphc fit draws
the same initial weights, shuffles the same way and takes the same steps, so its loss
curve, weights and predictions must agree to rounding.
"""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk
from sklearn.datasets import load_digits, load_iris, make_moons, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_classifiers_train, estimator_checks_generator, parametrize_with_checks

from conftest import load_example, rel_err
from graphc import Value
from graphc import sklearn as graphc_sklearn
from graphc.codegen.c import find_compiler
from graphc.sklearn import MLPClassifier, MLPRegressor
from graphc.sklearn._programs import _add_l2

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: Small networks keep the ~100 checks fast, and still pass the checks that score a fit
#: (training accuracy > 0.83, R^2 > 0.5).
CHECKED = [MLPClassifier(hidden_layer_sizes=(10,), max_iter=100, learning_rate_init=0.01, random_state=0),
           MLPRegressor(hidden_layer_sizes=(10,), max_iter=100, learning_rate_init=0.01, random_state=0)]


@parametrize_with_checks(CHECKED)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- retracing scikit-learn ---------------------------------------------------------------

def moons(n=200):
    return make_moons(n_samples=n, noise=0.2, random_state=0)


def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def iris_names():
    X, y = iris()
    return X, np.array(["setosa", "versicolor", "virginica"])[y]


def multilabel():
    return make_multilabel_classification(n_samples=120, n_features=6, n_classes=3, random_state=0)


def regression(n_targets=2):
    X, y = make_regression(n_samples=150, n_features=5, n_targets=n_targets, noise=5.0, random_state=0)
    return X, y / y.std()


SAME_RUN = {  # name: (data, estimator parameters); each exercises one feature of the training loop
    "binary sgd nesterov": (moons, dict(solver="sgd", learning_rate_init=0.1)),
    "binary adam tanh": (moons, dict(activation="tanh", learning_rate_init=0.01)),
    "logistic, plain momentum, no shuffle, no L2": (
        moons, dict(solver="sgd", activation="logistic", momentum=0.5, nesterovs_momentum=False, shuffle=False,
                    alpha=0.0, learning_rate_init=0.5)),
    "strong L2": (moons, dict(solver="sgd", alpha=2.0, learning_rate_init=0.1)),
    "invscaling": (moons, dict(solver="sgd", learning_rate="invscaling", power_t=0.25, learning_rate_init=0.5)),
    "adaptive rate": (moons, dict(solver="sgd", learning_rate="adaptive", tol=0.01, n_iter_no_change=2,
                                  learning_rate_init=0.1, max_iter=25)),
    "tol stops early": (moons, dict(solver="adam", tol=0.05, n_iter_no_change=2, learning_rate_init=0.01)),
    "multiclass, identity, early stopping": (
        iris, dict(activation="identity", early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
                   learning_rate_init=0.01)),
    "string labels, batch larger than the data": (iris_names, dict(batch_size=500, learning_rate_init=0.05)),
    "multi-label": (multilabel, dict(learning_rate_init=0.01)),
    "regression, two outputs": (regression, dict(learning_rate_init=0.01)),
    "regression, early stopping": (
        lambda: regression(1), dict(solver="sgd", early_stopping=True, learning_rate_init=0.01)),
}


def pair(data, params):
    X, y = data()
    regression_task = np.asarray(y).dtype.kind == "f"
    ours, theirs = (MLPRegressor, sk.MLPRegressor) if regression_task else (MLPClassifier, sk.MLPClassifier)
    params = dict(dict(hidden_layer_sizes=(8,), batch_size=32, max_iter=15, random_state=0), **params)
    return X, y, ours(**params), theirs(**params)


def assert_same_run(ours, theirs, X):
    assert (ours.n_iter_, ours.t_, ours.n_layers_, ours.n_outputs_, ours.out_activation_) == \
        (theirs.n_iter_, theirs.t_, theirs.n_layers_, theirs.n_outputs_, theirs.out_activation_)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-9) if theirs.best_loss_ is not None \
        else ours.best_loss_ is None
    if theirs.validation_scores_ is not None:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    if hasattr(theirs, "predict_proba"):
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9, atol=1e-12)
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Got .?batch_?size.? ")  # the batch size > rows case: both warn
@pytest.mark.parametrize("name", list(SAME_RUN))
def test_fit_retraces_scikit_learns_own_run(name):
    X, y, ours, theirs = pair(*SAME_RUN[name])
    assert_same_run(ours.fit(X, y), theirs.fit(X, y), X)


def test_the_features_the_runs_exercise_did_kick_in():
    """The runs above would agree vacuously if, say, no rate ever adapted or no run stopped early."""
    X, y, ours, _ = pair(*SAME_RUN["adaptive rate"])
    assert ours.fit(X, y)._optimizer.lr < ours.learning_rate_init
    X, y, ours, _ = pair(*SAME_RUN["tol stops early"])
    assert ours.fit(X, y).n_iter_ < ours.max_iter
    X, y, ours, _ = pair(*SAME_RUN["multiclass, identity, early stopping"])
    assert ours.fit(X, y).n_iter_ < ours.max_iter and ours.best_loss_ is None
    X, y, ours, _ = pair(*SAME_RUN["multi-label"])
    assert ours.fit(X, y).predict(X).shape == y.shape


def test_partial_fit_and_warm_start_retrace_scikit_learn():
    X, y, ours, theirs = pair(iris, dict(learning_rate_init=0.01))
    for begin in range(0, 150, 50):  # iris is sorted by class: the first batch has one class only
        rows = slice(begin, begin + 50)
        ours.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        theirs.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
    assert ours.n_iter_ == 1 and len(ours.loss_curve_) == 3  # n_iter_ counts the latest call's epochs
    assert_same_run(ours, theirs, X)
    X, y, ours, theirs = pair(moons, dict(warm_start=True, max_iter=5))
    for _ in range(2):
        ours.fit(X, y)
        theirs.fit(X, y)
    assert_same_run(ours, theirs, X)


# -- quality on the two datasets ------------------------------------------------------

QUALITY = {  # dataset: (hidden layers, batch size, epochs, accuracy both must reach)
    "moons": ((16, 16), 32, 20, 0.99),
    "digits": ((32,), 200, 25, 0.95),
}


def quality_split(dataset: str):
    if dataset == "moons":
        X, y = make_moons(n_samples=1000, noise=0.1, random_state=0)
    else:
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("dataset", list(QUALITY))
def test_held_out_accuracy_within_one_point_of_scikit_learn(dataset, solver):
    X_train, X_test, y_train, y_test = quality_split(dataset)
    hidden, batch_size, epochs, floor = QUALITY[dataset]
    params = dict(hidden_layer_sizes=hidden, solver=solver, batch_size=batch_size, max_iter=epochs, random_state=0,
                  learning_rate_init=0.1 if solver == "sgd" else 0.01)
    ours = MLPClassifier(**params).fit(X_train, y_train).score(X_test, y_test)
    theirs = sk.MLPClassifier(**params).fit(X_train, y_train).score(X_test, y_test)
    assert abs(ours - theirs) <= 0.01
    assert min(ours, theirs) >= floor


# -- the estimator API ------------------------------------------------------------------------

def test_string_labels_probabilities_and_log_probabilities():
    X, y = iris_names()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, learning_rate_init=0.05, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(clf.predict(X)) <= set(clf.classes_) and clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-9)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


def test_log_probabilities_are_those_of_the_probabilities_kept_where_scikit_learn_loses_them():
    """``predict_log_proba`` is ``log(predict_proba)``, as scikit-learn's checks require: they
    failed for ``solver="lbfgs"``, whose sharp fits give logits where a probability is 0,
    while ``log_expit`` stayed finite (an outside hunt).  Two classes' probabilities are
    ``expit(-z)`` and ``expit(z)``: the small one keeps its digits (and a finite log) up to
    z = 745, where scikit-learn's ``1 - expit(z)`` is 0 from z = 37 on."""
    X, y = moons()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    far = np.geomspace(0.1, 1e4, 40)[:, None] * np.array([[1.0, -1.0]])
    points = np.concatenate([far, -far])  # logits from about 0 to past 745 either way
    proba, log_proba = clf.predict_proba(points), clf.predict_log_proba(points)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-15)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(log_proba, np.log(proba), rtol=1e-12, atol=1e-15)  # log(p) of p near 1 loses digits
    assert np.any(proba == 0.0) and np.array_equal(np.isinf(log_proba), proba == 0.0)
    z = clf._outputs(points)[:, 0]
    middling = (np.abs(z) > 37) & (np.abs(z) < 700)
    assert middling.any() and np.all(proba[middling] > 0) and np.all(np.isfinite(log_proba[middling]))
    check_classifiers_train("MLPClassifier", MLPClassifier(solver="lbfgs", random_state=0))


def test_a_hidden_layer_of_one_unit_retraces_scikit_learn():
    X, y, ours, theirs = pair(moons, dict(hidden_layer_sizes=(1, 4), max_iter=3))
    assert_same_run(ours.fit(X, y), theirs.fit(X, y), X)


def test_regressor_output_shapes():
    X, y = regression(2)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    assert reg.fit(X, y).predict(X).shape == (150, 2)
    assert reg.fit(X, y[:, 0]).predict(X).shape == (150,)


def test_fitted_model_is_a_graphc_mlp_with_scikit_learns_layout():
    X, y = moons()
    clf = MLPClassifier(hidden_layer_sizes=(5, 3), activation="tanh", max_iter=2, random_state=0).fit(X, y)
    assert repr(clf.model_).startswith("MLP of [Layer of [TanhNeuron(2)")
    assert [c.shape for c in clf.coefs_] == [(2, 5), (5, 3), (3, 1)]
    assert [b.shape for b in clf.intercepts_] == [(5,), (3,), (1,)]
    assert clf.coefs_[1][4, 2] == clf.model_.layers[1].neurons[2].w[4].data
    assert clf._loss_step.trace_count == 1  # one compile per fit, whatever the number of batches


def test_estimators_of_one_architecture_share_compiled_code_and_fit_as_if_alone():
    X, y = iris()
    settings = dict(hidden_layer_sizes=(7, 5), max_iter=4, alpha=0.01)
    first = MLPClassifier(random_state=1, **settings).fit(X, y)
    second = MLPClassifier(random_state=2, **settings).fit(X, y)
    assert second._loss_step is first._loss_step and second._loss_step.trace_count == 1
    graphc_sklearn._PROGRAMS.clear()
    alone = MLPClassifier(random_state=2, **settings).fit(X, y)  # compiled afresh, from its own model
    assert alone._loss_step is not first._loss_step
    assert alone.loss_curve_ == second.loss_curve_
    for a, b in zip(alone.coefs_ + alone.intercepts_, second.coefs_ + second.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(alone.predict_proba(X), second.predict_proba(X))
    np.testing.assert_array_equal(first.predict_proba(X), MLPClassifier(random_state=1, **settings)
                                  .fit(X, y).predict_proba(X))


def test_compiled_code_is_kept_for_the_most_recently_used_architectures():
    X, y = iris()
    graphc_sklearn._PROGRAMS.clear()
    fits = {width: MLPClassifier(hidden_layer_sizes=(width,), max_iter=1).fit(X, y) for width in (1, 2, 3, 4)}
    MLPClassifier(hidden_layer_sizes=(1,), max_iter=1).fit(X, y)  # width 1 is now the most recent
    MLPClassifier(hidden_layer_sizes=(5,), max_iter=1).fit(X, y)  # evicts width 2, the least recent
    kept = [key[1] for key in graphc_sklearn._PROGRAMS]
    assert len(kept) == graphc_sklearn._PROGRAMS_KEPT == 4 and kept == [(3, 3), (4, 3), (1, 3), (5, 3)]
    assert MLPClassifier(hidden_layer_sizes=(2,), max_iter=1).fit(X, y)._loss_step is not fits[2]._loss_step


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_c_and_numpy_backends_fit_the_same_model():
    X, y = iris()
    fits = [MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0, backend=backend).fit(X, y)
            for backend in ("c", "numpy")]
    assert [f._loss_step.backend for f in fits] == ["c", "numpy"]
    np.testing.assert_allclose(fits[0].loss_curve_, fits[1].loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(fits[0].predict_proba(X), fits[1].predict_proba(X), rtol=1e-9)


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = moons()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, verbose=1, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" = ")[0] for line in lines] == [f"Iteration {k}, loss" for k in (1, 2, 3)]
    assert f"{clf.loss_curve_[-1]:.8f}" in lines[-1]


def test_max_iter_without_convergence_warns_as_scikit_learn():
    X, y = moons()
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)


def test_pickled_estimator_predicts_and_keeps_training_the_same():
    X, y = moons()
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0).fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    clf.partial_fit(X, y)
    copy.partial_fit(X, y)  # the optimizer's state (Adam's moments) survived the round trip
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    assert copy.loss_curve_ == clf.loss_curve_


def test_partial_fit_needs_the_classes_first_and_rejects_new_ones():
    X, y = moons()
    clf = MLPClassifier(hidden_layer_sizes=(4,))
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="classes not in classes_"):
        clf.partial_fit(X, y + 1)
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1])


def test_unfitted_estimators_say_so():
    for estimator in (MLPClassifier(), MLPRegressor()):
        with pytest.raises(NotFittedError):
            estimator.predict(np.zeros((1, 2)))
        assert not hasattr(estimator, "coefs_")


@pytest.mark.parametrize("param, value, error, expected", [
    ("solver", "newton", ValueError, "'lbfgs', 'sgd' or 'adam'"),
    ("activation", "softplus", ValueError, "one of"),
    ("hidden_layer_sizes", (10, 0), ValueError, "an int >= 1 or a sequence"),
    ("alpha", -1.0, ValueError, "a finite real number >= 0"),
    ("alpha", "0.1", TypeError, "a finite real number >= 0"),
    ("alpha", np.inf, ValueError, "a finite real number >= 0"),  # an outside hunt: inf blamed the data
    ("learning_rate_init", np.inf, ValueError, "a finite real number > 0"),
    ("epsilon", np.inf, ValueError, "a finite real number > 0"),  # an outside hunt: inf fit, learning nothing
    ("tol", np.inf, ValueError, "a finite real number >= 0"),
    ("power_t", np.inf, ValueError, "a finite real number >= 0"),
    ("random_state", "a", TypeError, "None, an int in [0, 4294967295] or a numpy.random.RandomState"),  # NumPy's
    ("random_state", -1, ValueError, "None, an int in [0, 4294967295]"),  # own ValueError, an outside hunt
    ("batch_size", 0, ValueError, "'auto' or an int >= 1"),
    ("batch_size", 2.5, TypeError, "'auto' or an int >= 1"),
    ("learning_rate_init", 0.0, ValueError, "> 0"),
    ("max_iter", 0, ValueError, "an int >= 1"),
    ("momentum", 1.5, ValueError, "in [0, 1]"),
    ("validation_fraction", 1.0, ValueError, "in (0, 1)"),
    ("beta_2", 1.0, ValueError, "in [0, 1)"),
    ("shuffle", "yes", TypeError, "a bool"),
    ("n_iter_no_change", 0, ValueError, "an int >= 1 or np.inf"),
    ("backend", "gpu", ValueError, "'auto' (C if a C compiler is found, else NumPy) or one of"),
])
def test_bad_parameters_fail_in_fit_saying_what_was_expected(param, value, error, expected):
    X, y = moons(20)
    clf = MLPClassifier(**{param: value})  # __init__ never validates: scikit-learn's rule
    with pytest.raises(error) as info:
        clf.fit(X, y)
    assert type(info.value) is InvalidParameterError  # scikit-learn's own (an outside hunt: a plain ValueError)
    message = str(info.value)
    assert message.startswith(f"MLPClassifier: {param} must be") and expected in message and repr(value) in message


def test_l2_helper_adds_what_backward_of_the_eager_term_adds():
    rng = np.random.default_rng(0)
    params = rng.normal(size=9)
    is_weight = np.array([True, True, False] * 3)  # two weights and a bias per neuron
    eager = [Value(v) for v in params[is_weight]]
    scale = 0.37
    term = scale * sum(w * w for w in eager)
    term.backward()
    grad = np.full(9, 0.25)  # gradients already there are added to, not replaced
    value = _add_l2(params, is_weight, scale, grad)
    assert value == term.data  # summed first to last, as sum() and the native driver do
    np.testing.assert_allclose(grad[is_weight] - 0.25, [w.grad for w in eager], rtol=1e-15)
    assert (grad[~is_weight] == 0.25).all()  # biases are not penalised


def test_no_warnings_from_a_converged_fit():
    X, y = moons()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", tol=0.5, max_iter=50, random_state=0).fit(X, y)


def test_pipeline_example_searches_a_grid_and_scores_the_best_model():
    example = load_example("sklearn_pipeline")
    grid, accuracy = example.search({"mlp__hidden_layer_sizes": [(16,)], "mlp__alpha": [1e-4, 1.0]})
    assert len(grid.cv_results_["params"]) == 2 and grid.best_params_["mlp__alpha"] in (1e-4, 1.0)
    assert grid.best_estimator_.named_steps["mlp"].n_features_in_ == 64
    assert accuracy >= 0.95


# -- sample weights, lbfgs, poisson, sparse X ----------------------------------------------

SAMPLE_WEIGHT_CHECKS = {
    "check_sample_weights_pandas_series", "check_sample_weights_not_an_array", "check_sample_weights_list",
    "check_all_zero_sample_weights_error", "check_sample_weights_shape", "check_sample_weights_not_overwritten",
    "check_sample_weight_equivalence_on_dense_data", "check_sample_weight_equivalence_on_sparse_data"}


@pytest.mark.parametrize("estimator", CHECKED, ids=lambda e: type(e).__name__)
def test_scikit_learns_sample_weight_checks_are_among_those_run(estimator):
    """Run (and passed) by test_sklearn_estimator_checks; scikit-learn yields them only for
    estimators whose fit takes sample_weight and (the sparse one) whose tags say sparse."""
    names = {getattr(check, "func", check).__name__ for _, check in estimator_checks_generator(estimator)}
    assert SAMPLE_WEIGHT_CHECKS <= names


def weights(n):
    return np.random.RandomState(1).randint(0, 4, n).astype(np.float64)  # zeros included


def counts():
    X = np.random.RandomState(0).normal(size=(120, 4))
    return X, np.random.RandomState(0).poisson(np.exp(0.3 * X[:, 0] - 0.2 * X[:, 1])).astype(np.float64)


WEIGHTED_RUN = {  # name: (data, estimator parameters), fitted with weights() on both sides
    "binary sgd": (moons, dict(solver="sgd", learning_rate_init=0.1)),
    "adam, strong L2": (moons, dict(alpha=0.5, learning_rate_init=0.01)),
    "multiclass, early stopping": (iris, dict(early_stopping=True, validation_fraction=0.2, learning_rate_init=0.01)),
    "regression, two outputs": (regression, dict(learning_rate_init=0.01)),
    "poisson": (counts, dict(loss="poisson", learning_rate_init=0.01)),
}


@pytest.mark.parametrize("name", list(WEIGHTED_RUN))
def test_weighted_fit_retraces_scikit_learns_own_run(name):
    X, y, ours, theirs = pair(*WEIGHTED_RUN[name])
    w = weights(len(y))
    assert_same_run(ours.fit(X, y, sample_weight=w), theirs.fit(X, y, sample_weight=w), X)


def test_weighted_partial_fit_retraces_scikit_learn_and_unit_weights_change_nothing():
    X, y, ours, theirs = pair(moons, dict(learning_rate_init=0.01))
    for rows in (slice(0, 100), slice(100, 200)):
        ours.partial_fit(X[rows], y[rows], sample_weight=weights(100), classes=[0, 1])
        theirs.partial_fit(X[rows], y[rows], sample_weight=weights(100), classes=[0, 1])
    assert_same_run(ours, theirs, X)
    plain, unit = (pair(moons, dict(max_iter=3))[2] for _ in range(2))
    plain.fit(X, y)
    unit.fit(X, y, sample_weight=np.ones(len(y)))
    assert plain.loss_curve_ == unit.loss_curve_  # a weight of 1 is `1 * loss`: the same bits
    np.testing.assert_array_equal(plain.predict_proba(X), unit.predict_proba(X))


def test_a_minibatch_of_zero_weight_moves_nothing():
    X, y = moons(40)
    w = np.r_[np.zeros(20), np.ones(20)]
    clf = MLPClassifier(hidden_layer_sizes=(4,), batch_size=20, shuffle=False, max_iter=1, random_state=0)
    untrained = MLPClassifier(hidden_layer_sizes=(4,), batch_size=20, shuffle=False, max_iter=1, random_state=0)
    clf.fit(X, y, sample_weight=w)
    untrained.fit(X[20:], y[20:])  # the same one step, on the weighted rows only
    np.testing.assert_array_equal(clf.coefs_[0], untrained.coefs_[0])
    assert clf.loss_ == untrained.loss_ / 2  # the zero-weight batch reports 0


def test_sample_weights_whose_total_overflows_are_refused():
    """An outside hunt: weights of 1e308 add up to inf, and the fit, dividing by the total,
    returned without an error, its losses nan and its weights unmoved."""
    X, y = moons(30)
    with pytest.raises(ValueError, match=r"sample_weight must have a finite total.*add up to inf"):
        MLPClassifier(max_iter=5).fit(X, y, sample_weight=np.full(30, 1e308))


def test_the_log_loss_is_clipped_as_scikit_learns_and_its_gradient_is_not():
    """scikit-learn clips each probability to [eps, 1 - eps] before its log, so a row whose
    true class is less likely than eps reports 36.04.  graphc reported the exact loss (an
    outside hunt): loss curves differed, and lbfgs, whose line search reads the loss, took
    another path to other weights.  The gradient stays the unclipped one, as scikit-learn's."""
    line = np.linspace(-1, 1, 20)
    X, y = np.r_[line, [60.0]][:, None], np.r_[(line > 0).astype(int), [0]]  # one far mislabelled point
    settings = dict(hidden_layer_sizes=(3,), activation="identity", max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = MLPClassifier(**settings).fit(X, y), sk.MLPClassifier(**settings).fit(X, y)
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
        assert ours.loss_curve_[0] < 2.3  # the exact loss of that row alone is over 50
        X = np.random.default_rng(0).normal(size=(30, 3))
        X[0], Y = [80, -70, 60], np.eye(2, dtype=int)[np.arange(30) % 2]  # multi-label: each output clipped
        settings = dict(hidden_layer_sizes=(4,), activation="identity", max_iter=6, random_state=1)
        ours, theirs = MLPClassifier(**settings).fit(X, Y), sk.MLPClassifier(**settings).fit(X, Y)
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
        X = np.random.default_rng(0).normal(size=(40, 3)) * 30  # saturated outputs: 1 - p loses bits there
        y = (X[:, 0] > 0).astype(int)
        y[:3] = 1 - y[:3]
        settings = dict(hidden_layer_sizes=(5,), random_state=1, max_iter=30, learning_rate_init=0.1)
        ours, theirs = MLPClassifier(**settings).fit(X, y), sk.MLPClassifier(**settings).fit(X, y)
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)  # 7e-5 apart before
        rng = np.random.default_rng(0)
        X = rng.normal(size=(60, 4))
        y = np.array(["cat", "dog", "emu"])[np.digitize(X[:, 1], [-0.5, 0.5])]
        settings = dict(hidden_layer_sizes=(5, 3), max_iter=15, random_state=3, solver="lbfgs")
        ours, theirs = MLPClassifier(**settings).fit(X, y), sk.MLPClassifier(**settings).fit(X, y)
    assert rel_err(ours.loss_, theirs.loss_) < 1e-9
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


LBFGS_RUN = {
    "binary": (moons, dict(max_iter=30)),
    "multiclass, L2, weighted": (iris, dict(max_iter=30, alpha=0.1)),
    "regression, two outputs": (regression, dict(max_iter=30)),
    "poisson": (counts, dict(max_iter=30, loss="poisson")),
}


@pytest.mark.parametrize("name", list(LBFGS_RUN))
def test_lbfgs_fit_retraces_scikit_learns_own_run(name):
    data, params = LBFGS_RUN[name]
    X, y, ours, theirs = pair(data, dict(params, solver="lbfgs"))
    w = weights(len(y)) if "weighted" in name else None
    ours.fit(X, y, sample_weight=w)
    theirs.fit(X, y, sample_weight=w)
    assert ours.n_iter_ == theirs.n_iter_ == 30 and ours.t_ == theirs.t_ == 0
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    predict = "predict_proba" if hasattr(theirs, "predict_proba") else "predict"
    np.testing.assert_allclose(getattr(ours, predict)(X), getattr(theirs, predict)(X), rtol=1e-9, atol=1e-12)
    assert not hasattr(ours, "loss_curve_") and not hasattr(theirs, "loss_curve_")


def test_lbfgs_stops_where_scikit_learn_does_and_has_no_partial_fit():
    X, y, ours, theirs = pair(iris, dict(solver="lbfgs", max_iter=500, max_fun=40))
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        ours.fit(X, y)
    theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 500  # max_fun (function evaluations) stopped both
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    assert not hasattr(ours, "partial_fit") and not hasattr(theirs, "partial_fit")
    with pytest.raises(AttributeError, match="no attribute 'partial_fit'") as info:
        ours.partial_fit(X, y)
    assert "only available for the stochastic solvers" in str(info.value.__cause__)


def test_poisson_regressor_predicts_exp_of_its_output_and_refuses_negative_targets():
    X, y = counts()
    reg = MLPRegressor(hidden_layer_sizes=(6,), loss="poisson", max_iter=20, learning_rate_init=0.01,
                       random_state=0).fit(X, y)
    assert reg.out_activation_ == "exp"
    np.testing.assert_array_equal(reg.predict(X), np.exp(reg._outputs(X)[:, 0]))
    with pytest.raises(ValueError, match="targets >= 0; y has -1.0"):
        reg.fit(X, y - 1.0)
    with pytest.raises(ValueError, match="'squared_error' or 'poisson'; got 'huber'"):
        MLPRegressor(loss="huber").fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sparse_x_fits_and_predicts_as_the_same_dense_x(solver):
    from scipy import sparse
    X, y = iris()
    X[np.abs(X) < 0.5] = 0.0  # a third of the entries
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=5, batch_size=40, random_state=0)
    dense = MLPClassifier(**params).fit(X, y)
    for to_sparse in (sparse.csr_matrix, sparse.csc_array):
        fit = MLPClassifier(**params).fit(to_sparse(X), y)
        for a, b in zip(fit.coefs_ + fit.intercepts_, dense.coefs_ + dense.intercepts_):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(fit.predict_proba(to_sparse(X)), dense.predict_proba(X))
    theirs = sk.MLPClassifier(**params).fit(sparse.csr_matrix(X), y)
    np.testing.assert_allclose(dense.predict_proba(X), theirs.predict_proba(sparse.csr_matrix(X)), rtol=1e-9)


@pytest.mark.parametrize("backend", ["numpy"] + (["c"] if find_compiler() else []))
def test_a_sparse_or_weighted_fit_reports_the_dense_fits_losses_bit_for_bit(backend):
    """Found by an outside tester: on C a dense fit summed the L2 penalty in its own order and
    the others with BLAS (w @ w); the last bits differed, and a stopping rule that read them
    ended the fits at different epochs, with different weights."""
    from scipy import sparse
    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16, y[:200]
    params = dict(hidden_layer_sizes=(32,), solver="sgd", random_state=0, batch_size=32, alpha=10.0,
                  max_iter=4, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = MLPClassifier(**params).fit(X, y)
        others = [MLPClassifier(**params).fit(sparse.csr_matrix(X), y),
                  MLPClassifier(**params).fit(X, y, sample_weight=np.ones(len(y)))]
    for fit in others:
        assert [v.hex() for v in fit.loss_curve_] == [v.hex() for v in dense.loss_curve_]
        for a, b in zip(fit.coefs_ + fit.intercepts_, dense.coefs_ + dense.intercepts_):
            np.testing.assert_array_equal(a, b)


def test_sparse_predictions_are_densified_a_chunk_of_rows_at_a_time(monkeypatch):
    from scipy import sparse
    from graphc.sklearn import _base
    X, y = moons()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    monkeypatch.setattr(_base, "_SPARSE_CHUNK", 64)
    np.testing.assert_array_equal(clf.predict_proba(sparse.csr_matrix(X)), clf.predict_proba(X))


# -- which backend ran, interrupts, a missing scikit-learn --------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "python", "auto"])
def test_backend_attribute_says_which_backend_ran(backend):
    X, y = moons(40)
    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=1, backend=backend).fit(X, y)
    expected = ("c" if find_compiler() is not None else "numpy") if backend == "auto" else backend
    assert clf.backend_ == expected == clf._loss_step.backend
    assert not hasattr(MLPClassifier(), "backend_")


def raise_on_call(k: int, original):
    """``original`` wrapped to raise KeyboardInterrupt on its k-th call, as Ctrl-C would."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(None)
        if len(calls) == k:
            raise KeyboardInterrupt
        return original(*args, **kwargs)
    return wrapper


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_an_interrupted_fit_keeps_the_partly_trained_state_as_scikit_learn(monkeypatch, solver):
    from graphc import train_native
    from graphc.codegen import c_train
    from graphc.compile import Compiled
    X, y, ours, theirs = pair(moons, dict(solver=solver, learning_rate_init=0.05))
    batches_per_epoch = 7  # 200 rows in batches of 32
    k = 2 * batches_per_epoch + 3  # in the third epoch, after three of its steps
    monkeypatch.setattr(Compiled, "mean_and_grad", raise_on_call(k, Compiled.mean_and_grad))
    monkeypatch.setattr(train_native, "CHUNK_SECONDS", 0.0)  # native epochs: one step per driver call
    monkeypatch.setattr(c_train.Driver, "run", raise_on_call(k, c_train.Driver.run))
    monkeypatch.setattr(type(theirs), "_backprop", raise_on_call(k, type(theirs)._backprop))
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        ours.fit(X, y)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 2 and ours.t_ == theirs.t_ == 400
    assert_same_run(ours, theirs, X)  # weights of the 16th step, loss curve of two epochs
    monkeypatch.undo()
    _, _, two_epochs, _ = pair(moons, dict(solver=solver, learning_rate_init=0.05, max_iter=2))
    assert ours.coefs_[0].tolist() != two_epochs.fit(X, y).coefs_[0].tolist()  # three steps past epoch 2
    ours.partial_fit(X, y)  # and training goes on from there
    theirs.partial_fit(X, y)
    assert_same_run(ours, theirs, X)


def test_import_without_scikit_learn_or_scipy_says_to_install_the_extra(monkeypatch):
    import importlib
    import sys
    for missing in ("sklearn", "scipy"):
        with monkeypatch.context() as patch:
            for name in [n for n in sys.modules if n == "graphc.sklearn" or n.startswith("graphc.sklearn.")]:
                patch.delitem(sys.modules, name)
            patch.setitem(sys.modules, missing, None)  # `import missing` now raises ImportError
            patch.delitem(sys.modules, f"{missing}.optimize", raising=False)
            with pytest.raises(ImportError, match=r"pip install 'graphc\[sklearn\]'"):
                importlib.import_module("graphc.sklearn")
    assert importlib.import_module("graphc.sklearn").MLPClassifier is MLPClassifier


def test_coefs_and_intercepts_can_be_assigned_as_in_scikit_learn():
    """An outside tester: they were read-only properties, where scikit-learn lets one assign
    them (weight surgery, or weights trained elsewhere).  Assigned scikit-learn's, the
    estimator predicts as scikit-learn's does; wrong shapes are refused before any write."""
    X, y = make_moons(60, noise=0.2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
        theirs = sk.MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=1).fit(X, y)
    before = [c.copy() for c in ours.coefs_]
    with pytest.raises(ValueError, match=r"coefs_\[1\] must have shape \(5, 1\); got \(5, 2\)"):
        ours.coefs_ = [np.zeros((2, 5)), np.zeros((5, 2))]
    with pytest.raises(ValueError, match="a list of 2 arrays, one per layer; got 1 of them"):
        ours.intercepts_ = [np.zeros(5)]
    assert all((a == b).all() for a, b in zip(ours.coefs_, before))  # nothing written
    ours.coefs_, ours.intercepts_ = theirs.coefs_, theirs.intercepts_
    assert np.abs(ours.predict_proba(X) - theirs.predict_proba(X)).max() < 1e-14
    assert all((a == b).all() for a, b in zip(ours.coefs_, theirs.coefs_))
    with pytest.raises(NotFittedError):
        MLPClassifier().coefs_ = theirs.coefs_


def test_a_warm_start_after_set_params_takes_the_new_activation_and_backend():
    """scikit-learn's network reads its activation at each pass, so a warm refit after
    ``set_params(activation="tanh")`` trains tanh; graphc's kept training relu, and kept its
    backend (an outside hunt)."""
    rng = np.random.RandomState(0)
    X, y = rng.randn(50, 3), rng.randint(0, 3, 50)
    curves = []
    for estimator in (MLPClassifier, sk.MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = estimator(hidden_layer_sizes=(4,), max_iter=10, random_state=0, warm_start=True).fit(X, y)
            curves.append(fitted.set_params(activation="tanh").fit(X, y).loss_curve_)
    np.testing.assert_allclose(curves[0], curves[1], rtol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moved = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, warm_start=True).fit(X, y)
        weights = moved.coefs_
        assert moved.set_params(backend="python").fit(X, y).backend_ == "python"
    assert moved.model_.layers[0].neurons[0].activation == "relu" and not np.array_equal(moved.coefs_[0], weights[0])


@pytest.mark.parametrize("incremental", [False, True], ids=["warm_start", "partial_fit"])
def test_a_warm_fit_refuses_parameters_asking_for_another_network(incremental):
    """An outside hunt: after ``set_params(hidden_layer_sizes=(6, 2))`` or ``loss="poisson"``,
    a warm fit (or partial_fit) went on training the fitted network, saying nothing."""
    rng = np.random.RandomState(0)
    X, y = rng.randn(40, 3), rng.randint(0, 3, 40)
    targets = np.abs(X.sum(axis=1))
    for estimator, labels, change in [(MLPClassifier, y, dict(hidden_layer_sizes=(6, 2))),
                                      (MLPRegressor, targets, dict(loss="poisson"))]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = estimator(hidden_layer_sizes=(4,), max_iter=3, random_state=0, warm_start=True).fit(X, labels)
        weights = [c.copy() for c in fitted.coefs_]
        fitted.set_params(**change)
        what = "partial_fit" if incremental else "warm_start=True"
        with pytest.raises(ValueError, match=f"{what} continues the fitted network.*fit a new network"):
            fitted.partial_fit(X, labels) if incremental else fitted.fit(X, labels)
        assert all(np.array_equal(a, b) for a, b in zip(fitted.coefs_, weights))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            assert fitted.set_params(warm_start=False).fit(X, labels).coefs_[0].shape == (3, change.get(
                "hidden_layer_sizes", (4,))[0])


def test_warm_fits_do_not_recompile_once_the_shared_programs_have_moved_on(monkeypatch):
    """A warm fit asked the shared cache for its programs to see whether the backend changed:
    with more networks than the cache keeps, every ``partial_fit`` compiled again (a review)."""
    from graphc.sklearn import _programs as programs
    X, y = moons()
    estimators = [MLPClassifier(hidden_layer_sizes=(3 + k,), random_state=0) for k in range(programs._PROGRAMS_KEPT + 1)]
    for estimator in estimators:
        estimator.partial_fit(X, y, classes=[0, 1])
    compiles = []
    monkeypatch.setattr(programs, "graphc_compile", lambda *a, **k: compiles.append(a) or pytest.fail("compiled"))
    for estimator in estimators:
        estimator.partial_fit(X, y)
    assert compiles == []
