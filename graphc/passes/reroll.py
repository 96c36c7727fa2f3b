"""Re-rolling: recover the tensor structure that tracing unrolled into scalars.

A traced neuron is ``sum(b, mul(w0, x0), mul(w1, x1), ...)``; a layer is many of them
reading the same inputs.  This pass rewrites, wherever the pattern holds (nothing here
knows about MLPs):

1. **dots** -- a sum whose operands include a run of two or more products (each used
   only by that sum) becomes ``dot(acc, pack(w...), pack(x...))``: ``acc`` is what the
   sum added before the run (``-0.0`` if nothing: ``-0.0 + t`` is ``t`` for every ``t``),
   operands after the run are added to the dot's result as before;
2. **matvec** -- two or more such sums whose products share one operand vector (all
   neurons of a layer read the same ``x``) become one ``matvec(pack(acc...), W, x)``,
   with each sum replaced by ``index(matvec, row)``.  Rows may not depend on each other;
3. **vectorization** (superword-level parallelism, seeded at packs) -- ``pack(f(a0, b0),
   f(a1, b1), ...)`` of one elementwise op, each lane used only by the pack, becomes
   ``f(pack(a...), pack(b...))`` (a constant shared by every lane stays a scalar);
   ``pack(index(v, 0), ..., index(v, n-1))`` becomes ``v`` and ``index(pack(...), k)``
   the k-th operand.  So ``pack(relu(index(h, 0)), relu(index(h, 1)), ...)``, the input
   of the next layer, becomes ``relu(h)``;
4. **gathered units** -- in a gradient graph, ``sum(unit(g0, v, i0), unit(g1, v, i1),
   ...)`` (the cotangents of ``index`` users of ``v``, one per part) becomes one ``pack``
   of each lane's ``g`` s added in order, ``0.0`` in the other lanes;
5. **accumulated gradients** -- in a gradient graph, a vector's gradient ``sum(p..., V,
   q...)`` whose part ``V = vecmat(-0.0, g, W)`` (what a layer reading the vector gives
   back) comes after others becomes ``sum(vecmat(sum(p...), g, W), q...)``; likewise lane
   by lane, ``sum(p_j..., index(V, j), q_j...)`` for each lane ``j``, with the
   accumulator ``pack(sum(p_j...)...)``.  Reverse mode adds the layer's rows to what came
   before one by one, and so does ``vecmat`` from its accumulator: ``p + (r2 + r1)``
   would not be ``(p + r2) + r1`` (a residual connection, a hidden value that is also an
   output);
6. **outputs over a tensor** -- outputs ``f(..., index(T, k), ...)`` of one elementwise
   ``f``, read by no node, that take every lane ``k`` of ``T`` once at one operand
   position become ``index(f(..., T, ...), k)``, the other operands packed (rule 3 goes
   on from the packs).  A per-sample loss with an L2 term gives every weight the
   gradient ``add(index(l2, j), index(outer(g, x), k))``: one ``add`` of a layer's
   ``outer`` and a pack of the L2 term's lanes, which the C kernels sum over the rows
   without forming either (:func:`graphc.codegen.common.reduced_tensors`).

**Exactness.**  ``dot`` and ``matvec`` add in the order the sums did (each op's meaning
fixes its order: see :mod:`graphc.ops`), products are commutative bit for bit, and
elementwise ops act lane by lane, so a re-rolled graph computes the same bits as the
scalar one -- on every backend that keeps the op's order (Python, C; NumPy too, see
:mod:`graphc.codegen.numpy`).  The one difference is in rule 4: a lane that several
units would have added ``+0.0`` to keeps the sign of a ``-0.0`` cotangent, as the scalar
gradient graph does.  Gradients of re-rolled nodes come from their vjp rules
(``dW = outer(g, x)``, ``dx = vecmat(-0.0, g, W)``), which multiply in the scalar rules' order;
``vecmat`` adds rows last-first, the order reverse mode reaches a layer's neurons in.
That order holds for a lane only if no other reader of it comes between the layer's rows,
so rule 2 leaves rows as dots where one would (a neuron split in two sums around another
neuron, a lane read twice by one row) -- or, for lanes that are scalars of their own,
whose dots would share one pack, as the scalar sums they are -- and rule 5 puts the
gradient parts that came before the layer in front of its rows.

**Where it runs.**  Not in :data:`~graphc.passes.PIPELINE` (``optimize``): the Python
backend runs scalar code fastest, and ``compiled.graph`` stays the graph as traced and
simplified.  The batched backends (NumPy, C) run :data:`VECTOR_PIPELINE`, where one
tensor op replaces hundreds of per-node dispatches (NumPy) or statements (C), on the
forward graph, and :data:`JOINT_VECTOR_PIPELINE` (:func:`reroll_final`) on the joint
forward and gradient graph, which no gradient is taken of.

The rewritten nodes are put in a valid order by a stable topological sort (Kahn's
algorithm with a heap: no recursion); new nodes are placed as early as their operands
allow, the others keep their relative order.
"""
from __future__ import annotations

import heapq
import math
from collections import Counter

from .. import ops
from ..ops import LEAVES
from ..graph import Builder, Graph, first_repeated_const
from ..graph_arrays import Users
from ..walk import depth_first_ids
from .base import PassResult, PassStats, unchanged
from .reroll_check import could_change

MIN_PRODUCTS = 2  # a run of fewer products is left alone


class _EditableGraph(Builder):
    """The graph being re-rolled: a Builder holding its nodes (same ids) that also keeps use
    counts, replaces nodes in place (``set``) and maps replaced ids to others (``forward``)."""

    __slots__ = ("graph", "n_original", "forward", "uses", "hits", "first_set")

    def __init__(self, graph: Graph) -> None:
        super().__init__(graph)
        self.graph = graph
        self.n_original = len(graph)
        self.forward: dict[int, int] = {}
        self.uses = graph.use_counts()
        self._forget_dead()
        self.hits = {"dot": 0, "matvec": 0, "rows": 0, "vectorized": 0, "pack(index)": 0,
                     "index(pack)": 0, "units": 0, "accumulated": 0, "outputs": 0}
        self.first_set = self.n_original  # the lowest original node replaced in place

    def add(self, op: str, args: tuple = (), attr: tuple = ()) -> int:
        """Append a node, counting its uses of its operands."""
        self.uses.append(0)
        for a in args:
            self.uses[a] += 1
        return super().add(op, args, attr)

    def set(self, i: int, op: str, args: tuple, attr: tuple = ()) -> None:
        """Replace node ``i`` in place (its users keep referring to it)."""
        for a in self.args[i]:
            self.uses[a] -= 1
        for a in args:
            self.uses[a] += 1
        self.ops[i], self.args[i], self.attrs[i] = op, args, attr
        if i < self.first_set:
            self.first_set = i

    def _forget_dead(self) -> None:
        """Make the ops no output depends on constants here (dce drops them later): no rule
        rewrites them, and their uses -- of the ``unit`` s reverse mode gathered into a
        pack, say -- do not make a live node look shared."""
        arrays = self.graph.arrays
        if not ((arrays.uses == 0) & (arrays.lengths > 0)).any():  # every dead region tops in an unused op
            return
        uses, args = self.uses, self.args
        for i, alive in enumerate(self.graph.live()):
            if not alive and args[i]:
                for a in args[i]:
                    uses[a] -= 1
                self.ops[i], args[i], self.attrs[i] = "const", (), (0.0,)

    def resolve(self, i: int) -> int:
        while i in self.forward:
            i = self.forward[i]
        return i


def reroll(graph: Graph, *, to_differentiate: bool = True) -> PassResult:
    """Rules 1-6 of the module docstring, then a topological re-sort; ``to_differentiate``
    False for a graph no gradient is taken of (:func:`reroll_final`)."""
    if not could_change(graph):  # the cheap answer where no rule can fire
        return unchanged("reroll", graph)
    return rerolled(graph, to_differentiate)


def reroll_final(graph: Graph) -> PassResult:
    """:func:`reroll` for a graph that is not differentiated again (a joint forward and
    gradient graph): rows whose lanes are scalars of their own are rolled even where
    another reader comes between them, which changes no value (only the order in which
    a gradient of this graph would add its parts)."""
    return reroll(graph, to_differentiate=False)


def rerolled(graph: Graph, to_differentiate: bool = True) -> PassResult:
    """:func:`reroll` without the quick check: every rule tried."""
    shapes = graph.shapes
    work = _EditableGraph(graph)
    _accumulate_vecmats(work, shapes)
    _roll_sums(work, shapes, to_differentiate)
    _vectorize_outputs(work)
    _vectorize(work, to_differentiate)
    _gather_units(work)
    if not any(work.hits.values()):
        return unchanged("reroll", graph)
    result = _emit(work)
    return PassResult(result, PassStats("reroll", len(graph), len(result),
                                        {k: v for k, v in work.hits.items() if v}))


# -- rules 1 and 2: sums of products -> dot / matvec ---------------------------------------

def _product_run(work: _EditableGraph, shapes: list, operands: tuple, to_differentiate: bool) -> tuple[int, int]:
    """The longest run ``operands[start:end]`` of single-use scalar products, none of whose
    factors is computed from another operand or factor of the sum (``o + o * o**-1``,
    ``o + o * sigmoid(o)``).  A dot reads its factors through two packs, all first factors
    then all second: the part of ``o`` from ``o**-1``'s derivative would reach ``o`` before
    the product's own part, which the scalar program adds first.  (Asked only of a graph
    that is differentiated later.)"""
    best = (0, 0)
    start = None
    node_ops, args = work.ops, work.args
    factors = [f for a in operands if node_ops[a] == "mul" for f in args[a]]
    near = None  # the sum's operands and factors, where some factor is computed (a layer's are not)
    if to_differentiate and any(args[f] for f in factors):
        near = set(operands)
        near.update(factors)
    for k, a in enumerate(operands + (-1,)):
        ok = a >= 0 and node_ops[a] == "mul" and work.uses[a] == 1 and not shapes[a] \
            and not (near is not None and any(o in near for f in args[a] for o in args[f]))
        if ok and start is None:
            start = k
        elif not ok and start is not None:
            if k - start > best[1] - best[0]:
                best = (start, k)
            start = None
    return best


def _roll_sums(work: _EditableGraph, shapes: list, to_differentiate: bool) -> None:
    candidates = []  # (sum id, prefix, products' (a, b) pairs, suffix, products)
    for i in range(work.n_original):
        if work.ops[i] in ops.SUMS and not shapes[i]:
            operands = work.args[i]
            start, end = _product_run(work, shapes, operands, to_differentiate)
            if end - start >= MIN_PRODUCTS:
                pairs = [work.args[m] for m in operands[start:end]]
                candidates.append((i, list(operands[:start]), pairs, list(operands[end:]), operands[start:end]))
    if not candidates:
        return
    users = _users(work.graph)
    reached = _ReverseModeOrder(work.graph) if to_differentiate else None
    count: dict[tuple, int] = {}
    for _, _, pairs, _, _ in candidates:
        sides = {tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)}
        for key in sides:
            count[key] = count.get(key, 0) + 1
    groups: dict[tuple, list] = {}
    for cand in candidates:
        pairs = cand[2]
        a_side, b_side = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
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
        if len(rows) >= 2 and in_order and _independent(work, rows):
            _matvec(work, shared, rows)
        elif _lanes_of_one_vector(work, shared) or (in_order and (
                len(rows) == 1 or reached is None or not _read_elsewhere(work, shared, rows, users))):
            for (i, prefix, _, suffix, products), other in rows:
                _dot(work, i, prefix, other, shared, suffix, products, to_differentiate)
        # else left as they are: see _in_reverse_mode_order and _read_elsewhere


def _independent(work: _EditableGraph, rows: list) -> bool:
    """No row's weights or accumulator may depend on a row's sum: one forward sweep from
    the rows' sums over the ids in between (ids are topological in the original graph)."""
    sums = {cand[0] for cand, _ in rows}
    operands = [a for cand, other in rows for a in list(other) + cand[1]]
    last = max(operands)
    if last < min(sums):
        return True
    reached = set(sums)
    for i in range(min(sums), last + 1):
        if i not in reached and any(a in reached for a in work.graph.args[i]):
            reached.add(i)
    return not any(a in reached for a in operands)


class _ReverseModeOrder:
    """``place[i]``: where node ``i`` of ``graph`` is in the depth-first post-order from its
    outputs, whose reverse is the order reverse mode reaches nodes in (made on first use:
    most layers' lanes have no reader but the layer's rows, and need no order at all).
    Ids are not that order after a first round of re-rolling: it puts a dot's packs as
    early as their operands allow, before rows of a layer they were read between."""

    __slots__ = ("graph", "_place")

    def __init__(self, graph: Graph) -> None:
        self.graph, self._place = graph, None

    def __getitem__(self, i: int) -> int:
        if self._place is None:
            self._place = [-1] * len(self.graph)
            for k, node in enumerate(depth_first_ids(self.graph.outputs, self.graph.args)):
                self._place[node] = k
        return self._place[i]


def _in_reverse_mode_order(work: _EditableGraph, shared: tuple, rows: list, users: Users,
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
    for k, x in enumerate(shared):
        if work.ops[x] == "const":
            continue
        products = [cand[4][k] for cand, _ in rows]
        if one_vector and (shared.count(x) > 1 or products != sorted(products)):
            return False
        others = _other_readers(users, x, products) if len(products) > 1 else ()  # (one row: nothing between)
        if others:
            place = reached if reached is not None else range(len(work.graph))
            places = [place[m] for m in products]
            first, last = min(places), max(places)
            if (one_vector and places != sorted(places)) or any(first < place[u] < last for u in others):
                return False
    return True


def _read_elsewhere(work: _EditableGraph, shared: tuple, rows: list, users: Users) -> bool:
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


def _lanes_of_one_vector(work: _EditableGraph, shared: tuple) -> bool:
    return all(work.ops[x] == "index" and work.args[x][0] == work.args[shared[0]][0] for x in shared)


def _users(graph: Graph) -> Users:
    """``users[i]``: the nodes of ``graph`` using node ``i``, in id order (asked of a few nodes)."""
    return Users(graph.arrays)


def _accumulator(work: _EditableGraph, prefix: list[int]) -> int:
    return work.total(prefix) if prefix else work.const(-0.0)


def _finish_row(work: _EditableGraph, i: int, value_op: str, value_args: tuple, attr: tuple, suffix: list[int],
                products: tuple) -> None:
    """Node ``i`` becomes the re-rolled value, plus whatever the sum added after the run."""
    if not suffix:
        work.set(i, value_op, value_args, attr)
    else:
        value = work.add(value_op, value_args, attr)
        work.set(i, ops.sum_op(1 + len(suffix)), (value, *suffix))
    for m in products:  # absorbed: dead now, and no longer a use of its operands
        work.set(m, "const", (), (0.0,))


def _dot(work: _EditableGraph, i: int, prefix: list[int], u: tuple, v: tuple, suffix: list[int],
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


def _simple(work: _EditableGraph, factors: tuple) -> bool:
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


def _one_side_each(work: _EditableGraph, u: tuple, v: tuple) -> tuple[tuple, tuple] | None:
    """The products' operands turned (``a*b`` is ``b*a`` bit for bit) so that no node but a
    constant is in both ``u`` and ``v`` -- else None (the sum is left alone).  Reverse mode
    reaches a node's parts from the dot through the pack it is in, last lane first: a node
    in both packs would get its parts in the packs' order, not the products' (``w*x + x*v``
    with ``x`` on the left once).  A square ``x*x`` is no edge: its two parts are one number.
    A two-colouring of the products' operands, each product an edge; the first node of
    each component keeps its side."""
    side: dict[int, int] = {}
    edges: dict[int, list[int]] = {}
    for a, b in zip(u, v):
        if work.ops[a] == "const" or work.ops[b] == "const" or a == b:
            continue
        edges.setdefault(a, []).append(b)
        edges.setdefault(b, []).append(a)
    for start, first_side in [(a, 0) for a in u] + [(b, 1) for b in v]:
        if start in side or start not in edges:
            continue
        side[start] = first_side
        stack = [start]
        while stack:
            node = stack.pop()
            for other in edges[node]:
                if other not in side:
                    side[other] = 1 - side[node]
                    stack.append(other)
                elif side[other] == side[node]:
                    return None
    turned = [(b, a) if side.get(a, 1 - side.get(b, 1)) == 1 else (a, b) for a, b in zip(u, v)]
    return tuple(a for a, _ in turned), tuple(b for _, b in turned)


def _matvec(work: _EditableGraph, shared: tuple, rows: list) -> None:
    m, n = len(rows), len(shared)
    accs = [_accumulator(work, cand[1]) for cand, _ in rows]
    if all(a == accs[0] for a in accs) and work.ops[accs[0]] == "const":
        b = accs[0]  # one constant for every row: a scalar, broadcast
    else:
        b = work.add("pack", tuple(accs), ((m,),))
    W = work.add("pack", tuple(w for _, other in rows for w in other), ((m, n),))
    x = work.add("pack", shared, ((n,),))
    mv = work.add("matvec", (b, W, x))
    for row, ((i, _, _, suffix, products), _) in enumerate(rows):
        _finish_row(work, i, "index", (mv,), (row,), suffix, products)
    work.hits["matvec"] += 1
    work.hits["rows"] += m


# -- rule 3: vectorize packs ---------------------------------------------------------------

def _in_two_columns(work: _EditableGraph, lanes: tuple, arity: int) -> bool:
    """Whether a node (not a constant) is an operand of these lanes at two positions
    (``pack(u0*h0, h0*v0)``): the packs of the vectorized op would hand it its parts in
    the packs' order, not the lanes' (the dot's hazard, :func:`_one_side_each`)."""
    position: dict[int, int] = {}
    for t in range(arity):
        for lane in lanes:
            a = work.args[lane][t]
            if work.ops[a] != "const" and position.setdefault(a, t) != t:
                return True
    return False


def _vectorize(work: _EditableGraph, to_differentiate: bool) -> None:
    pending = [i for i, op in enumerate(work.ops) if op == "pack"]
    while pending:
        p = pending.pop()
        if work.ops[p] != "pack" or p in work.forward:
            continue
        lanes = work.args[p]
        (shape,) = work.attrs[p]
        source = _indexed_vector(work, lanes, shape)
        if source is not None:
            work.forward[p] = source
            work.hits["pack(index)"] += 1
            continue
        op = work.ops[lanes[0]]
        if op in ops.LEAVES or not ops.TABLE[op].elementwise:
            continue
        attr, arity = work.attrs[lanes[0]], len(work.args[lanes[0]])
        if any(work.ops[s] != op or work.attrs[s] != attr or len(work.args[s]) != arity or work.uses[s] != 1
               for s in lanes) or len(set(lanes)) != len(lanes):
            continue
        if to_differentiate and arity > 1 and _in_two_columns(work, lanes, arity):
            continue
        columns = []
        for t in range(arity):
            column = tuple(work.args[s][t] for s in lanes)
            if work.ops[column[0]] == "const" and all(c == column[0] for c in column):
                columns.append(column[0])  # a constant in every lane: broadcast
            else:
                q = work.add("pack", column, (shape,))
                pending.append(q)
                columns.append(q)
        old = lanes
        work.set(p, op, tuple(columns), attr)
        for s in old:  # the lanes are dead now
            work.set(s, "const", (), (0.0,))
        work.hits["vectorized"] += 1
    for i in range(len(work.ops)):
        if work.ops[i] == "index" and i not in work.forward:
            v = work.resolve(work.args[i][0])
            if work.ops[v] == "pack":
                work.forward[i] = work.args[v][work.attrs[i][0]]
                work.hits["index(pack)"] += 1


def _indexed_vector(work: _EditableGraph, lanes: tuple, shape: tuple) -> int | None:
    """``v`` if ``lanes`` are ``index(v, 0), ..., index(v, n-1)`` of a ``v`` shaped like the pack."""
    first = lanes[0]
    if work.ops[first] != "index":
        return None
    v = work.args[first][0]
    for k, s in enumerate(lanes):
        if work.ops[s] != "index" or work.args[s][0] != v or work.attrs[s][0] != k:
            return None
    v = work.resolve(v)
    shapes = _shape_of(work, v)
    return v if shapes == tuple(shape) else None


def _shape_of(work: _EditableGraph, i: int) -> tuple | None:
    """The shape of node ``i`` when it is cheap to know (packs, matvecs, original nodes)."""
    if i < work.n_original and work.ops[i] == work.graph.ops[i] and work.args[i] == work.graph.args[i]:
        return work.graph.shapes[i]
    op = work.ops[i]
    if op == "pack":
        return tuple(work.attrs[i][0])
    if op == "matvec":
        return (len(work.args[work.args[i][0]]),) if work.ops[work.args[i][0]] == "pack" else \
            (work.attrs[work.args[i][1]][0][0],)
    return None


# -- rule 6: outputs over a tensor's lanes -> one elementwise op ------------------------------

def _vectorize_outputs(work: _EditableGraph) -> None:
    """Outputs ``f(..., index(T, k), ...)`` of one elementwise ``f`` that take every lane
    ``k`` of ``T`` once, at one operand position (each param's gradient that a layer's
    ``outer`` gives plus an L2 term's), become ``index(f(..., T, ...), k)``; outputs that a
    node reads are left alone (one could be an operand of another's).  The other operands
    go into packs (rule 3 vectorizes them further).  Smaller tensors first, so a
    layer's gradient claims its outputs before a vector over all params (the L2 term's)."""
    groups: dict[tuple, list[tuple[int, int]]] = {}
    as_output = Counter(work.graph.outputs)
    for o, times in as_output.items():
        op, args = work.ops[o], work.args[o]
        if op in ops.LEAVES or not ops.TABLE[op].elementwise or work.uses[o] != times or o in work.forward:
            continue
        for position, a in enumerate(args):
            if work.ops[a] == "index":
                key = (op, work.attrs[o], len(args), position, work.args[a][0])
                groups.setdefault(key, []).append((work.attrs[a][0], o))
    claimed: set[int] = set()
    for key, lanes in sorted(groups.items(), key=lambda item: len(item[1])):
        op, attr, arity, position, tensor = key
        shape = _shape_of(work, tensor)
        lanes.sort()
        outputs = [o for _, o in lanes]
        if not shape or len(lanes) < 2 or [k for k, _ in lanes] != list(range(ops.size_of(shape))) \
                or claimed.intersection(outputs):
            continue
        columns = []
        for t in range(arity):
            column = tuple(work.args[o][t] for o in outputs)
            if t == position:
                columns.append(tensor)
            elif work.ops[column[0]] == "const" and all(c == column[0] for c in column):
                columns.append(column[0])  # a constant in every lane: broadcast
            else:
                columns.append(work.add("pack", column, (tuple(shape),)))
        rolled = work.add(op, tuple(columns), attr)
        for k, o in enumerate(outputs):
            work.set(o, "index", (rolled,), (k,))
        claimed.update(outputs)
        work.hits["outputs"] += 1


# -- rule 4: sums of units -> pack ------------------------------------------------------------

def _gather_units(work: _EditableGraph) -> None:
    for i in range(work.n_original):
        if work.ops[i] not in ops.SUMS:
            continue
        parts = work.args[i]
        if not all(work.ops[u] == "unit" and work.uses[u] == 1 for u in parts):
            continue
        like = work.args[parts[0]][1]
        if any(work.args[u][1] != like for u in parts):
            continue
        shape = work.graph.shapes[like] if like < work.n_original else None
        if not shape:
            continue
        values = work.lane_totals(work.units_by_lane(parts), ops.size_of(shape))
        for u in parts:
            work.set(u, "const", (), (0.0,))
        work.set(i, "pack", values, (tuple(shape),))
        work.hits["units"] += 1


# -- rule 5: gradient parts before a layer's -> vecmat's accumulator ---------------------------

def _accumulate_vecmats(work: _EditableGraph, shapes: list) -> None:
    graph = work.graph
    vecmats = [v for v in range(work.n_original) if graph.ops[v] == "vecmat" and _from_nothing(graph, v)]
    if not vecmats:
        return
    users = _users(graph)  # the users of vecmats and of their index nodes: rule 5 does not change them
    for v in vecmats:
        if work.uses[v] == 1 and users[v] and work.ops[users[v][0]] in ops.SUMS:
            _accumulate_vector(work, shapes, v, users[v][0])
        elif all(graph.ops[u] == "index" for u in users[v]):
            _accumulate_lanes(work, v, users)


def _from_nothing(graph: Graph, v: int) -> bool:
    """Whether vecmat ``v`` starts from ``-0.0`` (as reverse mode makes it)."""
    acc = graph.args[v][0]
    return graph.ops[acc] == "const" and graph.attrs[acc][0] == 0.0 and math.copysign(1.0, graph.attrs[acc][0]) < 0


def _before(work: _EditableGraph, total: int, part: int, v: int) -> tuple[list[int], list[int]] | None:
    """The operands of sum ``total`` before and after its operand ``part``, if ``part`` is
    there once and everything before it is an original node made before ``v`` (ids are
    topological, so it cannot depend on ``v``)."""
    operands = work.args[total]
    if operands.count(part) != 1:
        return None
    k = operands.index(part)
    before, after = list(operands[:k]), list(operands[k + 1:])
    return (before, after) if all(p < v for p in before) else None


def _accumulate_vector(work: _EditableGraph, shapes: list, v: int, total: int) -> None:
    split = _before(work, total, v, v)
    if split is None or not split[0] or any(shapes[p] not in ((), shapes[v]) for p in split[0]):
        return
    before, after = split
    _, g, W = work.graph.args[v]
    acc = work.total(before)
    if after:
        work.set(v, "vecmat", (acc, g, W))
        work.set(total, ops.sum_op(1 + len(after)), (v, *after))
    else:
        work.set(v, "const", (), (0.0,))
        work.set(total, "vecmat", (acc, g, W))
    work.hits["accumulated"] += 1


def _accumulate_lanes(work: _EditableGraph, v: int, users: Users) -> None:
    graph = work.graph
    accs, rewrites = [], []
    by_lane = {graph.attrs[u][0]: u for u in users[v]}
    if len(by_lane) != len(users[v]):
        return
    for lane in range(graph.shapes[v][0]):
        u = by_lane.get(lane)
        if u is None or work.uses[u] != 1 or len(users[u]) != 1 or work.ops[users[u][0]] not in ops.SUMS:
            accs.append(None)
            continue
        split = _before(work, users[u][0], u, v)
        if split is None or not split[0] or any(graph.shapes[p] for p in split[0]):
            accs.append(None)
            continue
        accs.append(work.total(split[0]))
        rewrites.append((users[u][0], u, split[1]))
    if not rewrites:
        return
    zero = work.const(-0.0)
    acc = work.add("pack", tuple(zero if a is None else a for a in accs), (graph.shapes[v],))
    _, g, W = graph.args[v]
    work.set(v, "vecmat", (acc, g, W))
    for total, u, after in rewrites:
        if after:
            work.set(total, ops.sum_op(1 + len(after)), (u, *after))
        else:
            work.set(total, "index", (v,), graph.attrs[u])
            work.set(u, "const", (), (0.0,))
    work.hits["accumulated"] += 1


# -- emit: live nodes in a topological order -------------------------------------------------

def _emit(work: _EditableGraph) -> Graph:
    graph = work.graph
    args, first_renamed = work.args, work.n_original
    if work.forward:
        final = {i: work.resolve(i) for i in work.forward}
        args = [operands if final.keys().isdisjoint(operands) else tuple([final.get(a, a) for a in operands])
                for operands in args]
        first_renamed = next((i for i, (a, b) in enumerate(zip(args, work.args)) if a is not b), first_renamed)
    outputs = [work.resolve(o) for o in graph.outputs]
    live = [False] * len(work.ops)
    for i in graph.inputs:
        live[i] = True
    for i in graph.params:
        live[i] = True
    stack = []
    for o in outputs:
        if not live[o]:
            live[o] = True
        stack.append(o)
    while stack:
        for a in args[stack.pop()]:
            if not live[a]:
                live[a] = True
                stack.append(a)
    shared = min(first_renamed, work.first_set, _first_dead(live, work.n_original), _before_new(work, args, live))
    return _stable_order(work, args, live, outputs, first_repeated_const(graph, shared))


def _first_dead(live: list[bool], stop: int) -> int:
    try:
        return live.index(False, 0, stop)
    except ValueError:
        return stop


def _before_new(work: _EditableGraph, args: list, live: list[bool]) -> int:
    """How many original nodes surely go out before any new node can (a lower bound): a new
    node is placed once its operands are, so not before the last original operand it
    reaches (an operand counted as placed right away where a new one comes first)."""
    n_original = work.n_original
    bound: dict[int, int] = {}
    mixed = []  # new nodes with new operands: their bounds follow those operands', in any id order
    for j in range(n_original, len(live)):
        if live[j]:
            top = max(args[j], default=-1)
            bound[j] = top + 1 if top < n_original else 0
            if top >= n_original:
                mixed.append(j)
    for _ in range(len(mixed)):  # raise the bounds to a fixed point (a pass or two)
        changed = False
        for j in mixed:
            value = max([a + 1 if a < n_original else bound[a] for a in args[j]])
            if value != bound[j]:
                bound[j], changed = value, True
        if not changed:
            break
    return min(bound.values(), default=n_original)


def _stable_order(work: _EditableGraph, args: list, live: list[bool], outputs: list[int], shared: int) -> Graph:
    """The live nodes in a stable topological order: of the nodes whose operands are all
    placed, the next is the new node of lowest id if there is one (new nodes go as early as
    their operands allow), else the original node of lowest id.

    The first ``shared`` original nodes (unchanged, live, before any new node) go out as
    they are, shared with the graph.  The others are met by a pointer moving up their ids,
    placed when met if their operands are, else left waiting on the operands still missing
    and, once ready, taken from a heap before any original past the pointer (their ids are
    lower).  So only the few original nodes a rewrite delayed, and the new nodes, pay for a
    heap or for waiting: the order is Kahn's algorithm's with the same priorities (new
    first, then lowest id)."""
    graph, n_original = work.graph, work.n_original
    b = Builder()
    b.share(graph, shared)
    b_ops, b_args, b_attrs = b.ops, b.args, b.attrs
    work_ops, work_attrs = work.ops, work.attrs
    remap = list(range(shared)) + [-1] * (len(live) - shared)
    missing: dict[int, int] = {}  # node -> operand slots not placed yet
    waiters: dict[int, list[int]] = {}  # node -> the waiting nodes that use it (once per slot)
    ready_new: list[int] = []
    for j in range(n_original, len(live)):
        if live[j]:
            unplaced = [a for a in args[j] if remap[a] < 0]
            if not unplaced:
                ready_new.append(j)
                continue
            missing[j] = len(unplaced)
            for a in unplaced:
                waiters.setdefault(a, []).append(j)
    late: list[int] = []  # original nodes below the pointer that became ready
    push, pop = heapq.heappush, heapq.heappop
    pointer = shared
    while True:
        if ready_new:
            i = pop(ready_new)
        elif late:
            i = pop(late)
        else:
            i = -1
            while pointer < n_original:
                j = pointer
                pointer += 1
                if not live[j]:
                    continue
                operands = args[j]
                for a in operands:
                    if remap[a] < 0:
                        break
                else:
                    i = j
                    break
                unplaced = [a for a in operands if remap[a] < 0]
                missing[j] = len(unplaced)
                for a in unplaced:
                    waiters.setdefault(a, []).append(j)
            if i < 0:
                break
        op = work_ops[i]
        if op == "const":
            remap[i] = b.const(work_attrs[i][0])
        else:
            remap[i] = len(b_ops)
            b_ops.append(op)
            b_args.append(tuple([remap[a] for a in args[i]]))
            b_attrs.append(work_attrs[i])
        users = waiters.pop(i, None)
        if users is not None:
            for u in users:
                left = missing[u] - 1
                missing[u] = left
                if not left:
                    push(ready_new if u >= n_original else late, u)
    return b.finish([remap[i] for i in graph.inputs], [remap[i] for i in graph.params],
                    [remap[o] for o in outputs], like=graph)
