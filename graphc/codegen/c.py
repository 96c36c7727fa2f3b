"""C backend: a (re-rolled) per-sample graph as one C99 function with the batch loop inside.

Three parts, each a module: the writer (:mod:`.c_writer`, the source text), its runtime
(:mod:`.c_runtime`, the prelude of helpers and each op's spelling with them) and the
toolchain (:mod:`.c_toolchain`, compiler, flags, build into :mod:`.c_cache`, loading).
This module joins them into a callable with the batched backends' one calling convention,
and names what the rest of graphc uses of them.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import GraphcError
from ..graph import Graph
from .c_runtime import PRELUDE
from .c_toolchain import OPT_LIMIT, build, find_compiler, load, optimization_level
from .c_train import Driver, driver_source
from .c_writer import RESERVED, WRITER_NAMES, generate, generate_kernel

__all__ = ["OPT_LIMIT", "PRELUDE", "RESERVED", "WRITER_NAMES", "build", "compile_graph", "find_compiler",
           "generate", "load", "optimization_level"]


def compile_graph(graph: Graph, name: str, *, seed: int | None = None, reduced: frozenset[int] = frozenset(),
                  free_layout: bool = False, numerics: str = "exact") -> tuple[Callable, str]:
    """Generate, build and load: the C function for ``graph`` and its source.

    The function has the NumPy backend's convention, ``f(inputs, params, [seed,] n) ->
    (per_row arrays, sums)``: ``params`` a list or a float64 array (of any layout: see
    :func:`_c_arrays`), the sums returned as a list or an array likewise; a mean program
    also takes ``out=`` (a float64 array the gradient is written into, returned as the sums).
    ``free_layout`` (for a mean program: ``reduced`` all of its outputs but the first):
    the kernel reads params in a layout of its own (:mod:`.c_layout`), reached by one
    permutation per call -- none when it equals ``graph.params`` order -- and the source
    also holds the training driver (:mod:`.c_train`), as ``function.driver``.
    ``numerics="fast"`` builds it with :data:`~graphc.codegen.c_toolchain.FAST_FLAGS`.
    """
    (source, entry, n_rows, n_sums), kernel_layout, driver = generate_kernel(
        graph, name, seed=seed, reduced=reduced, free_layout=free_layout)
    shape = (len(graph.inputs) - (seed is not None), len(graph.params))
    if free_layout:
        source += driver_source(entry, driver, shape[0], shape[1])
    function = load(source, entry, fast=numerics == "fast")
    perm = None if kernel_layout.identity else kernel_layout.perm

    def call(inputs, params, seed: float, n: int, out: np.ndarray | None = None) -> tuple[list, list | np.ndarray]:
        as_list = not isinstance(params, np.ndarray) and out is None
        inputs, params = _c_arrays(inputs, params, n, shape)
        if perm is not None:
            params = params.take(perm)
        elif out is not None and np.shares_memory(out, params):
            params = params.copy()  # the kernel reads params while it writes the sums
        per_row = np.empty((n_rows, n))
        sums = out if out is not None and perm is None else np.empty(n_sums)
        function(inputs.ctypes.data, params.ctypes.data, seed, n, per_row.ctypes.data, sums.ctypes.data)
        if perm is not None:
            if out is None:
                out = np.empty(n_sums)
            out[perm] = sums
            sums = out
        return list(per_row), sums.tolist() if as_list else sums

    if seed is None:
        def run(inputs, params, n):
            return call(inputs, params, 0.0, n)
    else:
        run = call
    run.__doc__ = f"{entry} in C: see the generated source"
    if free_layout:
        run.driver = Driver(load(source, driver, fast=numerics == "fast"), shape[0], shape[1])
        run.layout = kernel_layout
    return run, source


def _c_arrays(inputs, params, n: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``inputs`` and ``params`` as the C function reads them: C-contiguous float64 arrays of
    exactly the expected sizes.  A strided, reversed or transposed view, or a list, is copied:
    the C code indexes raw memory, so it must never see a layout it does not expect."""
    inputs = np.ascontiguousarray(inputs, dtype=np.float64)
    params = np.ascontiguousarray(params, dtype=np.float64)
    if inputs.shape != (shape[0], n) or params.shape != (shape[1],):
        raise GraphcError(f"the C function takes inputs of shape {(shape[0], n)} and {shape[1]} params; "
                          f"got {inputs.shape} and {params.shape} (a graphc bug)")
    return inputs, params
