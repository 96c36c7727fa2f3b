"""A whole ``train`` call in native code: the C backend's training driver (:mod:`graphc.codegen.c_train`).

Params and the optimizer's state are moved into the kernel layout once per call (the
params by the kernel's block copies, :mod:`graphc.codegen.c_moves`), the data is the
arguments' own (N, width) arrays (:attr:`graphc.batches.Batch.parts`: copied only when not
C-contiguous float64), and the rows of every step come
from the :class:`~graphc.steps.StepPlan` the Python loop would follow.  The driver runs in
chunks of steps sized to take about :data:`CHUNK_SECONDS` each, so a KeyboardInterrupt
(Python sees it between two C calls) stops a long run within that time; the caller then
puts everything back as it was.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from .errors import GraphcError
from .steps import StepPlan

#: About how long one native call runs before Python gets control back (a Ctrl-C, the bar).
CHUNK_SECONDS = 0.1


def usable(program: Any, update: Any) -> bool:
    """Whether ``program`` has a driver and it can run ``update``'s optimizer."""
    return program.driver is not None and (update.optimizer is None or update.optimizer.native() is not None)


def run(program: Any, parts: list[np.ndarray], update: Any, plan: StepPlan, params: np.ndarray, bar=None,
        decay: tuple[np.ndarray, np.ndarray] | None = None, keep_partial: bool = False,
        nonfinite: Callable[[], None] | None = None) -> np.ndarray:
    """Every step of ``plan``: ``params`` (float64, in the signature's order) moved in place
    and each step's mean loss returned; the optimizer's state (and ``lr``, as the last step
    set it) written back only when all steps are done -- or, with ``keep_partial``, also
    when the run raises (a KeyboardInterrupt), as the steps completed by then left them.
    ``decay``: (which params, each step's scale) of an L2 penalty added to every step
    (:meth:`graphc.codegen.c_train.Driver.run`); the losses then come with it as a second
    row (shape (2, steps)).  ``nonfinite``: the data is not checked yet -- the driver checks
    each step's rows as it reads them and stops before a step whose rows hold an inf or nan;
    then this is called, which raises, and nothing is written back: the caller's check of
    the data, in the pass over it that training makes anyway."""
    perm = program.layout.perm
    optimizer = update.optimizer
    kind, hyper, names = ("lr", (), ()) if optimizer is None else optimizer.native()
    decay_rate = (0.0, 0.0) if optimizer is None else (float(optimizer.weight_decay), float(optimizer.decoupled))
    hyper = hyper + (0.0,) * (3 - len(hyper)) + decay_rate  # the driver's hyper[0:3], then [3:5]
    rates = plan.rates(update.lr)
    rows, bounds = plan.table()
    kernel = np.empty(len(perm))
    program.layout.moves.gather(params, kernel)
    where = None  # kernel position -> the optimizer's index of that param (argsort: a permutation's inverse)
    if optimizer is not None:
        where = np.argsort(update.order)[perm]
    state = [np.ascontiguousarray(np.asarray(getattr(optimizer, name), dtype=np.float64)[where]) for name in names]
    t = getattr(optimizer, "t", 0) if kind.startswith("adam") else 0
    losses = np.empty((2, plan.total))
    penalty = None  # the kernel positions of the decayed params, in the signature's order (the sum's), and scales
    if decay is not None:
        penalty = (np.ascontiguousarray(np.argsort(perm)[np.flatnonzero(decay[0])], dtype=np.int64),
                   np.ascontiguousarray(decay[1], dtype=np.float64))
    done = np.zeros(2, dtype=np.int64)  # steps completed; whether a step's rows were not finite

    def write_back() -> None:
        steps = int(done[0])
        program.layout.moves.scatter(kernel, params)
        if optimizer is not None:
            for name, array in zip(names, state):
                back = np.empty(len(perm))
                back[where] = array
                setattr(optimizer, name, back)
            if kind.startswith("adam"):
                optimizer.t = t + steps
            if steps and plan.schedule is not None:
                optimizer.lr = float(rates[steps - 1])
    try:
        _chunks(program.driver, parts, rows, bounds, plan.most_rows, kernel, kind,
                np.array(hyper, dtype=np.float64), rates, t, state, losses, bar, penalty, done,
                nonfinite is not None)
    except BaseException:
        if keep_partial:
            write_back()
        raise
    if done[1]:
        nonfinite()
        raise GraphcError("the training driver met an inf or nan the data check did not find (a graphc bug)")
    write_back()
    return losses if decay is not None else losses[0]


def _chunks(driver, parts, rows, bounds, width, kernel, kind, hyper, rates, t, state, losses, bar, penalty, done,
            check) -> None:
    """All steps, a chunk of them per driver call (see the module docstring); ``done[0]``
    counts the steps completed; with ``check``, the first step whose rows are not finite
    sets ``done[1]`` and ends the run before it.  A chunk is sized from the seconds per row
    the driver's last call took (the first call of a driver runs one step to find out), so
    a short run is one call.  A step costs some time per row (the kernel) and some per step
    (the update of every param): each is bounded by the last call's seconds per row and per
    step, and a chunk sized by the larger bound, so that a call of big batches does not size
    the next call's chunk of one-row steps (whose time is the update's) at 1,000 times 0.1 s.
    The bound errs short, never long: that first chunk may be small, and the next is sized
    from its own steps."""
    step, total = 0, losses.shape[1]
    while step < total:
        chunk = 1
        if driver.seconds is not None:
            per_step, per_row = driver.seconds
            rows_per_step = max(1, int(bounds[step + 1] - bounds[step]))
            chunk = max(1, int(CHUNK_SECONDS / max(per_step, per_row * rows_per_step)))
        end = min(total, step + chunk)
        began = time.perf_counter()
        decay = None if penalty is None else (penalty[0], penalty[1][step:end], losses[1, step:end])
        driver.run(parts, rows, bounds[step:end + 1], width, kernel, kind, hyper, rates[step:end], t + step, state,
                   losses[0, step:end], decay, done, check=check)
        if done[1]:
            return
        seconds = max(time.perf_counter() - began, 1e-9)
        driver.seconds = (seconds / (end - step), seconds / max(1, int(bounds[end] - bounds[step])))
        if bar is not None:
            for value in losses[0, step:end].tolist():
                bar.update(loss=value)
        step = end
