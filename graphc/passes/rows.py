"""Batch recovery: find one per-row program applied to every row, under a sum.

A full-batch loss written micrograd style -- ``sum(loss(model(x), y) for x, y in rows)`` --
traces into an unrolled scalar graph: one copy of the per-row computation per row, each
reading its own constants (the captured data) or inputs, all reading the same params,
added up by a left-to-right chain ``((start + l0) + l1) + ...`` (Python's ``sum`` starts
from ``0``; :mod:`~graphc.passes.flatten` may have made the chain one n-ary ``sum``).
:func:`recover_rows` finds that chain (and the chains of as many rows whose first rows share
nodes with its own) and splits the graph into

* ``row``: one row's computation as a Graph -- its inputs are the row's *columns* (the
  leaves that differ from row to row), its params all the graph's params, its outputs the
  row's term in each chain (one chain, or several whose rows share nodes: micrograd's demo
  sums the losses and, from the same scores, the accuracy's hits), then its *values*: the
  row's nodes that something outside the row reads (the scores a loss returns with itself,
  a comparison a guard checks);
* ``table``: the columns' numbers, one line per row (captured constants) and
  ``input_index``: the positions, in ``graph.inputs``, of the columns read from inputs;
* ``outer``: the graph with each chain's row part replaced by one new input (the rows'
  sum) and each row's values by inputs of their own, after the graph's inputs: what
  combines the reductions with param-only terms (an L2 term) into the outputs.

**When it answers None** (cheaply, for most graphs): no sum chain of at least ``min_rows``
terms of one shape; rows that differ in structure or in which params they read; a node
of two rows (a row that reads the one before it); rows that read a model's outputs by a label
(``o[t]``: another node in each row; a one-hot ``sum(o[k] * t_k)`` is one shape).  Rows
may repeat each other, and a row may compute one thing twice (``(s - y) * (s - y)``):
reverse mode differentiates the scalar program before common subexpression elimination
merges anything (:data:`graphc.passes.DIFFERENTIABLE_PIPELINE`), so its gradient parts
come row by row as the per-row program's do.  (Until CSE ran on the joint graph alone,
such rows and nodes were left to the scalar program: 700x slower steps for micrograd's
demo loss with its data passed as arguments, an outside hunt found.)

**How.**  The first row's cone (its non-leaf nodes, under every chain's first term) is the
template.  Every other row is checked against it in lockstep from its roots down: same
op, parameters, arity and use count at every position, the same param at every param
operand, and a const (or an input) wherever the template has one, whose value (or input
position) goes in the table.  Use counts make the match a bijection onto nodes that only
their row uses.  One loop per node, no recursion: linear in the graph's size.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..graph import Builder, Graph
from .rows_match import Arrays, Template, alike, chains, links_and_terms

MIN_ROWS = 4
ROWS_INPUT = "rows"  # the name of the outer graph's input holding the rows' sum
ROW_VALUE = "row_value"  # the outer graph's inputs holding a row's value read outside the row


@dataclass(frozen=True)
class RowSplit:
    """A graph split into a per-row program, its table of columns and the outer graph."""

    row: Graph                 # inputs: constant columns, then input columns; params: all of them;
                               # outputs: one per sum chain (a row's term in it)
    table: np.ndarray          # (n_rows, n_constant_columns) float64
    input_index: np.ndarray    # (n_rows, n_input_columns) positions in the graph's inputs
    outer: Graph               # the graph's inputs, each row value by row (value-major), then each
                               # chain's rows' sum; its params, outputs
    starts: tuple              # per chain: what its sum adds row 0 to (Python's 0), None if nothing
    n_rows: int
    n_values: int = 0          # the row's outputs after the chains' terms: nodes read outside the row

    @property
    def start(self) -> float | None:
        """The first chain's start."""
        return self.starts[0]

    @property
    def n_chains(self) -> int:
        return len(self.starts)

    def columns(self, inputs: np.ndarray) -> np.ndarray:
        """The per-row program's inputs as an (n_columns, n_rows) array, given the values of
        the graph's inputs (unused when no column is read from inputs)."""
        cols = np.empty((self.table.shape[1] + self.input_index.shape[1], self.n_rows))
        cols[:self.table.shape[1]] = self.table.T
        if self.input_index.size:
            cols[self.table.shape[1]:] = np.asarray(inputs, dtype=np.float64)[self.input_index].T
        return cols


@dataclass(frozen=True)
class _Chain:
    """A sum chain: its links first to last, its start and its row terms in order."""

    links: list[int]
    start: float | None
    rows: list[int]


def recover_rows(graph: Graph, min_rows: int = MIN_ROWS) -> RowSplit | None:
    """The graph split into rows (see the module docstring), or None."""
    if not any(op == "add" or op == "sum" for op in graph.ops):
        return None
    arrays = Arrays(graph)
    # Chains are looked at longest first, only as far as chain k's group needs (those with as
    # many terms as it has rows): a model's neurons are chains too, 170,000 of them at 10,000
    # rows of the demo's MLP, which took 3 s to look at after the rows' own chain was found.
    tops = chains(arrays, min_rows)
    found: list[_Chain] = []
    looked = 0
    tried: set[int] = set()
    for k in itertools.count():
        while looked < len(tops) and (k >= len(found) or tops[looked][1] >= len(found[k].rows)):
            links, terms = links_and_terms(graph, arrays, tops[looked][0])
            start, rows = _start_and_rows(graph, terms)
            if len(rows) >= min_rows and alike(graph, rows[0], rows[1]):
                found.append(_Chain(links, start, rows))
            looked += 1
        if k >= len(found):
            break
        if k in tried:
            continue
        group = _group(graph, found, k)
        tried.update(group)
        chosen = [found[j] for j in group]
        template = Template(arrays, [c.rows[0] for c in chosen])
        if not template.ok:
            continue
        leaves, positions, values = template.match([c.rows for c in chosen])
        if len(leaves) < min_rows:
            continue
        split = _split(template, chosen, leaves, positions, values)
        if split is not None:
            return split
    return None


def _group(graph: Graph, found: list[_Chain], k: int) -> list[int]:
    """Chain ``k`` and the chains of as many rows whose first rows share nodes with its own
    (transitively), in graph order: the demo's loss and accuracy both read a row's score."""
    n = len(found[k].rows)
    same = [j for j, c in enumerate(found) if len(c.rows) == n]
    cones = {j: _cone(graph, found[j].rows[0]) for j in same}
    group, covered = [k], set(cones[k])
    grown = True
    while grown:
        grown = False
        for j in same:
            if j not in group and not covered.isdisjoint(cones[j]):
                group.append(j)
                covered |= cones[j]
                grown = True
    return sorted(group, key=lambda j: found[j].links[-1])


def _cone(graph: Graph, root: int) -> set[int]:
    """The non-leaf nodes ``root`` depends on, itself included."""
    args = graph.args
    cone, stack = {root}, [root]
    while stack:
        for a in args[stack.pop()]:
            if a not in cone and args[a]:
                cone.add(a)
                stack.append(a)
    return cone


def _start_and_rows(graph: Graph, terms: list[int]) -> tuple[float | None, list[int]]:
    """A constant among the first two terms is the start (``0 + l0`` traces as ``l0 + 0``)."""
    for k in (0, 1):
        if len(terms) > k and graph.ops[terms[k]] == "const":
            return graph.attrs[terms[k]][0], terms[:k] + terms[k + 1:]
    return None, terms


def _split(template: Template, chosen: list[_Chain], leaves: np.ndarray, positions: list[int],
           values: np.ndarray) -> RowSplit | None:
    graph = template.graph
    columns = _Columns(template, leaves)
    b = Builder()
    inputs = [b.add("input", (), (f"c{c}",)) for c in range(columns.n_const)]
    inputs += [b.add("input", (), (f"x{c}",)) for c in range(columns.n_input)]
    params = [b.add("param", (), graph.attrs[p]) for p in graph.params]
    param_node = dict(zip(graph.params, params))
    leaf = []
    for s, kind in enumerate(template.slot_kind):
        if kind == "param":
            leaf.append(param_node[template.slot_leaf[s]])
        elif columns.slot_column[s] is None:
            leaf.append(b.const(columns.slot_value[s]))
        else:
            kind_offset = 0 if kind == "const" else columns.n_const
            leaf.append(inputs[kind_offset + columns.slot_column[s]])
    node = []
    for k in range(len(template.nodes)):
        operands = tuple(node[c] if c >= 0 else leaf[-1 - c] for c in template.enc[k])
        node.append(b.add(template.ops[k], operands, template.attrs[k]))
    row = b.finish(inputs, params, [node[k] for k in template.root_positions + positions],
                   param_values=list(graph.param_values), in_tree=None, out_tree=None, name=f"{graph.name}_row")
    n_rows = len(leaves)
    outer = _outer(graph, [(c.links, c.rows[:n_rows]) for c in chosen], values)
    starts = tuple(None if c.start is None else float(c.start) for c in chosen)
    return RowSplit(row, columns.table, columns.input_index, outer, starts, n_rows, len(values))


class _Columns:
    """The slots grouped into columns (slots equal in every row share one); a slot equal in
    every row is a constant of the row program (an input so read is still a column)."""

    def __init__(self, template: Template, leaves: np.ndarray) -> None:
        graph = template.graph
        kinds = template.slot_kind
        n = len(kinds)
        self.slot_column: list[int | None] = [None] * n
        self.slot_value: list[float | None] = [None] * n
        data = {"const": _const_values(graph, leaves, kinds), "input": _input_positions(graph, leaves)}
        found: dict[str, dict[bytes, int]] = {"const": {}, "input": {}}
        columns: dict[str, list[np.ndarray]] = {"const": [], "input": []}
        for s, kind in enumerate(kinds):
            if kind == "param":
                continue
            column = data[kind][:, s]
            key = column.view(np.int64) if kind == "const" else column
            same = bool((key == key[0]).all())
            if kind == "const" and same:
                self.slot_value[s] = float(column[0])
                continue
            self.slot_column[s] = found[kind].setdefault(key.tobytes(), len(found[kind]))
            if self.slot_column[s] == len(columns[kind]):
                columns[kind].append(column)
        self.n_const, self.n_input = len(columns["const"]), len(columns["input"])
        n_rows = len(leaves)
        self.table = np.array(columns["const"], dtype=np.float64).T.reshape(n_rows, self.n_const).copy()
        self.input_index = np.array(columns["input"], dtype=np.intp).T.reshape(n_rows, self.n_input).copy()


def rows_input_name(chain: int) -> str:
    """The name of the outer graph's input holding chain ``chain``'s rows' sum."""
    return ROWS_INPUT if chain == 0 else f"{ROWS_INPUT}{chain}"


def row_value_name(value: int, row: int) -> str:
    """The name of the outer graph's input holding row ``row``'s value ``value`` (a node the
    rest of the graph reads)."""
    return f"{ROW_VALUE}{value}_{row}"


def _outer(graph: Graph, chosen: list[tuple[list[int], list[int]]], values: np.ndarray) -> Graph:
    """The graph's live part with each chain's row part cut off: the link that adds the last
    row becomes the chain's new input (plus whatever that link adds after it), and each row
    node read outside its row (``values``: value by row) an input of its own."""
    args = graph.args
    cuts: dict[int, tuple[int, tuple]] = {}
    for j, (links, rows) in enumerate(chosen):
        cut = next(link for link in links if rows[-1] in args[link])
        cuts[cut] = (j, args[cut][args[cut].index(rows[-1]) + 1:])
    b = Builder()
    remap = {i: b.add("input", (), graph.attrs[i]) for i in graph.inputs}
    value_inputs = [b.add("input", (), (row_value_name(v, r),)) for v in range(len(values))
                    for r in range(values.shape[1])]
    remap.update(zip(values.ravel().tolist(), value_inputs))
    live = bytearray(len(graph))
    stack = list(graph.outputs)
    for o in stack:
        live[o] = 1
    order = []
    while stack:
        i = stack.pop()
        order.append(i)
        for a in cuts[i][1] if i in cuts else () if i in remap else args[i]:
            if not live[a]:
                live[a] = 1
                stack.append(a)
    rows_inputs = [b.add("input", (), (rows_input_name(j),)) for j in range(len(chosen))]
    remap.update((p, b.add("param", (), graph.attrs[p])) for p in graph.params)
    for i in sorted(order):
        if i in remap:
            continue
        if i in cuts:
            j, rest = cuts[i]
            operands = (rows_inputs[j],) + tuple(remap[a] for a in rest)
            remap[i] = operands[0] if len(operands) == 1 else \
                b.add("add" if len(operands) == 2 else "sum", operands)
        else:
            remap[i] = b.copy_node(graph, i, remap)
    inputs = [remap[i] for i in graph.inputs] + value_inputs + rows_inputs
    return b.finish(inputs, [remap[p] for p in graph.params], [remap[o] for o in graph.outputs], like=graph)


def _const_values(graph: Graph, leaves: np.ndarray, kinds: list[str]) -> np.ndarray:
    """Each leaf's value where it is a constant (nan elsewhere): a Python lookup per distinct
    constant, not per slot."""
    consts = np.array([k == "const" for k in kinds], dtype=bool)
    values = np.full(leaves.shape, np.nan)
    if consts.any():
        ids, where = np.unique(leaves[:, consts], return_inverse=True)
        found = np.array([graph.attrs[i][0] for i in ids.tolist()], dtype=np.float64)
        values[:, consts] = found[where.reshape(len(leaves), -1)]
    return values


def _input_positions(graph: Graph, leaves: np.ndarray) -> np.ndarray:
    """Each leaf's position in ``graph.inputs`` (-1 where it is not an input)."""
    position = np.full(len(graph) + 1, -1, dtype=np.intp)
    position[np.asarray(graph.inputs, dtype=np.intp)] = np.arange(len(graph.inputs))
    return position[leaves]
