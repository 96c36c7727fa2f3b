"""Where the C kernel reads each param and writes each gradient: the kernel layout.

The generated C function reads its params from one flat array and writes the gradients
into another in the same order, the *kernel layout*.  Each pack of params the program
reads as a tensor (a layer's weight matrix, its biases) is one contiguous block there, so
the kernel reads it in place through a pointer with a constant offset: no gather through
an index table, no copy.  A matrix that only matrix-vector products read is stored
transposed, as they read it, so no call transposes it either; its gradient (an outer
product summed over rows) is accumulated straight into the transposed block.

``perm[k]`` is the public slot (``compiled.params`` order) of kernel position ``k``:
``kernel = public[perm]`` and ``public[perm] = kernel``.  A *fixed* layout keeps the
public order (``perm`` the identity) and makes blocks only of packs that are already
contiguous there; a *free* layout places every pack it can.  When a free layout comes out
as the identity -- a function whose tensors' params are consecutive -- callers use the
public arrays as they are; otherwise ``train`` permutes once per call, not per step.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..graph import Graph
from .c_moves import Moves
from .common import run_starts


@dataclass(frozen=True)
class Block:
    """A pack of params stored contiguously at ``offset``; ``transposed``: as the transpose
    of its (m, n) matrix, ``(m, n)`` its shape."""

    offset: int
    transposed: bool = False
    shape: tuple = ()


class ParamLayout:
    """The kernel layout of a graph's params (see the module docstring)."""

    def __init__(self, graph: Graph, packs: list[int], transposed: set[int], free: bool) -> None:
        params = np.array(graph.params, np.int64)
        slot = np.full(len(graph), -1, np.int64)  # param node -> public slot
        slot[params] = np.arange(len(params))
        self.blocks: dict[int, Block] = {}
        placed = np.zeros(len(graph), bool)  # a free layout's params placed in a block
        order: list[np.ndarray] = []  # the blocks' params, in kernel order
        offset = 0
        for i in packs:
            lanes = np.array(graph.args[i], np.int64)
            shape = tuple(graph.shapes[i])
            flip = i in transposed
            if free:
                if placed[lanes].any() or _repeats(lanes):
                    continue
                self.blocks[i] = Block(offset, flip, shape)
                order.append(lanes.reshape(shape).T.ravel() if flip else lanes)
                placed[lanes] = True
                offset += len(lanes)
            elif not flip and _consecutive(slot[lanes]):
                self.blocks[i] = Block(int(slot[lanes[0]]), False, shape)
        kernel = np.concatenate(order + [params[~placed[params]]]) if free else params  # position -> param node
        where = np.zeros(len(graph), np.int64)
        where[kernel] = np.arange(len(kernel))
        self.position = dict(zip(kernel.tolist(), range(len(kernel))))  # param node -> kernel position
        self.perm = slot[kernel].astype(np.intp)
        self.identity = bool((self.perm == np.arange(len(kernel))).all())
        self.slot_position = where[params].tolist()  # public slot -> kernel position

    @functools.cached_property
    def moves(self) -> Moves:
        """How params move into this layout and gradients out of it (:mod:`.c_moves`): built
        when a call first needs it, for every call after."""
        return Moves(self.perm)

    @staticmethod
    def sum_run(positions: np.ndarray, lanes: np.ndarray, size: int) -> int | None:
        """The kernel offset where a summed tensor of ``size`` lanes can accumulate in place --
        its lanes are the gradients of consecutive kernel positions, lane order -- else None.
        ``positions`` and ``lanes``: the kernel position and the lane of each of its lanes
        that is a gradient."""
        return _run(positions, lanes, np.arange(size))

    @staticmethod
    def transposed_run(positions: np.ndarray, lanes: np.ndarray, m: int, n: int) -> int | None:
        """As :meth:`sum_run`, for an (m, n) outer product stored transposed: lane
        ``j * n + k`` at kernel position ``base + k * m + j``."""
        return _run(positions, lanes, np.arange(n * m).reshape(n, m).T.ravel())


def _consecutive(values: np.ndarray) -> bool:
    """Whether ``values`` run on one by one from the first."""
    return bool((values == values[0] + np.arange(len(values))).all())


def _repeats(values: np.ndarray) -> bool:
    """Whether some value is in ``values`` twice."""
    return len(run_starts(np.sort(values))) < len(values)


def _run(positions: np.ndarray, lanes: np.ndarray, offsets: np.ndarray) -> int | None:
    """The ``base`` at which each lane ``l`` of a tensor sits at ``base + offsets[l]``, when
    ``lanes`` are its every lane once (``positions`` where each sits), else None."""
    size = len(offsets)
    if len(lanes) != size or not size or lanes.min() < 0 or lanes.max() >= size:
        return None
    at = np.full(size, -1, np.int64)  # (a lane met twice leaves another at -1)
    at[lanes] = positions
    return int(at[0]) if at[0] >= 0 and np.array_equal(at, at[0] + offsets) else None
