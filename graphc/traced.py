"""Traced plain numbers: what ``x.data``, ``x > 0`` and ``sum(hits)`` give while a trace runs.

In eager code ``x.data`` is a float and ``x.data > 0`` a bool: plain Python numbers that
can steer control flow or be computed with.  While a trace runs they are
:class:`TracedNumber` s instead: a plain number of a Python type (bool, int or float) that
remembers the graph node computing it, so that

* used as data (``(yi > 0) == (s.data > 0)``, ``sum(hits) / len(hits)``, returned), it is
  computed live by the compiled program with the comparison and ``truediv`` ops, and comes
  back from a compiled call as a plain number of the same type;
* an operand of a Value's ``+``, ``-``, ``*`` (``x * (x.data > 0)``, a one-hot target
  ``[t == k for k in range(n)]``, ``x * x.data``) is computed live too
  (:func:`live_operand`): through ``stop_gradient`` where a gradient could flow through it,
  so none does, as none flows through eager code's float;
* used to decide something (``bool()``, ``if``, ``float()``, ``int()``, ``round()``, an
  index), it becomes that plain number, and the trace records a *guard*
  (:mod:`graphc.guards`): the predicate that must hold for the decision to be the same, which
  the compiled program checks on every call.

Derivatives never flow through a traced number: in eager code it is a plain number too.
"""
from __future__ import annotations

import dis
import fractions
import math
import numbers
import operator
import sys
from typing import Any, Callable

import numpy as np

from . import ops
from .engine import CONSTANT, Value, apply, current_record
from .errors import TraceError
from .guards import user_location as where
from .tree import is_namedtuple, sorted_items

_COMPARISONS = {getattr(operator, name): name for name in ops.COMPARISONS}  # the op table's, as operator names them
#: float's public attributes a traced number lends (its value, fixed by a guard, answers).
FLOAT_ATTRIBUTES = frozenset({"real", "imag", "is_integer", "hex", "conjugate", "as_integer_ratio",
                               "numerator", "denominator", "bit_length", "bit_count", "to_bytes"})


def _operand(x: Any) -> tuple[Any, type] | None:
    """``x`` as (graph operand, Python type) for arithmetic with a traced number; None for a
    Value (its own operator takes over) or anything that is no number."""
    if isinstance(x, TracedNumber):
        return x.node, x.kind
    if isinstance(x, np.floating) and x.dtype != np.float64:  # NumPy computes in its precision
        raise TraceError(f"{where()}: a traced number (a Value's .data) with a NumPy {x.dtype} number: Python "
                         f"computes that in {x.dtype}, graphc's programs in float64. Make the number a float, "
                         f"float(v), to compute in float64 both ways")
    if isinstance(x, (bool, np.bool_)):
        return x, bool
    if isinstance(x, numbers.Integral):
        return x, int
    if isinstance(x, numbers.Real) and not isinstance(x, Value):
        return x, float
    return None


def _sum_kind(a: type, b: type) -> type:
    """Python's type for ``a + b``, ``a - b``, ``a * b``: bools add as ints."""
    return float if float in (a, b) else int


#: NumPy's ufuncs a traced number answers with its own operators, as (method, reflected
#: method): a NumPy number on the other side of ``+``, ``<``, ``==``, ... arrives here.
_UFUNC_METHODS = {np.add: ("__add__", "__radd__"), np.subtract: ("__sub__", "__rsub__"),
                  np.multiply: ("__mul__", "__rmul__"), np.true_divide: ("__truediv__", "__rtruediv__"),
                  np.power: ("__pow__", "__rpow__"), np.less: ("__lt__", "__gt__"), np.less_equal: ("__le__", "__ge__"),
                  np.greater: ("__gt__", "__lt__"), np.greater_equal: ("__ge__", "__le__"),
                  np.equal: ("__eq__", "__eq__"), np.not_equal: ("__ne__", "__ne__"),
                  np.bitwise_and: ("__and__", "__rand__"), np.bitwise_or: ("__or__", "__ror__"),
                  np.bitwise_xor: ("__xor__", "__rxor__"), np.negative: ("__neg__", None),
                  np.positive: ("__pos__", None), np.absolute: ("__abs__", None)}


def _unrecorded(what: str) -> TraceError:
    """The error for an operation on a traced number that no graph op records."""
    return TraceError(f"{where()}: {what} of a traced number (a Value's .data): graphc cannot record it. "
                      f"Compute with the Value instead (x.exp(), x.relu(), ...), or fix the number with "
                      f"float(x.data), which recompiles when it changes")


class TracedNumber:
    """A plain Python number (``kind`` bool, int or float) computed by graph node ``node``."""

    __slots__ = ("node", "kind", "__weakref__")

    def __init__(self, node: Value, kind: type | None = None) -> None:
        if kind is None:  # type(x)(number), as statistics.mean and friends convert their result
            raise TraceError(f"{where()}: a library made a traced number of its own from a number "
                             f"({type(node).__name__}), as statistics.mean does: graphc cannot record that "
                             f"arithmetic.  Compute with Python's operators instead: sum(xs) / len(xs)")
        self.node, self.kind = node, kind
        record = current_record()
        if record is not None:
            record.made_number(self)

    @property
    def value(self) -> bool | int | float:
        """The number at trace time (no guard: for messages and printing)."""
        return self.kind(self.node._data) if self.kind is not int or math.isfinite(self.node._data) \
            else self.node._data

    # -- turned into text: the trace's number, announced once at compile (a guard would
    # retrace a function that prints its loss on every call) ----------------------------------

    def __repr__(self) -> str:
        _text()
        return repr(self.value)

    def __format__(self, spec: str) -> str:
        _text()
        return format(self.value, spec)

    # -- used as data: recorded, computed live --------------------------------------------

    def _arith(self, other: Any, op: str, kind_of: Callable[[type, type], type], reflected: bool = False):
        operand = _operand(other)
        if operand is None:
            return NotImplemented
        a, b = (operand, (self.node, self.kind)) if reflected else ((self.node, self.kind), operand)
        # by zero: Python's / raises (a NumPy number divides as NumPy does, to inf or nan); a
        # traced divisor is guarded either way, so a call with a zero divisor traces again and
        # raises there, and a trace whose ZeroDivisionError was caught serves only zero divisors
        if op == "truediv" and not isinstance(other, np.generic):
            _raises_at(b[0], ZeroDivisionError("division by zero"), "a divisor")
        kind = kind_of(a[1], b[1])
        node = apply(op, a[0], b[0])
        if op == "mul" and kind is int:  # 0 * -1 is Python's int 0, unsigned: +0.0, not mul's -0.0
            node = apply("add", node, 0.0)
        return TracedNumber(node, kind)

    def __add__(self, other):
        return self._arith(other, "add", _sum_kind)

    def __radd__(self, other):
        return self._arith(other, "add", _sum_kind, reflected=True)

    def __sub__(self, other):
        return self._arith(other, "sub", _sum_kind)

    def __rsub__(self, other):
        return self._arith(other, "sub", _sum_kind, reflected=True)

    def __mul__(self, other):
        return self._arith(other, "mul", _sum_kind)

    def __rmul__(self, other):
        return self._arith(other, "mul", _sum_kind, reflected=True)

    def __truediv__(self, other):
        return self._arith(other, "truediv", lambda a, b: float)

    def __rtruediv__(self, other):
        return self._arith(other, "truediv", lambda a, b: float, reflected=True)

    def __neg__(self):
        if self.kind is float:
            return TracedNumber(apply("neg", self.node), float)
        return TracedNumber(apply("sub", 0.0, self.node), int)  # -0 is Python's int 0: +0.0 (a review)

    def __invert__(self):  # ~True is -2, as in Python; a float has no ~
        if self.kind is float:
            raise TypeError("bad operand type for unary ~: 'float'")
        return TracedNumber(apply("sub", apply("neg", self.node), 1.0), int)

    def __pos__(self):
        return self if self.kind is not bool else TracedNumber(self.node, int)

    def __abs__(self):  # relu(x) + relu(-x): |x| with abs(-0.0) = 0.0 and abs(nan) = nan, as Python
        return TracedNumber(apply("add", apply("relu", self.node), apply("relu", apply("neg", self.node))),
                            _sum_kind(self.kind, int))

    def __pow__(self, other):
        exponent = _as_plain(other)
        if isinstance(exponent, np.generic) and _operand(exponent) is not None:
            exponent = exponent.item()  # np.int64(2): a Python number of its kind
        if not isinstance(exponent, (int, float)):
            return NotImplemented
        kind = float if self.kind is float or isinstance(exponent, float) or exponent < 0 else int
        if -math.inf < exponent < 0:  # Python's 0 ** -1 raises; 0.0 ** -inf is inf
            _raises_at(self.node, ZeroDivisionError("0.0 cannot be raised to a negative power"), "a base")
        if isinstance(exponent, float) and math.isfinite(exponent) and not exponent.is_integer():
            # Python's (-8) ** 0.5 is complex; (-inf) ** 0.5 and (-8) ** inf are floats (an outside hunt)
            negative = -math.inf < self.node._data < 0.0
            _guard(apply("mul", apply("lt", self.node, 0.0), apply("gt", self.node, -math.inf)), negative, "a base")
            if negative:
                raise TraceError(f"{where()}: a negative traced number ({self.value!r}) to the fractional power "
                                 f"{exponent!r}: Python gives a complex number, graphc computes floats")
        return TracedNumber(apply("pow", self.node, attr=(exponent,)), kind)

    def __rpow__(self, other):
        return _as_plain(other) ** self._frozen()

    def __mod__(self, other):
        raise _unrecorded("%")

    __rmod__ = __mod__

    def __floordiv__(self, other):
        raise _unrecorded("//")

    __rfloordiv__ = __floordiv__

    def __divmod__(self, other):
        raise _unrecorded("divmod")

    __rdivmod__ = __divmod__

    def _logical(self, other: Any, op: str):
        """``&``, ``|``, ``^`` of booleans (comparisons): recorded as 0/1 arithmetic."""
        operand = _operand(other)
        if operand is None:
            return NotImplemented
        if self.kind is not bool or operand[1] is not bool:
            raise _unrecorded(f"a bitwise {op}")
        a, b = self.node, operand[0]
        found = {"&": lambda: apply("mul", a, b), "|": lambda: apply("ne", apply("add", a, b), 0.0),
                 "^": lambda: apply("ne", a, b)}[op]()
        return TracedNumber(found, bool)

    def __and__(self, other):
        return self._logical(other, "&")

    def __or__(self, other):
        return self._logical(other, "|")

    def __xor__(self, other):
        return self._logical(other, "^")

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __array_ufunc__(self, ufunc, method: str, *inputs, **kwargs):
        """NumPy on a traced number: its own operators for arithmetic and comparisons (so
        ``np.float64(2) * x.data`` is traced, as with a float), a clear error for the rest."""
        methods = _UFUNC_METHODS.get(ufunc)
        if methods is None or method != "__call__" or kwargs:
            raise _unrecorded(f"numpy.{ufunc.__name__}")
        if any([not isinstance(x, TracedNumber) and np.ndim(x) for x in inputs]):  # an array, or a list NumPy would make one
            raise _unrecorded(f"numpy.{ufunc.__name__} with an array")
        if len(inputs) == 1:
            return getattr(self, methods[0])()
        first, second = [x[()] if isinstance(x, np.ndarray) else x for x in inputs]  # a 0-d array: its number
        return getattr(self, methods[0])(second) if first is self else getattr(self, methods[1])(first)

    def __array__(self, dtype=None, copy=None):
        """NumPy making an array of a traced number.  Of a numeric dtype
        (``np.bool_(x.data > 0)``, ``np.asarray(x.data, dtype=float)``): the number Python's
        ``bool``, ``int``, ``float`` or ``complex`` makes of it (a guard, as those are).  Else
        NumPy holds it as an object and computes with its Python operators: fine for a
        traced bool or int (``np.where(x.data > 0, ...)``, ``np.mean`` of the demo's hits,
        as NumPy's own loops compute them), refused for a traced float, whose nan and -0.0
        under Python's ``<`` and ``+`` are not those of the float64 loop eager code runs
        (``np.max``, ``np.sum``, ``np.clip`` of ``.data``: a program silently unlike eager)."""
        if copy is False:  # NumPy 2: a number is no array to share
            raise ValueError("a traced number (a Value's .data) cannot be made an array without a copy")
        kind = None if dtype is None else np.dtype(dtype).kind
        if kind is not None and kind in "biufc":
            convert = {"b": bool, "f": float, "c": lambda v: complex(float(v))}.get(kind, int)
            return np.asarray(convert(self), dtype=dtype)
        if kind not in (None, "O"):
            raise TraceError(f"{where()}: a traced number (a Value's .data) made an array of dtype "
                             f"{np.dtype(dtype)}: graphc converts it to a bool, int, float or complex dtype "
                             f"only.  Convert it first (int(x.data) or float(x.data), which recompile "
                             f"when the number changes)")
        if self.kind is float:
            raise TraceError(f"{where()}: NumPy on a traced float (a Value's .data), as np.max, np.sum, np.clip "
                             f"or np.ndim of .data: NumPy would hold it as an object and compute with Python's "
                             f"operators, not as eager code does.  Use Python's sum, max, min or sorted, compute "
                             f"with the Values, or fix the number with float(x.data), which recompiles when it "
                             f"changes")
        held = np.empty((), dtype=object)
        held[()] = self
        return held

    def _compare(self, other: Any, test):
        operand = _operand(other)
        if operand is None:
            if test in (operator.eq, operator.ne) or isinstance(other, Value):
                return NotImplemented  # == with a non-number is identity, as for a float; a Value compares
            raise TraceError(f"{where()}: a traced number compared with {type(other).__name__} {other!r:.40}: "
                             f"graphc can record comparisons of numbers and Values only")
        return recorded_comparison(test, self.node, operand[0])

    def __lt__(self, other):
        return self._compare(other, operator.lt)

    def __le__(self, other):
        return self._compare(other, operator.le)

    def __gt__(self, other):
        return self._compare(other, operator.gt)

    def __ge__(self, other):
        return self._compare(other, operator.ge)

    def __eq__(self, other):
        return self._compare(other, operator.eq)

    def __ne__(self, other):
        return self._compare(other, operator.ne)

    # -- used to decide: a plain number, and a guard ---------------------------------------

    def __bool__(self) -> bool:
        outcome = self.node._data != 0.0  # nan is true, as bool(nan)
        predicate = self.node if self.kind is bool else apply("ne", self.node, 0.0)
        _guard(predicate, outcome, "bool")
        return outcome

    def _frozen(self, what: str = "a number") -> bool | int | float:
        """The value, exactly: a guard that it stays this number (``what`` it is for)."""
        x = self.node._data
        if x != x:
            _guard(apply("ne", self.node, self.node), True, "a nan")  # nan != nan: still nan
        else:
            _guard(apply("eq", self.node, x), True, what)
            if x == 0.0 and self.kind is float:  # -0.0 == 0.0: the sign is 1 / x's (-inf or inf)
                _guard(apply("lt", apply("truediv", 1.0, self.node), 0.0), math.copysign(1.0, x) < 0.0,
                       "a zero" if what == "a number" else what)
        return self.value

    def _integral(self) -> int | None:
        """The value as an int, guarded exactly, where a float this large has no fraction
        (``k + 1`` past 2**53 is ``k`` again: a range guard around it could not hold), or is
        inf or nan (guarded so, then int's OverflowError or ValueError, as Python raises); else None."""
        if self.kind is float and not abs(self.node._data) < 2.0 ** 52:
            return int(self._frozen())
        return None

    def __float__(self) -> float:
        if formatting():
            return float(self.for_text())
        return float(self._frozen())

    def __int__(self) -> int:
        if formatting():
            return int(self.for_text())
        if self.kind is not float:
            return int(self._frozen())
        exact = self._integral()
        if exact is not None:
            return exact
        k = int(self.node._data)  # truncation, toward zero: k <= x < k + 1, k - 1 < x <= k or -1 < x < 1
        if k > 0:
            return _between(self, k, True, False, k, "int")
        if k < 0:
            return _between(self, k - 1, False, True, k, "int")
        return _between(self, -1, False, False, 0, "int", width=2.0)

    def for_text(self) -> bool | int | float:
        """The trace's number, unguarded, where it becomes text: ``"%f" % x`` (and so
        ``logging.info("loss %f", loss.data)``) converts with ``float()``, which guarded the
        exact number, so each call with another loss traced again and the ninth failed (an
        outside hunt); as an f-string's, the text is the trace's, said once at compile."""
        _text()
        return self.value

    def __index__(self) -> int:
        if self.kind is float:  # "%x" % 1.5 raises too
            raise TypeError(f"{where()}: a float (a traced value's .data) cannot be used as an index")
        if formatting():
            return int(self.for_text())
        return int(self._frozen())

    def __trunc__(self) -> int:
        return self.__int__()

    def __floor__(self) -> int:
        if self.kind is not float:
            return int(self._frozen())
        exact = self._integral()
        if exact is not None:
            return exact
        k = math.floor(self.node._data)
        return _between(self, k, True, False, k, "floor")

    def __ceil__(self) -> int:
        if self.kind is not float:
            return int(self._frozen())
        exact = self._integral()
        if exact is not None:
            return exact
        k = math.ceil(self.node._data)
        return _between(self, k - 1, False, True, k, "ceil")

    def __round__(self, ndigits: int | None = None):
        if ndigits is not None or self.kind is not float:
            return round(self._frozen(), ndigits)
        exact = self._integral()
        if exact is not None:
            return exact
        k = round(self.node._data)
        even = k % 2 == 0  # ties go to the even neighbour
        return _between(self, k - 0.5, even, even, k, "round", width=1.0)

    def __hash__(self) -> int:
        raise TraceError(f"{where()}: a traced number used as a dict key or set member (it was hashed); "
                         f"graphc cannot record which entry it picks. Compare it with numbers instead, "
                         f"or pass the choice in as an argument")

    def __getattr__(self, name: str):
        if name == "data":
            raise TraceError(f"{where()}: .data of a number: a Value's .data is already a plain number "
                             f"(a float), which has no .data")
        if name in FLOAT_ATTRIBUTES:
            return getattr(self._frozen(), name)
        if name == "round":  # np.round(x.data) asks for it
            raise _unrecorded("numpy.round")
        raise AttributeError(f"'{self.kind.__name__}' object has no attribute {name!r} "
                             f"(a traced value's .data is a plain number)")


numbers.Real.register(TracedNumber)  # Value() and Value operators take it: as a number, guarded


def _between(x: TracedNumber, low: float, low_closed: bool, high_closed: bool, result: int, what: str,
             width: float = 1.0) -> int:
    """``result``, guarded by ``low < x < low + width`` (each end closed where asked)."""
    _guard(apply("ge" if low_closed else "gt", x.node, low), True, what)
    _guard(apply("le" if high_closed else "lt", x.node, low + width), True, what)
    return result


def _raises_at(x: Any, error: Exception, what: str) -> None:
    """Raise ``error`` where ``x`` is 0, as Python does; a traced ``x`` is guarded either way."""
    zero = _value(x) == 0.0
    if isinstance(x, Value):
        _guard(apply("eq", x, 0.0), zero, what)
    if zero:
        try:
            raise error
        finally:
            del error  # no cycle of the error, its traceback and this frame


def _value(x: Any) -> float:
    return x._data if isinstance(x, Value) else float(x)


def _as_plain(x: Any) -> Any:
    return x._frozen() if isinstance(x, TracedNumber) else x


def _remainder(a: Any, b: Any) -> Any:
    return a % b


def _remainder_in_place(a: Any, b: Any) -> Any:
    a %= b
    return a


def _percent_instructions() -> frozenset[tuple[int, int | None]]:
    """(opcode, argument) of ``a % b`` and ``a %= b`` as this Python compiles them (the
    argument None where the opcode alone says ``%``: 3.10's BINARY_MODULO)."""
    found = set()
    for function in (_remainder, _remainder_in_place):
        for instruction in dis.get_instructions(function):
            if instruction.opname == "BINARY_OP":
                found.add((instruction.opcode, instruction.arg))
            elif "MODULO" in instruction.opname:
                found.add((instruction.opcode, None))
    return frozenset(found)


_PERCENT = _percent_instructions()
#: Value's conversions, which convert its .data: the ``%`` that asked for them is their caller's.
_CONVERSIONS = frozenset({Value.__float__.__code__, Value.__int__.__code__})


def formatting() -> bool:
    """Whether the conversion of a traced number that called this serves a running ``%``:
    printf-style formatting, ``"%f" % x`` or ``"%f" % v`` of a Value (a number's ``%`` is a
    traced number's own ``__mod__``, which converts nothing).  ``f_lasti`` is the byte
    offset of the instruction a frame runs."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code in _CONVERSIONS:
        frame = frame.f_back
    if frame is None:
        return False
    code, at = frame.f_code.co_code, frame.f_lasti
    if not 0 <= at < len(code) - 1:
        return False
    return (code[at], code[at + 1]) in _PERCENT or (code[at], None) in _PERCENT


def _text() -> None:
    record = current_record()
    if record is not None:
        record.text()


def _guard(predicate: Value, outcome: bool, what: str) -> None:
    record = current_record()
    if record is not None:
        record.guard(predicate, outcome, what)


def compare(test, a: Value, b: Any) -> TracedNumber:
    """``a <test> b`` for a Value ``a`` while tracing: a traced boolean."""
    if isinstance(b, TracedNumber):
        b = b.node
    elif not (isinstance(b, Value) or _operand(b) is not None):
        raise TraceError(f"{where()}: a Value compared with {type(b).__name__} {b!r:.40}: graphc can record "
                         f"comparisons of Values and numbers only")
    return recorded_comparison(test, a, b)


def recorded_comparison(test, a: Value, b: Any) -> TracedNumber:
    """``a <test> b`` recorded, ``a`` a node: a traced boolean.  Python compares a float with
    an int or a Fraction exactly (an outside hunt: ``x.data < 2**53 + 1`` at ``2.0**53`` was
    false, the int rounded to a float first); a ``b`` no float64 holds is compared with the
    float next to it on the side the test needs, and ``==`` (``!=``) is False (True)."""
    if isinstance(b, bool) or not isinstance(b, (int, fractions.Fraction)) or \
            (type(b) is int and -2 ** 53 <= b <= 2 ** 53):
        return TracedNumber(apply(_COMPARISONS[test], a, b), bool)
    below, above = _floats_around(fractions.Fraction(b))
    if below == above:
        return TracedNumber(apply(_COMPARISONS[test], a, below), bool)
    if test in (operator.eq, operator.ne):  # a traced number all the same: it comes back a bool
        return TracedNumber(apply("add", float(test is operator.ne), 0.0), bool)
    if test in (operator.lt, operator.le):
        return TracedNumber(apply("le", a, below), bool)
    return TracedNumber(apply("ge", a, above), bool)


def _floats_around(exact: fractions.Fraction) -> tuple[float, float]:
    """The greatest float at most ``exact`` and the least at least it (equal if it is one)."""
    try:
        nearest = float(exact)
    except OverflowError:
        return (sys.float_info.max, math.inf) if exact > 0 else (-math.inf, -sys.float_info.max)
    if fractions.Fraction(nearest) == exact:
        return nearest, nearest
    if fractions.Fraction(nearest) < exact:
        return nearest, math.nextafter(nearest, math.inf)
    return math.nextafter(nearest, -math.inf), nearest


#: Zero-derivative ops (their vjp passes nothing on): a traced number computed through them
#: from inputs and params -- a comparison, a sum of comparisons, a ``.detach()`` -- carries no
#: gradient.
_GRADIENT_STOPS = frozenset([ops.TABLE[name] for name in ops.COMPARISONS] + [ops.TABLE["stop_gradient"]])
#: How many nodes :func:`live_operand` looks through before it freezes the number instead.
_LIVE_WALK = 4096


def live_operand(x: Any, subtracted: bool) -> Value | None:
    """A traced number as an operand of a Value's arithmetic, computed live: its node where
    every path from it back to an input or param passes a comparison (``x * (x.data > 0)``,
    a one-hot ``[t == k for k in range(n)]`` of a label passed in; an outside hunt: each was a
    guard, so ``map`` refused them and every label traced again), so no gradient flows
    through it, as none flows through eager code's plain number; a float that a gradient
    could flow through (``x * x.data``, ``loss / loss.data``) through ``stop_gradient`` (it
    was frozen, so every new number traced again); else None (an int: frozen, guarded).
    An int's zero is +0.0, and is subtracted as eager code's ``x - 0`` is (``engine._binary``)."""
    if type(x) is not TracedNumber:
        return None
    free = _gradient_free(x.node)  # one walk, of at most _LIVE_WALK nodes
    if x.kind is float:  # a gradient could flow through it: stopped, as eager code's float stops it
        return x.node if free else apply("stop_gradient", x.node)
    if not free:
        return None
    if subtracted:
        return apply("neg", apply("sub", 0.0, x.node))
    return apply("add", x.node, 0.0)


def live_leaf(x: Any) -> Value | None:
    """``Value(x)`` of a traced float (``Value(loss.data)``), or of a traced bool or int no
    gradient flows through (``Value(x.data > 0)``): the node computing it, of which the new
    Value is the ``stop_gradient`` (it was frozen, so each new number traced again); else
    None (a number made a constant leaf, as before)."""
    if type(x) is TracedNumber and (x.kind is float or _gradient_free(x.node)):
        return x.node
    return None


def gradient_free(x: Any) -> bool:
    """Whether ``x`` is a traced number no gradient flows through (every path from it back to
    an input or param passes a comparison): a Value's operator computes it live."""
    return type(x) is TracedNumber and _gradient_free(x.node)


def _gradient_free(node: Value) -> bool:
    stack, seen = [node], set()
    while stack:
        v = stack.pop()
        if v._kind in _GRADIENT_STOPS or id(v) in seen:
            continue
        if not v._prev:
            if v._attr is CONSTANT:
                continue
            return False
        seen.add(id(v))
        if len(seen) > _LIVE_WALK:
            return False
        stack.extend(v._prev)
    return True


#: The kind :func:`plain_outputs` gives an output the traced function returned as a plain
#: number it did not compute from traced values (``3``, ``True``, ``math.sin(x)`` of a
#: guarded ``float(x)``): it comes back as a Value, as the public contract says, and no
#: gradient reaches it; ``grad`` refuses one where the trace froze a traced value into a
#: number (``math.sin(x)``), and answers 0 for a branch's constant.
PLAIN_CONSTANT = "constant"


def plain_outputs(result: Any, depth: int = 0) -> tuple[Any, list]:
    """``result`` with each traced number replaced by its node, and per leaf (in
    :func:`graphc.tree.flatten_output` order) its Python type, :data:`PLAIN_CONSTANT` for
    a plain number, or None for a Value."""
    kinds: list = []

    def walk(x: Any, depth: int) -> Any:
        if isinstance(x, TracedNumber):
            kinds.append(x.kind)
            return x.node
        if isinstance(x, (numbers.Real, np.bool_)) and not isinstance(x, (Value, np.ndarray)):
            kinds.append(PLAIN_CONSTANT)
            return x
        if isinstance(x, dict) and depth < 100 and all(isinstance(key, str) for key in x):
            return {key: walk(item, depth + 1) for key, item in sorted_items(x)}
        if isinstance(x, (list, tuple)) and depth < 100:  # deeper: flatten_output says so
            items = [walk(item, depth + 1) for item in x]
            if isinstance(x, list):
                return items
            return x._make(items) if is_namedtuple(type(x)) else tuple(items)  # _make: no __new__ again
        kinds.append(None)
        return x
    return walk(result, depth), kinds
