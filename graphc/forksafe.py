"""Locks that a forked child can take: :class:`Lock` is made anew in a child the first time
the child uses it.

``os.fork()`` copies a lock as it is, and a lock another thread of the parent held then (a
compile in progress) stays held in the child for good, where that thread does not exist:
the child's first call of that compiled function hung (an outside hunt, with a
``multiprocessing`` pool forked while a thread compiled).  A child starts with the forking
thread only, so no thread of its own can hold a lock made before the fork but that one,
which graphc never forks while holding one.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

#: How many forks deep this process is: a lock made at another depth is made anew.
_generation = [0]
#: Held while a lock is made anew, so that threads of a child racing to first take one get
#: the same new lock (made anew in the child too, where only the forking thread runs).
_renewing = threading.Lock()


def _forked() -> None:
    global _renewing
    _renewing = threading.Lock()
    _generation[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class Lock:
    """``threading.Lock()`` (or ``make()``, e.g. ``threading.RLock``) that a forked child
    makes anew: the same ``with``, ``acquire`` and ``release``."""

    __slots__ = ("_make", "_lock", "_generation")

    def __init__(self, make: Callable[[], Any] = threading.Lock) -> None:
        self._make, self._lock, self._generation = make, make(), _generation[0]

    def _current(self) -> Any:
        if self._generation != _generation[0]:
            with _renewing:
                if self._generation != _generation[0]:  # the lock first, then the generation that says it is new
                    self._lock, self._generation = self._make(), _generation[0]
        return self._lock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._current().acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self._current().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._lock.__exit__(*exc)


def RLock() -> Lock:
    """A re-entrant :class:`Lock`."""
    return Lock(threading.RLock)
