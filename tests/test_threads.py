"""Compiled functions called from several threads: traces race, results stay right."""
from __future__ import annotations

import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import graphc
from graphc import Value
from graphc.traced import TracedNumber
from graphc.compile import BACKENDS
from graphc.nn import MLP
from conftest import rel_err


@pytest.fixture(autouse=True)
def frequent_switches():
    """Switch threads every microsecond (default 5 ms) so that races have a chance to happen."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def run_together(n: int, work):
    """``work(k)`` in n threads that start at once; the results in order (exceptions re-raised)."""
    barrier = threading.Barrier(n)

    def start(k):
        barrier.wait()
        return work(k)
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(start, range(n)))


def test_values_made_in_another_thread_during_a_trace_stay_plain_values():
    # Regression: tracing swapped the class of *every* new Value process-wide, so a parameter
    # made in another thread meanwhile was a TracedValue, and a later trace took it for a
    # constant: its gradient was silently never computed.
    inside, release = threading.Event(), threading.Event()

    def slow(x):
        inside.set()
        release.wait(10)
        return x * 2.0
    tracer = threading.Thread(target=graphc.compile(slow), args=(1.0,))
    tracer.start()
    inside.wait(10)
    p = Value(3.0)  # made here while the other thread is inside its trace
    h = p * 1.0
    release.set()
    tracer.join()
    assert type(p) is Value and type(h) is Value
    out = graphc.compile(lambda x: x * p)(2.0)
    out.backward()
    assert p.grad == 2.0


def test_first_calls_racing_trace_once_and_agree():
    p = Value(0.5)
    compiled = graphc.compile(lambda x, y: (x * p + y).tanh())
    results = run_together(8, lambda k: compiled(0.1 * k, 1.0).data)
    assert compiled.trace_count == 1
    assert results == [(Value(0.1 * k) * p + 1.0).tanh().data for k in range(8)]


def test_threads_taking_branches_at_once_trace_each_branch_once():
    """Regression (a review's probes): threads whose calls all failed the known variants'
    guards each traced their branch, one after another, though an earlier one had just
    traced it; 8 threads on 4 branches reached the cap of 8 programs in 3 of 5 runs."""
    def branches(x):
        if x.data > 1:
            return x.tanh()
        if x.data > 0:
            return x * x
        return x.exp() if x.data > -1 else -x
    for trial in range(3):
        compiled = graphc.compile(branches, backend="python")

        def work(k):
            rng = random.Random(100 * trial + k)
            points = [rng.uniform(-3, 3) for _ in range(100)]
            return all(compiled(v).data == branches(Value(v)).data for v in points)
        assert all(run_together(8, work)) and compiled.trace_count == 4


def test_different_signatures_from_many_threads():
    p = Value(1.5)
    compiled = graphc.compile(lambda xs: sum((x * p for x in xs), Value(0.0)))
    sizes = [1 + k % 4 for k in range(12)]
    results = run_together(12, lambda k: compiled([1.0] * sizes[k]).data)
    assert results == [1.5 * n for n in sizes]
    assert compiled.trace_count == 4 == len(compiled._signatures)


def test_concurrent_traces_give_traced_numbers_only_in_the_tracing_thread():
    other_done = threading.Event()
    seen = {}

    def reads_data(x):
        y = x * 2.0
        other_done.wait(10)  # the other thread reads eager .data while this one traces
        seen["tracing"] = type(y.data)
        return y

    def eager_reader():
        seen["eager"] = type((Value(1.0) * 3.0).data)
        other_done.set()
    tracer = threading.Thread(target=graphc.compile(reads_data), args=(1.0,))
    tracer.start()
    eager_reader()
    tracer.join()
    assert seen == {"tracing": TracedNumber, "eager": float}


def test_data_stays_traced_until_the_last_tracing_thread_ends():
    """``Value.data`` is a plain C getter only while no thread traces: one trace ending while
    another runs leaves the other's reads traced."""
    from graphc import engine
    from graphc.guards import Record
    from graphc.trace import TracedValue
    p = Value(1.5)
    entered, first_done = threading.Event(), threading.Event()
    seen = {}

    def second():
        with engine.tracing(TracedValue, Record()):
            entered.set()
            first_done.wait(10)
            seen["second, after the first ended"] = type(p.data)
    thread = threading.Thread(target=second)
    with engine.tracing(TracedValue, Record()):
        thread.start()
        entered.wait(10)
    first_done.set()
    thread.join()
    assert seen == {"second, after the first ended": TracedNumber}
    assert Value.__dict__["data"] is engine._PLAIN_DATA and type(p.data) is float


@pytest.mark.parametrize("backend", BACKENDS)
def test_map_and_mean_from_many_threads_match_one_thread(backend):
    random.seed(2)
    model = MLP(3, [4, 1])
    compiled = graphc.compile(lambda x, y: (model(x) - y) ** 2, backend=backend)
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(5 + k, 3)), rng.normal(size=5 + k)) for k in range(8)]
    expected = [(compiled.map(X, y), compiled.mean(X, y).data) for X, y in batches]
    fresh = graphc.compile(compiled.fn, backend=backend)
    got = run_together(8, lambda k: (fresh.map(*batches[k]), fresh.mean(*batches[k]).data))
    assert fresh.trace_count == 1
    for (m1, v1), (m2, v2) in zip(expected, got):
        assert np.array_equal(m1, m2) and v1 == v2


def test_backward_into_per_thread_models():
    """Each thread builds its own model -- while other threads trace -- compiles its loss
    and backpropagates; every gradient equals the single-threaded eager one."""
    def train(k):
        rng = random.Random(k)
        model = MLP(2, [3, 1])
        for p in model.parameters():
            p.data = rng.uniform(-1, 1)
        step = graphc.compile(lambda x, y: (model(x) - y) ** 2)
        x, y = [0.3 * k, -0.2], 0.5
        loss = step(x, y)
        model.zero_grad()
        loss.backward()
        got = [p.grad for p in model.parameters()]
        model.zero_grad()
        eager = (model([Value(v) for v in x]) - y) ** 2
        eager.backward()
        return loss.data, eager.data, got, [p.grad for p in model.parameters()]
    for value, eager_value, got, want in run_together(8, train):
        assert value == eager_value
        assert got and max(rel_err(a, b) for a, b in zip(got, want)) == 0.0


def test_first_backwards_of_another_output_race_to_generate_its_code():
    """Output 1's gradient code is generated at its first backward(); threads racing there
    get one program and each its own, correct gradient (per-thread Values as arguments)."""
    p = Value(0.5)
    compiled = graphc.compile(lambda x: [x * p, (x * p).tanh() * x])

    def work(k):
        x = Value(0.1 * (k + 1))
        out = compiled(x)[1]
        out.backward()
        eager_x = Value(0.1 * (k + 1))
        ((eager_x * p).tanh() * eager_x).backward()
        return x.grad, eager_x.grad
    results = run_together(8, work)
    assert all(a == b for a, b in results)
    # one program from zeroed grads; and, where a thread's backward found p.grad holding another
    # thread's gradient, one whose sums start from the .grads
    keys = sorted(tuple(key) for key in compiled._latest._programs if key[:1] == (1,))
    assert keys in ([(1, True, False)], [(1, True, False), (1, True, True)])


def test_traces_in_different_threads_run_at_the_same_time():
    """Both traced functions wait for each other inside their traces: with one global
    tracing lock (as before) this would time out."""
    both_inside = threading.Barrier(2, timeout=10)

    def make(k):
        q = Value(float(k + 1))

        def fn(x):
            both_inside.wait()
            return x * q
        return graphc.compile(fn)
    compiled = [make(0), make(1)]
    results = run_together(2, lambda k: compiled[k](3.0).data)
    assert results == [3.0, 6.0]
