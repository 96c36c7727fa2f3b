"""The op table: every operation graphc knows, defined once.

An :class:`Op` says everything the rest of graphc needs about an operation: how many
operands and which parameters it takes, how to evaluate it on floats, its local
derivative (a vector-Jacobian product), how each backend spells it and its SymPy form.
The eager engine, graph autodiff, every code generator, printing and the SymPy bridge all
read this table; none of them hard-codes per-op knowledge.

Derivative rules are written once against an *algebra* ``F``: plain ``+ - *`` on the
operands, and ``F.<op name>(...)`` for anything else.  Given floats (``FLOATS``) a rule
computes numbers -- that is eager ``backward()``; given graph nodes it builds the
gradient graph -- that is :mod:`graphc.autodiff`.  Each rule computes its products in
micrograd's order, so eager graphc reproduces micrograd bit for bit.

Why ``sub`` is an op but division is not: ``a - b`` is exactly ``a + (-b)`` in IEEE
arithmetic (forward and backward), so a ``sub`` node gives shorter graphs at no cost.
``a / b`` is micrograd's ``a * b**-1``, which differs from true division in the last bit
on about a third of all inputs; keeping micrograd's decomposition keeps graphc's results
bit-identical to micrograd's.
"""
from __future__ import annotations

import math
import operator
import types
from dataclasses import dataclass, field
from typing import Any, Callable

from . import runtime

@dataclass(frozen=True)
class Op:
    """One operation.

    ``eval(*operands, *params)`` computes a float.  ``vjp(F, g, out, *operands, *params)``
    returns one cotangent contribution per operand (``None`` where there is none), given
    the output's cotangent ``g`` and its value ``out``.  Spellings are format strings over
    operand expressions ``{0}``, ``{1}``, ... and parameter literals ``{exponent}``, or a
    callable ``(operands, params) -> str`` for variadic ops.
    """

    name: str
    arity: int | None  # None: any number of operands (at least one)
    eval: Callable[..., float]
    vjp: Callable[..., tuple]
    sympy: Callable[..., Any]  # sympy(sp, *operands, *params) -> sympy expression
    python: Any  # a spelling (see above); operands are names or literals, so no parentheses
    numpy: Any = None  # a spelling over arrays; may call np.* and graphc.runtime_numpy as _v*
    c: Any = None  # filled when the C backend lands
    params: tuple[str, ...] = ()
    symbol: str = ""  # micrograd's Value._op label ('+', '*', 'ReLU', '**2' for pow)
    method: str | None = None  # Value method name (``x.relu()``, ``a.max(b)``)
    commutative: bool = False
    # When can the result be -0.0?  Lets `simplify` prove `x + 0 -> x` harmless (it is wrong
    # only for x = -0.0).  "never"; "all": only if every operand can be; "any": if some
    # operand can be; "maybe": no promise.
    negative_zero: str = "maybe"
    doc: str = field(default="", compare=False)

    def __repr__(self) -> str:
        return f"Op({self.name!r})"

    def label(self, params: tuple = ()) -> str:
        """micrograd's ``_op`` string for a node of this op."""
        if self.name == "pow":
            return f"**{params[0]}"
        return self.symbol or self.name


def _sum_eval(*xs: float) -> float:
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


def _python_sum(operands: list[str], params: tuple) -> str:
    """``a + b + c`` -- or, past 64 terms, ``_sum(a, b, ...)``: CPython's compiler recurses
    once per ``+`` of a chain and overflows its stack near a few thousand."""
    return " + ".join(operands) if len(operands) <= 64 else f"_sum({', '.join(operands)})"


def _call(function: str) -> Callable[..., str]:
    return lambda operands, params: f"{function}({', '.join(operands)})"


def _sym_number(sp, e: float):
    return sp.Integer(int(e)) if float(e).is_integer() else sp.nsimplify(e, rational=True)


def _sym_relu(sp, x):
    return sp.Piecewise((x, x > 0), (0, True))  # relu(0) = 0 and relu'(0) = 0, as micrograd


def _sym_step(sp, x):
    return sp.Piecewise((1, x > 0), (0, True))


def _sym_max(sp, a, b):
    return sp.Piecewise((a, a >= b), (b, True))  # ties pick (and differentiate) the first


TABLE: dict[str, Op] = {}


def _define(*ops: Op) -> None:
    for op in ops:
        TABLE[op.name] = op


_define(
    Op("add", 2, operator.add, symbol="+", commutative=True, negative_zero="all",
       vjp=lambda F, g, out, a, b: (g, g),
       sympy=lambda sp, a, b: a + b,
       python="{0} + {1}", numpy="{0} + {1}"),
    Op("sub", 2, operator.sub, symbol="-",
       vjp=lambda F, g, out, a, b: (g, -g),
       sympy=lambda sp, a, b: a - b,
       python="{0} - {1}", numpy="{0} - {1}"),
    Op("mul", 2, operator.mul, symbol="*", commutative=True,
       vjp=lambda F, g, out, a, b: (b * g, a * g),
       sympy=lambda sp, a, b: a * b,
       python="{0} * {1}", numpy="{0} * {1}"),
    Op("neg", 1, operator.neg, symbol="neg",
       vjp=lambda F, g, out, a: (-g,),
       sympy=lambda sp, a: -a,
       python="-{0}", numpy="-{0}"),
    Op("sum", None, _sum_eval, symbol="sum", negative_zero="all",
       doc="n-ary sum, added left to right: ((x0 + x1) + x2) + ...",
       vjp=lambda F, g, out, *xs: (g,) * len(xs),
       sympy=lambda sp, *xs: sp.Add(*xs),
       python=_python_sum, numpy=_call("_vsum")),
    Op("pow", 1, runtime.pow, params=("exponent",),
       doc="x ** exponent for a number exponent",
       vjp=lambda F, g, out, x, e: ((e * F.pow(x, e - 1)) * g,) if e != 0 else (None,),  # x**0 is 1
       sympy=lambda sp, x, e: x ** _sym_number(sp, e),
       python="_pow({0}, {exponent})", numpy="_vpower({0}, {exponent})"),
    Op("vpow", 2, runtime.pow, symbol="**",
       doc="x ** y where the exponent y is a Value too",
       vjp=lambda F, g, out, x, y: ((y * F.vpow(x, y - 1)) * g, (F.log(x) * out) * g),
       sympy=lambda sp, x, y: x ** y,
       python="_vpow({0}, {1})", numpy="_vpower({0}, {1})"),
    Op("relu", 1, runtime.relu, symbol="ReLU", method="relu", negative_zero="any",
       vjp=lambda F, g, out, x: (F.step(x) * g,),  # x > 0 exactly when relu(x) > 0
       sympy=_sym_relu,
       python="_relu({0})", numpy="np.maximum(0.0, {0})"),
    Op("tanh", 1, runtime.tanh, symbol="tanh", method="tanh", negative_zero="any",
       vjp=lambda F, g, out, x: ((1 - out * out) * g,),
       sympy=lambda sp, x: sp.tanh(x),
       python="_tanh({0})", numpy="np.tanh({0})"),
    Op("exp", 1, runtime.exp, symbol="exp", method="exp", negative_zero="never",
       vjp=lambda F, g, out, x: (out * g,),
       sympy=lambda sp, x: sp.exp(x),
       python="_exp({0})", numpy="np.exp({0})"),
    Op("log", 1, runtime.log, symbol="log", method="log", negative_zero="never",
       vjp=lambda F, g, out, x: (g * F.pow(x, -1),),
       sympy=lambda sp, x: sp.log(x),
       python="_log({0})", numpy="np.log({0})"),
    Op("log1p", 1, runtime.log1p, symbol="log1p", method="log1p", negative_zero="any",
       doc="log(1 + x), accurate for tiny x (see graphc.passes.stabilize)",
       vjp=lambda F, g, out, x: (g * F.pow(1 + x, -1),),
       sympy=lambda sp, x: sp.log(1 + x),
       python="_log1p({0})", numpy="np.log1p({0})"),
    Op("softplus", 1, runtime.softplus, symbol="softplus", method="softplus", negative_zero="never",
       doc="log(1 + exp(x)) without overflow or underflow (see graphc.passes.stabilize)",
       vjp=lambda F, g, out, x: (F.sigmoid(x) * g,),
       sympy=lambda sp, x: sp.log(1 + sp.exp(x)),
       python="_softplus({0})", numpy="_vsoftplus({0})"),
    Op("sigmoid", 1, runtime.sigmoid, symbol="sigmoid", method="sigmoid", negative_zero="never",
       vjp=lambda F, g, out, x: ((out * (1 - out)) * g,),
       sympy=lambda sp, x: 1 / (1 + sp.exp(-x)),
       python="_sigmoid({0})", numpy="_vsigmoid({0})"),
    Op("sin", 1, runtime.sin, symbol="sin", method="sin", negative_zero="any",
       vjp=lambda F, g, out, x: (F.cos(x) * g,),
       sympy=lambda sp, x: sp.sin(x),
       python="_sin({0})", numpy="np.sin({0})"),
    Op("cos", 1, runtime.cos, symbol="cos", method="cos", negative_zero="never",
       vjp=lambda F, g, out, x: ((-F.sin(x)) * g,),
       sympy=lambda sp, x: sp.cos(x),
       python="_cos({0})", numpy="np.cos({0})"),
    Op("step", 1, runtime.step, symbol="step", negative_zero="never",
       doc="1 if x > 0 else 0: relu's derivative; its own derivative is zero",
       vjp=lambda F, g, out, x: (None,),
       sympy=_sym_step,
       python="_step({0})", numpy="_vstep({0})"),
    Op("max", 2, runtime.maximum, symbol="max", method="max", negative_zero="any",
       doc="the larger operand (nan if either is nan); ties send the gradient to the first",
       vjp=lambda F, g, out, a, b: ((1 - F.step(b - a)) * g, F.step(b - a) * g),
       sympy=_sym_max,
       python="_max({0}, {1})", numpy="_vmax({0}, {1})"),
)

#: Leaf kinds of graph nodes.  They are not operations and have no table entry.
LEAVES = ("input", "param", "const")

#: The algebra that makes derivative rules compute floats (eager backward).
FLOATS = types.SimpleNamespace(**{name: op.eval for name, op in TABLE.items()})


def lookup(name: str) -> Op:
    """The table entry for ``name``; a clear error for an unknown op."""
    try:
        return TABLE[name]
    except KeyError:
        from .errors import GraphcError
        raise GraphcError(f"unknown op {name!r}; graphc knows {', '.join(TABLE)}") from None


def format_number(x: float) -> str:
    """A Python literal for ``x`` that round-trips bit for bit, inf, nan and -0.0 included."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)
