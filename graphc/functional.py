"""Functional forms for JAX users: ``grad``, ``value_and_grad``, ``make_graph`` and ``stop_gradient``.

Thin layers over :func:`graphc.compile` and :func:`graphc.trace`:

* ``grad(fn)(x, ...)`` is d fn / d x for a scalar-valued ``fn``, shaped like ``x`` (a float
  for a number, an array for an array, the same lists, tuples and namedtuples), as
  ``jax.grad``; ``argnums`` picks the arguments, 0 by default, a tuple gives a tuple.
* ``value_and_grad(fn)(x, ...)`` is ``(fn(x, ...), grad(fn)(x, ...))`` from one call.
* ``has_aux=True``, as JAX's: ``fn`` returns ``(value, aux)``; ``grad`` returns ``(gradient,
  aux)`` and ``value_and_grad`` ``((value, aux), gradient)``.
* ``make_graph(fn)(*args)`` is the traced and optimized :class:`~graphc.Graph`, which
  prints like ``jax.make_jaxpr``; ``make_graph(grad(fn))(*args)`` is the forward +
  gradient graph.
* ``stop_gradient(x)`` is ``x.detach()``: x's value, through which no gradient flows back.

They are pure, as in JAX: gradients are taken with respect to the *arguments* only.
Values ``fn`` reads without receiving them (a model's params) are used at their current
``.data`` but not differentiated, and their ``.grad`` is left as it was.  For gradients
with respect to a model's params use ``loss.backward()`` or ``Compiled.mean_and_grad``.

Inside a trace (``grad(grad(f))``, ``compile(grad(f))``) ``grad`` differentiates into the
trace (:meth:`GradFunction._traced_call`), so they nest as JAX's do.
"""
from __future__ import annotations

import functools
import numbers
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from . import autodiff
from .compile import Compiled, positional
from .engine import Value, current_record, is_tracing
from .errors import ArgumentError, GraphcError
from .graph import Graph
from .interpret import replay
from .nn import Module
from .passes import FLAT_DIFFERENTIABLE_PIPELINE, optimize as optimize_graph
from .trace import argument_names, is_plain_number, trace_with_record, warn_assumptions
from .guards import froze_numbers
from .traced import PLAIN_CONSTANT, TracedNumber
from .tree import SCALAR, describe, flatten_args, flatten_output, unflatten

ArgNums = int | Sequence[int]


class GradFunction:
    """What :func:`grad` and :func:`value_and_grad` return: call it like ``fn``.

    ``compiled`` is the :class:`~graphc.Compiled` it runs (its ``source``, ``trace_count``).
    """

    def __init__(self, fn: Callable, argnums: ArgNums, with_value: bool, numerics: str, has_aux: bool = False) -> None:
        self.many = not isinstance(argnums, (int, np.integer))
        given = (argnums,) if not self.many else tuple(argnums) if isinstance(argnums, Sequence) else ()
        if not given or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in given):
            raise ArgumentError(f"argnums must be an int or a non-empty tuple of ints; got {argnums!r}")
        if not isinstance(has_aux, bool):
            raise ArgumentError(f"has_aux must be True or False; got {has_aux!r}")
        self.argnums = tuple(int(k) for k in given)
        self.fn, self.with_value, self.has_aux = fn, with_value, has_aux
        self.compiled = Compiled(fn, numerics=numerics)
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args: Any, **kwargs: Any):
        """fn's value and/or its gradient with respect to the ``argnums`` arguments (positional,
        as JAX's: keyword arguments are passed on, not differentiated)."""
        for k in self.argnums:
            if not -len(args) <= k < len(args):
                raise ArgumentError(f"argnums {k} is out of range: {self.compiled.name} was given {len(args)} "
                                    f"positional argument(s)")
        argnums = tuple(k % len(args) for k in self.argnums)
        if kwargs:
            args = positional(self.fn, args, kwargs)
        if is_tracing():
            return self._traced_call(args, argnums)
        args, names = list(args), argument_names(self.fn, len(args))
        wrt = {}  # argument number -> (its tree, the Values standing in for its leaves)
        for k in dict.fromkeys(argnums):
            leaves, (_, (tree,)), _ = flatten_args((args[k],), [names[k]])
            values = [Value(leaf.data if isinstance(leaf, Value) else leaf) for leaf in leaves]
            wrt[k] = (tree, values)
            args[k] = unflatten(tree, iter(values))  # an array as nested lists: what fn receives anyway
        result = self.compiled(*args)
        out_tree = self.compiled._require_latest().out_tree  # the call's own signature: no graph optimized for it
        out, aux = result, None
        if self.has_aux:
            _aux_pair(self.compiled.name, out_tree)
            out, aux = result
        guards = self.compiled._require_latest().guards
        if not isinstance(out, Value) or (guards.kinds is not None and _no_gradient(guards.kinds[0], guards.froze_numbers)):
            raise GraphcError(_not_a_value(self.compiled.name, out_tree, self.has_aux))
        others = [leaf for k, arg in enumerate(args) if k not in wrt  # Values passed, not differentiated
                  for leaf in flatten_args((arg,), [names[k]])[0] if isinstance(leaf, Value)]
        _backward_keeping_grads(out, self.compiled.params + others)
        grads = tuple(_like(*wrt[k]) for k in argnums)
        return self._result(out.data, _floats(aux) if self.has_aux else None, grads)

    def _result(self, value: Any, aux: Any, grads: tuple) -> Any:
        """What JAX returns: grads (a tuple for a tuple of argnums), ``(value, grads)`` for
        value_and_grad, with ``has_aux`` ``(grads, aux)`` and ``((value, aux), grads)``."""
        grads = grads if self.many else grads[0]
        if self.with_value:
            return ((value, aux) if self.has_aux else value), grads
        return (grads, aux) if self.has_aux else grads

    def _traced_call(self, args: tuple, argnums: tuple[int, ...]):
        """The call inside a trace (``grad(grad(f))``, ``compile(grad(f))``): fn traced on its
        own, its gradient graph (:func:`graphc.autodiff.grad`) replayed on the outer trace's
        Values (:func:`graphc.interpret.replay`), so the gradient is part of what the outer
        trace records -- live for every input, and differentiable again.  Gradients of arrays
        come as nested lists of Values; the value as a Value."""
        names = argument_names(self.fn, len(args))
        leaves, in_tree, _ = flatten_args(args, names)
        leaves = [leaf.node if isinstance(leaf, TracedNumber) else leaf for leaf in leaves]
        supply = iter(leaves)
        args = tuple(unflatten(t, supply) for t in in_tree[1])
        params = self.fn.parameters() if isinstance(self.fn, Module) else None
        graph, record, kinds = trace_with_record(self.fn, *args, params=params, name=self.compiled.name,
                                                 guards=True)
        n_guards = len(record.guards)
        n_outputs = len(graph.outputs) - n_guards  # fn's own; then one 0/1 output per guard
        value_tree, aux_tree = _aux_pair(self.compiled.name, graph.out_tree) if self.has_aux else (graph.out_tree, None)
        if value_tree != SCALAR or _no_gradient(kinds[0], froze_numbers(record.guards)):
            raise GraphcError(_not_a_value(self.compiled.name, graph.out_tree, self.has_aux))
        stable = self.compiled.numerics == "stable"
        guards = range(n_outputs, n_outputs + n_guards)
        if stable:  # rewritten before reverse mode, as a call's own graph is: the derivative
            # of log(1 + exp(x)) formed first was nan at x = 800 (an outside hunt)
            graph = optimize_graph(graph, numerics="stable", exact_outputs=guards)
        joint = autodiff.grad(graph, 0, wrt_inputs=True, wrt_params=False)
        if stable:  # and after it, as a call's own gradient is (s * (1 - s) to s(x) * s(-x)): the
            # outer trace's own numerics would not rewrite it (an outside hunt)
            joint = optimize_graph(joint, numerics="stable", exact_outputs=guards)
        outputs = replay(joint, leaves + [1.0])
        outer = current_record()
        if outer is not None:
            outer.absorb(record, outputs[n_outputs:n_outputs + n_guards])
        # .grad starts at 0 and adds the total: 0 + g, which is g but for -0.0
        per_argument = unflatten(in_tree, iter([0.0 + g for g in outputs[n_outputs + n_guards:]]))
        grads = tuple(per_argument[k] for k in argnums)
        aux = None
        if self.has_aux:  # a comparison in aux stays a traced number, as fn's own result would
            aux_leaves = [TracedNumber(v, kind) if isinstance(kind, type) else v
                          for v, kind in zip(outputs[1:n_outputs], kinds[1:])]
            aux = unflatten(aux_tree, iter(aux_leaves))
        return self._result(outputs[0], aux, grads)


def grad(fn: Callable, argnums: ArgNums = 0, *, has_aux: bool = False, numerics: str = "exact") -> GradFunction:
    """``jax.grad``: a function returning the gradient of scalar-valued ``fn`` with respect
    to argument ``argnums`` (an int, or a tuple of them for a tuple of gradients), shaped
    like that argument.  ``has_aux``: ``fn`` returns a pair ``(value, aux)``, and the
    function ``(gradient, aux)``, aux's Values as floats.  Compiled: traced once per
    argument signature, as ``compile``."""
    return GradFunction(fn, argnums, with_value=False, numerics=numerics, has_aux=has_aux)


def value_and_grad(fn: Callable, argnums: ArgNums = 0, *, has_aux: bool = False,
                   numerics: str = "exact") -> GradFunction:
    """``jax.value_and_grad``: a function returning ``(value, gradient)`` of scalar-valued
    ``fn``, the value a float and the gradient as :func:`grad` gives it, from one call;
    with ``has_aux``, ``((value, aux), gradient)``."""
    return GradFunction(fn, argnums, with_value=True, numerics=numerics, has_aux=has_aux)


def stop_gradient(x: Value | float) -> Value | float:
    """``jax.lax.stop_gradient``: ``x.detach()`` for a Value (its value, through which no
    gradient flows back, computed live in a compiled function); a number as it is -- a
    ``.data`` or a number argument while traced too, as eager code holds a number there."""
    if isinstance(x, Value):
        return x if is_plain_number(x) else x.detach()
    if isinstance(x, (numbers.Real, np.number, np.bool_)):
        return x
    raise ArgumentError(f"stop_gradient takes a Value or a number; got {type(x).__name__}")


def make_graph(fn: Callable, *, optimize: bool = True, numerics: str | None = None) -> Callable[..., Graph]:
    """``jax.make_jaxpr``: a function of example arguments returning the Graph ``compile``
    would run for them -- traced, then optimized unless ``optimize=False``.  For a
    :func:`grad` function, the forward + gradient graph (one gradient output per input).
    ``numerics``: by default a :func:`grad` function's own (the graph it runs), else "exact"."""
    target = fn.fn if isinstance(fn, GradFunction) else fn
    if numerics is None:
        numerics = fn.compiled.numerics if isinstance(fn, GradFunction) else "exact"

    def graph_of(*args: Any, **kwargs: Any) -> Graph:
        if kwargs:  # bound as a compiled call binds them (jax.make_jaxpr takes them too)
            args = positional(target, args, kwargs)
        params = target.parameters() if isinstance(target, Module) else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graph, record, kinds = trace_with_record(target, *args, params=params)
            warn_assumptions(record, graph.name)
        for warning in caught:  # said again at the caller's line, not at this one
            warnings.warn(warning.message, warning.category, stacklevel=2)
        if isinstance(fn, GradFunction):  # what grad(fn) would refuse, refused (as jax.make_jaxpr(jax.grad(f)))
            value_tree = _aux_pair(graph.name, graph.out_tree)[0] if fn.has_aux else graph.out_tree
            if value_tree != SCALAR or _no_gradient(kinds[0], froze_numbers(record.guards)):
                raise GraphcError(_not_a_value(graph.name, graph.out_tree, fn.has_aux))
        if optimize:  # as compile does: most passes after differentiation (see FLAT_DIFFERENTIABLE_PIPELINE)
            passes = FLAT_DIFFERENTIABLE_PIPELINE if isinstance(fn, GradFunction) and numerics == "exact" else None
            graph = optimize_graph(graph, passes=passes, numerics=numerics)
        if isinstance(fn, GradFunction):
            graph = autodiff.grad(graph, 0, wrt_inputs=True, wrt_params=False)
            graph = optimize_graph(graph, numerics=numerics) if optimize else graph
        return graph
    return graph_of


def _no_gradient(kind: Any, froze_numbers: bool) -> bool:
    """Whether ``fn``'s value, of output kind ``kind`` (see :func:`graphc.traced.plain_outputs`),
    is a number it computed from traced values, which carries no gradient: a comparison or
    ``.data`` arithmetic (a traced number), or a plain number where the trace turned a
    traced value into one (``math.sin(x)``, through ``float(x)``: its gradient 0 would be
    silently wrong).  A plain constant a branch returns (``else 0.0``) has gradient 0."""
    return isinstance(kind, type) or (kind == PLAIN_CONSTANT and froze_numbers)


def _aux_pair(name: str, out_tree: Any) -> tuple[Any, Any]:
    """The structures of (value, aux) when ``name`` returned, as ``has_aux`` needs and JAX's
    does, a pair: a tuple, list or namedtuple of two."""
    kind, spec = out_tree if isinstance(out_tree, tuple) else (None, None)
    items = spec[1] if kind == "namedtuple" else spec if kind in ("tuple", "list") else ()
    if len(items) != 2:
        raise GraphcError(f"has_aux=True needs a function returning a pair (scalar Value, aux); "
                          f"{name} returns {describe(out_tree)}")
    return items[0], items[1]


def _not_a_value(name: str, out_tree: Any, has_aux: bool = False) -> str:
    """Why grad cannot differentiate what ``name`` returned (``out_tree``)."""
    value_tree = _aux_pair(name, out_tree)[0] if has_aux else out_tree
    if value_tree == SCALAR:  # a number it computed from .data, which carries no gradient
        return (f"grad needs a function returning a Value; {name} returns a plain number (computed from .data or "
                f"float(x), as math.sin(x) does, which carry no gradient: compute with the Values themselves, "
                f"as x.exp())")
    if has_aux:
        return f"grad needs a function returning a pair (scalar Value, aux); {name} returns {describe(out_tree)}"
    hint = " (with has_aux=True, a pair (value, aux))" if out_tree[0] in ("tuple", "list") and len(out_tree[1]) == 2 else ""
    return f"grad needs a function returning one scalar Value{hint}; {name} returns {describe(out_tree)}"


def _backward_keeping_grads(out: Value, kept: list[Value]) -> None:
    """The arguments' gradients: the backward step of the compiled node ``out`` alone (not
    ``out.backward()``, which would go on into the eager graphs that made its params and
    Value arguments), with the ``.grad`` of every Value in ``kept`` (the params, the Values
    passed as arguments not differentiated) put back as it was: these functions are pure,
    as JAX's are."""
    saved = [v.grad for v in kept]
    try:
        out._backpropagate_to_leaves(out._kind)
    finally:
        for v, g in zip(kept, saved):
            v.grad = g


def _floats(aux: Any) -> Any:
    """``aux`` (a result's second item) with each Value as its float, the rest as it is."""
    leaves, tree = flatten_output(aux)
    return unflatten(tree, iter([float(v.data) if isinstance(v, Value) else v for v in leaves]))


def _like(tree: Any, values: list[Value]) -> Any:
    """The gradients in ``values`` in the argument's structure ``tree``: floats, arrays for
    arrays, lists, tuples and namedtuples for those (JAX's pytrees)."""
    return _rebuild(tree, iter([float(v.grad) for v in values]))


def _rebuild(tree: Any, leaves: Any) -> Any:
    if tree == SCALAR:
        return next(leaves)
    kind, spec = tree
    if kind == "array":
        return np.array([next(leaves) for _ in range(int(np.prod(spec, dtype=np.int64)))],
                        dtype=np.float64).reshape(spec)
    if kind == "namedtuple":
        cls, fields = spec
        return cls._make([_rebuild(t, leaves) for t in fields])
    items = [_rebuild(t, leaves) for t in spec]
    return items if kind == "list" else tuple(items)
