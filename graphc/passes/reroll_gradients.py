"""Rules 4 and 5 of :mod:`graphc.passes.reroll`, for gradient graphs: sums of ``unit`` s become
one ``pack``, and gradient parts added before a layer's the accumulator of its ``vecmat``."""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import ops
from ..graph import Graph
from ..graph_arrays import Users
from ..ops import LEAVES
from .reroll_work import EditableGraph, users_of


# -- rule 4: sums of units -> pack ------------------------------------------------------------

def gather_units(work: EditableGraph) -> None:
    """Rule 4: a sum of ``unit`` s of one vector (reverse mode's cotangents of its lanes)
    becomes one ``pack`` of each lane's parts added in order."""
    for i in work.nodes_now(ops.SUMS):
        if i >= work.n_original or work.ops[i] not in ops.SUMS:
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
        work.kill(parts)
        work.set(i, "pack", values, (tuple(shape),))
        work.hits["units"] += 1


# -- rule 5: gradient parts before a layer's -> vecmat's accumulator ---------------------------

def accumulate_vecmats(work: EditableGraph, shapes: list) -> None:
    """Rule 5: gradient parts a sum adds before a layer's ``vecmat`` (or before its lanes)
    become that vecmat's accumulator, so its rows are added after them, as reverse mode does."""
    graph = work.graph
    vecmats = [v for v in np.flatnonzero(graph.arrays.of(("vecmat",))).tolist() if _from_nothing(graph, v)]
    if not vecmats:
        return
    users = users_of(graph)  # the users of vecmats and of their index nodes: rule 5 does not change them
    forward: list[list[bool]] = []  # the forward program's nodes (the loss's ancestors), found once if asked
    through_units: dict[int, list[tuple[int, list[int]]]] = {}  # a tensor's gradient sum -> (vecmat, its units)
    for v in vecmats:
        readers = _readers(work, users, v)
        found = _units_total(work, users, readers)
        if found is not None:
            through_units.setdefault(found[0], []).append((v, found[1]))
            continue
        into_sum = work.uses[v] == 1 and readers and work.ops[readers[0]] in ops.SUMS
        if not (into_sum or all(graph.ops[u] == "index" for u in readers)):
            continue
        if not forward:
            forward.append(graph.live([graph.outputs[0]]))
        own = _own_gradients(graph, v, users, forward[0])
        if own is None:
            continue
        if into_sum and all(own):
            _accumulate_vector(work, shapes, v, readers[0])
        elif not into_sum:
            _accumulate_lanes(work, v, users, own)
    for total, found in through_units.items():
        if total not in work.edited:
            _accumulate_runs(work, shapes, total, found)


def _readers(work: EditableGraph, users: Users, node: int) -> list[int]:
    """The nodes reading ``node`` now: ``users`` less the dead ones the edit has forgotten
    (a unit of a lane no gradient is asked of: its sum was missed, 4 ulps off, an outside hunt)."""
    return [u for u in users[node] if node in work.args[u]]


def _from_nothing(graph: Graph, v: int) -> bool:
    """Whether vecmat ``v`` starts from ``-0.0`` (as reverse mode makes it)."""
    acc = graph.args[v][0]
    return graph.ops[acc] == "const" and graph.attrs[acc][0] == 0.0 and math.copysign(1.0, graph.attrs[acc][0]) < 0


def _own_gradients(graph: Graph, v: int, users: Users, forward: list[bool]) -> list[bool] | None:
    """For each lane of vecmat ``v``: whether a sum it is added into is its layers' input's
    own gradient, which reverse mode adds the rows' parts to one by one after its other
    parts -- the input is read by something else of the ``forward`` program too (its gradient
    is a sum of its own), or it is a ``pack`` whose lane is a leaf or read elsewhere too (a
    pack's lanes may all be False); None where the input is neither a pack nor read
    elsewhere.  Else an op passes the rows' total on as one part (a layer over ``x + p``:
    ``p``'s gradient is ``l2 + (r2 + r1)``, which an accumulator would make ``(l2 + r2) +
    r1``, 1 ulp off: outside hunts, a whole input and a pack's lane)."""
    def read_elsewhere(node: int, by: Iterable[int]) -> bool:
        return any(forward[u] and u not in by for u in users[node])
    layers = _layers_of(graph, graph.args[v][2])
    own = [True] * graph.shapes[v][0]
    for m in layers:
        x = graph.args[m][2]
        if read_elsewhere(x, layers):
            continue
        if graph.ops[x] != "pack":
            return None
        for lane, a in enumerate(graph.args[x]):
            own[lane] = own[lane] and (graph.ops[a] in LEAVES or read_elsewhere(a, (x,)))
    return own


def _layers_of(graph: Graph, W: int) -> list[int]:
    """The forward matvecs whose gradient for their input a vecmat over ``W`` is: those over
    ``W`` itself, else over a pack of the same rows (reverse mode reaches the rows in its own
    order, so its vecmat may read them permuted: a review)."""
    matvecs = np.flatnonzero(graph.arrays.of(("matvec",))).tolist()
    found = [m for m in matvecs if graph.args[m][1] == W]
    if found or graph.ops[W] != "pack":
        return found
    rows = _rows(graph, W)
    return [m for m in matvecs if graph.ops[graph.args[m][1]] == "pack" and _rows(graph, graph.args[m][1]) == rows]


def _rows(graph: Graph, pack: int) -> list[tuple]:
    """The rows of a matrix ``pack``, sorted, each lane read through ``index`` of a pack
    resolved: the same for two packs of the same rows in any order."""
    ops_, args, attrs = graph.ops, graph.args, graph.attrs
    lanes = [args[args[a][0]][attrs[a][0]] if ops_[a] == "index" and ops_[args[a][0]] == "pack" else a
             for a in args[pack]]
    n = attrs[pack][0][1]
    return sorted(tuple(lanes[k:k + n]) for k in range(0, len(lanes), n))


def _before(work: EditableGraph, total: int, part: int, v: int) -> tuple[list[int], list[int]] | None:
    """The operands of sum ``total`` before and after its operand ``part``, if ``part`` is
    there once and everything before it is an original node not computed from ``v`` (a
    unit of a lane read whole too, made after ``v`` when reverse mode reached that lane,
    may come first: the subsets fuzz, a neuron reading one lane after two reading a layer)."""
    operands = work.args[total]
    if operands.count(part) != 1:
        return None
    k = operands.index(part)
    before, after = list(operands[:k]), list(operands[k + 1:])
    if any(p >= work.n_original for p in before) or _depends_on(work, before, v):
        return None
    return before, after


def _accumulate_vector(work: EditableGraph, shapes: list, v: int, total: int) -> None:
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


def _accumulate_lanes(work: EditableGraph, v: int, users: Users, own: list[bool]) -> None:
    graph = work.graph
    accs, rewrites = [], []
    lanes = _readers(work, users, v)
    by_lane = {graph.attrs[u][0]: u for u in lanes}
    if len(by_lane) != len(lanes):
        return
    for lane in range(graph.shapes[v][0]):
        u = by_lane.get(lane)
        total = _readers(work, users, u) if u is not None and own[lane] and work.uses[u] == 1 else []
        if len(total) != 1 or work.ops[total[0]] not in ops.SUMS:
            accs.append(None)
            continue
        split = _before(work, total[0], u, v)
        if split is None or not split[0] or any(graph.shapes[p] for p in split[0]):
            accs.append(None)
            continue
        accs.append(work.total(split[0]))
        rewrites.append((total[0], u, split[1]))
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


def _units_total(work: EditableGraph, users: Users, readers: list[int]) -> tuple[int, list[int]] | None:
    """The sum a vecmat's lanes are added into one by one, each as a ``unit`` of a tensor
    (the lanes of a layer's input are lanes of a tensor something reads whole too, whose
    gradient takes every part of every lane apart: ``graphc.autodiff._read_whole``), and
    those units -- if every reader is an ``index`` of its own lane read by one such unit,
    all in one sum; else None."""
    if not readers or any(work.ops[u] != "index" or work.uses[u] != 1 for u in readers):
        return None
    if len({work.attrs[u][0] for u in readers}) != len(readers):
        return None
    units, totals = [], set()
    for u in readers:
        unit = _readers(work, users, u)
        if len(unit) != 1 or work.ops[unit[0]] != "unit" or work.uses[unit[0]] != 1:
            return None
        total = _readers(work, users, unit[0])
        if len(total) != 1 or work.ops[total[0]] not in ops.SUMS:
            return None
        units.append(unit[0])
        totals.add(total[0])
    return (totals.pop(), units) if len(totals) == 1 else None


def _accumulate_runs(work: EditableGraph, shapes: list, total: int, vecmats: list[tuple[int, list[int]]]) -> None:
    """Rule 5 for vecmats whose lanes are units of a tensor's gradient sum ``total`` (each
    ``(vecmat, its units)``): each vecmat's units are a run of the sum's operands, and what
    comes before a run -- parts of the whole tensor (a neuron reading every lane), units of
    other lanes or of runs before -- is totalled, and the lanes the vecmat covers become its
    accumulator, so that its rows are added to those lanes after them one by one, as reverse
    mode adds them to each lane; the other lanes keep the total as it was.  The sum becomes
    the lanes so far (a ``pack``) plus what came after the last run accumulated.  (The
    subsets fuzz: two neighbours reading lanes 0 and 1 of a layer that a later neuron reads
    whole were a layer of their own, whose rows' total was added after that neuron's part,
    1 ulp off.)"""
    operands = work.args[total]
    shape = shapes[total]
    place = {p: k for k, p in enumerate(operands)}
    runs = sorted(run for run in (_run(place, v, units) for v, units in vecmats) if run is not None)
    lanes: tuple | None = None  # the total so far, lane by lane, once a run has been accumulated
    done = 0  # operands[:done] are in lanes
    for start, end, v in runs:
        before = operands[done:start]
        if any(shapes[p] != shape for p in before) or _depends_on(work, before, v) or (
                lanes is None and not _reaches(work, before, operands[start:end])):
            continue
        so_far = lanes if not before else work.total(list(before) if lanes is None else
                                                     [work.add("pack", lanes, (shape,)), *before])
        lanes = _accumulate_run(work, v, operands[start:end], so_far, ops.size_of(shape))
        done = end
    if lanes is None:
        return
    after = operands[done:]
    if after:
        work.set(total, ops.sum_op(1 + len(after)), (work.add("pack", lanes, (shape,)), *after))
    else:
        work.set(total, "pack", lanes, (shape,))
    work.hits["accumulated"] += 1


def _run(place: dict[int, int], v: int, units: list[int]) -> tuple[int, int, int] | None:
    """``(start, end, v)``: where in the sum's operands (each one's ``place`` there) vecmat
    ``v`` 's ``units`` are (each once: used once), if next to each other -- reverse mode
    hands a layer's parts on at one step, so others come between them only where they do
    between its rows, which rule 2 rolls into no layer."""
    places = sorted(place[u] for u in units)
    if places[-1] - places[0] != len(places) - 1:
        return None
    return places[0], places[-1] + 1, v


def _depends_on(work: EditableGraph, nodes: tuple, v: int) -> bool:
    """Whether one of ``nodes`` is computed from node ``v``: a sweep down their operands
    to ``v`` 's id (ids are topological; a unit of another vecmat's lane, made by reverse
    mode after ``v``, may come before ``v`` 's run in the sum)."""
    seen: set[int] = set()
    stack = [n for n in nodes if n >= v]
    while stack:
        n = stack.pop()
        if n == v:
            return True
        if n not in seen:
            seen.add(n)
            stack.extend(a for a in work.args[n] if a >= v)
    return False


def _reaches(work: EditableGraph, before: tuple, units: tuple) -> bool:
    """Whether a part of ``before`` adds to a lane the run of ``units`` covers: a whole tensor,
    or a unit of one of those lanes (a unit of another lane adds 0.0 there, which changes
    nothing but -0.0: no accumulator is made for that)."""
    covered = {work.attrs[u][0] for u in units}
    return any(work.ops[p] != "unit" or work.attrs[p][0] in covered for p in before)


def _accumulate_run(work: EditableGraph, v: int, units: tuple, so_far: int | tuple, size: int) -> tuple:
    """Vecmat ``v`` starts from the lanes of ``so_far`` (a tensor, or its lanes) its ``units``
    are added to; the lanes of the total after them: ``v`` 's lanes there, ``so_far`` 's in
    the others."""
    def lane(k: int) -> int:
        return so_far[k] if isinstance(so_far, tuple) else work.add("index", (so_far,), (k,))
    into = {work.attrs[u][0]: work.args[u][0] for u in units}  # lane of the tensor -> v's index node
    of_v = {work.attrs[i][0]: k for k, i in into.items()}  # lane of v -> lane of the tensor
    zero = work.const(-0.0)
    n = work.graph.shapes[v][0]
    acc = work.add("pack", tuple(lane(of_v[j]) if j in of_v else zero for j in range(n)), ((n,),))
    _, g, W = work.args[v]
    work.set(v, "vecmat", (acc, g, W))
    work.kill(list(units))
    return tuple(into[k] if k in into else lane(k) for k in range(size))
