"""Running a Graph directly, node by node, without generating code.

Small interpreters over the node lists, each a loop in id order (or its reverse),
so graph depth never meets Python's recursion limit:

* :func:`replay` computes a graph's outputs on Values (inside a trace, the trace records
  them: how :func:`graphc.grad` in a traced function adds its gradient to the trace), and
  :func:`as_function` wraps it as an ordinary Python function that ``graphc.compile`` can
  trace -- how a formula from :func:`graphc.from_sympy` is compiled;
* :func:`evaluate` computes every node's float value (for pictures and checks);
* :func:`backprop` computes every node's gradient with the op table's derivative rules,
  in eager ``backward()``'s order.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Sequence

from . import ops
from .autodiff import reverse_mode_order
from .engine import Value, apply
from .errors import GraphcError, ShapeError
from .graph import Graph
from .names import Namespace
from .tree import SCALAR, flatten_args, unflatten


def as_function(graph: Graph) -> Callable[..., Any]:
    """A function of Values (or numbers) computing ``graph``'s outputs.

    It takes one argument per input when the graph was built from scalars (as
    :func:`graphc.from_sympy` builds it; the arguments are named after the inputs), else
    the structure the graph was traced with.  Params are the graph's live param Values, so
    a compiled version reads them at every call like the original.  The result has the
    graph's output structure.
    """
    if len(graph.param_values) != len(graph.params):
        raise GraphcError(f"as_function: the graph has {len(graph.params)} params but no Values "
                          f"for them (only traced graphs carry param Values)")
    names = graph.names
    flat = graph.in_tree in (None, ("tuple", (SCALAR,) * len(graph.inputs)))
    arg_names = [names[i] for i in graph.inputs] if flat else None

    def function(*args: Any) -> Any:
        leaves, _, _ = flatten_args(args, [f"x{k}" for k in range(len(args))])
        if len(leaves) != len(graph.inputs):
            raise ShapeError(f"{graph.name} takes {len(graph.inputs)} scalar input(s) "
                             f"({', '.join(names[i] for i in graph.inputs)}); got {len(leaves)}")
        outputs = [v if isinstance(v, Value) else Value(v) for v in replay(graph, leaves)]
        if graph.out_tree is None:
            return outputs[0] if len(outputs) == 1 else outputs
        return unflatten(graph.out_tree, iter(outputs))

    function.__name__ = function.__qualname__ = Namespace().create(graph.name, "formula")
    function.__doc__ = f"{graph.name}: {len(graph.inputs)} input(s), {len(graph.outputs)} output(s) (graphc.as_function)."
    if arg_names is not None:
        kind = inspect.Parameter.POSITIONAL_ONLY
        function.__signature__ = inspect.Signature([inspect.Parameter(n, kind) for n in arg_names])
    return function


def replay(graph: Graph, inputs: Sequence[Any]) -> list[Any]:
    """``graph``'s outputs computed on Values: ``inputs`` (Values or numbers) for its inputs, in
    order, its param Values for its params.  Each op is one eager Value op, so inside a
    trace the outputs are part of what that trace records."""
    values: list[Any] = [None] * len(graph)
    for i, leaf in zip(graph.inputs, inputs):
        values[i] = leaf
    for i, p in zip(graph.params, graph.param_values):
        values[i] = p
    for i, op in enumerate(graph.ops):
        if op == "const":
            values[i] = graph.attrs[i][0]
        elif op not in ops.LEAVES:
            values[i] = apply(op, *[values[a] for a in graph.args[i]], attr=graph.attrs[i])
    return [values[o] for o in graph.outputs]


def evaluate(graph: Graph, inputs: Sequence[float], params: Sequence[float] | None = None,
             held: Mapping[int, float] | None = None) -> list[float]:
    """Every node's value, given flat ``inputs`` and ``params`` (default: the param Values' data);
    ``held``: nodes whose value is given instead (check_grad holds ``stop_gradient`` nodes at
    the point, so that finite differences measure the slope reverse mode computes)."""
    if params is None:
        if len(graph.param_values) != len(graph.params):
            raise GraphcError(f"evaluate: give values for the graph's {len(graph.params)} params")
        params = [p.data for p in graph.param_values]
    if len(inputs) != len(graph.inputs) or len(params) != len(graph.params):
        raise ShapeError(f"evaluate: the graph takes {len(graph.inputs)} inputs and {len(graph.params)} "
                         f"params; got {len(inputs)} and {len(params)}")
    values = [0.0] * len(graph)
    for i, x in zip(graph.inputs, inputs):
        values[i] = float(x)
    for i, x in zip(graph.params, params):
        values[i] = float(x)
    held = held or {}
    for i, op in enumerate(graph.ops):
        if i in held:
            values[i] = held[i]
        elif op == "const":
            values[i] = graph.attrs[i][0]
        elif op not in ops.LEAVES:
            values[i] = ops.TABLE[op].eval(*[values[a] for a in graph.args[i]], *graph.attrs[i])
    return values


def backprop(graph: Graph, values: Sequence[float], output: int = 0, seed: float = 1.0) -> list[float]:
    """Every node's gradient ``seed * d(output)/d(node)``, from :func:`evaluate`'s values.

    Contributions are summed in eager ``backward()``'s order, as :mod:`graphc.autodiff` walks
    it (:func:`~graphc.autodiff.reverse_mode_order`: node ids give it for output 0 only, and
    another output's sums were 1 ulp off: an outside hunt), and nodes no gradient reaches
    pass nothing on, as there; they report 0.0.
    """
    if not 0 <= output < len(graph.outputs):
        raise GraphcError(f"backprop: output {output} does not exist; the graph has {len(graph.outputs)}")
    grads: list[float | None] = [None] * len(graph)
    grads[graph.outputs[output]] = float(seed)
    for i in reverse_mode_order(graph, output):
        g, operands = grads[i], graph.args[i]
        if g is None or not operands:
            continue
        op = ops.TABLE[graph.ops[i]]
        cotangents = list(zip(operands, op.vjp(ops.FLOATS, g, values[i], *[values[a] for a in operands],
                                               *graph.attrs[i])))
        for a, c in reversed(cotangents) if op.vjp_reversed else cotangents:
            if c is not None:
                grads[a] = c if grads[a] is None else grads[a] + c
    return [0.0 if g is None else g for g in grads]
