"""The IR: a DAG of scalar operations with ordered inputs, params and outputs.

Nodes are numbered in topological order (every operand id is smaller than its user's),
and stored as three parallel lists -- ``ops`` (a name from the op table, or one of the
leaf kinds ``input``, ``param``, ``const``), ``args`` (operand ids, ordered, repeats
allowed: ``x * x`` is ``mul (x, x)``) and ``attrs`` (a const's value, an input's or
param's name, an op's parameters such as ``(3,)`` for ``pow[exponent=3]``).

Why lists and not a networkx graph as the store: networkx spends about 1 KB and 9 us per
node; a 10^6-node graph would need over a gigabyte before any work is done.  The lists
take ~150 bytes per node, and :attr:`Graph.nx` gives the same graph as a
``networkx.DiGraph`` whenever networkx's algorithms or drawing are wanted.

Nodes may be tensors: a ``pack`` node gathers scalars into a vector or matrix, tensor ops
(``dot``, ``matvec``, ...) and elementwise ops on tensors compute with them, ``index`` reads
a lane back (see :mod:`graphc.ops`).  Shapes are not stored: :attr:`Graph.shapes` derives
them from the op table's shape rules, so every pass that copies ``ops/args/attrs`` keeps
them right without knowing about them.  Inputs, params, constants and outputs are scalars.

Graphs are immutable by convention: passes build new ones with :class:`Builder`.
"""
from __future__ import annotations

import math
import numbers
import sys
from collections import Counter
from typing import Any, Iterable, Iterator

import numpy as np

from . import graph_nx, ops
from .codegen.common import python_number
from .errors import GraphcError
from .graph_arrays import CODES, CONST, INPUT, PARAM, GraphArrays
from .names import Namespace, sanitize_all

LEAVES = ops.LEAVES
WIDTH = 100  # str(graph) wraps its lines at this many columns


def const_key(value: float) -> Any:
    """A dict key that tells -0.0 from 0.0 and treats every nan alike."""
    if value != value:
        return "nan"
    return (value, math.copysign(1.0, value)) if value == 0.0 else value


#: How the listing spells constants that are no number literal: an input or param so named
#: is renamed (``nan_1``), so that ``mul nan nan`` is never an input times nan (an outside hunt).
CONSTANT_SPELLINGS = frozenset({"inf", "nan"})


class Graph:
    """A traced computation: see the module docstring for the representation."""

    __slots__ = ("ops", "args", "attrs", "inputs", "params", "outputs", "param_values",
                 "in_tree", "out_tree", "name", "_names", "_nx", "_shapes", "_arrays",
                 "_shape_prefix")

    def __init__(self, ops: list[str], args: list[tuple[int, ...]], attrs: list[tuple],
                 inputs: list[int], params: list[int], outputs: list[int], *,
                 param_values: list | None = None, in_tree: Any = None, out_tree: Any = None,
                 name: str = "fn") -> None:
        self.ops = ops
        self.args = args
        self.attrs = attrs
        self.inputs = inputs
        self.params = params
        self.outputs = outputs
        self.param_values = param_values if param_values is not None else []
        self.in_tree = in_tree
        self.out_tree = out_tree
        self.name = name
        self._names: list[str] | None = None
        self._nx = None
        self._shapes: list[tuple] | None = None
        self._arrays: GraphArrays | None = None
        self._shape_prefix: list[tuple] | None = None  # the shapes of the first nodes, if known

    def __len__(self) -> int:
        return len(self.ops)

    def counts(self) -> Counter:
        """How many nodes of each op (leaf kinds included)."""
        return Counter(self.ops)

    def use_counts(self) -> list[int]:
        """For each node, how many operand slots and outputs refer to it."""
        return self.arrays.uses.tolist()

    @property
    def arrays(self) -> GraphArrays:
        """The ops and operands as NumPy arrays (built on first use, then cached): what the
        passes' checks read (see :mod:`graphc.graph_arrays`)."""
        if self._arrays is None:
            self._arrays = GraphArrays(self)
        return self._arrays

    @property
    def shapes(self) -> list[tuple]:
        """Each node's shape: ``()`` for a scalar, ``(n,)`` or ``(m, n)`` for a tensor.

        Derived from the op table's shape rules in one loop (cached); raises
        :class:`GraphcError` naming the first node whose operands do not fit its op.
        """
        if self._shapes is None:
            if self._shape_prefix is None and not np.isin(self.arrays.codes, _SHAPED).any():
                self._shapes = [()] * len(self.ops)  # no op that makes or reads a tensor: all scalars
            else:
                self._shapes = infer_shapes(self.ops, self.args, self.attrs, self._shape_prefix)
            self._shape_prefix = None
        return self._shapes

    def live(self, roots: Iterable[int] | None = None) -> list[bool]:
        """For each node, whether some output (or some node of ``roots``) depends on it."""
        live = [False] * len(self.ops)
        for o in self.outputs if roots is None else roots:
            live[o] = True
        args = self.args
        for i in range(len(self.ops) - 1, -1, -1):
            if live[i]:
                for a in args[i]:
                    live[a] = True
        return live

    def op_mix(self) -> str:
        """How many nodes of each op, most common first (``"5 mul, 1 add"``), leaves left out:
        the line every generated file's header carries."""
        return ", ".join(f"{n:,} {op}" for op, n in self.counts().most_common() if op not in LEAVES)

    # -- names and printing ------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """A stable identifier per node: inputs and params after their (sanitized) names,
        intermediates ``v<id>``; constants get their literal.  Codegen uses the same names,
        but for one its own code holds (``inputs`` in Python, ``double`` in C: ``inputs_1``)."""
        if self._names is None:
            self._names = node_names(self, Namespace(CONSTANT_SPELLINGS))
        return self._names

    def __str__(self) -> str:
        names = self.names
        header = ["{ lambda"] + [names[i] for i in self.inputs] + [";"] + [names[i] for i in self.params]
        header[-1] += " ."
        lines = _wrap(header, "", "    ")
        shapes = self.shapes if any(op in _TENSOR_OPS for op in self.ops) else None
        body = [[f"{names[i]}{_type(shapes[i]) if shapes else ''}", "="] + self.describe(i).split(" ")
                for i, op in enumerate(self.ops) if op not in LEAVES]
        for k, words in enumerate(body):
            lines += _wrap(words, "  let " if k == 0 else "      ", "          ")
        lines += _wrap(["in", "("] + [names[o] for o in self.outputs] + [")", "}"], "  ", "      ")
        return "\n".join(lines)

    def describe(self, i: int) -> str:
        """One node as ``op[params] operand operand``, operands by name."""
        op = self.ops[i]
        names = self.names
        if op in LEAVES:
            return f"{op} {names[i]}"
        entry = ops.TABLE[op]
        params = ",".join(f"{p}={v if p == 'i' else _fmt(v)}" for p, v in zip(entry.attr_names, self.attrs[i]))
        head = f"{op}[{params}]" if params else op
        return " ".join([head] + [names[a] for a in self.args[i]])

    def __repr__(self) -> str:
        return (f"<Graph {self.name}: {len(self)} nodes, {len(self.inputs)} inputs, "
                f"{len(self.params)} params, {len(self.outputs)} outputs>")

    def _repr_svg_(self) -> str | None:
        """Jupyter: the picture (see :mod:`graphc.display`)."""
        from .display import svg
        return svg(self.to_dot())

    def _repr_html_(self) -> str | None:
        """Jupyter, without Graphviz: the listing."""
        from .display import graph_html
        return graph_html(self)

    # -- networkx view -------------------------------------------------------------------

    @property
    def nx(self):
        """The graph as a ``networkx.DiGraph`` (built on first use, then cached).

        Node ``i`` has attributes ``op``, ``args`` (ordered operand ids), ``attr``, ``name``
        and ``shape`` (``()`` for scalars); an edge ``a -> i`` exists when ``a`` is an operand
        of ``i``.  Graph-level attributes ``inputs``, ``params``, ``outputs`` keep the orders
        (and ``name``, ``param_values``, ``in_tree``, ``out_tree`` the rest).  :meth:`from_nx`
        reads it back.  The Graph keeps it, so it is frozen: adding or removing a node or an
        edge raises (networkx freezes no attribute dict, so writing one is not refused, but
        leaves the two disagreeing); a pass edits ``graph.nx.copy()``.
        """
        if self._nx is None:
            self._nx = graph_nx.to_nx(self)
        return self._nx

    @classmethod
    def from_nx(cls, G: Any) -> Graph:
        """The Graph a ``networkx.DiGraph`` shaped like :attr:`nx` describes: a user's pass
        written with networkx algorithms hands its result back here.

        Read per node: ``op``, ``args`` (operand node ids, in order: an edge records neither
        order nor repeats, so ``args`` must name exactly the node's in-edges) and ``attr``
        (``()`` if absent); per graph: ``inputs``, ``params``, ``outputs`` (node ids) and,
        if present, ``name``, ``param_values``, ``in_tree``, ``out_tree``.  Node ids may be
        any hashables (new nodes need no number): nodes are renumbered in topological order,
        ties in ``G``'s node order, so an unchanged graph keeps its ids.  Raises
        :class:`GraphcError` saying what is wrong; the result passes :meth:`verify`.
        """
        return graph_nx.from_nx(cls, G).verify()

    def to_dot(self, **kwargs) -> str:
        """Graphviz DOT text; see :func:`graphc.viz.to_dot` for the options."""
        from .viz import to_dot
        return to_dot(self, **kwargs)

    # -- checking ------------------------------------------------------------------------

    def verify(self, *, allow_dead: bool = True) -> "Graph":
        """Check the invariants; raise :class:`GraphcError` naming the first broken one.

        Topological numbering (every operand id below its user's) makes the graph acyclic
        and each node assigned once.  Also checked: known ops, arity, parameter counts,
        leaf attributes, input/param/output lists, operand shapes (outputs are scalars), and
        -- unless ``allow_dead`` -- that every non-leaf node reaches an output.  Returns the
        graph, for chaining.
        """
        n = len(self.ops)
        if not (len(self.args) == len(self.attrs) == n):
            raise GraphcError(f"ops/args/attrs lengths differ: {n}, {len(self.args)}, {len(self.attrs)}")
        for i, (op, operands, attr) in enumerate(zip(self.ops, self.args, self.attrs)):
            if op in LEAVES:
                if operands:
                    raise GraphcError(f"node {i} ({op}) is a leaf but has operands {operands}")
                if len(attr) != 1:
                    raise GraphcError(f"node {i} ({op}) needs exactly one attribute, has {attr!r}")
                if op == "const" and not _is_number(attr[0]):
                    raise GraphcError(f"node {i} (const) holds {attr[0]!r:.60}; a constant is a real number "
                                      f"that fits in a float")
                if op != "const" and not isinstance(attr[0], str):
                    raise GraphcError(f"node {i} ({op}) is named {attr[0]!r}; an {op}'s name is a str")
                continue
            entry = ops.TABLE.get(op)
            if entry is None:
                raise GraphcError(f"node {i} has unknown op {op!r}")
            if entry.arity is None and not operands or entry.arity is not None and len(operands) != entry.arity:
                raise GraphcError(f"node {i} ({op}) has {len(operands)} operands; {op} takes {entry.arity or '1+'}")
            if len(attr) != len(entry.attr_names):
                raise GraphcError(f"node {i} ({op}) has parameters {attr!r}; {op} takes {entry.attr_names}")
            if entry.elementwise and not all(map(_is_number, attr)):  # (a tensor op's: infer_shapes checks them)
                raise GraphcError(f"node {i} ({op}) has parameters {attr!r:.80}; {op}'s {entry.attr_names} "
                                  f"are real numbers that fit in a float")
            for a in operands:
                if not (isinstance(a, int) and 0 <= a < i):
                    raise GraphcError(f"node {i} ({op}) uses {a}, which is not an earlier node: "
                                      f"the numbering is not topological (or there is a cycle)")
        for kind, ids in (("input", self.inputs), ("param", self.params)):
            if sorted(i for i, op in enumerate(self.ops) if op == kind) != sorted(ids) or len(set(ids)) != len(ids):
                raise GraphcError(f"graph.{kind}s does not list each {kind} node exactly once")
        if len(self.param_values) not in (0, len(self.params)):
            raise GraphcError(f"{len(self.param_values)} param values for {len(self.params)} params")
        for o in self.outputs:
            if not (isinstance(o, int) and 0 <= o < n):
                raise GraphcError(f"output {o} is not a node of this {n}-node graph")
        from .tree import tree_leaves  # (tree -> engine; the IR stays importable without them)
        for what, tree, nodes, kind in (("in_tree", self.in_tree, self.inputs, "inputs"),
                                        ("out_tree", self.out_tree, self.outputs, "outputs")):
            if tree is None:
                continue
            leaves = tree_leaves(tree)
            if leaves is None:
                raise GraphcError(f"graph.{what} {tree!r:.80} is not a structure (see graphc.tree)")
            if leaves > len(nodes):  # fewer: a joint graph's seed, a compiled one's guards
                raise GraphcError(f"graph.{what} {tree!r:.80} has {leaves} leaves for the graph's {len(nodes)} {kind}")
        shapes = infer_shapes(self.ops, self.args, self.attrs)
        for o in self.outputs:
            if shapes[o]:
                raise GraphcError(f"output {self.describe(o)} is a tensor of shape {shapes[o]}; outputs are scalars")
        if not allow_dead:
            dead = [i for i, alive in enumerate(self.live()) if not alive and self.ops[i] not in LEAVES]
            if dead:
                raise GraphcError(f"{len(dead)} node(s) reach no output, e.g. {self.describe(dead[0])}")
        return self


_TENSOR_OPS = frozenset(name for name, op in ops.TABLE.items() if not op.elementwise)
#: The codes of the ops with a shape rule of their own: a graph without them is all scalars.
_SHAPED = np.array([CODES[name] for name, op in ops.TABLE.items() if op.shape is not None])


def _type(shape: tuple) -> str:
    """The listing's type annotation of a tensor node (``:f64[16,2]``); scalars have none."""
    return f":f64[{','.join(map(str, shape))}]" if shape else ""


def infer_shapes(node_ops: list[str], node_args: list[tuple], node_attrs: list[tuple],
                 known: list[tuple] | None = None) -> list[tuple]:
    """Every node's shape from the op table's rules (leaves are scalars); ``known``: those of
    the first nodes, already inferred."""
    shapes: list[tuple] = list(known or ())
    append = shapes.append
    table = ops.TABLE
    last_args, operand_shapes, lanes = None, [], 0
    for i in range(len(shapes), len(node_ops)):
        op = node_ops[i]
        entry = table.get(op)
        if entry is None:  # a leaf (or an unknown op, which verify() reports)
            append(())
            continue
        args = node_args[i]
        if args != last_args:  # (a run of nodes reading the same operands, a tensor's lanes, shares their shapes)
            operand_shapes = [shapes[a] for a in args if a < i]
            last_args = args if len(operand_shapes) == len(args) else None
            lanes = math.prod(operand_shapes[0]) if len(operand_shapes) == 1 and operand_shapes[0] else 0
        if op == "index" and lanes:  # a lane of a tensor (MNIST's gradient has 80,000): index_shape's answer
            lane = node_attrs[i]
            if len(lane) == 1 and type(lane[0]) is int and 0 <= lane[0] < lanes:
                append(())
                continue
        if entry.shape is None and not any(operand_shapes):
            append(())  # the common case: a scalar op on scalars
            continue
        try:
            shapes.append(entry.result_shape(operand_shapes, node_attrs[i]))
        except (ValueError, TypeError, IndexError) as error:
            raise GraphcError(f"node {i} ({op}): {error}") from None
    return shapes


def _wrap(words: list[str], first: str, rest: str, width: int = WIDTH) -> list[str]:
    """``words`` joined by spaces into lines of at most ``width`` columns (longer words alone)."""
    lines, current = [], first + words[0]
    for word in words[1:]:
        if len(current) + 1 + len(word) > width:
            lines.append(current)
            current = rest + word
        else:
            current += " " + word
    return lines + [current]


def _fmt(value: Any) -> str:
    return python_number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)


def node_names(graph: Graph, namespace: Namespace) -> list[str]:
    """Identifiers for every node of ``graph``, drawn from ``namespace`` (see Graph.names)."""
    # an object array: the names of each kind are scattered into it in C loops
    names = np.full(len(graph), "", object)
    # Labels that are names already keep them: they are served first, so that a label made
    # a name ("é" becomes the fallback "x") cannot take the user's own "x".
    leaves = []
    for kind, fallback in ((graph.inputs, "x"), (graph.params, "p")):
        texts = [graph.attrs[i][0] for i in kind]
        bases = sanitize_all(texts, fallback)
        bases = np.array(bases, object)
        leaves.append((np.array(kind, np.int64), bases, np.array(texts, object) == bases))
    for keep in (True, False):
        for kind, bases, own in leaves:
            served = own if keep else ~own
            names[kind[served]] = namespace.create_plain(bases[served].tolist())
    codes = graph.arrays.codes
    computed = np.flatnonzero((codes != INPUT) & (codes != PARAM) & (codes != CONST))
    # interned: the compiler of generated code shares each name
    names[computed] = list(map(sys.intern, namespace.create_plain([f"v{i}" for i in computed.tolist()])))
    consts = np.flatnonzero(codes == CONST).tolist()
    names[consts] = [python_number(graph.attrs[i][0]) for i in consts]
    return names.tolist()


class Builder:
    """Appends nodes to a new graph; equal constants (bit for bit) share one node."""

    __slots__ = ("ops", "args", "attrs", "_consts", "_shape_prefix")

    def __init__(self, graph: Graph | None = None) -> None:
        """An empty builder, or one holding a copy of ``graph``'s nodes with the same ids."""
        self.ops: list[str] = list(graph.ops) if graph is not None else []
        self.args: list[tuple[int, ...]] = list(graph.args) if graph is not None else []
        self.attrs: list[tuple] = list(graph.attrs) if graph is not None else []
        self._consts: dict[Any, int] = {}
        self._shape_prefix: list[tuple] | None = None
        for i in const_nodes(self.ops, len(self.ops)):
            self._consts.setdefault(const_key(self.attrs[i][0]), i)

    @classmethod
    def from_graph(cls, graph: Graph) -> "Builder":
        """A builder holding a copy of ``graph``'s nodes, with the same ids, to append to
        (their shapes, if known, are handed on to the graph it builds)."""
        b = cls(graph)
        b._shape_prefix = graph._shapes if graph._shapes is not None else graph._shape_prefix
        return b

    def __len__(self) -> int:
        return len(self.ops)

    def add(self, op: str, args: tuple[int, ...] = (), attr: tuple = ()) -> int:
        """Append a node; its id."""
        node_ops = self.ops
        node_ops.append(op)
        self.args.append(args)
        self.attrs.append(attr)
        return len(node_ops) - 1

    def total(self, parts: list[int]) -> int:
        """A node adding ``parts`` left to right (the part itself if there is one)."""
        if len(parts) == 1:
            return parts[0]
        return self.add(ops.sum_op(len(parts)), tuple(parts))

    def units_by_lane(self, units: list[int]) -> dict[int, list[int]]:
        """The scalars that ``unit`` nodes ``units`` put in a tensor's lanes, by lane, each
        lane's in the order given (the order its parts are added in)."""
        by_lane: dict[int, list[int]] = {}
        for u in units:
            by_lane.setdefault(self.attrs[u][0], []).append(self.args[u][0])
        return by_lane

    def lane_totals(self, by_lane: dict[int, list[int]], size: int) -> tuple[int, ...]:
        """The lanes of a tensor of ``size`` lanes that is the sum of the ``unit`` nodes
        :meth:`units_by_lane` grouped as ``by_lane``, as the scalar graph computes them: each
        lane the total of its own scalars, in order, and 0.0 where none (no lane adds
        another's 0.0, which would turn -0.0 into 0.0)."""
        zero = self.const(0.0)
        return tuple([self.total(by_lane[k]) if k in by_lane else zero for k in range(size)])

    def const(self, value: float) -> int:
        """The constant node of ``value`` (one per value, bit for bit: -0.0 is not 0.0)."""
        key = const_key(value)
        i = self._consts.get(key)
        if i is None:
            i = self._consts[key] = self.add("const", (), (float(value),))
        return i

    def share(self, graph: Graph, stop: int) -> None:
        """Make this empty builder hold the nodes of ``graph`` below ``stop`` as they are (the
        same ids, the operand tuples shared); no constant among them may repeat another
        (:meth:`const` would have merged it: see :func:`first_repeated_const`)."""
        if self.ops or first_repeated_const(graph, stop) < stop:
            raise GraphcError("Builder.share needs an empty builder and nodes without repeated constants")
        node_ops, consts = graph.ops, self._consts
        for i in const_nodes(node_ops, stop):
            consts[const_key(graph.attrs[i][0])] = i
        self.ops[:] = node_ops[:stop]
        self.args[:] = graph.args[:stop]
        self.attrs[:] = graph.attrs[:stop]
        known = graph._shapes if graph._shapes is not None else graph._shape_prefix
        self._shape_prefix = known[:stop] if known else None  # the graph it builds need not infer them again

    def copy_node(self, graph: Graph, i: int, remap: list[int]) -> int:
        """Append node ``i`` of ``graph`` with its operands renamed through ``remap``."""
        op = graph.ops[i]
        if op == "const":
            return self.const(graph.attrs[i][0])
        return self.add(op, tuple([remap[a] for a in graph.args[i]]), graph.attrs[i])

    def finish(self, inputs: list[int], params: list[int], outputs: list[int],
               like: Graph | None = None, **meta: Any) -> Graph:
        """The built graph; metadata (param values, trees, name) comes from ``like`` unless given."""
        if like is not None:
            for key in ("param_values", "in_tree", "out_tree", "name"):
                meta.setdefault(key, getattr(like, key))
        graph = Graph(self.ops, self.args, self.attrs, inputs, params, outputs, **meta)
        graph._shape_prefix = self._shape_prefix
        return graph


def first_repeated_const(graph: Graph, stop: int) -> int:
    """The first constant node below ``stop`` that a Builder would not hold as it is -- equal
    (bit for bit) to an earlier one, or not a float -- else ``stop``: graphs a Builder makes
    have none, one from :meth:`Graph.from_nx` may."""
    seen = set()
    for i in const_nodes(graph.ops, stop):
        value = graph.attrs[i][0]
        key = const_key(value)
        if key in seen or type(value) is not float:
            return i
        seen.add(key)
    return stop


def const_nodes(node_ops: list[str], stop: int) -> Iterator[int]:
    """The ids of the ``const`` nodes below ``stop``, in order, found by scans in C."""
    i = find_index(node_ops, "const", 0, stop)
    while i < stop:
        yield i
        i = find_index(node_ops, "const", i + 1, stop)


def find_index(items: list, item: Any, start: int, stop: int) -> int:
    """The first index of ``item`` in ``items[start:stop]``, or ``stop`` (a scan in C)."""
    try:
        return items.index(item, start, stop)
    except ValueError:
        return stop


def _is_number(x: Any) -> bool:
    """A real number a float holds (``10**400`` is an int no float holds)."""
    if not isinstance(x, numbers.Real):
        return False
    try:
        float(x)
    except OverflowError:
        return False
    return True
