"""Which rows each training step takes, and at what learning rate: ``train``'s plan.

``train`` runs ``epochs`` passes over the rows; each pass takes them in ``order`` (or as
given), or -- with ``shuffle`` -- in ``rng.permutation(n)`` of a NumPy Generator drawn
anew for each epoch, and cuts them into batches of ``batch_size`` (the last one of a pass
may be smaller).  Step ``k`` (counting from 0 within the call) moves at ``schedule(k)``, or
at the base rate.  The Python loop and the native driver read the same plan, so they take
the same steps.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from .errors import ArgumentError, ShapeError


def rng_of(shuffle: Any) -> Any:
    """The generator ``shuffle`` asks for: None for False/None, a fresh one for True, a
    seeded one for an int, or the Generator (or RandomState) given."""
    if shuffle is None or shuffle is False:
        return None
    if shuffle is True:
        return np.random.default_rng()
    if isinstance(shuffle, (int, np.integer)):
        if shuffle < 0:  # NumPy's own error would name neither the argument nor what it takes
            raise ArgumentError(f"shuffle: an int seed must be >= 0; got {int(shuffle)}")
        return np.random.default_rng(int(shuffle))
    if isinstance(shuffle, (np.random.Generator, np.random.RandomState)):
        return shuffle
    raise ArgumentError(f"shuffle must be True, False, an int seed or a numpy.random.Generator; "
                        f"got {type(shuffle).__name__}")


class StepPlan:
    """The rows and learning rate of every step of one ``train`` call (see the module docstring)."""

    def __init__(self, n: int, batch_size: Any = None, order: Any = None, epochs: Any = 1, shuffle: Any = False,
                 schedule: Callable[[int], float] | None = None) -> None:
        size = batch_size
        if size is not None and (not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1):
            raise ArgumentError(f"batch_size must be a positive int; got {batch_size!r}")
        if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
            raise ArgumentError(f"epochs must be an int >= 0; got {epochs!r}")
        if schedule is not None and not callable(schedule):
            raise ArgumentError(f"schedule must be a function of the step number; got {type(schedule).__name__}")
        self.rng = rng_of(shuffle)
        if order is not None and self.rng is not None:
            raise ArgumentError("train takes order= or shuffle=, not both")
        self.rows = None
        if order is not None:
            rows = np.asarray(order)
            if rows.size == 0 and rows.ndim == 1:
                rows = rows.astype(np.int64)  # [] is float to NumPy: no rows, no steps
            if rows.ndim != 1 or rows.dtype.kind not in "iu" or (rows.size and (rows.min() < 0 or rows.max() >= n)):
                raise ShapeError(f"order must be a 1-D array of ints, row numbers from 0 to {n - 1}; got "
                                 f"{_described(rows)}")
            self.rows = rows.astype(np.int64)
        count = n if self.rows is None else len(self.rows)
        if size is None:  # all of them: every row of the pass, which order= may make more or fewer than n
            size = max(count, 1)
        self.n, self.size, self.epochs, self.schedule = n, int(size), int(epochs), schedule
        self.per_epoch = -(-count // self.size)
        self.most_rows = min(self.size, count)  # that a step takes
        self.total = self.per_epoch * self.epochs

    def reads_every_row(self) -> bool:
        """Whether some step takes each of the rows."""
        return self.epochs > 0 and (self.rows is None or bool(np.bincount(self.rows, minlength=self.n).all()))

    def epoch_rows(self) -> np.ndarray | None:
        """The next epoch's row order (None: the rows as given)."""
        return self.rng.permutation(self.n).astype(np.int64) if self.rng is not None else self.rows

    def rates(self, lr: float) -> np.ndarray:
        """Each step's learning rate: ``schedule(k)``, else ``lr``; each checked."""
        if self.schedule is None:
            rates = np.empty(self.total)
            rates.fill(lr)  # np.full's own checks cost 4x this
            return rates
        from .batches import check_rate
        rates = [self.schedule(k) for k in range(self.total)]
        for rate in rates:
            check_rate(rate)
        return np.array(rates, dtype=np.float64)

    def steps(self, lr: float) -> Iterator[tuple[np.ndarray | None, float]]:
        """(rows, rate) of each step in turn; rows None: all of them, as given."""
        rates = self.rates(lr).tolist()
        k = 0
        for _ in range(self.epochs):
            rows = self.epoch_rows()
            count = self.n if rows is None else len(rows)
            for start in range(0, count, self.size):
                if rows is None and self.size >= count:
                    yield None, rates[k]
                else:
                    yield (np.arange(start, min(start + self.size, count)) if rows is None
                           else rows[start:start + self.size]), rates[k]
                k += 1

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every epoch's rows end to end, and where each step's rows start (one more entry:
        the end): int64 arrays, what the native driver reads."""
        orders = []
        for _ in range(self.epochs):
            rows = self.epoch_rows()
            orders.append(np.arange(self.n, dtype=np.int64) if rows is None else rows)
        rows = np.concatenate(orders) if orders else np.zeros(0, dtype=np.int64)
        count = len(rows) // self.epochs if self.epochs else 0
        starts = [e * count + s for e in range(self.epochs) for s in range(0, count, self.size)]
        return np.ascontiguousarray(rows, dtype=np.int64), np.array(starts + [len(rows)], dtype=np.int64)


def _described(rows: np.ndarray) -> str:
    """What an order that was refused holds, for its error message."""
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        return f"an array of shape {rows.shape} and dtype {rows.dtype}"
    return f"row numbers from {rows.min()} to {rows.max()}"
