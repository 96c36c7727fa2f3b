"""The C kernel's calls from Python: addresses, and the fast call's checks and row sum."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import Value
from graphc.batches import row_mean
from graphc.codegen import c as c_backend
from graphc.codegen.c_call import address

pytestmark = pytest.mark.skipif(c_backend.find_compiler() is None, reason="no C compiler")


def test_address_is_where_the_data_starts():
    a = np.arange(5.0)
    read_only = a.copy()
    read_only.setflags(write=False)
    other = read_only[1:]  # read-only too: asked in turn, each keeps its own address
    for array in (a, read_only, a[2:], np.empty(0), read_only, other, read_only, other, other):
        assert address(array) == array.ctypes.data


def kernel_and_scratch(fn, n, n_inputs=1):
    step = graphc.compile(fn, backend="c")
    step.mean_and_grad(np.ones((n, n_inputs)) if n_inputs > 1 else np.ones(n))
    kernel = step._latest.batched_program("mean").function
    return step, kernel, kernel.scratch(n)


def test_the_rows_values_are_added_first_to_last_as_row_mean_adds_them():
    p = Value(1.0)
    values = np.array([1.0, 1e16, -1e16, 3.0, -0.0, 1e-300, 2.0 ** 60, 1.0, -(2.0 ** 60), 0.5, 1.0])
    _, kernel, scratch = kernel_and_scratch(lambda x: x * p, len(values))
    scratch.cols[0] = values
    value, grads = kernel.mean(scratch, np.ones(1), None, True)
    acc = values[0]
    for v in values[1:]:
        acc = acc + v
    assert value == (acc + 0.0) / len(values) == row_mean(values)
    assert acc != sum(sorted(values))  # the order shows
    zeros = np.full(len(values), -0.0)
    scratch.cols[0] = zeros
    assert np.copysign(1.0, kernel.mean(scratch, np.ones(1), None, True)[0]) == 1.0 == np.copysign(1.0, row_mean(zeros))


def test_data_with_nan_or_inf_is_refused_before_the_kernel_runs_unless_allowed():
    p = Value(2.0)
    _, kernel, scratch = kernel_and_scratch(lambda x: x[0] * p + x[1], 4, 2)
    scratch.cols[...] = 1.0
    for bad in (np.inf, -np.inf, np.nan):
        scratch.cols[1, 3] = bad
        out = np.full(1, 7.0)
        assert kernel.mean(scratch, np.ones(1), out, True) is None and out[0] == 7.0
        value, grads = kernel.mean(scratch, np.ones(1), out, False)
        assert not np.isfinite(value) and grads is out


def test_a_function_without_params_returns_an_empty_gradient():
    step = graphc.compile(lambda x: x * 3.0, backend="c")
    X = np.arange(4.0)
    for _ in range(2):
        value, grads = step.mean_and_grad(X)
        assert value == 4.5 and grads.shape == (0,)
