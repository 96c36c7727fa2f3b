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

Tensor ops (``pack``, ``index``, ``dot``, ``matvec``, ``vecmat``, ``outer``, ``unit``) give
the one IR vector structure: the re-rolling pass (:mod:`graphc.passes.reroll`) rewrites a
neuron's ``sum(b, w0*x0, w1*x1, ...)`` into them.  A node's *shape* (``()`` for a scalar,
``(n,)``, ``(m, n)``) is never stored: each op's ``shape`` rule derives it from its
operands' shapes and its parameters (:attr:`graphc.graph.Graph.shapes`).  Every scalar op is
*elementwise*: applied to tensors of one shape (constants broadcast) it acts lane by lane,
which is how ``relu`` of a whole layer and the vectorized backward pass are written.  A
tensor value, when one is computed on floats, is a flat row-major tuple.  Tensors exist
only in graphs: eager ``Value`` s are scalars.

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

    ``eval(*operands, *params)`` computes a float (a flat tuple for tensor results).
    ``vjp(F, g, out, *operands, *params)`` returns one cotangent contribution per operand
    (``None`` where there is none), given the output's cotangent ``g`` and its value
    ``out``.  ``shape(operand_shapes, params)`` is the result's shape (ValueError when the
    operands do not fit).  Spellings are format strings over operand expressions ``{0}``,
    ``{1}``, ... and parameter literals ``{exponent}``, or a callable ``(operands, params)
    -> str`` for variadic ops.  The C spelling of a tensor op is a statement calling a
    helper of the C prelude (:mod:`graphc.codegen.c`); it may also use ``{out}`` (the result
    array) and the dimensions ``{m}``, ``{n}``, ``{size}`` the C backend fills in.
    """

    name: str
    arity: int | None  # None: any number of operands (at least one)
    eval: Callable[..., float]
    vjp: Callable[..., tuple]
    sympy: Callable[..., Any]  # sympy(sp, *operands, *params) -> sympy expression
    python: Any  # a spelling (see above); operands are names or literals, so no parentheses
    numpy: Any = None  # a spelling over arrays; may call np.* and graphc.runtime_numpy as _v*
    c: Any = None  # a C99 expression over doubles (scalar ops) or a helper-call statement (tensor ops)
    params: tuple[str, ...] = ()
    elementwise: bool = True  # False for tensor ops: they never act lane by lane
    shape: Callable[[list, tuple], tuple] = None  # (operand shapes, params) -> shape; None: elementwise
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

    def result_shape(self, shapes: list, params: tuple = ()) -> tuple:
        """The shape of this op's result from its operands' shapes (ValueError if they clash)."""
        if self.shape is not None:
            return self.shape(shapes, params)
        return broadcast(shapes, self.name)

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


def broadcast(shapes: list, name: str = "op") -> tuple:
    """The common shape of an elementwise op's operands: scalars broadcast, tensors must agree."""
    result = ()
    for shape in shapes:
        if shape:
            if result and shape != result:
                raise ValueError(f"{name} operands have different shapes {result} and {shape}")
            result = shape
    return result


def size_of(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _c_join(sep: str) -> Callable[..., str]:
    return lambda operands, params: "(" + sep.join(operands) + ")"


TABLE: dict[str, Op] = {}


def _define(*ops: Op) -> None:
    for op in ops:
        TABLE[op.name] = op


_define(
    Op("add", 2, operator.add, symbol="+", commutative=True, negative_zero="all",
       vjp=lambda F, g, out, a, b: (g, g),
       sympy=lambda sp, a, b: a + b,
       python="{0} + {1}", numpy="{0} + {1}",
       c="({0} + {1})"),
    Op("sub", 2, operator.sub, symbol="-",
       vjp=lambda F, g, out, a, b: (g, -g),
       sympy=lambda sp, a, b: a - b,
       python="{0} - {1}", numpy="{0} - {1}",
       c="({0} - {1})"),
    Op("mul", 2, operator.mul, symbol="*", commutative=True,
       vjp=lambda F, g, out, a, b: (b * g, a * g),
       sympy=lambda sp, a, b: a * b,
       python="{0} * {1}", numpy="{0} * {1}",
       c="({0} * {1})"),
    Op("neg", 1, operator.neg, symbol="neg",
       vjp=lambda F, g, out, a: (-g,),
       sympy=lambda sp, a: -a,
       python="-{0}", numpy="-{0}",
       c="(-{0})"),
    Op("sum", None, _sum_eval, symbol="sum", negative_zero="all",
       doc="n-ary sum, added left to right: ((x0 + x1) + x2) + ...",
       vjp=lambda F, g, out, *xs: (g,) * len(xs),
       sympy=lambda sp, *xs: sp.Add(*xs),
       python=_python_sum, numpy=_call("_vsum"),
       c=_c_join(" + ")),
    Op("pow", 1, runtime.pow, params=("exponent",),
       doc="x ** exponent for a number exponent",
       vjp=lambda F, g, out, x, e: ((e * F.pow(x, e - 1)) * g,) if e != 0 else (None,),  # x**0 is 1
       sympy=lambda sp, x, e: x ** _sym_number(sp, e),
       python="_pow({0}, {exponent})", numpy="_vpower({0}, {exponent})",
       c="pow({0}, {exponent})"),
    Op("vpow", 2, runtime.pow, symbol="**",
       doc="x ** y where the exponent y is a Value too",
       vjp=lambda F, g, out, x, y: ((y * F.vpow(x, y - 1)) * g, (F.log(x) * out) * g),
       sympy=lambda sp, x, y: x ** y,
       python="_vpow({0}, {1})", numpy="_vpower({0}, {1})",
       c="pow({0}, {1})"),
    Op("relu", 1, runtime.relu, symbol="ReLU", method="relu", negative_zero="any",
       vjp=lambda F, g, out, x: (F.step(x) * g,),  # x > 0 exactly when relu(x) > 0
       sympy=_sym_relu,
       python="_relu({0})", numpy="np.maximum(0.0, {0})",
       c="gc_relu({0})"),
    Op("tanh", 1, runtime.tanh, symbol="tanh", method="tanh", negative_zero="any",
       vjp=lambda F, g, out, x: ((1 - out * out) * g,),
       sympy=lambda sp, x: sp.tanh(x),
       python="_tanh({0})", numpy="np.tanh({0})",
       c="tanh({0})"),
    Op("exp", 1, runtime.exp, symbol="exp", method="exp", negative_zero="never",
       vjp=lambda F, g, out, x: (out * g,),
       sympy=lambda sp, x: sp.exp(x),
       python="_exp({0})", numpy="np.exp({0})",
       c="exp({0})"),
    Op("log", 1, runtime.log, symbol="log", method="log", negative_zero="never",
       vjp=lambda F, g, out, x: (g * F.pow(x, -1),),
       sympy=lambda sp, x: sp.log(x),
       python="_log({0})", numpy="np.log({0})",
       c="log({0})"),
    Op("log1p", 1, runtime.log1p, symbol="log1p", method="log1p", negative_zero="any",
       doc="log(1 + x), accurate for tiny x (see graphc.passes.stabilize)",
       vjp=lambda F, g, out, x: (g * F.pow(1 + x, -1),),
       sympy=lambda sp, x: sp.log(1 + x),
       python="_log1p({0})", numpy="np.log1p({0})",
       c="log1p({0})"),
    Op("softplus", 1, runtime.softplus, symbol="softplus", method="softplus", negative_zero="never",
       doc="log(1 + exp(x)) without overflow or underflow (see graphc.passes.stabilize)",
       vjp=lambda F, g, out, x: (F.sigmoid(x) * g,),
       sympy=lambda sp, x: sp.log(1 + sp.exp(x)),
       python="_softplus({0})", numpy="_vsoftplus({0})",
       c="gc_softplus({0})"),
    Op("sigmoid", 1, runtime.sigmoid, symbol="sigmoid", method="sigmoid", negative_zero="never",
       vjp=lambda F, g, out, x: ((out * (1 - out)) * g,),
       sympy=lambda sp, x: 1 / (1 + sp.exp(-x)),
       python="_sigmoid({0})", numpy="_vsigmoid({0})",
       c="gc_sigmoid({0})"),
    Op("sin", 1, runtime.sin, symbol="sin", method="sin", negative_zero="any",
       vjp=lambda F, g, out, x: (F.cos(x) * g,),
       sympy=lambda sp, x: sp.sin(x),
       python="_sin({0})", numpy="np.sin({0})",
       c="sin({0})"),
    Op("cos", 1, runtime.cos, symbol="cos", method="cos", negative_zero="never",
       vjp=lambda F, g, out, x: ((-F.sin(x)) * g,),
       sympy=lambda sp, x: sp.cos(x),
       python="_cos({0})", numpy="np.cos({0})",
       c="cos({0})"),
    Op("step", 1, runtime.step, symbol="step", negative_zero="never",
       doc="1 if x > 0 else 0: relu's derivative; its own derivative is zero",
       vjp=lambda F, g, out, x: (None,),
       sympy=_sym_step,
       python="_step({0})", numpy="_vstep({0})",
       c="gc_step({0})"),
    Op("max", 2, runtime.maximum, symbol="max", method="max", negative_zero="any",
       doc="the larger operand (nan if either is nan); ties send the gradient to the first",
       vjp=lambda F, g, out, a, b: ((1 - F.step(b - a)) * g, F.step(b - a) * g),
       sympy=_sym_max,
       python="_max({0}, {1})", numpy="_vmax({0}, {1})",
       c="gc_max({0}, {1})"),
)

# -- comparisons and true division: what traced plain numbers compute ------------------
# Python code on ``x.data`` (``x.data > 0``, ``sum(hits) / len(hits)``) computes plain
# numbers, not Values; a trace records them with these ops (graphc.traced), so a compiled
# program computes them live and checks its guards (graphc.guards).  A comparison gives
# 1.0 or 0.0 and has zero derivative, as ``step``; ``truediv`` is Python's ``/``, correctly
# rounded (Value's ``/`` stays micrograd's ``a * b**-1``).

def _comparison(name: str, python: str, test: Callable[[float, float], bool], sym: str) -> Op:
    return Op(name, 2, lambda a, b: 1.0 if test(a, b) else 0.0, symbol=name, negative_zero="never",
              doc=f"1.0 if a {python} b else 0.0 (a Python comparison as a number); its derivative is zero",
              vjp=lambda F, g, out, a, b: (None, None),
              sympy=lambda sp, a, b: sp.Piecewise((1, getattr(sp, sym)(a, b)), (0, True)),
              python=f"_{name}({{0}}, {{1}})", numpy=f"({{0}} {python} {{1}}) * 1.0",
              c=f"(({{0}} {python} {{1}}) ? 1.0 : 0.0)")


_define(
    _comparison("lt", "<", operator.lt, "Lt"),
    _comparison("le", "<=", operator.le, "Le"),
    _comparison("gt", ">", operator.gt, "Gt"),
    _comparison("ge", ">=", operator.ge, "Ge"),
    _comparison("eq", "==", operator.eq, "Eq"),
    _comparison("ne", "!=", operator.ne, "Ne"),
    Op("truediv", 2, runtime.truediv, symbol="truediv",
       doc="a / b as Python divides floats, correctly rounded (inf or nan at b = 0, as IEEE)",
       vjp=lambda F, g, out, a, b: (F.truediv(g, b), -(F.truediv(out, b) * g)),
       sympy=lambda sp, a, b: a / b,
       python="_truediv({0}, {1})", numpy="np.true_divide({0}, {1})",
       c="({0} / {1})"),
)

# -- tensor ops: what the re-rolling pass builds ----------------------------------------
# Values on floats are flat row-major tuples.  Summation orders are part of each op's
# meaning, chosen so a re-rolled graph computes what the scalar graph did, bit for bit.

def _pack_eval(*xs_and_shape):
    return tuple(xs_and_shape[:-1])


def _dot_eval(acc, u, v):
    for a, b in zip(u, v):
        acc = acc + a * b
    return acc


def _matvec_eval(b, W, x):
    n = len(x)
    m = len(W) // n
    rows = []
    for j in range(m):
        acc = b[j] if isinstance(b, tuple) else b
        for k in range(n):
            acc = acc + W[j * n + k] * x[k]
        rows.append(acc)
    return tuple(rows)


def _vecmat_eval(g, W):
    m = len(g)
    n = len(W) // m
    out = [-0.0] * n  # -0.0 + t is t for every t: the first row's terms are taken as they are
    for j in range(m - 1, -1, -1):
        for k in range(n):
            out[k] = out[k] + W[j * n + k] * g[j]
    return tuple(out)


def _outer_eval(a, b):
    return tuple(bk * aj for aj in a for bk in b)


def _unit_eval(g, like, i):
    out = [0.0] * len(like)
    out[i] = g
    return tuple(out)


def _pack_shape(shapes, params):
    (shape,) = params
    if any(shapes):
        raise ValueError("pack takes scalars")
    if size_of(shape) != len(shapes):
        raise ValueError(f"pack of {len(shapes)} scalars cannot have shape {shape}")
    return tuple(shape)


def _index_shape(shapes, params):
    (v,), (i,) = shapes, params
    if not v or not 0 <= i < size_of(v):
        raise ValueError(f"index {i} does not address a lane of a tensor of shape {v}")
    return ()


def _dot_shape(shapes, params):
    acc, u, v = shapes
    if acc or len(u) != 1 or u != v:
        raise ValueError(f"dot takes a scalar and two vectors of one length; got shapes {shapes}")
    return ()


def _matvec_shape(shapes, params):
    b, W, x = shapes
    if len(W) != 2 or x != (W[1],) or b not in ((), (W[0],)):
        raise ValueError(f"matvec takes b (m,) or a scalar, W (m, n), x (n,); got shapes {shapes}")
    return (W[0],)


def _vecmat_shape(shapes, params):
    g, W = shapes
    if len(W) != 2 or g != (W[0],):
        raise ValueError(f"vecmat takes g (m,) and W (m, n); got shapes {shapes}")
    return (W[1],)


def _outer_shape(shapes, params):
    a, b = shapes
    if len(a) != 1 or len(b) != 1:
        raise ValueError(f"outer takes two vectors; got shapes {shapes}")
    return (a[0], b[0])


def _unit_shape(shapes, params):
    g, like = shapes
    if g or not like or not 0 <= params[0] < size_of(like):
        raise ValueError(f"unit takes a scalar and a tensor with lane {params[0]}; got shapes {shapes}")
    return like


def _sym_matrix(sp, values, shape):
    rows, cols = (shape[0], 1) if len(shape) == 1 else shape
    return sp.ImmutableMatrix(rows, cols, list(values))


def _sym_matvec(sp, b, W, x):
    return sp.ImmutableMatrix([(b[j] if hasattr(b, "shape") else b) + sum(W[j, k] * x[k] for k in range(W.shape[1]))
                               for j in range(W.shape[0])])


_define(
    Op("pack", None, _pack_eval, params=("shape",), elementwise=False, shape=_pack_shape,
       negative_zero="any",
       doc="scalars gathered into a tensor of the given shape, row-major",
       vjp=lambda F, g, out, *xs: tuple(F.index(g, k) for k in range(len(xs) - 1)),
       sympy=lambda sp, *xs: _sym_matrix(sp, xs[:-1], xs[-1]),
       python=lambda operands, params: "(" + ", ".join(operands) + ",)",
       numpy=lambda operands, params: f"_vpack({', '.join(operands)})",
       c=lambda operands, params: f"GC_PACK({{out}}, {', '.join(operands)});"),
    Op("index", 1, lambda v, i: v[i], params=("i",), elementwise=False, shape=_index_shape,
       negative_zero="any",
       doc="lane i of a tensor (row-major)",
       vjp=lambda F, g, out, v, i: (F.unit(g, v, i),),
       sympy=lambda sp, v, i: v[i],
       python="{0}[{i}]", numpy="{0}[{i}]", c="{0}[{i}]"),
    Op("unit", 2, _unit_eval, params=("i",), elementwise=False, shape=_unit_shape,
       doc="a tensor shaped like the second operand: the first operand at lane i, 0.0 elsewhere "
           "(index's derivative)",
       vjp=lambda F, g, out, x, like, i: (F.index(g, i), None),
       sympy=lambda sp, x, like, i: sp.ImmutableMatrix(*like.shape, [x if k == i else 0 for k in range(len(like))]),
       python="_unit({0}, {1}, {i})", numpy="_vunit({0}, {1}, {i})",
       c="GC_UNIT({out}, {size}, {0}, {i});"),
    Op("dot", 3, _dot_eval, elementwise=False, shape=_dot_shape,
       doc="acc + u0*v0 + u1*v1 + ..., added left to right: a neuron's sum(b, w0*x0, w1*x1, ...)",
       vjp=lambda F, g, out, acc, u, v: (g, v * g, u * g),
       sympy=lambda sp, acc, u, v: acc + sum(u[k] * v[k] for k in range(len(u))),
       python="_dot({0}, {1}, {2})", numpy="_vdot({0}, {1}, {2})",
       c="gc_dot({0}, {1}, {2}, {n})"),
    Op("matvec", 3, _matvec_eval, elementwise=False, shape=_matvec_shape,
       doc="y[j] = b[j] + W[j,0]*x[0] + W[j,1]*x[1] + ..., each row added left to right "
           "(a layer of neurons reading the same inputs); b may be a scalar for every row",
       vjp=lambda F, g, out, b, W, x: (g, F.outer(g, x), F.vecmat(g, W)),
       sympy=_sym_matvec,
       python="_matvec({0}, {1}, {2})", numpy="_vmatvec({0}, {1}, {2})",
       c="gc_matvec({out}, {0}, {s0}, {1}, {2}, {m}, {n});"),
    Op("vecmat", 2, _vecmat_eval, elementwise=False, shape=_vecmat_shape,
       doc="y[k] = W[m-1,k]*g[m-1] + ... + W[0,k]*g[0]: the last row first, the order in "
           "which reverse mode reaches a layer's neurons (matvec's gradient for x)",
       vjp=lambda F, g, out, h, W: (F.matvec(-0.0, W, g), F.outer(h, g)),
       sympy=lambda sp, g, W: sp.ImmutableMatrix([sum(W[j, k] * g[j] for j in range(W.shape[0]))
                                                  for k in range(W.shape[1])]),
       python="_vecmat({0}, {1})", numpy="_vvecmat({0}, {1})",
       c="gc_vecmat({out}, {0}, {1}, {m}, {n});"),
    Op("outer", 2, _outer_eval, elementwise=False, shape=_outer_shape,
       doc="y[j,k] = b[k] * a[j] (matvec's gradient for W)",
       vjp=lambda F, g, out, a, b: (F.matvec(-0.0, g, b), F.vecmat(a, g)),
       sympy=lambda sp, a, b: sp.ImmutableMatrix(len(a), len(b), [b[k] * a[j] for j in range(len(a))
                                                                   for k in range(len(b))]),
       python="_outer({0}, {1})", numpy="_vouter({0}, {1})",
       c="gc_outer({out}, {0}, {1}, {m}, {n});"),
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
