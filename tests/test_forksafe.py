"""graphc.forksafe, and a child forked while another thread compiles (an outside hunt)."""
from __future__ import annotations

import gc
import os
import threading
import time

import pytest

import graphc
from graphc import forksafe
from conftest import in_forked_child, run_in_threads

pytestmark = [pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="needs os.fork"),
              pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")]


def test_a_lock_another_thread_holds_is_free_in_a_forked_child():
    lock, held, release = forksafe.RLock(), threading.Event(), threading.Event()

    def hold():
        with lock:
            held.set()
            release.wait(30)
    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(30)
    try:
        assert in_forked_child(lambda: lock.acquire(timeout=5))
        assert not lock.acquire(blocking=False)  # still the holder's here
    finally:
        release.set()
        holder.join()


def test_threads_of_a_child_first_taking_a_lock_at_once_share_its_new_lock():
    """Each thread racing to make a lock anew in a child made its own, and the lock excluded
    no one (a review: four threads inside at once)."""
    def slowly_made():
        time.sleep(0.002)
        return threading.Lock()
    lock = forksafe.Lock(slowly_made)

    def child() -> bool:
        inside, most, errors = [0], [0], []

        def work():
            try:
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                    time.sleep(0.002)
                    inside[0] -= 1
            except BaseException as error:
                errors.append(error)
        run_in_threads(work, 4)
        return most[0] == 1 and not errors

    assert in_forked_child(child)


def test_a_child_forked_while_a_thread_traces_compiles_and_collects():
    """The child's first call of the function hung on the signature cache's lock, and its
    garbage collector stayed off (the tracing thread's pause never ended there)."""
    tracing, release = threading.Event(), threading.Event()

    def slow(x):
        tracing.set()
        release.wait(30)
        return x * 2.0
    compiled = graphc.compile(slow, backend="python")
    tracer = threading.Thread(target=compiled, args=(1.0,))
    tracer.start()
    tracing.wait(30)
    try:
        def child() -> bool:
            release.set()  # this child's own trace of slow goes through
            return gc.isenabled() and compiled(3.0).data == 6.0

        assert in_forked_child(child)
    finally:
        release.set()
        tracer.join()
    assert gc.isenabled()
