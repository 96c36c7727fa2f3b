"""``graphc.compile``: trace once per argument signature, optimize, differentiate, generate.

A call of a :class:`Compiled` function returns ordinary Values (:mod:`graphc.bridge`):
``loss.backward()`` works as in micrograd, composes with eager Values (``compiled(x) +
l2``), and accumulates into every param's ``.grad``.  Scalar calls run generated Python,
or C with ``backend="c"`` (:mod:`graphc.backends`).

``map`` and ``mean`` evaluate the same per-sample graph over a whole batch (rows of
NumPy arrays) with a batched backend (:mod:`graphc.backends`): by default C, one function
with the row loop inside, where a C compiler is found, else NumPy, one array operation
per node.  The stages behind both -- per argument signature, cached --
live in :mod:`graphc.signature`, the cache of signatures in :mod:`graphc.signature_cache`,
batches and training in :mod:`graphc.batches`.
"""
from __future__ import annotations

import inspect
import numbers
import sys
import types
import weakref
from typing import Any, Callable

import numpy as np

from . import backends, batches, engine, variants
from .backends import BACKENDS  # noqa: F401  (graphc.compile.BACKENDS: the backend names)
from .bridge import mean_node
from .call_plans import Plans
from .engine import Value
from .errors import ArgumentError, DataError, NotTracedYet, TraceError
from .graph import Graph
from .nn import Module
from .optim import Optimizer
from .passes import check_numerics
from .progress import progress_bar
from .row_threads import check_threads
from .signature import CompileStats, Signature, Stages
from .signature_cache import SignatureCache, describe_key
from .trace import argument_names, function_name, reject_foreign_module
from .tree import flatten_call


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
        check_numerics(numerics)
        self._backend = backends.resolve(backend, stacklevel=3)
        self.fn = fn
        self.backend = self._backend.name
        self.numerics = numerics
        self.name = function_name(fn)
        for name in ("__module__", "__qualname__"):  # fn's, so that a pickle finds its name (__reduce__)
            if isinstance(getattr(fn, name, None), str):
                setattr(self, name, getattr(fn, name))
        self._signatures = SignatureCache(self.name, self._new_signature)
        self._frozen = variants.warn_once()
        self._names: dict[int, list[str]] = {}
        self._as_values: dict[str, set[int]] = {}  # per argument signature: see trace_with_record
        self._plans = Plans()
        self._bound: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # see __get__
        self.__doc__ = getattr(fn, "__doc__", None)

    def __get__(self, instance: Any, owner: type | None = None) -> "Compiled":
        """``@graphc.compile`` on a method, ``__call__`` included (as ``torch.compile``): each
        instance gets a Compiled of its bound method, made on first use and kept while the
        instance lives."""
        if instance is None:
            return self
        try:
            compiled = self._bound.get(instance)
        except TypeError:  # an instance that cannot be weakly referenced or hashed: compiled anew
            return self._bind(instance)
        if compiled is None:
            compiled = self._bound[instance] = self._bind(instance)
        return compiled

    def _bind(self, instance: Any) -> "Compiled":
        return Compiled(types.MethodType(self.fn, instance), backend=self.backend, numerics=self.numerics)

    def _new_signature(self, args: tuple, description: str, shared: dict[int, int | None] | None = None) -> Signature:
        return Signature(self.fn, self.name, self.numerics, self._backend, args, description, self._frozen, shared,
                         self._as_values.setdefault(description, set()))

    @property
    def trace_count(self) -> int:
        """Traces so far: one per argument signature."""
        return self._signatures.trace_count

    @property
    def retraces(self) -> list[str]:
        """Why each trace after the first happened: a new argument signature, or a failed
        guard (``guard at file:line ... was True, now False``)."""
        return self._signatures.retraces

    @property
    def _latest(self) -> Signature | None:
        return self._signatures.latest

    def _argument_names(self, count: int) -> list[str]:
        names = self._names.get(count)
        if names is None:
            names = self._names[count] = argument_names(self.fn, count)
        return names

    def __repr__(self) -> str:
        return f"<graphc.Compiled {self.name} backend={self.backend} traces={self.trace_count}>"

    def __reduce__(self) -> str | tuple:
        """What a pickle holds: fn (by reference, or by value where the pickler is cloudpickle,
        as joblib's and dask's are) and the options -- no generated code, which cannot be
        pickled; the copy traces and compiles again on its first call.  A Compiled that a
        module's name holds in fn's place (``@graphc.compile`` on a module-level function)
        is that name, as the function was: fn by reference found the Compiled, not fn.  (Not
        in ``__main__``, where cloudpickle, which dask's workers need, pickles fn by value.)"""
        if self.__module__ != "__main__" and _holds_the_name(self):
            return self.__dict__["__qualname__"]
        return _unpickled, (self.fn, self.backend, self.numerics)

    def _repr_html_(self) -> str:
        """Jupyter: backend, signatures and the generated code (see :mod:`graphc.display`)."""
        from .display import compiled_html
        signatures = [(describe_key(tree), signature.graph) for tree, signature in list(self._signatures.items())]
        source = self._latest.latest_source if self._latest is not None else None
        return compiled_html(self.name, self.backend, self.numerics, signatures, source)

    # -- calling ------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any):
        """Values mirroring fn's output.  A Module given one 2-D array (N, nin) is evaluated
        for all N rows at once and returns an array: (N,) for one output, else (N, nout).
        Keyword arguments are bound to fn's parameters and passed by position.

        Called inside another trace (``graphc.grad(graphc.compile(f))``, a compiled model
        called by a compiled loss), fn is traced through, as JAX inlines a ``jit`` called
        inside a ``jit``: the outer program is one graph."""
        if engine.is_tracing():
            return self._traced_through(args, kwargs)
        if kwargs:
            args = positional(self.fn, args, kwargs)
        if isinstance(self.fn, Module) and len(args) == 1 and isinstance(args[0], np.ndarray) \
                and args[0].ndim == 2:
            try:
                out = self.map(args[0])
            except DataError as error:  # its advice is map's keyword, which this call does not take
                advice = "a call on a 2-D array runs map: call map(X, allow_nonfinite=True) on the compiled " \
                         "model to compute with nan and inf"
                raise DataError(str(error).replace(batches.NONFINITE_ADVICE, advice)) from None
            leaves = [out] if isinstance(out, np.ndarray) else _flat_arrays(out)
            return leaves[0] if len(leaves) == 1 else np.stack(leaves, axis=1)
        leaves, tree, value_slots = flatten_call(args, self._argument_names(len(args)))
        return self._signatures.call(tree, args, leaves, value_slots)

    def _traced_through(self, args: tuple, kwargs: dict) -> Any:
        if self.numerics != "exact":  # the outer trace's numerics would be applied instead
            raise TraceError(f"{self.name} (numerics={self.numerics!r}) was called inside another trace, which "
                             f"traces it through with its own numerics: compile the plain function instead")
        return self.fn(*args, **kwargs)

    def map(self, *batched_args: Any, params: Any = None, allow_nonfinite: bool = False,
            threads: int | None = None):
        """fn on every row at once: each argument has a leading batch axis (shape (N, ...)).

        Returns fn's output structure with each scalar replaced by an (N,) NumPy array.
        The graph is traced once per row signature; N = 0 gives empty arrays.  ``params``
        (one number per param, in :attr:`params` order) stands in for the params' ``.data``.
        Data holding nan or inf raises :class:`DataError` unless ``allow_nonfinite``.
        ``threads``: split the rows across that many threads (the same numbers; for
        ``numerics="fast"``, within its budget: see :mod:`graphc.row_threads`).
        """
        threads = check_threads(threads)
        batch = self._batch(batched_args, allow_nonfinite)
        signature = self._signatures.lookup_batched(batch.tree, lambda: batch.rows)
        return batches.forward(signature, batch, signature.param_data(params, array=True), threads)

    def mean(self, *batched_args: Any, allow_nonfinite: bool = False, threads: int | None = None) -> Value:
        """The mean of a scalar fn over the rows, as a Value whose ``backward()`` adds the
        mean gradient into every param's ``.grad`` (it composes with eager Values:
        ``step.mean(X, y) + l2``).  Value and gradient are computed in one batched pass.
        Data holding nan or inf raises :class:`DataError` unless ``allow_nonfinite``.
        ``threads``: as for :meth:`mean_and_grad`."""
        threads = check_threads(threads)
        plan = self._plans.find(batched_args) if threads == 1 else None
        result = plan.mean(batched_args, allow_nonfinite) if plan is not None else None
        if result is not None:
            return mean_node(plan.signature, result[0], result[1].tolist())
        batch = self._batch(batched_args, allow_nonfinite)
        batch.require_rows("mean")
        signature = self._signatures.lookup_batched(batch.tree, lambda: batch.rows)
        value = batches.mean(signature, batch, threads)
        self._plans.learn(batched_args, self._signatures, signature)
        return value

    def mean_and_grad(self, *batched_args: Any, params: Any = None, out: np.ndarray | None = None,
                      allow_nonfinite: bool = False, threads: int | None = None) -> tuple[float, np.ndarray]:
        """The mean of a scalar fn over the rows and its gradient with respect to the params,
        as an array in :attr:`params` order: the numbers ``mean(...).backward()`` adds into
        the params' ``.grad``, returned instead, with no Value read or written when
        ``params`` (one number per param) is given in place of their ``.data``.  The
        functional form, for training loops that keep the params in an array (JAX's
        ``value_and_grad``); one signature serves any model of the same shape this way.
        A C-contiguous float64 ``params`` array is read without a copy where the kernel
        reads the params in their own order (else it is permuted into the kernel's, once
        per call); any other array-like is copied, never misread.  ``out``: a writable
        C-contiguous float64 array of one entry per param that receives the gradient (and is
        returned), so a loop allocates nothing per step.  On the C backend, repeat calls with
        float64 arrays of the shapes of an earlier call skip the checks and lookups it made
        (:mod:`graphc.call_plans`; ``mean`` too): the data is still copied and checked anew,
        and the numbers and errors are the same.  ``threads``: split the rows across that
        many threads (:mod:`graphc.row_threads`): the mean's value is the same number (but
        for ``numerics="fast"``, within its budget), the
        gradient's sums over rows are added per thread, then thread after thread --
        deterministic for a given count, not bit-equal to one thread (README, "Exactness").
        """
        threads = check_threads(threads)
        plan = self._plans.find(batched_args) if threads == 1 else None
        result = plan.mean_and_grad(batched_args, params, out, allow_nonfinite) if plan is not None else None
        if result is not None:  # the shapes of a call that succeeded before: its plan (graphc.call_plans)
            return result
        batch = self._batch(batched_args, allow_nonfinite)
        batch.require_rows("mean_and_grad")
        signature = self._signatures.lookup_batched(batch.tree, lambda: batch.rows)
        signature.require_scalar("mean_and_grad")
        if out is not None:
            out = batches.check_out(out, len(signature.params))
        value, grads = batches.mean_and_grads(signature, batch.cols, batch.n,
                                              signature.param_data(params, array=True), out, threads)
        self._plans.learn(batched_args, self._signatures, signature)
        return value, grads if out is not None else np.asarray(grads, dtype=np.float64)

    def train(self, *batched_args: Any, lr: float | None = None, optimizer: Optimizer | None = None,
              batch_size: int | None = None, order: Any = None, epochs: int = 1, shuffle: Any = False,
              schedule: Callable[[int], float] | None = None, allow_nonfinite: bool = False,
              progress: bool = False) -> np.ndarray:
        """Minibatch training on the mean of a scalar fn, with the params held in one array.

        ``epochs`` passes over the rows (default one), each taking them in ``order``
        (default: as given) -- or, with ``shuffle`` (True, an int seed or a NumPy
        Generator), in ``rng.permutation(N)`` drawn anew each epoch -- ``batch_size`` at a
        time (default: all of them; the last batch of a pass may be smaller).  For each
        batch, every param moves by ``-lr`` times the gradient of the batch's mean -- what
        ``loss = compiled.mean(batch); model.zero_grad(); loss.backward(); p.data -= lr *
        p.grad`` does for every param, with the same numbers -- or, given ``optimizer`` (a
        :mod:`graphc.optim` optimizer over the same params, in any order) instead of
        ``lr``, as its ``step()`` would move them.  ``schedule(k)`` (optional) is the
        learning rate of step ``k`` (from 0 in this call), used in place of ``lr`` or set
        as ``optimizer.lr`` before the step.  The params are read once and updated in an
        array, so a step costs no Python work per param; their Values get the new numbers
        when any Value's number is next read or written (:mod:`graphc.deferred_data`: a loop
        of ``train`` calls never writes them one by one).  On the C backend the whole run
        is one native call (in chunks of about 0.1 s, so Ctrl-C stops it), the same steps
        bit for bit.  ``.grad`` is left as it is.  All
        or nothing: if the run raises (a KeyboardInterrupt included), the params and the
        optimizer's state are as before.  Returns each step's mean loss (before its step),
        all epochs end to end.  Data holding nan or inf raises :class:`DataError` unless
        ``allow_nonfinite`` (on C, found as the driver copies each step's rows, before that
        step; nothing moves).  ``progress=True`` shows the steps done and the latest loss on
        stderr (a tqdm bar when tqdm is installed, else one line redrawn in place).
        """
        batch = self._batch(batched_args, allow_nonfinite, later=True)  # checked by batches.train
        batch.require_rows("train")
        make_update = batches.train_update(lr, optimizer)
        plan = batches.StepPlan(batch.n, batch_size, order, epochs, shuffle, schedule)
        signature = self._signatures.lookup_batched(batch.tree, lambda: batch.rows)
        update = make_update(signature)
        with progress_bar(plan.total, f"train {self.name}", "batches", enabled=progress) as bar:
            return batches.train(signature, batch, update, plan, bar)

    def _native_run(self, *batched_args: Any) -> batches.NativeRun | None:
        """A native training session over these rows (data checked once), for loops that
        keep their own epoch bookkeeping (the scikit-learn estimators); None where the
        backend has no training driver."""
        batch = self._batch(batched_args, False)
        batch.require_rows("train")
        signature = self._signatures.lookup(batch.tree, lambda: batch.rows)
        signature.require_scalar("train")
        program = signature.batched_program("mean")
        return batches.NativeRun(signature, program, batch) if program.driver is not None else None

    def _batch(self, batched_args: tuple, allow_nonfinite: bool, later: bool = False) -> batches.Batch:
        return batches.Batch(batched_args, self._argument_names(len(batched_args)), allow_nonfinite, later)

    # -- inspection ---------------------------------------------------------------------

    def _require_latest(self) -> Signature:
        if self._latest is None:
            raise NotTracedYet(f"{self.name} has not been called yet: call it once so it can be traced")
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
        Values fn read -- those made as ``Value(...)`` in the order they were made (a model's
        ``parameters()`` order), then Values computed outside fn, in the order fn read them
        (not the order fn first reads them all: an outside review).  ``params=`` arrays and
        the gradients of :meth:`mean_and_grad` follow this order."""
        return list(self._require_latest().params)

    @property
    def source(self) -> str:
        """The generated source the latest call ran (forward and gradient; a scalar call on
        ``"c"``: its forward, the gradient being a C program of its own)."""
        return self._require_latest().latest_source

    @property
    def stats(self) -> CompileStats:
        """Sizes and timings of the latest signature's compilation, and its pass reports."""
        return self._require_latest().stats

    def stages(self, output: int = 0, *, wrt_inputs: bool = True) -> Stages:
        """The latest signature's stages for ``output``: its optimized forward graph,
        forward + gradient graph and generated program, as the calls run them (numerics
        included) -- what ``export``, ``check_grad`` and ``graphc show`` use.  Gradients are
        for every input if ``wrt_inputs``, then every param.  See :class:`graphc.signature.Stages`."""
        return Stages(self._require_latest(), output, wrt_inputs)


def compile(fn_or_module: Callable | Module | None = None, *, backend: str | None = None,  # noqa: A001
            numerics: str = "exact") -> Compiled | Callable[[Callable | Module], Compiled]:
    """Compile a function (or a Module) of Values: trace, optimize, differentiate, generate.

    A decorator too, bare (``@graphc.compile``) or with options
    (``@graphc.compile(backend="c")``, as ``torch.compile`` takes them): given only options,
    it checks them and returns the function that compiles with them.

    ``backend`` chooses how calls run: ``"c"`` (generated C, built with the system compiler
    and cached on disk; without a compiler, a CompilerWarning and NumPy), ``"numpy"`` or
    ``"python"`` (a row loop) for ``map``, ``mean``, ``train``, a Module on a 2-D array and a
    full-batch loss run row by row; scalar calls run in C on ``"c"`` (bit for bit the Python
    code's), else as generated Python (eager's bits, which NumPy's need not be).  The
    default, ``"auto"``, is C's batched programs (the fastest, and eager's bits) with
    scalar calls in Python where a C compiler is found, else ``"numpy"``.

    ``numerics="stable"`` lets the optimizer rewrite unstable formulas (``log(1 + x)`` to
    ``log1p(x)``, ...; see :mod:`graphc.passes.stabilize`): more accurate than eager, so no
    longer equal to it bit for bit.  ``numerics="fast"`` lets
    the batched code sum in any order -- BLAS for NumPy's layer ops, fused multiply-adds and
    reassociation in C -- within a documented budget of exact (README, "Exactness").
    """
    if fn_or_module is not None:
        return Compiled(fn_or_module, backend=backend, numerics=numerics)
    check_numerics(numerics)
    backends.check_name(backend)

    def compile_with_options(fn: Callable | Module) -> Compiled:
        return Compiled(fn, backend=backend, numerics=numerics)
    return compile_with_options


def _flat_arrays(tree: Any) -> list:
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _flat_arrays(item)]
    return [tree]


def positional(fn: Callable, args: tuple, kwargs: dict[str, Any]) -> tuple:
    """``fn(*args, **kwargs)``'s arguments by position, as a trace takes them: bound as Python
    binds them (its TypeError for a wrong name), the parameters after the last one given left
    to fn's defaults, as are trailing ones given their default object (``batch_size=None``)."""
    name = function_name(fn)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ArgumentError(f"{name} takes no keyword arguments graphc can bind (its signature is "
                            f"unknown); pass them by position") from None
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{name}(): {error}") from None
    out: list = []
    pending: list = []  # (parameter, default) before a parameter given: passed by position only if one is
    by_position = len(args)
    for parameter in signature.parameters.values():
        given = parameter.name in bound.arguments
        value = bound.arguments.get(parameter.name, parameter.default)
        if by_position and parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            by_position -= 1  # given by position: kept
            out += _defaults(name, pending, parameter.name) + [value]
            pending = []
        elif parameter.kind is parameter.VAR_POSITIONAL:
            if given:
                out += _defaults(name, pending, parameter.name) + list(value)
                pending = []
        elif parameter.kind in (parameter.KEYWORD_ONLY, parameter.VAR_KEYWORD):
            if given and not (parameter.kind is parameter.KEYWORD_ONLY and value is parameter.default):
                if parameter.kind is parameter.KEYWORD_ONLY:
                    what, fix = f"keyword-only argument {parameter.name!r}", "it a positional parameter"
                else:
                    what, fix = f"keyword arguments **{parameter.name} ({', '.join(map(repr, value))})", \
                        "them positional parameters"
                raise ArgumentError(f"{name}: {what}: graphc passes arguments by position; make {fix}")
        elif given and value is not parameter.default:
            out += _defaults(name, pending, parameter.name) + [value]
            pending = []
        else:
            pending.append((parameter.name, value))
    return tuple(out)


def _defaults(name: str, pending: list[tuple[str, Any]], given: str) -> list:
    """The defaults of the parameters before ``given``, passed by position so that it can be:
    numbers, arrays and lists of them only, as every argument of a compiled call."""
    for parameter, default in pending:
        if not isinstance(default, (numbers.Real, np.ndarray, list, tuple, Value)) or isinstance(default, str):
            raise ArgumentError(f"{name}: {given!r} is given by keyword after {parameter!r}, whose default "
                                f"{default!r:.40} graphc cannot pass by position (a compiled call takes numbers, "
                                f"Values and arrays); pass {parameter!r} too, or put {given!r} before it")
    return [default for _, default in pending]


def _holds_the_name(compiled: Compiled) -> bool:
    """Whether fn's module-level name (``module.Class.method`` included) is ``compiled`` itself."""
    qualname = compiled.__dict__.get("__qualname__", "<none>")
    found: Any = sys.modules.get(compiled.__module__)
    if found is None or "<" in qualname:
        return False
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is compiled


def _unpickled(fn: Callable, backend: str, numerics: str) -> Compiled:
    return Compiled(fn, backend=backend, numerics=numerics)
