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
through one list, each compiled on its own: compile memory stays bounded, and graphs of
ordinary size stay one straight-line function.

Each node is one line spelled from :mod:`graphc.codegen.python_floats`'s table, the same in
a straight function and in a part (:meth:`_Writer.line`).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from .. import ops
from ..graph import Graph, node_names
from ..names import Namespace
from . import loader
from .common import header, python_number, spell, tuple_literal, wrap_assign
from .python_floats import NAMESPACE, SPELLINGS

STRAIGHT_LIMIT = 200_000
PART_SIZE = 1_000
FUSE_DEPTH = 8  # part functions nest single-use values at most this deep in one expression


def generate(graph: Graph, name: str, *, seed: int | None = None, n_forward: int | None = None,
             part_size: int = PART_SIZE, straight_limit: int = STRAIGHT_LIMIT) -> tuple[str, str, list[int]]:
    """Source text, entry-point name, and the offsets where separately compilable blocks start."""
    namespace = Namespace(set(NAMESPACE) | {"inputs", "params", "e"})
    entry = namespace.create(name, "fn")
    names = node_names(graph, namespace)
    outputs = graph.outputs
    if seed is None:
        sections = [_section(graph, outputs, exclude=None)]
        yields = [outputs]
    else:
        first = _section(graph, outputs[:n_forward], exclude=None)
        sections = [first, _section(graph, outputs, exclude=set(first))]
        yields = [outputs[:n_forward], outputs[n_forward:]]
    inputs = [i for i in graph.inputs if i != seed]
    top = _header(graph, entry, seed, n_forward, sum(len(s) for s in sections))
    body = _Writer(graph, names)
    if sum(len(s) for s in sections) <= straight_limit:
        text, blocks = body.straight(entry, inputs, seed, sections, yields), [0]  # character offsets
    else:
        text, blocks = body.parts(entry, inputs, seed, sections, yields, part_size)
    return top + text, entry, [len(top) + b for b in blocks]


def compile_graph(graph: Graph, name: str, **kwargs) -> tuple[Callable, str]:
    """Generate and load: the Python function for ``graph`` and its source."""
    source, entry, blocks = generate(graph, name, **kwargs)
    return loader.load(source, entry, NAMESPACE, label=name, blocks=blocks), source


def _section(graph: Graph, outputs: list[int], exclude: set | None) -> list[int]:
    live = graph.live(outputs)
    return [i for i, op in enumerate(graph.ops)
            if live[i] and op not in ops.LEAVES and (exclude is None or i not in exclude)]


def _header(graph: Graph, entry: str, seed: int | None, n_forward: int | None, lines: int) -> str:
    n_grads = len(graph.outputs) - (n_forward or 0)
    what = [f"{entry}: forward ({n_forward} output(s)); then, sent the seed, {n_grads} gradient(s) of one output",
            "(a generator: next() runs the forward part, send(seed) the backward part)."] if seed is not None else \
        [f"{entry}: {len(graph.outputs)} output(s) from {len(graph.inputs)} input(s) and {len(graph.params)} param(s)."]
    return header("Python", what + [f"{lines:,} operations: {graph.op_mix() or 'none'}."])


@dataclass
class _Layout:
    """Where part functions keep their values: ``chunks`` of ``(section, node ids)``, each
    node's ``owner`` chunk (-1 for leaves), and a ``slot`` in the shared list ``e`` for
    every input, param, seed, output and value read outside its chunk; ``exports[c]``
    are chunk c's values with a slot, in consecutive slots."""

    chunks: list[tuple[int, list[int]]]
    owner: list[int]
    slot: list[int]
    exports: list[list[int]]
    count: int


def _layout(graph: Graph, inputs: list[int], seed: int | None, sections, yields, size: int) -> _Layout:
    chunks = [(k, s[j:j + size]) for k, s in enumerate(sections) for j in range(0, len(s), size)]
    owner = [-1] * len(graph)
    for c, (_, chunk) in enumerate(chunks):
        for i in chunk:
            owner[i] = c
    slot = [-1] * len(graph)
    count = 0
    for i in list(inputs) + list(graph.params) + ([seed] if seed is not None else []):
        slot[i], count = count, count + 1
    exported = [False] * len(graph)
    for c, (_, chunk) in enumerate(chunks):
        for i in chunk:
            for a in graph.args[i]:
                if owner[a] >= 0 and owner[a] != c:
                    exported[a] = True
    for ids in yields:
        for o in ids:
            exported[o] = owner[o] >= 0
    exports = []
    for _, chunk in chunks:
        exports.append([i for i in chunk if exported[i]])
        for i in exports[-1]:
            slot[i], count = count, count + 1
    return _Layout(chunks, owner, slot, exports, count)


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
            out.append(_section_end(k, tuple_literal([self.names[i] for i in results]),
                                    None if seed is None else self.names[seed]))
        return "\n".join(out) + "\n"

    def parts(self, entry: str, inputs: list[int], seed: int | None, sections, yields,
              size: int) -> tuple[str, list[int]]:
        """Part functions of ``size`` ops sharing one list ``e`` (see :class:`_Layout`).
        Other parts read a value in place as ``e[slot]``, so no part copies what it needs;
        a part's exports leave in one slice assignment (a statement per value would add
        ~40% to the lines CPython compiles)."""
        layout = _layout(self.graph, inputs, seed, sections, yields, size)
        self.uses = self.graph.use_counts()
        self.is_const = [op == "const" for op in self.graph.ops]
        out: list[str] = []
        blocks: list[int] = []
        for c, (_, chunk) in enumerate(layout.chunks):
            blocks.append(len(out))
            out += self.part(f"_{entry}_part{c}", c, chunk, layout)
        blocks.append(len(out))
        out += self.entry(entry, len(inputs), seed, yields, layout)
        offsets, position = [], 0
        for start, end in zip([0] + blocks, blocks):  # line indices -> character offsets
            position += sum(map(len, out[start:end])) + end - start
            offsets.append(position)
        return "\n".join(out) + "\n", offsets

    def part(self, name: str, c: int, chunk: list[int], layout: _Layout) -> list[str]:
        """Part function ``c``: its nodes' lines, reading other parts' values from ``e``.

        A value its part uses once and nothing else reads is written inside its user's
        expression, parenthesized, instead of on a line of its own (up to ``FUSE_DEPTH``
        levels deep): CPython compiles an operation inside an expression in about half the
        time of a statement, and compiling is most of the cost of a graph this size.  The
        ops are pure, so computing a value where it is used gives the same bits.
        """
        g, names, owner, slot, uses = self.graph, self.names, layout.owner, layout.slot, self.uses
        node_args, plain, shapes, is_const = g.args, self._plain, self.shapes, self.is_const
        node_ops = g.ops
        inlined: dict[int, tuple[str, int]] = {}  # node -> (its expression, nesting depth)
        imported = self.imports(chunk, c, layout)
        out = [f"def {name}(e):"] + [f"    {names[a]} = e[{slot[a]}]" for a in imported]
        exported = set(layout.exports[c])
        for i in chunk:
            depth, texts = 1, []
            for a in node_args[i]:
                if a in inlined:
                    text, d = inlined.pop(a)
                    texts.append(f"({text})")
                    if d >= depth:
                        depth = d + 1
                elif is_const[a] or owner[a] == c or a in imported:
                    texts.append(names[a])
                else:
                    texts.append(f"e[{slot[a]}]")
            spelling = plain.get(node_ops[i])
            if spelling is not None and not (spelling[1] and shapes and shapes[i]):
                expression = spelling[0].format(*texts)
            else:
                expression = self.spelled(i, texts)
            if uses[i] == 1 and depth < FUSE_DEPTH and i not in exported:
                inlined[i] = (expression, depth)
            else:
                out.append(f"    {names[i]} = {expression}")
        exports = layout.exports[c]
        if exports:
            first = layout.slot[exports[0]]
            out += wrap_assign([names[i] for i in exports], f"e[{first}:{first + len(exports)}]", "    ", pack=True)
        return out + [""]

    def imports(self, chunk: list[int], c: int, layout: _Layout) -> dict[int, None]:
        """The values from outside part ``c`` (other parts, inputs, params) that it reads more
        than once: each is read from ``e`` into a local once (``w = e[1]``), in first-use
        order, instead of at every use (a subscript costs CPython's compiler three nodes)."""
        node_args, owner, is_const = self.graph.args, layout.owner, self.is_const
        reads = Counter([a for i in chunk for a in node_args[i] if owner[a] != c and not is_const[a]])
        return {a: None for a, count in reads.items() if count > 1}  # first-use order

    def entry(self, entry: str, n_in: int, seed: int | None, yields, layout: _Layout) -> list[str]:
        """The entry point: fills ``e`` with inputs and params, runs the parts section by section."""
        g, names, slot = self.graph, self.names, layout.slot
        n_par = len(g.params)
        out = [f"def {entry}(inputs, params):", f"    e = [None] * {layout.count}",
               f"    e[0:{n_in}] = inputs", f"    e[{n_in}:{n_in + n_par}] = params"]
        for k, results in enumerate(yields):
            out += [f"    _{entry}_part{c}(e)" for c, (section, _) in enumerate(layout.chunks) if section == k]
            value = tuple_literal([names[i] if g.ops[i] == "const" else f"e[{slot[i]}]" for i in results])
            out.append(_section_end(k, value, None if seed is None else f"e[{slot[seed]}]"))
        return out


def _section_end(k: int, value: str, seed_target: str | None) -> str:
    """The line ending section ``k``: ``return value`` for a plain function; in a
    generator, ``yield value``, the first one receiving the seed into ``seed_target``."""
    if seed_target is None:
        return f"    return {value}"
    return f"    {seed_target} = yield {value}" if k == 0 else f"    yield {value}"
