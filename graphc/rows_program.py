"""A full-batch loss run as one per-row program over a table, bit for bit as the scalar program.

:func:`graphc.passes.rows.recover_rows` splits a traced graph into a per-row graph (one
output per sum chain: micrograd's demo sums its losses and, from the same scores, its
accuracy's hits), a table of columns and an outer graph (the row sums' consumer: the mean,
an L2 term, the accuracy's division, the guards).  Here the two graphs are compiled for a
batched backend (NumPy or C; :mod:`graphc.rows_kernels`) -- the per-row graph with the
gradient of one chain's output (NumPy writes every row's param gradients and adds them; C
sums them in the kernel); the outer graph as a batch of one -- and :class:`RowsProgram` runs them so that every number equals what the unrolled scalar
program computes (``graphc.compile(fn, backend="python")``):

* each row sum adds the rows first to last from the sum's start (Python's 0);
* the per-row program gets the scalar program's per-row cotangent: the outer graph's
  gradient with respect to the row sum;
* a param's gradient adds its contributions in the order reverse mode reaches them in the
  scalar program: the rows last to first (``backward()`` visits the sum's terms last
  first), after or before the outer graph's contributions, as the outer graph says
  (:func:`_plan`), one addition at a time (those after the rows by the outer graph's
  gradient program from starts, the rows' totals: an L2 term written first, ``reg + data``).
* each output's gradient is its own (``backward()`` of the loss never mixes in the
  accuracy's): it comes from the rows of the one chain whose gradient reaches it, if any
  (a comparison's 0/1 passes no gradient on);
* a row's value returned as it is (the scores a loss returns with itself) is the per-row
  program's output, and its gradient that program's on the one row.

:func:`rows_program` answers None where this cannot be exact: the graph has no rows, a
param is read twice in one row (the scalar program adds those two contributions in
between the other rows'), the outer graph's contributions to a param would have to be
split around the rows', two chains' rows send gradients to one output, or a gradient reaches
a row's value through anything but returning it (``loss + scores[0]``).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from . import autodiff, forksafe, logs, ops
from .backends import Backend
from .graph import Builder, Graph
from .passes import (DIFFERENTIABLE_PIPELINE, DIFFERENTIABLE_VECTOR_PIPELINE, JOINT_VECTOR_PIPELINE, optimize,
                     optimize_for_output)
from .passes.rows import RowSplit, recover_rows
from .rows_kernels import outer_function, row_kernel, rows_and_outer
from .walk import depth_first

#: Below this many traced nodes compiling the scalar program is cheap: rows are not sought.
MIN_NODES = 2000


class Plan(NamedTuple):
    """How one output's gradient is made: ``chain``, the one sum chain whose rows send it
    gradients (None: no row does), and per param whether the outer graph's contributions
    arrive ``before`` or ``after`` the rows' in the scalar program (:func:`_plan`);
    ``several_after``: some param has more than one after them (``reg + data``: an L2
    term's ``p * p`` sends two), added one by one from the rows' total by the outer
    graph's gradient program from starts (:func:`graphc.autodiff.grad`)."""

    chain: int | None
    before: np.ndarray
    after: np.ndarray
    some_after: bool
    several_after: bool = False
    row_value: tuple[int, int] | None = None  # (the row program's output, the row) returned as it is


def rows_program(graph: Graph, backend: Backend, numerics: str = "exact", name: str = "fn",
                 min_nodes: int = MIN_NODES) -> "RowsProgram | None":
    """The traced ``graph`` as a :class:`RowsProgram` on ``backend`` (one that generates
    batched code: NumPy or C), or None where it has no rows or they cannot be run exactly
    (see the module docstring).  ``numerics="fast"`` runs them exactly too, as its scalar
    calls are (it ran the scalar program, 60x slower a step for micrograd's demo: a hunt);
    "stable" rewrites the scalar program, which rows would not."""
    if not backend.generates_batches:
        return _refused(name, f"the {backend.name} backend runs it")
    if numerics == "stable":
        return _refused(name, "numerics='stable' rewrites it, which rows would not")
    if len(graph) < min_nodes:
        return _refused(name, f"{len(graph):,} traced nodes, under {min_nodes:,}: it compiles quickly")
    split = recover_rows(graph)
    if split is None:
        return _refused(name, "no sum over at least 4 rows computed alike, each row's nodes its own (one row's "
                              "value returned alone, or a model's output picked by a label, is not)")
    # both differentiated, so only folded (see graphc.passes.DIFFERENTIABLE_PIPELINE): nor may a
    # param read twice in a row pass for one read
    row = optimize(split.row, passes=DIFFERENTIABLE_PIPELINE)
    if _read_twice(row):
        return _refused(name, "a param is read twice in each row (an L2 term inside the row's loss?)")
    outer = optimize(split.outer, passes=DIFFERENTIABLE_PIPELINE)
    rows_inputs = outer.inputs[len(outer.inputs) - split.n_chains:]
    first_value = len(outer.inputs) - split.n_chains - split.n_values * split.n_rows
    value_inputs = {node: k for k, node in enumerate(outer.inputs[first_value:len(outer.inputs) - split.n_chains])}
    live = [_reaches_a_param(row, j) for j in range(split.n_chains)]
    plans = [_plan(outer, o, rows_inputs, live, value_inputs, split) for o in range(len(outer.outputs))]
    if any(plan is None for plan in plans):
        return _refused(name, "an output's gradient comes from two sums over the rows, a param's from both "
                              "sides of them, or a row's value is differentiated through the rest of the graph")
    if all(plan.row_value is not None for plan in plans):
        return _refused(name, "no output reads the sum over the rows")
    logs.rows(name, f"one per-row program over {split.n_rows} rows ({split.n_chains} sum(s) over them)")
    return RowsProgram(split, row, outer, plans, backend, name)


def _refused(name: str, why: str) -> None:
    logs.rows(name, f"the scalar program runs: {why}")
    return None


class RowsProgram:
    """Compiled per-row and outer programs; ``forward`` then ``gradients`` (see the module
    docstring).  ``reached(output)[k]`` is False where no gradient of ``output`` reaches
    param ``k``.

    The per-row program runs on the batched backend: every chain's per-row values, and the
    gradient of one chain's (one program per chain that some output differentiates, made on
    first use).  The outer graph (small: the mean, an L2 term, the accuracy's division, the
    guards) runs as a Python generator like a scalar call's, forward and backward in one
    frame, one per output differentiated: its outputs but the rows' values returned as they
    are (those come from the per-row program), its gradients but the row sums' and the
    params' (none of the data's: a C line each, gcc's minutes for 10,000 rows).
    """

    def __init__(self, split: RowSplit, row: Graph, outer: Graph, plans: list[Plan], backend: Backend,
                 name: str) -> None:
        self.split, self.plans, self.backend, self.name = split, plans, backend, name
        self._row = row
        self._row_vector = optimize(row, passes=DIFFERENTIABLE_VECTOR_PIPELINE)
        self.n_outputs = len(outer.outputs)
        self._computed = [o for o, plan in enumerate(plans) if plan.row_value is None]  # by the outer graph
        self._at = {o: k for k, o in enumerate(self._computed)}
        self._passed = [(o, (plan.row_value[0] - split.n_chains) * split.n_rows + plan.row_value[1])
                        for o, plan in enumerate(plans) if plan.row_value is not None]  # (output, flat value)
        self._outer_graph = _with_outputs(outer, [outer.outputs[o] for o in self._computed])
        self.n_inputs = len(outer.inputs)  # the graph's inputs, each row's values, then each chain's row sum
        self.n_chains = split.n_chains
        self.n_row_outputs = split.n_chains + split.n_values
        self._rows: dict[int, tuple] = {}
        self._outers: dict[int, tuple] = {}
        self._reached: dict[int, tuple[bool, ...]] = {}
        self._all_reached: dict[int, bool] = {}
        # the columns, when all are captured constants: the same (read-only) array every call
        self._table_cols = split.columns(np.empty(0)) if not split.input_index.size else None
        if self._table_cols is not None:
            self._table_cols.flags.writeable = False
        self._lock = forksafe.Lock()
        self._first = self._computed[0]  # the output whose outer program the forward runs
        self.forward_chain = plans[self._first].chain or 0
        self._seed_guess = 0.0  # the last row seed: usually the next one too (1/n for a mean)
        rows_joint, (outer_joint, computed, constants) = self._rows_joint(self.forward_chain), \
            self._outer_joint(self._first)
        kernel, (function, source) = rows_and_outer(backend, self._row_vector, rows_joint, f"{name}_rows",
                                                    self.n_row_outputs, self.n_chains, outer_joint, f"{name}_outer",
                                                    len(self._computed))
        self._rows[self.forward_chain] = self._rows_entry(kernel, rows_joint)
        self._outers[self._first] = self._outer_entry(function, source, computed, constants)
        self.source = "\n".join(part for part in (kernel.source, source) if part)

    def reached(self, output: int) -> tuple[bool, ...]:
        found = self._reached.get(output)
        if found is None:
            plan = self.plans[output]
            if plan.row_value is not None:
                found = tuple(self._rows_of(plan.row_value[0])[2])
            else:
                found = self._outer_of(output)[2]
            if plan.chain is not None:
                found = tuple(a or b for a, b in zip(self._rows_of(plan.chain)[2], found))
            self._all_reached[output] = all(found)
            self._reached[output] = found
        return found

    def forward(self, inputs: list[float], params: np.ndarray) -> tuple[list[float], list]:
        """The outputs, and the state :meth:`gradients` needs (``params``: float64, not written)."""
        params_array = np.asarray(params, dtype=np.float64)
        cols = self._table_cols if self._table_cols is not None else \
            self.split.columns(np.asarray(inputs, dtype=np.float64))
        seed = self._seed_guess
        sums, values, computed = self._rows_of(self.forward_chain)[0].row_sums(cols, params_array, seed,
                                                                               self.split.starts)
        flat = values.ravel().tolist()
        outer_inputs = list(inputs) + flat + sums
        outer = self._outer_of(self._first)[0]
        frame = outer(outer_inputs, params_array if getattr(outer, "takes_arrays", False) else params_array.tolist())
        outputs = list(next(frame))
        if self._passed:  # the outer graph's outputs in their places, the rows' values in theirs
            computed_outputs, outputs = outputs, [0.0] * self.n_outputs
            for o, value in zip(self._computed, computed_outputs):
                outputs[o] = value
            for o, k in self._passed:
                outputs[o] = flat[k]
        return outputs, [cols, params_array, outer_inputs, frame, computed]

    def gradients(self, state: list, output: int, seed: float, starts: list | None = None) -> list[float | None]:
        """``seed`` times the gradient of ``output`` with respect to each param, in the
        scalar program's numbers; None where no gradient reaches a param.  ``starts``: the
        params' ``.grad`` s, which each gradient's sum then starts from, as eager
        ``backward()`` adds each part into them (:mod:`graphc.bridge`)."""
        cols, params, outer_inputs, frame, computed = state
        plan = self.plans[output]
        if plan.row_value is not None:
            return self._row_gradients(plan.row_value, cols, params, seed, starts, output)
        entry = self._outer_of(output)
        function, outer_reached = entry[0], entry[2]
        if output == self._first:
            state[3] = None
        else:
            frame = None
        if frame is None:  # another output, or a second backward() of output 0: run it afresh
            frame = function(outer_inputs, params if getattr(function, "takes_arrays", False) else params.tolist())
            next(frame)
        outer = frame.send(seed)
        frame.close()
        outer_grads = self._params_part(entry, outer)
        begun = None if starts is None else self._outer_from(output, outer_inputs, params, seed, starts)
        if plan.chain is None:
            return _or_none(outer_grads if begun is None else begun, None if all(outer_reached) else outer_reached)
        d_total = float(outer[plan.chain])
        if output == self._first:
            self._seed_guess = d_total
        kernel, _, _, in_rows = self._rows_of(plan.chain)
        first = np.where(plan.before, outer_grads, -0.0) if begun is None else \
            np.where(plan.before, begun, np.asarray(starts, dtype=np.float64))
        grads = kernel.gradients(cols, params, d_total, first, computed if plan.chain == self.forward_chain else None)
        if plan.several_after:  # each outer part added in turn onto the rows' total
            grads = np.where(plan.after, self._outer_from(output, outer_inputs, params, seed,
                                                          np.where(plan.after, grads, 0.0).tolist()), grads)
        elif plan.some_after:
            grads = np.where(plan.after, grads + outer_grads, grads)
        if in_rows is not None:
            grads = np.where(in_rows, grads, outer_grads if begun is None else begun)
        reached = self.reached(output)
        return _or_none(grads, None if self._all_reached[output] else reached)

    def _row_gradients(self, row_value: tuple[int, int], cols: np.ndarray, params: np.ndarray, seed: float,
                       starts: list | None, output: int) -> list[float | None]:
        """The gradient of a row's value returned as it is: the per-row program's on that row
        alone, onto ``starts`` (a param's part is one addition: none is read twice in a row)."""
        value, row = row_value
        first = np.full(len(params), -0.0) if starts is None else np.asarray(starts, dtype=np.float64)
        grads = self._rows_of(value)[0].gradients(cols[:, row:row + 1], params, seed, first, None)
        reached = self.reached(output)
        return _or_none(grads, None if self._all_reached[output] else reached)

    def _outer_from(self, output: int, outer_inputs: list, params: np.ndarray, seed: float,
                    starts: list) -> np.ndarray:
        """The params' gradients of ``output`` by the outer graph, each sum starting from its
        number in ``starts`` (the outer graph's gradient program from starts)."""
        entry = self._outer_of(output, starts=True)
        frame = entry[0](outer_inputs + [0.0] * self.n_inputs + [float(g) for g in starts],
                         params if getattr(entry[0], "takes_arrays", False) else params.tolist())
        next(frame)
        grads = self._params_part(entry, frame.send(seed))
        frame.close()
        return grads

    def _params_part(self, entry: tuple, outer) -> np.ndarray:
        """The params' gradients from the outer program's gradients (the row sums' first), its
        constant ones put back (:meth:`_outer_joint`)."""
        computed, constants = entry[3], entry[4]
        grads = constants.copy()
        grads[computed] = np.asarray(outer[self.n_chains:], dtype=np.float64)
        return grads

    def _rows_of(self, chain: int) -> tuple:
        """(kernel, source, reached, reached as an array or None if all are) of the per-row
        program differentiating ``chain``."""
        made = self._rows.get(chain)
        if made is None:
            with self._lock:
                made = self._rows.get(chain)
                if made is None:
                    joint = self._rows_joint(chain)
                    made = self._rows[chain] = self._rows_entry(
                        row_kernel(self.backend, self._row_vector, joint, f"{self.name}_rows", self.n_row_outputs,
                                   self.n_chains), joint)
        return made

    def _rows_joint(self, chain: int) -> Graph:
        """The per-row values and the gradient of ``chain``'s: of the row graph re-rolled with
        ``chain``'s output first, whose gradient parts flatten and re-rolling keep in reverse
        mode's order (output 0's: another chain's order let flatten absorb a sum whose operand
        ``chain``'s rows read in between, 1 ulp off eager, a review found)."""
        vector = self._row_vector if chain == 0 else optimize_for_output(self._row, chain,
                                                                         DIFFERENTIABLE_VECTOR_PIPELINE)
        return optimize(autodiff.grad(vector, chain, wrt_inputs=False), passes=JOINT_VECTOR_PIPELINE)

    def _rows_entry(self, kernel, joint: Graph) -> tuple:
        reached = _reached(joint, self.n_row_outputs)
        return kernel, kernel.source, reached, None if all(reached) else np.array(reached, dtype=bool)

    def _outer_of(self, output: int, starts: bool = False) -> tuple:
        """(function, source, reached, computed, constants) of the outer graph's forward and
        gradient of ``output`` with respect to the row sums and params (``reached``: the
        params', as ``computed``, a mask; ``constants``: the others' numbers); ``starts``: each
        gradient's sum starting from an input of its own, after the graph's."""
        key = (output, True) if starts else output
        made = self._outers.get(key)
        if made is None:
            with self._lock:
                made = self._outers.get(key)
                if made is None:
                    joint, computed, constants = self._outer_joint(output, starts)
                    made = self._outers[key] = self._outer_entry(
                        *outer_function(self.backend, joint, f"{self.name}_outer", len(self._computed)),
                        computed, constants)
        return made

    @staticmethod
    def _outer_entry(function, source: str, computed: np.ndarray, constants: np.ndarray) -> tuple:
        return function, source, tuple(computed.tolist()), computed, constants

    def _outer_joint(self, output: int, starts: bool = False) -> tuple[Graph, np.ndarray, np.ndarray]:
        """The outer graph's forward and the gradient of ``output`` with respect to the row sums
        and the params, re-rolled where it runs as a native program of one row (an L2 term:
        one dot product); and which params' gradients it computes, and the others' constants
        (no line of the program each: the outer C of a loss without an L2 term wrote a 0.0 for
        every param in every row, gcc's 7 of 8 s for 1,185 params, an outside hunt)."""
        joint = autodiff.grad(self._outer_graph, self._at[output], wrt_inputs=True, starts=starts)
        n_forward = len(self._computed)
        first_sum = n_forward + self.n_inputs - self.n_chains
        joint = _with_outputs(joint, joint.outputs[:n_forward] + joint.outputs[first_sum:])
        joint = optimize(joint, passes=JOINT_VECTOR_PIPELINE) if self.backend.native_kernels else optimize(joint)
        grads = joint.outputs[n_forward + self.n_chains:]
        computed = np.array([joint.ops[o] != "const" for o in grads], dtype=bool)
        constants = np.array([0.0 if c else joint.attrs[o][0] for o, c in zip(grads, computed)], dtype=np.float64)
        kept = joint.outputs[:n_forward + self.n_chains] + [o for o, c in zip(grads, computed) if c]
        return _with_outputs(joint, kept), computed, constants


class RowsCall:
    """One call's state, answering the eager bridge (:mod:`graphc.bridge`): ``backward()`` on
    the call's output runs :meth:`RowsProgram.gradients` with the output's grad."""

    __slots__ = ("program", "state", "name", "values")
    #: backward() into .grads holding numbers starts each param's sum from its .grad
    from_starts = True

    def __init__(self, program: RowsProgram, inputs: list[float], params: np.ndarray, name: str) -> None:
        self.program, self.name = program, name
        self.values, self.state = program.forward(inputs, params)

    def label(self, index: int) -> str:
        return f"{self.name}[{index}]"

    def gradients(self, index: int, seed: float, starts: list | None = None) -> list[float | None]:
        return self.program.gradients(self.state, index, seed, starts)


def _with_outputs(graph: Graph, outputs: list[int]) -> Graph:
    """``graph`` (its nodes shared) computing ``outputs``."""
    return Graph(graph.ops, graph.args, graph.attrs, graph.inputs, graph.params, outputs,
                 param_values=graph.param_values, in_tree=graph.in_tree, out_tree=graph.out_tree, name=graph.name)


def _or_none(grads: np.ndarray, reached: tuple[bool, ...] | None) -> list[float | None]:
    """The gradients as floats, None where none reaches (``reached`` None: every param)."""
    values = grads.tolist()
    return values if reached is None else [g if r else None for g, r in zip(values, reached)]


def _reached(joint: Graph, n_forward: int) -> list[bool]:
    return [joint.ops[o] != "const" for o in joint.outputs[n_forward:]]


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


def _reaches_a_param(row: Graph, output: int) -> bool:
    """Whether a gradient flows from row output ``output`` to some param (not from a
    comparison's 0/1, whose derivative is zero)."""
    _, receives = _contributions(row, output)
    return any(p in receives for p in row.params)


def _plan(outer: Graph, output: int, rows_inputs: list[int], live: list[bool], value_inputs: dict[int, int],
          split: RowSplit) -> Plan | None:
    """For each param, where the outer graph's gradient contributions to ``output`` arrive
    relative to the rows' in reverse mode: "before" or "after" (any number), or none; None
    if some param has them on both sides, if the gradients of two chains' rows reach
    ``output``, or if a row's value gets one and is not ``output`` itself.  Reverse mode
    processes nodes in reversed eager order; a chain's row-sum input stands where its rows'
    block was."""
    n = len(outer.params)
    node = outer.outputs[output]
    if node in value_inputs:  # value-major: the row program's output after the chains', then the row
        value, row = divmod(value_inputs[node], split.n_rows)
        return Plan(None, np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), False,
                    row_value=(split.n_chains + value, row))
    order, receives = _contributions(outer, output)
    if not receives.keys().isdisjoint(value_inputs):
        return None
    chains = [j for j, node in enumerate(rows_inputs) if node in receives and live[j]]
    if len(chains) > 1:
        return None
    if not chains:
        return Plan(None, np.ones(n, dtype=bool), np.zeros(n, dtype=bool), False)
    cut = order.index(rows_inputs[chains[0]])
    before, after = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    several = False
    for k, p in enumerate(outer.params):
        senders = receives.get(p, ())
        n_after = sum(position < cut for position in senders)
        if n_after and len(senders) > n_after:
            return None
        before[k], after[k] = n_after == 0 and bool(senders), n_after > 0
        several |= n_after > 1
    return Plan(chains[0], before, after, bool(after.any()), several)


def _contributions(graph: Graph, output: int) -> tuple[list[int], dict[int, list[int]]]:
    """The cone of ``output`` in eager order, and for each node that receives gradient
    contributions in reverse mode, the positions (in that order) of the nodes sending them."""
    args = graph.args
    order = depth_first((graph.outputs[output],), args.__getitem__)
    receives: dict[int, list[int]] = {graph.outputs[output]: []}
    for position in range(len(order) - 1, -1, -1):
        i = order[position]
        if i not in receives or not args[i]:
            continue
        for a, flow in zip(args[i], _flows(graph.ops[i], graph.attrs[i], len(args[i]))):
            if flow:
                receives.setdefault(a, []).append(position)
    return order, receives


@functools.lru_cache(maxsize=None)
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
