"""The per-row program of :mod:`graphc.rows_program` as one object: the rows' values, and
the param gradients of the rows added in the scalar program's order.

Two questions, one interface: ``row_sums(cols, params, seed, starts)`` -> each chain's
per-row values added first row to last from its start, every row's values of the row's
other outputs (nodes read outside the row), and what the call computed, which a maker may
reuse; and ``gradients(cols, params, seed, first, computed)`` -> each param's
``first`` plus its rows' gradients (each row's seeded with ``seed``) added last row first,
one at a time.

* :class:`GeneratedRows`, any batched backend (NumPy): one generated function computes the
  values and every row's gradients at once (with a guessed seed: the gradient reuses them
  when the guess was right); the additions with NumPy.
* :class:`NativeRows`, the C backend: a forward kernel that sums the rows' values itself
  (from each chain's start, in row order: only the other outputs' leave C), and a gradient
  kernel that sums its rows itself (:mod:`graphc.codegen.c_sums`, resuming from
  ``first``), on the rows in reverse order -- so each param's sum is the one sequential
  chain of ``acc = acc + g`` the scalar program adds, in C doubles (the toolchain never
  reassociates at ``numerics="exact"``), and the layer ops' row blocks do the work
  (``gc_bouter_add``) instead of writing every row's gradients out.
* :class:`NativeRowsWritten`, the C backend when two params share a gradient node (a sum
  each, from two starts, but one accumulator): the kernel writes every row's gradients,
  and a loop in C compiled with it adds them, eight params' chains side by side.

The C kernels are built *outlined* (:data:`graphc.codegen.c_toolchain.OUTLINED_FLAGS`): a
Python loop calls them once a step, so one copy of each layer kernel, built sooner, costs
the step nothing measurable.  The first call's kernels -- the rows' values and gradient and
the outer graph's (:class:`NativeOuter`) -- are one library (:func:`rows_and_outer`) where
that keeps each one's optimization level.
"""
from __future__ import annotations

import abc
import math
from typing import Callable, NamedTuple

import numpy as np

from .backends import Backend
from .codegen import python as python_backend
from .codegen.c_call import address
from .codegen.c_runtime import PRELUDE
from .codegen.c_toolchain import load, optimization_level
from .codegen.c_writer import generate_kernel
from .codegen.common import batched_nodes
from .errors import GraphcError
from .graph import Graph

_ADD_ROWS = """
static void FREE_NAME_block(const double *g, const double *first, long n, double *out)
{
    double a0 = first[0], a1 = first[1], a2 = first[2], a3 = first[3];
    double a4 = first[4], a5 = first[5], a6 = first[6], a7 = first[7];
    for (long r = n - 1; r >= 0; r--) {
        a0 = a0 + g[r]; a1 = a1 + g[n + r]; a2 = a2 + g[2 * n + r]; a3 = a3 + g[3 * n + r];
        a4 = a4 + g[4 * n + r]; a5 = a5 + g[5 * n + r]; a6 = a6 + g[6 * n + r]; a7 = a7 + g[7 * n + r];
    }
    out[0] = a0; out[1] = a1; out[2] = a2; out[3] = a3; out[4] = a4; out[5] = a5; out[6] = a6; out[7] = a7;
}

void FREE_NAME(const double *per_row, const double *first, double unused, long n, double *unused_too, double *out)
{
    (void)unused; (void)unused_too;
    long k = 0;
    for (; k + GC_BLOCK <= N_GRADS; k += GC_BLOCK)
        FREE_NAME_block(per_row + (OFFSET + k) * n, first + k, n, out + k);
    for (; k < N_GRADS; k++) {
        const double *g = per_row + (OFFSET + k) * n;
        double acc = first[k];
        for (long r = n - 1; r >= 0; r--) acc = acc + g[r];
        out[k] = acc;
    }
}
"""


def _add_rows_source(n_grads: int, offset: int) -> str:
    return _ADD_ROWS.replace("GC_BLOCK", "8").replace("N_GRADS", str(n_grads)).replace("OFFSET", str(offset))


def row_kernel(backend: Backend, forward: Graph, joint: Graph, name: str, n_forward: int,
               n_sums: int) -> "GeneratedRows | NativeRows | NativeRowsWritten":
    """The per-row program of ``joint`` (``n_forward`` per-row values -- the first ``n_sums``
    summed over the rows -- then param gradients; its last input the seed) on ``backend``;
    ``forward`` its per-row values alone."""
    if not backend.native_kernels:
        return GeneratedRows(backend, joint, name, n_forward)
    if _shares_a_gradient(joint, n_forward):
        return NativeRowsWritten(joint, name, n_forward)
    return NativeRows(forward, joint, name, n_forward, n_sums)


def _shares_a_gradient(joint: Graph, n_forward: int) -> bool:
    """Whether two params' gradients are one node that varies across rows (one the same in
    every row is summed by a loop of its own per param: :mod:`graphc.codegen.c_sums`)."""
    varies = batched_nodes(joint, {joint.inputs[-1]})
    grads = [o for o in joint.outputs[n_forward:] if varies[o]]
    return len(set(grads)) < len(grads)


def outer_function(backend: Backend, joint: Graph, name: str, n_forward: int) -> tuple[Callable, str]:
    """The outer graph's forward and gradient (``joint``, its last input the seed) as a
    generator function and its source: in C on the C backend, else Python (a NumPy program
    of one row would pay NumPy's call overhead on every scalar op)."""
    if backend.native_kernels:
        outer = NativeOuter(kernel_text(joint, name), n_forward)
        return outer, outer.source
    return python_backend.compile_graph(joint, name, seed=joint.inputs[-1], n_forward=n_forward)


def rows_and_outer(backend: Backend, forward: Graph, joint: Graph, name: str, n_forward: int, n_sums: int,
                   outer_joint: Graph, outer_name: str, n_outer_forward: int) -> tuple:
    """:func:`row_kernel` and :func:`outer_function` at once: the first call of a full-batch
    loss needs both, and on C they are one library where the per-row kernels are
    (:class:`NativeRows`) -- one run of the compiler, one prelude to read -- so the outer
    function's source is then in the kernel's and comes back empty."""
    if not backend.native_kernels or _shares_a_gradient(joint, n_forward):
        return row_kernel(backend, forward, joint, name, n_forward, n_sums), \
            outer_function(backend, outer_joint, outer_name, n_outer_forward)
    outer_text = kernel_text(outer_joint, outer_name)
    kernel = NativeRows(forward, joint, name, n_forward, n_sums, also=outer_text)
    if kernel.holds_also:
        return kernel, (NativeOuter(outer_text, n_outer_forward, library=kernel.source), "")
    outer = NativeOuter(outer_text, n_outer_forward)
    return kernel, (outer, outer.source)


def _start(start: float | None) -> float:
    """The number a chain's sum starts from in C: -0.0 where nothing comes first (-0.0 + x
    is x, bit for bit, for every x)."""
    return -0.0 if start is None else start


def sum_in_order(values: np.ndarray, start: float | None) -> float:
    """``values`` added first to last onto ``start`` (None: onto nothing), one at a time."""
    return float(np.add.accumulate(np.concatenate(([_start(start)], values)))[-1])


class _WrittenRows(abc.ABC):
    """A per-row program that writes every row's gradients (with the values, seeded with a
    guess) and adds them afterwards: ``values`` and ``add`` are the maker's (``n_forward``
    per-row values before the gradients)."""

    n_forward: int

    def row_sums(self, cols: np.ndarray, params: np.ndarray, seed: float,
                 starts: tuple) -> tuple[list[float], np.ndarray, tuple[np.ndarray, float]]:
        """Each chain's row sum, the other outputs' values by row, and the values with every
        row's gradients (seeded with ``seed``), for :meth:`gradients` to reuse."""
        per_row = self.values(cols, params, seed)
        return [sum_in_order(per_row[j], start) for j, start in enumerate(starts)], \
            per_row[len(starts):self.n_forward], (per_row, seed)

    @abc.abstractmethod
    def values(self, cols: np.ndarray, params: np.ndarray, seed: float) -> np.ndarray:
        """The per-row values, then every row's gradients seeded with ``seed``."""

    @abc.abstractmethod
    def add(self, per_row: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Each param's ``first`` plus its line of ``per_row`` (after the values), last row first."""

    def gradients(self, cols: np.ndarray, params: np.ndarray, seed: float, first: np.ndarray,
                  computed: tuple[np.ndarray, float] | None) -> np.ndarray:
        """``computed``: (what :meth:`values` gave, its seed), reused if that seed is ``seed``."""
        per_row = computed[0] if computed is not None and same(computed[1], seed) else self.values(cols, params, seed)
        return self.add(per_row, first)


class GeneratedRows(_WrittenRows):
    """The backend's own batched function of the per-row program."""

    def __init__(self, backend: Backend, joint: Graph, name: str, n_forward: int) -> None:
        self.function, self.source = backend.generate(joint, name, seed=joint.inputs[-1])
        self.n_forward = n_forward

    def values(self, cols: np.ndarray, params: np.ndarray, seed: float) -> np.ndarray:
        with np.errstate(all="ignore"):
            per_row, _ = self.function(cols, params, seed, cols.shape[1])
        return np.asarray(per_row, dtype=np.float64)

    def add(self, per_row: np.ndarray, first: np.ndarray) -> np.ndarray:
        return add_rows(per_row[self.n_forward:], first)


class KernelText(NamedTuple):
    """A graph's C kernel as generated: the whole ``source``, its ``function`` alone (without
    the header and prelude: a second kernel for the same library), its ``entry`` point, and
    the arrays it takes and gives."""

    source: str
    function: str
    entry: str
    n_inputs: int
    n_outputs: int
    n_sums: int
    free_name: str
    resuming: bool


def kernel_text(joint: Graph, name: str, *, seeded: bool = True, reduced: frozenset[int] = frozenset(),
                resuming: bool = False) -> KernelText:
    """The C kernel of ``joint`` (``seeded``: its last input the seed); ``reduced`` outputs
    summed over the rows (``resuming``: from the numbers of the ``sums`` array passed, see
    :mod:`graphc.codegen.c_sums`)."""
    (source, entry, n_outputs, n_sums), _, free_name = generate_kernel(
        joint, name, seed=joint.inputs[-1] if seeded else None, reduced=reduced, resuming=resuming)
    function = source[source.index(PRELUDE) + len(PRELUDE):]
    return KernelText(source, function, entry, len(joint.inputs) - seeded, n_outputs, n_sums, free_name, resuming)


class NativeKernel:
    """The kernel ``text`` describes, loaded from the library ``source`` builds (its own
    source, or one holding other functions too), called directly on arrays it writes into."""

    def __init__(self, text: KernelText, source: str | None = None) -> None:
        self.source = text.source if source is None else source
        self.n_outputs, self.n_inputs, self.n_sums = text.n_outputs, text.n_inputs, text.n_sums
        self.resuming = text.resuming
        self._kernel = load(self.source, text.entry, outlined=True)
        self._sums = np.empty(max(text.n_sums, 1))
        self._sums_at = self._sums.ctypes.data
        self._fixed: tuple = (None, 0)  # the read-only columns of the latest call, and their address

    def run(self, cols: np.ndarray, params: np.ndarray, seed: float, sums: np.ndarray | None = None) -> np.ndarray:
        """The (n_outputs, n_rows) values of the kernel on ``cols`` (n_inputs, n_rows);
        ``sums`` (C-contiguous float64, n_sums long), where the sums go, if there are any."""
        n = cols.shape[1]
        fixed, at = self._fixed
        if cols is not fixed:  # the table's columns are one read-only array, called with again and again
            cols = np.ascontiguousarray(cols, dtype=np.float64)
            at = address(cols)
            if not cols.flags.writeable:
                self._fixed = (cols, at)
        params = np.ascontiguousarray(params, dtype=np.float64)
        if cols.shape[0] != self.n_inputs or params.ndim != 1:  # the kernel reads raw memory
            raise GraphcError(f"the rows' C kernel takes {self.n_inputs} columns and a vector of params; got "
                              f"{cols.shape} and {params.shape} (a graphc bug)")
        if (sums is None and self.resuming) or \
                (sums is not None and (sums.shape != (self.n_sums,) or not sums.flags.c_contiguous)):
            raise GraphcError(f"the C kernel sums into {self.n_sums} numbers{' it starts from' * self.resuming}; "
                              f"got {None if sums is None else sums.shape} (a graphc bug)")
        per_row = np.empty((self.n_outputs, n))
        self._kernel(at, address(params), seed, n, address(per_row), self._sums_at if sums is None else address(sums))
        return per_row


class NativeRows:
    """The per-row values by one C kernel, the gradients by another, which sums the rows it
    is given in reverse onto ``first`` (module docstring)."""

    def __init__(self, forward: Graph, joint: Graph, name: str, n_forward: int, n_sums: int,
                 also: KernelText | None = None) -> None:
        """``also``: another kernel to build into the library where that keeps every kernel's
        optimization level (``holds_also`` says whether it was)."""
        gradients = kernel_text(joint, name, reduced=frozenset(range(n_forward, len(joint.outputs))), resuming=True)
        values = kernel_text(forward, f"{name}_values", seeded=False, reduced=frozenset(range(n_sums)), resuming=True)
        together = gradients.source + "\n" + values.function
        level = optimization_level(together)
        one_library = level == optimization_level(gradients.source) == optimization_level(values.source)
        self.holds_also = also is not None and one_library and \
            optimization_level(together + "\n" + also.function) == level == optimization_level(also.source)
        if self.holds_also:
            together += "\n" + also.function
        if one_library:
            self.source = together  # one library: one build, optimized as each would be alone
            self._gradients, self._values = NativeKernel(gradients, together), NativeKernel(values, together)
        else:
            self.source = gradients.source + "\n" + values.source
            self._gradients, self._values = NativeKernel(gradients), NativeKernel(values)
        self._reversed: tuple = (None, None)  # read-only columns, and their rows in reverse order

    def row_sums(self, cols: np.ndarray, params: np.ndarray, seed: float,
                 starts: tuple) -> tuple[list[float], np.ndarray, None]:
        sums = np.array([_start(start) for start in starts], dtype=np.float64)
        values = self._values.run(cols, params, 0.0, sums)
        return sums.tolist(), values, None

    def gradients(self, cols: np.ndarray, params: np.ndarray, seed: float, first: np.ndarray,
                  computed: None) -> np.ndarray:
        known, backwards = self._reversed
        if cols is not known:
            backwards = np.ascontiguousarray(cols[:, ::-1], dtype=np.float64)
            if not cols.flags.writeable:  # the table's columns, the same every call
                backwards.flags.writeable = False
                self._reversed = (cols, backwards)
        sums = np.array(first, dtype=np.float64)  # a copy, C-contiguous: the kernel adds onto it
        self._gradients.run(backwards, params, seed, sums)
        return sums


class NativeRowsWritten(_WrittenRows):
    """The C kernel writing every row's gradients, and its additions in C (module docstring)."""

    def __init__(self, joint: Graph, name: str, n_forward: int) -> None:
        n_grads = len(joint.outputs) - n_forward
        text = kernel_text(joint, name)
        self.source = text.source + _add_rows_source(n_grads, n_forward).replace("FREE_NAME", text.free_name)
        self._kernel, self.n_grads, self.n_forward = NativeKernel(text, self.source), n_grads, n_forward
        self._add = load(self.source, text.free_name, outlined=True)

    def values(self, cols: np.ndarray, params: np.ndarray, seed: float) -> np.ndarray:
        return self._kernel.run(cols, params, seed)

    def add(self, per_row: np.ndarray, first: np.ndarray) -> np.ndarray:
        first = np.ascontiguousarray(first, dtype=np.float64)
        out = np.empty(self.n_grads)
        self._add(address(per_row), address(first), 0.0, per_row.shape[1], None, address(out))
        return out


class NativeOuter:
    """The outer graph's forward and gradient in C, as a batch of one row, called as the
    Python backend's generator function is: ``frame = outer(inputs, params)``, then
    ``next(frame)`` gives the outputs and ``frame.send(seed)`` the gradients.  The kernel
    computes both at once, with the last seed seen (a loss's ``backward()`` seeds 1.0 every
    time), and runs again only for another seed."""

    takes_arrays = True  # params as a float64 array

    def __init__(self, text: KernelText, n_forward: int, library: str | None = None) -> None:
        """``library``: the source of a library holding the kernel among others (default: its own)."""
        self.kernel = NativeKernel(text, library)
        self.source, self.n_forward = self.kernel.source, n_forward
        self.guess = 1.0

    def __call__(self, inputs: list[float], params: np.ndarray) -> "_NativeFrame":
        return _NativeFrame(self, np.array(inputs, dtype=np.float64).reshape(-1, 1), params)


class _NativeFrame:
    __slots__ = ("outer", "cols", "params", "seed", "result")

    def __init__(self, outer: NativeOuter, cols: np.ndarray, params: np.ndarray) -> None:
        self.outer, self.cols, self.params, self.seed = outer, cols, params, outer.guess

    def __next__(self) -> list[float]:
        self.result = self.outer.kernel.run(self.cols, self.params, self.seed)[:, 0]
        return self.result[:self.outer.n_forward].tolist()

    def send(self, seed: float) -> np.ndarray:
        if not same(seed, self.seed):
            self.seed = self.outer.guess = seed
            self.result = self.outer.kernel.run(self.cols, self.params, seed)[:, 0]
        return self.result[self.outer.n_forward:]

    def close(self) -> None:
        """Nothing to release (a generator's ``close``)."""


def same(a: float, b: float) -> bool:
    """Equal bit for bit (nan never: it is recomputed)."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


#: From this many params on, rows are added a row at a time (one NumPy call per row) rather
#: than by one strided accumulation (about 5 ns per number): measured even at about 200.
WIDE = 200


def add_rows(rows: np.ndarray, first: np.ndarray) -> np.ndarray:
    """For each param (a line of ``rows``, one column per row), ``first`` plus the rows' values
    added last row first, one at a time (tests/test_rows.py checks this against a loop, -0.0
    included).  Both ways add elementwise in row order: a row at a time into a vector, or
    by accumulating over axis 0 of a C-ordered array, which adds whole lines in order
    (NumPy's pairwise summation only runs along the contiguous axis, so there are always at
    least two columns; a reduction would start from +0.0 and lose a -0.0)."""
    n_params, n_rows = rows.shape
    if n_params >= WIDE:
        acc = np.array(first, dtype=np.float64)
        for line in np.ascontiguousarray(rows.T[::-1]):
            acc += line
        return acc
    acc = np.zeros((n_rows + 1, max(n_params, 2)))
    acc[0, :n_params] = first
    acc[1:, :n_params] = rows[:, ::-1].T
    return np.add.accumulate(acc, axis=0, out=acc)[-1, :n_params]
