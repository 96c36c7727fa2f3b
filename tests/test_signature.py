"""signature: one argument signature's stages, each made once and cached by kind; Stages."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import GraphcError, Value
from graphc.signature import BatchedKey, JointKey, ScalarKey


def test_each_cache_holds_one_kind_of_thing_under_a_typed_key():
    p = Value(0.5)
    compiled = graphc.compile(lambda x: (x * p).tanh())
    compiled(Value(1.0)).backward()
    compiled(2.0).backward()
    signature = compiled._latest
    assert list(signature._programs) == [ScalarKey(0, True), ScalarKey(0, False)]
    assert list(signature._joints) == [JointKey(0, True, False), JointKey(0, False, False)]
    compiled.mean(np.ones(3))  # rows of one scalar: the same signature
    assert compiled._latest is signature and list(signature._programs)[2:] == [BatchedKey("mean")]
    assert list(signature._joints)[2:] == [JointKey(0, False, True)]
    assert signature.vector_graph() is signature.vector_graph()


def test_stages_are_what_the_calls_run():
    compiled = graphc.compile(lambda x: (1 + x).log() * 2.0, numerics="stable")
    with pytest.raises(GraphcError, match="has not been called yet"):
        compiled.stages()
    compiled(Value(0.25))
    stages = compiled.stages()
    assert stages.graph is compiled.graph and stages.program.source == compiled.source
    assert stages.joint is stages.program.joint and "log1p" in str(stages.joint)  # the compile's numerics
    assert stages.report is compiled.stats.reports["forward"]
    with pytest.raises(GraphcError, match="output 1 does not exist"):
        compiled.stages(1).joint


def test_the_signature_cache_counts_traces_and_keeps_the_latest():
    compiled = graphc.compile(lambda *x: x[0] * 2.0)
    compiled(1.0)
    compiled(Value(3.0))
    compiled(1.0, 2.0)
    assert compiled.trace_count == len(compiled._signatures) == 2
    assert compiled._latest is list(compiled._signatures.values())[-1]


def test_compiled_outputs_and_means_are_one_kind_of_eager_op():
    p = Value(0.5)
    compiled = graphc.compile(lambda x: [x * p, x + p])
    first, second = compiled(1.0)
    mean = graphc.compile(lambda x: x * p).mean(np.array([1.0, 3.0]))
    assert (first._op, second._op, mean._op) == ("lambda[0]", "lambda[1]", "mean(lambda)")
    assert type(first._kind) is type(mean._kind)
    (second + mean * 2.0).backward()
    assert p.grad == 1.0 + 2.0 * 2.0
