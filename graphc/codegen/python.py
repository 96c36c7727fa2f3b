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
"""
from __future__ import annotations

import math
from typing import Callable

from .. import __version__, ops
from ..graph import Graph, node_names
from ..names import Namespace
from . import loader

STRAIGHT_LIMIT = 200_000
PART_SIZE = 20_000



def _lanes(f, operands: tuple, params: tuple = ()) -> tuple:
    """An elementwise op on tensors (flat tuples), lane by lane; scalar operands broadcast."""
    size = max(len(x) for x in operands if isinstance(x, tuple))
    return tuple(f(*[x[k] if isinstance(x, tuple) else x for x in operands], *params) for k in range(size))


#: What generated code may refer to: each op's float evaluation as ``_<op name>``, and
#: ``_lanes`` for an elementwise op on tensors (flat tuples).
NAMESPACE = {f"_{name}": op.eval for name, op in ops.TABLE.items()} | {
    "inf": math.inf, "nan": math.nan, "_lanes": _lanes}


def spell(op_name: str, operands: list[str], attr: tuple, column: str = "python") -> str:
    """The expression for one node in a backend's spelling (``column`` of the op table)."""
    op = ops.TABLE[op_name]
    spelling = getattr(op, column)
    if callable(spelling):
        return spelling(operands, attr)
    params = {p: str(v) if p == "i" else ops.format_number(v) for p, v in zip(op.params, attr)}  # i: a lane
    return spelling.format(*operands, **params)


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
    header = _header(graph, entry, seed, n_forward, sum(len(s) for s in sections))
    body = _Writer(graph, names)
    if sum(len(s) for s in sections) <= straight_limit:
        text, blocks = body.straight(entry, inputs, seed, sections, yields), [0]  # character offsets
    else:
        text, blocks = body.parts(entry, inputs, seed, sections, yields, part_size)
    return header + text, entry, [len(header) + b for b in blocks]


def compile_graph(graph: Graph, name: str, **kwargs) -> tuple[Callable, str]:
    """Generate and load: the Python function for ``graph`` and its source."""
    source, entry, blocks = generate(graph, name, **kwargs)
    return loader.load(source, entry, NAMESPACE, label=name, blocks=blocks), source


def _section(graph: Graph, outputs: list[int], exclude: set | None) -> list[int]:
    live = [False] * len(graph)
    for o in outputs:
        live[o] = True
    for i in range(len(graph) - 1, -1, -1):
        if live[i]:
            for a in graph.args[i]:
                live[a] = True
    return [i for i, op in enumerate(graph.ops)
            if live[i] and op not in ops.LEAVES and (exclude is None or i not in exclude)]


def _header(graph: Graph, entry: str, seed: int | None, n_forward: int | None, lines: int) -> str:
    counts = graph.counts()
    mix = ", ".join(f"{n:,} {op}" for op, n in counts.most_common() if op not in ops.LEAVES)
    n_grads = len(graph.outputs) - (n_forward or 0)
    what = (f"# {entry}: forward ({n_forward} output(s)); then, sent the seed, {n_grads} gradient(s) of one output\n"
            f"# (a generator: next() runs the forward part, send(seed) the backward part).\n"
            if seed is not None else f"# {entry}: {len(graph.outputs)} output(s) from "
                                     f"{len(graph.inputs)} input(s) and {len(graph.params)} param(s).\n")
    return (f"# Generated by graphc {__version__} (Python backend). Do not edit: regenerate instead.\n"
            f"{what}# {lines:,} operations: {mix or 'none'}.\n\n")


def wrap_assign(names: list[str], other: str, indent: str, pack: bool = False) -> list[str]:
    """``(a, b, c) = other`` (or ``other = (a, b, c)`` with ``pack``), wrapped at 100 columns."""
    if not names:
        return [f"{indent}{other} = ()"] if pack else []
    items = [n + "," for n in names[:-1]] + [names[-1] + ("," if len(names) == 1 else "") + ")"]
    lines, current = [], indent + ("(" if not pack else f"{other} = (")
    for item in items:
        if len(current) + len(item) + 1 > 100 and not current.endswith("("):
            lines.append(current.rstrip())
            current = indent + " " * (1 if not pack else len(other) + 4)
        current += item + " "
    lines.append(current.rstrip() + ("" if pack else f" = {other}"))
    return lines


class _Writer:
    """Renders node lines, either as one function or as part functions sharing a list."""

    def __init__(self, graph: Graph, names: list[str]) -> None:
        self.graph, self.names = graph, names
        self.shapes = graph.shapes if any(not ops.TABLE[op].elementwise for op in set(graph.ops)
                                          if op not in ops.LEAVES) else None

    def line(self, i: int) -> str:
        g, names = self.graph, self.names
        operands = [names[a] for a in g.args[i]]
        op = ops.TABLE[g.ops[i]]
        if self.shapes and op.elementwise and self.shapes[i]:  # lane by lane over flat tuples
            params = "".join(f"{ops.format_number(v)}, " for v in g.attrs[i])
            return f"{names[i]} = _lanes(_{op.name}, ({', '.join(operands)},){f', ({params})' if params else ''})"
        return f"{names[i]} = {spell(g.ops[i], operands, g.attrs[i])}"

    def tuple_of(self, ids: list[int], name=None) -> str:
        name = name or (lambda i: self.names[i])
        items = [name(i) for i in ids]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    def unpack(self, ids: list[int], source: str, indent: str) -> list[str]:
        return wrap_assign([self.names[i] for i in ids], source, indent)

    def straight(self, entry: str, inputs: list[int], seed: int | None, sections, yields) -> str:
        out = [f"def {entry}(inputs, params):"]
        out += self.unpack(inputs, "inputs", "    ")
        out += self.unpack(self.graph.params, "params", "    ")
        for k, (section, results) in enumerate(zip(sections, yields)):
            out += ["    " + self.line(i) for i in section]
            if seed is None:
                out.append(f"    return {self.tuple_of(results)}")
            elif k == 0:
                out.append(f"    {self.names[seed]} = yield {self.tuple_of(results)}")
            else:
                out.append(f"    yield {self.tuple_of(results)}")
        return "\n".join(out) + "\n"

    def parts(self, entry: str, inputs: list[int], seed: int | None, sections, yields,
              size: int) -> tuple[str, list[int]]:
        """Part functions of ``size`` ops sharing one list ``e``: a value used outside the
        part that computes it (and every input, param and output) has a slot in ``e``;
        other parts read it in place as ``e[slot]``, so no part copies what it needs."""
        g, names = self.graph, self.names
        chunks = [(k, s[j:j + size]) for k, s in enumerate(sections) for j in range(0, len(s), size)]
        owner = [-1] * len(g)
        for c, (_, chunk) in enumerate(chunks):
            for i in chunk:
                owner[i] = c
        slot = [-1] * len(g)
        count = 0
        for i in list(inputs) + list(g.params) + ([seed] if seed is not None else []):
            slot[i], count = count, count + 1
        for c, (_, chunk) in enumerate(chunks):
            for i in chunk:
                for a in g.args[i]:
                    if slot[a] < 0 and g.ops[a] != "const" and owner[a] != c:
                        slot[a], count = count, count + 1
        for ids in yields:
            for o in ids:
                if slot[o] < 0 and g.ops[o] != "const":
                    slot[o], count = count, count + 1
        out: list[str] = []
        blocks: list[int] = []
        part_names = []
        for c, (_, chunk) in enumerate(chunks):
            part = f"_{entry}_part{c}"
            part_names.append(part)
            blocks.append(len(out))
            out.append(f"def {part}(e):")

            def operand(a: int, c: int = c) -> str:
                return names[a] if g.ops[a] == "const" or owner[a] == c else f"e[{slot[a]}]"
            for i in chunk:
                expression = spell(g.ops[i], [operand(a) for a in g.args[i]], g.attrs[i])
                out.append(f"    {names[i]} = {expression}")
            out += [f"    e[{slot[i]}] = {names[i]}" for i in chunk if slot[i] >= 0]
            out.append("")
        n_in, n_par = len(inputs), len(g.params)
        blocks.append(len(out))
        out.append(f"def {entry}(inputs, params):")
        out.append(f"    e = [None] * {count}")
        out.append(f"    e[0:{n_in}] = inputs")
        out.append(f"    e[{n_in}:{n_in + n_par}] = params")
        for k, results in enumerate(yields):
            out += [f"    {part_names[c]}(e)" for c, (sec, _) in enumerate(chunks) if sec == k]
            value = self.tuple_of(results, lambda i: names[i] if g.ops[i] == "const" else f"e[{slot[i]}]")
            if seed is None:
                out.append(f"    return {value}")
            elif k == 0:
                out.append(f"    e[{slot[seed]}] = yield {value}")
            else:
                out.append(f"    yield {value}")
        offsets, position = [], 0
        for k, text in enumerate(out):  # line indices -> character offsets
            if len(offsets) < len(blocks) and blocks[len(offsets)] == k:
                offsets.append(position)
            position += len(text) + 1
        return "\n".join(out) + "\n", offsets
