"""graphc.progress: train(progress=True) and the moons demo show progress; silent by default."""
from __future__ import annotations

import random
import sys

import numpy as np
import pytest

import graphc
from graphc import demo
from graphc.nn import MLP


def _problem():
    random.seed(4)
    model = MLP(2, [3, 1])
    compiled = graphc.compile(lambda x, y: (model(x) - y) ** 2)
    X = np.linspace(-1, 1, 20).reshape(10, 2)
    return model, compiled, X, X.sum(axis=1)


@pytest.fixture
def no_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def test_train_plain_progress_line(no_tqdm, capfd):
    model, compiled, X, y = _problem()
    start = [p.data for p in model.parameters()]
    losses = compiled.train(X, y, lr=0.1, batch_size=4, progress=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert err.startswith("\rtrain lambda: ") and err.endswith("\n") and err.count("\n") == 1
    assert f"3/3 batches  loss={losses[-1]:.4g}" in err
    after = [p.data for p in model.parameters()]
    for p, v in zip(model.parameters(), start):  # the bar changes no number
        p.data = v
    assert np.array_equal(compiled.train(X, y, lr=0.1, batch_size=4), losses)
    assert [p.data for p in model.parameters()] == after


def test_train_tqdm_progress(capfd):
    pytest.importorskip("tqdm")
    _, compiled, X, y = _problem()
    compiled.train(X, y, lr=0.1, batch_size=3, progress=True)
    err = capfd.readouterr().err
    assert "train lambda" in err and "4/4" in err and "loss=" in err


def test_train_is_silent_by_default(capfd):
    _, compiled, X, y = _problem()
    compiled.train(X, y, lr=0.1, batch_size=4)
    assert capfd.readouterr() == ("", "")


def test_plain_bar_is_closed_when_train_fails(no_tqdm, capfd):
    model, compiled, X, y = _problem()
    before = [p.data for p in model.parameters()]
    with pytest.raises(graphc.ArgumentError):
        compiled.train(X, y, optimizer=graphc.optim.SGD([graphc.Value(1.0)], lr=0.1), progress=True)
    with pytest.raises(ValueError):
        compiled.train(X, y, lr=float("nan"), progress=True)
    assert [p.data for p in model.parameters()] == before
    assert capfd.readouterr().err == ""  # refused before any batch: no bar


@pytest.mark.parametrize("loop", [demo.train_batched, demo.train_compiled, demo.train])
def test_demo_loops_show_progress_instead_of_step_lines(loop, no_tqdm, capfd):
    X, y, model = demo.make_data()
    lines: list[str] = []
    history = loop(model, X[:10], y[:10], steps=3, log=lines.append, progress=True)
    err = capfd.readouterr().err
    assert "moons: 3/3 steps" in err and f"loss={history[-1][0]:.4g}" in err
    assert not [line for line in lines if line.startswith("step")]
    X, y, model = demo.make_data()
    lines.clear()
    loop(model, X[:10], y[:10], steps=3, log=lines.append)
    assert len([line for line in lines if line.startswith("step")]) == 3
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), KeyboardInterrupt()])
def test_a_bar_that_fails_as_it_closes_leaves_train_all_or_nothing(no_tqdm, monkeypatch, error):
    """The bar was closed after train moved the params: a stderr failing on its last newline
    (a closed pipe, a Ctrl-C then) made train raise with the params moved (an outside hunt)."""
    class Failing:
        def write(self, text):
            if text == "\n":
                raise error
            return len(text)

        def flush(self):
            pass
    model, compiled, X, y = _problem()
    start = [p.data for p in model.parameters()]
    monkeypatch.setattr(sys, "stderr", Failing())
    with pytest.raises(type(error)):
        compiled.train(X, y, lr=0.1, batch_size=4, progress=True)
    assert [p.data for p in model.parameters()] == start
