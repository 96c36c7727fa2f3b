"""What every pass returns, and the node-copying loop most passes share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from ..graph import Builder, Graph


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
            keep: list[bool] | None = None) -> Graph:
    """A new graph built node by node: ``visit(builder, i, remap)`` returns node ``i``'s new id.

    Leaves are copied as they are (inputs and params always, constants on demand);
    ``keep[i] is False`` drops op node ``i`` (its id maps to -1).
    """
    b = Builder()
    remap = [-1] * len(graph)
    ops, attrs = graph.ops, graph.attrs
    b_ops, b_args, b_attrs = b.ops, b.args, b.attrs
    for i, op in enumerate(ops):
        if op == "input" or op == "param":  # Builder.add inlined: leaves are most nodes of a model's graph
            remap[i] = len(b_ops)
            b_ops.append(op)
            b_args.append(())
            b_attrs.append(attrs[i])
        elif op == "const":
            if keep is None or keep[i]:
                remap[i] = b.const(graph.attrs[i][0])
        elif keep is None or keep[i]:
            remap[i] = visit(b, i, remap)
    return b.finish([remap[i] for i in graph.inputs], [remap[i] for i in graph.params],
                    [remap[o] for o in graph.outputs], like=graph)
