"""``gc_paused()``: Python's cyclic garbage collector off while graphc builds big graphs.

Tracing creates one GC-tracked Value per node and the passes build lists of operand
tuples, none of them garbage; every collection meanwhile scans them all for nothing.
Measured (``bench/compile.py`` sizes): it made tracing 10^5 nodes 2x and 3x10^5 nodes
2.6x slower -- tracing time grew faster than the graph -- and the passes ~9% slower.
Reference counting still frees everything as usual.
"""
from __future__ import annotations

import gc
import os
from typing import Any

#: Tokens of the ``gc_paused`` blocks now open, in any thread.  A set and not a counter under
#: a lock: adding and discarding a token is atomic under the GIL and idempotent, so no
#: interrupt can leave a lock held or a count off by one (a lock's ``with`` block can be
#: interrupted just before its release: bpo-29988).
_open: set[object] = set()
#: Markers of the blocks now exiting, in any thread: from just before a block's token leaves
#: ``_open`` until it has turned the collector back on.  A block entered meanwhile finds the
#: collector off for the one exiting, not as the user left it, and keeps ``_enable_after``
#: (it read False there, and the collector stayed off for good: an outside hunt).
_exiting: set[object] = set()
_enable_after = [False]


class gc_paused:
    """``with gc_paused():`` -- the collector off for the duration.  Nested and concurrent
    uses keep it off until the last one ends, which leaves it as the first one found it.
    Interrupt-safe: if entering fails part-way, what was done is undone."""

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token = None  # exiting a block never entered changes nothing

    def __enter__(self) -> "gc_paused":
        token = self._token = object()
        try:
            if not _open and not _exiting:
                _enable_after[0] = gc.isenabled()
            _open.add(token)
            gc.disable()
            return self
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: Any) -> None:
        token, self._token = self._token, None  # once: a collector turned off later stays off
        if token is None:
            return
        _exiting.add(token)
        try:
            _open.discard(token)
            if not _open and _enable_after[0]:
                gc.enable()
        finally:
            _exiting.discard(token)

    def __del__(self) -> None:
        """The last resort: an interrupt that lands as ``__exit__`` is called, before its first
        line (bpo-29988), skips it; the collector comes back when the block is dropped."""
        if getattr(self, "_token", None) is not None:  # (an __init__ cut short set nothing)
            self.__exit__()


def _forked() -> None:
    """In a forked child: the blocks other threads of the parent had open never end here,
    and the collector stayed off in it for good (an outside hunt)."""
    if _open or _exiting:
        _open.clear()
        _exiting.clear()
        if _enable_after[0]:
            gc.enable()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
