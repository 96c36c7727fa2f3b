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
from ..graph import Graph, node_names
from ..names import Namespace
from . import loader, python_floats
from .common import Spelling, batched_nodes, header, live_roots, reduced_lane, reduced_tensors, spell, wrap_assign

#: The helpers of :mod:`graphc.runtime_numpy` (its functions named ``v<op>``), as ``_v<op>``.
HELPERS = {f"_{name}": f for name, f in vars(runtime_numpy).items() if name.startswith("v") and callable(f)}
#: What generated code may refer to: NumPy, the helpers, and Python's helpers over floats for
#: unbatched lines.
NAMESPACE = python_floats.NAMESPACE | {"np": np, "math": math} | HELPERS


def _vsum(operands: list[str], params: tuple) -> str:
    return f"_vsum({', '.join(operands)})"


def _vpack(operands: list[str], params: tuple) -> str:
    return f"_vpack({', '.join(operands)})"


#: Op name -> its spelling over arrays: (N,) rows for scalar nodes, (lanes, B) for tensors.
SPELLINGS: dict[str, Spelling] = {
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "neg": "-{0}",
    "sum": _vsum,
    "pow": "_vpower({0}, {exponent})",
    "vpow": "_vpower({0}, {1})",
    "relu": "np.maximum(0.0, {0})",
    "tanh": "np.tanh({0})",
    "exp": "np.exp({0})",
    "log": "np.log({0})",
    "log1p": "np.log1p({0})",
    "softplus": "_vsoftplus({0})",
    "sigmoid": "_vsigmoid({0})",
    "sin": "np.sin({0})",
    "cos": "np.cos({0})",
    "step": "_vstep({0})",
    "max": "_vmax({0}, {1})",
    "abs": "np.abs({0})",
    "sqrt": "np.sqrt({0})",
    "lt": "({0} < {1}) * 1.0",
    "le": "({0} <= {1}) * 1.0",
    "gt": "({0} > {1}) * 1.0",
    "ge": "({0} >= {1}) * 1.0",
    "eq": "({0} == {1}) * 1.0",
    "ne": "({0} != {1}) * 1.0",
    "truediv": "np.true_divide({0}, {1})",
    "pack": _vpack,
    "index": "{0}[{i}]",
    "unit": "_vunit({0}, {1}, {i})",
    "dot": "_vdot({0}, {1}, {2})",
    "matvec": "_vmatvec({0}, {1}, {2})",
    "vecmat": "_vvecmat({0}, {1})",
    "outer": "_vouter({0}, {1})",
}


def generate(graph: Graph, name: str, *, seed: int | None = None, reduced: frozenset[int] = frozenset()
             ) -> tuple[str, str]:
    """Source text and entry-point name.

    ``seed`` is the id of an unbatched scalar input (the joint graph's seed), passed as the
    ``seed`` argument; ``reduced`` holds the positions of outputs to sum over rows.  The
    function returns ``(per_row_outputs, reduced_outputs)``, each a tuple in output order.
    """
    namespace = Namespace(set(NAMESPACE) | {"inputs", "params", "n", "sums"})
    entry = namespace.create(name, "fn")
    writer = _Writer(graph, node_names(graph, namespace), seed, reduced)
    body = [f"def {entry}(inputs, params{f', {writer.names[seed]}' if seed is not None else ''}, n):"]
    body += wrap_assign([writer.names[i] for i in writer.inputs], "inputs", "    ")
    body += wrap_assign([writer.names[i] for i in graph.params], "params", "    ")
    body += writer.nodes()
    per_row, summed, lines = writer.results()
    body += lines
    what = (f"{entry}: {len(per_row)} per-row output(s) over a batch of n rows"
            f"{f' and {len(summed)} gradient(s) summed over the rows' if summed else ''}.")
    top = header("NumPy", [what, f"{writer.count:,} operations, {writer.on_arrays:,} of them on arrays: "
                                 f"{graph.op_mix() or 'none'}."])
    return top + "\n".join(body) + "\n", entry


class _Writer:
    """The lines of one batched function: nodes, row sums, results."""

    def __init__(self, graph: Graph, names: list[str], seed: int | None, reduced: frozenset[int]) -> None:
        self.graph, self.names, self.reduced = graph, names, reduced
        self.batched = batched_nodes(graph, {seed} if seed is not None else set())
        self.inputs = [i for i in graph.inputs if i != seed]
        self.tensors = reduced_tensors(graph, reduced, self.batched)
        self.count = self.on_arrays = 0

    def nodes(self) -> list[str]:
        """One line per live node: over arrays if batched or a tensor, else over floats."""
        g, names, shapes, batched = self.graph, self.names, self.graph.shapes, self.batched
        live = g.live(live_roots(g, self.reduced, self.tensors))
        row_of = {i: k for k, i in enumerate(self.inputs)}
        body = []
        for i, op in enumerate(g.ops):
            if op in ops.LEAVES or not live[i]:
                continue
            operands = [names[a] for a in g.args[i]]
            tensor = bool(shapes[i]) or any(shapes[a] for a in g.args[i])
            if op == "pack" and _consecutive_rows(g.args[i], row_of):  # a view of the inputs array
                first = row_of[g.args[i][0]]
                expression = f"inputs[{first}:{first + len(operands)}]"
            elif tensor:
                expression = spell(SPELLINGS, op, operands, g.attrs[i])
                if not shapes[i] and not batched[i]:
                    expression += "[0]"  # an unbatched lane: the one entry of a (1,) row
            else:
                table = SPELLINGS if batched[i] else python_floats.SPELLINGS
                expression = spell(table, op, operands, g.attrs[i])
            body.append(f"    {names[i]} = {expression}")
            self.count += 1
            self.on_arrays += batched[i] or tensor
        return body

    def results(self) -> tuple[list[str], list[str], list[str]]:
        """The per-row and summed result expressions, and the lines that compute and return them."""
        g, names, batched = self.graph, self.names, self.batched
        body = []
        for m, how in self.tensors.items():
            if how == "outer":
                a, b = g.args[m]
                body.append(f"    {names[m]}_sum = _vouter_rowsum({names[a]}, {names[b]})")
            else:
                body.append(f"    {names[m]}_sum = {names[m]}.sum(axis=1)")
        per_row, summed, stacked = [], [], []
        for k, o in enumerate(g.outputs):
            if k not in self.reduced:
                per_row.append(names[o] if batched[o] else f"np.full(n, {names[o]})")
            elif reduced_lane(g, o, self.tensors):
                summed.append(f"{names[g.args[o][0]]}_sum[{g.attrs[o][0]}]")
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
        return per_row, summed, body


def _consecutive_rows(operands: tuple, row_of: dict[int, int]) -> bool:
    rows = [row_of.get(a) for a in operands]
    return rows[0] is not None and rows == list(range(rows[0], rows[0] + len(rows)))


def compile_graph(graph: Graph, name: str, *, seed: int | None = None, reduced: frozenset[int] = frozenset()
                  ) -> tuple[Callable, str]:
    """Generate and load: the NumPy function for ``graph`` and its source.

    The function is ``f(inputs, params, [seed,] n) -> (per_row arrays, sums)``, the C
    backend's convention: ``params`` a list or a float64 array (read as Python floats), the
    sums returned as a list or an array likewise.
    """
    source, entry = generate(graph, name, seed=seed, reduced=reduced)
    function = loader.load(source, entry, NAMESPACE, label=f"{name} numpy")

    def run(inputs, params, *seed_and_n):
        if not isinstance(params, np.ndarray):
            return function(inputs, params, *seed_and_n)
        per_row, summed = function(inputs, params.tolist(), *seed_and_n)
        return per_row, np.array(summed, dtype=np.float64)
    run.__doc__ = f"{entry} in NumPy: see the generated source"
    return run, source
