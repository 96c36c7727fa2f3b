"""Rules 3 and 6 of :mod:`graphc.passes.reroll`: a pack of one elementwise op's lanes becomes
the op on packs (seeded at packs), and outputs over every lane of a tensor one op on it."""
from __future__ import annotations

from collections import Counter

from .. import ops
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

