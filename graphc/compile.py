"""``graphc.compile``: trace once per argument signature, optimize, differentiate, generate.

A call of a :class:`Compiled` function returns ordinary Values.  Each output is one node
in the eager graph whose children are the Value arguments and the params, and whose
local derivative is the generated gradient code; so ``loss.backward()`` works as in
micrograd, composes with eager Values (``compiled(x) + l2``), and accumulates into every
param's ``.grad``.

The Python backend runs forward and backward in one generator frame: the call runs it up
to its ``yield`` (the forward part), ``backward()`` resumes it with the seed.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import autodiff
from .codegen import python as python_backend
from .engine import Value, _node
from .errors import ArgumentError, GraphcError
from .graph import Graph
from .nn import Module
from .passes import OptimizeReport, optimize
from .trace import argument_names, function_name, trace
from .tree import describe, flatten_args, unflatten

log = logging.getLogger("graphc.compile")

BACKENDS = ("python",)


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
        return (f"traced {self.traced_nodes:,} nodes -> optimized {self.optimized_nodes:,}; "
                f"forward+gradient {self.joint_nodes:,} -> {self.joint_optimized_nodes:,}; "
                f"compile {self.total_seconds:.2f} s ({times})")


class _Timer:
    def __init__(self, stats: CompileStats, stage: str) -> None:
        self.stats, self.stage = stats, stage

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        self.stats.seconds[self.stage] = self.stats.seconds.get(self.stage, 0.0) + time.perf_counter() - self.start


class Compiled:
    """A compiled function or Module: call it like the original (see the module docstring).

    Attributes: ``trace_count`` (traces so far, one per argument signature), ``graph``
    (the optimized forward Graph of the latest signature), ``source`` (its generated
    forward+gradient code), ``stats`` (sizes and compile timings).
    """

    def __init__(self, fn: Callable, *, backend: str | None = None) -> None:
        if not callable(fn):
            raise ArgumentError(f"graphc.compile needs a function or a Module; got {type(fn).__name__}")
        backend = backend or "python"
        if backend not in BACKENDS:
            raise ArgumentError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.fn = fn
        self.backend = backend
        self.name = function_name(fn)
        self.trace_count = 0
        self._signatures: dict[Any, _Signature] = {}
        self._latest: _Signature | None = None
        self._lock = threading.RLock()
        self.__doc__ = getattr(fn, "__doc__", None)

    def __repr__(self) -> str:
        return f"<graphc.Compiled {self.name} backend={self.backend} traces={self.trace_count}>"

    # -- calling ------------------------------------------------------------------------

    def __call__(self, *args: Any):
        leaves, tree, _ = flatten_args(args, argument_names(self.fn, len(args)))
        signature = self._signature(tree, args)
        return signature.call(leaves)

    def _signature(self, tree: Any, args: tuple) -> "_Signature":
        signature = self._signatures.get(tree)
        if signature is None:
            with self._lock:
                signature = self._signatures.get(tree)
                if signature is None:
                    reason = "first call" if not self._signatures else \
                        f"new argument signature {describe(tree)}; known: " + \
                        ", ".join(describe(t) for t in self._signatures)
                    log.info("%s: tracing (%s)", self.name, reason)
                    signature = _Signature(self, args)
                    self._signatures[tree] = signature
                    self.trace_count += 1
        self._latest = signature
        return signature

    # -- inspection ---------------------------------------------------------------------

    def _require_latest(self) -> "_Signature":
        if self._latest is None:
            raise GraphcError(f"{self.name} has not been called yet: call it once so it can be traced")
        return self._latest

    @property
    def graph(self) -> Graph:
        """The optimized forward graph of the latest signature."""
        return self._require_latest().graph

    @property
    def source(self) -> str:
        """The generated forward+gradient source of the latest signature."""
        return self._require_latest().program(0, wrt_inputs=True).source

    @property
    def stats(self) -> CompileStats:
        return self._require_latest().stats


def compile(fn_or_module: Callable | Module, *, backend: str | None = None) -> Compiled:  # noqa: A001
    """Compile a function (or a Module) of Values: trace, optimize, differentiate, generate.

    ``backend`` chooses the code generator; None picks the default (``"python"``).
    """
    return Compiled(fn_or_module, backend=backend)


@dataclass
class _Program:
    """Generated code for one (output, wrt_inputs) gradient variant of a signature."""

    function: Callable
    source: str
    joint: Graph


class _Signature:
    """Everything compiled for one argument signature."""

    def __init__(self, owner: Compiled, args: tuple) -> None:
        self.owner = owner
        self.stats = CompileStats()
        fn = owner.fn
        params = fn.parameters() if isinstance(fn, Module) else None
        with _Timer(self.stats, "trace"):
            traced = trace(fn, *args, params=params, name=owner.name)
        with _Timer(self.stats, "optimize"):
            self.graph, report = optimize(traced, report=True)
        self.stats.traced_nodes, self.stats.optimized_nodes = len(traced), len(self.graph)
        self.stats.reports["forward"] = report
        self.params: list[Value] = self.graph.param_values
        self.n_outputs = len(self.graph.outputs)
        self._programs: dict[tuple[int, bool], _Program] = {}
        self._lock = threading.Lock()
        self.program(0, wrt_inputs=False)

    def program(self, output: int, wrt_inputs: bool) -> _Program:
        key = (output, wrt_inputs)
        program = self._programs.get(key)
        if program is None:
            with self._lock:
                program = self._programs.get(key)
                if program is None:
                    program = self._programs[key] = self._generate(output, wrt_inputs)
        return program

    def _generate(self, output: int, wrt_inputs: bool) -> _Program:
        stats = self.stats
        with _Timer(stats, "autodiff"):
            joint = autodiff.grad(self.graph, output, wrt_inputs=wrt_inputs)
        with _Timer(stats, "optimize"):
            joint_optimized, report = optimize(joint, report=True)
        stats.joint_nodes, stats.joint_optimized_nodes = len(joint), len(joint_optimized)
        stats.reports[f"gradient of output {output}"] = report
        with _Timer(stats, "codegen+load"):
            function, source = python_backend.compile_graph(
                joint_optimized, self.owner.name, seed=joint_optimized.inputs[-1], n_forward=self.n_outputs)
        return _Program(function, source, joint_optimized)

    def call(self, leaves: list) -> Any:
        inputs = [x._data if isinstance(x, Value) else float(x) for x in leaves]
        value_args = [k for k, x in enumerate(leaves) if isinstance(x, Value)]
        params = [p._data for p in self.params]
        call = _Call(self, inputs, params, value_args)
        values = call.forward()
        prev = tuple(leaves[k] for k in value_args) + tuple(self.params)
        outputs = [_node(v, prev, _OutputKind(call, k)) for k, v in enumerate(values)]
        return unflatten(self.graph.out_tree, iter(outputs))


class _Call:
    """One call's inputs, params and suspended forward frame, kept for backward()."""

    __slots__ = ("signature", "inputs", "params", "value_args", "_pending", "_lock")

    def __init__(self, signature: _Signature, inputs: list, params: list, value_args: list[int]) -> None:
        self.signature = signature
        self.inputs, self.params, self.value_args = inputs, params, value_args
        self._pending = None  # the generator suspended after the forward part of output 0
        self._lock = threading.Lock()

    def forward(self) -> tuple:
        program = self.signature.program(0, wrt_inputs=bool(self.value_args))
        frame = program.function(self.inputs, self.params)
        values = next(frame)
        self._pending = frame
        return values

    def gradients(self, output: int, seed: float) -> list[float]:
        """seed * d(output)/d(each Value argument, then each param)."""
        with self._lock:
            frame, self._pending = (self._pending, None) if output == 0 else (None, None)
        if frame is None:  # another output, or output 0 a second time: run it afresh
            program = self.signature.program(output, wrt_inputs=bool(self.value_args))
            frame = program.function(self.inputs, self.params)
            next(frame)
        grads = frame.send(seed)
        frame.close()
        n_inputs = len(self.inputs) if self.value_args else 0
        return [grads[k] for k in self.value_args] + list(grads[n_inputs:])


class _OutputKind:
    """The op of a compiled call's output node in the eager graph: its backprop runs generated code."""

    __slots__ = ("call", "index")

    def __init__(self, call: _Call, index: int) -> None:
        self.call, self.index = call, index

    def label(self, attr: tuple = ()) -> str:
        return f"{self.call.signature.owner.name}[{self.index}]"

    def backprop(self, out: Value) -> None:
        grads = self.call.gradients(self.index, out.grad)
        for child, g in zip(out._prev, grads):
            child.grad += g
