"""What every pass returns, and the node-copying loop most passes share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Container, NamedTuple

import numpy as np

from ..graph import Builder, Graph, first_repeated_const


@dataclass(frozen=True)
class PassStats:
    """What one run of one pass did."""

    name: str
    before: int
    after: int
    hits: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether the pass did anything (the driver stops when a round changes nothing)."""
        return self.before != self.after or any(self.hits.values())

    def __str__(self) -> str:
        hits = ", ".join(f"{k} x{v}" for k, v in self.hits.items() if v) or "-"
        return f"{self.name:<9} {self.before:>9,} -> {self.after:>9,} nodes   {hits}"


class PassResult(NamedTuple):
    graph: Graph
    stats: PassStats


def unchanged(name: str, graph: Graph) -> PassResult:
    return PassResult(graph, PassStats(name, len(graph), len(graph)))


def rebuild(graph: Graph, visit: Callable[[Builder, int, list[int]], int],
            keep: list[bool] | None = None, start: int = 0, copied: Container[str] = (),
            visit_only: Container[int] | None = None) -> Graph:
    """A new graph built node by node: ``visit(builder, i, remap)`` returns node ``i``'s new id.

    Leaves are copied as they are (inputs and params always, constants on demand);
    ``keep[i] is False`` drops op node ``i`` (its id maps to -1).  Three shortcuts, each the
    caller's word about what ``visit`` would do, so that a pass pays for what it changes
    and not for the rest of a big graph:

    * nodes below ``start`` it would copy as they are (and ``keep`` keeps them): they are
      shared with ``graph`` instead of visited (up to the first repeated constant, which
      the builder merges: a caller keeping facts about the nodes below ``start`` asks
      :func:`~graphc.graph.first_repeated_const` where the sharing ends);
    * nodes whose op is in ``copied`` it would copy with their operands renamed: done here,
      without a call per node;
    * with ``visit_only``: it would copy every other node likewise, so long as its operands
      are copies too -- a node whose operand is one ``visit`` returned is visited as well
      (a rewrite can make its users match).
    """
    b = Builder()
    start = first_repeated_const(graph, start)
    b.share(graph, start)
    remap = list(range(start)) + [-1] * (len(graph) - start)
    ops, args, attrs = graph.ops, graph.args, graph.attrs
    b_ops, b_args, b_attrs = b.ops, b.args, b.attrs
    made: set[int] = set()  # the nodes visit returned (with visit_only)
    for i in range(start, len(ops)):
        op = ops[i]
        if op == "input" or op == "param":  # Builder.add inlined: leaves are most nodes of a model's graph
            remap[i] = len(b_ops)
            b_ops.append(op)
            b_args.append(())
            b_attrs.append(attrs[i])
        elif op == "const":
            if keep is None or keep[i]:
                remap[i] = b.const(attrs[i][0])
        elif keep is not None and not keep[i]:
            continue
        elif op in copied or visit_only is not None and i not in visit_only and made.isdisjoint(
                [remap[a] for a in args[i]]):
            remap[i] = len(b_ops)
            b_ops.append(op)
            b_args.append(tuple([remap[a] for a in args[i]]))
            b_attrs.append(attrs[i])
        else:
            remap[i] = visit(b, i, remap)
            if visit_only is not None:
                made.add(remap[i])
    return b.finish([remap[i] for i in graph.inputs], [remap[i] for i in graph.params],
                    [remap[o] for o in graph.outputs], like=graph)


def renumbered(graph: Graph, numbers: np.ndarray, start: int) -> Graph:
    """The graph with node ``i`` replaced by node ``numbers[i]`` (-1: by nothing, for a node
    nothing reads): the nodes with ``numbers[i] == i`` in order, operands renamed, in one
    sweep -- what :func:`rebuild` gives with a visit returning those nodes.  The nodes below
    ``start`` (all kept, no constant repeated among them) are shared as they are."""
    arrays = graph.arrays
    kept = numbers == np.arange(len(graph))
    remap = (np.cumsum(kept) - 1)[numbers]
    b = Builder()
    b.share(graph, start)
    tail = (np.flatnonzero(kept[start:]) + start).tolist()
    node_ops, node_attrs = graph.ops, graph.attrs
    first_slot = int(arrays.indptr[start])  # the tail's operands, renamed
    flat = remap[arrays.indices[first_slot:]].tolist()
    ends = (arrays.indptr[start:] - first_slot).tolist()
    b.ops += [node_ops[i] for i in tail]
    b.args += [tuple(flat[ends[i - start]:ends[i - start + 1]]) for i in tail]
    b.attrs += [(float(node_attrs[i][0]),) if node_ops[i] == "const" else node_attrs[i] for i in tail]
    remap = remap.tolist()
    return b.finish([remap[i] for i in graph.inputs], [remap[i] for i in graph.params],
                    [remap[o] for o in graph.outputs], like=graph)
