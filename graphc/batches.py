"""Batches and training: a compiled function over rows of NumPy arrays, in one batched call.

``map``, ``mean``, ``mean_and_grad`` and ``train`` check their arguments into a
:class:`Batch` (the data as one (n_inputs, N) array) and run the signature's batched
program (:mod:`graphc.backends`); ``train`` keeps the params in an array between steps.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

from .bridge import mean_node
from .engine import Value, claim_writes, new_epoch
from .errors import ArgumentError, DataError, ShapeError
from . import deferred_data, row_threads, train_native
from .optim import Optimizer, check_range
from .signature import Signature
from .steps import StepPlan
from .tree import SCALAR, is_namedtuple, numbers_array, plain_array, unflatten

class Batch:
    """Batched arguments, checked: their common row count, one example row, and the data as
    an (n_inputs, N) float array (``cols``: one contiguous row per scalar input, made when first
    read) or as the arguments' own rows (``parts``: what train's driver reads)."""

    def __init__(self, args: tuple, names: list[str], allow_nonfinite: bool = False, later: bool = False) -> None:
        """``later``: the arrays' numbers are checked for inf and nan (unless
        ``allow_nonfinite``) when :meth:`check_finite` is called, but for the first row's,
        when a trace reads them (:attr:`rows`): ``train`` leaves that check to its native driver."""
        if not args:
            raise ArgumentError("map and mean need at least one batched argument (an array of shape (N, ...))")
        arrays = [_checked_array(arg, name, allow_nonfinite or later) for arg, name in zip(args, names)]
        self._unchecked = [] if allow_nonfinite or not later else list(zip(arrays, names))
        self.n = arrays[0].shape[0]
        for array in arrays:
            if array.shape[0] != self.n:
                sizes = ", ".join(f"{nm} has {a.shape[0]}" for a, nm in zip(arrays, names))
                raise ShapeError(f"batched arguments must have the same number of rows: {sizes}")
        # the row signature, as flatten_args would describe one row (a scalar or an array)
        self.tree = ("tuple", tuple(SCALAR if a.ndim == 1 else ("array", a.shape[1:]) for a in arrays))
        self._arrays = arrays

    @functools.cached_property
    def cols(self) -> np.ndarray:
        widths = [math.prod(a.shape[1:]) for a in self._arrays]
        cols = np.empty((sum(widths), self.n))
        row = 0
        for a, width in zip(self._arrays, widths):
            cols[row:row + width] = a.reshape(self.n, width).T
            row += width
        return cols

    @functools.cached_property
    def parts(self) -> list[np.ndarray]:
        """Each argument as a C-contiguous float64 (N, width) array: itself (a view) when it is one."""
        return [np.ascontiguousarray(a.reshape(self.n, math.prod(a.shape[1:])), dtype=np.float64)
                for a in self._arrays]

    @property
    def rows(self) -> tuple:
        """One example row per argument (zeros when there are no rows): what a trace sees,
        checked for inf and nan (unless allowed)."""
        for array, name in self._unchecked:
            _require_finite(array[:1], name)
        return tuple(a[0] if self.n else np.zeros(a.shape[1:]) for a in self._arrays)

    @property
    def unchecked(self) -> bool:
        """Whether :meth:`check_finite` has yet to look at the numbers."""
        return bool(self._unchecked)

    def check_finite(self) -> None:
        """The check for inf and nan that a ``later`` batch put off (DataError naming the first)."""
        for array, name in self._unchecked:
            _require_finite(array, name)
        self._unchecked = []

    def require_rows(self, what: str) -> None:
        if self.n == 0:
            raise ShapeError(f"{what} over zero rows is undefined: pass at least one row")


def _checked_array(arg: Any, name: str, allow_nonfinite: bool) -> np.ndarray:
    if type(arg) is np.ndarray and arg.dtype.kind in "biuf" and arg.ndim and arg.dtype.itemsize <= 8:
        array = arg  # the common case: no conversion
    else:
        array = _as_batched_array(arg, name)
    if not allow_nonfinite:
        _require_finite(array, name)
    return array


#: Arrays of up to this many numbers are checked by one ``isfinite`` (see _all_finite): 2.1
#: against 2.8 us at 4,096, 3.9 against 4.7 at 16,384.
SMALL = 1 << 14


def _require_finite(array: np.ndarray, name: str) -> None:
    """DataError naming the first inf or nan of ``array`` (argument ``name``), if there is one."""
    if array.dtype.kind == "f" and not _all_finite(array):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise DataError(f"argument {name}: expected finite numbers; {name}{list(bad)} is {array[bad]} "
                        f"({NONFINITE_ADVICE})")


#: What a DataError for nan or inf in batched data advises.
NONFINITE_ADVICE = "pass allow_nonfinite=True to compute with nan and inf"


def _all_finite(array: np.ndarray) -> bool:
    """Whether every number is finite: their sum is, unless some is not (an inf or nan makes
    any sum inf or nan) or the sum overflows, which the full test then tells apart.  One
    pass over the data without a temporary: 0.36 against 0.56 ms for a 2048x784 array that
    has left the cache, as it has by the next ``train`` call.  Up to SMALL numbers (a row, a
    small batch), one ``isfinite`` costs less than the sum's error-state switch."""
    if array.size <= SMALL:
        return bool(np.isfinite(array).all())
    with np.errstate(over="ignore", invalid="ignore"):  # the sum's overflow or inf - inf is no news to the caller
        total = np.add.reduce(array, axis=None)
    return math.isfinite(total) or bool(np.isfinite(array).all())


def _as_batched_array(arg: Any, name: str) -> np.ndarray:
    if isinstance(arg, dict) or is_namedtuple(type(arg)):  # np.asarray: an object, or its fields as rows
        raise ArgumentError(f"argument {name}: map, mean and train take arrays with a leading batch axis, "
                            f"one per argument; got a {'dict' if isinstance(arg, dict) else type(arg).__name__} "
                            f"(pass its arrays as arguments of their own)")
    if type(arg) is tuple and any(isinstance(item, np.ndarray) and item.ndim for item in arg):
        raise ArgumentError(f"argument {name}: map, mean and train read an argument as one array of rows; "
                            f"got a tuple of {len(arg)} arrays, which np.asarray would stack as {len(arg)} rows "
                            f"(JAX's vmap would map over each): pass np.column_stack(...) for rows made of "
                            f"their items, np.stack(...) for the arrays as rows")
    given = arg.data if isinstance(arg, Value) else arg
    try:
        array = np.asarray(given)
    except ValueError as error:  # ragged nested lists
        raise ShapeError(f"argument {name}: cannot be read as an array of shape (N, ...): {error}") from None
    except (TypeError, RuntimeError) as error:  # a torch tensor that requires grad, or of a dtype NumPy lacks
        raise ArgumentError(f"argument {name}: NumPy cannot read this {type(given).__name__} as an array "
                            f"({type(error).__name__}: {error}); pass a NumPy array of numbers "
                            f"(x.detach().numpy() for a torch tensor, cast to float64 first)"[:400]) from None
    if array.dtype == object:  # Python ints past int64 (2**64) are numbers too, as in a scalar call
        try:
            array = numbers_array(array)
        except OverflowError:
            raise DataError(f"argument {name}: expected numbers that fit in a float (|x| < 1.8e308); got an "
                            f"int too large") from None
    if array.dtype.kind not in "biuf":
        raise ArgumentError(f"argument {name}: expected an array of numbers with a leading batch axis; "
                            f"got dtype {array.dtype}")
    if array.ndim == 0:
        raise ShapeError(f"argument {name}: expected a leading batch axis (shape (N, ...)); got a scalar")
    return plain_array(arg if isinstance(arg, np.ma.MaskedArray) else array, f"argument {name}")


def forward(signature: Signature, batch: Batch, params: np.ndarray, threads: int = 1) -> Any:
    """fn on every row: its output structure with each scalar an (N,) array (the rows split
    across ``threads`` threads: the same numbers, but for ``numerics="fast"``)."""
    if not signature.n_outputs:  # fn returned an empty structure, deciding nothing: nothing to run
        return unflatten(signature.out_tree, iter(()))
    function = signature.run(signature.batched_program("forward"))
    cols = batch.cols

    def rows(s: slice) -> list:
        with np.errstate(all="ignore"):
            return function(cols[:, s], params, 0.0, s.stop - s.start)[0]
    parts = row_threads.over_slices(rows, batch.n, threads)
    if len(parts) > 1:
        per_row = [np.concatenate([np.asarray(part[k], dtype=np.float64) for part in parts])
                   for k in range(len(parts[0]))]
    else:
        per_row = _own_arrays([np.asarray(values, dtype=np.float64) for values in parts[0]])
    return unflatten(signature.out_tree, iter(per_row))


def _own_arrays(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """``arrays``, each its own memory: the NumPy program returns one array for the outputs
    CSE made one (``x`` and ``x * 1.0``), which a caller writing into one would change both of
    (an outside hunt).  Its outputs are whole columns, so two that share memory start at the
    same address."""
    seen: set[int] = set()
    owned = []
    for a in arrays:
        address = a.__array_interface__["data"][0]
        if address in seen:
            a = a.copy()
        elif a.size:
            seen.add(address)
        owned.append(a)
    return owned


def mean_and_grads(signature: Signature, cols: np.ndarray, n: int, params: list | np.ndarray,
                   out: np.ndarray | None = None, threads: int = 1) -> tuple[float, Any]:
    """The mean of fn over the n rows of ``cols`` and its param gradients (a list, or an
    array when ``params`` is one and the backend can give one; ``out`` when given, a
    float64 array the gradients are written into); with ``threads`` > 1, the rows split
    across threads (:mod:`graphc.row_threads`)."""
    program = signature.batched_program("mean")
    function = signature.run(program)
    if threads > 1 and n > 1:
        return _mean_and_grads_in_threads(function, cols, n, params, out, threads)
    with np.errstate(all="ignore"):  # inf and nan are results here, not warnings (values.mean() too)
        if out is not None and program.driver is not None:  # the C kernel writes into out
            (values,), grads = function(cols, params, 1.0 / n, n, out=out)
        else:
            (values,), grads = function(cols, params, 1.0 / n, n)
            if out is not None:
                out[...] = grads
                grads = out
        return row_mean(values), grads


def _mean_and_grads_in_threads(function: Callable, cols: np.ndarray, n: int, params: list | np.ndarray,
                               out: np.ndarray | None, threads: int) -> tuple[float, Any]:
    """mean_and_grads over slices of the rows at once: the rows' values joined in order (the
    mean is one thread's), the partial gradient sums added in slice order."""
    def rows(s: slice) -> tuple:
        with np.errstate(all="ignore"):
            (values,), grads = function(cols[:, s], params, 1.0 / n, s.stop - s.start)
        return np.asarray(values, dtype=np.float64), grads
    parts = row_threads.over_slices(rows, n, threads)
    grads = row_threads.added_in_order([g for _, g in parts])
    if out is not None:
        out[...] = grads
        grads = out
    return row_mean(np.concatenate([values for values, _ in parts])), grads


def check_out(out: Any, n_params: int) -> np.ndarray:
    """``out=`` of ``mean_and_grad``: a writable C-contiguous float64 array of one entry per param."""
    if not isinstance(out, np.ndarray) or out.dtype != np.float64 or not out.flags.c_contiguous \
            or not out.flags.writeable:
        raise ArgumentError(f"out must be a writable C-contiguous float64 NumPy array; got "
                            f"{type(out).__name__}{f' of dtype {out.dtype}' if isinstance(out, np.ndarray) else ''}"
                            f"{'' if not isinstance(out, np.ndarray) or out.flags.c_contiguous else ' (not C-contiguous)'}")
    if out.shape != (n_params,):
        raise ShapeError(f"out must have shape ({n_params},), one entry per param; got {out.shape}")
    return out


def mean(signature: Signature, batch: Batch, threads: int = 1) -> Value:
    """The mean as a Value whose backward adds the mean gradient into the params' ``.grad``."""
    signature.require_scalar("mean")
    value, grads = mean_and_grads(signature, batch.cols, batch.n, signature.param_data(None, array=True),
                                  threads=threads)
    return mean_node(signature, value, np.asarray(grads, dtype=np.float64).tolist())


def row_mean(values: np.ndarray) -> float:
    """The mean of the rows' values, added first to last from +0.0 as ``sum(rows)`` adds
    Values (``np.add.accumulate`` is sequential, ``values.mean()`` pairwise): the same number
    on every backend.  (Adding +0.0 last equals starting from it: it only turns an all -0.0
    sum into +0.0.)"""
    return (float(np.add.accumulate(values)[-1]) + 0.0) / len(values)


def train_update(lr: Any, optimizer: Any) -> Callable[[Signature], Update]:
    """The update ``train`` applies to a signature's params array: plain SGD at ``lr``, or
    ``optimizer``'s (exactly one of them given), checked before anything is traced."""
    if (lr is None) == (optimizer is None):
        raise ArgumentError("train needs either lr= (plain SGD) or optimizer= (a graphc.optim optimizer), "
                            f"not {'both' if lr is not None else 'neither'}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise ArgumentError(f"optimizer must be a graphc.optim optimizer (SGD, Adam, AdamW); "
                            f"got {type(optimizer).__name__}")
    if optimizer is not None and type(optimizer).step is not Optimizer.step \
            and type(optimizer).apply is Optimizer.apply:
        raise ArgumentError(f"train runs the optimizer's apply(data, grad), the array form of step(), and "
                            f"{type(optimizer).__name__} overrides step(), which train would not run: move that "
                            f"code into apply() or _update(), or run its step() in a loop of "
                            f"compiled.mean(...).backward()")
    if lr is not None:
        check_rate(lr)
        update = Update(None, None, float(lr))
        return lambda signature: update
    check_rate(optimizer.lr, "optimizer.lr", narrow=True)  # a plain attribute, which a user may have set to anything
    optimizer.check()  # so are the others (a longdouble momentum, betas out of range: an outside hunt)
    return lambda signature: Update(optimizer, optimizer_order(signature, optimizer), optimizer.lr)


def check_rate(lr: Any, name: str = "lr", narrow: bool = False) -> None:
    """A learning rate: a number >= 0 (nan and negative rates: a ValueError, as optim.SGD
    gives), no NumPy float narrower than float64 unless ``narrow``: ``p.data -= lr * p.grad``,
    the step ``train`` takes, would compute in float32 with a ``np.float32`` lr, and
    ``train`` in float64 (as a trace refuses float32 numbers); an optimizer's own update
    computes in float64 with any lr."""
    if not (isinstance(lr, (int, float, np.integer, np.floating)) and not isinstance(lr, bool)):
        raise ArgumentError(f"{name} must be a number; got {type(lr).__name__}")
    if isinstance(lr, np.floating) and np.finfo(lr).bits < 64 and not narrow:
        raise ArgumentError(f"{name} is a numpy.{type(lr).__name__}: p.data -= lr * p.grad would step in that "
                            f"precision and train steps in float64; pass float(lr)")
    check_range(name, lr, 0.0, None)


class Update:
    """One training step's update of a params array: plain SGD at ``lr`` (``optimizer``
    None), or ``optimizer.apply`` in the signature's param order, its state kept in the
    optimizer's own order (``order[k]``: the signature slot of the optimizer's param k),
    so ``step()`` and ``train`` can take turns."""

    def __init__(self, optimizer: Optimizer | None, order: np.ndarray | None, lr: float) -> None:
        self.optimizer, self.order, self.lr = optimizer, order, lr

    def __call__(self, params: np.ndarray, grads: np.ndarray, lr: float) -> np.ndarray:
        if self.optimizer is None:
            params -= lr * grads  # p.data -= lr * p.grad, for all at once
            return params
        self.optimizer.lr = lr
        params[self.order] = self.optimizer.apply(params[self.order], grads[self.order])
        return params


def optimizer_order(signature: Signature, optimizer: Optimizer) -> np.ndarray:
    """Where each of the optimizer's params is in the signature's order; an error unless
    they are the same Values."""
    position = {id(p): k for k, p in enumerate(signature.params)}
    unread = sum(id(p) not in position for p in optimizer.params)
    if len(optimizer.params) != len(signature.params) or unread:
        ours = {id(p) for p in optimizer.params}
        missing = sum(id(p) not in ours for p in signature.params)
        raise ArgumentError(f"the optimizer updates {len(optimizer.params)} Values and {signature.name} reads "
                            f"{len(signature.params)} params: {unread} of the optimizer's are not read by it, "
                            f"{missing} of its params are not the optimizer's. train moves exactly the params "
                            f"the function reads: build the optimizer over compiled.params")
    return np.array([position[id(p)] for p in optimizer.params], dtype=np.intp)


def train(signature: Signature, batch: Batch, update: Update, plan: StepPlan, bar=None) -> np.ndarray:
    """Each step's mean loss, the params moved by ``update`` after each: in one native call
    where the backend has a training driver (:mod:`graphc.train_native`), else in a Python
    loop of the same steps.  All or nothing: if anything raises -- a KeyboardInterrupt
    included -- the params and the optimizer's state are put back as they were before the
    run.  ``bar``: a :func:`graphc.progress.progress_bar` told of each step, or None."""
    signature.require_scalar("train")
    program = signature.batched_program("mean")
    signature.run(program)  # the code this call runs: compiled.source
    optimizer = update.optimizer
    state = optimizer.snapshot() if optimizer is not None else None
    params = signature.param_data(None, array=True).copy()  # the steps move it in place
    native = train_native.usable(program, update)
    if batch.unchecked and not (native and plan.reads_every_row()):
        batch.check_finite()  # else the driver checks each step's rows as it reads them
    try:
        if native:
            losses = train_native.run(program, batch.parts, update, plan, params, bar,
                                      nonfinite=batch.check_finite if batch.unchecked else None)
        else:
            losses = _python_steps(signature, batch, update, plan, params, bar)
        if bar is not None:  # closed before the params move: a stderr that fails there (a broken
            bar.close()      # pipe, an interrupt) left them moved while train raised (an outside hunt)
    except BaseException:
        if state is not None:
            optimizer.rollback(state)
        raise
    before = new_epoch()  # first: no cache of the old numbers stays current if what follows is cut short
    deferred_data.defer(signature.params, params)  # written into the Values when one is next read
    epoch = claim_writes(before)
    if epoch is not None:  # no other write meanwhile: the next call need not read them again
        signature.remember_params(params, epoch)
    return losses


def _python_steps(signature: Signature, batch: Batch, update: Update, plan: StepPlan, params: np.ndarray,
                  bar) -> np.ndarray:
    """The steps as a Python loop of ``mean_and_grads`` and ``update``, on ``params`` in place."""
    losses = []
    for rows, lr in plan.steps(update.lr):
        cols = batch.cols if rows is None else np.ascontiguousarray(batch.cols[:, rows])
        value, grads = mean_and_grads(signature, cols, cols.shape[1], params)
        params[...] = update(params, np.asarray(grads, dtype=np.float64), lr)
        losses.append(value)
        if bar is not None:
            bar.update(loss=value)
    return np.array(losses)



class NativeRun:
    """Epochs of native training on one batch of data, checked once (the driver reads its
    arrays as they are): what the estimators' solver runs epoch by epoch (see :meth:`graphc.Compiled._native_run`)."""

    def __init__(self, signature: Signature, program: Any, batch: Batch) -> None:
        self.signature, self.program, self.batch = signature, program, batch

    def epoch(self, params: np.ndarray, optimizer: Optimizer, order: np.ndarray, batch_size: int,
              decay: tuple[np.ndarray, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One pass in ``order``, ``batch_size`` rows a step, ``optimizer`` (over the
        signature's params, in its order) stepping ``params`` in place; each step's mean
        loss and L2 penalty (zeros without ``decay``: (which params, alpha), the penalty
        ``alpha / (2 * rows) * sum(p * p)`` over them, as scikit-learn adds it).  An
        interrupt keeps the steps completed (as a Python loop of steps would)."""
        update = Update(optimizer, np.arange(len(params)), optimizer.lr)
        plan = StepPlan(self.batch.n, batch_size, order)
        scales = None
        if decay is not None:
            rows = np.diff(plan.table()[1])
            scales = (decay[0], np.array([decay[1] / (2 * int(b)) for b in rows]))
        losses = train_native.run(self.program, self.batch.parts, update, plan, params, None, scales,
                                  keep_partial=True)
        return (losses[0], losses[1]) if decay is not None else (losses, np.zeros(len(losses)))
