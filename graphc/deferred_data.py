"""Numbers handed to Values later: ``train``'s write-back of the params, deferred until some
Value's number is next read or written.

A native ``train`` call leaves the params' new numbers in an array.  Writing them into their
Values (39,760 floats for MLP(784, [50, 10])) costs about 1.5 ms: as much as 200 rows of
training, and 40% of a per-sample SGD epoch of 128 rows.  A loop of ``train`` calls never
reads them from the Values (the signature keeps the array, see
:meth:`graphc.signature.Signature.remember_params`), so :func:`defer` only notes them and
puts a property in place of the ``_data`` slot on :class:`~graphc.engine.Value`.  The first
read or write of any Value's number through it writes every deferred number, then puts the
slot back: reads cost nothing extra while nothing is deferred.  While the numbers are being
written the property stays, so another thread's read waits for them, and a signal handler's
read in this thread writes them all first.  Until then the deferred numbers keep their
Values alive.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from . import forksafe
from .engine import Value

_SLOT = getattr(Value, "_data_slot", None) or Value.__dict__["_data"]  # the slot's own descriptor
Value._data_slot = _SLOT  # the same slot under a name the property never takes: writes at C speed
_order = itertools.count()
_pending: dict[int, tuple[int, Sequence[Value], np.ndarray]] = {}  # id(values) -> (order, values, numbers)
_lock = forksafe.RLock()


def defer(values: Sequence[Value], numbers: np.ndarray) -> None:
    """``values[k]._data = numbers[k]`` for every k, done when any Value's number is next read
    or written.  ``numbers`` is handed over: never written again.  A later call for the same
    ``values`` (the same sequence object) replaces this one; where sequences overlap, the
    later call's numbers win."""
    key, entry = id(values), (next(_order), values, numbers)
    with _lock:
        # two stores with no call between them: a KeyboardInterrupt comes before both or after both
        Value._data = _WRITE_FIRST
        _pending[key] = entry


def flush() -> None:
    """Write every deferred number now, in the order they were deferred, and put the slot back."""
    with _lock:
        while _pending:
            key = min(_pending, key=lambda k: _pending[k][0])
            _, values, numbers = _pending[key]
            for v, x in zip(values, numbers.tolist()):
                v._data_slot = x
            _pending.pop(key, None)  # after the writes: an interrupted loop is done again in full
        Value._data = _SLOT


def _read(v: Value) -> float:
    flush()
    return v._data_slot


def _write(v: Value, x: float) -> None:
    flush()
    v._data_slot = x


_WRITE_FIRST = property(_read, _write, doc="A Value's number, once the deferred numbers are written.")
