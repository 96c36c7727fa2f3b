"""``gc_paused()``: Python's cyclic garbage collector off while graphc builds big graphs.

Tracing creates one GC-tracked Value per node and the passes build lists of operand
tuples, none of them garbage; every collection meanwhile scans them all for nothing.
Measured (``bench/compile.py`` sizes): it made tracing 10^5 nodes 2x and 3x10^5 nodes
2.6x slower -- tracing time grew faster than the graph -- and the passes ~9% slower.
Reference counting still frees everything as usual.
"""
from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

_lock = threading.Lock()
_pausers = 0
_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The collector off for the duration.  Nested and concurrent uses keep it off until
    the last one ends, which leaves it as the first one found it."""
    global _pausers, _was_enabled
    with _lock:
        if _pausers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _lock:
            _pausers -= 1
            if _pausers == 0 and _was_enabled:
                gc.enable()
