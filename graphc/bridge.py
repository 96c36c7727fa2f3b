"""The bridge from compiled programs to eager Values: each output is one eager node.

A compiled call's output node has the Value arguments and the params as children, and
its op is a :class:`_CompiledOp` whose backprop runs the generated gradient code; so
``loss.backward()`` works as in micrograd, composes with eager Values (``compiled(x) +
l2``), and accumulates into every param's ``.grad``.  Forward and backward share one
generator frame: the call runs it up to its ``yield``, ``backward()`` resumes it.  A
``mean`` node is the same op over gradients computed with the value.

On a backend that runs scalar calls on one row (C: :attr:`graphc.backends.Backend.one_row`)
a :class:`_OneRow` stands in for the frame: the call runs the batched forward program on a
batch of one row, ``backward()`` the batched gradient program with the output's grad as
seed.

``backward()`` into a ``.grad`` that already holds a number (gradients accumulated over
calls) runs a gradient program whose sums start from the ``.grad`` s
(:func:`graphc.autodiff.grad`'s ``starts``), so each part is added as eager adds it.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from . import forksafe, logs
from .backends import Program
from .engine import Value, _node
from .rows_program import RowsCall
from .signature import Signature
from .tree import unflatten


class _Call:
    """One call's inputs, params and suspended forward frame, kept for backward()."""

    __slots__ = ("signature", "inputs", "params", "value_args", "_pending", "_lock")
    from_starts = True  # its gradients can start from the .grads (see _CompiledOp.backprop)

    def __init__(self, signature: Signature, inputs: list, params: list, value_args: list[int]) -> None:
        self.signature = signature
        self.inputs, self.params, self.value_args = inputs, params, value_args
        self._pending = None  # the generator suspended after the forward part of output 0
        self._lock = threading.Lock()

    def forward(self) -> tuple:
        signature = self.signature
        frame = signature.run(signature.program(0, wrt_inputs=bool(self.value_args)))(self.inputs, self.params)
        values = next(frame)
        self._pending = frame
        return values

    def label(self, index: int) -> str:
        return f"{self.signature.name}[{index}]"

    def gradients(self, output: int, seed: float, starts: list | None = None) -> Sequence[float | None]:
        """seed * d(output)/d(each Value argument, then each param); None where no gradient
        reaches it (see :attr:`graphc.backends.Program.reached`).  ``starts``: the children's
        ``.grad`` (Value arguments, then params), which each sum then starts from, as eager
        ``backward()`` adds into them."""
        wrt_inputs = bool(self.value_args)
        program = self.signature.program(output, wrt_inputs, starts is not None)
        frame = None
        if output == 0 and starts is None:
            with self._lock:
                frame, self._pending = self._pending, None
        if frame is None:  # another output, output 0 a second time, or from starts: run it afresh
            inputs = self.inputs if starts is None else \
                self.inputs + _wrt_starts(starts, self.value_args, len(self.inputs))
            frame = program.function(inputs, self.params)
            next(frame)
        grads = frame.send(seed)
        frame.close()
        return _chosen(grads, program, self.value_args, len(self.inputs))


class _OneRow:
    """One call run by the backend's batched programs on a batch of one row: the forward
    now, each output's gradient at its backward() (afresh each time, as :class:`_Call`
    does for all but the first)."""

    __slots__ = ("signature", "cols", "params", "value_args")
    from_starts = True

    def __init__(self, signature: Signature, inputs: list, params: list, value_args: list[int]) -> None:
        self.signature, self.value_args = signature, value_args
        self.cols = np.array(inputs, dtype=np.float64).reshape(len(inputs), 1)
        self.params = np.fromiter(params, np.float64, len(params))

    def forward(self) -> list[float]:
        signature = self.signature
        per_row, _ = signature.run(signature.one_row_program(None, False))(self.cols, self.params, 0.0, 1)
        return [value for row in per_row for value in row.tolist()]

    def label(self, index: int) -> str:
        return f"{self.signature.name}[{index}]"

    def gradients(self, output: int, seed: float, starts: list | None = None) -> Sequence[float | None]:
        """As :meth:`_Call.gradients`."""
        wrt_inputs = bool(self.value_args)
        program = self.signature.one_row_program(output, wrt_inputs, starts is not None)
        cols = self.cols if starts is None else np.concatenate(
            [self.cols, np.array(_wrt_starts(starts, self.value_args, len(self.cols))).reshape(-1, 1)])
        _, grads = program.function(cols, self.params, seed, 1)
        return _chosen(grads.tolist(), program, self.value_args, len(self.cols))


def _wrt_starts(starts: list, value_args: list[int], n_inputs: int) -> list[float]:
    """Each gradient's start in the joint graph's order (every input's, if there are Value
    arguments, then every param's) from ``starts`` (the Value arguments', then the params'):
    an input that is no Value argument starts from 0.0 (none of its gradient is used)."""
    if not value_args:
        return [float(g) for g in starts]
    inputs = [0.0] * n_inputs
    for k, g in zip(value_args, starts):
        inputs[k] = float(g)
    return inputs + [float(g) for g in starts[len(value_args):]]


def _chosen(grads: Sequence[float], program: Program, value_args: list[int],
            n_inputs: int) -> Sequence[float | None]:
    """The gradients of the Value arguments, then the params', from ``grads`` (every input's if
    there are Value arguments, then every param's); None where none reaches (``reached``)."""
    reached = program.reached
    if not value_args and False not in reached:  # the common case, without a loop in Python
        return grads
    slots = value_args + list(range(n_inputs if value_args else 0, len(grads)))
    return [grads[k] if reached[k] else None for k in slots]


class _Mean:
    """A ``mean`` node's gradients, computed with its value: backward only scales them."""

    __slots__ = ("name", "grads")
    from_starts = False  # the mean of rows has no eager order of its own to keep

    def __init__(self, name: str, grads: Sequence[float | None]) -> None:
        self.name, self.grads = name, grads

    def label(self, index: int) -> str:
        return f"mean({self.name})"

    def gradients(self, index: int, seed: float) -> list[float | None]:
        """The mean's gradients times ``seed``, added into the ``.grad`` s as they are (the mean
        of rows has no eager order of its own to keep: ``mean_and_grad``'s numbers)."""
        return [None if d is None else seed * d for d in self.grads]


class _CompiledOp:
    """The op of a compiled output's node in the eager graph: backprop adds the gradients
    its source (a :class:`_Call` or a :class:`_Mean`) gives for output ``index``.
    ``over_leaves``: every child is a leaf, so ``backward()`` has no graph to order."""

    __slots__ = ("source", "index", "over_leaves")

    def __init__(self, source: _Call | _OneRow | _Mean, index: int, over_leaves: bool) -> None:
        self.source, self.index, self.over_leaves = source, index, over_leaves

    def label(self, attr: tuple = ()) -> str:
        return self.source.label(self.index)

    def __reduce__(self):
        """Refused, saying so: pickle and ``copy.deepcopy`` of a compiled output raised
        "cannot pickle '_thread.RLock' object" (an outside hunt), as PyTorch refuses to
        deepcopy a tensor that is not a leaf."""
        raise TypeError(f"{self.label()} is the output of a compiled call, whose history is the compiled program "
                        f"(its libraries and locks): it does not pickle or copy. Keep its number (out.data), or "
                        f"Value(out.data) for a new leaf")

    def backprop(self, out: Value) -> None:
        children = out._prev
        if self.source.from_starts:
            for _ in range(_STARTS_TRIES):
                starts = [child.grad for child in children]
                if not all([isinstance(g, (int, float)) for g in starts]) or not any(starts):
                    break  # zeroed (the usual case), or .grads of other types: added as one total
                totals = self.source.gradients(self.index, out.grad, starts)  # each sum starts at its .grad
                with _GRADS_WRITTEN:  # the check and the writes as one: no other thread's write between
                    if all([child.grad is g for child, g in zip(children, starts)]):  # no other thread wrote one
                        for child, g in zip(children, totals):
                            if g is not None:
                                child.grad = g
                        return
        parts = self.source.gradients(self.index, out.grad)
        with _GRADS_WRITTEN:
            for child, g in zip(children, parts):
                if g is not None:
                    child.grad += g


#: How often a backward() from the .grads' numbers is run again when another thread wrote a
#: .grad meanwhile (the C program runs without the GIL), before it adds one total instead.
_STARTS_TRIES = 4
#: Held while compiled outputs' backward() writes .grads: a check that no other thread wrote
#: and the writes after it, or a ``+=``, were interleaved by a thread switch, and a total was
#: lost (700 for 800 in a fresh clone's test run on one busy core).
_GRADS_WRITTEN = forksafe.Lock()


def call(signature: Signature, leaves: list, value_args: list[int]) -> Any:
    """The compiled function on flat arguments ``leaves``, of which those at ``value_args``
    are Values: Values in its output structure."""
    if signature.guards.argument_kinds:  # n == 2 traced for an int n, a Value's == for a Value, ...
        failure = signature.guards.check_arguments(leaves)
        if failure is not None:
            return failure
    if not signature.n_outputs:  # fn returned an empty structure, deciding nothing: nothing to run
        return unflatten(signature.out_tree, iter(()))
    inputs = [x._data if isinstance(x, Value) else float(x) for x in leaves] if value_args else \
        np.fromiter(leaves, np.float64, len(leaves)).tolist()  # each float(x), in C
    rows = None if value_args else signature.rows  # rows run only on the data the trace captured
    if value_args and signature.rows_said is False:
        signature.rows_said = True
        logs.rows(signature.name, "the scalar program runs: a call with Value arguments (their gradients too)")
    if rows is not None:
        signature.latest_source = rows.source
        run = RowsCall(rows, inputs, signature.param_data(None, array=True), signature.name)
        values = run.values
    else:
        params = [p._data for p in signature.params]
        run = (_OneRow if signature.backend.one_row else _Call)(signature, inputs, params, value_args)
        values = run.forward()
    guards = signature.guards
    if guards.expected:  # a failed guard is returned: the caller tries another variant or retraces
        failure = guards.check(values)
        if failure is not None:
            return failure
    prev = tuple(leaves[k] for k in value_args) + signature.param_tuple
    over_leaves = signature.params_are_leaves and not any(leaves[k]._prev for k in value_args)
    outputs = [_node(v, prev, _CompiledOp(run, k, over_leaves)) for k, v in enumerate(values[:guards.n_outputs])]
    if guards.kinds is not None:  # plain numbers where fn returned numbers it computed (a comparison, ...)
        outputs = guards.plain_numbers(outputs)
    return unflatten(signature.out_tree, iter(outputs))


def mean_node(signature: Signature, value: float, grads: Sequence[float]) -> Value:
    """A Value of ``value`` whose backward adds ``grads`` (scaled) into the params' ``.grad``."""
    reached = signature.batched_program("mean").reached
    if False in reached:  # else every gradient stands, without a loop in Python
        grads = [g if r else None for g, r in zip(grads, reached)]
    return _node(value, signature.param_tuple, _CompiledOp(_Mean(signature.name, grads), 0, signature.params_are_leaves))
