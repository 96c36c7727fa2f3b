"""The backends ``compile`` runs, behind one interface: a scalar program and a batched program.

Every backend answers the same calls, so :mod:`graphc.signature` never asks which
backend it holds:

- ``scalar(joint, name, n_forward)``: the generated Python generator function of a joint
  (forward + gradient) graph, ``f(inputs, params)`` -- ``next(f(...))`` gives the outputs,
  ``.send(seed)`` then the gradients.
- ``batched(signature, kind)``: a :class:`Program` whose function has one calling convention,
  ``function(cols, params, scale, n) -> (per_row, sums)``: ``cols`` the data as an
  (n_inputs, n) array, ``params`` a list or a float64 array; for ``kind="forward"``
  ``per_row`` holds one (n,) array per output (``scale`` is unused, ``sums`` empty); for
  ``kind="mean"`` ``per_row`` is ``[values]`` and ``sums`` the param gradients summed over
  rows, each row's seeded with ``scale``.
- ``one_row_program(signature, output, wrt_inputs)``, on a backend whose scalar calls run
  on one row (:attr:`Backend.one_row`): the batched program a scalar call runs.

``"numpy"`` and ``"c"`` generate a batched function from the graph re-rolled into tensor
ops (:mod:`graphc.passes.reroll`), ``"c"`` as one C function with the batch loop inside;
``"python"`` loops over the rows with the scalar program: a slow reference, used in tests.
``"auto"``, the default, is not a backend of its own but a choice among them (:func:`resolve`):
C's programs wherever a C compiler is found -- the fastest backend, and eager's bits --
with scalar calls as generated Python; else NumPy's.

Scalar calls (``compiled(*args)``) run on the chosen backend, each the fastest correct way
to run one row there (:attr:`Backend.one_row`):

- ``"c"`` runs them in C, as a batch of one row (``one_row_program``): the forward at the
  call, and at ``backward()`` the gradient program of that output, seeded with its grad.
  Built exact whatever ``numerics``, C gives eager's bits, so these equal the Python
  program's; a call costs a few microseconds of ctypes and NumPy, so tiny functions
  (``x * y + z``) run slower than in Python, models (an MLP) faster.
- ``"auto"``, ``"numpy"`` and ``"python"`` run the generated Python program: it gives
  eager's bits, which NumPy's SIMD ``exp``, ``tanh`` and ``log`` need not, and for small
  graphs it is faster than NumPy's code on one row (``bench/scalar.py``); it needs no
  build before the first call, and its source is the one a person reads.  (A full-batch
  loss that batch recovery runs row by row runs on the backend's batched programs.)
"""
from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np

from . import forksafe, logs
from .codegen import c as c_codegen
from .codegen import numpy as numpy_codegen
from .codegen import python as python_codegen
from .errors import ArgumentError, CompilerWarning, GraphcError, _user_stacklevel
from .graph import Builder, Graph

if TYPE_CHECKING:
    from .rows_program import RowsProgram
    from .signature import Signature

#: The backends ``compile(backend=...)`` names, each running its own programs (the fuzz compares
#: every one with eager); ``backend=None``, the default, is :data:`DEFAULT`, a choice among them.
BACKENDS = ("numpy", "python", "c")
DEFAULT = "auto"

BatchedKind = Literal["forward", "mean"]


@dataclass
class Program:
    """Generated code and the graph it runs."""

    function: Callable
    source: str
    joint: Graph
    #: Per gradient output: False where no gradient reaches that input or param (autodiff
    #: left it the constant 0).  Such a Value gets nothing, as eager backward() gives it
    #: nothing: so an eager graph behind it never sees a 0 that could meet an inf (0 * inf).
    reached: tuple[bool, ...] = ()
    #: A mean program's whole-training-run driver (:class:`graphc.codegen.c_train.Driver`)
    #: and the kernel layout it works in, where the backend has one; else None.
    driver: Any = None
    layout: Any = None


def reached(joint: Graph, n_forward: int) -> tuple[bool, ...]:
    """:attr:`Program.reached` of a joint graph with ``n_forward`` forward outputs."""
    return tuple(joint.ops[o] != "const" for o in joint.outputs[n_forward:])


class Backend(ABC):
    """A backend: its scalar program is generated Python, its batched programs its own."""

    name = ""
    #: Whether the backend generates batched code (:meth:`generate`), or loops over rows.
    generates_batches = False
    #: Whether scalar calls run batched programs on one row (:meth:`one_row_program`),
    #: rather than the Python program of :meth:`scalar`.
    one_row = False
    #: Whether its programs are C kernels that :mod:`graphc.rows_kernels` may load and drive
    #: itself (a full-batch loss's rows summed inside the kernel, resumed from given numbers).
    native_kernels = False

    def scalar(self, joint: Graph, name: str, n_forward: int) -> tuple[Callable, str]:
        """The Python generator function of ``joint`` and its source."""
        return python_codegen.compile_graph(joint, name, seed=joint.inputs[-1], n_forward=n_forward)

    @abstractmethod
    def batched(self, signature: Signature, kind: BatchedKind) -> Program:
        """The batched program of ``kind`` for ``signature`` (see the module docstring)."""

    def one_row_program(self, signature: Signature, output: int | None, wrt_inputs: bool,
                        starts: bool = False) -> Program:
        """A scalar call's batched program, for :attr:`one_row` backends (see :class:`_Generated`)."""
        raise NotImplementedError(f"the {self.name} backend runs scalar calls in Python")

    def rows_program(self, build: Callable[[], RowsProgram | None], name: str) -> RowsProgram | None:
        """``build()``: a full-batch loss's per-row programs (:mod:`graphc.rows_program`) in this
        backend's code, or None, where scalar calls run the scalar program."""
        return build()


class _RowLoop(Backend):
    """``"python"``: the batched program runs the scalar program row by row."""

    name = "python"

    def batched(self, signature: Signature, kind: BatchedKind) -> Program:
        scalar = signature.program(0, wrt_inputs=False)
        loop = _mean_rows if kind == "mean" else _forward_rows
        n_outputs = signature.n_outputs

        def function(cols: np.ndarray, params: Any, scale: float, n: int) -> tuple[list, list]:
            params = params.tolist() if isinstance(params, np.ndarray) else list(params)
            return loop(scalar.function, cols, params, scale, n, n_outputs)
        return Program(function, scalar.source, scalar.joint, scalar.reached)


def _forward_rows(frame_of: Callable, cols: np.ndarray, params: list, scale: float, n: int,
                  n_outputs: int) -> tuple[list, list]:
    rows = [next(frame_of(cols[:, r].tolist(), params)) for r in range(n)]
    return [np.array([row[k] for row in rows], dtype=np.float64) for k in range(n_outputs)], []


def _mean_rows(frame_of: Callable, cols: np.ndarray, params: list, scale: float, n: int,
               n_outputs: int) -> tuple[list, list]:
    values, grads = [], [0.0] * len(params)
    for r in range(n):
        frame = frame_of(cols[:, r].tolist(), params)
        values.append(next(frame)[0])
        grads = [a + b for a, b in zip(grads, frame.send(scale))]
    return [np.array(values)], grads


class _Generated(Backend):
    """``"numpy"`` and ``"c"``: a batched function generated from the re-rolled graph."""

    generates_batches = True

    def __init__(self, name: str, codegen: Any, trains: bool = False) -> None:
        self.name, self.codegen, self.trains = name, codegen, trains

    def batched(self, signature: Signature, kind: BatchedKind) -> Program:
        mean = kind == "mean"
        graph = signature.joint(0, wrt_inputs=False, vector=True) if mean else signature.vector_graph()
        reduced = frozenset(range(1, len(graph.outputs))) if mean else frozenset()
        function, source = signature.generated(
            f"{self.name}, batched {kind}",
            lambda: self.generate(graph, f"{signature.name}_batched", reduced=reduced,
                                  seed=graph.inputs[-1] if mean else None, trains=mean and self.trains,
                                  numerics=signature.numerics))
        return Program(function, source, graph, reached(graph, signature.n_outputs),
                       getattr(function, "driver", None), getattr(function, "layout", None))

    def one_row_program(self, signature: Signature, output: int | None, wrt_inputs: bool,
                        starts: bool = False) -> Program:
        """A scalar call's program, run on one row, exact whatever ``numerics`` (scalar calls
        stay exact).  ``output`` None: the forward, ``function(cols, params, 0.0, n) ->
        (outputs, [])`` -- the re-rolled graph, whose sums keep eager's order, so the batched
        ``"forward"`` program.  Else ``function(cols, params, seed, n) -> (outputs,
        gradients)``: ``seed`` * the gradient of ``output`` (for the inputs if ``wrt_inputs``,
        then every param) summed over the rows -- on one row, that row's, but possibly 0.0
        where it is -0.0, which ``.grad +=`` cannot tell apart (a grad starts at 0, and adding
        never makes -0.0 of it).  The gradient runs the scalar joint graph, the Python
        program's: re-rolled, a param used in several places of a row (a full-batch loss)
        would add up its contributions in another order."""
        n_forward, forward = signature.n_outputs, output is None
        if forward and signature.numerics != "fast":
            return signature.batched_program("forward")
        graph = signature.vector_graph() if forward else signature.joint(output, wrt_inputs, starts=starts)
        what = "forward" if forward else \
            f"gradient of output {output} with respect to {'inputs and ' * wrt_inputs}params{', from starts' * starts}"
        function, source = signature.generated(
            f"{self.name}, one row, {what}",
            lambda: self.generate(graph, f"{signature.name}_row", seed=None if forward else graph.inputs[-1],
                                  reduced=frozenset(range(n_forward, len(graph.outputs)))))
        return Program(function, source, graph, reached(graph, n_forward))

    def generate(self, graph: Graph, name: str, *, reduced: frozenset = frozenset(),
                 seed: int | None = None, trains: bool = False, numerics: str = "exact") -> tuple[Callable, str]:
        """A batched function of ``graph`` in the one convention ``(cols, params, scale, n)``
        (``scale``: the seed input's value if ``seed`` is given; each output in ``reduced``
        summed over rows), and its source.  ``trains`` (a backend that can): the
        function of a mean program also carries a training driver (``function.driver``);
        ``numerics="fast"`` lets it sum in any order."""
        extra = {"free_layout": True} if trains else {}
        function, source = self.codegen.compile_graph(graph, name, reduced=reduced, seed=seed, numerics=numerics,
                                                      **extra)
        wrapped = self._convention(function, seed is not None)
        if trains:
            wrapped.driver, wrapped.layout = function.driver, function.layout
        return wrapped, source

    def _convention(self, function: Callable, mean: bool) -> Callable:
        """``function`` called as every batched program is: ``(cols, params, scale, n)``."""
        if not mean:
            return lambda cols, params, scale, n: function(cols, params, n)
        return function


class _C(_Generated):
    """``"c"``: scalar calls run in C too, on one row (see the module docstring)."""

    one_row = True
    native_kernels = True


class _Auto(Backend):
    """``"auto"``: C's batched programs where a C compiler is found that builds graphc's code,
    else NumPy's -- asked at the first batched program, so a function only ever called on
    numbers never looks for a compiler -- and scalar calls as generated Python."""

    name = DEFAULT
    generates_batches = True

    @property
    def chosen(self) -> Backend:
        """The backend whose batched programs run: C's (the same source, so the same cached
        library and bits) or NumPy's."""
        return _BACKENDS["c"] if _c_builds() else _BACKENDS["numpy"]

    @property
    def native_kernels(self) -> bool:  # type: ignore[override]
        return self.chosen.native_kernels

    def batched(self, signature: Signature, kind: BatchedKind) -> Program:
        """The chosen backend's program; the Python row loop's where C would be too large to
        build (a scalar graph of ~10^5 ops or more that does not re-roll; NumPy's straight-line
        program of it took 5.3 GB at 10^6 ops, the row loop 1.2 GB: an outside hunt)."""
        try:
            return self.chosen.batched(signature, kind)
        except c_codegen.TooLarge:
            return _BACKENDS["python"].batched(signature, kind)

    def generate(self, graph: Graph, name: str, **options: Any) -> tuple[Callable, str]:
        """The chosen backend's batched function of ``graph`` (see :meth:`_Generated.generate`)."""
        return self.chosen.generate(graph, name, **options)

    def rows_program(self, build: Callable[[], RowsProgram | None], name: str) -> RowsProgram | None:
        """None where C would be too large to build, as for :meth:`batched`: the scalar program
        runs (a full-batch loss over 70,000 rows raised TooLarge from the user's call: an
        outside hunt)."""
        try:
            return build()
        except c_codegen.TooLarge as error:
            logs.rows(name, f"the scalar program runs: {error}")
            return None


_BACKENDS: dict[str, Backend] = {
    "numpy": _Generated("numpy", numpy_codegen), "python": _RowLoop(), "c": _C("c", c_codegen, trains=True)}
_AUTO = _Auto()


def resolve(name: str | None, *, stacklevel: int = 2) -> Backend:
    """The backend called ``name`` (None: :data:`DEFAULT`).  ``"c"`` without a C compiler warns
    (a CompilerWarning, ``stacklevel`` frames above the caller) and gives NumPy; ``"auto"``
    gives NumPy then without a word, having promised nothing else (see :class:`_Auto`)."""
    name = check_name(name)
    if name == DEFAULT:
        return _AUTO
    backend = _BACKENDS[name]
    if name == "c" and c_codegen.find_compiler() is None:
        warnings.warn("graphc.compile(backend='c'): no C compiler found (set CC, or install gcc or "
                      "clang); using the NumPy backend instead", CompilerWarning, stacklevel=stacklevel + 1)
        backend = _BACKENDS["numpy"]
    return backend


def check_name(name: str | None) -> str:
    """``name`` (None: :data:`DEFAULT`) if it names a backend, else an ArgumentError listing them."""
    name = name or DEFAULT
    if name != DEFAULT and not (isinstance(name, str) and name in _BACKENDS):
        raise ArgumentError(f"unknown backend {name!r}; choose one of {', '.join((DEFAULT, *BACKENDS))}")
    return name


def choose_auto() -> str:
    """Which backend's batched programs ``backend="auto"`` (the default, and the scikit-learn
    estimators') runs: C if a C compiler is found that builds graphc's code, else NumPy."""
    return _AUTO.chosen.name


_probe_lock = forksafe.Lock()
_probe: list[bool] = []  # the answer, once known


def _c_builds() -> bool:
    """Whether a C compiler is found that builds graphc's code: asked once per process, by
    building a program of one node (cached on disk like any other: once per machine).  A
    compiler that fails it (say, one without C headers) gets one CompilerWarning, at the
    user's line, and the default runs NumPy instead of failing every batched call."""
    if _probe:
        return _probe[0]
    with _probe_lock:
        if _probe:
            return _probe[0]
        compiler, failure = c_codegen.find_compiler(), None
        if compiler is not None:
            b = Builder()
            x = b.add("input", (), ("x",))
            probe = b.finish([x], [], [b.add("mul", (x, b.const(2.0)))], name="probe")
            try:
                c_codegen.compile_graph(probe, "graphc_probe")
            except (GraphcError, OSError) as error:
                failure = str(error).split(":\n", 1)[-1].strip()  # the compiler's own words
        _probe.append(compiler is not None and failure is None)
    if failure is not None:
        warnings.warn(f"graphc: the C compiler {compiler[0]} cannot build graphc's code, so "
                      f"the default backend runs NumPy; it said: {failure}", CompilerWarning,
                      stacklevel=_user_stacklevel())
    return _probe[0]
