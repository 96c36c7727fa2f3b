"""The graph the re-rolling rules (:mod:`graphc.passes.reroll`) edit, and how it is written
out: a :class:`~graphc.graph.Builder` that keeps use counts and replaces nodes in place, then
the live nodes in a stable topological order."""
from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Sequence
from itertools import chain, compress

import numpy as np

from ..graph import Builder, Graph, first_repeated_const
from ..graph_arrays import Users


class EditableGraph(Builder):
    """The graph being re-rolled: a Builder holding its nodes (same ids) that also keeps use
    counts, replaces nodes in place (``set``) and maps replaced ids to others (``forward``)."""

    __slots__ = ("graph", "n_original", "forward", "uses", "hits", "first_set", "edited")

    def __init__(self, graph: Graph) -> None:
        super().__init__(graph)
        self.graph = graph
        self.n_original = len(graph)
        self.forward: dict[int, int] = {}
        self.uses = graph.use_counts()
        self._forget_dead()
        self.hits = {"dot": 0, "matvec": 0, "rows": 0, "vectorized": 0, "pack(index)": 0,
                     "index(pack)": 0, "units": 0, "accumulated": 0, "outputs": 0, "lanes": 0}
        self.first_set = self.n_original  # the lowest original node replaced in place
        self.edited: set[int] = set()  # the original nodes set to another node (killed ones apart)

    def add(self, op: str, args: tuple = (), attr: tuple = ()) -> int:
        """Append a node, counting its uses of its operands."""
        uses = self.uses
        uses.append(0)
        for a in args:
            uses[a] += 1
        return super().add(op, args, attr)

    def set(self, i: int, op: str, args: tuple, attr: tuple = ()) -> None:
        """Replace node ``i`` in place (its users keep referring to it)."""
        for a in self.args[i]:
            self.uses[a] -= 1
        for a in args:
            self.uses[a] += 1
        self.ops[i], self.args[i], self.attrs[i] = op, args, attr
        if i < self.n_original:
            self.edited.add(i)
            if i < self.first_set:
                self.first_set = i

    def kill(self, nodes: Sequence[int]) -> None:
        """``set`` each of ``nodes`` to the constant ``0.0``: absorbed into a re-rolled node,
        dead now (one call for the thousands of products a layer's rows had)."""
        node_ops, node_args, node_attrs, uses = self.ops, self.args, self.attrs, self.uses
        zero = (0.0,)
        for i in nodes:
            for a in node_args[i]:
                uses[a] -= 1
            node_ops[i], node_args[i], node_attrs[i] = "const", (), zero
        self.first_set = min(self.first_set, min(nodes, default=self.first_set))

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

    def nodes_now(self, names: tuple[str, ...]) -> list[int]:
        """The nodes whose op is one of ``names`` (not ``const``) now, in id order: the graph's
        (found in its arrays) that kept their op, the replaced ones and the new ones that have
        it -- a node made a constant is neither."""
        found = set(np.flatnonzero(self.graph.arrays.of(names)).tolist())
        found.update(self.edited)
        found.update(range(self.n_original, len(self.ops)))
        node_ops = self.ops
        return [i for i in sorted(found) if node_ops[i] in names]

    def resolve(self, i: int) -> int:
        while i in self.forward:
            i = self.forward[i]
        return i


def users_of(graph: Graph) -> Users:
    """``users[i]``: the nodes of ``graph`` using node ``i``, in id order (asked of a few nodes)."""
    return Users(graph.arrays)


def emit(work: EditableGraph) -> Graph:
    """The edited graph as a new Graph: its live nodes (what the outputs reach, and every
    input and param), forwarded ids resolved, in a stable topological order."""
    graph = work.graph
    args, renamed = _renamed_args(work)
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
    first_renamed = min(renamed, default=work.n_original)
    shared = min(first_renamed, work.first_set, _first_dead(live, work.n_original), _before_new(work, args, live))
    shared = first_repeated_const(graph, shared)
    irregular = _irregular_nodes(work, live, shared, renamed)
    return _stable_order(work, args, live, outputs, shared, irregular)


def _renamed_args(work: EditableGraph) -> tuple[list, list[int]]:
    """Every node's operands with forwarded ids resolved, and the nodes that had one (whose
    operand tuples are new): the original nodes not replaced are found in the graph's
    arrays, the few others asked one by one."""
    if not work.forward:
        return work.args, []
    final = {i: work.resolve(i) for i in work.forward}
    arrays = work.graph.arrays
    slots = np.flatnonzero(np.isin(arrays.indices, np.fromiter(final, np.int64, len(final))))
    readers = np.searchsorted(arrays.indptr, slots, side="right") - 1  # the node of each operand slot
    candidates = set(readers.tolist())
    candidates.update(work.edited)
    candidates.update(range(work.n_original, len(work.args)))
    args = list(work.args)
    renamed = []
    for i in sorted(candidates):
        operands = args[i]
        if not final.keys().isdisjoint(operands):
            args[i] = tuple([final.get(a, a) for a in operands])
            renamed.append(i)
    return args, renamed


def _first_dead(live: list[bool], stop: int) -> int:
    try:
        return live.index(False, 0, stop)
    except ValueError:
        return stop


def _before_new(work: EditableGraph, args: list, live: list[bool]) -> int:
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


def _irregular_nodes(work: EditableGraph, live: list[bool], shared: int, renamed: list[int]) -> set[int]:
    """The live original nodes from ``shared`` on that were replaced or renamed, or depend on
    one that was: only these may have to wait for a new node.  Any other ("regular") live
    node is ready when the pointer of :func:`_stable_order` meets it, its operands being
    earlier regular nodes that were, so the regular nodes are placed in id order."""
    n_original = work.n_original
    seeds = [i for i in work.edited.union(renamed) if shared <= i < n_original and live[i]]
    arrays = work.graph.arrays
    irregular = set(seeds)
    reads = arrays.reads
    stack = [i for i, read in zip(seeds, reads[seeds].tolist()) if read] if seeds else []
    while stack:  # the users in the graph of an irregular node are irregular too
        for u in arrays.users(stack.pop()):
            if u not in irregular and live[u]:
                irregular.add(u)
                if reads[u]:
                    stack.append(u)
    return irregular


def _awaited(operands: tuple, remap: list[int], irregular: set[int], n_original: int) -> list[int]:
    """The operands a new node waits for, one entry per slot: those not placed yet that are
    new or irregular, and the last of the regular ones (placed in id order, so the others
    are placed before it)."""
    last = max(operands, default=-1)
    if last < n_original and irregular.isdisjoint(operands):  # regular operands alone (a layer's weights)
        return [last] * operands.count(last) if last >= 0 and remap[last] < 0 else []
    unplaced = [a for a in operands if remap[a] < 0]
    awaited = [a for a in unplaced if a >= n_original or a in irregular]
    if len(awaited) == len(unplaced):
        return unplaced
    last = max(set(unplaced).difference(awaited))
    return awaited + [last] * unplaced.count(last)


def _one_by_one(args: list, irregular: set[int], waiters: dict, n_original: int) -> list[int]:
    """The original nodes the pointer meets one by one, in id order, then ``n_original``: the
    irregular ones (which may wait), and those a waiting node waits for -- a new node now, an
    irregular one later (an operand of it: only one past it, but all are cheaper to find)."""
    ordered = sorted(irregular.union(waiters, chain.from_iterable(map(args.__getitem__, irregular))))
    del ordered[bisect_left(ordered, n_original):]
    ordered.append(n_original)
    return ordered


def _place_run(b: Builder, remap: list[int], work: EditableGraph, args: list, nodes: list[int]) -> None:
    """Place ``nodes``, each ready and read by no waiting node, in order."""
    work_ops, work_attrs = work.ops, work.attrs
    run_ops = [work_ops[j] for j in nodes]
    if "const" in run_ops:  # a constant goes through Builder.const, which may merge it
        for j in nodes:
            if work_ops[j] == "const":
                remap[j] = b.const(work_attrs[j][0])
            else:
                remap[j] = b.add(work_ops[j], tuple([remap[a] for a in args[j]]), work_attrs[j])
        return
    for k, j in enumerate(nodes, len(b.ops)):
        remap[j] = k
    b.ops += run_ops
    b.args += [tuple([remap[a] for a in args[j]]) if args[j] else () for j in nodes]
    b.attrs += [work_attrs[j] for j in nodes]


def _stable_order(work: EditableGraph, args: list, live: list[bool], outputs: list[int], shared: int,
                  irregular: set[int]) -> Graph:
    """The live nodes in a stable topological order: of the nodes whose operands are all
    placed, the next is the new node of lowest id if there is one (new nodes go as early as
    their operands allow), else the original node of lowest id.

    The first ``shared`` original nodes (unchanged, live, before any new node) go out as
    they are, shared with the graph.  The others are met by a pointer moving up their ids,
    placed when met if their operands are, else left waiting on the operands still missing
    and, once ready, taken from a heap before any original past the pointer (their ids are
    lower).  So only the few original nodes a rewrite delayed, and the new nodes, pay for a
    heap or for waiting: the order is Kahn's algorithm's with the same priorities (new
    first, then lowest id).  The pointer meets one by one only the ``irregular`` nodes
    (:func:`_irregular_nodes`) and those a waiting node waits for; it places the live nodes
    between two of them as one run."""
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
            unplaced = _awaited(args[j], remap, irregular, n_original)
            if not unplaced:
                ready_new.append(j)
                continue
            missing[j] = len(unplaced)
            for a in unplaced:
                waiters.setdefault(a, []).append(j)
    special = _one_by_one(args, irregular, waiters, n_original)
    late: list[int] = []  # original nodes below the pointer that became ready
    push, pop = heapq.heappush, heapq.heappop
    pointer = shared
    next_special = 0
    while True:
        if ready_new:
            i = pop(ready_new)
        elif late:
            i = pop(late)
        else:
            i = -1
            while pointer < n_original:
                j = pointer
                if j < special[next_special]:
                    stop = special[next_special]
                    _place_run(b, remap, work, args, list(compress(range(j, stop), live[j:stop])))
                    pointer = stop
                    continue
                next_special += 1
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
