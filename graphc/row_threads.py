"""``threads=``: a batch's rows split across threads, the partial results combined in a fixed order.

The batched programs (the C kernel, the NumPy program) are pure functions of their
arrays, and ctypes and NumPy's loops release the GIL, so contiguous slices of the rows
run at once on several cores.  Each row's values are the numbers one call gives (a row is
computed alone), so ``map`` and the mean's value are bit for bit those of one thread --
but for ``numerics="fast"``, where a row may round differently in a slice: NumPy's layer
is one BLAS product over the call's rows, and BLAS picks its method by their count; C
contracts and reassociates its blocks of rows and its one-row loop differently.
Sums over rows are not: each thread adds its own rows' gradients, and the partial sums
are then added in slice order -- deterministic for a given ``threads``, but not equal to
one thread's sum in the last bits (README, "Exactness").
"""
from __future__ import annotations

import numbers
import os
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable

import numpy as np

from . import forksafe
from .errors import ArgumentError


def check_threads(threads: Any) -> int:
    """``threads=`` as a count of threads: None is one; else a positive int."""
    if threads is None:
        return 1
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise ArgumentError(f"threads must be a positive int (or None for one); got {type(threads).__name__}")
    if threads < 1:
        raise ArgumentError(f"threads must be a positive int (or None for one); got {threads}")
    return int(threads)


def slices(n: int, threads: int) -> list[slice]:
    """``n`` rows as at most ``threads`` contiguous slices of near-equal size, in order."""
    count = max(1, min(threads, n))
    bounds = [n * k // count for k in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def over_slices(work: Callable[[slice], Any], n: int, threads: int) -> list:
    """``work`` on each of :func:`slices`, at once, the results in slice order."""
    return run([lambda s=s: work(s) for s in slices(n, threads)])


def run(jobs: list[Callable[[], Any]]) -> list:
    """Each job's result, in order: the first runs in this thread, the others at once in
    the pool's (the first to raise, in order, raises here once all have finished)."""
    if len(jobs) == 1:
        return [jobs[0]()]
    with _lock:  # submitted before any other call can replace the pool (see _pool)
        pool = _pool(len(jobs) - 1)
        futures = [pool.submit(job) for job in jobs[1:]]
    try:
        first = jobs[0]()
    finally:
        wait(futures)
    return [first] + [f.result() for f in futures]


#: The names of the pool's threads start so: they run graphc's programs only, and draw no
#: random numbers (the random-draw check of a trace leaves them out, graphc.guards._alone).
THREAD_PREFIX = "graphc-rows"


def _pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool of at least ``workers`` threads (the caller holds ``_lock``):
    started on first use and kept (starting threads on every call would cost more than a
    small batch's work); replaced by a larger one when more threads are asked for, so one
    pool's idle threads are all there ever are -- the old one finishes the jobs it was
    given.  A forked child starts its own: the parent's threads do not exist in it."""
    pool, size = _current
    if size < workers:
        _current[:] = [ThreadPoolExecutor(workers, thread_name_prefix=THREAD_PREFIX), workers]
        if pool is not None:
            pool.shutdown(wait=False)
    return _current[0]


def _forget_pool() -> None:
    """In a forked child: the pool's threads stayed in the parent."""
    _current[:] = [None, 0]


_current: list = [None, 0]  # the pool and its number of threads
_lock = forksafe.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def added_in_order(partials: list) -> list | np.ndarray:
    """The partial gradient sums added first to last (a list if the first is one)."""
    total = np.array(partials[0], dtype=np.float64)
    for part in partials[1:]:
        total += np.asarray(part, dtype=np.float64)
    return total.tolist() if isinstance(partials[0], list) else total
