"""Tracing: run a function on placeholder Values and record what it computed as a Graph.

graphc's Values compute eagerly, so tracing is just a run on *placeholders* (Values
holding the example arguments) followed by a walk over the resulting Value DAG:

* placeholders become ``input`` nodes (one per scalar, used or not);
* Values that existed before the call become ``param`` nodes -- compiled code reads their
  ``.data`` at every call and writes their gradients back.  Mostly leaves (a model's
  weights); a Value computed outside (``w2 = a * a``, or an earlier compiled call's
  output) is read as it is, as eager reads it -- not recomputed from ``a`` -- and its
  gradient flows on into its own history in ``backward()``, as eager's does;
* numbers, and leaf Values created inside the function (``Value(x)`` on captured data),
  become ``const`` nodes;
* everything else is an op node, its operands in order.

While a trace runs, new Values are created as :class:`TracedValue`.  Reading ``.data`` of
anything the program computes or reads (placeholders, intermediates, params) gives a
traced number (:mod:`graphc.traced`), and comparing Values a traced boolean: computed live
when used as data, recorded as guards (:mod:`graphc.guards`) when Python decides on them.
``trace`` itself returns the graph of the branch taken, with a
:class:`~graphc.TracerWarning` naming the guards (``graphc.compile`` checks them on every
call) and a :class:`~graphc.FrozenDataWarning` for data frozen into the graph.
"""
from __future__ import annotations

import inspect
import math
import numbers
import operator
import traceback
import warnings
from typing import Any, Callable, Iterable, NoReturn

import numpy as np

from . import engine, ops
from .engine import Value
from .errors import ArgumentError, FrozenDataWarning, TraceError, TracerWarning
from .gcpause import gc_paused
from .graph import Builder, Graph
from .guards import (A_NUMBER, A_VALUE, AN_INT, NN, NOT_AN_INT, Record, placeholder_kind, raised_in_a_library,
                     user_location, user_location_in)
from .names import sanitize
from .nn import Module
from .ops import Op
from .traced import (FLOAT_ATTRIBUTES, TracedNumber, compare, formatting, gradient_free, live_leaf,
                     live_operand, plain_outputs, recorded_comparison)
from .tree import ArrayRows, flatten_args, flatten_output, foreign_value_message, is_foreign_value, unflatten
from .walk import depth_first_through


def _on_plain(op: Callable[[Any, Any], Any], reflected: bool = False) -> Callable:
    """A traced Value's ``op`` where eager code holds a number: on that number
    (:meth:`TracedValue._plain`, specialized to its value), NotImplemented for a Value (which
    lacks ``//``, ``%``, ``&``, ...: Python's TypeError, as for a Value)."""
    def method(self: "TracedValue", other: Any) -> Any:
        x = self._plain()
        if x is None:
            return NotImplemented
        return op(other, x) if reflected else op(x, other)
    method.__name__ = f"{'r' * reflected}{op.__name__}"
    return method


class TracedValue(Value):
    """A Value created during a trace.  The engine asks its class how this thread reads
    ``.data`` and compares Values while it traces (:meth:`read_data`, :meth:`compare`)."""

    __slots__ = ()
    #: Value's own slot: while a trace runs, ``Value.grad`` is a property refusing writes to
    #: the Values made before it (see ``engine._TRACED_GRAD``); the trace's own, made by the
    #: hundred thousand, keep the slot's speed.
    grad = engine._GRAD_SLOT

    @staticmethod
    def read_data(v: Value, by_user: bool = True) -> float | TracedNumber:
        """``v.data``: a constant's number, or a traced number of anything the program
        computes or reads (placeholders, op results, params and captured Values).
        ``by_user``: the function reads it, so eager code holds a Value there (not a
        conversion, ``float(x)``, which a number takes too)."""
        argument = any(v._attr is marker for marker in engine.PLACEHOLDERS)
        if v._kind is None and (v._attr is engine.CONSTANT or (isinstance(v, TracedValue) and not argument)):
            return v._data
        record = engine.current_record() if argument and by_user else None
        if record is not None:
            if record.read_argument_data(v):
                v._attr = engine.PLACEHOLDER  # a Value argument from now on
            record.data_read.add(id(v))
        return TracedNumber(v, float)

    @staticmethod
    def write_data(v: Value, value: Any) -> None:
        """``v.data = value`` while tracing: refused.  The program would run the write only
        while it is traced, and every later call would compute with what the write replaced."""
        whose = f"the .data of {v.label!r}" if v.label else "a Value's .data"
        raise TraceError(f"{user_location()}: the function writes {whose} while it is traced: a compiled "
                         f"function computes its Values on every call but would make such a write only "
                         f"once, at the trace. Update params outside the function (as micrograd's training "
                         f"loop does), or compute a new Value (-(-w).max(-1.0) for min(w, 1)) instead of "
                         f"overwriting a number")

    @staticmethod
    def write_grad(v: Value) -> None:
        """``v.grad = ...`` (``zero_grad()``) on a Value made before the trace, while tracing:
        refused, as a ``.data`` write is."""
        whose = f"the .grad of {v.label!r}" if v.label else "a .grad"
        raise TraceError(f"{user_location(NN)}: the function writes {whose} while it is traced (zero_grad() "
                         f"inside it?): the write would be made once, at the trace, and later calls' gradients "
                         f"would add onto what it left. Zero the gradients outside the compiled function, "
                         f"before each backward(), as micrograd's training loop does")

    @staticmethod
    def refuse_backward() -> None:
        """``backward()`` while tracing: refused (it would run once, at the trace)."""
        raise TraceError(f"{user_location()}: backward() inside the traced function would run once, at the "
                         f"trace, and no later call would write gradients. Return the loss and call backward() "
                         f"on the compiled function's output, outside it")

    compare = staticmethod(compare)
    live_operand = staticmethod(live_operand)
    live_leaf = staticmethod(live_leaf)

    @staticmethod
    def plain_number(v: Value) -> bool:
        return is_plain_number(v)

    @staticmethod
    def plain_arithmetic(op: Op, a: Value, b: Any, reflected: bool) -> TracedNumber | None:
        """``a op b`` (``b op a`` if ``reflected``) where eager code holds two plain numbers --
        ``a`` a number argument or arithmetic of them, ``b`` a traced number (a ``.data``, a
        comparison) -- as traced numbers, computed live as eager computes on floats; None
        otherwise.  A Value's operator would take the ``.data`` as an operand and guard its
        exact number (an outside hunt: ``if yi * s.data < 1`` retraced on every call, up to
        the cap).  Not for an argument whose ``.data`` the function reads (``min(a.data,
        b.data) * a``): eager code holds a Value there, whatever this call passes; nor for a
        traced number computed from number arguments alone (``x * (1 + x).log().data``: a
        float has no ``log``, so eager code holds Values); nor for one no gradient flows
        through (a comparison), which a Value's operator computes live already -- and a
        library that makes its numbers Values (a loss given number arguments as logits) gets
        the Value it computes with in eager code."""
        compute = _PLAIN_ARITHMETIC.get(op.name)
        if compute is None or type(b) is not TracedNumber or not _numbers_alone(a, b):
            return None
        record = engine.current_record()
        if id(a) in record.data_read or gradient_free(b) or not _reaches_a_value(b.node, record.kinds_of, record):
            return None
        mine = a._as_number()
        return compute(b, mine) if reflected else compute(mine, b)

    def __index__(self) -> int:
        """An int argument used as an index, a size or a count (``X[:batch_size]``,
        ``range(n)``, ``[0.0] * n``), as eager code uses the int -- or what eager code holds
        as an int computed from int arguments (``X[i - 1]``, ``range(n + 1)``, ``2 * n``):
        the program is specialized to its value, with a guard that retraces for another, as
        ``torch.compile`` does with ints.  A float argument or any other Value is no index,
        in eager code either."""
        arguments = _int_arguments(self)
        if arguments is None:
            what = f"argument {self.label} (a float)" if self._attr is engine.NUMBER_PLACEHOLDER else "a Value"
            raise TypeError(f"{user_location()}: {what} used as an index, a size or a count, which takes an "
                            f"int (as in eager code)")
        record = engine.current_record()
        for node in arguments if record is not None else ():
            record.relied_on_kind(node, AN_INT)  # a float of the same value is no index
        if formatting():  # "%x" % n: text, as an f-string's
            return int(TracedNumber(self, int).for_text())
        return int(TracedNumber(self, float)._frozen("an index"))

    # A number argument, and what eager code computes from numbers alone (n + 1, -x, x / 2), is a
    # plain number there, though a Value here: its truth, == and != (and so `in` a list) are the
    # number's, each a traced number or a guard as for a Value's .data (graphc.traced).  Every
    # other Value keeps micrograd's: always true, == by identity.

    def __bool__(self) -> bool:
        return bool(TracedNumber(self, float)) if _number_valued(self) else True

    def _equality(self, other: Any, op: str) -> Any:
        if not _number_valued(self):
            return NotImplemented
        if isinstance(other, TracedNumber):
            other = other.node
        elif isinstance(other, Value):
            if not (isinstance(other, TracedValue) and _number_valued(other)):
                return NotImplemented  # a number and a Value: by identity, as in eager code
        elif not isinstance(other, numbers.Real):
            return NotImplemented
        return recorded_comparison(operator.eq if op == "eq" else operator.ne, self, other)

    def __eq__(self, other: Any) -> Any:
        return self._equality(other, "eq")

    def __ne__(self, other: Any) -> Any:
        return self._equality(other, "ne")

    # Turned into text they are the number's text (str(n) was "Value(data=2.0, grad=0)", an
    # outside hunt), the trace's number, as a .data's text is (said once, at compile).

    def __repr__(self) -> str:
        return repr(self._as_number()) if _number_valued(self) else Value.__repr__(self)

    def __format__(self, spec: str) -> str:
        return format(self._as_number(), spec) if _number_valued(self) else Value.__format__(self, spec)

    def _as_number(self) -> TracedNumber:
        """The number eager code holds here, as a traced number of its type (int or float)."""
        return TracedNumber(self, int if _int_arguments(self) is not None else float)

    # In a compiled call their arithmetic is Python's where micrograd's differs: x / y divides
    # (micrograd's is x * y**-1, an ulp off on a quarter of quotients: an outside hunt found
    # branches on x / y flipped), and x - 0 keeps x's -0.0 (micrograd's is x + (-0), +0.0).

    def __mul__(self, other: Any) -> Any:
        return _int_product(Value.__mul__(self, other), self, other)

    # A subclass's reflected method goes first (w * x with w a param would be x.__rmul__(w),
    # recording mul(x, w)): a Value on the left answers, as before there was one.

    def __rmul__(self, other: Any) -> Any:
        if isinstance(other, Value):
            return NotImplemented
        return _int_product(Value.__rmul__(self, other), self, other)

    def __truediv__(self, other: Any) -> Any:
        if not _numbers_alone(self, other):
            return Value.__truediv__(self, other)
        plain = self.plain_arithmetic(_TRUEDIV, self, other, False)
        return engine.apply("truediv", self, other) if plain is None else plain

    def __rtruediv__(self, other: Any) -> Any:
        if isinstance(other, Value):
            return NotImplemented
        if not _numbers_alone(self, other):
            return Value.__rtruediv__(self, other)
        plain = self.plain_arithmetic(_TRUEDIV, self, other, True)
        return engine.apply("truediv", other, self) if plain is None else plain

    def __sub__(self, other: Any) -> Any:
        if type(other) in engine.INTEGERS and not other and _numbers_alone(self, other):
            return engine.apply("sub", self, 0.0)
        return Value.__sub__(self, other)

    #: A Value's identity hash, even for a number: the trace itself keys its dicts by Values (a
    #: hash in Python would cost every one of them), so a number argument used as a dict key or
    #: set member is not found there (README, "Differs from eager code")
    __hash__ = Value.__hash__

    # a number argument's //, %, divmod and an int's bitwise ops, which Value lacks: on its value,
    # specialized as an index is (n // 2 in X[:n // 2]); NotImplemented elsewhere, Python's
    # TypeError as for a Value (the bitwise ops raised a raw TypeError: an outside hunt)

    def _plain(self) -> Any:
        """The number eager code holds here, guarded to stay it; None for a Value."""
        if _int_arguments(self) is not None:
            return self.__index__()
        if _number_valued(self):
            return TracedNumber(self, float)._frozen("a number")
        return None

    __floordiv__, __rfloordiv__ = _on_plain(operator.floordiv), _on_plain(operator.floordiv, reflected=True)
    __mod__, __rmod__ = _on_plain(operator.mod), _on_plain(operator.mod, reflected=True)
    __divmod__, __rdivmod__ = _on_plain(divmod), _on_plain(divmod, reflected=True)
    __and__, __rand__ = _on_plain(operator.and_), _on_plain(operator.and_, reflected=True)
    __or__, __ror__ = _on_plain(operator.or_), _on_plain(operator.or_, reflected=True)
    __xor__, __rxor__ = _on_plain(operator.xor), _on_plain(operator.xor, reflected=True)
    __lshift__, __rlshift__ = _on_plain(operator.lshift), _on_plain(operator.lshift, reflected=True)
    __rshift__, __rrshift__ = _on_plain(operator.rshift), _on_plain(operator.rshift, reflected=True)

    def __invert__(self) -> Any:
        x = self._plain()
        if x is None:
            raise TypeError("bad operand type for unary ~: 'Value'")
        return ~x

    def __getattr__(self, name: str) -> Any:
        """A number's own attributes (``x.is_integer()``, ``n.bit_length()``), on its value,
        specialized as // and % are; a Value has none of them."""
        if name in FLOAT_ATTRIBUTES and _number_valued(self):
            return getattr(self._plain(), name)
        raise AttributeError(f"'Value' object has no attribute {name!r}")

    def __round__(self, ndigits: int | None = None) -> Any:  # round(n, -1) of an int: an int (0, not -0.0)
        x = self._plain()
        return Value.__round__(self, ndigits) if x is None else round(x, ndigits)


#: Value arithmetic :meth:`TracedValue.plain_arithmetic` does on traced numbers, by op name.
_PLAIN_ARITHMETIC = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv}
_TRUEDIV = ops.TABLE["truediv"]

#: The ops whose results of ints are ints in eager Python (``**``: by a non-negative int).
_INT_OPS = frozenset({"add", "sub", "mul", "neg", "pow", "abs"})


def _int_arguments(v: Value, limit: int = 100_000, kinds: tuple = (engine.INT_PLACEHOLDER,)) -> list[Value] | None:
    """The int arguments eager code computes the Python int ``v`` holds there from -- an int
    argument, or ``+ - *``, ``abs`` and ``**`` by a non-negative int of int arguments and
    integral numbers (each node looked at once, at most ``limit``: a sum of 40 int arguments
    was a float past the 64 there were, an outside hunt) -- or None where ``v`` is no such int.
    ``kinds``: the placeholders that count as int arguments (both number kinds: the
    arguments that would make ``v`` an int if each were one)."""
    stack, arguments, seen = [v], [], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if len(seen) > limit:
            return None
        if any(node._attr is kind for kind in kinds):
            arguments.append(node)
        elif node._kind is None:
            if node._attr is not engine.CONSTANT or not float(node._data).is_integer():
                return None
        elif node._kind.name in _INT_OPS and (node._kind.name != "pow" or (
                type(node._attr[0]) is int and node._attr[0] >= 0)):  # n ** 2.0 is a float in eager code
            stack.extend(node._prev)
        else:
            return None
    return arguments or None


#: The arguments that would make a product an int if each were one: a Value argument too,
#: since a call may pass an int where the trace had a Value (they share a signature).
_SCALAR_KINDS = engine.PLACEHOLDERS


def _int_product(product: Any, a: Value, b: Any) -> Any:
    """``a * b`` of ints in eager code (a comparison is a bool, an int: ``(y > 0) * y``), an
    int: ``0 * -1`` is 0, where mul gives -0.0 (an outside hunt: ``math.atan2(x * y, -1.0)``
    came out -pi), so +0.0 is added, as a traced number's int product is.  Whether the
    product is an int turns on the arguments' kinds, and ints, floats and Values share a
    signature, so the trace relies on them: an int product on its arguments staying ints, a
    float one on its float and Value arguments not becoming ints (outside hunts: after
    ``c(2, 3)``, ``c(-1.0, 0.0)`` gave 0.0, not -0.0; after ``c(Value(-1.0))``, ``b * 0``
    gave -0.0 for ``c(-1)``, not 0)."""
    if product is NotImplemented:
        return product
    sides = []
    for x in (a, b):  # bounded walks: a * is everywhere
        side = [] if type(x) in engine.INTEGERS or (type(x) is TracedNumber and x.kind is not float) else \
            _int_arguments(x, 64, _SCALAR_KINDS) if isinstance(x, TracedValue) else None
        if side is None:  # a float whatever the arguments' kinds
            return product
        sides.append(side)
    arguments, record = sides[0] + sides[1], engine.current_record()
    if record is None:
        return product
    if not all(node._attr is engine.INT_PLACEHOLDER for node in arguments):
        for node in arguments:  # an int call traces again, to find out
            if node._attr is not engine.INT_PLACEHOLDER:
                record.relied_on_kind(node, NOT_AN_INT)
        return product
    if not _numbers_alone(a, b):  # Value(n) * m: a Value's product
        return product
    for node in arguments:
        record.relied_on_kind(node, AN_INT)
    return engine.apply("add", product, 0.0)


def is_plain_number(v: Value) -> bool:
    """Whether eager code holds a plain number where this trace holds ``v`` (a number
    argument, or arithmetic of them and numbers: see :func:`_number_valued`)."""
    return isinstance(v, TracedValue) and _number_valued(v)


def _numbers_alone(value: Value, other: Any) -> bool:
    """Whether eager code holds plain numbers on both sides of ``value``'s operator: a number
    argument or arithmetic of them (:func:`_number_valued`), and a number, a traced number or
    another such Value."""
    record = engine.current_record()
    if record is None or not record.python_arithmetic:
        return False
    if isinstance(other, Value):
        if not (isinstance(other, TracedValue) and _number_valued(other)):
            return False
    elif not isinstance(other, (numbers.Real, np.number, np.bool_)):
        return False
    return _number_valued(value)


def _number_valued(v: Value) -> bool:
    """Whether eager code holds a plain number where the trace holds ``v``: a number argument,
    or arithmetic of number arguments and numbers only, not ``Value(x)`` of one.  Each node's
    answer is kept for the rest of the trace (:attr:`graphc.guards.Record.kinds_of`), so a sum
    of a thousand number arguments is walked once; a number argument met is noted as relied on
    to be a number, a Value argument as a Value."""
    record = engine.current_record()
    if record is None:
        return False
    known = record.kinds_of  # id -> (node, "number" | "constant" | "value"): the node kept alive
    found = known.get(id(v))
    if found is None:
        if _reaches_a_value(v, known, record):
            return False
        found = _walk_kinds(v, known, record)
    return found[1] == "number"


def _reaches_a_value(v: Value, known: dict, record) -> bool:
    """Whether ``v`` depends on a Value (a param, a Value argument, ``Value(x)``), told at the
    first one met: a loss divided by a count (``sum(losses) / n``) is a Value, and the walk
    of :func:`_walk_kinds` would go through every row of it to say so.  The Value argument
    met is noted as relied on to be a Value (a param is one whatever the call passes)."""
    stack, seen = [v], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        found = known.get(id(node))
        if found is not None:
            if found[1] == "value":
                return True
        elif record.is_wrapped(node):
            return True
        elif node._kind is None:
            if node._attr is engine.PLACEHOLDER:
                record.relied_on_kind(node, A_VALUE)
                return True
            if node._attr is not engine.CONSTANT and node._attr is not engine.INT_PLACEHOLDER \
                    and node._attr is not engine.NUMBER_PLACEHOLDER:
                return True
        elif node._kind.name not in ops.COMPARISONS:  # a comparison is a bool in eager code, of Values too
            stack.extend(node._prev)
    return False


def _walk_kinds(v: Value, known: dict, record) -> tuple[Value, str]:
    """:func:`_number_valued`'s walk: each node's kind after its operands' (no recursion)."""
    stack = [v]
    while stack:
        node = stack[-1]
        if id(node) in known:
            stack.pop()
            continue
        if node._attr is engine.INT_PLACEHOLDER or node._attr is engine.NUMBER_PLACEHOLDER:
            record.relied_on_kind(node, A_NUMBER)
            kind = "number"
        elif record.is_wrapped(node):
            kind = "value"
        elif node._kind is None:
            if node._attr is engine.PLACEHOLDER:  # a Value argument: a Value in eager code
                record.relied_on_kind(node, A_VALUE)
            kind = "constant" if node._attr is engine.CONSTANT else "value"
        elif node._kind.name in ops.COMPARISONS:  # a bool in eager code, whatever it compares (an outside hunt:
            kind = "number"  # (y.data > 0) * x was taken for a Value, always true, for a Value y)
        else:
            pending = [a for a in node._prev if id(a) not in known]
            if pending:
                stack.extend(pending)
                continue
            kinds = {known[id(a)][1] for a in node._prev}
            kind = "value" if "value" in kinds else "number" if "number" in kinds else "constant"
        known[id(node)] = (node, kind)
        stack.pop()
    return known[id(v)]


def argument_names(fn: Callable, count: int) -> list[str]:
    """Names for ``count`` positional arguments of ``fn``: its parameter names where known."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names = []
    for k in range(count):
        p = parameters[k] if k < len(parameters) else None
        if p is not None and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        else:
            names.append(f"x{k}" if count > 1 else "x")
    return names


def function_name(fn: Callable) -> str:
    """A readable identifier for ``fn`` (a Module is named after its class)."""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return sanitize(name.replace("<lambda>", "lambda"), "fn")


def _holds_ints(argument: Any) -> bool:
    """Whether ``argument`` is an array or a list of ints (row indices, as ``X[ri]`` takes)."""
    if isinstance(argument, np.ndarray):
        return argument.dtype.kind in "iub" and argument.size > 0
    return isinstance(argument, (list, tuple)) and len(argument) > 0 and \
        all(isinstance(a, (int, np.integer)) for a in argument)


def trace(fn: Callable, *example_args: Any, params: Iterable[Value] | None = None,
          name: str | None = None) -> Graph:
    """Run ``fn(*example_args)`` on placeholders and return what it computed as a Graph.

    ``params`` fixes the order of the graph's params (e.g. ``model.parameters()``; all of
    them are kept, used or not); other params follow: those made as ``Value(...)`` in the
    order they were made, then Values computed outside ``fn``, in the order ``fn`` read them.
    Where the Python of ``fn`` decided on traced values, the graph holds the branch these
    arguments took, and a :class:`~graphc.TracerWarning` names the guards that
    ``graphc.compile`` would check; data frozen into the graph gets a
    :class:`~graphc.FrozenDataWarning`.
    """
    graph, record, _ = trace_with_record(fn, *example_args, params=params, name=name)
    warn_assumptions(record, graph.name)
    return graph


def warn_assumptions(record: Record, name: str) -> None:
    """:func:`trace`'s warnings: the guards the trace took its branch on, and data it froze."""
    if record.guards:
        shown = "; ".join(g.describe() for g in record.guards[:3]) + ("; ..." if len(record.guards) > 3 else "")
        warnings.warn(f"graphc.trace: the function decided on traced values, so the graph holds the branch "
                      f"these example arguments took, fixed ({len(record.guards)} guard"
                      f"{'s' * (len(record.guards) != 1)}: {shown}). graphc.compile checks such guards on "
                      f"every call and retraces when one fails", TracerWarning, stacklevel=3)
    message = record.frozen_message(name)
    if message is not None:
        warnings.warn(message.replace("graphc.compile", "graphc.trace", 1), FrozenDataWarning, stacklevel=3)


def trace_with_record(fn: Callable, *example_args: Any, params: Iterable[Value] | None = None,
                      name: str | None = None, guards: bool = False,
                      shared: dict[int, int | None] | None = None,
                      as_values: set[int] | None = None) -> tuple[Graph, Record, list]:
    """:func:`trace`, also returning what the trace assumed and froze (its :class:`Record`)
    and the kind of each output (None for a Value; see :func:`graphc.traced.plain_outputs`).
    With ``guards``, the graph's outputs are followed by one 0/1 output per guard, in the
    record's order.  ``shared``: for an argument leaf that is a Value met before (leaf ->
    the earlier leaf, or None: a param), what ``fn`` gets there is that leaf's placeholder,
    or the param itself, so that reverse mode adds up its uses as eager ``backward()`` does
    (the input keeps its node, unused).  ``guards`` is a compiled call's trace, whose number
    arguments are plain numbers to the function (no gradient is taken for them): their
    arithmetic is Python's (:meth:`TracedValue.__truediv__`); elsewhere they are inputs to
    differentiate, as Values.  ``as_values``: the positions of the number arguments whose
    ``.data`` the function reads, traced as Values (:meth:`Record.read_argument_data`), known
    from an earlier trace of the signature and added to: a position found after the trace
    relied on a number there runs the function again, once per compiled signature."""
    if not callable(fn):
        raise ArgumentError(f"graphc.trace needs a function or a Module to run; got {type(fn).__name__}")
    reject_foreign_module(fn)
    arg_names = argument_names(fn, len(example_args))
    leaves, in_tree, paths = flatten_args(example_args, arg_names)
    as_values = set() if as_values is None else as_values
    while True:
        record = Record()
        record.python_arithmetic = guards
        record.as_values = set(as_values)
        # inside another trace (graphc.grad in a traced function), this one's Values are of a
        # class of their own: the other trace's, met in the graph, are read live (see _to_graph)
        node_class = type("TracedValue", (TracedValue,), {"__slots__": ()}) if engine.is_tracing() else TracedValue
        paused, tracing = gc_paused(), engine.tracing(node_class, record)
        try:  # entered inside the try, so that an interrupt at any moment after is undone (no `with`:
            paused.__enter__()  # an exception at the line a `with` exits on can skip __exit__, bpo-29988)
            tracing.__enter__()
            placeholders = []
            for leaf, path in zip(leaves, paths):
                ph = Value(leaf._data if isinstance(leaf, Value) else leaf, label=path)
                ph._attr = engine.PLACEHOLDER if len(placeholders) in as_values else placeholder_kind(leaf)
                placeholders.append(ph)
            record.arguments(placeholders)
            given = list(placeholders)
            for j, source in (shared or {}).items():
                given[j] = leaves[j] if source is None else placeholders[source]
            supply = iter(given)
            structured = [unflatten(t, supply, ArrayRows) for t in in_tree[1]]
            try:
                record.start(fn)
                result, kinds = plain_outputs(fn(*structured))
                record.finish()
            except Exception as error:
                if not record.trace_again_as_values:  # else the error may be the void trace's own
                    _raise_traced(error, example_args)
        finally:
            _leave(tracing, paused)
            record.forget_nodes()
        as_values |= record.as_values | record.trace_again_as_values
        if not record.trace_again_as_values:
            break
    out_leaves, out_tree = flatten_output(result)
    extra = [g.predicate for g in record.guards] if guards else []
    with gc_paused():
        graph = _to_graph(out_leaves + extra, placeholders, paths, list(params or ()),
                          name or function_name(fn), in_tree, out_tree, node_class, record)
    record.outputs(out_leaves)
    del result, out_leaves, extra, structured, supply, placeholders, given  # the trace's Values: only kept ones stay
    record.release_predicates()
    record.count_kept()
    return graph, record, kinds


def _raise_traced(error: Exception, example_args: tuple) -> NoReturn:
    """Raise what ``fn`` raised while traced, said in graphc's terms where its cause is the
    trace's (a library given a traced number, NumPy given a Value, a foreign Value)."""
    foreign = _foreign_value_in(error)
    if isinstance(error, TypeError) and "TracedNumber" in str(error) and \
            raised_in_a_library(error.__traceback__):
        raise TraceError(f"{user_location_in(error.__traceback__)}: a library took a traced number (a "
                         f"Value's .data) by its type, as the statistics module's mean, variance and "
                         f"stdev do ({error}): graphc cannot record that arithmetic.  Compute with "
                         f"Python's operators instead: sum(xs) / len(xs)") from error
    if foreign is None:
        if isinstance(error, TypeError) and f"'{TracedValue.__name__}' does not support ufuncs" in str(error):
            raise TraceError(f"{user_location_in(error.__traceback__)}: a NumPy function (np.exp, np.tanh, "
                             f"...) was given a Value, as every number argument is while traced: NumPy "
                             f"does not compute with Values.  Use the Value's own methods (x.exp(), "
                             f"x.tanh(); Value(x).exp() of a number passed in), or compute it outside "
                             f"and pass it in") from error
        if isinstance(error, IndexError) and "valid indices" in str(error) and \
                any(_holds_ints(a) for a in example_args):
            raise TraceError(f"{user_location_in(error.__traceback__)}: an array of ints or bools passed in "
                             f"reaches the traced function as traced numbers (its data), which NumPy "
                             f"does not take as indices ({error}): index outside the compiled function "
                             f"and pass the rows it picks (X[ri], y[ri]) as arguments") from error
        if isinstance(error, (AttributeError, TypeError, IndexError)) and \
                ("list" in str(error) or ArrayRows.__name__ in str(error)) and \
                hasattr(error, "add_note") and any(isinstance(a, np.ndarray) for a in example_args):
            error.add_note("graphc: a NumPy array argument reaches the traced function as nested lists "
                           "of Values (X.shape, X[:, 0], X[rows] and X.mean() are list errors there): "
                           "index it as lists, or pass what the array methods compute as arguments too")
        raise error
    raise TraceError(foreign_value_message(foreign, "a value the traced function computed with")) from error


def _leave(*blocks: Any) -> None:
    """Exit ``blocks`` in order, each exit taken again if an interrupt lands in it (exits are
    idempotent), the interrupt raised once all are done; should one land between the tries
    after all, each block's ``__del__`` restores its state when it is dropped."""
    interrupted = None
    for block in blocks:
        for _ in range(8):
            try:
                block.__exit__()
                break
            except BaseException as error:  # noqa: B036 (KeyboardInterrupt, or an exception from a signal handler)
                interrupted = error
    if interrupted is not None:
        raise interrupted


def reject_foreign_module(fn: Callable) -> None:
    """Raise a clear TraceError for a Module of another library (micrograd's ``MLP``): its
    parameters() are not graphc Values, so tracing it could only fail obscurely."""
    parameters = getattr(fn, "parameters", None)
    if not callable(parameters) or isinstance(fn, Module):
        return
    try:
        found = next((p for p in parameters() if not isinstance(p, Value)), None)
    except Exception:  # not a Module's parameters() after all: tracing will tell
        return
    if is_foreign_value(found):
        raise TraceError(foreign_value_message(found, f"a parameter of {type(fn).__name__}"))


def _foreign_value_in(error: BaseException) -> Any:
    """The foreign Value (see :func:`graphc.tree.is_foreign_value`) whose own method raised
    ``error`` while it held or met a graphc Value -- micrograd's ``relu`` comparing
    ``self.data < 0`` when its data is a traced Value -- or None."""
    for frame, _ in traceback.walk_tb(error.__traceback__):
        local = frame.f_locals
        owner = local.get("self")
        if is_foreign_value(owner) and any(isinstance(v, Value) for v in (getattr(owner, "data", None),
                                                                          *local.values())):
            return owner
    return None


def _to_graph(out_leaves: list, placeholders: list[Value], paths: list[str], given_params: list[Value],
              name: str, in_tree: Any, out_tree: Any, node_class: type = TracedValue,
              record: Record | None = None) -> Graph:
    """The graph of ``out_leaves``.  A trace inside another makes ``node_class`` Values: the
    outer trace's (TracedValues of another class) become params -- the walk stops at them --
    read live when the graph is replayed on the outer trace's Values, never frozen.  The
    ``record`` is told the op nodes the trace computed (:meth:`Record.note_computed`)."""
    # every Value met, in order; its node once known (Values hash by identity).  The walk stops
    # at the Values made before this trace ran (params, Values computed outside, or the trace's
    # this one runs inside): the program reads their numbers live
    index, made_before = depth_first_through([v for v in out_leaves if isinstance(v, Value)], node_class)
    if record is not None:
        record.note_computed(index, node_class)
    b = Builder()
    inputs = []
    for ph, path in zip(placeholders, paths):
        index[ph] = node = b.add("input", (), (path,))
        inputs.append(node)

    param_values = list(dict.fromkeys(given_params))  # ordered, without duplicates
    known = set(map(id, param_values))
    constant = engine.CONSTANT
    found = [v for v in made_before if id(v) not in known and not (v._kind is None and v._attr is constant)]
    # leaves in creation order (model.parameters() order), then Values computed outside, as met
    param_values += sorted(found, key=lambda v: getattr(v, "_serial", math.inf))
    params = _add_params(b, param_values, index)
    _add_ops(b, index)
    outputs = [index[v] if isinstance(v, Value) else b.const(float(v)) for v in out_leaves]
    return b.finish(inputs, params, outputs, param_values=param_values, in_tree=in_tree,
                    out_tree=out_tree, name=name)


def _add_params(b: Builder, param_values: list[Value], index: dict[Value, int | None]) -> list[int]:
    """Append a ``param`` node for each of ``param_values`` to ``b``, noting it in ``index``;
    their nodes.  Some 80,000 for an MNIST MLP: the Builder's lists are extended at once."""
    for k, p in enumerate(param_values):
        if not isinstance(p, Value):
            raise TraceError(f"params[{k}] is {type(p).__name__}, not a Value")
    count = len(param_values)
    params = list(range(len(b), len(b) + count))
    b.ops.extend(["param"] * count)
    b.args.extend([()] * count)
    # str(): a label set to a non-str
    b.attrs.extend([(str(p.label) if p.label else f"p{k}",) for k, p in enumerate(param_values)])
    index.update(zip(param_values, params))
    return params


def _add_ops(b: Builder, index: dict[Value, int | None]) -> None:
    """Append a node for each Value of ``index`` (in its order) whose node is not yet known
    -- constants and ops --, noting it there.  The hot loop of tracing: one node per Value,
    its Builder lists appended in place, ``index`` updated in place (no key is added)."""
    node_ops, node_args, node_attrs = b.ops, b.args, b.attrs
    add_op, add_args, add_attr = node_ops.append, node_args.append, node_attrs.append
    n = len(node_ops)
    for v, known in index.items():
        if known is not None:
            continue
        kind = v._kind
        if kind is None:  # a constant leaf created inside fn
            index[v] = b.const(v._data)
            n = len(node_ops)
            continue
        if type(kind) is not Op:
            if isinstance(kind, engine.MicrogradOp):
                raise TraceError(f"cannot trace an op made the micrograd way, Value(data, _children, "
                                 f"{kind.op!r}) with its own _backward: graphc compiles the ops of its op table "
                                 f"(write the op with Value operators and methods, or see graphc.ops to add one)")
            raise TraceError(f"cannot trace through {v._op!r}: a compiled function was called inside "
                             f"the traced function; compile the plain function instead")
        prev = v._prev
        if len(prev) == 2:
            operands = (index[prev[0]], index[prev[1]])
        else:
            operands = tuple([index[c] for c in prev])
        index[v] = n
        n += 1
        add_op(kind.name)
        add_args(operands)
        add_attr(v._attr)
