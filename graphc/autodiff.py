"""Reverse-mode automatic differentiation as a graph-to-graph transform.

``grad(graph, output=k)`` returns the *joint* graph: the forward graph unchanged (same
node ids), one new input ``seed`` (the cotangent of output ``k``; 1 for a plain
``backward()``), and new nodes computing, for every input and param, ``seed *
d(output k)/d(node)``.  Its outputs are the forward outputs followed by those gradients.

The derivative of each op is its ``vjp`` rule in the op table -- the same rule eager
``backward()`` runs on floats -- here run on :class:`NodeRef` handles that add nodes instead
of computing numbers.  Nodes are visited in the order eager ``backward()`` visits them
from output ``k`` (reversed depth-first post-order, operands left to right; a re-rolled
layer's packs of params after its other operands: :func:`_leaf_packs_last`) and each
node's contributions are added in the order reverse mode reached the nodes they come from
(a ``pack`` passes its parts on as they came: :data:`_VIEWS`), so an unoptimized joint graph
reproduces eager gradients bit for bit -- for every output, not only the first (whose
order is the node numbering's, as a trace numbers nodes depth first from output 0).

A tensor only some of whose lanes are read on the way to the output, each apart (by
``index``, whose cotangents are ``unit`` s), is differentiated in those lanes alone, as the
scalar graph is (:func:`_some_lanes`): the other lanes' zero cotangents are never
multiplied by their local derivatives, which may be inf.  So is one whose lanes are all
read apart but reached in another order than last lane first (the order the whole-tensor
rules add them in, ``vecmat``'s): each lane's parts then go on in the order reverse mode
reached them, as the scalar graph adds them.  Where every part is a ``unit`` and the lanes
were reached last first, the cotangent is a ``pack`` of each lane's total.
"""
from __future__ import annotations

import numbers
import types
from typing import Any

import numpy as np

from . import ops
from .errors import GraphcError
from .gcpause import gc_paused
from .graph import Builder, Graph, const_key
from .walk import depth_first_ids

SEED = "seed"


class NodeRef:
    """A node of a Builder, with arithmetic that adds nodes: what vjp rules compute with.

    Its operators are generated from the op table (:func:`_operator`).
    """

    __slots__ = ("b", "i")

    def __init__(self, b: Builder, i: int) -> None:
        self.b, self.i = b, i

    def _id(self, other: Any) -> int:
        if isinstance(other, NodeRef):
            return other.i
        if isinstance(other, numbers.Real):
            return self.b.const(float(other))
        raise TypeError(f"cannot combine a graph node with {type(other).__name__}")


def _operator(name: str, entries: tuple[ops.Op, ...]):
    """NodeRef's operator method ``name``: a node of the op implementing it, operands as
    written (``2 - g`` is ``sub(2.0, g)``); a number exponent is ``pow``'s parameter."""
    op = next(e for e in entries if not e.attr_names)
    by_number = next((e for e in entries if e.attr_names), None)
    reflected = ops.is_reflected(name)

    name_ = op.name
    if op.arity == 1:
        def method(self):
            return NodeRef(self.b, self.b.add(name_, (self.i,)))
    elif by_number is not None:
        def method(self, other):
            if not isinstance(other, NodeRef):
                return NodeRef(self.b, self.b.add(by_number.name, (self.i,), (other,)))
            return NodeRef(self.b, self.b.add(name_, (other.i, self.i) if reflected else (self.i, other.i)))
    else:  # one node per call, the other operand's id without a generator (the hot path of grad)
        def method(self, other):
            j = other.i if type(other) is NodeRef else self._id(other)
            return NodeRef(self.b, self.b.add(name_, (j, self.i) if reflected else (self.i, j)))

    method.__name__ = name
    return method


for _name, _entries in ops.operators().items():
    setattr(NodeRef, _name, _operator(_name, _entries))


def algebra(b: Builder) -> types.SimpleNamespace:
    """``F`` for vjp rules: ``F.<op>(*operands, *params)`` adds an ``op`` node to ``b``;
    ``F.lanes(g, n)`` the ``index`` node of each of ``g``'s ``n`` lanes."""

    def make(op: ops.Op):
        name, n_params = op.name, len(op.attr_names)
        if op.arity == 1 and n_params == 1:  # index(g, k): a pack's gradient has one per lane
            def one(x, param):
                return NodeRef(b, b.add(name, (x.i if type(x) is NodeRef else _const(b, x),), (param,)))
            return one

        def apply(*xs):
            n = len(xs) - n_params
            operands = tuple([x.i if type(x) is NodeRef else _const(b, x) for x in xs[:n]])
            return NodeRef(b, b.add(name, operands, xs[n:]))
        return apply

    def lanes(g, n: int) -> tuple:
        """``index(g, k)`` for k = 0 .. n-1: a pack's cotangents (79,510 for MNIST's first
        layer), appended in one step rather than a call each."""
        if type(b) is not Builder:  # a _Recorder
            return tuple([F.index(g, k) for k in range(n)])
        first, x = len(b.ops), g.i if type(g) is NodeRef else _const(b, g)
        b.ops += ["index"] * n
        b.args += [(x,)] * n
        b.attrs += [(k,) for k in range(n)]
        return tuple([NodeRef(b, i) for i in range(first, first + n)])

    F = types.SimpleNamespace(**{name: make(op) for name, op in ops.TABLE.items()}, lanes=lanes)
    return F


def reverse_mode_order(graph: Graph, output: int) -> list[int]:
    """The nodes output ``output`` depends on through what reverse mode walks, in the order
    it visits them (the module docstring): what :func:`grad` and
    :func:`graphc.interpret.backprop` walk."""
    return depth_first_ids((graph.outputs[output],), _walked_operands(graph))[::-1]


def _walked_operands(graph: Graph) -> list[tuple[int, ...]]:
    """Each node's operands, in the order reverse mode walks them: :func:`eager_operands`,
    with a ``pack`` of leaves (a re-rolled layer's weights or biases) after the others.  The
    scalar graph's products ``w * x`` come after the subgraph making ``x``, so reverse mode
    gives ``w`` its part before that subgraph's; so does the pack, walked last: a weight
    also read in a lower layer gets its parts in the scalar order (they came the other way
    round)."""
    return _leaf_packs_last(graph, eager_operands(graph))


def eager_operands(graph: Graph) -> list[tuple[int, ...]]:
    """Each node's operands as eager ``backward()`` walks them: none for a node of
    :data:`~graphc.ops.WALLS`, where eager code has a number (a shift by ``max(v.data for v
    in logits)`` walked into the last logit from the first ``v - m``, and gave a hidden
    layer's gradients in another order, an ulp off: an outside hunt)."""
    walls = np.flatnonzero(graph.arrays.of(ops.WALLS)).tolist()
    if not walls:
        return graph.args
    args = list(graph.args)
    for i in walls:
        args[i] = ()
    return args


def _leaf_packs_last(graph: Graph, args: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """``args`` with a ``pack`` of leaves after its users' other operands."""
    packs = np.flatnonzero(graph.arrays.of(("pack",))).tolist()
    if not packs:
        return args
    leaves = graph.arrays.of(ops.LEAVES)
    leaf_packs = {p for p in packs if all(leaves[a] for a in args[p])}
    if not leaf_packs:
        return args
    walked = list(args)
    for p in leaf_packs:
        for user in graph.arrays.users(p):
            operands = args[user]
            walked[user] = tuple([a for a in operands if a not in leaf_packs] +
                                 [a for a in operands if a in leaf_packs])
    return walked


#: Ops that only gather lanes, with no node of the scalar graph of their own: the parts they
#: pass on keep the step at which reverse mode reached the consumer they came from.  Two
#: neurons reading one pack of a layer's lanes (``pack(h1, h2)``, shared) give ``h2`` their
#: parts when the pack is reached, after both; a neuron between them reading ``h2`` through
#: another pack had given its part before.  Each node adds its parts in the order their
#: consumers were reached, as the scalar graph does (an outside hunt: four neurons reading
#: subsets of three hidden units, an ulp off).  An ``index`` is a scalar node, and passes on
#: its total at its own step -- but for a lane of a tensor some node also reads whole
#: (:func:`_read_whole`): the lane's parts from both meet in the tensor's sum, one by one.
_VIEWS = frozenset({"pack"})


def _read_whole(graph: Graph) -> set[int]:
    """The tensors ``index`` reads a lane of that some other node reads whole (a layer's
    outputs, read by a neuron of every lane and by neurons of some)."""
    indexed = {graph.args[i][0] for i in np.flatnonzero(graph.arrays.of(("index",))).tolist()}
    return {t for t in indexed if any(graph.ops[u] != "index" for u in graph.arrays.users(t))}


def _const(b: Builder, x: Any) -> int:
    """An operand of a vjp rule that is not a node: a number, as a constant node."""
    if isinstance(x, NodeRef):  # a subclass
        return x.i
    return b.const(float(x))


def grad(graph: Graph, output: int = 0, *, wrt_inputs: bool = True, wrt_params: bool = True,
         starts: bool = False) -> Graph:
    """The joint forward + gradient graph of output ``output`` (see the module docstring).

    Gradients are returned for every input (if ``wrt_inputs``), then every param (if
    ``wrt_params``), in ``graph.inputs`` / ``graph.params`` order; a node the output does
    not depend on gets the constant 0.  ``starts``: one more input per gradient, before
    the seed, where its sum starts -- a ``.grad`` already holding a number, which eager
    ``backward()`` adds each part into in turn (``(g0 + p1) + p2``, not ``g0 + (p1 + p2)``).
    """
    if not 0 <= output < len(graph.outputs):
        raise GraphcError(f"output {output} does not exist: the graph has {len(graph.outputs)} output(s)")
    with gc_paused():  # no garbage, but a node's tuples: collections would scan them all for nothing
        return _grad(graph, output, wrt_inputs, wrt_params, starts)


def _grad(graph: Graph, output: int, wrt_inputs: bool, wrt_params: bool, starts: bool) -> Graph:
    b = Builder.from_graph(graph)
    wrt = (list(graph.inputs) if wrt_inputs else []) + (list(graph.params) if wrt_params else [])
    start_of = {i: b.add("input", (), (f"start{k}",)) for k, i in enumerate(wrt)} if starts else {}
    seed = b.add("input", (), (SEED,))
    active = _active(graph, wrt)
    pending: dict[int, list[int]] = {}
    reached: dict[int, list[int]] = {}  # for each pending part, the step its consumer was reached at
    if active[graph.outputs[output]]:
        pending[graph.outputs[output]] = [seed]
        reached[graph.outputs[output]] = [0]
    finished: dict[int, int] = {}
    rules = _Rules(b)
    reversed_ops = {name for name, op in ops.TABLE.items() if op.vjp_reversed}
    per_part_ops = {name for name, op in ops.TABLE.items() if op.vjp_per_part is True}
    lane_parts_ops = {name for name, op in ops.TABLE.items() if op.vjp_per_part == "when_operands_have_parts"}
    lane_ops = {name for name, op in ops.TABLE.items() if op.elementwise or op.lane_vjp is not None}
    node_ops, node_args, node_attrs = graph.ops, graph.args, graph.attrs
    read_whole = _read_whole(graph)
    for step, i in enumerate(reverse_mode_order(graph, output)):
        parts = pending.pop(i, None)
        if parts is None:
            continue
        steps = reached.pop(i)
        if len(parts) > 1 and steps != sorted(steps):  # parts a view held back (see _VIEWS)
            order = sorted(range(len(parts)), key=steps.__getitem__)
            parts, steps = [parts[k] for k in order], [steps[k] for k in order]
        operands = node_args[i]
        op = node_ops[i]
        view = op in _VIEWS or op == "index" and operands[0] in read_whole
        if not operands:
            finished[i] = b.total([start_of[i], *parts] if i in start_of else parts)
            continue
        units = b.ops[parts[0]] == "unit" and all([b.ops[p] == "unit" for p in parts])
        if units:  # lanes read apart by index: each lane's parts, added in arrival order
            by_lane = b.units_by_lane(parts)  # lanes in the order reverse mode reached them
            shape = graph.shapes[i]
            size = ops.size_of(shape)
            if op in lane_ops and (len(by_lane) < size or list(by_lane) != list(range(size - 1, -1, -1))):
                lanes = [(k, b.total(lane_parts)) for k, lane_parts in by_lane.items()]
                found = zip(operands, _some_lanes(b, rules, op, lanes, i, operands, node_attrs[i], graph.shapes))
                for a, cs in reversed(list(found)) if op in reversed_ops else found:
                    if cs and active[a]:
                        pending.setdefault(a, []).extend(cs)
                        reached.setdefault(a, []).extend([steps[0] if view else step] * len(cs))
                continue
            parts = [b.add("pack", b.lane_totals(by_lane, size), (shape,))]
        # ((c1 + c2) + c3) + ...: eager backward()'s order (each part on its own: vjp_per_part;
        # a view's parts from several consumers, to meet others' in their order)
        one_by_one = view and len(set(steps)) > 1 or op in per_part_ops or (
            op in lane_parts_ops and len(parts) > 1 and (
                any([a in pending for a in operands]) or len(set(operands)) < len(operands)))
        for g, at in zip(parts, steps) if one_by_one else [(parts[0] if len(parts) == 1 else b.total(parts), steps[0])]:
            contributions = zip(operands, rules.cotangents(op, g, i, operands, node_attrs[i]))
            at = at if view else step
            for a, c in reversed(list(contributions)) if op in reversed_ops else contributions:
                if c is not None and active[a]:
                    waiting = pending.get(a)
                    if waiting is None:
                        pending[a] = [c]
                        reached[a] = [at]
                    else:
                        waiting.append(c)
                        reached[a].append(at)

    grads = [finished[i] if i in finished else b.const(0.0) for i in wrt]
    return b.finish(list(graph.inputs) + list(start_of.values()) + [seed], list(graph.params),
                    list(graph.outputs) + grads, like=graph)


def _some_lanes(b: Builder, rules: "_Rules", op: str, lanes: list[tuple[int, int]], i: int, operands: tuple,
                attrs: tuple, shapes: list[tuple]) -> list[list[int]]:
    """Each operand's cotangent parts when only ``lanes`` of node ``i`` have cotangents (lanes
    read by ``index`` apart from the others, in the order reverse mode reached them): the
    op's ``lane_vjp``, or for an elementwise op its ``vjp`` run on each of those lanes in
    that order, each tensor operand's part put back as a unit.  The scalar graph has no
    derivative in the other lanes at all; ``vjp`` on the whole tensor would multiply their
    zero cotangents by the local derivatives, and an overflowed lane (``0 * inf``) would
    make them nan."""
    lane_vjp = ops.TABLE[op].lane_vjp
    if lane_vjp is not None:
        found = lane_vjp(rules.F, [(k, NodeRef(b, s)) for k, s in lanes], [shapes[a] for a in operands],
                         *[NodeRef(b, a) for a in operands], *attrs)
        return [[c.i for c in cs] for cs in found]

    def lane(a: int, k: int) -> int:
        return b.add("index", (a,), (k,)) if shapes[a] else a

    parts: list[list[int]] = [[] for _ in operands]
    for k, s in lanes:
        found = rules.cotangents(op, s, lane(i, k), tuple([lane(a, k) for a in operands]), attrs)
        for into, a, c in zip(parts, operands, found):
            if c is not None:
                into.append(b.add("unit", (c, a), (k,)) if shapes[a] else c)
    return parts


def _active(graph: Graph, wrt: list[int]) -> list[bool]:
    """For each node, whether it depends on something we differentiate with respect to."""
    active = [False] * len(graph)
    for i in wrt:
        active[i] = True
    for i, operands in enumerate(graph.args):
        if operands and not active[i]:
            for a in operands:
                if active[a]:
                    active[i] = True
                    break
    return active


class _Rules:
    """Each op's vjp rule run on a builder: the cotangents' node ids of one node.

    A rule adds the same nodes, in the same order, for every node of the same op,
    parameters and number of operands -- only the ids it reads differ.  So the second time
    such a node comes, the rule is run once more on a :class:`_Recorder` and from then on
    replayed from the record, without the NodeRef objects and calls a rule costs (the
    nodes of a long chain are of a few such kinds).  The first time, and for a kind met
    once (a layer's ``pack`` of thousands of weights), it runs as written.
    """

    def __init__(self, b: Builder) -> None:
        self.b, self.F = b, algebra(b)
        self.rules = {name: op.vjp for name, op in ops.TABLE.items()}
        self.seen: set = set()
        self.records: dict[tuple, tuple] = {}

    def cotangents(self, op: str, g: int, i: int, operands: tuple, attrs: tuple) -> list:
        key = (op, len(operands), tuple([(type(a), const_key(a) if type(a) is float else a) for a in attrs]))
        record = self.records.get(key)
        if record is None:
            if key in self.seen:
                record = self.records[key] = _record(self.rules[op], len(operands), attrs)
            else:
                self.seen.add(key)
                b = self.b
                found = self.rules[op](self.F, NodeRef(b, g), NodeRef(b, i), *[NodeRef(b, a) for a in operands], *attrs)
                return [None if c is None else c.i for c in found]
        return _replay(self.b, record, [g, i, *operands])


class _Recorder:
    """What a rule adds to a builder, as ``steps`` ``(op, operand ids, attrs)`` (op None: a
    constant, ``attrs`` its value), numbering nodes after ``first`` (the ids of the rule's
    arguments: 0 the cotangent, 1 the node, then its operands)."""

    def __init__(self, first: int) -> None:
        self.steps: list[tuple] = []
        self.n = first

    def add(self, op: str, args: tuple = (), attr: tuple = ()) -> int:
        self.steps.append((op, args, attr))
        self.n += 1
        return self.n - 1

    def const(self, value: float) -> int:
        self.steps.append((None, (), value))
        self.n += 1
        return self.n - 1


def _record(rule, arity: int, attrs: tuple) -> tuple:
    recorder = _Recorder(2 + arity)
    found = rule(algebra(recorder), *[NodeRef(recorder, k) for k in range(2 + arity)], *attrs)
    return tuple(recorder.steps), tuple(None if c is None else c.i for c in found)


def _replay(b: Builder, record: tuple, ids: list[int]) -> list:
    """The record's nodes added to ``b`` for the arguments ``ids``; the cotangents' ids."""
    steps, results = record
    add, const = b.add, b.const
    for op, args, attr in steps:
        ids.append(const(attr) if op is None else add(op, tuple([ids[a] for a in args]), attr))
    return [None if r is None else ids[r] for r in results]
