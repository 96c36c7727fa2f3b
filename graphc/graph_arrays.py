"""A graph's ops and operands as NumPy arrays: the passes' "anything to do?" checks in bulk.

Every pass first asks whether it would change the graph; on a graph of 10^6 nodes that
nothing changes (a long scalar chain), the answer costs a Python loop per pass and node --
seconds in all.  The same questions asked of arrays cost milliseconds: ``codes`` (each
node's op as a small integer, see :data:`CODES`), ``lengths`` (how many operands),
``indptr`` and ``indices`` (the operands of node ``i`` are
``indices[indptr[i]:indptr[i + 1]]``, repeats and order kept).  Built once per graph
(:attr:`graphc.graph.Graph.arrays`), in C-speed loops, and shared by the checks of every
pass.  The checks answer conservatively where they must (a candidate may still not
match): the passes decide in Python, on the few nodes the arrays point them to.
"""
from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

from . import ops

if TYPE_CHECKING:
    from .graph import Graph

class _Codes(dict):
    """Op name -> code; -1 for a name the op table lacks (``Graph.verify`` reports those)."""

    def __missing__(self, name: str) -> int:
        return -1


#: Each op name (leaf kinds first) as a small integer code.
CODES: dict[str, int] = _Codes({name: k for k, name in enumerate(ops.LEAVES + tuple(ops.TABLE))})
INPUT, PARAM, CONST = (CODES[leaf] for leaf in ops.LEAVES)


class GraphArrays:
    """The arrays of one graph (see the module docstring); ``uses`` on first use."""

    __slots__ = ("n", "codes", "lengths", "indptr", "indices", "outputs", "_reads", "_uses", "_users")

    def __init__(self, graph: Graph) -> None:
        n = self.n = len(graph.ops)
        self.codes = np.fromiter(map(CODES.__getitem__, graph.ops), np.int16, n)
        self.lengths = np.fromiter(map(len, graph.args), np.int64, n)
        self.indptr = np.zeros(n + 1, np.int64)
        np.cumsum(self.lengths, out=self.indptr[1:])
        self.indices = np.fromiter(chain.from_iterable(graph.args), np.int64, int(self.indptr[-1]))
        self.outputs = np.asarray(graph.outputs, dtype=np.int64)
        self._reads: np.ndarray | None = None
        self._uses: np.ndarray | None = None
        self._users: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def reads(self) -> np.ndarray:
        """For each node, how many operand slots read it (outputs not counted; do not write)."""
        if self._reads is None:
            self._reads = np.bincount(self.indices, minlength=self.n)
        return self._reads

    @property
    def uses(self) -> np.ndarray:
        """For each node, how many operand slots and outputs refer to it (Graph.use_counts)."""
        if self._uses is None:
            self._uses = self.reads + np.bincount(self.outputs, minlength=self.n)
        return self._uses

    def of(self, names) -> np.ndarray:
        """Whether each node's op is one of ``names``."""
        return np.isin(self.codes, [CODES[name] for name in names if name in CODES])

    def operand(self, nodes: np.ndarray, k: int) -> np.ndarray:
        """Operand ``k`` of each of ``nodes`` (each must have more than ``k`` operands)."""
        return self.indices[self.indptr[nodes] + k]

    def all_operands(self, flags: np.ndarray) -> np.ndarray:
        """For each node, whether ``flags`` holds for every one of its operands (False for leaves)."""
        result = np.zeros(self.n, bool)
        nodes = np.flatnonzero(self.lengths)
        if len(nodes):  # consecutive nodes with operands: their segments tile ``indices``
            result[nodes] = np.logical_and.reduceat(flags[self.indices], self.indptr[nodes])
        return result

    def users(self, i: int) -> list[int]:
        """The nodes using node ``i`` as an operand, in id order, once per operand slot."""
        if self._users is None:  # operand slots sorted by the node they name (stably: users in id order)
            order = np.argsort(self.indices, kind="stable")
            user = np.repeat(np.arange(self.n), self.lengths)[order]
            self._users = (user, np.searchsorted(self.indices[order], np.arange(self.n + 1)))
        user, start = self._users
        return user[start[i]:start[i + 1]].tolist()


class Users:
    """``users[i]``: :meth:`GraphArrays.users` of a graph's node ``i`` (a list per query)."""

    __slots__ = ("_arrays",)

    def __init__(self, arrays: GraphArrays) -> None:
        self._arrays = arrays

    def __getitem__(self, i: int) -> list[int]:
        return self._arrays.users(i)
