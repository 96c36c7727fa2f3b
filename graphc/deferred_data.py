"""Numbers handed to Values later: ``train``'s write-back of the params, deferred until some
Value's number is next read or written.

A native ``train`` call leaves the params' new numbers in an array.  Writing them into their
Values (39,760 floats for MLP(784, [50, 10])) costs about 1.5 ms: as much as 200 rows of
training, and 40% of a per-sample SGD epoch of 128 rows.  A loop of ``train`` calls never
reads them from the Values (the signature keeps the array, see
:meth:`graphc.signature.Signature.remember_params`), so :func:`defer` only notes them and
puts a property in place of the ``_data`` slot on :class:`~graphc.engine.Value`.  The first
read or write of any Value's number through it writes every deferred number, then puts the
slot back: reads cost nothing extra while nothing is deferred, and no one sees an old number.
"""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from .engine import Value

_SLOT = Value.__dict__["_data"]  # the slot's own descriptor: reads and writes at C speed
_store = _SLOT.__set__
_pending: dict[int, tuple[Sequence[Value], np.ndarray]] = {}  # id(values) -> (values, numbers)
_lock = threading.RLock()


def defer(values: Sequence[Value], numbers: np.ndarray) -> None:
    """``values[k]._data = numbers[k]`` for every k, done when any Value's number is next read
    or written.  ``numbers`` is handed over: never written again.  A later call for the same
    ``values`` (the same sequence object) replaces this one."""
    with _lock:
        _pending.pop(id(values), None)  # re-inserted last: later writes win where sequences overlap
        _pending[id(values)] = (values, numbers)
        Value._data = _WRITE_FIRST


def flush() -> None:
    """Write every deferred number now (in the order they were deferred), and put the slot back."""
    with _lock:
        if not _pending:
            return
        # With one thread, the slot goes back first and the loop stores through it (1.1 ms for
        # 39,760 numbers).  With more, another thread must not read through the slot before
        # the loop ends, so the property stays until then and the loop stores through the
        # slot's descriptor (2.6 ms).
        alone = threading.active_count() == 1
        if alone:
            Value._data = _SLOT
        try:
            while _pending:
                key = next(iter(_pending))
                values, numbers = _pending[key]
                if alone:
                    for v, x in zip(values, numbers.tolist()):
                        v._data = x
                else:
                    for v, x in zip(values, numbers.tolist()):
                        _store(v, x)
                _pending.pop(key, None)
        except BaseException:  # a KeyboardInterrupt mid-loop: the next read writes them all again
            if _pending:
                Value._data = _WRITE_FIRST
            raise
        Value._data = _SLOT


def _read(v: Value) -> float:
    flush()
    return _SLOT.__get__(v, type(v))


def _write(v: Value, x: float) -> None:
    flush()
    _store(v, x)


_WRITE_FIRST = property(_read, _write, doc="A Value's number, once the deferred numbers are written.")
