"""NumPy backend: one per-sample graph evaluated for N samples at once.

Every scalar node becomes one NumPy operation over a length-N array (a *batched* node:
it depends on an input) or stays a Python float (an *unbatched* node: params, constants,
the seed and what is computed from them alone, spelled as in the Python backend).  The
generated function is flat, one SSA line per node::

    def loss(inputs, params, seed, n):
        x_0, x_1, y = inputs          # rows of an (n_inputs, N) array
        (w, b) = params               # floats, broadcast
        v3 = x_0 * w                  # batched: an (N,) array
        ...
        return (values...), (gradients...)

Outputs are either *per row* -- returned as (N,) arrays, unbatched ones broadcast -- or
*reduced*: a param's gradient is the sum of its per-row gradients (one ``np.stack(...)
.sum(axis=1)`` for all of them; ``n * value`` for an unbatched one).  The caller runs the function under
``np.errstate(all="ignore")``: inf and nan are results, not warnings.

Tensor nodes (from :mod:`graphc.passes.reroll`) are 2-D arrays ``(lanes, B)``, ``B`` = N
for a batched node and 1 for an unbatched one, so both broadcast against each other and
against (N,) rows; a re-rolled layer is one ``_vmatvec`` call over the whole batch.  The
helpers (:mod:`graphc.runtime_numpy`) form every product exactly and add with
``runtime_numpy.in_order``, strictly first to last, so dot products keep the scalar graph's
summation order; only the row sums of gradients (over the batch) are reordered, as for
scalar gradients -- ``outer(g, x)`` summed over rows is one matrix product ``g @ x.T``.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .. import ops, runtime_numpy
from .._version import __version__
from ..graph import Graph, node_names
from ..names import Namespace
from . import loader
from .python import NAMESPACE as PYTHON_NAMESPACE
from .python import spell, wrap_assign

#: What generated code may refer to: NumPy, graphc.runtime_numpy as ``_v<name>``, and the
#: Python backend's helpers for unbatched lines.
NAMESPACE = PYTHON_NAMESPACE | {"np": np, "math": math} | {
    f"_{name}": getattr(runtime_numpy, name) for name in (
        "vsigmoid", "vstep", "vmax", "vsum", "vpack", "vdot", "vmatvec", "vvecmat", "vouter",
        "vouter_rowsum", "vunit", "vpower", "vsoftplus")}


def batched_nodes(graph: Graph, unbatched_inputs: set[int]) -> list[bool]:
    """For each node, whether it varies across rows (depends on a batched input)."""
    batched = [False] * len(graph)
    for i, op in enumerate(graph.ops):
        if op == "input":
            batched[i] = i not in unbatched_inputs
        elif op not in ops.LEAVES:
            batched[i] = any(batched[a] for a in graph.args[i])
    return batched


def generate(graph: Graph, name: str, *, seed: int | None = None, reduced: frozenset[int] = frozenset()
             ) -> tuple[str, str]:
    """Source text and entry-point name.

    ``seed`` is the id of an unbatched scalar input (the joint graph's seed), passed as the
    ``seed`` argument; ``reduced`` holds the positions of outputs to sum over rows.  The
    function returns ``(per_row_outputs, reduced_outputs)``, each a tuple in output order.
    """
    namespace = Namespace(set(NAMESPACE) | {"inputs", "params", "n", "sums"})
    entry = namespace.create(name, "fn")
    names = node_names(graph, namespace)
    batched = batched_nodes(graph, {seed} if seed is not None else set())
    inputs = [i for i in graph.inputs if i != seed]
    shapes = graph.shapes
    reduced_tensors = _reduced_tensors(graph, reduced, batched, shapes)
    live = _live(graph, reduced_tensors)
    body = [f"def {entry}(inputs, params{f', {names[seed]}' if seed is not None else ''}, n):"]
    body += wrap_assign([names[i] for i in inputs], "inputs", "    ")
    body += wrap_assign([names[i] for i in graph.params], "params", "    ")
    row_of = {i: k for k, i in enumerate(inputs)}
    count = on_arrays = 0
    for i, op in enumerate(graph.ops):
        if op in ops.LEAVES or not live[i]:
            continue
        operands = [names[a] for a in graph.args[i]]
        tensor = bool(shapes[i]) or any(shapes[a] for a in graph.args[i])
        if op == "pack" and _consecutive_rows(graph.args[i], row_of):  # a view of the inputs array
            first = row_of[graph.args[i][0]]
            expression = f"inputs[{first}:{first + len(operands)}]"
        elif tensor:
            expression = spell(op, operands, graph.attrs[i], "numpy")
            if not shapes[i] and not batched[i]:
                expression += "[0]"  # an unbatched lane: the one entry of a (1,) row
        else:
            expression = spell(op, operands, graph.attrs[i], "numpy" if batched[i] else "python")
        body.append(f"    {names[i]} = {expression}")
        count += 1
        on_arrays += batched[i] or tensor
    for m, how in reduced_tensors.items():
        if how == "outer":
            a, b = graph.args[m]
            body.append(f"    {names[m]}_sum = _vouter_rowsum({names[a]}, {names[b]})")
        else:
            body.append(f"    {names[m]}_sum = {names[m]}.sum(axis=1)")
    per_row, summed, stacked = [], [], []
    for k, o in enumerate(graph.outputs):
        if k not in reduced:
            per_row.append(names[o] if batched[o] else f"np.full(n, {names[o]})")
        elif graph.ops[o] == "index" and graph.args[o][0] in reduced_tensors:
            summed.append(f"{names[graph.args[o][0]]}_sum[{graph.attrs[o][0]}]")
        elif batched[o]:  # summed below, all in one NumPy call
            summed.append(f"sums[{len(stacked)}]")
            stacked.append(names[o])
        else:
            summed.append(f"{names[o]} * n")  # the same value in every row
    if stacked:
        body += wrap_assign(stacked, "sums", "    ", pack=True)
        body.append("    sums = np.stack(sums).sum(axis=1).tolist()")
    body += wrap_assign(per_row, "per_row", "    ", pack=True)
    body += wrap_assign(summed, "summed", "    ", pack=True)
    if summed:  # from +0.0, as .grad adds them: an all -0.0 sum is +0.0, as on every backend
        body.append("    summed = [float(s) + 0.0 for s in summed]")
    body.append("    return per_row, summed")
    mix = graph.op_mix()
    header = (f"# Generated by graphc {__version__} (NumPy backend). Do not edit: regenerate instead.\n"
              f"# {entry}: {len(per_row)} per-row output(s) over a batch of n rows"
              f"{f' and {len(summed)} gradient(s) summed over the rows' if summed else ''}.\n"
              f"# {count:,} operations, {on_arrays:,} of them on arrays: {mix or 'none'}.\n\n")
    return header + "\n".join(body) + "\n", entry


def _reduced_tensors(graph: Graph, reduced: frozenset[int], batched: list[bool], shapes: list) -> dict[int, str]:
    """Batched tensors whose lanes are reduced outputs: each is summed over rows once.

    Value ``"outer"``: an ``outer(a, b)`` read only by those outputs, summed as ``a @ b.T``
    without forming the per-row products; ``"sum"``: any other tensor.
    """
    found: dict[int, str] = {}
    for k in reduced:
        o = graph.outputs[k]
        if graph.ops[o] == "index" and batched[graph.args[o][0]]:
            found[graph.args[o][0]] = "sum"
    if not found:
        return found
    users = [0] * len(graph)
    for operands in graph.args:
        for a in operands:
            users[a] += 1
    reduced_outputs = [0] * len(graph)
    for k in reduced:
        o = graph.outputs[k]
        if graph.ops[o] == "index":
            reduced_outputs[o] += 1
    outputs = graph.use_counts()
    for m in found:
        if graph.ops[m] == "outer" and all(
                outputs[u] == reduced_outputs[u] and not users[u] for u in _index_users(graph, m)) \
                and users[m] == len(_index_users(graph, m)):
            found[m] = "outer"
    return found


def _index_users(graph: Graph, m: int) -> list[int]:
    return [i for i, op in enumerate(graph.ops) if op == "index" and graph.args[i][0] == m]


def _live(graph: Graph, reduced_tensors: dict[int, str]) -> list[bool]:
    """Live nodes, where a reduced tensor's lanes are read from its row sum (not computed per
    row) and a reduced ``outer`` needs only its operands."""
    live = [False] * len(graph)
    for o in graph.outputs:
        if graph.ops[o] == "index" and graph.args[o][0] in reduced_tensors:
            m = graph.args[o][0]
            for a in (graph.args[m] if reduced_tensors[m] == "outer" else (m,)):
                live[a] = True
        else:
            live[o] = True
    for i in range(len(graph) - 1, -1, -1):
        if live[i]:
            for a in graph.args[i]:
                live[a] = True
    return live


def _consecutive_rows(operands: tuple, row_of: dict[int, int]) -> bool:
    rows = [row_of.get(a) for a in operands]
    return rows[0] is not None and rows == list(range(rows[0], rows[0] + len(rows)))


def compile_graph(graph: Graph, name: str, **kwargs) -> tuple[Callable, str]:
    """Generate and load: the NumPy function for ``graph`` and its source."""
    source, entry = generate(graph, name, **kwargs)
    return loader.load(source, entry, NAMESPACE, label=f"{name} numpy"), source
