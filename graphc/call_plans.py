"""Repeated ``mean_and_grad`` and ``mean`` calls of one shape, without their fixed costs.

A training loop calls ``mean_and_grad(X, y, params=...)`` with arrays of the same shapes
step after step.  The general way (:mod:`graphc.batches`) checks and converts every
argument, builds the argument signature, looks it up and allocates its arrays on every
call: microseconds of Python and NumPy, more than the C kernel of a small network takes
on a hundred rows.  The first call of a shape that succeeds leaves a :class:`CallPlan`:
the signature and program it ran, and per thread the scratch buffers of its kernel
(:class:`graphc.codegen.c_call.Scratch`).  The next calls of those shapes only copy the
data into them and make one C call.

Only the common case takes this path: every argument a float64 ``numpy.ndarray`` (not a
subclass), ``params`` None or a float64 array of one entry per param, ``out`` None or a
writable C-contiguous float64 array of that size, on a backend whose mean program has a
fast call (C).  Anything else -- and data the kernel finds nan or inf in -- goes the
general way, which checks everything again and raises its clear errors: a plan never
raises one of its own, nor changes a number.  Arrays are not trusted from one call to the
next (they are mutable): only their shapes are, and the data is copied and checked anew.
"""
from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from . import forksafe
from .backends import Program
from .signature import Signature
from .signature_cache import SignatureCache

_F64 = np.dtype(np.float64)

#: Plans a compiled function keeps (one per argument shapes); the oldest goes first.
MAX_PLANS = 8
#: Data of at most this many numbers gets a plan.  Its scratch buffers stay allocated (per
#: thread) as long as the plan; a bigger batch's kernel time dwarfs the fixed costs anyway.
MAX_VALUES = 1 << 18


def shapes_key(args: tuple) -> tuple | None:
    """The arguments' shapes, if every one is a float64 ndarray; else None (no plan)."""
    shapes = []
    for arg in args:
        if type(arg) is not np.ndarray or arg.dtype is not _F64:
            return None
        shapes.append(arg.shape)
    return tuple(shapes)


class CallPlan:
    """What a successful call with these argument shapes found: its signature and mean
    program, and per thread the kernel's scratch buffers with a view of their data columns
    for each argument."""

    def __init__(self, signatures: SignatureCache, signature: Signature, program: Program, shapes: tuple) -> None:
        self.signatures, self.signature, self.program, self.shapes = signatures, signature, program, shapes
        self.traces = signatures.trace_count
        self.kernel = program.function
        self.n, self.n_params = shapes[0][0], len(signature.params)
        perm = self.kernel.perm
        self.kernel_values = tuple(signature.params) if perm is None else \
            tuple(signature.params[k] for k in perm.tolist())
        self._local = threading.local()

    def mean_and_grad(self, args: tuple, params: Any, out: Any, allow_nonfinite: bool
                      ) -> tuple[float, np.ndarray] | None:
        """``Compiled.mean_and_grad``'s result, or None where the general way must answer."""
        if self.signatures.trace_count != self.traces or not self._usable_out(out):
            return None
        if params is None:
            return self._run(args, self._values(), out, allow_nonfinite, True)
        if type(params) is not np.ndarray or params.dtype is not _F64 or params.shape != (self.n_params,):
            return None
        return self._run(args, params, out, allow_nonfinite, False)

    def mean(self, args: tuple, allow_nonfinite: bool) -> tuple[float, np.ndarray] | None:
        """The mean and its gradient for ``Compiled.mean``, the params read from their
        Values; None where the general way must answer."""
        if self.signatures.trace_count != self.traces:
            return None
        return self._run(args, self._values(), None, allow_nonfinite, True)

    def _values(self) -> np.ndarray:
        """The params' numbers, read from their Values in the kernel's order."""
        return np.array([p._data for p in self.kernel_values], dtype=np.float64)

    def _usable_out(self, out: Any) -> bool:
        return out is None or (type(out) is np.ndarray and out.dtype is _F64 and out.shape == (self.n_params,)
                               and out.flags.c_contiguous and out.flags.writeable)

    def _run(self, args: tuple, params: np.ndarray, out: np.ndarray | None, allow_nonfinite: bool,
             kernel_order: bool) -> tuple[float, np.ndarray] | None:
        scratch, views = self._scratch()
        for view, arg in zip(views, args):
            view[...] = arg
        result = self.kernel.mean(scratch, params, out, not allow_nonfinite, kernel_order)
        if result is not None:  # as the general way's lookup and run note them
            self.signatures.latest = self.signature
            self.signature.latest_source = self.program.source
        return result

    def _scratch(self) -> tuple[Any, list[np.ndarray]]:
        """This thread's scratch buffers and the arguments' views of their data columns,
        made on its first call."""
        state = getattr(self._local, "state", None)
        if state is None:
            scratch = self.kernel.scratch(self.n)
            state = self._local.state = (scratch, column_views(scratch.cols, self.shapes))
        return state


def column_views(cols: np.ndarray, shapes: tuple) -> list[np.ndarray]:
    """For each argument shape (N, ...), the view of ``cols`` (one line per scalar input, N
    columns) that the argument fills as :class:`graphc.batches.Batch` lays it out: the
    argument's element ``[r, i...]`` is ``cols[row + flat(i...), r]``.  Each is a reshape
    of a contiguous block (never a copy) with the rows axis moved first."""
    views, row = [], 0
    for shape in shapes:
        width = math.prod(shape[1:])
        block = cols[row:row + width].reshape(shape[1:] + (shape[0],))
        views.append(np.moveaxis(block, -1, 0))
        row += width
    return views


class Plans:
    """A compiled function's call plans, by argument shapes (at most :data:`MAX_PLANS`)."""

    def __init__(self) -> None:
        self._plans: dict[tuple, CallPlan] = {}
        self._lock = forksafe.Lock()

    def find(self, args: tuple) -> CallPlan | None:
        key = shapes_key(args)
        return None if key is None else self._plans.get(key)

    def learn(self, args: tuple, signatures: SignatureCache, signature: Signature) -> None:
        """After a call on ``args`` succeeded the general way: a plan for their shapes, if
        they are all float64 ndarrays of at most :data:`MAX_VALUES` numbers, the backend's
        mean program has a fast call, and no plan for them is current."""
        key = shapes_key(args)
        if key is None or sum(math.prod(shape) for shape in key) > MAX_VALUES or self._current(key, signature):
            return
        program = signature.batched_program("mean")
        if not hasattr(program.function, "scratch"):
            return
        plan = CallPlan(signatures, signature, program, key)
        with self._lock:
            self._plans.pop(key, None)
            while len(self._plans) >= MAX_PLANS:
                del self._plans[next(iter(self._plans))]
            self._plans[key] = plan

    def _current(self, key: tuple, signature: Signature) -> bool:
        known = self._plans.get(key)
        return known is not None and known.signature is signature and known.traces == known.signatures.trace_count
