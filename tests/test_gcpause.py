"""gc_paused: the collector off while graphs are built, and left as it was found."""
from __future__ import annotations

import gc
import threading

import pytest

import graphc
from graphc.gcpause import gc_paused
from graphc.passes import dce


@pytest.fixture(params=[True, False], ids=["enabled", "disabled"])
def collector(request):
    (gc.enable if request.param else gc.disable)()
    yield request.param
    gc.enable()


def test_nested_and_failing_uses_leave_the_collector_as_found(collector):
    with pytest.raises(KeyError):
        with gc_paused():
            with gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the inner one ending does not switch it back on
            raise KeyError("x")
    assert gc.isenabled() == collector


def test_concurrent_uses_keep_it_off_until_the_last_ends(collector):
    inside, release = threading.Barrier(2), threading.Event()

    def hold():
        with gc_paused():
            inside.wait()
            release.wait()

    worker = threading.Thread(target=hold)
    worker.start()
    with gc_paused():
        inside.wait()
    assert not gc.isenabled()  # the worker is still inside
    release.set()
    worker.join()
    assert gc.isenabled() == collector


def test_optimize_runs_its_passes_with_the_collector_off(collector):
    seen = []

    def watching(graph):
        seen.append(gc.isenabled())
        return dce(graph)

    graphc.optimize(graphc.trace(lambda x: x * 2.0 + 0.0, 1.0), passes=(watching,))
    assert seen and not any(seen) and gc.isenabled() == collector


def test_a_block_entered_as_another_exits_leaves_the_collector_as_found(collector, monkeypatch):
    """Another thread entering just after the last block's token left, before that block
    switched the collector back on, read it off and left it off for good (an outside hunt,
    1 in 20,000 races): here the other block enters from inside that discard."""
    from graphc import gcpause
    other, hook = gc_paused(), [True]

    class Entering(set):
        def discard(self, token):
            super().discard(token)
            if hook and not self:
                hook.pop()
                other.__enter__()
    monkeypatch.setattr(gcpause, "_open", Entering())
    with gc_paused():
        pass
    assert not gc.isenabled()  # the other block is open
    other.__exit__()
    assert gc.isenabled() == collector
