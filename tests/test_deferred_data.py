"""``train``'s write-back deferred to the next read or write of any Value's number: nobody
sees an old number, writes keep their order, and the slot comes back once they are done."""
from __future__ import annotations

import inspect
import random
import sys
import threading

import numpy as np
import pytest

import graphc
from graphc import deferred_data
from graphc.engine import Value
from graphc.nn import MLP


@pytest.fixture(autouse=True)
def nothing_left_deferred():
    yield
    deferred_data.flush()
    assert Value.__dict__["_data"] is deferred_data._SLOT


def values(n: int) -> list[Value]:
    return [Value(float(k)) for k in range(n)]


def test_a_read_of_any_value_writes_the_deferred_numbers_first_and_puts_the_slot_back():
    vs, other = values(5), Value(-1.0)
    deferred_data.defer(vs, np.arange(5) + 0.5)
    assert Value.__dict__["_data"] is not deferred_data._SLOT
    assert other.data == -1.0  # any Value's read: every deferred number is written
    assert Value.__dict__["_data"] is deferred_data._SLOT
    assert [v.data for v in vs] == [0.5, 1.5, 2.5, 3.5, 4.5]


@pytest.mark.parametrize("touch", ["data", "_data", "arithmetic", "new value", "repr"])
def test_every_way_of_reading_a_number_sees_the_deferred_one(touch):
    vs = values(3)
    deferred_data.defer(vs, np.array([7.0, 8.0, 9.0]))
    seen = {"data": lambda: vs[1].data,
            "_data": lambda: vs[1]._data,
            "arithmetic": lambda: (vs[1] + 0.0).data,
            "new value": lambda: (Value(0.0), vs[1]._data)[1],
            "repr": lambda: float(repr(vs[1]).split("=")[1].split(",")[0])}
    assert seen[touch]() == 8.0


def test_a_write_after_the_deferral_wins_and_raises_the_write_flag():
    vs = values(3)
    deferred_data.defer(vs, np.array([7.0, 8.0, 9.0]))
    before = graphc.engine.data_epoch()
    vs[0].data = 100.0
    assert [v.data for v in vs] == [100.0, 8.0, 9.0]
    assert graphc.engine.data_epoch() != before


def test_later_deferrals_win_where_they_overlap_and_the_same_sequence_is_replaced():
    vs = values(4)
    first, second = vs[:3], vs[1:]
    deferred_data.defer(first, np.array([10.0, 11.0, 12.0]))
    deferred_data.defer(second, np.array([21.0, 22.0, 23.0]))
    deferred_data.defer(first, np.array([30.0, 31.0, 32.0]))  # replaces the first, now the last
    assert len(deferred_data._pending) == 2
    assert [v.data for v in vs] == [30.0, 31.0, 32.0, 23.0]


def test_an_interrupted_write_is_done_again_on_the_next_read():
    class InterruptOnce(np.ndarray):
        calls = 0

        def tolist(self):
            InterruptOnce.calls += 1
            if InterruptOnce.calls == 1:
                raise KeyboardInterrupt
            return super().tolist()
    vs = values(3)
    deferred_data.defer(vs, np.array([4.0, 5.0, 6.0]).view(InterruptOnce))
    with pytest.raises(KeyboardInterrupt):
        vs[0].data
    assert Value.__dict__["_data"] is not deferred_data._SLOT  # still deferred
    assert [v.data for v in vs] == [4.0, 5.0, 6.0]


def test_a_read_in_the_middle_of_the_writes_sees_every_deferred_number():
    """A signal handler reading a Value while the numbers are being written (here: the
    sequence's iterator reads one halfway) writes them all first."""
    seen, reading = [], []

    class ReadHalfway(list):
        def __iter__(self):
            for k, v in enumerate(list.__iter__(self)):
                if k == len(self) // 2 and not reading:
                    reading.append(True)  # once: the read's own writes iterate again
                    seen.append(self[-1].data)
                yield v
    vs = ReadHalfway(values(10))
    deferred_data.defer(vs, np.arange(10) + 0.5)
    assert vs[0].data == 0.5
    assert seen == [9.5] and [v.data for v in vs] == (np.arange(10) + 0.5).tolist()


def interrupt_at(code, line: int):
    """A trace function raising KeyboardInterrupt when ``code`` reaches ``line``."""
    def local(frame, event, arg):
        if event == "line" and frame.f_lineno == line:
            raise KeyboardInterrupt
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code is code else None
    return tracer


def body_lines(function) -> list[int]:
    import dis
    lines = {i.positions.lineno for i in dis.get_instructions(function) if i.positions and i.positions.lineno}
    return sorted(lines - {function.__code__.co_firstlineno})


@pytest.mark.parametrize("line", body_lines(deferred_data.defer))
def test_an_interrupt_anywhere_in_defer_keeps_the_numbers_deferred_before(line):
    vs = values(4)
    deferred_data.defer(vs, np.array([1.0, 2.0, 3.0, 4.0]))
    sys.settrace(interrupt_at(deferred_data.defer.__code__, line))
    try:
        deferred_data.defer(vs, np.array([5.0, 6.0, 7.0, 8.0]))
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    assert [v.data for v in vs] in ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0])


@pytest.mark.parametrize("line", [-2, -1, 0])  # the lines of train from new_epoch() to claim_writes()
def test_an_interrupt_as_train_hands_over_its_numbers_leaves_no_cache_out_of_step(line):
    """Whatever train's interrupted end left in the Values, the compiled calls that read
    params from them compute with the same numbers."""
    from graphc import batches
    random.seed(4)
    model = MLP(2, [3, 1])
    step = graphc.compile(lambda x, t: (model(x) - t) ** 2)
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(8, 2)), rng.normal(size=8)
    step.train(X, y, lr=0.1)
    source, first = inspect.getsourcelines(batches.train)
    claim = first + next(k for k, text in enumerate(source) if "claim_writes(" in text)
    sys.settrace(interrupt_at(batches.train.__code__, claim + line))
    try:
        step.train(X, y, lr=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    loss, _ = step.mean_and_grad(X, y)
    assert loss == step.mean_and_grad(X, y, params=np.array([p.data for p in step.params]))[0]


def test_with_other_threads_alive_the_numbers_are_written_before_the_slot_comes_back():
    vs = values(1000)
    stop = threading.Event()
    reads = []

    def reader():
        while not stop.is_set():
            reads.append(vs[-1].data)
    deferred_data.defer(vs, np.arange(1000) + 0.25)
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert vs[0].data == 0.25
    finally:
        stop.set()
        thread.join()
    assert set(reads) <= {999.25}
    assert [v.data for v in vs] == (np.arange(1000) + 0.25).tolist()


def test_train_leaves_its_numbers_deferred_and_they_match_an_eager_write_back():
    random.seed(3)
    model = MLP(3, [4, 1])
    backend = "c" if graphc.codegen.c.find_compiler() is not None else "numpy"
    step = graphc.compile(lambda x, t: (model(x) - t) ** 2, backend=backend)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    step.train(X, y, lr=0.1, batch_size=5)
    after_one = [p.data for p in step.params]
    step.train(X, y, lr=0.1, batch_size=5)
    step.train(X, y, lr=0.1, batch_size=5)  # two calls without a read in between
    assert Value.__dict__["_data"] is not deferred_data._SLOT
    params = np.array(after_one)
    for _ in range(2):
        for start in range(0, 20, 5):
            _, grad = step.mean_and_grad(X[start:start + 5], y[start:start + 5], params=params)
            params = params - 0.1 * grad
    assert [p.data for p in step.params] == params.tolist()
