"""``graphc.compile``: trace once per argument signature, optimize, differentiate, generate.

A call of a :class:`Compiled` function returns ordinary Values.  Each output is one node
in the eager graph whose children are the Value arguments and the params, and whose
local derivative is the generated gradient code; so ``loss.backward()`` works as in
micrograd, composes with eager Values (``compiled(x) + l2``), and accumulates into every
param's ``.grad``.  Scalar calls run the Python backend: forward and backward share one
generator frame; the call runs it up to its ``yield``, ``backward()`` resumes it.

``map`` and ``mean`` evaluate the same per-sample graph over a whole batch (rows of
NumPy arrays) with a batched backend: NumPy by default, one array operation per node.
"""
from __future__ import annotations

import math
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import autodiff, logs, variants
from .codegen import c as c_backend
from .codegen import numpy as numpy_backend
from .codegen import python as python_backend
from .engine import Value, _node
from .errors import ArgumentError, CompilerWarning, DataError, GraphcError, ShapeError
from .graph import Graph
from .nn import Module
from .optim import Optimizer, check_range
from .passes import NUMERICS, VECTOR_PIPELINE, OptimizeReport, optimize
from .progress import progress_bar
from .trace import argument_names, function_name, reject_foreign_module
from .tree import SCALAR, describe, flatten_args, plain_array, unflatten

#: Batched backends (map, mean, a Module on a 2-D array): "numpy" and "c" run the graph
#: re-rolled into tensor ops (graphc.passes.reroll), "c" as one compiled C function with
#: the batch loop inside; "python" loops over rows with the scalar code -- a slow
#: reference, used in tests.
BACKENDS = ("numpy", "python", "c")
_BATCHED_CODEGEN = {"numpy": numpy_backend, "c": c_backend}


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

    def __init__(self, fn: Callable, *, backend: str | None = None, numerics: str = "exact") -> None:
        if not callable(fn):
            raise ArgumentError(f"graphc.compile needs a function or a Module; got {type(fn).__name__}")
        reject_foreign_module(fn)
        backend = backend or "numpy"
        if backend not in BACKENDS:
            raise ArgumentError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if numerics not in NUMERICS:
            raise ArgumentError(f"numerics must be one of {', '.join(map(repr, NUMERICS))}; got {numerics!r}")
        if backend == "c" and c_backend.find_compiler() is None:
            warnings.warn("graphc.compile(backend='c'): no C compiler found (set CC, or install gcc or "
                          "clang); using the NumPy backend instead", CompilerWarning, stacklevel=3)
            backend = "numpy"
        self.fn = fn
        self.backend = backend
        self.numerics = numerics
        self.name = function_name(fn)
        self.trace_count = 0
        #: Why each trace after the first happened (a new argument signature, a failed guard).
        self.retraces: list[str] = []
        self._variants: dict[Any, list[_Signature]] = {}  # graphc.variants: each signature's branch programs
        self._signatures: dict[Any, _Signature] = {}
        self._latest: _Signature | None = None
        self._lock = threading.RLock()
        self._names: dict[int, list[str]] = {}
        self.__doc__ = getattr(fn, "__doc__", None)

    def _argument_names(self, count: int) -> list[str]:
        names = self._names.get(count)
        if names is None:
            names = self._names[count] = argument_names(self.fn, count)
        return names

    def __repr__(self) -> str:
        return f"<graphc.Compiled {self.name} backend={self.backend} traces={self.trace_count}>"

    def __getstate__(self) -> dict[str, Any]:
        """What a pickle holds: fn (by reference, or by value where the pickler is cloudpickle,
        as joblib's and dask's are) and the options -- no generated code, which cannot be
        pickled; the copy traces and compiles again on its first call."""
        return {"fn": self.fn, "backend": self.backend, "numerics": self.numerics}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["fn"], backend=state["backend"], numerics=state["numerics"])
    def _repr_html_(self) -> str:
        """Jupyter: backend, signatures and the generated code (see :mod:`graphc.display`)."""
        from .display import compiled_html
        signatures = [(describe(tree), signature.graph) for tree, signature in list(self._signatures.items())]
        source = self._latest.latest_source if self._latest is not None else None
        return compiled_html(self.name, self.backend, self.numerics, signatures, source)

    # -- calling ------------------------------------------------------------------------

    def __call__(self, *args: Any):
        """Values mirroring fn's output.  A Module given one 2-D array (N, nin) is evaluated
        for all N rows at once and returns an array: (N,) for one output, else (N, nout)."""
        if isinstance(self.fn, Module) and len(args) == 1 and isinstance(args[0], np.ndarray) \
                and args[0].ndim == 2:
            out = self.map(args[0])
            leaves = [out] if isinstance(out, np.ndarray) else _flat_arrays(out)
            return leaves[0] if len(leaves) == 1 else np.stack(leaves, axis=1)
        leaves, tree, _ = flatten_args(args, self._argument_names(len(args)))
        return variants.call(self, tree, args, leaves)  # hook: guards checked, retraced on a miss

    def map(self, *batched_args: Any, params: Any = None, allow_nonfinite: bool = False):
        """fn on every row at once: each argument has a leading batch axis (shape (N, ...)).

        Returns fn's output structure with each scalar replaced by an (N,) NumPy array.
        The graph is traced once per row signature; N = 0 gives empty arrays.  ``params``
        (one number per param, in :attr:`params` order) stands in for the params' ``.data``.
        Data holding nan or inf raises :class:`DataError` unless ``allow_nonfinite``.
        """
        batch = _Batch(batched_args, self._argument_names(len(batched_args)), allow_nonfinite)
        signature = self._signature(batch.tree, lambda: batch.rows)
        return signature.map(batch, signature.param_data(params))

    def mean(self, *batched_args: Any, allow_nonfinite: bool = False) -> Value:
        """The mean of a scalar fn over the rows, as a Value whose ``backward()`` adds the
        mean gradient into every param's ``.grad`` (it composes with eager Values:
        ``step.mean(X, y) + l2``).  Value and gradient are computed in one batched pass.
        Data holding nan or inf raises :class:`DataError` unless ``allow_nonfinite``."""
        batch = _Batch(batched_args, self._argument_names(len(batched_args)), allow_nonfinite)
        if batch.n == 0:
            raise ShapeError("mean over zero rows is undefined: pass at least one row")
        return self._signature(batch.tree, lambda: batch.rows).mean(batch)

    def mean_and_grad(self, *batched_args: Any, params: Any = None,
                      allow_nonfinite: bool = False) -> tuple[float, np.ndarray]:
        """The mean of a scalar fn over the rows and its gradient with respect to the params,
        as an array in :attr:`params` order: the numbers ``mean(...).backward()`` adds into
        the params' ``.grad``, returned instead, with no Value read or written when
        ``params`` (one number per param) is given in place of their ``.data``.  The
        functional form, for training loops that keep the params in an array (JAX's
        ``value_and_grad``); one signature serves any model of the same shape this way.
        """
        batch = _Batch(batched_args, self._argument_names(len(batched_args)), allow_nonfinite)
        if batch.n == 0:
            raise ShapeError("mean_and_grad over zero rows is undefined: pass at least one row")
        signature = self._signature(batch.tree, lambda: batch.rows)
        signature.require_scalar("mean_and_grad")
        value, grads = signature.mean_and_grads(batch.cols, batch.n, signature.param_data(params, array=True))
        return value, np.asarray(grads, dtype=np.float64)

    def train(self, *batched_args: Any, lr: float | None = None, optimizer: Optimizer | None = None,
              batch_size: int | None = None, order: Any = None, allow_nonfinite: bool = False,
              progress: bool = False) -> np.ndarray:
        """Minibatch training on the mean of a scalar fn, with the params held in one array.

        Rows are taken in ``order`` (default: as given), ``batch_size`` at a time (default:
        all of them); for each batch, every param moves by ``-lr`` times the gradient of the
        batch's mean -- what ``loss = compiled.mean(batch); model.zero_grad();
        loss.backward(); p.data -= lr * p.grad`` does for every param, with the same numbers
        -- or, given ``optimizer`` (a :mod:`graphc.optim` optimizer over the same params, in
        any order) instead of ``lr``, as its ``step()`` would move them.  But the params are
        read once, updated in an array by the generated code's results and written back to
        their Values once at the end, so a step costs no Python work per param.  ``.grad``
        is left as it is.  Returns each batch's mean loss (before its step) as an array.
        Data holding nan or inf raises :class:`DataError` unless ``allow_nonfinite``.
        ``progress=True`` shows the batches done and the latest loss on stderr (a tqdm bar
        when tqdm is installed, else one line redrawn in place).
        """
        batch = _Batch(batched_args, self._argument_names(len(batched_args)), allow_nonfinite)
        if batch.n == 0:
            raise ShapeError("train over zero rows is undefined: pass at least one row")
        if (lr is None) == (optimizer is None):
            raise ArgumentError("train needs either lr= (plain SGD) or optimizer= (a graphc.optim optimizer), "
                                f"not {'both' if lr is not None else 'neither'}")
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise ArgumentError(f"optimizer must be a graphc.optim optimizer (SGD, Adam); "
                                f"got {type(optimizer).__name__}")
        if lr is not None:
            if not (isinstance(lr, (int, float, np.integer, np.floating)) and not isinstance(lr, bool)):
                raise ArgumentError(f"lr must be a number; got {type(lr).__name__}")
            check_range("lr", lr, 0.0, None)  # nan and negative rates: a ValueError, as optim.SGD gives
        size = batch.n if batch_size is None else batch_size
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
            raise ArgumentError(f"batch_size must be a positive int; got {batch_size!r}")
        rows = None
        if order is not None:
            rows = np.asarray(order)
            if rows.ndim != 1 or rows.dtype.kind not in "iu" or (rows.size and (rows.min() < 0 or rows.max() >= batch.n)):
                raise ShapeError(f"order must be a 1-D array of row numbers below {batch.n}")
        signature = self._signature(batch.tree, lambda: batch.rows)
        update = _sgd(float(lr)) if optimizer is None else signature.optimizer_update(optimizer)
        n_batches = -(-(batch.n if rows is None else len(rows)) // int(size))
        with progress_bar(n_batches, f"train {self.name}", "batches", enabled=progress) as bar:
            return signature.train(batch, update, int(size), rows, optimizer, bar)

    def _signature(self, tree: Any, args: tuple) -> "_Signature":
        signature = self._signatures.get(tree)
        if signature is None:
            with self._lock:
                signature = self._signatures.get(tree)
                if signature is None:
                    reason = "first call" if not self._signatures else \
                        f"new argument signature {describe(tree)}; known: " + \
                        ", ".join(describe(t) for t in self._signatures)
                    logs.retrace(self.name, reason)
                    if self._signatures:
                        self.retraces.append(reason)
                    signature = _Signature(self, args() if callable(args) else args, describe(tree))
                    self._signatures[tree] = signature
                    self.trace_count += 1
        self._latest = signature
        if callable(args):  # hook: a batched call runs one program for all rows, so no branches
            variants.refuse_batched(self, signature)
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
    def vector_graph(self) -> Graph:
        """The latest signature's forward graph re-rolled into tensor ops: what the NumPy
        and C backends run (``graph`` stays the scalar graph)."""
        return self._require_latest().vector_graph()

    @property
    def params(self) -> list[Value]:
        """The latest signature's params: ``model.parameters()`` for a Module, else the
        Values fn read in the order it first read them.  ``params=`` arrays and the
        gradients of :meth:`mean_and_grad` follow this order."""
        return list(self._require_latest().params)

    @property
    def source(self) -> str:
        """The generated source the latest call ran (forward and gradient)."""
        return self._require_latest().latest_source

    @property
    def stats(self) -> CompileStats:
        """Sizes and timings of the latest signature's compilation, and its pass reports."""
        return self._require_latest().stats


def compile(fn_or_module: Callable | Module, *, backend: str | None = None,  # noqa: A001
            numerics: str = "exact") -> Compiled:
    """Compile a function (or a Module) of Values: trace, optimize, differentiate, generate.

    Scalar calls run generated Python; ``backend`` chooses how ``map``, ``mean`` and a
    Module on a 2-D array run: ``"numpy"`` (the default), ``"c"`` (generated C, built with
    the system compiler and cached on disk; without a compiler, a CompilerWarning and
    NumPy) or ``"python"`` (a row loop).  ``numerics="stable"`` lets the optimizer rewrite
    unstable formulas (``log(1 + x)`` to ``log1p(x)``, ...; see :mod:`graphc.passes.stabilize`):
    more accurate than eager, so no longer equal to it bit for bit.
    """
    return Compiled(fn_or_module, backend=backend, numerics=numerics)


@dataclass
class _Program:
    """Generated code for one (output, wrt_inputs) gradient variant of a signature."""

    function: Callable
    source: str
    joint: Graph
    #: Per gradient output: False where no gradient reaches that input or param (autodiff
    #: left it the constant 0).  Such a Value gets nothing, as eager backward() gives it
    #: nothing: so an eager graph behind it never sees a 0 that could meet an inf (0 * inf).
    reached: tuple[bool, ...] = ()


def _reached(joint: Graph, n_forward: int) -> tuple[bool, ...]:
    return tuple(joint.ops[o] != "const" for o in joint.outputs[n_forward:])


class _Signature:
    """Everything compiled for one argument signature."""

    def __init__(self, owner: Compiled, args: tuple, description: str) -> None:
        self.owner, self.description = owner, description
        self.stats = CompileStats()
        fn = owner.fn
        params = fn.parameters() if isinstance(fn, Module) else None
        with _Timer(self.stats, "trace"):  # hook: the graph ends with one output per guard
            traced, self.guards = variants.trace_for_compile(owner, fn, args, params)
        with _Timer(self.stats, "optimize"):
            self.graph, report = optimize(traced, report=True, numerics=owner.numerics)
        self.stats.traced_nodes, self.stats.optimized_nodes = len(traced), len(self.graph)
        self._report("forward", report)
        self.params: list[Value] = self.graph.param_values
        self.param_tuple = tuple(self.params)
        self.n_outputs = len(self.graph.outputs)
        self._programs: dict[Any, _Program] = {}
        self._lock = threading.RLock()
        self.latest_source = ""

    def program(self, output: int, wrt_inputs: bool) -> _Program:
        key = (output, wrt_inputs)
        program = self._programs.get(key)
        if program is None:
            with self._lock:
                program = self._programs.get(key)
                if program is None:
                    program = self._programs[key] = self._generate(output, wrt_inputs)
        return program

    def vector_graph(self) -> Graph:
        """The forward graph re-rolled into tensor ops, for the batched backends."""
        graph = self._programs.get("vector")
        if graph is None:
            with _Timer(self.stats, "reroll"):
                graph, report = optimize(self.graph, report=True, passes=VECTOR_PIPELINE)
            self._report("re-rolled forward", report)
            self._programs["vector"] = graph
        return graph

    def _joint(self, output: int, wrt_inputs: bool, vector: bool = False) -> Graph:
        key = ("joint", output, wrt_inputs, vector)
        joint = self._programs.get(key)
        if joint is None:
            stats = self.stats
            forward = self.vector_graph() if vector else self.graph
            with _Timer(stats, "autodiff"):
                raw = autodiff.grad(forward, output, wrt_inputs=wrt_inputs)
            with _Timer(stats, "optimize"):
                joint, report = optimize(raw, report=True, passes=VECTOR_PIPELINE if vector else None,
                                         numerics=self.owner.numerics)
            stats.joint_nodes, stats.joint_optimized_nodes = len(raw), len(joint)
            self._report(f"{'re-rolled ' if vector else ''}gradient of output {output}", report)
            self._programs[key] = joint
        return joint

    def _generate(self, output: int, wrt_inputs: bool) -> _Program:
        joint = self._joint(output, wrt_inputs)
        with _Timer(self.stats, "codegen+load"):
            function, source = python_backend.compile_graph(
                joint, self.owner.name, seed=joint.inputs[-1], n_forward=self.n_outputs)
        logs.program(self.owner.name, self.description, f"Python, forward and gradient of output {output} "
                     f"with respect to {'inputs and params' if wrt_inputs else 'params'}", source)
        return _Program(function, source, joint, _reached(joint, self.n_outputs))

    def _report(self, graph: str, report: OptimizeReport) -> None:
        self.stats.reports[graph] = report
        logs.pass_report(self.owner.name, self.description, graph, report)

    def batched_program(self, kind: str) -> _Program:
        """The batched program (NumPy or C): ``"forward"`` (per-row outputs) or ``"mean"``
        (value and param gradients summed over rows)."""
        key = (self.owner.backend, kind)
        program = self._programs.get(key)
        if program is None:
            with self._lock:
                program = self._programs.get(key)
                if program is None:
                    graph = self.vector_graph() if kind == "forward" else \
                        self._joint(0, wrt_inputs=False, vector=True)
                    reduced = frozenset(range(1, len(graph.outputs))) if kind == "mean" else frozenset()
                    codegen = _BATCHED_CODEGEN[self.owner.backend]
                    with _Timer(self.stats, "codegen+load"):
                        function, source = codegen.compile_graph(
                            graph, f"{self.owner.name}_batched", reduced=reduced,
                            seed=graph.inputs[-1] if kind == "mean" else None)
                    logs.program(self.owner.name, self.description, f"{self.owner.backend}, batched {kind}", source)
                    program = self._programs[key] = _Program(function, source, graph,
                                                             _reached(graph, self.n_outputs))
        return program

    def param_data(self, params: Any, array: bool = False) -> list | np.ndarray:
        """The params' numbers: read from their Values, or ``params`` checked (a list, or an
        array if ``array``)."""
        if params is None:
            data = [p._data for p in self.params]
            return np.array(data, dtype=np.float64) if array else data
        try:
            values = np.asarray(params, dtype=np.float64)
        except (TypeError, ValueError):
            raise ArgumentError(f"params: expected numbers, one per param; got {type(params).__name__}") from None
        if values.shape != (len(self.params),):
            raise ShapeError(f"params: expected {len(self.params)} numbers (one per param, in compiled.params "
                             f"order); got shape {values.shape}")
        return values if array else values.tolist()

    def map(self, batch: "_Batch", params: list):
        if self.owner.backend == "python":
            rows = [self._forward_row(batch.cols[:, r].tolist(), params) for r in range(batch.n)]
            per_row = [np.array([row[k] for row in rows], dtype=np.float64) for k in range(self.n_outputs)]
        else:
            program = self.batched_program("forward")
            self.latest_source = program.source
            with np.errstate(all="ignore"):
                per_row, _ = program.function(batch.cols, params, batch.n)
        return unflatten(self.graph.out_tree, iter(np.asarray(v, dtype=np.float64) for v in per_row))

    def mean(self, batch: "_Batch") -> Value:
        self.require_scalar("mean")
        value, grads = self.mean_and_grads(batch.cols, batch.n, self.param_data(None))
        program = self.program(0, wrt_inputs=False) if self.owner.backend == "python" else self.batched_program("mean")
        grads = [g if r else None for g, r in zip(grads, program.reached)]
        return _node(value, self.param_tuple, _MeanKind(self.owner.name, grads))

    def require_scalar(self, what: str) -> None:
        if self.graph.out_tree != SCALAR:
            raise GraphcError(f"{what} needs a function returning one scalar; {self.owner.name} returns "
                              f"{describe(self.graph.out_tree)}")

    def mean_and_grads(self, cols: np.ndarray, n: int, params) -> tuple[float, Any]:
        """The mean of fn over the n rows of ``cols`` and its param gradients (a list, or an
        array when ``params`` is one and the backend is C)."""
        if self.owner.backend == "python":
            program = self.program(0, wrt_inputs=False)
            self.latest_source = program.source
            params = list(params) if isinstance(params, list) else params.tolist()
            values, grads = [], [0.0] * len(params)
            for r in range(n):
                frame = program.function(cols[:, r].tolist(), params)
                values.append(next(frame)[0])
                grads = [a + b for a, b in zip(grads, frame.send(1.0 / n))]
            return _row_mean(np.array(values)), grads
        program = self.batched_program("mean")
        self.latest_source = program.source
        with np.errstate(all="ignore"):  # inf and nan are results here, not warnings (values.mean() too)
            if self.owner.backend == "c":
                call = program.function.raw if isinstance(params, np.ndarray) else program.function
                (values,), grads = call(cols, params, 1.0 / n, n)
            else:
                (values,), grads = program.function(cols, params if isinstance(params, list) else params.tolist(),
                                                    1.0 / n, n)
            return _row_mean(values), grads

    def optimizer_update(self, optimizer: Optimizer) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``optimizer.apply`` on arrays in this signature's param order, its state kept in
        the optimizer's own order (so ``step()`` and ``train`` can take turns)."""
        position = {id(p): k for k, p in enumerate(self.params)}
        if len(optimizer.params) != len(self.params) or any(id(p) not in position for p in optimizer.params):
            raise ArgumentError(f"the optimizer updates {len(optimizer.params)} Values and {self.owner.name} has "
                                f"{len(self.params)} params, not the same ones: build it over the params "
                                f"(e.g. model.parameters(), or compiled.params)")
        order = np.array([position[id(p)] for p in optimizer.params], dtype=np.intp)

        def update(params: np.ndarray, grads: np.ndarray) -> np.ndarray:
            params[order] = optimizer.apply(params[order], grads[order])
            return params
        return update

    def train(self, batch: "_Batch", update: Callable[[np.ndarray, np.ndarray], np.ndarray], size: int,
              rows: np.ndarray | None, optimizer: Optimizer | None, bar=None) -> np.ndarray:
        """All or nothing: if anything raises -- a KeyboardInterrupt included -- the params and
        the optimizer's state are put back as they were before the run.  ``bar``: a
        :func:`graphc.progress.progress_bar` told of each batch, or None."""
        self.require_scalar("train")
        params = self.param_data(None, array=True)
        before = params.tolist()
        state = optimizer.snapshot() if optimizer is not None else None
        try:
            ordered = batch.cols if rows is None else np.ascontiguousarray(batch.cols[:, rows])  # one gather
            count = ordered.shape[1]
            losses = []
            for start in range(0, count, size):
                cols = ordered if size >= count else np.ascontiguousarray(ordered[:, start:start + size])
                value, grads = self.mean_and_grads(cols, cols.shape[1], params)
                params = update(params, np.asarray(grads, dtype=np.float64))
                losses.append(value)
                if bar is not None:
                    bar.update(loss=value)
            for p, v in zip(self.params, params.tolist()):
                p._data = v
        except BaseException:
            for p, v in zip(self.params, before):
                p._data = v
            if state is not None:
                optimizer.restore(state)
            raise
        return np.array(losses)

    def _forward_row(self, inputs: list, params: list) -> tuple:
        program = self.program(0, wrt_inputs=False)
        self.latest_source = program.source
        return next(program.function(inputs, params))

    def call(self, leaves: list) -> Any:
        inputs = [x._data if isinstance(x, Value) else float(x) for x in leaves]
        value_args = [k for k, x in enumerate(leaves) if isinstance(x, Value)]
        params = [p._data for p in self.params]
        call = _Call(self, inputs, params, value_args)
        values = call.forward()
        guards = self.guards
        if guards.expected:  # hook: a guard that failed is returned, and the caller retraces
            failure = guards.check(values)
            if failure is not None:
                return failure
        prev = tuple(leaves[k] for k in value_args) + tuple(self.params)
        outputs = [_node(v, prev, _OutputKind(call, k)) for k, v in enumerate(values[:guards.n_outputs])]
        if guards.kinds is not None:  # hook: plain numbers where fn returned numbers it computed
            outputs = guards.plain_numbers(outputs)
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
        self.signature.latest_source = program.source
        frame = program.function(self.inputs, self.params)
        values = next(frame)
        self._pending = frame
        return values

    def gradients(self, output: int, seed: float) -> list[float | None]:
        """seed * d(output)/d(each Value argument, then each param); None where no gradient
        reaches it (see ``_Program.reached``)."""
        program = self.signature.program(output, wrt_inputs=bool(self.value_args))
        frame = None
        if output == 0:
            with self._lock:
                frame, self._pending = self._pending, None
        if frame is None:  # another output, or output 0 a second time: run it afresh
            frame = program.function(self.inputs, self.params)
            next(frame)
        grads = frame.send(seed)
        frame.close()
        n_inputs = len(self.inputs) if self.value_args else 0
        slots = self.value_args + list(range(n_inputs, len(grads)))
        reached = program.reached
        return [grads[k] if reached[k] else None for k in slots]


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
            if g is not None:
                child.grad += g


class _MeanKind:
    """The op of a ``mean`` node: its gradient was computed with the value; backward scales it."""

    __slots__ = ("name", "grads")

    def __init__(self, name: str, grads: tuple) -> None:
        self.name, self.grads = name, grads

    def label(self, attr: tuple = ()) -> str:
        return f"mean({self.name})"

    def backprop(self, out: Value) -> None:
        g = out.grad
        for child, d in zip(out._prev, self.grads):
            if d is not None:
                child.grad += g * d


class _Batch:
    """Batched arguments, checked: their common row count, one example row, and the data as
    an (n_inputs, N) float array (one contiguous row per scalar input)."""

    def __init__(self, args: tuple, names: list[str], allow_nonfinite: bool = False) -> None:
        if not args:
            raise ArgumentError("map and mean need at least one batched argument (an array of shape (N, ...))")
        arrays = []
        for arg, name in zip(args, names):
            if type(arg) is np.ndarray and arg.dtype.kind in "biuf" and arg.ndim and arg.dtype.itemsize <= 8:
                array = arg  # the common case: no conversion
            else:
                array = _as_batched_array(arg, name)
            if not allow_nonfinite and array.dtype.kind == "f" and not np.isfinite(array).all():
                bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
                raise DataError(f"argument {name}: expected finite numbers; {name}{list(bad)} is {array[bad]} "
                                f"(pass allow_nonfinite=True to compute with nan and inf)")
            arrays.append(array)
        self.n = arrays[0].shape[0]
        for array, name in zip(arrays, names):
            if array.shape[0] != self.n:
                sizes = ", ".join(f"{nm} has {a.shape[0]}" for a, nm in zip(arrays, names))
                raise ShapeError(f"batched arguments must have the same number of rows: {sizes}")
        # the row signature, as flatten_args would describe one row (a scalar or an array)
        self.tree = ("tuple", tuple(SCALAR if a.ndim == 1 else ("array", a.shape[1:]) for a in arrays))
        self._arrays = arrays
        widths = [math.prod(a.shape[1:]) for a in arrays]
        self.cols = cols = np.empty((sum(widths), self.n))
        row = 0
        for a, width in zip(arrays, widths):
            cols[row:row + width] = a.reshape(self.n, width).T
            row += width

    @property
    def rows(self) -> tuple:
        """One example row per argument (zeros when there are no rows): what a trace sees."""
        return tuple(a[0] if self.n else np.zeros(a.shape[1:]) for a in self._arrays)


def _row_mean(values: np.ndarray) -> float:
    """The mean of the rows' values, added first to last from +0.0 as ``sum(rows)`` adds
    Values (``np.add.accumulate`` is sequential, ``values.mean()`` pairwise): the same number
    on every backend.  (Adding +0.0 last equals starting from it: it only turns an all -0.0
    sum into +0.0.)"""
    return (float(np.add.accumulate(values)[-1]) + 0.0) / len(values)


def _sgd(lr: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Plain SGD on a params array, in place."""
    def update(params: np.ndarray, grads: np.ndarray) -> np.ndarray:
        params -= lr * grads  # p.data -= lr * p.grad, for all at once
        return params
    return update


def _as_batched_array(arg: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(arg.data if isinstance(arg, Value) else arg)
    except ValueError as error:  # ragged nested lists
        raise ShapeError(f"argument {name}: cannot be read as an array of shape (N, ...): {error}") from None
    if array.dtype.kind not in "biuf":
        raise ArgumentError(f"argument {name}: expected an array of numbers with a leading batch axis; "
                            f"got dtype {array.dtype}")
    if array.ndim == 0:
        raise ShapeError(f"argument {name}: expected a leading batch axis (shape (N, ...)); got a scalar")
    return plain_array(arg if isinstance(arg, np.ma.MaskedArray) else array, f"argument {name}")


def _flat_arrays(tree: Any) -> list:
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _flat_arrays(item)]
    return [tree]
