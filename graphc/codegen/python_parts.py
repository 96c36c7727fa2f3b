"""The Python backend's part functions: a graph too big for one function, in parts that share code.

CPython's compiler needs ~2.3 KB per line (2.3 GB for one function of 10^6 lines) and 7-10
us per line, whatever the function's size.  So graphs above ``STRAIGHT_LIMIT`` ops (see
:mod:`graphc.codegen.python`) become part functions of ``PART_SIZE`` ops that exchange
values through one list ``e``, each compiled on its own -- and parts of the same shape share
one function:

* a part reads what it needs from other parts, inputs and params in one statement,
  ``(x0, x1) = map(e.__getitem__, s)`` (``s``: their slots in ``e``), and long runs of a
  sum's or pack's operands that it reads nowhere else in place, ``_sum(*map(e.__getitem__,
  t[0:500]))`` (the terms of a gradient summed over a long chain);
* it names its own values ``v0, v1, ...`` in order, and writes those others read in one
  statement, ``e[o:o + 2] = (v3, v7)``.

So a part's text names no slot and no node: parts of the same shape -- the same ops wired
the same way, as the steps of a long chain or the copies of an unrolled loop are -- have the
same text, and each text is one function, compiled once, called once per part with its
tables of slots (``_f_s4``, ``_f_t4``, before the entry point) and export offset.  A part
whose shape was met before is not even written: its shape is told from NumPy arrays of its
ops and operands (:class:`_Shapes`), and its tables follow from the first one's.

A value its part uses once and nothing else reads is written inside its user's expression,
parenthesized, instead of on a line of its own (up to ``FUSE_DEPTH`` levels deep): CPython
compiles an operation inside an expression in about half the time of a statement.  The ops
are pure, so computing a value where it is used gives the same bits.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ops
from ..graph import Graph
from ..graph_arrays import CONST
from .common import python_number, tuple_literal, wrap_assign

PART_SIZE = 1_000
FUSE_DEPTH = 8  # part functions nest single-use values at most this deep in one expression
BULK = 8  # a part reads a run of at least this many operands of a sum or pack in one go
_VARIADIC = frozenset(name for name, op in ops.TABLE.items() if op.arity is None)


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
    owner = np.full(len(graph), -1, dtype=np.int64)
    for c, (_, chunk) in enumerate(chunks):
        owner[chunk] = c
    slot = np.full(len(graph), -1, dtype=np.int64)
    leaves = list(inputs) + list(graph.params) + ([seed] if seed is not None else [])
    slot[leaves] = np.arange(len(leaves))
    arrays = graph.arrays  # a value is exported when a node of another part reads it
    users, operands = np.repeat(np.arange(len(graph)), arrays.lengths), arrays.indices
    exported = np.zeros(len(graph), dtype=bool)
    exported[operands[(owner[operands] >= 0) & (owner[users] >= 0) & (owner[operands] != owner[users])]] = True
    for ids in yields:
        exported[ids] = owner[ids] >= 0
    exports, count = [], len(leaves)
    for _, chunk in chunks:
        ids = np.asarray(chunk, dtype=np.int64)
        ids = ids[exported[ids]]
        slot[ids] = np.arange(count, count + len(ids))
        exports.append(ids.tolist())
        count += len(ids)
    return _Layout(chunks, owner.tolist(), slot.tolist(), exports, count)


def constant_names(graph: Graph) -> list[str]:
    """Each constant's literal (what parts name), and ``""`` for the other nodes."""
    return [python_number(attr[0]) if op == "const" else "" for op, attr in zip(graph.ops, graph.attrs)]


def write(writer: Any, entry: str, inputs: list[int], seed: int | None, sections, yields,
          size: int) -> tuple[str, list[int]]:
    """The part functions and the entry point of a :class:`graphc.codegen.python._Writer`'s
    graph (see the module docstring), and the character offsets where separately
    compilable blocks start."""
    layout = _layout(writer.graph, inputs, seed, sections, yields, size)
    parts = _Parts(writer, layout)
    functions: dict[str, int] = {}  # a part's text -> its function's number
    known: dict[bytes, tuple[int, list[int], list[int]]] = {}  # a part's shape -> function, ranks of its reads
    out: list[str] = []
    blocks: list[int] = []
    calls = []  # (section, function, slots read by name, slots read in bulk, first export slot)
    slot = np.asarray(layout.slot, dtype=np.int64)
    for c, (section, chunk) in enumerate(layout.chunks):
        shape, outside = parts.shape(c, chunk)
        found = known.get(shape) if shape is not None else None
        if found is None:
            body, reads, bulk = parts.part(c, chunk)
            text = "\n".join(body)
            k = functions.get(text)
            if k is None:
                k = functions[text] = len(functions)
                blocks.append(len(out))
                out += [f"def _{entry}_part{k}(e, s, t, o):", text, ""]
            if shape is not None:
                rank = {a: r for r, a in enumerate(outside.tolist())}
                known[shape] = (k, [rank[a] for a in reads], [rank[a] for a in bulk])
        else:
            k, reads, bulk = found[0], outside[found[1]], outside[found[2]]
        exports = layout.exports[c]
        calls.append((section, k, slot[list(reads)].tolist(), slot[list(bulk)].tolist(),
                      layout.slot[exports[0]] if exports else 0))
    blocks.append(len(out))
    out += _entry(writer, entry, len(inputs), seed, yields, layout, calls)
    offsets, position = [], 0
    for start, end in zip([0] + blocks, blocks):  # line indices -> character offsets
        position += sum(map(len, out[start:end])) + end - start
        offsets.append(position)
    return "\n".join(out) + "\n", offsets


class _Parts:
    """Writes the parts of one layout, and tells their shapes apart (:meth:`shape`)."""

    def __init__(self, writer: Any, layout: _Layout) -> None:
        self.writer, self.layout = writer, layout
        graph = self.graph = writer.graph
        self.uses = graph.use_counts()
        self.is_const = [op == "const" for op in graph.ops]
        self.exported = [set(ids) for ids in layout.exports]
        self.shapes_known = writer.shapes is None  # tensor lanes change a part's text: not compared
        if self.shapes_known:
            self._arrays_for_shapes()

    def _arrays_for_shapes(self) -> None:
        graph, layout = self.graph, self.layout
        arrays = self.arrays = graph.arrays
        self.owner = np.asarray(layout.owner, dtype=np.int64)
        self.position = np.zeros(len(graph), dtype=np.int64)  # a node's place in its chunk
        self.flags = np.zeros(len(graph), dtype=np.int64)  # 1: used once; 2: exported
        self.flags[arrays.uses == 1] = 1
        for c, (_, chunk) in enumerate(layout.chunks):
            self.position[chunk] = np.arange(len(chunk))
            self.flags[layout.exports[c]] += 2
        attrs = graph.attrs
        self.attr_ids = np.zeros(len(graph), dtype=np.int64)
        with_attrs = [i for i in np.flatnonzero(arrays.lengths).tolist() if attrs[i]]
        numbers: dict[str, int] = {}
        self.attr_ids[with_attrs] = [numbers.setdefault(repr(attrs[i]), len(numbers) + 1) for i in with_attrs]

    def shape(self, c: int, chunk: list[int]) -> tuple[bytes | None, np.ndarray]:
        """Part ``c``'s shape: bytes equal for two parts exactly when their texts are sure to be
        equal (their ops, parameters, flags and operands -- a constant, a value of the part
        by its place, one from outside by its first use -- match), and the values it reads
        from outside, in order of first use.  (None for a graph with tensors.)"""
        if not self.shapes_known:
            return None, np.zeros(0, dtype=np.int64)
        arrays = self.arrays
        nodes = np.asarray(chunk, dtype=np.int64)
        lengths = arrays.lengths[nodes]
        ends = np.cumsum(lengths)
        slots = np.arange(int(ends[-1])) + np.repeat(arrays.indptr[nodes] - ends + lengths, lengths)
        operands = arrays.indices[slots]
        outside = (self.owner[operands] != c) & (arrays.codes[operands] != CONST)
        ids, first, inverse = np.unique(operands[outside], return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        refs = np.where(self.owner[operands] == c, self.position[operands] * 3, operands * 3 + 1)
        refs[outside] = rank[inverse] * 3 + 2
        key = b"".join((arrays.codes[nodes].tobytes(), lengths.tobytes(), self.attr_ids[nodes].tobytes(),
                        self.flags[nodes].tobytes(), refs.tobytes()))
        return key, ids[order]

    def part(self, c: int, chunk: list[int]) -> tuple[list[str], dict[int, int], list[int]]:
        """Part ``c``'s body; the values it reads from outside by name, in the order of
        their names ``x0, x1, ...``; and those it reads in bulk."""
        writer, owner, uses = self.writer, self.layout.owner, self.uses
        node_args, plain, shapes, node_ops = self.graph.args, writer._plain, writer.shapes, self.graph.ops
        inlined: dict[int, tuple[str, int]] = {}  # node -> (its expression, nesting depth)
        local: dict[int, str] = {}
        reads: dict[int, int] = {}
        bulk: list[int] = []
        exported, once = self.exported[c], None
        lines = []
        for i in chunk:
            operands = node_args[i]
            if len(operands) >= BULK and node_ops[i] in _VARIADIC:
                if once is None:  # the values from outside that this part reads once
                    counts = Counter([a for j in chunk for a in node_args[j] if owner[a] != c and not self.is_const[a]])
                    once = {a for a, count in counts.items() if count == 1}
                depth, texts = self._variadic(operands, c, inlined, local, reads, bulk, once)
            else:
                depth, texts = self._operands(operands, c, inlined, local, reads)
            spelling = plain.get(node_ops[i])
            if spelling is not None and not (spelling[1] and shapes and shapes[i]):
                expression = spelling[0].format(*texts)
            else:
                expression = writer.spelled(i, texts)
            if uses[i] == 1 and depth < FUSE_DEPTH and i not in exported:
                inlined[i] = (expression, depth)
            else:
                name = local[i] = f"v{len(local)}"
                lines.append(f"    {name} = {expression}")
        body = wrap_assign([f"x{k}" for k in range(len(reads))], "map(e.__getitem__, s)", "    ") + lines
        exports = self.layout.exports[c]
        if exports:
            body += wrap_assign([local[i] for i in exports], f"e[o:o + {len(exports)}]", "    ", pack=True)
        return body or ["    pass"], reads, bulk

    def _operands(self, operands: tuple, c: int, inlined: dict, local: dict, reads: dict) -> tuple[int, list[str]]:
        """Operand texts in part ``c``, and the nesting depth of an expression of them."""
        names, is_const, owner = self.writer.names, self.is_const, self.layout.owner
        depth, texts = 1, []
        for a in operands:
            if a in inlined:
                text, d = inlined.pop(a)
                texts.append(f"({text})")
                if d >= depth:
                    depth = d + 1
            elif is_const[a]:
                texts.append(names[a])
            elif owner[a] == c:
                texts.append(local[a])
            else:
                texts.append(f"x{reads.setdefault(a, len(reads))}")
        return depth, texts

    def _variadic(self, operands: tuple, c: int, inlined: dict, local: dict, reads: dict, bulk: list[int],
                  once: set[int]) -> tuple[int, list[str]]:
        """:meth:`_operands` of a sum or pack, where each run of ``BULK`` or more operands
        from outside that the part reads ``once`` (nowhere else) is one starred text."""
        depth, texts, run = 1, [], []

        def flush() -> None:
            if len(run) >= BULK:
                texts.append(f"*map(e.__getitem__, t[{len(bulk)}:{len(bulk) + len(run)}])")
                bulk.extend(run)
            elif run:
                texts.extend(self._operands(tuple(run), c, inlined, local, reads)[1])
            run.clear()
        for a in operands:
            if a in once:
                run.append(a)
                continue
            flush()
            d, more = self._operands((a,), c, inlined, local, reads)
            depth = max(depth, d)
            texts.extend(more)
        flush()
        return depth, texts


def _entry(writer: Any, entry: str, n_in: int, seed: int | None, yields, layout: _Layout, calls: list) -> list[str]:
    """The parts' tables of slots, then the entry point: it fills ``e`` with inputs and
    params and calls the parts section by section."""
    g, names, slot = writer.graph, writer.names, layout.slot
    n_par = len(g.params)
    tables = [line for c, call in enumerate(calls) for kind, slots in zip("st", call[2:4]) if slots
              for line in _table(f"_{entry}_{kind}{c}", slots)]
    out = tables + [""] * bool(tables) + [f"def {entry}(inputs, params):", f"    e = [None] * {layout.count}",
                    f"    e[0:{n_in}] = inputs", f"    e[{n_in}:{n_in + n_par}] = params"]
    for k, results in enumerate(yields):
        out += [f"    _{entry}_part{part}(e, {f'_{entry}_s{c}' if reads else '()'}, "
                f"{f'_{entry}_t{c}' if bulk else '()'}, {first})"
                for c, (section, part, reads, bulk, first) in enumerate(calls) if section == k]
        value = tuple_literal([names[i] if g.ops[i] == "const" else f"e[{slot[i]}]" for i in results])
        out.append(section_end(k, value, None if seed is None else f"e[{slot[seed]}]"))
    return out


def _table(name: str, slots: list[int]) -> list[str]:
    """``name = (...)``: the slots, runs of four or more evenly spaced ones as ``*range(...)``
    (a literal per number would cost CPython's compiler a token each)."""
    values = np.asarray(slots, dtype=np.int64)
    steps = np.diff(values)
    items, k = [], 0  # slots[:k] are written
    bounds = (np.flatnonzero(np.diff(steps)) + 1).tolist()
    for start, end in zip([0] + bounds, bounds + [len(steps)]):  # steps[start:end] are equal
        start = max(start, k)
        if end - start >= 3 and steps[start]:  # end - start + 1 slots
            items += map(str, slots[k:start])
            step, stop = int(steps[start]), slots[end] + int(steps[start])
            items.append(f"*range({slots[start]}, {stop})" if step == 1 else f"*range({slots[start]}, {stop}, {step})")
            k = end + 1
    items += map(str, slots[k:])
    return _wrapped(f"{name} = (", items, ",)" if len(items) == 1 else ")")


def _wrapped(head: str, items: list[str], tail: str) -> list[str]:
    """``head`` then ``items`` comma-separated, then ``tail``, in lines of about 100 columns."""
    lines, current = [], head
    for k, item in enumerate(items):
        text = item + (", " if k < len(items) - 1 else "")
        if len(current) + len(text) > 100 and current.strip():
            lines.append(current.rstrip())
            current = "    "
        current += text
    return lines + [current + tail]


def section_end(k: int, value: str, seed_target: str | None) -> str:
    """The line ending section ``k``: ``return value`` for a plain function; in a
    generator, ``yield value``, the first one receiving the seed into ``seed_target``."""
    if seed_target is None:
        return f"    return {value}"
    return f"    {seed_target} = yield {value}" if k == 0 else f"    yield {value}"
