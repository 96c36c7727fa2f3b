"""Rules 3, 6 and 7 of :mod:`graphc.passes.reroll`: a pack of one elementwise op's lanes
becomes the op on packs (seeded at packs), outputs over every lane of a tensor one op on it,
and the same elementwise ops on every lane of a vector the ops on the vector (seeded at its
lanes)."""
from __future__ import annotations

from collections import Counter

from .. import ops
from .reroll_check import lanes_alike
from .reroll_work import EditableGraph


# -- rule 3: packs of one elementwise op -> the op on packs -----------------------------------

def _in_two_columns(work: EditableGraph, lanes: tuple, arity: int) -> bool:
    """Whether a node (not a constant) is read under two operand positions of these lanes,
    directly (``pack(u0*h0, h0*v0)``) or through the single-use elementwise lanes rule 3 goes
    on to vectorize (``sum(.., w*h1, w*h3) , sum(.., w*h3, w*h1)``: the neurons of a layer
    reading it in permuted orders, an outside hunt): the packs of the vectorized op would hand
    it its parts column by column, not lane by lane as reverse mode does (the dot's hazard:
    ``_one_side_each`` in :mod:`graphc.passes.reroll_sums`)."""
    column_of: dict[int, int] = {}
    for t in range(arity):
        stack = [work.args[lane][t] for lane in lanes]
        while stack:
            a = stack.pop()
            op = work.ops[a]
            if op == "const":
                continue
            if column_of.setdefault(a, t) != t:
                return True
            if work.uses[a] == 1 and op not in ops.LEAVES and ops.TABLE[op].elementwise:
                stack.extend(work.args[a])
    return False


def vectorize(work: EditableGraph, to_differentiate: bool) -> None:
    """Rule 3: from every pack, a pack of one elementwise op's single-use lanes becomes the
    op on packs of their operands (and so on from those packs); ``pack(index(v, k)...)``
    over all of ``v`` in order becomes ``v``, and ``index(pack(...), k)`` its operand."""
    pending = work.nodes_now(("pack",))
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
        work.kill(old)  # the lanes are dead now
        work.hits["vectorized"] += 1
    for i in work.nodes_now(("index",)):
        if i not in work.forward:
            v = work.resolve(work.args[i][0])
            if work.ops[v] == "pack":
                work.forward[i] = work.args[v][work.attrs[i][0]]
                work.hits["index(pack)"] += 1


def _indexed_vector(work: EditableGraph, lanes: tuple, shape: tuple) -> int | None:
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


def _shape_of(work: EditableGraph, i: int) -> tuple | None:
    """The shape of node ``i`` when it is cheap to know (packs, matvecs, original nodes, and
    elementwise ops on those: the shape of their first operand that is a tensor)."""
    while True:
        if i < work.n_original and work.ops[i] == work.graph.ops[i] and work.args[i] == work.graph.args[i]:
            return work.graph.shapes[i]
        op = work.ops[i]
        if op == "pack":
            return tuple(work.attrs[i][0])
        if op == "matvec":  # as many lanes as the accumulator's pack, or the matrix's rows
            if work.ops[work.args[i][0]] == "pack":
                return (len(work.args[work.args[i][0]]),)
            matrix = _shape_of(work, work.args[i][1])  # (a matrix is no matvec: one level down at most)
            return matrix[:1] if matrix else None
        if op in ops.LEAVES or not ops.TABLE[op].elementwise:
            return None
        tensors = [a for a in work.args[i] if work.ops[a] not in ops.LEAVES and work.ops[a] != "index"]
        if not tensors:
            return None
        i = tensors[0]  # (a scalar operand of an elementwise op on a tensor is a leaf or a lane)


# -- rule 6: outputs over a tensor's lanes -> one elementwise op ------------------------------

def vectorize_outputs(work: EditableGraph) -> None:
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



# -- rule 7: the same elementwise ops on every lane of a vector -> the ops on the vector ------

def vectorize_lanes(work: EditableGraph) -> None:
    """Rule 7: from a vector ``v`` whose every lane ``k`` is read by one ``index(v, k)``, the
    ops that act alike on every lane -- ``f(..., lane_k, ...)`` with the same op and
    attributes, the lane at the same operand positions, the other operands the same
    constant in every lane, a leaf of each lane's own read nowhere else (a bias), or the
    lanes of another such group -- become ``f`` on vectors, group after group, and each
    lane's last node ``index`` of its group's vector.  Where rule 3 starts from the next
    layer's packs, this starts from a layer's output: an activation written with several
    ops (``e = (2*n).exp(); (e - 1) / (e + 1)``, ``1 / (1 + (-n).exp())``, ``n.relu() * 0.5``)
    left every lane its own chain of scalar ops, the next layer no run of simple products,
    and the program 4-16x slower a step (an outside hunt).

    Exact, values and gradients: each lane computes what it did, op by op, and reverse mode
    gives a vector node's parts in the order it gave each lane's -- a lane's node is read
    only within its group's ops, or (its last) only outside them, never both (else the
    vector is left as it was), and each lane's leaves are read by that lane alone."""
    indexes = [i for i in work.nodes_now(("index",)) if i not in work.forward]
    as_output = Counter(work.graph.outputs)  # (a joint graph's gradients: index nodes no node reads)
    read = {work.args[i][0] for i in indexes if work.uses[i] > as_output.get(i, 0)}
    by_vector: dict[int, dict[int, list[int]]] = {}
    for i in indexes:
        if work.args[i][0] in read:
            by_vector.setdefault(work.resolve(work.args[i][0]), {}).setdefault(work.attrs[i][0], []).append(i)
    readers = None
    for v, lanes in by_vector.items():
        shape = _shape_of(work, v)
        if not shape or len(shape) != 1 or sorted(lanes) != list(range(shape[0])) or shape[0] < 2 \
                or any(len(found) != 1 for found in lanes.values()):
            continue
        group = tuple(lanes[k][0] for k in range(shape[0]))
        if any(work.ops[n] != "index" or work.resolve(work.args[n][0]) != v for n in group):
            continue  # an earlier vector's ops took these lanes
        if not _may_grow(work, group):
            continue
        if readers is None:
            readers = _readers(work)
        if _grow_lanes(work, readers, v, group):
            readers = None


def _may_grow(work: EditableGraph, lanes: tuple) -> bool:
    """A cheap look before :func:`_readers` (a pass over the whole graph): whether lanes 0
    and 1, where both are the graph's own nodes, have readers in the graph as it came that
    do alike to them, as the quick check asks (:func:`.reroll_check.lanes_alike`; the
    graph's readers are found from its arrays; this pass's new readers of a lane are packs
    and sums, which rule 7 does not take)."""
    if max(lanes[0], lanes[1]) >= work.n_original:
        return True
    users = work.graph.arrays.users  # (the EditableGraph has the ops, args, attrs and uses it reads)
    return any(lanes_alike(work, work, u0, lanes[0], u1, lanes[1]) for u0 in users(lanes[0]) for u1 in users(lanes[1]))


def _readers(work: EditableGraph) -> dict[int, list[int]]:
    """Each node's readers now, in id order (the rules before this one edited the graph),
    an output counted as read by ``-1``."""
    found: dict[int, list[int]] = {}
    for u, args in enumerate(work.args):
        if work.ops[u] != "const":
            for a in dict.fromkeys(args):
                found.setdefault(a, []).append(u)
    for o in work.graph.outputs:
        found.setdefault(o, []).append(-1)
    return found


def _grow_lanes(work: EditableGraph, readers: dict, v: int, lanes: tuple) -> bool:
    """Rule 7 from the lanes of ``v``: whether it vectorized any op.  ``v`` read whole too
    (or output) would get its parts from the vector ops and that reader in another order."""
    group_of = {n: lanes for n in lanes}
    if any(u not in group_of for u in readers.get(v, ())):
        return False
    columns_of: dict[tuple, tuple] = {}  # each group of lane readers -> its operands (see _columns)
    pending = [lanes]
    while pending:
        group = pending.pop()
        for first in readers.get(group[0], ()):
            if first in group_of or first < 0:
                continue
            found = _alike_readers(work, readers, group, first)
            if found is not None and _products_of_one_sum(work, readers, found):
                continue  # a neuron's products over the lanes: rule 1's dot, next round
            columns = None if found is None else _columns(work, found, group_of)
            if columns is None:
                continue
            columns_of[found] = columns
            group_of.update(dict.fromkeys(found, found))
            pending.append(found)
    if not columns_of:
        return False
    read_outside = {}
    for n in group_of:
        users = readers.get(n, ())
        inside = any(u in group_of for u in users)
        read_outside[n] = any(u not in group_of for u in users)
        if inside and read_outside[n]:  # read in and out of the groups: its parts' order would change
            return False
    vector = {lanes: v}
    for group, columns in columns_of.items():  # in the order found: operands first
        operands = tuple(vector[c] if type(c) is tuple and c in vector else
                         work.add("pack", c[1], ((len(c[1]),),)) if type(c) is tuple else c for c in columns)
        vector[group] = work.add(work.ops[group[0]], operands, work.attrs[group[0]])
    for group in vector:
        for k, n in enumerate(group):
            if not read_outside[n]:
                work.kill([n])
            elif group is not lanes:
                work.set(n, "index", (vector[group],), (k,))
    work.hits["lanes"] += len(columns_of)
    return True


def _products_of_one_sum(work: EditableGraph, readers: dict, found: tuple) -> bool:
    """Whether ``found`` are products all read by one sum alone (a neuron over the lanes)."""
    if work.ops[found[0]] != "mul":
        return False
    sums = {u for n in found for u in readers.get(n, ())}
    return len(sums) == 1 and min(sums) >= 0 and work.ops[min(sums)] in ops.SUMS


def _alike_readers(work: EditableGraph, readers: dict, group: tuple, first: int) -> tuple | None:
    """The reader of each lane of ``group`` that does what ``first`` (lane 0's) does to it:
    one elementwise op, the same attributes, the lane at the same operand positions."""
    op, attr, args = work.ops[first], work.attrs[first], work.args[first]
    if op in ops.LEAVES or not ops.TABLE[op].elementwise:
        return None
    at = tuple(t for t, a in enumerate(args) if a == group[0])
    found = [first]
    for lane in group[1:]:
        alike = [u for u in readers.get(lane, ()) if u >= 0 and work.ops[u] == op and work.attrs[u] == attr
                 and len(work.args[u]) == len(args) and tuple(t for t, a in enumerate(work.args[u]) if a == lane) == at]
        if len(alike) != 1:
            return None
        found.append(alike[0])
    return tuple(found) if len(set(found)) == len(found) else None


def _columns(work: EditableGraph, found: tuple, group_of: dict) -> tuple | None:
    """The operands of the op ``found`` does lane by lane: a group (its vector), a constant
    shared by every lane, or ``("pack", leaves)`` of leaves each read by its lane alone;
    None otherwise (a group not found yet is met again from its own lanes)."""
    columns = []
    for t in range(len(work.args[found[0]])):
        column = tuple(work.args[u][t] for u in found)
        operand = column if group_of.get(column[0]) == column else _column(work, column)
        if operand is None:
            return None
        columns.append(operand)
    return tuple(columns)


def _column(work: EditableGraph, column: tuple) -> int | tuple | None:
    """A column of operands that is no group: one constant in every lane, or ``("pack",
    leaves)`` of leaves each read by its lane alone; else None."""
    if work.ops[column[0]] == "const" and all(c == column[0] for c in column):
        return column[0]
    if all(work.ops[c] in ops.LEAVES and work.ops[c] != "const" and work.uses[c] == 1 for c in column) \
            and len(set(column)) == len(column):
        return ("pack", column)
    return None
