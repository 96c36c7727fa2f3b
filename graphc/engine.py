"""Eager autograd: micrograd's ``Value``, driven by the op table.

A drop-in for ``micrograd.engine.Value``: the same operators, the same node structure
(``_prev``, ``_op``) but for subtraction and negation, which are ops of their own (``sub``,
``neg``: micrograd's ``a + (-b)`` and ``a * -1``, the same values), the same backward
order, the same float results bit for bit.  What differs, and why:

* ``_prev`` is a tuple in operand order (``x * x`` has ``(x, x)``), not a set, so graphs
  and gradients are deterministic; micrograd's own results change in the last bit from
  run to run because a set's order follows object addresses.
* ``data`` is always a Python float, and math follows IEEE 754 (``exp(1000)`` is inf,
  ``Value(0) ** -1`` is inf) where micrograd raises a Python exception.
* ``backward()`` sorts the graph without recursion, so a chain of 10^6 ops works.
* No closures: each node stores its op, and ``backward()`` asks the op table for the
  local derivative.  Nodes are ``__slots__`` objects, several times lighter than
  micrograd's.  (An op written micrograd's way, ``Value(data, _children, _op)`` with its
  own ``_backward`` closure, works eagerly; a trace refuses it, :mod:`graphc.trace`.)
"""
from __future__ import annotations

import functools
import itertools
import math
import numbers
import operator
import threading
import weakref
from typing import Any, Callable, Iterable

import numpy as np

from . import forksafe, ops, runtime
from .errors import DataError
from .ops import CONSTANT, FLOATS, Op  # noqa: F401  (CONSTANT: graphc.engine.CONSTANT)
from .walk import depth_first

_new = object.__new__


def _traced_data(v: Value, by_user: bool = True) -> float:
    """``v.data``, the trace's number while one runs in this thread.  ``by_user=False``: the
    number ``float(v)``, ``int(v)``, ``round(v)``, ``format(v)`` convert, not a ``.data``
    the function reads (a number converts as a Value does, so converting tells nothing of
    what eager code holds there: see ``TracedValue.read_data``)."""
    if _tracing_threads and _this_thread.node_class is not Value:
        return _this_thread.node_class.read_data(v, by_user)
    return v._data


def _write_data(v: Value, value: float) -> None:
    global _data_dirty
    v._data = value if type(value) is float else _as_float(value)  # the common case inline
    if not _data_dirty:  # after the number; a test, not a store, where the flag is up already
        _data_dirty = True


def _traced_write(v: Value, value: float) -> None:
    if _tracing_threads and _this_thread.node_class is not Value:
        _this_thread.node_class.write_data(v, value)
    _write_data(v, value)


# Caches of params' numbers (Signature.param_data) stay current while data_epoch() stays the
# same.  A write of an existing Value's number only raises a flag, and tests it first (a
# counter cost the SGD loop over the demo's 337 params 14 us, an int allocated per write; an
# unconditional store 8 us; the test 1.5 us); data_epoch() turns a raised flag into a new epoch.
_data_dirty = False
_data_epoch = 0
_epoch_lock = forksafe.Lock()


def data_epoch() -> int:
    """A number that changes whenever some Value's number may have been written since it was
    last asked: read it before reading numbers from Values, and they are current while it
    stays the same."""
    global _data_dirty, _data_epoch
    with _epoch_lock:
        if _data_dirty:
            _data_dirty = False
            _data_epoch += 1
        return _data_epoch


def data_written() -> None:
    """graphc set existing Values' ``_data`` directly (``load_state_dict``): caches must read again."""
    global _data_dirty
    _data_dirty = True


def new_epoch() -> int:
    """Start a new epoch now: every cache of numbers read before reads them again.  For
    graphc about to give existing Values new numbers (``train``): called before, so that no
    cache stays current however the giving is cut short; :func:`claim_writes` after."""
    global _data_dirty, _data_epoch
    with _epoch_lock:
        _data_dirty = False
        _data_epoch += 1
        return _data_epoch


def claim_writes(epoch: int) -> int | None:
    """graphc set existing Values' ``_data`` to numbers it holds (``train``'s write-back),
    after ``new_epoch()`` gave ``epoch``: every cache must read again, but if nothing else
    was written since, the epoch under which the holder may keep those numbers; else None."""
    global _data_dirty, _data_epoch
    with _epoch_lock:
        if _data_dirty or _data_epoch != epoch:
            _data_dirty = True
            return None
        _data_epoch += 1
        return _data_epoch


# ``Value.data`` is one of two properties.  While no thread traces, the plain one reads the
# slot with a C getter (a third of the time of a Python one: micrograd's SGD loop reads
# ``p.data`` for every param on every step); while some thread traces, ``tracing`` swaps in
# the other, which checks whether this thread traces (it then gives a traced number, and
# refuses a write).
_DATA_DOC = "The scalar value (a float); while this thread traces, a traced number (graphc.traced)."
_PLAIN_DATA = property(operator.attrgetter("_data"), _write_data, doc=_DATA_DOC)
_TRACED_DATA = property(_traced_data, _traced_write, doc=_DATA_DOC)


class Value:
    """A scalar and its gradient; every arithmetic operation on it records a graph node."""

    __slots__ = ("_data", "grad", "_prev", "_kind", "_attr", "label", "_serial", "__weakref__")
    __array_ufunc__ = None  # NumPy scalars and arrays defer to Value's reflected operators

    def __init__(self, data: float, _children: tuple | str = (), _op: str = "", label: str = "") -> None:
        """``Value(data)``, ``Value(data, label)`` (a str in place of the children), or
        micrograd's ``Value(data, _children, _op, label)``: a node of an op of the user's
        own, whose ``_backward`` (set on it next) gives its children's gradients in
        ``backward()``, as micrograd's do."""
        if type(_children) is str:
            _children, label = (), _label_in_place(_children, _op, label)
        children = _micrograd_children(_children, _op, label) if _children or _op or type(label) is not str else ()
        node_class, record = (_this_thread.node_class, _this_thread.record) if _tracing_threads else (Value, None)
        tracing = node_class is not Value and record is not None  # read once: one answer for the whole call
        if tracing:
            record.leaf(data)  # a trace counts the numbers frozen into it
            self.__class__ = node_class  # first: a traced Value's own writes are not refused
        wraps_argument = tracing and type(data) is node_class and not children and \
            any(data._attr is marker for marker in PLACEHOLDERS)
        detached = node_class.live_leaf(data) if tracing and not children and not wraps_argument else None
        if detached is not None:
            # Value(loss.data): in eager code a new leaf holding the number, through which no gradient
            # flows -- here that number computed live, as stop_gradient of the node computing it
            self._data, self._prev, self._kind = detached._data, (detached,), _STOP_GRADIENT
        elif wraps_argument:
            # Value(x) of an argument -- micrograd's list(map(Value, xrow)) over data passed in, which a
            # compiled call passes as Values where eager had numbers: the node x * 1.0, x's bits exactly,
            # which is a Value in eager code (not the number x * 1.0 would be)
            self._data, self._prev, self._kind = data._data, (data, _node(1.0, (), None, CONSTANT)), _MUL
            record.wrapped(self)
        else:
            if hasattr(self, "_data"):  # __init__ again, on a param (re-initialised in place): caches read again
                data_written()
            self._data = _as_float(data)
            self._prev = children
            self._kind = MicrogradOp(_op) if children else None
        self.grad = 0
        self._attr = ()
        self.label = label
        self._serial = next(_serials)  # creation order: how a trace orders the params it finds
        if tracing and not wraps_argument:
            record.made(self)

    @property
    def _backward(self) -> Callable[[], None]:
        """micrograd's step of ``backward()`` at this node: add its ``.grad`` times its local
        derivatives into its children's ``.grad`` (nothing at a leaf, or where no gradient
        arrived).  Settable on a node made as ``Value(data, _children, _op)``."""
        kind = self._kind
        return kind.backward if type(kind) is MicrogradOp else functools.partial(_backward_step, self)

    @_backward.setter
    def _backward(self, function: Callable[[], None]) -> None:
        kind = self._kind
        if type(kind) is not MicrogradOp:
            raise AttributeError(f"graphc takes a {self._op or 'leaf'!r} node's derivatives from its op table; "
                                 f"_backward can be set only on a node made as Value(data, _children, _op)")
        if not callable(function):
            raise TypeError(f"_backward must be a function of no arguments; got {type(function).__name__}")
        self._kind = MicrogradOp(kind.op, function)  # a node of its own: a copy keeps the one it had

    data = _PLAIN_DATA  # or _TRACED_DATA while some thread traces (see above)

    @property
    def _op(self) -> str:
        """The op that produced this node, as micrograd names it ('' on leaves)."""
        return "" if self._kind is None else self._kind.label(self._attr)

    # + - * ** unary - and abs() are generated from the op table (see _operator below);
    # division is no op: micrograd's derived a * b**-1.

    def __truediv__(self, other):  # self * other**-1, micrograd's division
        if isinstance(other, Value):
            return self * other ** -1
        live = _live_number(other)  # loss / loss.data while tracing: the reciprocal computed live
        if live is not None:
            return self * live ** -1
        divisor = _as_exponent(other)  # a number: micrograd computes its reciprocal in Python
        return NotImplemented if divisor is None else self * runtime.pow(float(divisor), -1)

    def __rtruediv__(self, other):  # other * self**-1
        other = _coerce(other)  # once: a NumPy number is counted as frozen data once
        return NotImplemented if other is None else self ** -1 * other

    # -- comparisons and conversions: on the data, as Python compares floats.  While this
    # thread traces, each gives a traced number (graphc.traced) or records a guard.
    def __lt__(self, other):  # self.data < other
        return _compare(operator.lt, self, other)

    def __le__(self, other):  # self.data <= other
        return _compare(operator.le, self, other)

    def __gt__(self, other):  # self.data > other
        return _compare(operator.gt, self, other)

    def __ge__(self, other):  # self.data >= other
        return _compare(operator.ge, self, other)

    def __float__(self) -> float:
        return float(_traced_data(self, by_user=False))

    def __int__(self) -> int:
        return int(_traced_data(self, by_user=False))

    def __round__(self, ndigits: int | None = None):
        return round(_traced_data(self, by_user=False), ndigits)

    def __trunc__(self) -> int:  # math.trunc, as int() (a compiled call's number argument raised: a hunt)
        return math.trunc(_traced_data(self, by_user=False))

    def backward(self) -> None:
        """Accumulate d(self)/d(node) into every node's ``.grad``, exactly as micrograd does.

        One refinement: a node that no gradient reached (only zero-derivative ops such as
        ``step`` use it) passes nothing on, so ``step(log(x))`` at x = 0 has gradient 0, not
        ``0 * inf = nan``.  Gradients that arrive are floats, so such a node still holds the
        int 0 it started with.

        All or nothing where generated code runs: if the graph holds a compiled call's
        output (or mean) and anything raises part-way -- its gradient code, a
        KeyboardInterrupt -- every ``.grad`` is restored before the exception propagates.
        (Snapshotting costs ~18% of a backward, so a purely eager graph, where only an
        interrupt could strike, is not snapshotted: ~4% to find out.)
        """
        if _tracing_threads and _this_thread.node_class is not Value:
            _this_thread.node_class.refuse_backward()
        kind = self._kind
        if kind is not None and type(kind) is not Op and getattr(kind, "over_leaves", False):
            self._backpropagate_to_leaves(kind)
            return
        topo = _op_order(self)
        if not any(type(v._kind) is not Op for v in topo):
            self._backpropagate(topo)
            return
        touched = topo + [c for v in topo for c in v._prev if not c._prev]
        saved = [v.grad for v in touched]
        try:
            self._backpropagate(topo)
        except BaseException:
            for v, g in zip(touched, saved):
                v.grad = g
            raise

    def _backpropagate_to_leaves(self, kind) -> None:
        """backward() of a compiled output whose children are all leaves (a compiled loss
        over params): the one op node is the whole order, so no graph walk (half the time of
        micrograd's demo step around a compiled loss); all or nothing as above."""
        children = self._prev
        saved, own = [v.grad for v in children], self.grad  # a comprehension: 2.5x attrgetter's speed on slots
        try:
            self.grad = 1.0
            kind.backprop(self)
        except BaseException:
            self.grad = own
            for v, g in zip(children, saved):
                v.grad = g
            raise

    def _backpropagate(self, topo: list[Value]) -> None:
        self.grad = 1.0
        for v in reversed(topo):
            kind = v._kind
            if type(v.grad) is int:
                continue
            if type(kind) is not Op:
                kind.backprop(v)
                continue
            prev = v._prev
            if len(prev) == 2:  # the common case, unrolled: this loop is eager graphc's hot path
                a, b = prev
                attr = v._attr
                ca, cb = kind.vjp(FLOATS, v.grad, v._data, a._data, b._data, *attr) if attr else \
                    kind.vjp(FLOATS, v.grad, v._data, a._data, b._data)
                if ca is not None:
                    a.grad += ca
                if cb is not None:
                    b.grad += cb
                continue
            _push(v, kind)

    def __repr__(self) -> str:
        record = _this_thread.record if _tracing_threads else None
        if record is not None and not isinstance(_traced_data(self, by_user=False), float):
            record.text()  # inside a trace the text holds this trace's number (a print of the loss)
        return f"Value(data={self._data}, grad={self.grad})"

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"``: its number so formatted (micrograd's Value refuses a format spec;
        a compiled function returns Values where eager code returned a float, as an
        accuracy computed with ``round``: an outside hunt found such an f-string failing)."""
        return format(_traced_data(self, by_user=False), spec) if spec else repr(self)

    def __reduce_ex__(self, protocol: int) -> tuple:
        """pickle and ``copy.deepcopy`` of a Value and its history, of any depth.  Each node
        is stored as its slots; their default recursion into ``_prev`` met Python's recursion
        limit at a chain of 200 ops (one neuron of 784 inputs is deeper).  So a node with a
        history lists the op nodes below it first, children before parents: each then finds
        its operands stored already, and no reduction nests more than a few levels.  The
        list stops at the nodes this pickle stored already: listing each Value's whole
        history made a list of 4,000 partial sums of one chain take 78 s to pickle."""
        state = (None, _slots_of(self))
        if _listed.ids.pop(id(self), None) is not None or not any(p._prev for p in self._prev):
            return _bare_value, (type(self),), state
        stored = _listed.stored
        if _is_stored(stored, self):  # noted by another pickle, which a live pickler holds: this one has not stored it
            stored.clear()
        below = depth_first((self,), lambda v: () if _is_stored(stored, v) else v._prev, leaves=False)[:-1]
        batch = {id(v): v for v in below}
        _listed.ids.update(batch)
        return _bare_value, (type(self), (*below, _EndOfList(batch, self))), state

    def __copy__(self) -> Value:
        """``copy.copy``: a node of its own with the same operands (as the default copy)."""
        out = _bare_value(type(self))
        for slot, value in _slots_of(self).items():
            setattr(out, slot, value)
        return out

    def _repr_svg_(self) -> str | None:
        """Jupyter: the graph behind this Value, as micrograd's ``draw_dot`` draws it."""
        from .display import svg
        from .viz import draw_value
        return svg(draw_value(self))

    def _repr_html_(self) -> str | None:
        """Jupyter, without Graphviz: the graph as a table."""
        from .display import value_html
        return value_html(self)



def _slots_of(v: Value) -> dict[str, Any]:
    """The slots ``v`` has set (an op node has no ``_serial``: only leaves are ordered)."""
    return {slot: getattr(v, slot) for slot in ("_data", "grad", "_prev", "_kind", "_attr", "label", "_serial")
            if hasattr(v, slot)}


def _bare_value(cls: type, listed_first: tuple = ()) -> Value:
    """A node with no slots set, which unpickling then fills.  ``listed_first`` is not read:
    it carries the nodes :meth:`Value.__reduce_ex__` stores before this one, so that they
    are rebuilt first."""
    return cls.__new__(cls)


class _Listed(threading.local):
    """The op nodes an enclosing reduction lists first, by id: each is then stored as its
    slots alone, as its operands are stored already.  And the nodes a pickle (or deepcopy)
    in progress stored already, by id: each to the :class:`_EndOfList` that stored it,
    weakly, since that marker lives as long as the memo of the pickle that holds it (so
    these entries end with that pickle, and a later one lists such nodes again)."""

    def __init__(self) -> None:
        # weak: a pickle that raised part-way leaves entries behind, which must not keep nodes alive
        self.ids: weakref.WeakValueDictionary[int, Value] = weakref.WeakValueDictionary()
        self.stored: dict[int, weakref.ref] = {}


_listed = _Listed()


def _is_stored(stored: dict[int, weakref.ref], v: Value) -> bool:
    """Whether ``v`` is in the memo of the pickle in progress (its marker lives, and holds it)."""
    marker = stored.get(id(v))
    return marker is not None and marker() is not None


class _EndOfList:
    """Ends a list of nodes stored first, for the node ``top`` that lists them.  Reducing it
    forgets those of them that were stored earlier still (pickle found them in its memo and
    reduced none of them), and notes all of them, and ``top``, as stored: the pickle's memo
    holds each of them from now on (``top`` right after this, its arguments' last item), and
    holds this marker, so the note ends with the memo."""

    def __init__(self, batch: dict[int, Value], top: Value) -> None:
        self.batch = batch
        self.top = top

    def __reduce__(self) -> tuple:
        for key, node in self.batch.items():
            if _listed.ids.get(key) is node:
                del _listed.ids[key]
        stored = _listed.stored
        keys = [*self.batch, id(self.top)]
        marker = weakref.ref(self, lambda ref: _forget(stored, keys, ref))
        stored.update(dict.fromkeys(keys, marker))
        return type(None), ()


def _forget(stored: dict[int, weakref.ref], keys: list[int], marker: weakref.ref) -> None:
    """A pickle's memo is gone: its nodes are stored no more (unless a later marker took them)."""
    for key in keys:
        if stored.get(key) is marker:
            del stored[key]


class _ThreadState(threading.local):
    """This thread's tracing state, all of it: the class of the Values it creates (the
    tracer's subclass while it traces), how many traces are open in it (they nest), and the
    innermost trace's record of guards and frozen data (graphc.guards.Record)."""

    node_class: type = Value
    depth: int = 0
    record: Any = None


# Values created while a trace runs get the tracer's subclass (see graphc.trace), in the
# tracing thread only: another thread's Values stay plain (it may be building a model whose
# parameters a later trace must see as params, not constants).  While no thread traces,
# creating a node reads no thread-local state (eager graphc's hot path): ``_tracing_threads``
# holds the idents of the threads that trace, and is empty otherwise.
_this_thread = _ThreadState()
_tracing_threads: set[int] = set()
_swap_lock = forksafe.Lock()  # the set of tracing threads and Value.data change together


# ``Value.grad`` too: its slot while no thread traces; while some thread does, a property
# over the slot that refuses this thread's writes to Values made before its trace
# (``zero_grad()`` inside the function would run once, at the trace).
_GRAD_SLOT = Value.__dict__["grad"]


def _traced_grad_write(v: Value, grad: Any) -> None:
    if _tracing_threads and _this_thread.node_class is not Value:  # (a traced Value has the slot itself)
        _this_thread.node_class.write_grad(v)
    _GRAD_SLOT.__set__(v, grad)


_TRACED_GRAD = property(_GRAD_SLOT.__get__, _traced_grad_write, doc=_GRAD_SLOT.__doc__)


class tracing:
    """``with tracing(TracedValue, record):`` -- this thread creates ``node_class`` Values, and
    records guards and frozen data in ``record``, until the block ends; blocks nest.  The one place tracing state changes, and interrupt-safe: an
    exception anywhere, a KeyboardInterrupt included, leaves the state as it was before the
    block (every step on the way in is undone by an idempotent restore), so a later model's
    params are never taken for the tracer's own values."""

    __slots__ = ("node_class", "record", "_saved", "_thread")

    def __init__(self, node_class: type, record: Any = None) -> None:
        self.node_class = node_class
        self.record = record
        self._saved = None  # set on entering: exiting a block never entered changes nothing
        self._thread = threading.get_ident()

    def __enter__(self) -> "tracing":
        state = _this_thread
        self._saved = saved = (state.node_class, state.depth, state.record)
        try:
            state.depth = saved[1] + 1
            state.node_class = self.node_class
            state.record = self.record
            with _swap_lock:
                _tracing_threads.add(threading.get_ident())
                Value.data, Value.grad = _TRACED_DATA, _TRACED_GRAD
            return self
        except BaseException:
            _restore(saved)
            raise

    def __exit__(self, *exc) -> None:
        saved, self._saved = self._saved, None  # once: a later block's state is never undone by this one
        if saved is not None:
            _restore(saved)

    def __del__(self) -> None:
        """The last resort: an interrupt that lands as ``__exit__`` is called, before its first
        line (bpo-29988), skips it; the block's state is restored when the block is dropped."""
        if getattr(self, "_saved", None) is not None and getattr(self, "_thread", None) == threading.get_ident():
            self.__exit__()  # (an __init__ cut short set nothing: there is nothing to restore)


def _restore(saved: tuple[type, int, Any]) -> None:
    state = _this_thread
    state.node_class, state.depth, state.record = saved
    if not saved[1]:
        with _swap_lock:
            _tracing_threads.discard(threading.get_ident())
            if not _tracing_threads:
                Value.data, Value.grad = _PLAIN_DATA, _GRAD_SLOT


def is_tracing() -> bool:
    """Whether this thread is inside a trace."""
    return _this_thread.depth > 0


def current_record() -> Any:
    """The record of this thread's innermost trace (None when it does not trace)."""
    return _this_thread.record


def _compare(test, a: Value, b):
    """``a.data <test> b`` for a Value or number ``b`` (NotImplemented otherwise); while
    tracing, the tracer's comparison (a traced boolean)."""
    if _tracing_threads and _this_thread.node_class is not Value:
        return _this_thread.node_class.compare(test, a, b)
    other = b._data if isinstance(b, Value) else b if isinstance(b, numbers.Real) or _is_numpy_number(b) else None
    return NotImplemented if other is None else test(a._data, other)


_STOP_GRADIENT = ops.TABLE["stop_gradient"]
_serials = itertools.count()
_get_prev = operator.attrgetter("_prev")


def _as_float(x) -> float:
    if type(x) is float:
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, Value):
        return _to_float(x, "the data of a Value")
    if _is_numpy_number(x):
        return _to_float(x, "the data of a Value")  # np.bool_, or a 0-d NumPy array
    what = "a Value (use it directly instead of wrapping it)" if isinstance(x, Value) else \
        f"{type(x).__name__} {x!r}"[:80]
    raise TypeError(f"Value() takes a real number (int, float or NumPy scalar); got {what}")


def _is_numpy_number(x) -> bool:
    """A NumPy scalar or 0-d array of booleans or numbers (``np.bool_`` is no ``numbers.Real``)."""
    return getattr(x, "shape", None) == () and getattr(getattr(x, "dtype", None), "kind", None) in ("b", "i", "u", "f")


def _to_float(x: numbers.Real, what: str) -> float:
    """``float(x)``; a number too large for a float raises :class:`DataError`: ``float(10**400)``
    raises OverflowError, but ``float(np.longdouble('1e400'))`` quietly gives inf."""
    try:
        y = float(x)
    except OverflowError:
        y = None
    if y is not None and (y - y == 0.0 or not abs(x) < math.inf):  # finite, or inf/nan already
        return y
    text = str(x)
    shown = text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"
    raise DataError(f"{what} must be a real number that fits in a float (|x| < 1.8e308); "
                    f"got {type(x).__name__} {shown}")


def _coerce(x, subtracted: bool = False) -> Value | None:
    """``x`` as a Value, or None when it is not a number (the operator then returns NotImplemented);
    ``subtracted``: the right operand of ``-``."""
    if isinstance(x, Value):
        return x
    if type(x) is float:
        return _node(x, (), None, CONSTANT)
    if isinstance(x, numbers.Real) or _is_numpy_number(x):
        if _tracing_threads and _this_thread.node_class is not Value:
            live = _this_thread.node_class.live_operand(x, subtracted)  # a traced number computed live
            if live is not None:
                return live
            _this_thread.record.operand(x)  # a NumPy number is data frozen into the trace
        return _node(_to_float(x, "an operand"), (), None, CONSTANT)
    return None


def _live_number(x) -> Value | None:
    """A traced number (a ``.data`` while this thread traces) as a Value computed live
    (:func:`graphc.traced.live_operand`); None for anything else, or one the trace freezes."""
    if _tracing_threads and type(x) is not float and _this_thread.node_class is not Value:
        return _this_thread.node_class.live_operand(x, False)
    return None


def _as_exponent(x) -> int | float | None:
    """A number ``x`` as an exponent or divisor (a parameter of the op), None for anything else."""
    if _tracing_threads and _this_thread.node_class is not Value and _is_numpy_number(x):
        _this_thread.record.operand(x)  # frozen into the trace as an operand is (x / scale[1], x ** p[0])
    if isinstance(x, numbers.Integral):
        _to_float(x, "an exponent")  # code generation spells it as a float literal
        return int(x)
    if isinstance(x, numbers.Real):
        return _to_float(x, "an exponent")
    return None


_MUL, _SUB = ops.TABLE["mul"], ops.TABLE["sub"]
#: What a trace puts in a placeholder's (otherwise unused) ``_attr`` slot: a Value argument's, an
#: int argument's, which may index (graphc.trace.TracedValue.__index__), and a float argument's.
#: The last two are plain numbers in eager code (graphc.trace.TracedValue.__bool__, __eq__, ...).
PLACEHOLDER, INT_PLACEHOLDER, NUMBER_PLACEHOLDER = ("placeholder",), ("placeholder", "int"), ("placeholder", "float")
PLACEHOLDERS = (PLACEHOLDER, INT_PLACEHOLDER, NUMBER_PLACEHOLDER)
#: The types of the numbers ``x - 0`` subtracts as -0.0 (ints, bools: see _binary).
INTEGERS = frozenset({int, bool, np.bool_} | {t for t in np.sctypeDict.values() if issubclass(t, np.integer)})


def _node(data: float, prev: tuple, kind, attr: tuple = ()) -> Value:
    out = _new(_this_thread.node_class if _tracing_threads else Value)
    out._data = data
    out.grad = 0
    out._prev = prev
    out._kind = kind
    out._attr = attr
    out.label = ""
    return out


def _binary(op: Op, a: Value, b) -> Value:
    if not isinstance(b, Value):
        if _tracing_threads and type(b) is not float and _this_thread.node_class is not Value:
            plain = _this_thread.node_class.plain_arithmetic(op, a, b, False)  # two numbers in eager code
            if plain is not None:
                return plain
        # micrograd's x - b is x + (-b), and Python's -0 of an int is +0: an int 0 is subtracted as -0.0
        integral_zero = op is _SUB and type(b) in INTEGERS and not b
        b = _coerce(b, op is _SUB)
        if b is None:
            return NotImplemented
        if integral_zero:
            b._data = -0.0
    out = _new(_this_thread.node_class if _tracing_threads else Value)  # _node, inlined: every + and *
    out._data = op.eval(a._data, b._data)
    out.grad = 0
    out._prev = (a, b)
    out._kind = op
    out._attr = ()
    out.label = ""
    return out


def _unary(op: Op, a: Value, attr: tuple = ()) -> Value:
    return _node(op.eval(a._data, *attr), (a,), op, attr)


def apply(op: Op | str, *operands, attr: tuple = ()) -> Value:
    """Apply any table op to Values (or numbers): ``apply('max', a, b)``."""
    op = ops.lookup(op) if isinstance(op, str) else op
    if not isinstance(op, Op):
        raise TypeError(f"apply takes an op name or an ops.Op; got {type(op).__name__}")
    if not op.elementwise:
        raise TypeError(f"{op.name} is a tensor op: tensors exist only in graphs, Values are scalars")
    if op.arity is not None and len(operands) != op.arity or not operands:
        raise TypeError(f"{op.name} takes {op.arity or 'at least 1'} operand(s), got {len(operands)}")
    attr = tuple(attr)
    if len(attr) != len(op.attr_names):
        raise TypeError(f"{op.name} takes {len(op.attr_names)} parameter(s) {op.attr_names} in attr=; got {attr!r}")
    attr = tuple(_as_exponent(a) if isinstance(a, numbers.Real) else a for a in attr)
    if any(not isinstance(a, (int, float)) for a in attr):
        raise TypeError(f"{op.name}'s parameters {op.attr_names} are numbers; got {attr!r}")
    values = tuple(_coerce(x) for x in operands)
    if any(v is None for v in values):
        bad = next(x for x, v in zip(operands, values) if v is None)
        raise TypeError(f"{op.name} takes Values or numbers; got {type(bad).__name__}")
    return _node(op.eval(*(v._data for v in values), *attr), values, op, attr)


def topological_order(roots: Iterable[Value]) -> list[Value]:
    """Every node reachable from ``roots``, children before parents, in micrograd's order
    (a depth-first post-order visiting ``_prev`` left to right; no recursion)."""
    return depth_first(roots, _get_prev)


def _push(v: Value, kind: Op) -> None:
    """Add ``v``'s gradient times op ``kind``'s local derivatives into its children's ``.grad``."""
    cotangents = kind.vjp(FLOATS, v.grad, v._data, *[p._data for p in v._prev], *v._attr)
    for p, c in zip(v._prev, cotangents):
        if c is not None:
            p.grad += c


def _backward_step(v: Value) -> None:
    """``v._backward()``: :meth:`Value.backward`'s step at ``v`` alone (nothing while its
    ``.grad`` is the int 0 it starts with: no gradient arrived)."""
    kind = v._kind
    if (type(v.grad) is int and v.grad == 0) or not v._prev:
        return
    if type(kind) is Op:
        _push(v, kind)
    else:
        kind.backprop(v)


def _nothing() -> None:
    """micrograd's ``_backward`` until one is set."""


class MicrogradOp:
    """The op of a node made as ``Value(data, _children, _op)``: its gradient step is the
    ``_backward`` function set on the node."""

    __slots__ = ("op", "backward")

    def __init__(self, op: str, backward: Callable[[], None] = _nothing) -> None:
        self.op, self.backward = op, backward

    def label(self, attr: tuple = ()) -> str:
        return self.op

    def backprop(self, out: Value) -> None:
        self.backward()


def _label_in_place(text: str, op: Any, label: Any) -> str:
    """The label of ``Value(data, text)``: ``text`` (nothing else may name one)."""
    if op != "" or label != "":
        raise TypeError(f"Value(data, label): a label ({text!r}) in place of micrograd's _children takes no "
                        f"_op or label= besides")
    return text


def _micrograd_children(children: Any, op: Any, label: Any) -> tuple:
    """micrograd's ``_children`` of ``Value(data, _children, _op, label)``, checked: a
    collection of Values (empty for a leaf), ``_op`` and ``label`` strs."""
    values = tuple(children) if isinstance(children, (tuple, list, set, frozenset)) else None
    if values is None or not all(isinstance(c, Value) for c in values) or not isinstance(op, str) \
            or not isinstance(label, str):
        raise TypeError(f"Value(data, label) or micrograd's Value(data, _children, _op, label): _children must "
                        f"be Values, _op and label strs; got {type(children).__name__}, {type(op).__name__} "
                        f"and {type(label).__name__}")
    return values


def _op_order(root: Value) -> list[Value]:
    """The op nodes (not the leaves) reachable from ``root``, in :func:`topological_order`'s
    relative order, for ``backward()``: leaves receive gradients but pass none on -- and a
    compiled call's output has every parameter as a child."""
    return depth_first((root,), _get_prev, leaves=False)


#: A stop_gradient method's eager Value (PyTorch's ``detach``): a stop_gradient node kept the
#: history below it, so ``h = h.detach()`` at each step (truncated backpropagation through
#: time) made every ``backward()`` walk all the steps before (2,000 steps took 14 s) and kept
#: them all alive.  While this thread traces, the node: its number is computed live.
_EAGER_STOP = "In eager code a new leaf holding the number, as PyTorch's detach returns."


def _method(op: Op):
    if op.stops_gradient:
        def method(self):
            if _tracing_threads and _this_thread.node_class is not Value:
                return _unary(op, self)
            return Value(self._data)
    elif op.arity == 1:
        def method(self):
            return _unary(op, self)
    else:
        def method(self, other):
            out = _binary(op, self, other)
            if out is NotImplemented:  # an operator would raise TypeError for us; a method must itself
                raise TypeError(f"{op.method}() takes a Value or a number; got {type(other).__name__}")
            return out
    args = "self" if op.arity == 1 else "self, other"
    method.__name__ = method.__qualname__ = op.method
    method.__doc__ = f"{op.method}({args}), recorded as a {op.name!r} node." + (f" {op.doc}" if op.doc else "") \
        + (f". {_EAGER_STOP}" if op.stops_gradient else "")
    return method


def _operator(name: str, entries: tuple[Op, ...]):
    """Value's operator method ``name`` from the ops that implement it (:func:`graphc.ops.operators`).

    A number operand becomes a constant leaf -- or the parameter of an op that takes one
    (``x ** 2`` is ``pow[exponent=2]``, ``x ** y`` ``vpow``).  A reflected operator puts the
    other operand first (``2 - x``), except that, like micrograd, ``2 + x`` and ``2 * x``
    record ``x + 2`` and ``x * 2``.
    """
    op = next(e for e in entries if not e.attr_names)
    by_number = next((e for e in entries if e.attr_names), None)
    if op.arity == 1:
        def method(self):
            return _unary(op, self)
    elif by_number is not None:
        def method(self, other):
            if isinstance(other, Value):
                return _binary(op, self, other)
            live = _live_number(other)  # x ** s.data while tracing: the exponent computed live
            if live is not None and not _this_thread.node_class.plain_number(self):  # not n ** s.data, a float
                return _binary(op, self, live)
            exponent = _as_exponent(other)
            return NotImplemented if exponent is None else _unary(by_number, self, (exponent,))
    elif ops.is_reflected(name) and not op.commutative:
        def method(self, other):
            if _tracing_threads and type(other) is not float and _this_thread.node_class is not Value:
                plain = _this_thread.node_class.plain_arithmetic(op, self, other, True)
                if plain is not None:
                    return plain
            other = _coerce(other)
            return NotImplemented if other is None else _binary(op, other, self)
    else:
        def method(self, other):
            return _binary(op, self, other)
    method.__name__ = name
    method.__qualname__ = f"Value.{name}"
    method.__doc__ = f"Records a {'/'.join(e.name for e in entries)!r} node."
    return method


for _name, _entries in ops.operators().items():
    setattr(Value, _name, _operator(_name, _entries))
for _op in ops.TABLE.values():
    if _op.method:
        setattr(Value, _op.method, _method(_op))
