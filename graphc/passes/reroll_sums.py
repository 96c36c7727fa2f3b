"""Rules 1 and 2 of :mod:`graphc.passes.reroll`: a sum of products becomes a ``dot``, and
the rows of a layer (sums whose products share one operand vector) one ``matvec``."""
from __future__ import annotations

from collections import Counter
from itertools import chain, compress
from operator import itemgetter

import numpy as np

from .. import ops
from ..autodiff import eager_operands
from ..graph import Graph, find_index
from ..graph_arrays import CONST, Users
from ..ops import LEAVES
from ..walk import depth_first_ids
from .reroll_work import EditableGraph, users_of

MIN_PRODUCTS = 2  # a run of fewer products is left alone


def _product_run(work: EditableGraph, shapes: list, operands: tuple, to_differentiate: bool) -> tuple[int, int]:
    """The longest run ``operands[start:end]`` of single-use scalar products, none of whose
    factors is computed from another operand or factor of the sum (``o + o * o**-1``,
    ``o + o * sigmoid(o)``).  A dot reads its factors through two packs, all first factors
    then all second: the part of ``o`` from ``o**-1``'s derivative would reach ``o`` before
    the product's own part, which the scalar program adds first.  (Asked only of a graph
    that is differentiated later.)"""
    node_ops, args, uses = work.ops, work.args, work.uses
    single = [node_ops[a] == "mul" and uses[a] == 1 and not shapes[a] for a in operands]
    if to_differentiate:
        factors = [f for a in operands if node_ops[a] == "mul" for f in args[a]]
        if any(map(args.__getitem__, factors)):  # some factor is computed (a layer's are not)
            near = set(operands)  # the sum's operands and factors
            near.update(factors)
            single = [ok and not any(o in near for f in args[a] for o in args[f]) for ok, a in zip(single, operands)]
    return _longest_run(single)


def _zeros_first(work: EditableGraph, operands: tuple) -> tuple | None:
    """A sum's operands with its zero constants moved to the front, others in order; None if
    that changes nothing.  Python's ``sum(w * x for ...)`` starts from 0: micrograd's
    ``0 + p0`` is ``p0 + 0``, so a neuron written ``sum(wi * xi ...) + b`` (or ``act += wi *
    xi`` from ``act = 0.0``) is ``sum(p0, 0.0, p1, ..., b)``, whose products are no run: no
    layer was found, and the spelling trained 6-10x slower a step than ``sum(..., b)`` (an
    outside hunt).  Exact: a zero added anywhere in a left-to-right sum gives the same bits
    -- ``x + 0.0`` is ``x`` but for ``-0.0``, and a running sum is ``-0.0`` only while every
    term so far is, so the sign of a zero total is that of all terms being ``-0.0`` wherever
    a ``+0.0`` comes, and every nonzero running sum is the same number either way."""
    node_ops, attrs = work.ops, work.attrs
    zero = [node_ops[a] == "const" and attrs[a][0] == 0.0 for a in operands]
    if not any(zero) or all(zero[:sum(zero)]):
        return None
    return tuple(a for a, z in zip(operands, zero) if z) + tuple(a for a, z in zip(operands, zero) if not z)


def _longest_run(flags: list[bool]) -> tuple[int, int]:
    """``(start, end)`` of the first longest run of True in ``flags`` (``(0, 0)`` if none),
    found by ``list.index`` scans (a sum's operands are mostly one run)."""
    best = (0, 0)
    end, size = 0, len(flags)
    while True:
        start = find_index(flags, True, end, size)
        if start == size:
            return best
        end = find_index(flags, False, start, size)
        if end - start > best[1] - best[0]:
            best = (start, end)


def roll_sums(work: EditableGraph, shapes: list, to_differentiate: bool) -> None:
    """Rules 1 and 2: each sum with a run of products becomes a ``dot``; sums whose products
    share one operand vector (a layer's rows) become one ``matvec``, where that keeps
    reverse mode's order of every lane's gradient parts."""
    candidates = []  # (sum id, prefix, products' (first, second) factors, suffix, products)
    for i in work.nodes_now(ops.SUMS):
        if i >= work.n_original or shapes[i]:
            continue
        operands = work.args[i]
        start, end = _product_run(work, shapes, operands, to_differentiate)
        zeros_first = _zeros_first(work, operands)
        if zeros_first is not None:
            start_z, end_z = _product_run(work, shapes, zeros_first, to_differentiate)
            if end_z - start_z > end - start:
                operands, start, end = zeros_first, start_z, end_z
        if end - start >= MIN_PRODUCTS:
            pairs = [work.args[m] for m in operands[start:end]]
            sides = (tuple(map(itemgetter(0), pairs)), tuple(map(itemgetter(1), pairs)))
            candidates.append((i, list(operands[:start]), sides, list(operands[end:]), operands[start:end]))
    if not candidates:
        return
    users = users_of(work.graph)
    rolled: dict[int, tuple] = {}  # each row rolled into a matvec -> all rows of that matvec
    reached = _ReverseModeOrder(work.graph) if to_differentiate else None
    count: dict[tuple, int] = {}
    for _, _, sides, _, _ in candidates:
        for key in set(sides):
            count[key] = count.get(key, 0) + 1
    groups: dict[tuple, list] = {}
    for cand in candidates:
        a_side, b_side = cand[2]
        shared_is_a = count[a_side] > count[b_side]  # ties: share the second operand (w * x)
        shared = a_side if shared_is_a else b_side
        other = b_side if shared_is_a else a_side
        groups.setdefault(shared, []).append((cand, other))
    for shared, rows in groups.items():
        # Lanes in the order the rows' products were made: reverse mode reaches them last
        # first, and so does vecmat (last row first) -- a row whose sum is made later (a
        # neuron summed inside the loss's own sum) must not move to the end.
        rows.sort(key=lambda row: row[0][4][0])
        in_order = _in_reverse_mode_order(work, shared, rows, users, reached)
        if len(rows) >= 2 and in_order and _independent(work, rows, shared, rolled) \
                and not _weighs_itself(shared, rows, reached) \
                and not _weights_read_between(work, rows, users, reached) \
                and _biases_apart(work, rows, shared, reached):
            _matvec(work, shared, rows, users)
            together = tuple(cand[0] for cand, _ in rows)
            rolled.update(dict.fromkeys(together, together))
        elif _lanes_of_one_vector(work, shared) or (in_order and (
                len(rows) == 1 or reached is None or not _read_elsewhere(work, shared, rows, users))):
            for (i, prefix, _, suffix, products), other in rows:
                _dot(work, i, prefix, other, shared, suffix, products, to_differentiate)
        # else left as they are: see _in_reverse_mode_order and _read_elsewhere


def _weights_read_between(work: EditableGraph, rows: list, users: Users, reached: _ReverseModeOrder | None) -> bool:
    """Whether a row's weight or bias (or an operand of a computed one: ``0.5 * p``) has
    another reader that reverse mode reaches between the rows, in a graph differentiated
    later: a matvec's gradient gives every row's weight part at once (``outer``), and every
    bias its part (the accumulator's), where reverse mode gives each its row's place (outside
    hunts: an L2 term written between two outputs' data terms, ``d1 + l2 + d2``, 1 ulp off)."""
    if reached is None:
        return False
    rows_own = {n for (i, prefix, _, _, products), other in rows for n in (i, *prefix, *products, *other)}
    readers = [u for node, reader in _watched(work, rows) for u in users[node]
               if u != reader and u not in rows_own]
    if not readers:
        return False
    places = [reached[m] for cand, _ in rows for m in (cand[0], *cand[4])]
    first, last = min(places), max(places)
    return any(first < reached[u] < last for u in readers)


def _biases_apart(work: EditableGraph, rows: list, shared: tuple, reached: _ReverseModeOrder | None) -> bool:
    """Whether a matvec would reach its rows' computed biases in reverse mode's order, in a
    graph differentiated later.  It walks every row's bias before the vector the rows share;
    the scalar rows walk the first row's bias and products, then the next row's bias.  So a
    later row's computed bias must be computed from nothing the lanes or weights are
    computed from: ``0.37 + p * e`` next to ``p * d + p * g``, ``e`` reading ``d`` and
    ``g``'s inputs, gave those inputs their parts in another order (``make fuzz``, 1 ulp)."""
    computed = [cand for cand, _ in rows if any(work.ops[b] not in LEAVES for b in cand[1])]
    if reached is None or not computed:  # (reverse mode's order is found on first use: most layers need none)
        return True
    first = min((cand for cand, _ in rows), key=lambda cand: reached[cand[0]])
    biases = [b for cand in computed if cand is not first for b in cand[1] if work.ops[b] not in LEAVES]
    if not biases:
        return True
    behind = _ancestors(work.graph, biases, 0)  # the biases themselves at least: none is a constant
    return behind.isdisjoint(_ancestors(work.graph, [*shared, *(w for _, other in rows for w in other)], min(behind)))


def _ancestors(graph: Graph, nodes: list[int], lowest: int) -> set[int]:
    """``nodes`` and every node they are computed from, constants apart, down to id
    ``lowest`` (ids are topological: nothing below it is computed from a node above it)."""
    node_ops, args = graph.ops, graph.args
    found: set[int] = set()
    stack = [n for n in nodes if n >= lowest]
    while stack:
        n = stack.pop()
        if n in found or node_ops[n] == "const":
            continue
        found.add(n)
        stack.extend(a for a in args[n] if a >= lowest)
    return found


def _watched(work: EditableGraph, rows: list) -> list[tuple[int, int]]:
    """``(node, its reader in the rows)`` for each weight and bias of ``rows`` read elsewhere
    too, and each operand of a computed one, as the graph was before this pass (the pass
    may have made a hidden sum a dot already): constants apart."""
    graph = work.graph
    found = []
    for (i, prefix, _, _, products), other in rows:
        for node, reader in [*zip(other, products), *((b, i) for b in prefix)]:
            if node >= work.n_original:
                continue
            found.append((node, reader))
            if graph.ops[node] not in LEAVES and graph.ops[node] not in ("index", "pack"):
                found.extend((a, node) for a in graph.args[node])
    if not found:
        return []
    nodes = np.fromiter(map(itemgetter(0), found), np.int64, len(found))  # a layer's 78,400 weights: in bulk
    return list(compress(found, ((graph.arrays.reads[nodes] > 1) & (graph.arrays.codes[nodes] != CONST)).tolist()))


def _weighs_itself(shared: tuple, rows: list, reached: _ReverseModeOrder | None) -> bool:
    """Whether a lane of the shared vector is also a weight of some row (``p * p`` of an L2
    term rolled with a layer over ``p``), in a graph differentiated later.  Reverse mode adds
    that product's two parts to the lane one after the other, where a matvec's gradient
    gives the weight's part (``outer``) after every row's part through the vector
    (``vecmat``).  Dots keep the two parts together."""
    if reached is None:
        return False
    lanes = set(shared)
    return any(w in lanes for _, other in rows for w in other)


def _independent(work: EditableGraph, rows: list, shared: tuple, rolled: dict[int, tuple]) -> bool:
    """No row's weights or accumulator, nor a lane of the vector they share, may depend on a
    row's sum: one forward sweep from the rows' sums over the ids in between (ids are
    topological in the original graph).  The rows of a matvec made before (``rolled``) now
    each depend on all its rows' operands, so reaching one reaches all (``make fuzz`` drew
    a gradient graph where two groups each read a row of the other as a weight: a cycle)."""
    sums = {cand[0] for cand, _ in rows}
    operands = [a for cand, other in rows for a in list(other) + cand[1]] + list(shared)
    last = _sweep_end(max(operands), min(sums), rolled)
    if last < min(sums):
        return True
    reached = set(sums)
    args = work.graph.args
    i = min(sums)
    while i <= last:
        if i not in reached and any(a in reached for a in args[i]):
            reached.add(i)
            others = [r for r in rolled.get(i, ()) if r not in reached]
            reached.update(others)
            if others and min(others) < i:
                i = min(others)  # go on from there: what reads them comes after them
                continue
        i += 1
    return not any(a in reached for a in operands)


def _sweep_end(last: int, first: int, rolled: dict[int, tuple]) -> int:
    """Where :func:`_independent`'s sweep may stop: past the operands, and past every row of
    a matvec with a row in the sweep (a later row may be reached, and with it the rest)."""
    groups = {rows for rows in rolled.values() if max(rows) > first}
    grown = True
    while grown:
        grown = False
        for rows in groups:
            if min(rows) <= last < max(rows):
                last, grown = max(rows), True
    return last


class _ReverseModeOrder:
    """``place[i]``: where node ``i`` of ``graph`` is in the depth-first post-order from its
    outputs through what eager code walks (:func:`~graphc.autodiff.eager_operands`; -1 for a
    node reached only past a comparison or a stopped gradient, which takes no gradient),
    whose reverse is the order reverse mode reaches nodes in (made on first use:
    most layers' lanes have no reader but the layer's rows, and need no order at all).
    Ids are not that order after a first round of re-rolling: it puts a dot's packs as
    early as their operands allow, before rows of a layer they were read between."""

    __slots__ = ("graph", "_place")

    def __init__(self, graph: Graph) -> None:
        self.graph, self._place = graph, None

    def __getitem__(self, i: int) -> int:
        if self._place is None:
            self._place = [-1] * len(self.graph)
            for k, node in enumerate(depth_first_ids(self.graph.outputs, eager_operands(self.graph))):
                self._place[node] = k
        return self._place[i]


def _in_reverse_mode_order(work: EditableGraph, shared: tuple, rows: list, users: Users,
                           reached: _ReverseModeOrder | None) -> bool:
    """Whether ``vecmat`` would add each lane's gradient parts from these rows as reverse
    mode adds them: no other reader of a lane is reached between the rows' products (in
    reverse mode's order); for the lanes of one vector (a layer's outputs), also each lane
    read once per row, by products made in row order (ids are the trace's order).

    If not, the lanes of one vector stay dots, whose parts reverse mode adds one by one, in
    its own order.  Lanes that are scalars of their own stay the scalar sums they are: as
    dots they would share one ``pack`` (the rows read the same lanes), whose parts reach
    each lane together, so a reader in between -- a neuron written the other way round,
    ``h0 * w`` where the others have ``w * h0``, which is not one of the rows -- would get
    its part after the rows' instead of between them.

    ``reached`` None: a graph no gradient is taken of (:func:`reroll_final`), where only
    the lanes of one vector are asked, by ids."""
    one_vector = _lanes_of_one_vector(work, shared)
    if reached is None and not one_vector:
        return True
    repeated = {x for x, times in Counter(shared).items() if times > 1}
    for x, column in zip(shared, zip(*(cand[4] for cand, _ in rows))):  # each lane's products, row by row
        if work.ops[x] == "const":
            continue
        products = list(column)
        if one_vector and (x in repeated or products != sorted(products)):
            return False
        others = _other_readers(users, x, products) if len(products) > 1 else ()  # (one row: nothing between)
        if others:
            place = reached if reached is not None else range(len(work.graph))
            places = [place[m] for m in products]
            first, last = min(places), max(places)
            if (one_vector and places != sorted(places)) or any(first < place[u] < last for u in others):
                return False
    return True


def _read_elsewhere(work: EditableGraph, shared: tuple, rows: list, users: Users) -> bool:
    """Whether a lane (not a constant) has a reader besides these rows' products.  Rows that
    stay dots over scalars of their own share one pack of those lanes, whose parts reach
    each lane as one sum (``r + (c1 + c0)``, where reverse mode adds ``(r + c1) + c0``):
    exact only where the rows are the lanes' only readers."""
    return any(_other_readers(users, x, [cand[4][k] for cand, _ in rows])
               for k, x in enumerate(shared) if work.ops[x] != "const")


def _other_readers(users: Users, x: int, products: list[int]) -> list[int]:
    """The readers of lane ``x`` besides ``products`` (the rows' products reading it)."""
    readers = users[x]
    if len(readers) <= len(products):  # each product reads x: no room for another reader
        return []
    mine = set(products)
    return [u for u in readers if u not in mine]


def _lanes_of_one_vector(work: EditableGraph, shared: tuple) -> bool:
    return all(work.ops[x] == "index" and work.args[x][0] == work.args[shared[0]][0] for x in shared)


def _accumulator(work: EditableGraph, prefix: list[int]) -> int:
    return work.total(prefix) if prefix else work.const(-0.0)


def _finish_row(work: EditableGraph, i: int, value_op: str, value_args: tuple, attr: tuple, suffix: list[int],
                products: tuple) -> None:
    """Node ``i`` becomes the re-rolled value, plus whatever the sum added after the run."""
    if not suffix:
        work.set(i, value_op, value_args, attr)
    else:
        value = work.add(value_op, value_args, attr)
        work.set(i, ops.sum_op(1 + len(suffix)), (value, *suffix))
    work.kill(products)  # absorbed: dead now, and no longer a use of its operands


def _one_bias_each(work: EditableGraph, suffixes: list[list[int]]) -> bool:
    """Whether every row adds one leaf after its products (``sum(wi * xi ...) + b``), each
    read by nothing else but a constant: then the matvec adds them as one vector, whose
    lanes the next layer's packs take whole (rule 3), lane by lane the same additions.  A
    bias read elsewhere too (an L2 term) stays each row's own sum, as reverse mode orders
    its parts there."""
    return all(len(s) == 1 and (work.ops[s[0]] == "const" or work.ops[s[0]] in LEAVES and work.uses[s[0]] == 1)
               for s in suffixes)


def _added_biases(work: EditableGraph, rows: list, users: Users) -> tuple[tuple, tuple, bool] | None:
    """``(the adds, their biases, whether the bias comes first)`` where each row's one user
    adds it and a bias as :func:`_one_bias_each` takes one, all on one side (``b + sum(wi *
    xi ...)``: the sum, then the bias added, which re-rolls as the matvec plus a vector, as
    ``sum(...) + b`` does); else None."""
    adds, biases, sides = [], [], set()
    for (i, *_), _ in rows:
        readers = users[i]
        if len(readers) != 1 or work.uses[i] != 1 or readers[0] in work.edited:
            return None
        u = readers[0]
        if work.ops[u] != "add" or u >= work.n_original:
            return None
        first = work.args[u][1] == i
        bias = work.args[u][0 if first else 1]
        if bias == i or not _one_bias_each(work, [[bias]]):
            return None
        adds.append(u)
        biases.append(bias)
        sides.add(first)
    return (tuple(adds), tuple(biases), sides.pop()) if len(sides) == 1 else None


def _dot(work: EditableGraph, i: int, prefix: list[int], u: tuple, v: tuple, suffix: list[int],
         products: tuple, to_differentiate: bool) -> None:
    sides = _one_side_each(work, u, v)
    if sides is None or (to_differentiate and not _simple(work, u + v)):
        return
    u, v = sides
    acc = _accumulator(work, prefix)
    pu = work.add("pack", u, ((len(u),),))
    pv = work.add("pack", v, ((len(v),),))
    _finish_row(work, i, "dot", (acc, pu, pv), (), suffix, products)
    work.hits["dot"] += 1


def _simple(work: EditableGraph, factors: tuple) -> bool:
    """Whether every factor is a leaf, a tensor's lane (``index``), or one op on those (a
    weight, ``tanh(w)``, ``relu(h[k])``): nothing but the factor itself is computed for
    it alone, within the sum.

    A dot reads its first factors, then its second, each pack where the last of them is;
    the scalar sum reads each product's two in turn.  So a node read within a factor's own
    computation -- ``c*h2 + 0.01*l2``, b in both h2 and l2; ``p0*x0 + 0.001*l2``, p0 in
    l2, whose part would now come after the product's -- would get its parts in another
    order.  Lanes apart get their parts apart (README, "Exactness": a param read in
    several places is the exception)."""
    ops_, args = work.ops, work.args
    plain = ("index",) + LEAVES
    return all(ops_[f] in plain or all(ops_[a] in plain for a in args[f]) for f in factors)


def _one_side_each(work: EditableGraph, u: tuple, v: tuple) -> tuple[tuple, tuple] | None:
    """The products' operands turned (``a*b`` is ``b*a`` bit for bit) so that no node but a
    constant is in both ``u`` and ``v`` -- else None (the sum is left alone).  Reverse mode
    reaches a node's parts from the dot through the pack it is in, last lane first: a node
    in both packs would get its parts in the packs' order, not the products' (``w*x + x*v``
    with ``x`` on the left once).  A square ``x*x`` is no edge: its two parts are one number.
    A two-colouring of the products' operands, each product an edge; the first node of
    each component keeps its side -- unless its products are all weights (params, constants,
    or one op on one: ``-p``) times a tensor's lanes (or one op on one and constants:
    ``tanh(h[k])``, ``h[k] - 0.37``), on the other side than the first such product's
    weight: the component turns over, so that the lanes of a layer are all in one pack,
    whose parts reverse mode reaches in the products' order (outside hunts: ``p2*c + p3*a +
    b*p4``, ``p2*a + p3*b + -0.81*c`` recorded as ``c * -0.81``, ``p4*h0 + h1*p5 +
    tanh(h2)*p6`` and ``(-p10)*b + (-p11)*c + a*(-p12)``; ``make fuzz``: ``(h2 - 0.37)*p11``
    split a layer's lanes over both packs: 1 ulp off eager).  Scalars of their own keep their sides
    (``make fuzz``: turned with the others, they joined a layer's vector read between other
    rows)."""
    ops_ = work.ops
    side: dict[int, int] = {}
    component: dict[int, int] = {}
    edges: dict[int, list[int]] = {}
    for a, b in zip(u, v):
        if ops_[a] == "const" or ops_[b] == "const" or a == b:
            continue
        edges.setdefault(a, []).append(b)
        edges.setdefault(b, []).append(a)
    for start, first_side in [(a, 0) for a in u] + [(b, 1) for b in v]:
        if start in side or start not in edges:
            continue
        side[start], component[start] = first_side, start
        stack = [start]
        while stack:
            node = stack.pop()
            for other in edges[node]:
                if other not in side:
                    side[other], component[other] = 1 - side[node], start
                    stack.append(other)
                elif side[other] == side[node]:
                    return None

    def weight_side(a: int, b: int) -> int | None:
        """The side the weight of product ``(a, b)`` is on now, None unless it is a weight
        times a tensor's lane."""
        weight_a, weight_b = _weight(work, a), _weight(work, b)
        if weight_a == weight_b or not _lane(work, b if weight_a else a):
            return None
        at_a = side.get(a, 1 - side.get(b, 1))  # a's side: b's other, or 0 (as written) for a const's product
        return at_a if weight_a else 1 - at_a
    wanted = next((w for w in map(weight_side, u, v) if w is not None), None)
    flips: dict[int, set] = {}
    for a, b in zip(u, v):
        if a in side or b in side:
            w = weight_side(a, b)  # None: an edge of two lanes, say, whose sides the flip would swap
            flips.setdefault(component[a if a in side else b], set()).add(None if w is None else w != wanted)
    for node in side:
        if flips.get(component[node]) == {True}:  # every product a weight times a lane, on the other side
            side[node] = 1 - side[node]

    def turned(a: int, b: int) -> bool:
        if a in side or b in side:
            return side.get(a, 1 - side.get(b, 1)) == 1
        w = weight_side(a, b)
        return w is not None and w != wanted
    pairs = [(b, a) if turned(a, b) else (a, b) for a, b in zip(u, v)]
    return tuple(a for a, _ in pairs), tuple(b for _, b in pairs)


#: The factors :func:`_one_side_each` keeps on one side of a layer's lanes where it can.
_WEIGHTS = frozenset({"param", "const"})


def _weight(work: EditableGraph, node: int) -> bool:
    """Whether ``node`` is a weight: a param or a constant, or one op on those alone (``-w``,
    ``w * 0.5``)."""
    return work.ops[node] in _WEIGHTS or _one_op_on(work, node, _WEIGHTS)


def _lane(work: EditableGraph, node: int) -> bool:
    """Whether ``node`` is a tensor's lane, or one op on one and constants (``tanh(h[k])``,
    an activation's lane; ``h[k] - 0.37``, a bias subtracted: ``make fuzz``), which reverse
    mode reaches with the layer's other lanes."""
    return work.ops[node] == "index" or (_one_op_on(work, node, ("index", "const")) and
                                         sum(work.ops[a] == "index" for a in work.args[node]) == 1)


def _one_op_on(work: EditableGraph, node: int, kinds) -> bool:
    """Whether ``node`` is an elementwise op whose operands are all of ``kinds``."""
    args = work.args[node]
    return bool(args) and ops.TABLE[work.ops[node]].elementwise and all(work.ops[a] in kinds for a in args)


def _matvec(work: EditableGraph, shared: tuple, rows: list, users: Users) -> None:
    m, n = len(rows), len(shared)
    accs = [_accumulator(work, cand[1]) for cand, _ in rows]
    if all(a == accs[0] for a in accs) and work.ops[accs[0]] == "const":
        b = accs[0]  # one constant for every row: a scalar, broadcast
    else:
        b = work.add("pack", tuple(accs), ((m,),))
    W = work.add("pack", tuple(chain.from_iterable(other for _, other in rows)), ((m, n),))
    x = work.add("pack", shared, ((n,),))
    mv = work.add("matvec", (b, W, x))
    suffixes = [cand[3] for cand, _ in rows]
    added = None if any(suffixes) else _added_biases(work, rows, users)
    if _one_bias_each(work, suffixes):  # sum(w * x ...) + b: the biases added as a vector
        mv = work.add("add", (mv, work.add("pack", tuple(s for (s,) in suffixes), ((m,),))))
        suffixes = [[] for _ in rows]
    for row, (((i, _, _, _, products), _), suffix) in enumerate(zip(rows, suffixes)):
        _finish_row(work, i, "index", (mv,), (row,), suffix, products)
    if added is not None:  # b + sum(w * x ...): likewise, each row's one user an index of the sum
        adds, biases, first = added
        pack = work.add("pack", biases, ((m,),))
        total = work.add("add", (pack, mv) if first else (mv, pack))
        for row, u in enumerate(adds):
            work.set(u, "index", (total,), (row,))
        work.kill([cand[0] for cand, _ in rows])
    work.hits["matvec"] += 1
    work.hits["rows"] += m

