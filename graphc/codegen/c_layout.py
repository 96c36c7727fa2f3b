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
        slot = {p: k for k, p in enumerate(graph.params)}
        self.blocks: dict[int, Block] = {}
        order: list[int] = []  # kernel position -> param node
        if not free:
            order = list(graph.params)
        placed = {p: k for k, p in enumerate(order)}
        shapes = graph.shapes
        for i in packs:
            lanes = graph.args[i]
            flip = i in transposed
            m, n = shapes[i] if flip else (0, 0)
            sequence = [lanes[j * n + k] for k in range(n) for j in range(m)] if flip else list(lanes)
            if free:
                if len(set(lanes)) != len(lanes) or any(a in placed for a in lanes):
                    continue
                self.blocks[i] = Block(len(order), flip, tuple(shapes[i]))
                for a in sequence:
                    placed[a] = len(order)
                    order.append(a)
            elif not flip and [slot[a] for a in lanes] == list(range(slot[lanes[0]], slot[lanes[0]] + len(lanes))):
                self.blocks[i] = Block(slot[lanes[0]], False, tuple(shapes[i]))
        for p in graph.params:
            if p not in placed:
                placed[p] = len(order)
                order.append(p)
        self.position = placed  # param node -> kernel position
        self.perm = np.array([slot[p] for p in order], dtype=np.intp)
        self.identity = bool((self.perm == np.arange(len(order))).all())
        self.slot_position = [placed[p] for p in graph.params]  # public slot -> kernel position

    @functools.cached_property
    def moves(self) -> Moves:
        """How params move into this layout and gradients out of it (:mod:`.c_moves`): built
        when a call first needs it, for every call after."""
        return Moves(self.perm)

    @staticmethod
    def sum_run(pairs: list[tuple[int, int]], size: int) -> int | None:
        """The kernel offset where a summed tensor of ``size`` lanes can accumulate in place --
        its lanes are the gradients of consecutive kernel positions, lane order -- else None.
        ``pairs``: (kernel position, lane) of each of its lanes that is a gradient."""
        if len(pairs) != size:
            return None
        at = {lane: position for position, lane in pairs}
        base = at.get(0)
        return base if base is not None and all(at.get(k) == base + k for k in range(size)) else None

    @staticmethod
    def transposed_run(pairs: list[tuple[int, int]], m: int, n: int) -> int | None:
        """As :meth:`sum_run`, for an (m, n) outer product stored transposed: lane
        ``j * n + k`` at kernel position ``base + k * m + j``."""
        if len(pairs) != m * n:
            return None
        at = {lane: position for position, lane in pairs}
        base = at.get(0)
        if base is None:
            return None
        return base if all(at.get(j * n + k) == base + k * m + j for j in range(m) for k in range(n)) else None
