"""backends: every backend answers the same calls, with one calling convention."""
from __future__ import annotations

import math
import random
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc import ArgumentError, Value, backends
from graphc.batches import Batch
from graphc.codegen import c as c_codegen

ROOT = Path(__file__).resolve().parent.parent


def _available() -> list[str]:
    return [name for name in backends.BACKENDS if name != "c" or c_codegen.find_compiler() is not None]


@pytest.mark.parametrize("backend", _available())
def test_batched_programs_take_cols_params_scale_n_with_params_a_list_or_an_array(backend):
    p, q = Value(0.5), Value(-1.25)
    compiled = graphc.compile(lambda x, y: [(x * p + y * q).tanh(), x * y], backend=backend)
    X, Y = np.linspace(-1, 1, 5), np.linspace(2, 3, 5)
    compiled.map(X, Y)
    signature = compiled._latest
    cols = Batch((X, Y), ["x", "y"]).cols
    forward = signature.batched_program("forward").function
    for params in ([0.5, -1.25], np.array([0.5, -1.25])):
        per_row, sums = forward(cols, params, 0.0, 5)
        assert [list(v) for v in per_row] == [list(v) for v in compiled.map(X, Y)] and list(sums) == []
    scalar = graphc.compile(lambda x, y: (x * p + y * q).tanh(), backend=backend)
    scalar.mean(X, Y)
    mean = scalar._latest.batched_program("mean").function
    ((values,), list_grads), ((_,), array_grads) = (mean(cols, [0.5, -1.25], 0.2, 5),
                                                    mean(cols, np.array([0.5, -1.25]), 0.2, 5))
    assert list(values) == list(compiled.map(X, Y)[0])
    assert list(list_grads) == list(array_grads) == scalar.mean_and_grad(X, Y)[1].tolist()
    assert all(type(g) is float for g in list_grads)  # a list in, floats out: they go into .grad


@pytest.mark.parametrize("backend", _available())
def test_scalar_calls_run_python_on_numpy_and_python_and_c_on_c(backend):
    def fn(x):
        return x.exp() * 3.0
    ours, reference = graphc.compile(fn, backend=backend), graphc.compile(fn, backend="python")
    a, b = Value(1.0), Value(1.0)
    ours(a).backward()
    reference(b).backward()
    assert a.grad == b.grad and backends.resolve(backend).one_row == (backend == "c")
    if backend == "c":
        assert "(C backend)" in ours.source and ours.source == ours._latest.batched_program("forward").source
    else:
        assert ours.source == reference.source and "def fn" in ours.source


def test_resolve_defaults_names_and_refuses():
    assert backends.resolve(None) is backends.resolve("auto") and backends.DEFAULT == "auto"
    assert backends.resolve("python").name == "python"
    for bad in ("fortran", 3, ["c"], "Auto"):
        with pytest.raises(ArgumentError, match="unknown backend"):
            backends.resolve(bad)


def test_auto_is_c_exactly_when_a_c_compiler_is_found():
    assert backends.choose_auto() == ("c" if c_codegen.find_compiler() is not None else "numpy")
    assert backends.resolve(None).name == "auto"


@pytest.fixture
def new_process(monkeypatch):
    """The default's question -- does a C compiler build graphc's code? -- not yet asked, as in
    a new process; asked again afresh after the test."""
    monkeypatch.setattr(backends, "_probe", [])
    c_codegen.find_compiler.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    c_codegen.find_compiler.cache_clear()


def test_scalar_calls_on_the_default_never_look_for_a_compiler(new_process):
    def unasked():
        raise AssertionError("looked for a C compiler")
    new_process.setattr(c_codegen, "find_compiler", unasked)
    x = Value(2.0)
    out = graphc.compile(lambda x: (x * 3.0).tanh())(x)
    out.backward()
    assert out.data == math.tanh(6.0) and x.grad == (1 - math.tanh(6.0) ** 2) * 3.0


def test_auto_without_a_c_compiler_is_numpy_and_says_nothing(new_process, recwarn):
    new_process.setattr(c_codegen, "find_compiler", lambda: None)
    compiled = graphc.compile(lambda x: x * 2.0)
    assert compiled.map(np.arange(3.0)).tolist() == [0.0, 2.0, 4.0] and "(NumPy backend)" in compiled.source
    assert compiled.backend == "auto" and backends.choose_auto() == "numpy" and not recwarn.list


def use_a_broken_compiler(patch, tmp_path, says: str) -> None:
    """$CC a compiler that answers --version but builds nothing, saying ``says``; a fresh cache."""
    script = tmp_path / "cc"
    script.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo "broken cc 1.0"; exit 0; fi\n'
                      f'echo "{says}" >&2; exit 1\n')
    script.chmod(0o755)
    patch.setenv("CC", str(script))
    patch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))


def test_auto_with_a_compiler_that_cannot_build_warns_once_and_runs_numpy(new_process, tmp_path):
    """A C compiler that answers --version but builds nothing (say, one without C headers)."""
    use_a_broken_compiler(new_process, tmp_path, "fatal error: math.h: No such file or directory")
    compiled = graphc.compile(lambda x: x * 3.0)
    said = "cannot build graphc's code, so the default backend runs NumPy; it said: fatal error: math.h"
    with pytest.warns(graphc.CompilerWarning, match=said) as caught:
        assert compiled.map(np.arange(3.0)).tolist() == [0.0, 3.0, 6.0]  # this line is named
    assert caught[0].filename == __file__ and "(NumPy backend)" in compiled.source
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backends.choose_auto() == "numpy"  # said once
        assert graphc.compile(lambda x: x * 3.0).map(np.arange(2.0)).tolist() == [0.0, 3.0]


def test_c_with_a_compiler_that_cannot_build_says_it_is_the_compilers_failure(new_process, tmp_path):
    """An outside review: backend='c' with a broken $CC was 'the C compiler rejected graphc's
    generated code (a graphc bug)'."""
    use_a_broken_compiler(new_process, tmp_path, "fatal error: cannot compile")
    with pytest.raises(graphc.GraphcError, match=r"the C compiler .*cc cannot build even an empty shared library, "
                                                 r"so it is no usable C compiler here .*\n.*fatal error: cannot"):
        graphc.compile(lambda x: x * 3.0, backend="c").map(np.arange(3.0))


@pytest.mark.skipif(c_codegen.find_compiler() is None, reason="needs a C compiler")
def test_a_program_too_large_to_build_in_c_is_refused_and_auto_runs_the_python_row_loop(monkeypatch):
    """An outside hunt: a scalar chain of 5 * 10^5 ops (no layers to re-roll) ran gcc for a
    minute until its cc1 crashed, and the error called it a graphc bug."""
    from graphc.codegen import c_toolchain
    monkeypatch.setattr(c_toolchain, "MAX_STATEMENTS", 40)
    a, b = Value(0.9), Value(0.01)

    def chain(x):
        for _ in range(30):
            x = x * a + b
        return x
    X = np.array([0.3, 0.2, -1.5])
    with pytest.raises(graphc.GraphcError, match=r"a C function of [\d,]+ statements, more than the 40 graphc builds "
                                                 r".* run it with backend='python'"):
        graphc.compile(chain, backend="c").mean_and_grad(X)
    want = graphc.compile(chain, backend="python").mean_and_grad(X)
    got = graphc.compile(chain).mean_and_grad(X)
    assert got[0] == want[0] and got[1].tolist() == want[1].tolist()
    assert graphc.compile(chain).map(X).tolist() == graphc.compile(chain, backend="python").map(X).tolist()


@pytest.mark.skipif(c_codegen.find_compiler() is None, reason="needs a C compiler")
def test_a_full_batch_loss_too_large_for_c_runs_the_scalar_program_on_auto(monkeypatch):
    """An outside hunt: micrograd's full-batch loss over 70,000 rows raised TooLarge from the
    call on the default backend (its per-row programs' C, built on the first call, was
    outside the fallback ``batched`` has); backend="c" still refuses it."""
    from graphc.codegen import c_toolchain
    monkeypatch.setattr(c_toolchain, "MAX_STATEMENTS", 40)
    w = Value(0.5, label="w")
    X = np.random.default_rng(0).normal(size=600)  # over rows_program.MIN_NODES traced nodes

    def loss(X, y):
        return sum((w * Value(x) - t) ** 2 for x, t in zip(X, y)) * (1.0 / len(X))
    eager = loss(X, 2.0 * X)
    eager.backward()
    want = (eager.data, w.grad)
    w.grad = 0.0
    out = graphc.compile(loss)(X, 2.0 * X)
    out.backward()
    assert (out.data, w.grad) == want
    with pytest.raises(graphc.GraphcError, match=r"a C function of [\d,]+ statements, more than the 40"):
        graphc.compile(loss, backend="c")(X, 2.0 * X)


@pytest.mark.skipif(c_codegen.find_compiler() is None, reason="needs a C compiler")
def test_auto_runs_cs_batched_programs_and_scalar_calls_in_python():
    """The default: C's source, library and bits for everything batched; Python for one row."""
    X = np.random.default_rng(3).normal(size=(37, 3))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    random.seed(4)
    model = graphc.nn.MLP(3, [5, 4, 1])

    def loss(x, y):
        return (1 + -y * model(x)).relu() + 1e-3 * sum(p * p for p in model.parameters())
    auto, c = graphc.compile(loss), graphc.compile(loss, backend="c")
    got, want = auto.mean_and_grad(X, y), c.mean_and_grad(X, y)
    assert got[0] == want[0] and got[1].tolist() == want[1].tolist() and auto.source == c.source
    assert auto.map(X, y)[0].tolist() == c.map(X, y)[0].tolist()
    start = [p.data for p in model.parameters()]
    auto.train(X, y, lr=0.1, batch_size=8)
    trained = [p.data for p in model.parameters()]
    for p, v in zip(model.parameters(), start):
        p.data = v
    c.train(X, y, lr=0.1, batch_size=8)
    assert trained == [p.data for p in model.parameters()] != start
    out = auto(list(X[0]), y[0])
    out.backward()
    assert "(Python backend)" in auto.source and out.data == auto.map(X[:1], y[:1])[0]


def test_the_compile_modules_never_ask_which_backend_they_hold():
    """Backend knowledge lives in graphc/backends.py: nothing else compares backend names."""
    for name in ("compile.py", "signature.py", "signature_cache.py", "bridge.py", "batches.py"):
        text = (ROOT / "graphc" / name).read_text()
        assert not re.search(r"backend\s*[!=]=|[!=]=\s*['\"](python|numpy|c)['\"]|\.raw\b", text), name
