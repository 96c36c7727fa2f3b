"""Where a NumPy program's params and gradients sit in their flat arrays, as index expressions.

The generated function takes the params as one float64 array and returns the gradients as
one, so it does no Python work per param.  A list of positions in such an array (a
weight matrix's params, in lane order; the params a tensor's row sums are the gradients
of) is spelled as cheaply as NumPy allows:

* an increasing arithmetic progression: a slice, ``a[3:40:2]`` -- a view;
* a *grid*, ``m`` runs of ``n`` consecutive positions ``s`` apart (a layer's weights, its
  biases in between, in ``compiled.params`` order): ``a[p:p + m*s].reshape(m, s)[:, :n]``
  -- a view, which reading as a column copies once, and writing fills in place;
* anything else: an index array made once, when the module loads (``_i0 = np.array(...)``,
  a name no user label can take: generated names never start with ``_``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

#: Numbers per line of an index array's literal.
_PER_LINE = 16


@dataclass
class Indexes:
    """The index arrays one generated module defines at load time, as source lines."""

    lines: list[str] = field(default_factory=list)
    count: int = 0

    def array(self, positions: Sequence[int]) -> str:
        """The name of a new module-level index array holding ``positions``."""
        name = f"_i{self.count}"
        self.count += 1
        rows = [", ".join(map(str, positions[k:k + _PER_LINE])) for k in range(0, len(positions), _PER_LINE)]
        self.lines.append(f"{name} = np.array([\n" + "".join(f"    {row},\n" for row in rows) + "])")
        return name


def _progression(positions: Sequence[int]) -> tuple[int, int, int] | None:
    """``(start, stop, step)`` of a slice giving ``positions``, if they are one (step > 0)."""
    start = int(positions[0])
    if len(positions) == 1:
        return start, start + 1, 1
    step = int(positions[1]) - start
    if step <= 0 or not np.array_equal(np.diff(positions), np.full(len(positions) - 1, step)):
        return None
    return start, int(positions[-1]) + 1, step


def _grid(positions: Sequence[int], length: int) -> tuple[int, int, int, int] | None:
    """``(start, m, s, n)`` if ``positions`` are m runs of n consecutive positions, s > n
    apart, within an array of ``length`` (so that ``a[start:start + m*s]`` is m*s long)."""
    positions = np.asarray(positions)
    breaks = np.flatnonzero(np.diff(positions) != 1)
    n = int(breaks[0]) + 1 if len(breaks) else len(positions)
    if len(positions) % n or len(positions) == n:
        return None
    m, start, s = len(positions) // n, int(positions[0]), int(positions[n] - positions[0])
    if s <= n or start + m * s > length:
        return None
    want = start + (np.arange(m) * s)[:, None] + np.arange(n)
    return (start, m, s, n) if np.array_equal(positions, want.ravel()) else None


def _slice(start: int, stop: int, step: int) -> str:
    return f"{start}:{stop}" + (f":{step}" if step != 1 else "")


def column(array: str, positions: Sequence[int], length: int, indexes: Indexes) -> str:
    """``array`` (of ``length`` entries) at ``positions``, in that order, as an (L, 1) column."""
    run = _progression(positions)
    if run is not None:
        return f"{array}[{_slice(*run)}, None]"
    grid = _grid(positions, length)
    if grid is not None:
        start, m, s, n = grid
        return f"{array}[{start}:{start + m * s}].reshape({m}, {s})[:, :{n}].reshape(-1, 1)"
    return f"{array}[{indexes.array(positions)}, None]"


def rows(array: str, positions: Sequence[int], indexes: Indexes) -> str:
    """The rows of the 2-D ``array`` at ``positions``, in that order: a view where a slice
    gives them, else a copy through an index array."""
    run = _progression(positions)
    return f"{array}[{_slice(*run)}]" if run is not None else f"{array}[{indexes.array(positions)}]"


def entries(array: str, positions: Sequence[int], length: int, indexes: Indexes) -> str:
    """``array`` at ``positions`` as a 1-D array (a view where a slice gives them)."""
    run = _progression(positions)
    if run is None:
        return f"{array}[{indexes.array(positions)}]"
    return array if run == (0, length, 1) else f"{array}[{_slice(*run)}]"


def assign(array: str, positions: Sequence[int], length: int, value: str, indexes: Indexes,
           scalar: bool = False) -> str:
    """A statement storing ``value`` into ``array`` (of ``length`` entries) at ``positions``
    (increasing), in place: a 1-D array with one entry per position, or a ``scalar`` for all."""
    run = _progression(positions)
    if run is not None:
        return f"{array}[{_slice(*run)}] = {value}"
    grid = _grid(positions, length)
    if grid is not None:
        start, m, s, n = grid
        shaped = value if scalar else f"{value}.reshape({m}, {n})"
        return f"{array}[{start}:{start + m * s}].reshape({m}, {s})[:, :{n}] = {shaped}"
    return f"{array}[{indexes.array(positions)}] = {value}"
