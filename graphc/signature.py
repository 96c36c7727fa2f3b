"""One argument signature's pipeline: trace, optimize, differentiate, generate, each stage cached.

A :class:`Signature` holds the optimized forward graph from the start and makes the rest
on first use, once (threads racing for a program get one): the graph re-rolled into tensor
ops, joint (forward + gradient) graphs, and the programs its backend generates.  Every
consumer -- calls, batches, ``export``, ``check_grad``, ``graphc show`` -- takes its graphs
and programs from here (through :meth:`graphc.Compiled.stages`), so all see what runs.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, NamedTuple, TypeVar

import numpy as np

from . import autodiff, forksafe, logs
from .backends import Backend, BatchedKind, Program, reached
from .engine import Value, data_epoch
from .errors import ArgumentError, DataError, GraphcError, ShapeError
from .gcpause import gc_paused
from .graph import Graph
from .nn import Module
from .passes import (DIFFERENTIABLE_VECTOR_PIPELINE, FLAT_DIFFERENTIABLE_PIPELINE, JOINT_VECTOR_PIPELINE,
                     VECTOR_PIPELINE, OptimizeReport, optimize, optimize_for_output)
from .rows_program import RowsProgram, rows_program
from .variants import trace_for_compile
from .tree import SCALAR, describe, numbers_array, plain_array


@dataclass
class CompileStats:
    """Sizes and timings of one signature's compilation (seconds)."""

    traced_nodes: int = 0
    optimized_nodes: int = 0
    joint_nodes: int = 0
    joint_optimized_nodes: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    reports: dict[str, OptimizeReport] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def __str__(self) -> str:
        times = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in self.seconds.items())
        optimized = f" -> optimized {self.optimized_nodes:,}" if self.optimized_nodes else ""  # 0: not asked for
        joint = f"forward+gradient {self.joint_nodes:,} -> {self.joint_optimized_nodes:,}; " if self.joint_nodes else ""
        return f"traced {self.traced_nodes:,} nodes{optimized}; {joint}compile {self.total_seconds:.2f} s ({times})"


class _Timer:
    def __init__(self, stats: CompileStats, stage: str) -> None:
        self.stats, self.stage = stats, stage

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        self.stats.seconds[self.stage] = self.stats.seconds.get(self.stage, 0.0) + time.perf_counter() - self.start


class ScalarKey(NamedTuple):
    """A scalar program: forward and the gradient of ``output`` (``starts``: from the grads'
    numbers, see :func:`graphc.autodiff.grad`)."""

    output: int
    wrt_inputs: bool
    starts: bool = False


class BatchedKey(NamedTuple):
    """A batched program (see :mod:`graphc.backends`)."""

    kind: BatchedKind


class JointKey(NamedTuple):
    """A joint graph; ``vector``: re-rolled into tensor ops, for the batched backends;
    ``starts``: the gradients' sums start from inputs (see :func:`graphc.autodiff.grad`)."""

    output: int
    wrt_inputs: bool
    vector: bool
    starts: bool = False


K = TypeVar("K")
V = TypeVar("V")


class _Cache(dict, Generic[K, V]):
    """A dict filled on first use, once: threads racing for a missing key make it once."""

    def __init__(self, lock: forksafe.Lock) -> None:
        super().__init__()
        self._lock = lock

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        value = self.get(key)
        if value is None:
            with self._lock:
                value = self.get(key)
                if value is None:
                    with gc_paused():  # a compile stage: big graphs, no garbage (see graphc.gcpause)
                        value = self[key] = make()
        return value


class Signature:
    """Everything compiled for one argument signature of a function."""

    def __init__(self, fn: Callable, name: str, numerics: str, backend: Backend, args: tuple,
                 description: str, frozen: Callable[[str, frozenset[str]], None],
                 shared: dict[int, int | None] | None = None, as_values: set[int] | None = None) -> None:
        self.name, self.numerics, self.backend, self.description = name, numerics, backend, description
        self.shared = shared  # Value arguments met twice, or params (graphc.signature_cache.SharedKey)
        self.stats = CompileStats()
        params = fn.parameters() if isinstance(fn, Module) else None
        with _Timer(self.stats, "trace"), gc_paused():  # the graph ends with one 0/1 output per guard
            traced, self.guards = trace_for_compile(name, fn, args, params, frozen, shared, as_values)
        self.stats.traced_nodes = len(traced)
        self._traced, self._graph = traced, None
        lock = self._lock = forksafe.RLock()
        self._rows: list[RowsProgram | None] = []  # made by the first scalar call (see rows)
        self.rows_said = False  # whether the rows log said why a call with Value arguments skips rows
        self.params: list[Value] = traced.param_values  # every pass keeps them (Builder.finish(like=))
        self._param_cache: tuple[int, np.ndarray] | None = None  # see _param_array
        self.param_tuple = tuple(self.params)
        self.params_are_leaves = not any(p._prev for p in self.params)
        self.n_outputs = len(traced.outputs)
        # the guards' outputs (after the function's; a joint graph's gradients come after them):
        # computed as traced, whatever the numerics, to decide as eager did
        self.guard_outputs = range(self.guards.n_outputs, self.n_outputs)
        self.out_tree = traced.out_tree
        self._programs: _Cache[ScalarKey | BatchedKey, Program] = _Cache(lock)
        self._one_row: _Cache[tuple[int | None, bool], Program] = _Cache(lock)
        self._joints: _Cache[JointKey, Graph] = _Cache(lock)
        self._vector: _Cache[None, Graph] = _Cache(lock)
        self._differentiable: _Cache[tuple[bool, int], Graph] = _Cache(lock)
        self.latest_source = ""

    # -- stages -------------------------------------------------------------------------

    @property
    def rows(self) -> RowsProgram | None:
        """A full-batch loss as one per-row program over a table (:mod:`graphc.rows_program`),
        which scalar calls run (the scalar graph is then optimized only when something asks
        for it); None where there are no rows.  Sought on the first scalar call: the batched
        calls never need it (0.2 s of looking at MNIST's 239,272 nodes)."""
        if not self._rows:
            with self._lock:
                if not self._rows:
                    with _Timer(self.stats, "rows"), gc_paused():
                        self._rows.append(self.backend.rows_program(
                            lambda: rows_program(self._traced, self.backend, self.numerics, self.name), self.name))
        return self._rows[0]

    @property
    def graph(self) -> Graph:
        """The optimized forward graph (made on first use)."""
        if self._graph is None:
            with self._lock:
                if self._graph is None:
                    with _Timer(self.stats, "optimize"):
                        graph, report = optimize(self._traced, report=True, numerics=self.numerics,
                                                 exact_outputs=self.guard_outputs)
                    self.stats.optimized_nodes = len(graph)
                    self._report("forward", report)
                    self._graph = graph
        return self._graph

    def vector_graph(self) -> Graph:
        """The forward graph re-rolled into tensor ops, for the batched backends."""
        return self._vector.get_or_make(None, self._reroll)

    def joint(self, output: int, wrt_inputs: bool, vector: bool = False, starts: bool = False) -> Graph:
        """The optimized forward + gradient graph of ``output`` (gradients for the inputs if
        ``wrt_inputs``, then every param; ``starts``: summed from inputs, the grads' numbers)."""
        return self._joints.get_or_make(JointKey(output, wrt_inputs, vector, starts),
                                        lambda: self._differentiate(output, wrt_inputs, vector, starts))

    def program(self, output: int, wrt_inputs: bool, starts: bool = False) -> Program:
        """The scalar program of ``joint(output, wrt_inputs, starts=starts)``."""
        program = self._programs.get((output, wrt_inputs, starts))  # the fast path: a key equals its tuple
        if program is None:
            program = self._programs.get_or_make(ScalarKey(output, wrt_inputs, starts),
                                                 lambda: self._scalar(output, wrt_inputs, starts))
        return program

    def batched_program(self, kind: BatchedKind) -> Program:
        """The backend's batched program: ``"forward"`` or ``"mean"`` (see :mod:`graphc.backends`)."""
        program = self._programs.get((kind,))  # the fast path: a key equals its tuple
        if program is None:
            program = self._programs.get_or_make(BatchedKey(kind), lambda: self.backend.batched(self, kind))
        return program

    def one_row_program(self, output: int | None, wrt_inputs: bool, starts: bool = False) -> Program:
        """What a scalar call runs on a backend that runs them on one row (C): the forward
        (``output`` None), or the gradient of ``output`` (see
        :meth:`graphc.backends.Backend.one_row_program`)."""
        return self._one_row.get_or_make((output, wrt_inputs, starts),
                                         lambda: self.backend.one_row_program(self, output, wrt_inputs, starts))

    def generated(self, what: str, make: Callable[[], tuple[Callable, str]]) -> tuple[Callable, str]:
        """``make()`` -- generate and load a program -- timed and logged as ``what``."""
        with _Timer(self.stats, "codegen+load"), gc_paused():  # writers make no garbage worth a collection
            function, source = make()
        logs.program(self.name, self.description, what, source)
        return function, source

    def run(self, program: Program) -> Callable:
        """``program``'s function, noted as the code the latest call ran."""
        self.latest_source = program.source
        return program.function

    def _reroll(self) -> Graph:
        # Exact numerics: the re-rolled graph reverse mode differentiates, merged by CSE
        # (re-rolled straight from the trace: the batched backends never pay for optimizing
        # the unrolled graph); other numerics rewrite the scalar graph first, as the Python
        # backend runs it.
        source = self._to_differentiate(True, 0) if self.numerics == "exact" else self.graph
        with _Timer(self.stats, "reroll"):
            graph, report = optimize(source, report=True, passes=VECTOR_PIPELINE)
        self._report("re-rolled forward", report)
        return graph

    def _to_differentiate(self, vector: bool, output: int) -> Graph:
        """The forward graph reverse mode differentiates for ``output`` (re-rolled if
        ``vector``): in exact numerics the traced graph with only the passes that keep the
        order of that output's gradient parts; every other pass runs on the joint graph
        instead (see :data:`graphc.passes.DIFFERENTIABLE_PIPELINE`).  Other numerics keep no
        order, and differentiate the forward graph itself."""
        return self._differentiable.get_or_make((vector, output), lambda: self._before_autodiff(vector, output))

    def _before_autodiff(self, vector: bool, output: int) -> Graph:
        if self.numerics != "exact":
            return self.vector_graph() if vector else self.graph
        passes = DIFFERENTIABLE_VECTOR_PIPELINE if vector else FLAT_DIFFERENTIABLE_PIPELINE
        with _Timer(self.stats, "reroll" if vector else "optimize"):
            graph, report = optimize_for_output(self._traced, output, passes, report=True)
        self._report(f"{'re-rolled ' if vector else ''}forward, to differentiate{f' output {output}' * bool(output)}",
                     report)
        return graph

    def _differentiate(self, output: int, wrt_inputs: bool, vector: bool, starts: bool = False) -> Graph:
        forward = self._to_differentiate(vector, output)
        with _Timer(self.stats, "autodiff"):
            raw = autodiff.grad(forward, output, wrt_inputs=wrt_inputs, starts=starts)
        with _Timer(self.stats, "optimize"):
            joint, report = optimize(raw, report=True, passes=JOINT_VECTOR_PIPELINE if vector else None,
                                     numerics=self.numerics, exact_outputs=self.guard_outputs)
        self.stats.joint_nodes, self.stats.joint_optimized_nodes = len(raw), len(joint)
        self._report(f"{'re-rolled ' if vector else ''}gradient of output {output}", report)
        return joint

    def _scalar(self, output: int, wrt_inputs: bool, starts: bool = False) -> Program:
        joint = self.joint(output, wrt_inputs, starts=starts)
        what = (f"Python, forward and gradient of output {output} "
                f"with respect to {'inputs and params' if wrt_inputs else 'params'}{', from starts' * starts}")
        function, source = self.generated(what, lambda: self.backend.scalar(joint, self.name, self.n_outputs))
        return Program(function, source, joint, reached(joint, self.n_outputs))

    def _report(self, graph: str, report: OptimizeReport) -> None:
        self.stats.reports[graph] = report
        logs.pass_report(self.name, self.description, graph, report)

    # -- arguments ----------------------------------------------------------------------

    def _param_array(self) -> np.ndarray:
        """The params' numbers as a read-only array, read from their Values again only when
        some Value's number may have been written since (:func:`graphc.engine.data_epoch`):
        39,760 reads cost about 1.5 ms, a third of a ``train`` call of 128 steps of MNIST's MLP."""
        epoch = data_epoch()  # before the reads: a write during them makes the next call read again
        cached = self._param_cache
        if cached is not None and cached[0] == epoch:
            return cached[1]
        values = np.array([p._data for p in self.params], dtype=np.float64)
        self.remember_params(values, epoch)
        return values

    def remember_params(self, values: np.ndarray, epoch: int) -> None:
        """``values`` are the params' numbers in ``epoch`` (:func:`graphc.engine.claim_writes`):
        kept, made read-only (the caller hands the array over)."""
        values.flags.writeable = False
        self._param_cache = (epoch, values)

    @functools.cached_property
    def param_ids(self) -> frozenset[int]:
        """The ids of the params' Values: whether a Value argument is one of them."""
        return frozenset(map(id, self.params))

    def param_data(self, params: Any, array: bool = False) -> list | np.ndarray:
        """The params' numbers: read from their Values, or ``params`` checked (a list, or an
        array if ``array``)."""
        if params is None:
            return self._param_array() if array else [p._data for p in self.params]
        values = _param_numbers(params)
        if values.shape != (len(self.params),):
            raise ShapeError(f"params: expected {len(self.params)} numbers (one per param, in compiled.params "
                             f"order); got shape {values.shape}")
        return values if array else values.tolist()

    def require_scalar(self, what: str) -> None:
        if self.out_tree != SCALAR:
            raise GraphcError(f"{what} needs a function returning one scalar; {self.name} returns "
                              f"{describe(self.out_tree)}")


def _param_numbers(params: Any) -> np.ndarray:
    """``params=`` as float64 numbers, refusing what would be misread: text, None, complex,
    masked entries, numbers too large for a float (a long double's 1e400, an int's 10**400)."""
    try:
        values = numbers_array(params)
    except OverflowError:
        raise DataError("params: expected numbers that fit in a float (|x| < 1.8e308)") from None
    if values is None or values.dtype.kind not in "biuf":
        dtype = "" if values is None else f" of dtype {values.dtype}"
        raise ArgumentError(f"params: expected numbers, one per param; got {type(params).__name__}{dtype}"[:200])
    if isinstance(values, np.ma.MaskedArray) or values.dtype.itemsize > 8:
        values = plain_array(values, "params")  # a mask, or a long double's 1e400 (inf as float64)
    return values if values.dtype == np.float64 else values.astype(np.float64)


class Stages:
    """What ``compile`` made for one output of a signature, stage by stage -- the one way
    in for every consumer of compiled graphs and code (``export``, ``check_grad``,
    ``graphc show``), so each sees exactly what a call runs, numerics included.

    ``graph``: the optimized forward graph; ``report``: its optimizer report; ``joint``:
    the optimized forward + gradient graph of ``output`` (gradients for every input if
    ``wrt_inputs``, then every param); ``program``: the generated Python code of ``joint``
    (its ``source`` and ``function``).  Each is made on first use and cached.
    """

    __slots__ = ("_signature", "output", "wrt_inputs")

    def __init__(self, signature: Signature, output: int, wrt_inputs: bool) -> None:
        self._signature, self.output, self.wrt_inputs = signature, output, wrt_inputs

    @property
    def graph(self) -> Graph:
        """The optimized forward graph (``Compiled.graph``)."""
        return self._signature.graph

    @property
    def report(self) -> OptimizeReport:
        """The optimizer's report on the forward graph (optimized on first use)."""
        self._signature.graph  # noqa: B018  (the batched backends re-roll the trace without it)
        return self._signature.stats.reports["forward"]

    @property
    def joint(self) -> Graph:
        """The optimized forward + gradient graph of ``output``."""
        return self._signature.joint(self.output, self.wrt_inputs)

    @property
    def program(self) -> Program:
        """The generated Python code of ``joint``: ``source`` and ``function`` (a generator
        function: ``next`` gives the outputs, ``send(seed)`` then the gradients)."""
        return self._signature.program(self.output, self.wrt_inputs)
