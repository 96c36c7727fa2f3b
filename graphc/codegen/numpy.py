"""NumPy backend: one per-sample graph evaluated for N samples at once.

Every scalar node becomes one NumPy operation over a length-N array (a *batched* node:
it depends on an input) or stays a Python float (an *unbatched* node: params, constants,
the seed and what is computed from them alone, spelled as in the Python backend).  The
generated function is flat, one SSA line per node::

    def loss(inputs, params, seed, n):
        x_0 = inputs[0]               # a row of the (n_inputs, N) array, read by name
        (b,) = params[5:6].tolist()   # a param read alone: a float, broadcast
        v2 = inputs[1:5]              # a pack of consecutive inputs: a view
        v3 = params[0:4, None]        # a pack of params: a view of the params array
        ...
        grads = np.empty(6)           # the reduced outputs, filled by slices
        grads[0:4] = v9_sum
        ...
        return (values...), grads

Nothing is done per param: the params come as one float64 array, a weight matrix is a
slice of it (or one copy of a grid of slices, or one gather: :mod:`.numpy_layout`), and
the gradients go back as one array.  Outputs are either *per row* -- returned as (N,)
arrays, unbatched ones broadcast -- or *reduced*: a param's gradient is the sum of its
per-row gradients (one ``np.stack(...).sum(axis=1)`` for all batched scalars; ``n *
value`` for an unbatched one).  The caller runs the function under
``np.errstate(all="ignore")``: inf and nan are results, not warnings.

Tensor nodes (from :mod:`graphc.passes.reroll`) are 2-D arrays ``(lanes, B)``, ``B`` = N
for a batched node and 1 for an unbatched one, so both broadcast against each other and
against (N,) rows; a re-rolled layer is one ``_vmatvec`` call over the whole batch.  The
helpers (:mod:`graphc.runtime_numpy`) form every product exactly and add with
``runtime_numpy.in_order``, strictly first to last, so dot products keep the scalar graph's
summation order; only the row sums of gradients (over the batch) are reordered, as for
scalar gradients -- ``outer(g, x)`` summed over rows is one matrix product ``g @ x.T``,
whose BLAS picks its own order and fuses multiply-adds (the C backend keeps the rows' order).
``numerics="fast"`` gives up the order: :data:`FAST_SPELLINGS` (BLAS).
"""
from __future__ import annotations

import math
from itertools import compress
from typing import Callable

import numpy as np

from .. import ops, runtime_numpy
from ..graph import Graph, node_names
from ..names import Namespace
from . import loader, numpy_layout, python_floats
from .common import (Spelling, batched_nodes, header, live_roots, positions_mask, reduced_tensors, spell,
                     tensor_lanes, wrap_assign)

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
    "stop_gradient": "{0}",
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
    "vecmat": "_vvecmat({0}, {1}, {2})",
    "outer": "_vouter({0}, {1})",
}
#: ``numerics="fast"``: the layer ops as matrix products (BLAS), in whatever order it sums
#: (and the row sums of ``outer`` with ``np.dot``).
FAST_SPELLINGS: dict[str, Spelling] = {
    "dot": "_vdot_fast({0}, {1}, {2})",
    "matvec": "_vmatvec_fast({0}, {1}, {2})",
    "vecmat": "_vvecmat_fast({0}, {1}, {2})",
}


def generate(graph: Graph, name: str, *, seed: int | None = None, reduced: frozenset[int] = frozenset(),
             numerics: str = "exact") -> tuple[str, str]:
    """Source text and entry-point name.

    ``seed`` is the id of an unbatched scalar input (the joint graph's seed), passed as the
    ``seed`` argument; ``reduced`` holds the positions of outputs to sum over rows.  The
    function takes the params as one float64 array and returns ``(per_row_outputs,
    sums)``: a tuple in output order, and the reduced outputs, in output order, as one
    float64 array.  ``numerics="fast"`` spells the layer ops with BLAS (:data:`FAST_SPELLINGS`).
    """
    namespace = Namespace(set(NAMESPACE) | {"inputs", "params", "n", "sums", "grads"})
    entry = namespace.create(name, "fn")
    writer = _Writer(graph, node_names(graph, namespace), seed, reduced, numerics == "fast")
    nodes = writer.nodes()
    per_row, results = writer.results()
    body = [f"def {entry}(inputs, params{f', {writer.names[seed]}' if seed is not None else ''}, n):"]
    body += writer.unpacked() + nodes + results
    what = (f"{entry}: {len(per_row)} per-row output(s) over a batch of n rows"
            f"{f' and {writer.n_summed} gradient(s) summed over the rows' if writer.n_summed else ''}.")
    top = header("NumPy", [what, f"{writer.count:,} operations, {writer.on_arrays:,} of them on arrays: "
                                 f"{graph.op_mix() or 'none'}."])
    constants = "".join(line + "\n" for line in writer.indexes.lines)
    return top + constants + ("\n" if constants else "") + "\n".join(body) + "\n", entry


class _Writer:
    """The lines of one batched function: the inputs and params it reads one by one, nodes,
    row sums, results."""

    def __init__(self, graph: Graph, names: list[str], seed: int | None, reduced: frozenset[int],
                 fast: bool) -> None:
        self.graph, self.names, self.reduced = graph, names, reduced
        self.table = SPELLINGS | FAST_SPELLINGS if fast else SPELLINGS
        self.outer_rowsum = "_vouter_rowsum_fast" if fast else "_vouter_rowsum"
        self.batched = batched_nodes(graph, {seed} if seed is not None else set())
        self.inputs = [i for i in graph.inputs if i != seed]
        self.param_at = dict(zip(graph.params, range(len(graph.params))))
        self.tensors = reduced_tensors(graph, reduced, self.batched)
        self.indexes = numpy_layout.Indexes()
        self.read: set[int] = set()  # leaves read by name: unpacked at the top
        self.count = self.on_arrays = 0
        self.n_summed = len(reduced)

    def ref(self, i: int) -> str:
        """Node ``i``'s name in an expression (an input or param so named is unpacked)."""
        self.read.add(i)
        return self.names[i]

    def nodes(self) -> list[str]:
        """One line per live node: over arrays if batched or a tensor, else over floats."""
        g, shapes, batched = self.graph, self.graph.shapes, self.batched
        live = g.live(live_roots(g, self.reduced, self.tensors))
        row_of = {i: k for k, i in enumerate(self.inputs)}
        gathers, unread = self._gathers(live)
        body = []
        for i in _live_operations(g, live):
            if i in unread:
                continue
            op = g.ops[i]
            tensor = bool(shapes[i]) or any(shapes[a] for a in g.args[i])
            if op == "pack" and _consecutive_rows(g.args[i], row_of):  # a view of the inputs array
                first = row_of[g.args[i][0]]
                expression = f"inputs[{first}:{first + len(g.args[i])}]"
            elif i in gathers:  # lanes of one tensor: one NumPy indexing, not a line per lane
                source, lanes = gathers[i]
                expression = numpy_layout.rows(self.ref(source), lanes, self.indexes)
            elif op == "pack" and all(map(self.param_at.__contains__, g.args[i])):  # read from the params array
                expression = numpy_layout.column("params", list(map(self.param_at.__getitem__, g.args[i])),
                                                 len(self.param_at), self.indexes)
            else:
                operands = [self.ref(a) for a in g.args[i]]
                table = self.table if batched[i] or tensor else python_floats.SPELLINGS
                expression = spell(table, op, operands, g.attrs[i])
                if tensor and not shapes[i] and not batched[i]:
                    expression += "[0]"  # an unbatched lane: the one entry of a (1,) row
            body.append(f"    {self.names[i]} = {expression}")
            self.count += 1
            self.on_arrays += batched[i] or tensor
        return body

    def _gathers(self, live: list[bool]) -> tuple[dict[int, tuple[int, list[int]]], set[int]]:
        """The live packs of lanes of one tensor (``pack(index(t, 3), index(t, 0), ...)``:
        a layer's gradient gathered from an L2 term's, say) as (tensor, lanes); and the
        ``index`` nodes only such packs read, which then need no line of their own."""
        g = self.graph
        gathers: dict[int, tuple[int, list[int]]] = {}
        reads: dict[int, int] = {}
        for i in np.flatnonzero(g.arrays.of(("pack",))).tolist():
            if not live[i] or any(g.ops[a] != "index" for a in g.args[i]):
                continue
            sources = {g.args[a][0] for a in g.args[i]}
            if len(sources) == 1:
                gathers[i] = (sources.pop(), [g.attrs[a][0] for a in g.args[i]])
                for a in g.args[i]:
                    reads[a] = reads.get(a, 0) + 1
        uses = g.arrays.uses
        return gathers, {a for a, count in reads.items() if count == uses[a]}

    def unpacked(self) -> list[str]:
        """The inputs (rows of ``inputs``) and params (Python floats) read by name."""
        body = [f"    {self.names[i]} = inputs[{k}]" for k, i in enumerate(self.inputs) if i in self.read]
        scalars = sorted((p for p in self.read if p in self.param_at), key=self.param_at.__getitem__)
        if scalars:
            where = numpy_layout.entries("params", [self.param_at[p] for p in scalars], len(self.param_at),
                                         self.indexes)
            body += wrap_assign([self.names[p] for p in scalars], f"{where}.tolist()", "    ")
        return body

    def results(self) -> tuple[list[str], list[str]]:
        """The per-row result expressions, and the lines that sum, gather and return results."""
        g, batched = self.graph, self.batched
        body = []
        for m, how in self.tensors.items():
            if how == "outer":
                a, b = g.args[m]
                body.append(f"    {self.names[m]}_sum = {self.outer_rowsum}({self.ref(a)}, {self.ref(b)})")
            else:
                body.append(f"    {self.names[m]}_sum = {self.ref(m)}.sum(axis=1)")
        per_row = [self.ref(o) if batched[o] else f"np.full(n, {self.ref(o)})"
                   for k, o in enumerate(g.outputs) if k not in self.reduced]
        body += self._gradients()
        body += wrap_assign(per_row, "per_row", "    ", pack=True)
        body.append("    return per_row, grads")
        return per_row, body

    def _gradients(self) -> list[str]:
        """Lines filling ``grads``, the reduced outputs in output order: whole slices of the
        tensors' row sums, one row sum of the stacked batched scalars, the unbatched ones
        times n.  Then +0.0, as ``.grad`` adds them from it: an all -0.0 sum gives +0.0."""
        g, batched, size = self.graph, self.batched, self.n_summed
        lanes = tensor_lanes(g, self.reduced, self.tensors)  # tensor -> (positions, lanes)
        lone = np.ones(size, bool)
        for positions, _ in lanes.values():
            lone[positions] = False
        reduced_outputs = g.arrays.outputs[positions_mask(g, self.reduced)].tolist()
        stacked: list[tuple[int, int]] = []  # (position, node)
        scalars: dict[str, list[int]] = {}  # expression -> positions
        for position in np.flatnonzero(lone).tolist():
            o = reduced_outputs[position]
            if batched[o]:
                stacked.append((position, o))
            else:  # the same value in every row
                scalars.setdefault(f"{self.ref(o)} * n", []).append(position)
        body = [f"    grads = np.empty({size})"]
        for m, (positions, taken) in lanes.items():
            value = numpy_layout.entries(f"{self.names[m]}_sum", taken, math.prod(g.shapes[m]), self.indexes)
            body.append("    " + numpy_layout.assign("grads", positions, size, value, self.indexes))
        if stacked:  # summed in one NumPy call
            body += wrap_assign([self.ref(o) for _, o in stacked], "sums", "    ", pack=True)
            body.append("    sums = np.stack(sums).sum(axis=1)")
            body.append("    " + numpy_layout.assign("grads", [p for p, _ in stacked], size, "sums", self.indexes))
        for expression, positions in scalars.items():
            body.append("    " + numpy_layout.assign("grads", positions, size, expression, self.indexes, scalar=True))
        if size:
            body.append("    grads += 0.0")
        return body


def _consecutive_rows(operands: tuple, row_of: dict[int, int]) -> bool:
    first = row_of.get(operands[0])
    return first is not None and [row_of.get(a) for a in operands] == list(range(first, first + len(operands)))


def _live_operations(graph: Graph, live: list[bool]) -> list[int]:
    """The live nodes that are not leaves, in id order (a gradient program's nodes are
    mostly params and the ``index`` outputs no live node needs)."""
    operations = np.flatnonzero(~graph.arrays.of(ops.LEAVES)).tolist()
    return list(compress(operations, map(live.__getitem__, operations)))


def compile_graph(graph: Graph, name: str, *, seed: int | None = None, reduced: frozenset[int] = frozenset(),
                  numerics: str = "exact") -> tuple[Callable, str]:
    """Generate and load: the NumPy function for ``graph`` and its source.

    The function is ``f(inputs, params, [seed,] n) -> (per_row arrays, sums)``, the C
    backend's convention: ``params`` a list or a float64 array (a C-contiguous float64 one
    is read in place, any other copied), the sums returned as a list or an array likewise.
    """
    source, entry = generate(graph, name, seed=seed, reduced=reduced, numerics=numerics)
    function = loader.load(source, entry, NAMESPACE, label=f"{name} numpy")

    def run(inputs, params, *seed_and_n):
        per_row, sums = function(inputs, np.ascontiguousarray(params, dtype=np.float64), *seed_and_n)
        return per_row, sums if isinstance(params, np.ndarray) else sums.tolist()
    run.__doc__ = f"{entry} in NumPy: see the generated source"
    return run, source
