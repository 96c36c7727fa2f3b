"""A full-batch loss run as one per-row program over a table, bit for bit as the scalar program.

:func:`graphc.passes.rows.recover_rows` splits a traced graph into a per-row graph, a table
of columns and an outer graph (the row sum's consumer: the mean, an L2 term).  Here the two
graphs are compiled for a batched backend (NumPy or C) -- the per-row graph once, forward
and gradient, with per-row outputs; the outer graph as a batch of one -- and
:class:`RowsProgram` runs them so that every number equals what the unrolled scalar program
computes (``graphc.compile(fn, backend="python")``):

* the row sum adds the rows first to last from the sum's start (Python's 0);
* the per-row program gets the scalar program's per-row cotangent: the outer graph's
  gradient with respect to the row sum;
* a param's gradient adds its contributions in the order reverse mode reaches them in the
  scalar program: the rows last to first (``backward()`` visits the sum's terms last
  first), after or before the outer graph's contributions, as the outer graph says
  (:func:`_arrival`).  Rows are added with ``np.add.accumulate``, which is sequential.

:func:`rows_program` answers None where this cannot be exact: the graph has no rows, a
param is read twice in one row (the scalar program adds those two contributions in
between the other rows'), or the outer graph's contributions to a param would have to be
split around the rows'.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import autodiff, ops
from .backends import Backend
from .codegen import python as python_backend
from .graph import Builder, Graph
from .passes import VECTOR_PIPELINE, optimize
from .passes.rows import RowSplit, recover_rows
from .walk import depth_first

#: Below this many traced nodes compiling the scalar program is cheap: rows are not sought.
MIN_NODES = 2000


def rows_program(graph: Graph, backend: Backend, numerics: str = "exact", name: str = "fn",
                 min_nodes: int = MIN_NODES) -> "RowsProgram | None":
    """The traced ``graph`` as a :class:`RowsProgram` on ``backend`` (one that generates
    batched code: NumPy or C), or None where it has no rows or they cannot be run exactly
    (see the module docstring)."""
    if not backend.generates_batches or numerics != "exact" or len(graph) < min_nodes or len(graph.outputs) != 1:
        return None
    split = recover_rows(graph)
    if split is None:
        return None
    row = optimize(split.row)
    if _read_twice(row):
        return None
    outer = optimize(split.outer)
    order = _arrival(outer, outer.inputs[-1])
    if order is None:
        return None
    return RowsProgram(split, row, outer, order, backend, name)


class RowsProgram:
    """Compiled per-row and outer programs; ``forward`` then ``gradients`` (see the module
    docstring).  ``reached[k]`` is False where no gradient reaches param ``k``.

    The per-row program runs on the batched backend; the outer graph (small: the mean, an L2
    term) as a Python generator like a scalar call's, forward and backward in one frame.
    """

    def __init__(self, split: RowSplit, row: Graph, outer: Graph, order: list[str], backend: Backend,
                 name: str) -> None:
        self.split = split
        self.row_joint = _joint(row)
        self._row, self.row_source = backend.generate(self.row_joint, f"{name}_rows", seed=self.row_joint.inputs[-1])
        self.n_outputs = len(outer.outputs)
        self.n_inputs = len(outer.inputs)  # the graph's inputs, then the row sum
        self.outer_joint = optimize(autodiff.grad(outer, 0, wrt_inputs=True))
        self._outer, self.outer_source = python_backend.compile_graph(
            self.outer_joint, f"{name}_outer", seed=self.outer_joint.inputs[-1], n_forward=self.n_outputs)
        row_reached = _reached(self.row_joint, 1)
        outer_reached = _reached(self.outer_joint, self.n_outputs)[self.n_inputs:]
        self.in_rows = np.array(row_reached, dtype=bool)
        self.reached = tuple(a or b for a, b in zip(row_reached, outer_reached))
        self.before = np.array([o == "before" for o in order], dtype=bool)
        self.after = np.array([o == "after" for o in order], dtype=bool)
        self._seed_guess = 0.0  # the last row seed: usually the next one too (1/n for a mean)

    @property
    def source(self) -> str:
        return self.row_source + "\n" + self.outer_source

    def forward(self, inputs: list[float], params: list[float]) -> tuple[list[float], list]:
        """The outputs, and the state :meth:`gradients` needs."""
        params_array = np.asarray(params, dtype=np.float64)
        cols = self.split.columns(np.asarray(inputs, dtype=np.float64))
        seed = self._seed_guess
        per_row = self._run_rows(cols, params_array, seed)
        outer_inputs = list(inputs) + [self.split.row_sum(per_row[0])]
        frame = self._outer(outer_inputs, list(params))
        values = next(frame)
        return list(values), [cols, params_array, outer_inputs, frame, seed, per_row]

    def gradients(self, state: list, seed: float) -> list[float | None]:
        """``seed`` times the gradient of the output with respect to each param, in the
        scalar program's numbers; None where no gradient reaches a param."""
        cols, params, outer_inputs, frame, row_seed, per_row = state
        state[3] = None
        if frame is None:  # a second backward() of the same output: run it afresh
            frame = self._outer(outer_inputs, params.tolist())
            next(frame)
        outer = frame.send(seed)
        frame.close()
        d_total = float(outer[self.n_inputs - 1])
        self._seed_guess = d_total
        if not _same(d_total, row_seed):
            per_row = self._run_rows(cols, params, d_total)
        outer_grads = np.array(outer[self.n_inputs:], dtype=np.float64)
        grads = _add_rows(per_row[1:], np.where(self.before, outer_grads, -0.0))
        grads = np.where(self.after, grads + outer_grads, grads)
        grads = np.where(self.in_rows, grads, outer_grads)
        return [float(g) if r else None for g, r in zip(grads.tolist(), self.reached)]

    def _run_rows(self, cols: np.ndarray, params: np.ndarray, seed: float) -> np.ndarray:
        """The per-row program: an (1 + n_params, n_rows) array, the rows' values then their
        param gradients."""
        n = cols.shape[1]
        with np.errstate(all="ignore"):
            per_row, _ = self._row(cols, params, seed, n)
        return np.asarray(per_row, dtype=np.float64)


def _add_rows(rows: np.ndarray, first: np.ndarray) -> np.ndarray:
    """For each param (a line of ``rows``, one column per row), ``first`` plus the rows' values
    added last row first, one at a time.  Accumulating over axis 0 of a C-ordered array adds
    whole lines in order, starting from the first (NumPy's pairwise summation only runs along
    the contiguous axis, so there are always at least two columns; a reduction would start
    from +0.0 and lose a -0.0; tests/test_rows.py checks this against a loop)."""
    n_params, n_rows = rows.shape
    acc = np.zeros((n_rows + 1, max(n_params, 2)))
    acc[0, :n_params] = first
    acc[1:, :n_params] = rows[:, ::-1].T
    return np.add.accumulate(acc, axis=0, out=acc)[-1, :n_params]


class RowsCall:
    """One call's state, answering the eager bridge (:mod:`graphc.bridge`): ``backward()`` on
    the call's output runs :meth:`RowsProgram.gradients` with the output's grad."""

    __slots__ = ("program", "state", "name", "values")

    def __init__(self, program: RowsProgram, inputs: list[float], params: list[float], name: str) -> None:
        self.program, self.name = program, name
        self.values, self.state = program.forward(inputs, params)

    def label(self, index: int) -> str:
        return f"{self.name}[{index}]"

    def gradients(self, index: int, seed: float) -> list[float | None]:
        return self.program.gradients(self.state, seed)


def _joint(forward: Graph) -> Graph:
    """Re-rolled forward and param gradient, as ``Compiled`` builds its batched programs."""
    vector = optimize(forward, passes=VECTOR_PIPELINE)
    return optimize(autodiff.grad(vector, 0, wrt_inputs=False), passes=VECTOR_PIPELINE)


def _reached(joint: Graph, n_forward: int) -> list[bool]:
    return [joint.ops[o] != "const" for o in joint.outputs[n_forward:]]


def _same(a: float, b: float) -> bool:
    """Equal bit for bit (nan never: it is recomputed)."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _read_twice(row: Graph) -> bool:
    """Whether some param is an operand more than once in the (optimized) row graph."""
    is_param = set(row.params)
    seen: set[int] = set()
    for alive, operands in zip(row.live(), row.args):
        for a in operands if alive else ():
            if a in is_param:
                if a in seen:
                    return True
                seen.add(a)
    return False


def _arrival(outer: Graph, rows_input: int) -> list[str] | None:
    """For each param, where the outer graph's gradient contributions arrive relative to the
    rows' in reverse mode: "before" (any number), "after" (exactly one), or "none"; None if
    some param has them on both sides or several after.  Reverse mode processes nodes in
    reversed eager order; the row sum's input stands where the rows' block was."""
    order = depth_first((outer.outputs[0],), outer.args.__getitem__)
    if rows_input not in order:
        return None
    cut = order.index(rows_input)
    flows: dict[tuple, list[bool]] = {}
    receives = {outer.outputs[0]}
    counts = {p: [0, 0] for p in outer.params}
    for position in range(len(order) - 1, -1, -1):
        i = order[position]
        if i not in receives or not outer.args[i]:
            continue
        key = (outer.ops[i], outer.attrs[i], len(outer.args[i]))
        if key not in flows:
            flows[key] = _flows(*key)
        for a, flow in zip(outer.args[i], flows[key]):
            if flow:
                receives.add(a)
                if a in counts:
                    counts[a][position < cut] += 1
    result = []
    for p in outer.params:
        before, after = counts[p]
        if after == 0:
            result.append("before" if before else "none")
        elif after == 1 and before == 0:
            result.append("after")
        else:
            return None
    return result


def _flows(op: str, attr: tuple, arity: int) -> list[bool]:
    """For each operand of an ``op`` node, whether its vjp rule sends it a contribution (tried
    on a scratch graph: the rules decide, e.g. ``step`` sends none)."""
    b = Builder()
    operands = [b.add("input", (), (f"a{k}",)) for k in range(arity)]
    out = b.add(op, tuple(operands), attr)
    g = b.add("input", (), ("g",))
    S = autodiff.NodeRef
    cotangents = ops.TABLE[op].vjp(autodiff.algebra(b), S(b, g), S(b, out), *[S(b, a) for a in operands], *attr)
    return [c is not None for c in cotangents]
