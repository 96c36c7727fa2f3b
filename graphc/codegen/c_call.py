"""Calling a loaded C kernel from Python: the general call, and the fast call that
``mean_and_grad`` repeats.

:class:`Kernel` is what :func:`graphc.codegen.c.compile_graph` returns for a program with a
seed: called with the batched backends' convention, ``kernel(inputs, params, seed, n,
out=None)``, it takes any arrays and lists, copying what the C code could misread.  That
costs microseconds a call (array checks, allocations, ``.ctypes.data``), more than the
kernel of a small network on a hundred rows.  So a mean program also has a fast call for
callers that repeat one shape of call (:mod:`graphc.call_plans`): the data goes into one
thread's :class:`Scratch` buffers, whose addresses are taken once, and one C helper
(:data:`HELPER`, built once with the exact flags) checks the data is finite, runs the
kernel and adds up the rows' values -- one ctypes call, no NumPy reduction, no
``np.errstate``.
"""
from __future__ import annotations

import ctypes
import functools
from typing import Callable

import numpy as np

from ..errors import GraphcError
from .c_layout import ParamLayout
from .c_toolchain import load

#: The fast call's C side.  The rows' values are added first to last from the first, as
#: :func:`graphc.batches.row_mean` adds them (``np.add.accumulate``); it is built with the
#: exact flags whatever the kernel's numerics, so that sum is never reassociated.
HELPER = r"""/* graphc.codegen.c_call: one mean call on a thread's scratch buffers */
#include <math.h>

typedef void (*gc_kernel)(const double *, const double *, double, long, double *, double *);

typedef struct {
    gc_kernel kernel;
    const double *cols, *params;
    double *per_row, *sums;
    long n, n_values, check, finite;
    double scale, total;
} gc_call;

void gc_mean_call(gc_call *c)
{
    c->finite = 1;
    for (long i = 0; c->check && i < c->n_values; i++)
        if (!isfinite(c->cols[i])) {
            c->finite = 0;
            return;
        }
    c->kernel(c->cols, c->params, c->scale, c->n, c->per_row, c->sums);
    double acc = c->per_row[0];
    for (long r = 1; r < c->n; r++) acc = acc + c->per_row[r];
    c->total = acc;
}
"""


class _Frame(ctypes.Structure):
    """``gc_call`` of :data:`HELPER`: one thread's pointers, sizes and results."""

    _fields_ = [("kernel", ctypes.c_void_p), ("cols", ctypes.c_void_p), ("params", ctypes.c_void_p),
                ("per_row", ctypes.c_void_p), ("sums", ctypes.c_void_p), ("n", ctypes.c_long),
                ("n_values", ctypes.c_long), ("check", ctypes.c_long), ("finite", ctypes.c_long),
                ("scale", ctypes.c_double), ("total", ctypes.c_double)]


@functools.lru_cache(maxsize=None)
def _helper() -> Callable[[int], None]:
    """:data:`HELPER`'s function, built (or taken from the cache) on first use."""
    function = load(HELPER, "gc_mean_call")
    return ctypes.CFUNCTYPE(None, ctypes.c_void_p)(ctypes.cast(function, ctypes.c_void_p).value)


#: The read-only array :func:`address` was last asked about, and its address (held, so the
#: array lives and its data stays where it is): the params' cached array, read by each kernel
#: of a call (three in a full-batch loss's forward and backward).
_last_read_only: tuple = (None, 0)


def address(array: np.ndarray) -> int:
    """Where a C-contiguous array's data starts: through the buffer protocol when it is
    writable (much faster than ``array.ctypes.data``, which builds a ctypes object), else
    ``array.ctypes.data``, kept for the next call on the same array."""
    global _last_read_only
    if array.flags.writeable and array.nbytes:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))
    last, at = _last_read_only
    if array is not last:
        at = array.ctypes.data
        _last_read_only = (array, at)
    return at


class Scratch:
    """One thread's buffers for fast calls on ``n`` rows: ``cols`` (the data, one line per
    scalar input, for the caller to fill), the params and gradients in the kernel layout,
    the per-row values, the helper's frame pointing at them, and the helper (built here on
    first use)."""

    def __init__(self, kernel: Kernel, n: int) -> None:
        self.n = n
        self.cols = np.empty((kernel.shape[0], n))
        self.params = np.empty(kernel.shape[1] or 1)
        self.per_row = np.empty((kernel.n_rows, n))
        self.sums = np.empty(kernel.n_sums or 1)
        self.params_at, self.sums_at = self.params.ctypes.data, self.sums.ctypes.data
        self.frame = _Frame(kernel.at, self.cols.ctypes.data, self.params_at, self.per_row.ctypes.data,
                            self.sums_at, n, self.cols.size, 1, 1, 1.0 / n, 0.0)
        self.frame_at = ctypes.addressof(self.frame)
        self.call = _helper()


class Kernel:
    """A loaded C kernel, called as the batched backends' functions are (see
    :func:`graphc.codegen.c.compile_graph`); a mean program's also fast on scratch buffers
    (:meth:`scratch`, :meth:`mean`)."""

    def __init__(self, function: Callable, entry: str, shape: tuple[int, int], n_rows: int, n_sums: int,
                 layout: ParamLayout) -> None:
        self.function, self.shape, self.n_rows, self.n_sums = function, shape, n_rows, n_sums
        self.perm = None if layout.identity else layout.perm
        self.moves = None if self.perm is None else layout.moves
        self.at = ctypes.cast(function, ctypes.c_void_p).value
        self.__doc__ = f"{entry} in C: see the generated source"

    def __call__(self, inputs, params, seed: float, n: int, out: np.ndarray | None = None
                 ) -> tuple[list, list | np.ndarray]:
        """The kernel on any arrays: ``params`` a list or a float64 array (the sums come back
        likewise), ``out`` a float64 array the sums are written into."""
        as_list = not isinstance(params, np.ndarray) and out is None
        inputs, params = c_arrays(inputs, params, n, self.shape)
        perm = self.perm
        if perm is not None:
            kernel_params = np.empty(len(perm))
            self.moves.gather(params, kernel_params)
            params = kernel_params
        elif out is not None and np.shares_memory(out, params):
            params = params.copy()  # the kernel reads params while it writes the sums
        per_row = np.empty((self.n_rows, n))
        sums = out if out is not None and perm is None else np.empty(self.n_sums)
        self.function(address(inputs), address(params), seed, n, address(per_row), address(sums))
        if perm is not None:
            if out is None:
                out = np.empty(self.n_sums)
            self.moves.scatter(sums, out)
            sums = out
        return list(per_row), sums.tolist() if as_list else sums

    def scratch(self, n: int) -> Scratch:
        """New buffers for fast calls on ``n`` rows (one thread's: see :meth:`mean`)."""
        return Scratch(self, n)

    def mean(self, scratch: Scratch, params: np.ndarray, out: np.ndarray | None, check: bool,
             kernel_order: bool = False) -> tuple[float, np.ndarray] | None:
        """The mean of the per-row values over the rows in ``scratch.cols`` (filled by the
        caller) and its gradient, the rows seeded with ``1 / n``; None, computing nothing,
        if ``check`` and the data holds nan or inf.  ``params``: a float64 vector in public
        order (any strides), or in the kernel's if ``kernel_order`` (then C-contiguous);
        ``out``: None or a writable C-contiguous float64 array for the gradient.  A
        scratch serves one thread: its buffers are written in place."""
        frame, perm = scratch.frame, self.perm
        frame.params = self._params_at(scratch, params, out, kernel_order)
        grads = out if out is not None else np.empty(self.n_sums)
        frame.sums = scratch.sums_at if perm is not None else address(grads)
        frame.check = check
        scratch.call(scratch.frame_at)
        if not frame.finite:
            return None
        if perm is not None:
            self.moves.scatter(scratch.sums, grads)
        return (frame.total + 0.0) / scratch.n, grads

    def _params_at(self, scratch: Scratch, params: np.ndarray, out: np.ndarray | None, kernel_order: bool) -> int:
        """Where the kernel reads the params: the caller's array where it is already in the
        kernel layout (C-contiguous, not overlapping ``out``), else a copy in scratch."""
        if self.perm is not None and not kernel_order:
            self.moves.gather(params, scratch.params)
            return scratch.params_at
        if params.flags.c_contiguous:
            at = address(params)
            if out is None or not _overlap(at, out, params.nbytes):
                return at
        scratch.params[...] = params  # not empty: an empty array is C-contiguous
        return scratch.params_at


def _overlap(at: int, out: np.ndarray, nbytes: int) -> bool:
    """Whether ``nbytes`` from ``at`` and the C-contiguous ``out`` share any memory."""
    start = address(out)
    return at < start + out.nbytes and start < at + nbytes


def c_arrays(inputs, params, n: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``inputs`` and ``params`` as the C function reads them: C-contiguous float64 arrays of
    exactly the expected sizes.  A strided, reversed or transposed view, or a list, is copied:
    the C code indexes raw memory, so it must never see a layout it does not expect."""
    inputs = np.ascontiguousarray(inputs, dtype=np.float64)
    params = np.ascontiguousarray(params, dtype=np.float64)
    if inputs.shape != (shape[0], n) or params.shape != (shape[1],):
        raise GraphcError(f"the C function takes inputs of shape {(shape[0], n)} and {shape[1]} params; "
                          f"got {inputs.shape} and {params.shape} (a graphc bug)")
    return inputs, params
