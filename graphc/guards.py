"""Guards and frozen data: what a trace assumed, recorded so a compiled program is never stale.

A trace runs Python once.  Where that Python decided something from a traced value --
``if x.data > 0``, ``bool``, ``float``, ``int``, ``round``, ``max`` over Values (see
:mod:`graphc.traced`) -- the :class:`Record` of the trace keeps a :class:`Guard`: a
predicate node (1.0 or 0.0, a graph expression over inputs and params), the outcome the
trace took and the user's source line.  Compiling makes every predicate an extra output of
the forward program, so the guards are computed with the outputs at no extra pass; a call
whose guards differ from the trace's outcomes is retraced (:mod:`graphc.variants`).

The record also counts numbers frozen into the program from outside the function's
arguments (``Value(x)`` of captured data, NumPy numbers met in arithmetic) and notices
random draws, so compile can say so once (:class:`~graphc.FrozenDataWarning`).  Literal
numbers of the code (``Value(1.0)``, ``alpha = 1e-4``) are not counted.

Messages quote user code (a guard's line); generated code never does: a predicate is graph
nodes only.
"""
from __future__ import annotations

import functools
import gc
import itertools
import linecache
import math
import numbers
import operator
import os
import random
import sys
import sysconfig
import threading
import types
import weakref
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Iterable

import numpy as np

from .engine import (CONSTANT, INT_PLACEHOLDER, NUMBER_PLACEHOLDER, PLACEHOLDER, Value, _is_numpy_number,
                     topological_order)
from .errors import TraceError
from .codegen.common import python_number
from .ops import TABLE
from .row_threads import THREAD_PREFIX

_HERE = os.path.dirname(os.path.abspath(__file__))
#: The tracing machinery's files: a guard's user line is the first frame outside them.
_MACHINERY = frozenset(os.path.join(_HERE, f) for f in ("engine.py", "trace.py", "traced.py", "guards.py",
                                                        "variants.py"))
_INFIX = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "lt": "<", "le": "<=", "gt": ">",
          "ge": ">=", "eq": "==", "ne": "!="}


#: NumPy's and Python's own files: a NumPy function called on a traced number (np.round), or
#: a standard library one (statistics.mean), is not the user's line.
_NUMPY = os.path.dirname(os.path.abspath(np.__file__)) + os.sep
_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep
_INSTALLED = tuple(os.path.abspath(sysconfig.get_paths()[k]) + os.sep for k in ("purelib", "platlib"))


def _library(path: str) -> bool:
    """Whether ``path`` is NumPy's or the standard library's (not a package installed inside
    the standard library's directory, as a python.org build's site-packages is)."""
    return path.startswith(_NUMPY) or (path.startswith(_STDLIB) and not path.startswith(_INSTALLED))


def _caller():
    """The innermost frame outside graphc: the line that made a Value (cheaper than
    :func:`user_frame`, which also leaves NumPy's and the standard library's frames)."""
    frame = sys._getframe(2)
    while frame.f_back is not None and _in_graphc(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


@functools.lru_cache(maxsize=1024)
def _in_graphc(filename: str) -> bool:
    """Whether a code object's file is one of graphc's (its nn.py and losses.py included:
    ``m(x)`` over a captured list is the user's line, not the neuron's)."""
    return os.path.abspath(filename).startswith(_HERE + os.sep)


def user_frame(also: frozenset[str] = frozenset()):
    """The innermost frame of user code (outside the tracing machinery, NumPy and the files
    ``also`` names), or None."""
    frame = sys._getframe(1)
    while frame is not None:
        if _users(frame, also):
            return frame
        frame = frame.f_back
    return None


def _users(frame, also: frozenset[str] = frozenset()) -> bool:
    """Whether ``frame`` runs user code: not the tracing machinery's, NumPy's, the standard
    library's or a file ``also`` names."""
    path = os.path.abspath(frame.f_code.co_filename)
    return path not in _MACHINERY and path not in also and not _library(path)


#: graphc's nn: where its own methods (``zero_grad``) do what a message is about, the user's
#: line is their caller's.
NN = frozenset({os.path.join(_HERE, "nn.py")})


def user_location(also: frozenset[str] = frozenset()) -> str:
    """``file.py:line`` of the innermost user code (see :func:`user_frame`), for messages."""
    return location(user_frame(also))


def user_location_in(traceback: types.TracebackType | None) -> str:
    """``file.py:line`` of the innermost user code an exception's traceback passed through."""
    found = None
    while traceback is not None:
        if _users(traceback.tb_frame):
            found = f"{os.path.basename(traceback.tb_frame.f_code.co_filename)}:{traceback.tb_lineno}"
        traceback = traceback.tb_next
    return found or "<unknown>"


def raised_in_a_library(traceback: types.TracebackType | None) -> bool:
    """Whether an exception's innermost frame is NumPy's or the standard library's."""
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    return traceback is not None and _library(os.path.abspath(traceback.tb_frame.f_code.co_filename))


def location(frame) -> str:
    """``file.py:line`` of a frame (``<unknown>`` for None)."""
    return "<unknown>" if frame is None else f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def source_line(frame) -> str:
    """The stripped source line a frame runs (for messages only), shortened."""
    text = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip() if frame is not None else ""
    return text if len(text) <= 70 else text[:67] + "..."


@dataclass(frozen=True)
class Guard:
    """One assumption of a trace: ``predicate`` (a 0/1 node) was ``outcome``; made at ``where``
    (``file.py:line``) by ``what`` (bool, int, round, a number, ...), reading ``line``."""

    predicate: Any
    outcome: bool
    where: str
    what: str
    line: str
    text: str  # the predicate, written over the trace's names (``x > 0``)

    def describe(self) -> str:
        return GuardSpec(self.outcome, self.where, self.line, self.text).describe()


#: How many different Python floats one line makes Values of, at least, to be taken for data
#: frozen into the program rather than constants of the code (see :meth:`Record.leaf`).
PYTHON_DATA = 8


class Record:
    """Everything one trace assumed or froze: its guards and its frozen data."""

    def __init__(self) -> None:
        self.guards: list[Guard] = []
        self.frozen: Counter = Counter()  # (what, where) -> how many numbers
        self.texts: Counter = Counter()  # where -> how many traced numbers turned into text
        self._random = None
        self._generators: list = []
        self.random_drawn = False
        self.counting = False  # set while the traced function itself runs (not its placeholders)
        self._made: list = []  # weak references to the leaf Values the function made (see kept)
        self._wrapped: dict[int, Any] = {}  # Value(x) of a number argument x, by id (see wrapped)
        self._positions: dict[int, int] = {}  # argument placeholder's id -> its leaf's position
        self.kinds_of: dict[int, tuple[Any, str]] = {}  # see graphc.trace._number_valued
        self.argument_kinds: dict[int, tuple[str, frozenset]] = {}  # position -> (path, kinds it may be)
        self.kept = 0  # how many of them outlived the trace
        self._numbers: list = []  # weak references to the traced numbers it made (see kept_numbers)
        self._outputs: list = []  # weak references to the Values it returned that it computed (likewise)
        self._computed: list = []  # weak references to the Values the outputs are computed from (likewise)
        self._own: type | None = None  # the class of the trace's own Values among them
        self.kept_numbers = 0  # how many of them outlived the trace
        self._refusals: list[str] = []  # graphc's TraceErrors raised while the function ran
        self._python_numbers: dict = {}  # (code, line) -> [different Python floats made Values, how many]
        self.python_arithmetic = False  # number arguments compute as Python's numbers (graphc.trace._numbers_alone)
        self.data_read: set[int] = set()  # ids of the arguments whose .data the function read: Values in eager code
        self.as_values: set[int] = set()  # positions of the number arguments traced as Values (see read_argument_data)
        self.trace_again_as_values: set[int] = set()  # such positions found after the trace relied on a number there

    def wrapped(self, v: Any) -> None:
        """``v`` is ``Value(x)`` of a number argument ``x``: a Value in eager code, where
        ``x`` itself is a number (graphc.trace.TracedValue: numbers compare by value)."""
        self._wrapped[id(v)] = v

    def is_wrapped(self, v: Any) -> bool:
        return id(v) in self._wrapped

    def forget_nodes(self) -> None:
        """Drop the trace's Values this record holds for what it knows of them: the trace is over."""
        self._wrapped, self.kinds_of, self._positions = {}, {}, {}

    def arguments(self, placeholders: list) -> None:
        """The trace's argument placeholders, leaf by leaf (see :meth:`relied_on_kind`)."""
        self._positions = {id(ph): k for k, ph in enumerate(placeholders)}

    def relied_on_kind(self, placeholder: Any, kinds: frozenset) -> None:
        """The trace decided something by whether an argument is an int, a float or a Value
        (``n == 2`` compares numbers, a Value's ``==`` identities, an int indexes): calls
        passing a kind not in ``kinds`` there trace again (:meth:`GuardSet.check_arguments`),
        though one signature serves all three kinds of scalars otherwise."""
        k = self._positions.get(id(placeholder))
        if k is not None and k not in self.as_values:  # (a Value in eager code, whatever the call passes)
            known = self.argument_kinds.get(k)
            self.argument_kinds[k] = (placeholder.label, kinds if known is None else known[1] & kinds)

    def read_argument_data(self, placeholder: Any) -> bool:
        """The function reads a number argument's ``.data``: in eager code it holds a Value
        there (a float has no ``.data``), so the trace holds one too -- micrograd's division,
        truth and ``==`` -- for a float or an int passed as for a Value.  Before the trace
        relied on its being a number (``x / 3`` computed as Python's, before ``x.data > 0``),
        it becomes one now: True, the caller makes it one; after, the trace runs again with it
        one from the start (an outside hunt: ``x / 3`` was Python's quotient, an ulp off
        eager's at 2.1, and the answer turned on the order of two statements)."""
        k = self._positions.get(id(placeholder))
        if k is None or not self.python_arithmetic or k in self.as_values or placeholder._attr is PLACEHOLDER:
            return False
        if k in self.argument_kinds:
            self.trace_again_as_values.add(k)
            return False
        self.as_values.add(k)
        return True

    def guard(self, predicate: Value, outcome: bool, what: str) -> None:
        frame = user_frame()
        self.guards.append(Guard(predicate, bool(outcome), location(frame), what, source_line(frame),
                                 describe(predicate)))

    def absorb(self, inner: "Record", predicates: list) -> None:
        """What a trace run inside this one assumed and froze (:func:`graphc.grad` in a
        traced function), its guards' predicates replayed on this trace's Values as
        ``predicates``: this trace's program then checks them too."""
        self.guards += [replace(g, predicate=p) for g, p in zip(inner.guards, predicates)]
        self.frozen.update(inner.frozen)
        self.texts.update(inner.texts)
        self.kept += inner.kept
        self.kept_numbers += inner.kept_numbers
        self.random_drawn = self.random_drawn or inner.random_drawn

    def made(self, value: Value) -> None:
        """``Value(...)`` inside the traced function: watched, to tell one kept after the
        trace (:meth:`count_kept`)."""
        if self.counting:
            self._made.append(weakref.ref(value))

    def made_number(self, number: Any) -> None:
        """A traced number (a ``.data``, or what Python computed from one) made while the
        function runs: watched, to tell one kept after the trace (:meth:`count_kept`)."""
        if self.counting:
            self._numbers.append(weakref.ref(number))

    def outputs(self, values: list) -> None:
        """The Values the function returned that it computed (a loss, not a param): watched
        like traced numbers, to tell one kept after the trace (``history.append(loss)``, which
        later calls never append to: an outside hunt)."""
        self._outputs = [weakref.ref(v) for v in values if isinstance(v, Value) and v._prev]

    def note_computed(self, values: Iterable[Any], own: type) -> None:
        """The Values the trace computed its outputs from, its own of class ``own`` (see
        :meth:`count_kept`, which leaves out the others: Values computed outside, alive
        whatever happens)."""
        self._computed, self._own = list(map(weakref.ref, filter(_has_operands, values))), own

    def release_predicates(self) -> None:
        """Let go of the guards' predicates once the graph has taken them in: they hold what
        they read, which :meth:`count_kept` would see as kept."""
        self.guards = [replace(g, predicate=None) for g in self.guards]

    def count_kept(self) -> None:
        """Once the trace's own Values are gone: how many Values the function made are still
        alive -- kept in a cache, an attribute, a global.  The program froze their numbers,
        and nothing writes their ``.grad``.  Likewise the traced numbers it kept, the Values
        it returned, and those it computed on the way (a layer's ``self.out``, an L2 term
        kept to log, a weight derived and cached: an outside hunt found them silently
        stale), each counted once: a kept node holds its history.  Called after
        :meth:`release_predicates`."""
        computed = self._computed_alive()
        if computed or any(ref() is not None for ref in self._numbers + self._outputs):
            del computed  # a cycle the paused collector left (a caught exception's traceback): rare, so asked then
            gc.collect()
            computed = self._computed_alive()
        numbers = [n for n in (ref() for ref in self._numbers) if n is not None]
        alive = [v for v in (ref() for ref in self._made) if v is not None]
        outputs = [v for v in (ref() for ref in self._outputs) if v is not None]
        self._numbers, self._made, self._outputs, self._computed = [], [], [], []
        self.kept_numbers += len(numbers)
        if not (alive or outputs or computed):
            return
        held = {id(n.node) for n in numbers}  # a kept loss.data holds loss: counted once
        self.kept_numbers += sum(id(v) not in held for v in outputs)
        holders = [n.node for n in numbers] + outputs + computed
        below = {id(v) for v in topological_order([p for v in holders for p in v._prev])}
        held |= {id(v) for v in outputs}
        self.kept_numbers += sum(id(v) not in below and id(v) not in held for v in computed)
        # a made Value a kept number or output holds through its history is not said twice (an
        # outside hunt: a constant Value(1.5) of the loss was "kept"), even if also cached
        below |= {id(v) for v in holders}
        self.kept = sum(id(v) not in below for v in alive)

    def _computed_alive(self) -> list:
        """The trace's own op nodes alive still."""
        own = self._own
        return [v for v in map(_referent, self._computed) if v is not None and type(v) is own]

    def leaf(self, data: Any) -> None:
        """``Value(data)`` inside the traced function: a NumPy number is data frozen into the
        program (micrograd's ``list(map(Value, xrow))`` over a captured array).  A Python
        number is taken for a constant of the code, as ``Value(1.0)`` or a captured setting --
        but where one line makes Values of :data:`PYTHON_DATA` different Python floats or
        more, they are data too (the same loop over ``X.tolist()``; an outside hunt).  Ints
        are left out: ``Value(k)`` over a ``range`` is a constant of the code (a review)."""
        if not self.counting:
            return
        if _is_numpy_number(data):
            self._froze("NumPy numbers made Values", user_frame())
        elif type(data) is float:
            self._python_number(_caller(), data)

    def operand(self, x: Any) -> None:
        """A NumPy number met as an operand (``-yi * score`` with ``yi`` from an array).  A
        Python number is taken for a constant of the code, however many a line meets: loops
        compute constants too (``x * (k * 0.1)``, ``x / k``; a review found the rule of
        :meth:`leaf` warning on them)."""
        if self.counting and _is_numpy_number(x):
            self._froze("NumPy numbers in arithmetic", user_frame())

    def _python_number(self, frame, number: float) -> None:
        """One more Python number made a Value at ``frame``'s line (see :meth:`finish`)."""
        made = self._python_numbers.setdefault((frame.f_code, frame.f_lineno), [set(), 0])
        if len(made[0]) < PYTHON_DATA:
            made[0].add(number)
        made[1] += 1

    def refused(self, error: Exception) -> None:
        """A :class:`~graphc.TraceError` raised while the function runs.  Eager code never
        raises one, so a function that catches it (``try: ... except Exception:``) goes on
        down a path eager code does not take: :meth:`finish` then raises it again."""
        if self.counting:
            self._refusals.append(str(error))

    def text(self) -> None:
        """A traced number turned into text (``str``, ``repr``, ``format``, an f-string): the
        text holds the trace's number, which later calls do not recompute."""
        if self.counting:
            self.texts[location(user_frame())] += 1

    def _froze(self, what: str, frame) -> None:
        self.frozen[what, location(frame)] += 1

    def start(self, fn: Any = None) -> None:
        """Called as the traced function ``fn`` starts: from now on, count."""
        self.counting = True
        self._generators = _generators_of(fn)
        self._random = _random_state(self._generators) if _alone() else None

    def finish(self) -> None:
        """Called when the traced function returned: did it draw random numbers?  Told only
        while every other thread is a daemon thread: the generators' state is shared by
        every thread, and a program's own workers (building models, drawing batches) would
        be taken for the function; a Jupyter kernel's threads, always there, are daemons."""
        self.counting = False
        for (code, line), (different, made) in self._python_numbers.items():
            if len(different) >= PYTHON_DATA:
                self.frozen["Python numbers made Values", f"{os.path.basename(code.co_filename)}:{line}"] += made
        self._python_numbers = {}
        if self._refusals:
            raise TraceError(f"{self._refusals[0]}  (The function caught this error and went on, on a path "
                             f"eager code, which never raises it, does not take: graphc cannot compile that "
                             f"path; change the code the error names rather than catch it.)")
        self.random_drawn = self.random_drawn or (self._random is not None and _alone()
                                                  and _random_state(self._generators) != self._random)

    def frozen_kinds(self) -> frozenset[str]:
        """Which kinds of frozen data :meth:`frozen_message` tells of: a compiled function
        says each kind once, on the trace that first met it."""
        return frozenset(self._frozen_parts())

    def frozen_message(self, name: str) -> str | None:
        """What compile says about frozen data (None when nothing was frozen)."""
        parts = self._frozen_parts()
        if not parts:
            return None
        advice = []
        if parts.keys() & {"numbers", "values", "random"}:
            advice.append("Pass the data (and any random draws, made outside) as arguments instead, so each call "
                          "reads them" + ("; make lasting Values (weights) outside the function: it reads them "
                                          "as params" if "values" in parts else ""))
        if "kept" in parts:
            advice.append("Return such numbers instead (a compiled function's outputs are computed on every "
                          "call), and keep them outside it")
        if "text" in parts:
            advice.append("To decide on a number, compare it (if x.data > 0: checked on every call), not its text")
        return f"graphc.compile({name}): the trace {'; and it '.join(parts.values())}. {'. '.join(advice)}"

    def _frozen_parts(self) -> dict[str, str]:
        """Each kind of frozen data the trace met, and what to say of it, in the message's order."""
        parts = {}
        frozen = self.frozen
        if frozen:
            total = sum(frozen.values())
            shown = ", ".join(f"{n} {what} at {where}" for (what, where), n in frozen.most_common(4))
            more = ", ..." if len(frozen) > 4 else ""
            parts["numbers"] = (f"froze {total} number{'s' * (total != 1)} read from outside its arguments into the "
                                f"program ({shown}{more}): the compiled function keeps these values even when that "
                                f"data changes, until it traces again (a new argument signature, a guard's other "
                                f"branch), which reads the data as it is then")
        if self.kept:
            parts["values"] = (f"kept {self.kept} Value{'s' * (self.kept != 1)} it made (in a cache, an attribute, "
                               f"a global) after it returned: the compiled function froze their numbers, and no "
                               f"call writes their .grad")
        if self.random_drawn:
            parts["random"] = ("drew random numbers while it was traced (the state of Python's random module, "
                               "NumPy's global generator or a generator it names changed): every call reuses the "
                               "traced draws")
        if self.kept_numbers:
            n = self.kept_numbers
            parts["kept"] = (f"kept {n} traced number{'s' * (n != 1)} (a Value's .data, a number computed from "
                             f"one, or a Value it returned or computed, such as the loss or a layer's outputs) "
                             f"after it returned, appended to a list or stored in an attribute: they hold the "
                             f"trace's numbers, and later calls store none")
        if self.texts:
            total = sum(self.texts.values())
            shown = ", ".join(f"{n} at {where}" for where, n in self.texts.most_common(4))
            parts["text"] = (f"turned {total} traced number{'s' * (total != 1)} into text (str, repr, format or %: "
                             f"{shown}{', ...' if len(self.texts) > 4 else ''}): that text holds the trace's "
                             f"numbers, and later calls neither recompute it nor print it again")
        return parts


_GENERATORS = (random.Random, np.random.Generator, np.random.RandomState)
_referent = weakref.ref.__call__  # what a weak reference refers to, or None
_has_operands = operator.attrgetter("_prev")  # a Value's operands, none (false) for a leaf


def _alone() -> bool:
    """Whether every thread but this one is a daemon thread or one of graphc's row threads
    (see :meth:`Record.finish`; an outside hunt found the check off for the rest of the
    process after one ``map(threads=2)``)."""
    me = threading.current_thread()
    return all(t.daemon or t.name.startswith(THREAD_PREFIX) for t in threading.enumerate() if t is not me)


def _generators_of(fn: Any, functions: int = 100) -> list:
    """The random generators ``fn`` can draw from where it names them: globals and captured
    variables (``rng = np.random.default_rng(0)``, a ``random.Random``), default arguments
    and a ``functools.partial``'s, those the Modules among them hold (a dropout's
    ``self.rng``), lists, tuples and dicts (``cfg["rng"]``; not lists of numbers or Values,
    which are data or weights: a captured ``X.tolist()``), other objects' own attributes (a
    data loader's ``self.rng``), and those of the functions it names, in turn (a
    ``get_batch()`` helper): up to ``functions`` functions looked into.  Their draws are
    frozen as the global ones are, and their state is no global one (an outside hunt found
    a helper's and a loader's draws frozen without a word)."""
    found, modules, seen = [], [], set()
    stack = [fn]
    while stack and len(seen) < functions:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        named: list = []
        if isinstance(item, functools.partial):
            stack.append(item.func)
            named = [*item.args, *item.keywords.values()]
        elif isinstance(item, types.MethodType):
            stack.append(item.__func__)
            named = [item.__self__]
        elif getattr(item, "__code__", None) is None:  # a callable object (a Module): all it holds, its __call__
            modules.append(item)
            call = getattr(type(item), "__call__", None)
            if hasattr(call, "__code__"):
                stack.append(call)
        else:
            names = _names(item.__code__)
            named = [getattr(item, "__globals__", {}).get(name) for name in names]
            # a module it names: the objects it reads from it (mod.rng, mod.loader.rng), not its functions
            named += [x for m in named if isinstance(m, types.ModuleType) for x in map(vars(m).get, names)
                      if isinstance(x, _GENERATORS) or _instance_dict(x) is not None]
            for cell in getattr(item, "__closure__", None) or ():
                try:
                    named.append(cell.cell_contents)
                except ValueError:  # a cell not yet filled
                    continue
            named += [*(getattr(item, "__defaults__", None) or ()), *(getattr(item, "__kwdefaults__", None) or {}).values()]
        for x in named:
            if isinstance(x, (types.FunctionType, functools.partial, types.MethodType)):
                stack.append(x)
            elif isinstance(x, _GENERATORS):
                found.append(x)
            elif isinstance(x, (list, tuple, dict)) or (hasattr(type(x), "parameters") and _instance_dict(x) is not None):
                modules.append(x)  # a container (cfg["rng"]) or a Module: all it holds, but lists of numbers
            elif isinstance(x, type):  # a class it names (makes or calls): its class attributes
                found += _class_generators(x, {})
            else:  # another object: its own attributes, and its class's
                found += [v for v in (_instance_dict(x) or {}).values() if isinstance(v, _GENERATORS)]
                found += _class_generators(type(x), {})
    for module in modules:
        found += _held_generators(module)
    unique = {id(g): g for g in found}
    return list(unique.values())


def _instance_dict(x: Any) -> dict | None:
    """``x.__dict__`` read without ``__getattr__`` (which may raise anything, or compute), or
    None for an object without one (a number, a slotted object, a module or class is left out)."""
    if isinstance(x, (type, types.ModuleType, types.FunctionType, types.MethodType, Value)):
        return None
    try:
        found = object.__getattribute__(x, "__dict__")
    except Exception:
        return None
    return found if isinstance(found, dict) else None


def _names(code: types.CodeType) -> set[str]:
    """The global names a function's code reads, its comprehensions' and generator
    expressions' (code objects of their own) included."""
    codes, names = [code], set()
    while codes:
        c = codes.pop()
        names.update(c.co_names)
        codes.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return names


def _held_generators(obj: Any, limit: int = 10_000) -> list:
    """The generators held by ``obj``'s attributes, by those of the objects they hold (but
    modules, classes, functions and Values), and by the lists, tuples and dicts among them:
    at most ``limit`` objects looked into, and ``limit`` items of each."""
    found, seen, stack, classes = [], {id(obj)}, [obj], {}
    while stack and len(seen) < limit:
        item = stack.pop()
        if isinstance(item, _GENERATORS):
            found.append(item)
            continue
        found += _class_generators(type(item), classes)
        if isinstance(item, (list, tuple)) and item and isinstance(item[0], (Value, float, int)):
            continue  # a Module's weights, or numbers: no generator among them (a layer holds 78,400)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, (list, tuple)) \
            else (_instance_dict(item) or {}).values()  # (the root may have none: abs, a slotted object)
        for child in itertools.islice(children, limit):
            if id(child) not in seen and _holds_generators(child):
                seen.add(id(child))
                stack.append(child)
    return found


def _class_generators(cls: type, known: dict) -> list:
    """The generators ``cls`` and its bases hold as class attributes (a dropout's ``rng =
    random.Random(0)`` in its class body, read as ``self.rng``: its draws were frozen
    without a word, an outside hunt); ``known``: the answers so far, by class."""
    found = known.get(cls)
    if found is None:
        found = known[cls] = [v for klass in cls.__mro__[:-1] for v in vars(klass).values()
                              if isinstance(v, _GENERATORS)]
    return found


def _holds_generators(x: Any) -> bool:
    return isinstance(x, (*_GENERATORS, list, tuple, dict)) or _instance_dict(x) is not None


def _state_of(generator: Any) -> Any:
    """A comparable snapshot of one generator's state (NumPy's hold arrays: their bytes).  A
    ``random.SystemRandom`` draws from the OS and has none: its draws go untold (compiling a
    function that could reach one raised NotImplementedError, an outside hunt)."""
    if isinstance(generator, random.SystemRandom):
        return None
    if isinstance(generator, random.Random):
        return generator.getstate()
    state = generator.get_state(legacy=False) if isinstance(generator, np.random.RandomState) \
        else generator.bit_generator.state
    return _plain_state(state)


def _plain_state(state: Any) -> Any:
    """``state`` with its dicts as tuples and its arrays as bytes, so ``==`` compares it."""
    if isinstance(state, dict):
        return tuple((k, _plain_state(v)) for k, v in state.items())
    return state.tobytes() if isinstance(state, np.ndarray) else state


def _random_state(generators: list = ()) -> tuple:
    state = np.random.get_state(legacy=False)
    return (random.getstate(), state["state"]["key"].tobytes(), state["state"]["pos"],
            state["has_gauss"], state["gauss"], tuple(_state_of(g) for g in generators))


def describe(node: Value, depth: int = 3) -> str:
    """A short expression for a predicate over the trace's names (``x > 0``), for messages."""
    if not node._prev:
        if node.label:
            return node.label
        if node._attr is CONSTANT or type(node) is not Value:
            return python_number(node._data) if math.isfinite(node._data) else repr(node._data)
        return "param"
    if depth == 0:
        return "..."
    name = node._kind.name if node._kind is not None and hasattr(node._kind, "name") else node._op
    operands = [describe(p, depth - 1) for p in node._prev[:3]] + (["..."] if len(node._prev) > 3 else [])
    if name in _INFIX and len(operands) == 2:
        text = f"{operands[0]} {_INFIX[name]} {operands[1]}"
        return text if depth == 3 else f"({text})"
    if name == "neg":
        return f"-{operands[0]}"
    params = [str(a) for a in node._attr] if name in TABLE and TABLE[name].attr_names else []
    return f"{name}({', '.join(operands + params)})"


class GuardFailure:
    """A call whose guard ``guard`` came out ``not guard.outcome``: the reason to retrace."""

    __slots__ = ("guard",)

    def __init__(self, guard: "GuardSpec") -> None:
        self.guard = guard

    @property
    def reason(self) -> str:
        g = self.guard
        return f"{g.describe()} was {g.outcome}, now {not g.outcome}"


def placeholder_kind(leaf: Any) -> tuple:
    """The placeholder kind (:data:`graphc.engine.PLACEHOLDERS`) of a scalar argument leaf."""
    if isinstance(leaf, Value):
        return PLACEHOLDER
    return INT_PLACEHOLDER if isinstance(leaf, (numbers.Integral, np.bool_)) else NUMBER_PLACEHOLDER


_KIND_NAMES = {PLACEHOLDER: "a Value", INT_PLACEHOLDER: "an int", NUMBER_PLACEHOLDER: "a float"}
#: What a trace's decision may rely on about an argument (:meth:`Record.relied_on_kind`).
AN_INT, A_NUMBER = frozenset({INT_PLACEHOLDER}), frozenset({INT_PLACEHOLDER, NUMBER_PLACEHOLDER})
A_VALUE, NOT_AN_INT = frozenset({PLACEHOLDER}), frozenset({NUMBER_PLACEHOLDER, PLACEHOLDER})


@dataclass(frozen=True)
class GuardSpec:
    """A guard as a compiled signature keeps it: no graph nodes, only what messages need."""

    outcome: bool
    where: str
    line: str
    text: str

    def describe(self) -> str:
        source = f" (`{self.line}`)" if self.line else ""
        return f"guard at {self.where}{source} `{self.text}`"

    @property
    def key(self) -> tuple:
        return self.where, self.text


#: What a guard is for when the trace turned a traced value into a plain number (``float(x)``,
#: ``int``, ``round``, ``math.floor``): a constant output may then be computed from it.
_NUMBER_GUARDS = frozenset({"a number", "a nan", "a zero", "int", "floor", "ceil", "round"})


def froze_numbers(guards: list[Guard]) -> bool:
    """Whether the trace turned a traced value into a plain number (``math.sin(x)`` does, by
    ``float(x)``): a number the function returns may be computed from it, with no gradient."""
    return any(g.what in _NUMBER_GUARDS for g in guards)


class GuardSet:
    """One compiled signature's guards, and the Python types of its outputs.

    The forward program returns the ``n_outputs`` outputs, then one 0/1 value per guard.
    """

    __slots__ = ("specs", "expected", "n_outputs", "kinds", "froze_numbers", "argument_kinds")

    def __init__(self, guards: list[Guard], n_outputs: int, kinds: list,
                 argument_kinds: dict[int, tuple[str, frozenset]] | None = None) -> None:
        self.specs = tuple(GuardSpec(g.outcome, g.where, g.line, g.text) for g in guards)
        self.argument_kinds = tuple(sorted((argument_kinds or {}).items()))
        self.froze_numbers = froze_numbers(guards)
        self.expected = tuple(1.0 if g.outcome else 0.0 for g in guards)
        self.n_outputs = n_outputs
        self.kinds = tuple(kinds) if any(k is not None for k in kinds) else None

    def check_arguments(self, leaves: list) -> GuardFailure | None:
        """None if each argument the trace relied on the kind of is of that kind still, else
        a failure naming the first that is not (:meth:`Record.relied_on_kind`)."""
        for k, (path, kinds) in self.argument_kinds:
            if placeholder_kind(leaves[k]) not in kinds:
                named = " or ".join(_KIND_NAMES[kind] for kind in (INT_PLACEHOLDER, NUMBER_PLACEHOLDER, PLACEHOLDER)
                                    if kind in kinds) or "none of an int, a float or a Value"
                return GuardFailure(GuardSpec(True, f"argument {path}", "", f"{path} is {named}"))
        return None

    def check(self, values: tuple) -> GuardFailure | None:
        """None if every guard came out as traced, else the first that did not."""
        if tuple(values[self.n_outputs:]) == self.expected:
            return None
        for spec, want, got in zip(self.specs, self.expected, values[self.n_outputs:]):
            if got != want:
                return GuardFailure(spec)
        return None

    def plain_numbers(self, outputs: list) -> list:
        """The output Values, each replaced by a plain number of the eager type where the
        function returned a number it computed from traced values (``sum(hits) / n``); a
        number it returned as a constant stays a Value (the public contract)."""
        return [_plain(kind, v._data) if isinstance(kind, type) else v for v, kind in zip(outputs, self.kinds)]


def _plain(kind: type, value: float) -> bool | int | float:
    return kind(value) if kind is float or math.isfinite(value) else value
