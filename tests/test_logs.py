"""graphc.logs: GRAPHC_LOGS and set_logs send every program, retrace and pass report."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc import Value, logs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def all_logs():
    graphc.set_logs(output_code=True, retraces=True, passes=True)
    yield
    graphc.set_logs()


def _all_programs(compiled) -> list[str]:
    """The source of every program each signature of ``compiled`` generated (the oracle)."""
    return [program.source for signature in compiled._signatures.values()
            for program in signature._programs.values() if hasattr(program, "source")]


def _all_reports(compiled) -> list[str]:
    return [str(report) for signature in compiled._signatures.values()
            for report in signature.stats.reports.values()]


def _exercise() -> graphc.Compiled:
    """Three signatures: lists of 2 and 3 scalars (each gradient variant), rows of 2 (map and mean)."""
    p = Value(0.5)
    compiled = graphc.compile(lambda x: sum(xi * p for xi in x).tanh(), backend="numpy")
    compiled([1.0, 2.0]).backward()
    p.grad = 0  # zeroed, as micrograd's loop does: the same programs as from the first call
    compiled([Value(1.0), 2.0, 3.0]).backward()
    X = np.arange(8.0).reshape(4, 2) / 8
    compiled.map(X)
    compiled.mean(X).backward()
    return compiled


def test_every_program_retrace_and_report_is_logged(all_logs, caplog):
    compiled = _exercise()
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("graphc."))
    programs = _all_programs(compiled)
    assert len(programs) == 4  # [2 scalars]: params only; [3 scalars]: wrt inputs; array(2,): forward, mean
    assert {r.name for r in caplog.records} >= {"graphc.output_code", "graphc.retraces", "graphc.passes"}
    for source in programs:
        assert source.rstrip("\n") in text
    assert "lambda: tracing (first call)" in text
    assert "tracing (new argument signature ([scalar, scalar, scalar]); known: ([scalar, scalar]))" in text
    assert "tracing (new argument signature (array(2,)); known: ([scalar, scalar]), ([scalar, scalar, scalar]))" in text
    for report in _all_reports(compiled):
        assert report in text
    assert "numpy, batched mean" in text and "Python, forward and gradient of output 0" in text


def test_silent_by_default(caplog):
    graphc.set_logs()
    caplog.set_level(logging.WARNING)
    _exercise()
    assert not [r for r in caplog.records if r.name.startswith("graphc")]


def test_set_logs_round_trip():
    root = logging.getLogger("graphc")
    try:
        graphc.set_logs("output_code, passes")
        assert logs.enabled() == ["output_code", "passes"]
        assert logs._handler in root.handlers
        graphc.set_logs(["retraces"])
        assert logs.enabled() == ["retraces"]
        graphc.set_logs("all")
        assert logs.enabled() == ["output_code", "retraces", "passes", "rows"]
        graphc.set_logs(retraces=True, passes=False)
        assert logs.enabled() == ["retraces"]
        assert root.handlers.count(logs._handler) == 1
    finally:
        graphc.set_logs()
    assert logs.enabled() == [] and logs._handler not in root.handlers
    assert logging.getLogger("graphc.output_code").level == logging.WARNING


def test_an_application_logging_at_info_gets_only_the_logs_turned_on(caplog):
    """At NOTSET graphc's loggers took the root logger's level: a training script's
    ``logging.basicConfig(level=logging.INFO)`` got every trace, pass report and generated
    program, and ``set_logs(rows=True)`` the other logs too (an outside hunt)."""
    w = Value(0.5)
    with caplog.at_level(logging.INFO):  # the root logger, as basicConfig sets it
        graphc.compile(lambda x: (w * x).tanh())(1.0).backward()
        assert not [r for r in caplog.records if r.name.startswith("graphc")]
        try:
            graphc.set_logs(rows=True)
            graphc.compile(lambda x: (w * x).relu())(2.0)
        finally:
            graphc.set_logs()
        assert {r.name for r in caplog.records if r.name.startswith("graphc")} == {"graphc.rows"}


@pytest.mark.parametrize("call", [lambda: graphc.set_logs("output_code,bogus"),
                                  lambda: graphc.set_logs(bogus=True),
                                  lambda: graphc.set_logs(["passes", "output"])])
def test_unknown_names_are_refused_and_change_nothing(call):
    try:
        graphc.set_logs(passes=True)
        with pytest.raises(ValueError, match="unknown log name.*choose from output_code, retraces, passes"):
            call()
        assert logs.enabled() == ["passes"]
        with pytest.raises(TypeError, match="expected log names"):
            graphc.set_logs(3)
    finally:
        graphc.set_logs()


def _run_with_logs(value: str) -> subprocess.CompletedProcess:
    script = ("import numpy as np, graphc\n"
              "f = graphc.compile(lambda x, y: (x * y).relu())\n"
              "f(1.0, 2.0); f.mean(np.ones(3), np.ones(3))\n"
              "print('\\n=====\\n'.join(s.source for g in f._signatures.values() for s in g._programs.values()"
              " if hasattr(s, 'source')))\n")
    env = {**os.environ, "GRAPHC_LOGS": value, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120, check=True)


def test_environment_variable_sends_logs_to_stderr():
    result = _run_with_logs("output_code,retraces,passes")
    for source in result.stdout.split("\n=====\n"):
        assert source.strip() and source.rstrip("\n") in result.stderr
    assert "[graphc.retraces] lambda: tracing (first call)" in result.stderr
    assert "[graphc.passes] lambda (scalar, scalar): forward, to differentiate\noptimize:" in result.stderr
    assert "Warning" not in result.stderr


def test_environment_variable_unknown_name_warns_once():
    result = _run_with_logs("retraces,bogus")
    assert result.stderr.count("ignored unknown log name(s) 'bogus'") == 1
    assert "tracing (first call)" in result.stderr
    assert "[graphc.output_code]" not in result.stderr


def test_batch_recovery_says_whether_a_full_batch_loss_runs_as_rows_and_why_not(caplog):
    """An outside hunt found spellings that ran the scalar program, 100x slower a step, with
    nothing saying so: ``GRAPHC_LOGS=rows`` says it, and why."""
    import random
    from graphc.nn import MLP
    random.seed(0)
    model = MLP(2, [4, 1])
    X = np.random.default_rng(0).standard_normal((600, 2))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)

    def with_scores(X, y):
        scores = [model(list(map(Value, row))) for row in X]
        return sum((1 + -yi * s).relu() for yi, s in zip(y, scores)) * (1.0 / len(scores)), scores

    def loss(X, y):
        return with_scores(X, y)[0]

    def alternating(X, y):  # rows computed two ways: no one row program
        scores = [model(list(map(Value, row))) for row in X]
        return sum(s * s if k % 2 else s for k, s in enumerate(scores))
    graphc.set_logs("rows")
    try:
        caplog.set_level(logging.INFO, logger="graphc.rows")
        graphc.compile(loss)(X, y)
        graphc.compile(alternating)(X, y)
        graphc.compile(loss, backend="python")(X, y)
        graphc.compile(loss)(X[:4], y[:4])
        with_values = graphc.compile(loss)
        for _ in range(2):
            with_values(X[:4], [Value(v) for v in y[:4]])
    finally:
        graphc.set_logs()
    said = [r.getMessage() for r in caplog.records if r.name == "graphc.rows"]
    assert said[0] == "loss: one per-row program over 600 rows (1 sum(s) over them)"
    assert said[1].startswith("alternating: the scalar program runs: no sum over at least 4 rows")
    assert said[2] == "loss: the scalar program runs: the python backend runs it"
    assert said[3].startswith("loss: the scalar program runs: ") and "traced nodes, under 2,000" in said[3]
    assert said[4:] == ["loss: the scalar program runs: a call with Value arguments (their gradients too)"]
