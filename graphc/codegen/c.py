"""C backend: a (re-rolled) per-sample graph as one C99 function with the batch loop inside.

Three parts, each a module: the writer (:mod:`.c_writer`, the source text, with the body
for blocks of rows from :mod:`.c_blocks`), its runtime (:mod:`.c_runtime`, the prelude of
helpers and each op's spelling with them) and the toolchain (:mod:`.c_toolchain`, compiler, flags, build into :mod:`.c_cache`, loading).
This module joins them into a callable with the batched backends' one calling convention,
and names what the rest of graphc uses of them.
"""
from __future__ import annotations

from typing import Callable

from ..graph import Graph
from .c_call import Kernel
from .c_runtime import PRELUDE
from .c_toolchain import MAX_STATEMENTS, OPT_LIMIT, TooLarge, build, find_compiler, load, optimization_level, symbol
from .c_train import Driver
from .c_writer import RESERVED, WRITER_NAMES, generate, generate_kernel

__all__ = ["MAX_STATEMENTS", "OPT_LIMIT", "PRELUDE", "RESERVED", "TooLarge", "WRITER_NAMES", "build", "compile_graph",
           "find_compiler", "generate", "load", "optimization_level"]


def compile_graph(graph: Graph, name: str, *, seed: int | None = None, reduced: frozenset[int] = frozenset(),
                  free_layout: bool = False, numerics: str = "exact") -> tuple[Callable, str]:
    """Generate, build and load: the C function for ``graph`` and its source.

    The function has the NumPy backend's convention, ``f(inputs, params, [seed,] n) ->
    (per_row arrays, sums)``: ``params`` a list or a float64 array (of any layout: see
    :func:`.c_call.c_arrays`), the sums returned as a list or an array likewise; with a
    ``seed``, a :class:`.c_call.Kernel`, which also takes ``out=`` (a float64 array the
    gradient is written into, returned as the sums) and has a fast call on scratch buffers.
    ``free_layout`` (for a mean program: ``reduced`` all of its outputs but the first):
    the kernel reads params in a layout of its own (:mod:`.c_layout`), reached by one
    permutation per call -- none when it equals ``graph.params`` order -- and the library
    also exports the step entry the training driver (:mod:`.c_train`) runs, as ``function.driver``.
    ``numerics="fast"`` builds it with :data:`~graphc.codegen.c_toolchain.FAST_FLAGS`.
    """
    (source, entry, n_rows, n_sums), kernel_layout, step_entry = generate_kernel(
        graph, name, seed=seed, reduced=reduced, free_layout=free_layout)
    shape = (len(graph.inputs) - (seed is not None), len(graph.params))
    function = load(source, entry, fast=numerics == "fast")
    kernel = Kernel(function, entry, shape, n_rows, n_sums, kernel_layout)
    if seed is None:
        def run(inputs, params, n):
            return kernel(inputs, params, 0.0, n)
        run.__doc__ = kernel.__doc__
    else:
        run = kernel
    if free_layout:
        run.driver = Driver(symbol(source, step_entry, fast=numerics == "fast"), *shape, may_step=numerics != "fast")
        run.layout = kernel_layout
    return run, source

