"""Python backend: a Graph as a flat CPython function, one SSA assignment per node.

Two shapes, both plain readable Python:

* ``generate(graph)`` -- ``def f(inputs, params): ...; return (outputs)``;
* ``generate(joint, seed=..., n_forward=k)`` for a joint graph from
  :func:`graphc.autodiff.grad` -- a generator that computes the first ``k`` outputs,
  ``yield``s them, receives the seed, and computes the gradients from the still-live
  forward locals: forward and backward share one frame, so nothing is recomputed and
  nothing is copied.

Measured on CPython 3.11 (see ``bench/compile.py``): compiling generated code costs about
7-10 us per line and running it 35-50 ns per line, both flat in function size (redundant
parentheses cost 70% more compile time: the code has none); but CPython's compiler needs
~2.3 KB per line, 2.3 GB for one function of 10^6 lines.  So graphs above
``STRAIGHT_LIMIT`` ops become part functions of ``PART_SIZE`` ops that exchange values
through one list, each compiled on its own, and parts of the same shape share one function
(:mod:`graphc.codegen.python_parts`): compile memory stays bounded, a long chain compiles
a few parts, and graphs of ordinary size stay one straight-line function.

Each node is spelled from :mod:`graphc.codegen.python_floats`'s table, the same in a
straight function and in a part (:meth:`_Writer.spelled`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import ops
from ..graph import Graph, node_names
from ..names import Namespace
from . import loader, python_parts
from .common import header, python_number, spell, tuple_literal, wrap_assign
from .python_floats import NAMESPACE, SPELLINGS
from .python_parts import PART_SIZE, section_end

STRAIGHT_LIMIT = 200_000


def generate(graph: Graph, name: str, *, seed: int | None = None, n_forward: int | None = None,
             part_size: int = PART_SIZE, straight_limit: int = STRAIGHT_LIMIT) -> tuple[str, str, list[int]]:
    """Source text, entry-point name, and the offsets where separately compilable blocks start."""
    namespace, entry = _namespace(name)
    outputs = graph.outputs
    if seed is None:
        sections = [_section(graph, outputs)]
        yields = [outputs]
    else:
        first = _section(graph, outputs[:n_forward])
        sections = [first, _section(graph, outputs, first)]
        yields = [outputs[:n_forward], outputs[n_forward:]]
    inputs = [i for i in graph.inputs if i != seed]
    straight = sum(len(s) for s in sections) <= straight_limit
    top = _header(graph, entry, seed, n_forward, sum(len(s) for s in sections))
    # parts name only constants (their literals): each part names its own values
    body = _Writer(graph, node_names(graph, namespace) if straight else python_parts.constant_names(graph))
    if straight:
        text, blocks = body.straight(entry, inputs, seed, sections, yields), [0]  # character offsets
    else:
        text, blocks = body.parts(entry, inputs, seed, sections, yields, part_size)
    return top + text, entry, [len(top) + b for b in blocks]


def names_in_code(graph: Graph, name: str) -> list[str]:
    """The names :func:`generate` gives ``graph``'s nodes in a function called ``name`` (of
    up to STRAIGHT_LIMIT lines): :attr:`Graph.names`, but for a label the code spells
    otherwise because the code itself uses it (``inputs`` there is ``inputs_1``)."""
    return node_names(graph, _namespace(name)[0])


def _namespace(name: str) -> tuple[Namespace, str]:
    """The names the generated code holds for itself, and the entry point's name drawn from them."""
    namespace = Namespace(set(NAMESPACE) | {"inputs", "params", "e"})
    return namespace, namespace.create(name, "fn")


def compile_graph(graph: Graph, name: str, **kwargs) -> tuple[Callable, str]:
    """Generate and load: the Python function for ``graph`` and its source."""
    source, entry, blocks = generate(graph, name, **kwargs)
    return loader.load(source, entry, NAMESPACE, label=name, blocks=blocks), source


def _section(graph: Graph, outputs: list[int], exclude: list[int] = ()) -> list[int]:
    """The op nodes ``outputs`` depend on, in id order, but those in ``exclude``."""
    wanted = np.array(graph.live(outputs), dtype=bool) & (graph.arrays.lengths > 0)
    wanted[np.asarray(exclude, dtype=np.int64)] = False
    return np.flatnonzero(wanted).tolist()


def _header(graph: Graph, entry: str, seed: int | None, n_forward: int | None, lines: int) -> str:
    n_grads = len(graph.outputs) - (n_forward or 0)
    what = [f"{entry}: forward ({n_forward} output(s)); then, sent the seed, {n_grads} gradient(s) of one output",
            "(a generator: next() runs the forward part, send(seed) the backward part)."] if seed is not None else \
        [f"{entry}: {len(graph.outputs)} output(s) from {len(graph.inputs)} input(s) and {len(graph.params)} param(s)."]
    return header("Python", what + [f"{lines:,} operations: {graph.op_mix() or 'none'}."])


class _Writer:
    """Renders node lines, either as one function or as part functions sharing a list."""

    def __init__(self, graph: Graph, names: list[str]) -> None:
        self.graph, self.names = graph, names
        self.shapes = graph.shapes if any(not ops.TABLE[op].elementwise for op in set(graph.ops)
                                          if op not in ops.LEAVES) else None
        # The common case without a call per node into spell(): an op of no parameters
        # spelled by a format string (elementwise ones only where the node is a scalar).
        self._plain = {name: (spelling, ops.TABLE[name].elementwise) for name, spelling in SPELLINGS.items()
                       if isinstance(spelling, str) and not ops.TABLE[name].attr_names}

    def line(self, i: int, operand: Callable[[int], str] | None = None) -> str:
        """Node ``i``'s assignment, each operand ``a`` written ``operand(a)`` (its name by default)."""
        return f"{self.names[i]} = {self.expression(i, operand)}"

    def expression(self, i: int, operand: Callable[[int], str] | None = None) -> str:
        """Node ``i``'s right-hand side (see :meth:`line`)."""
        g, names = self.graph, self.names
        return self.spelled(i, [operand(a) for a in g.args[i]] if operand else [names[a] for a in g.args[i]])

    def spelled(self, i: int, operands: list[str]) -> str:
        """Node ``i``'s right-hand side, its operands written ``operands``."""
        g = self.graph
        plain = self._plain.get(g.ops[i])
        if plain is not None and not (plain[1] and self.shapes and self.shapes[i]):
            return plain[0].format(*operands)
        op = ops.TABLE[g.ops[i]]
        if self.shapes and op.elementwise and self.shapes[i]:  # lane by lane over flat tuples
            params = "".join(f"{python_number(v)}, " for v in g.attrs[i])
            return f"_lanes(_{op.name}, ({', '.join(operands)},){f', ({params})' if params else ''})"
        return spell(SPELLINGS, g.ops[i], operands, g.attrs[i])

    def unpack(self, ids: list[int], source: str, indent: str) -> list[str]:
        return wrap_assign([self.names[i] for i in ids], source, indent)

    def straight(self, entry: str, inputs: list[int], seed: int | None, sections, yields) -> str:
        out = [f"def {entry}(inputs, params):"]
        out += self.unpack(inputs, "inputs", "    ")
        out += self.unpack(self.graph.params, "params", "    ")
        for k, (section, results) in enumerate(zip(sections, yields)):
            out += ["    " + self.line(i) for i in section]
            out.append(section_end(k, tuple_literal([self.names[i] for i in results]),
                                    None if seed is None else self.names[seed]))
        return "\n".join(out) + "\n"

    def parts(self, entry: str, inputs: list[int], seed: int | None, sections, yields,
              size: int) -> tuple[str, list[int]]:
        """Part functions of ``size`` ops (see :mod:`graphc.codegen.python_parts`)."""
        return python_parts.write(self, entry, inputs, seed, sections, yields, size)
