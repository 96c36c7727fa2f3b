"""Reverse-mode automatic differentiation as a graph-to-graph transform.

``grad(graph, output=k)`` returns the *joint* graph: the forward graph unchanged (same
node ids), one new input ``seed`` (the cotangent of output ``k``; 1 for a plain
``backward()``), and new nodes computing, for every input and param, ``seed *
d(output k)/d(node)``.  Its outputs are the forward outputs followed by those gradients.

The derivative of each op is its ``vjp`` rule in the op table -- the same rule eager
``backward()`` runs on floats -- here run on :class:`Sym` handles that add nodes instead
of computing numbers.  Nodes are visited in the order eager ``backward()`` visits them
from output ``k`` (reversed depth-first post-order, operands left to right) and each
node's contributions are added in arrival order, so an unoptimized joint graph
reproduces eager gradients bit for bit -- for every output, not only the first (whose
order is the node numbering's, as a trace numbers nodes depth first from output 0).
"""
from __future__ import annotations

import numbers
import types
from typing import Any

from . import ops
from .errors import GraphcError
from .graph import Builder, Graph

SEED = "seed"


class Sym:
    """A node id in a Builder, with arithmetic that records nodes (for vjp rules)."""

    __slots__ = ("b", "i")

    def __init__(self, b: Builder, i: int) -> None:
        self.b, self.i = b, i

    def _id(self, other: Any) -> int:
        if isinstance(other, Sym):
            return other.i
        if isinstance(other, numbers.Real):
            return self.b.const(float(other))
        raise TypeError(f"cannot combine a graph node with {type(other).__name__}")

    def _op(self, name: str, *operands: int) -> "Sym":
        return Sym(self.b, self.b.add(name, operands))

    def __add__(self, other):
        return self._op("add", self.i, self._id(other))

    def __radd__(self, other):
        return self._op("add", self._id(other), self.i)

    def __sub__(self, other):
        return self._op("sub", self.i, self._id(other))

    def __rsub__(self, other):
        return self._op("sub", self._id(other), self.i)

    def __mul__(self, other):
        return self._op("mul", self.i, self._id(other))

    def __rmul__(self, other):
        return self._op("mul", self._id(other), self.i)

    def __neg__(self):
        return self._op("neg", self.i)


def algebra(b: Builder) -> types.SimpleNamespace:
    """``F`` for vjp rules: ``F.<op>(*operands, *params)`` adds an ``op`` node to ``b``."""

    def make(op: ops.Op):
        def apply(*xs):
            n = len(xs) - len(op.params)
            operands = tuple(x.i if isinstance(x, Sym) else b.const(float(x)) for x in xs[:n])
            return Sym(b, b.add(op.name, operands, tuple(xs[n:])))
        return apply

    return types.SimpleNamespace(**{name: make(op) for name, op in ops.TABLE.items()})


def grad(graph: Graph, output: int = 0, *, wrt_inputs: bool = True, wrt_params: bool = True) -> Graph:
    """The joint forward + gradient graph of output ``output`` (see the module docstring).

    Gradients are returned for every input (if ``wrt_inputs``), then every param (if
    ``wrt_params``), in ``graph.inputs`` / ``graph.params`` order; a node the output does
    not depend on gets the constant 0.
    """
    if not 0 <= output < len(graph.outputs):
        raise GraphcError(f"output {output} does not exist: the graph has {len(graph.outputs)} output(s)")
    n = len(graph)
    b = Builder.from_graph(graph)
    seed = b.add("input", (), (SEED,))
    wrt = (list(graph.inputs) if wrt_inputs else []) + (list(graph.params) if wrt_params else [])

    active = [False] * n  # depends on something we differentiate with respect to
    for i in wrt:
        active[i] = True
    for i, operands in enumerate(graph.args):
        if operands and not active[i]:
            active[i] = any(active[a] for a in operands)

    pending: dict[int, list[int]] = {}
    if active[graph.outputs[output]]:
        pending[graph.outputs[output]] = [seed]
    finished: dict[int, int] = {}
    F = algebra(b)
    for i in reversed(eager_order(graph, graph.outputs[output])):
        parts = pending.pop(i, None)
        if parts is None:
            continue
        if len(parts) == 1:
            g = parts[0]
        else:  # ((c1 + c2) + c3) + ...: the order in which eager backward() adds them
            g = b.add("add" if len(parts) == 2 else "sum", tuple(parts))
        operands = graph.args[i]
        if not operands:
            finished[i] = g
            continue
        rule = ops.TABLE[graph.ops[i]].vjp
        cotangents = rule(F, Sym(b, g), Sym(b, i), *[Sym(b, a) for a in operands], *graph.attrs[i])
        for a, c in zip(operands, cotangents):
            if c is not None and active[a]:
                pending.setdefault(a, []).append(c.i)

    grads = [finished[i] if i in finished else b.const(0.0) for i in wrt]
    return b.finish(list(graph.inputs) + [seed], list(graph.params), list(graph.outputs) + grads,
                    like=graph)


def eager_order(graph: Graph, root: int) -> list[int]:
    """The nodes ``root`` depends on, in eager ``backward()``'s order: depth first from
    ``root``, operands left to right, each node after its operands -- what
    :func:`graphc.engine.topological_order` gives for the same Values.  No recursion."""
    args = graph.args
    state = bytearray(len(graph))  # 0: not seen, 1: operands pending, 2: done
    order: list[int] = []
    stack = [root]
    while stack:
        i = stack.pop()
        if state[i] == 2:
            continue
        operands = args[i]
        if state[i] == 1 or not operands:
            state[i] = 2
            order.append(i)
            continue
        state[i] = 1
        stack.append(i)
        stack.extend(operands[::-1])
    return order
