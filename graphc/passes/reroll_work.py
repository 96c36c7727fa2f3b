"""The graph the re-rolling rules (:mod:`graphc.passes.reroll`) edit, and how it is written
out: a :class:`~graphc.graph.Builder` that keeps use counts and replaces nodes in place, then
the live nodes in a stable topological order."""
from __future__ import annotations

import heapq

from ..graph import Builder, Graph, first_repeated_const
from ..graph_arrays import Users


class EditableGraph(Builder):
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


def users_of(graph: Graph) -> Users:
    """``users[i]``: the nodes of ``graph`` using node ``i``, in id order (asked of a few nodes)."""
    return Users(graph.arrays)


def emit(work: EditableGraph) -> Graph:
    """The edited graph as a new Graph: its live nodes (what the outputs reach, and every
    input and param), forwarded ids resolved, in a stable topological order."""
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


def _stable_order(work: EditableGraph, args: list, live: list[bool], outputs: list[int], shared: int) -> Graph:
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
