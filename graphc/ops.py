"""The op table: every operation graphc knows, defined once.

An :class:`Op` says everything the rest of graphc needs about an operation: how many
operands and which parameters it takes, how to evaluate it on floats, its local
derivative (a vector-Jacobian product), its shape rule, its SymPy form and how to
recognize that form (:mod:`graphc.sympy_forms`), and the Python operators it implements
(``__add__``, ``__radd__``, ...).  The eager engine (its operators and methods are
generated from the table), graph autodiff, printing, formulas, the command line's help and
the SymPy bridge read this table; each code generator has a spelling table of its own,
keyed by the op names here, next to the runtime helpers its spellings call
(:mod:`graphc.codegen.python_floats`, :mod:`graphc.codegen.numpy`,
:mod:`graphc.codegen.c_runtime`; a test checks that each spells every op).

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

import operator
import types
from dataclasses import dataclass, field
from typing import Any, Callable

from . import runtime
from . import sympy_forms as forms, tensor_rules
from .tensor_rules import size_of  # noqa: F401  (graphc.ops.size_of)

@dataclass(frozen=True)
class Op:
    """One operation.

    A node's *attrs* are the op's parameters (named by ``attr_names``: ``pow``'s exponent,
    ``index``'s lane) -- never model params, which are leaves of the graph.
    ``eval(*operands, *attrs)`` computes a float (a flat tuple for tensor results).
    ``vjp(F, g, out, *operands, *attrs)`` returns one cotangent contribution per operand
    (``None`` where there is none), given the output's cotangent ``g`` and its value
    ``out``.  ``shape(operand_shapes, attrs)`` is the result's shape (ValueError when the
    operands do not fit).
    """

    name: str
    arity: int | None  # None: any number of operands (at least one)
    eval: Callable[..., float]
    vjp: Callable[..., tuple]
    sympy: Callable[..., Any]  # sympy(sp, *operands, *attrs) -> sympy expression
    attr_names: tuple[str, ...] = ()  # the names of a node's attrs (its op parameters), e.g. ("exponent",)
    elementwise: bool = True  # False for tensor ops: they never act lane by lane
    shape: Callable[[list, tuple], tuple] = None  # (operand shapes, params) -> shape; None: elementwise
    symbol: str = ""  # micrograd's Value._op label ('+', '*', 'ReLU', '**2' for pow)
    method: str | None = None  # Value method name (``x.relu()``, ``a.max(b)``)
    # The Python operators this op implements on Values and graph-node handles, which are
    # generated from them (see `operators`): '__add__', '__radd__', '__neg__', ...
    operators: tuple[str, ...] = ()
    # sympy_inverse(sp, e) -> (operand expressions, params) when the SymPy expression e is
    # this op, else None (see graphc.sympy_forms); None for ops SymPy writes as a call.
    sympy_inverse: Callable[..., Any] | None = None
    commutative: bool = False
    # When can the result be -0.0?  Lets `simplify` prove `x + 0 -> x` harmless (it is wrong
    # only for x = -0.0).  "never"; "all": only if every operand can be; "any": if some
    # operand can be; "maybe": no promise.
    negative_zero: str = "maybe"
    # Whether reverse mode hands the cotangents to the operands last first.  ``pack`` stands
    # for one scalar consumer per lane, made in lane order, and reverse mode reaches the
    # last of them first: an operand packed in several lanes (``pack(x, x, x)``) adds the
    # last lane's contribution first, as the scalar program does.
    vjp_reversed: bool = False
    # Whether reverse mode hands each cotangent part on as it came, not their sum.  ``index``
    # reads one lane of a tensor that other nodes may read whole: its parts must meet
    # theirs in the tensor's own sum in arrival order, as the scalar program adds a lane's
    # parts one by one (``(V + a) + b``, not ``V + (a + b)``).  "when_operands_have_parts": only
    # where an operand already has parts of its own (``pack``: a param in an MLP's layer
    # and in an L2 term ``dot(P, P)`` written before the data loss gets ``(m + a) + a``) or
    # is packed in several lanes (``pack(x, x)`` read twice: ``((a1 + a0) + b1) + b0``).
    # It assumes the parts an operand has already came before the pack's in reverse mode's
    # order, as re-rolling keeps them (an exception in README "Exactness" where it cannot).
    vjp_per_part: bool | str = False
    # lane_vjp(F, lanes, operand shapes, *operands, *attrs): each operand's cotangent parts
    # (a list) when lanes of a tensor result read apart by ``index`` have cotangents --
    # only some of them, or all in another order than last first -- ``lanes`` [(k, s_k)] in
    # the order reverse mode reached them.  The scalar graph differentiates those lanes
    # alone, in that order; ``vjp`` on the whole tensor would multiply the other lanes'
    # zeros by operands that may be inf, and add the lanes last first.  Elementwise ops need
    # none (reverse mode runs ``vjp`` on each lane); None for other ops: ``vjp`` takes the
    # whole tensor.
    lane_vjp: Callable[..., tuple] | None = None
    # Whether the gradient stops here by definition, not by calculus (``stop_gradient``): its
    # vjp is none though its value moves with its operand, so finite differences of a graph
    # holding it must hold it still (graphc.check) to measure reverse mode's slope.
    stops_gradient: bool = False
    doc: str = field(default="", compare=False)

    def __reduce__(self) -> tuple:
        """Pickled (and copied) as its name: the table's entry is the op, and its functions
        are lambdas pickle cannot name (an outside hunt: an eager Value with a history)."""
        return lookup, (self.name,)

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


def broadcast(shapes: list, name: str = "op") -> tuple:
    """The common shape of an elementwise op's operands: scalars broadcast, tensors must agree."""
    result = ()
    for shape in shapes:
        if shape:
            if result and shape != result:
                raise ValueError(f"{name} operands have different shapes {result} and {shape}")
            result = shape
    return result


TABLE: dict[str, Op] = {}


def _define(*ops: Op) -> None:
    for op in ops:
        TABLE[op.name] = op


_define(
    Op("add", 2, operator.add, symbol="+", commutative=True, negative_zero="all",
       operators=("__add__", "__radd__"), sympy_inverse=forms.match_add,
       vjp=lambda F, g, out, a, b: (g, g),
       sympy=lambda sp, a, b: a + b),
    Op("sub", 2, operator.sub, symbol="-",
       operators=("__sub__", "__rsub__"), sympy_inverse=forms.match_sub,
       vjp=lambda F, g, out, a, b: (g, -g),
       sympy=lambda sp, a, b: a - b),
    Op("mul", 2, operator.mul, symbol="*", commutative=True,
       operators=("__mul__", "__rmul__"), sympy_inverse=forms.match_mul,
       vjp=lambda F, g, out, a, b: (b * g, a * g),
       sympy=lambda sp, a, b: a * b),
    Op("neg", 1, operator.neg, symbol="neg", operators=("__neg__",), sympy_inverse=forms.match_neg,
       vjp=lambda F, g, out, a: (-g,),
       sympy=lambda sp, a: -a),
    Op("sum", None, _sum_eval, symbol="sum", negative_zero="all", sympy_inverse=forms.match_sum,
       doc="n-ary sum, added left to right: ((x0 + x1) + x2) + ...",
       vjp=lambda F, g, out, *xs: (g,) * len(xs),
       sympy=lambda sp, *xs: sp.Add(*xs)),
    Op("pow", 1, runtime.pow, attr_names=("exponent",), operators=("__pow__",), sympy_inverse=forms.match_pow,
       doc="x ** exponent for a number exponent",
       vjp=lambda F, g, out, x, e: ((e * F.pow(x, e - 1)) * g,) if e != 0 else (None,),  # x**0 is 1
       sympy=lambda sp, x, e: x ** forms.sympy_number(e)),
    Op("vpow", 2, runtime.pow, symbol="**", operators=("__pow__", "__rpow__"),
       sympy_inverse=forms.match_vpow,
       doc="x ** y where the exponent y is a Value too.  As JAX and PyTorch: d/dx is 0 where y is 0 "
           "(y * x ** (y - 1) with y - 1 taken as 0 there: 0 * inf at x = 0 was nan), d/dy is 0 where x is 0 "
           "and y >= 0 (log(x) * x ** y with log(1) for log(0))",
       vjp=lambda F, g, out, x, y: ((y * F.vpow(x, (y - 1) + F.eq(y, 0.0))) * g, (F.log(x + F.eq(x, 0.0)) * out) * g),
       sympy=lambda sp, x, y: x ** y),
    Op("relu", 1, runtime.relu, symbol="ReLU", method="relu", negative_zero="any",
       sympy_inverse=forms.match_relu,
       vjp=lambda F, g, out, x: (F.step(x) * g,),  # x > 0 exactly when relu(x) > 0
       sympy=forms.relu),
    Op("tanh", 1, runtime.tanh, symbol="tanh", method="tanh", negative_zero="any",
       vjp=lambda F, g, out, x: ((1 - out * out) * g,),
       sympy=lambda sp, x: sp.tanh(x)),
    Op("exp", 1, runtime.exp, symbol="exp", method="exp", negative_zero="never",
       vjp=lambda F, g, out, x: (out * g,),
       sympy=lambda sp, x: sp.exp(x)),
    Op("log", 1, runtime.log, symbol="log", method="log", negative_zero="never",
       vjp=lambda F, g, out, x: (g * F.pow(x, -1),),
       sympy=lambda sp, x: sp.log(x)),
    Op("log1p", 1, runtime.log1p, symbol="log1p", method="log1p", negative_zero="any",
       doc="log(1 + x), accurate for tiny x (see graphc.passes.stabilize)",
       vjp=lambda F, g, out, x: (g * F.pow(1 + x, -1),),
       sympy=lambda sp, x: sp.log(1 + x)),
    Op("softplus", 1, runtime.softplus, symbol="softplus", method="softplus", negative_zero="never",
       doc="log(1 + exp(x)) without overflow or underflow (see graphc.passes.stabilize)",
       vjp=lambda F, g, out, x: (F.sigmoid(x) * g,),
       sympy=lambda sp, x: sp.log(1 + sp.exp(x))),
    Op("sigmoid", 1, runtime.sigmoid, symbol="sigmoid", method="sigmoid", negative_zero="never",
       sympy_inverse=forms.match_sigmoid,
       vjp=lambda F, g, out, x: ((out * (1 - out)) * g,),
       sympy=lambda sp, x: 1 / (1 + sp.exp(-x))),
    Op("sin", 1, runtime.sin, symbol="sin", method="sin", negative_zero="any",
       vjp=lambda F, g, out, x: (F.cos(x) * g,),
       sympy=lambda sp, x: sp.sin(x)),
    Op("cos", 1, runtime.cos, symbol="cos", method="cos", negative_zero="never",
       vjp=lambda F, g, out, x: ((-F.sin(x)) * g,),
       sympy=lambda sp, x: sp.cos(x)),
    Op("step", 1, runtime.step, symbol="step", negative_zero="never", sympy_inverse=forms.match_step,
       doc="1 if x > 0 else 0: relu's derivative; its own derivative is zero",
       vjp=lambda F, g, out, x: (None,),
       sympy=forms.step),
    Op("max", 2, runtime.maximum, symbol="max", method="max", negative_zero="any",
       sympy_inverse=forms.match_max,
       doc="the larger operand (nan if either is nan); ties send the gradient to the first",
       vjp=lambda F, g, out, a, b: ((1 - (b_wins := F.step(b - a))) * g, b_wins * g),  # one step node
       sympy=forms.maximum),
    Op("abs", 1, runtime.fabs, symbol="abs", method="abs", operators=("__abs__",), negative_zero="never",
       doc="|x|; its derivative at 0 is 0, as PyTorch's",
       vjp=lambda F, g, out, x: ((F.step(x) - F.step(-x)) * g,),  # sign(x), 0 at 0 (and at nan)
       sympy=lambda sp, x: sp.Abs(x)),
    Op("stop_gradient", 1, lambda x: x, symbol="stop_gradient", method="detach", negative_zero="any",
       stops_gradient=True,
       doc="x itself, through which no gradient flows back (PyTorch's detach, JAX's stop_gradient): "
           "a number the gradient treats as a constant, computed live",
       vjp=lambda F, g, out, x: (None,),
       sympy=forms.stop_gradient),
    Op("sqrt", 1, runtime.sqrt, symbol="sqrt", method="sqrt", negative_zero="any",
       doc="the square root, correctly rounded (nan below 0, -0.0 at -0.0)",
       vjp=lambda F, g, out, x: ((0.5 * F.pow(out, -1)) * g,),  # 1 / (2 sqrt(x))
       sympy=lambda sp, x: sp.sqrt(x)),
)

# -- comparisons and true division: what traced plain numbers compute ------------------
# Python code on ``x.data`` (``x.data > 0``, ``sum(hits) / len(hits)``) computes plain
# numbers, not Values; a trace records them with these ops (graphc.traced), so a compiled
# program computes them live and checks its guards (graphc.guards).  A comparison gives
# 1.0 or 0.0 and has zero derivative, as ``step``; ``truediv`` is Python's ``/``, correctly
# rounded (Value's ``/`` stays micrograd's ``a * b**-1``).

def _comparison(name: str, python: str, sym: str) -> Op:
    return Op(name, 2, getattr(runtime, name), symbol=name, negative_zero="never",
              doc=f"1.0 if a {python} b else 0.0 (a Python comparison as a number); its derivative is zero",
              vjp=lambda F, g, out, a, b: (None, None),
              sympy=lambda sp, a, b: sp.Piecewise((1, getattr(sp, sym)(a, b)), (0, True)),
              sympy_inverse=forms.match_relation(name))


_COMPARISON_OPS = (
    _comparison("lt", "<", "Lt"),
    _comparison("le", "<=", "Le"),
    _comparison("gt", ">", "Gt"),
    _comparison("ge", ">=", "Ge"),
    _comparison("eq", "==", "Eq"),
    _comparison("ne", "!=", "Ne"),
)
#: The comparisons' names: a decision, a plain bool in eager code whatever it compares.
COMPARISONS = frozenset(op.name for op in _COMPARISON_OPS)

_define(
    *_COMPARISON_OPS,
    Op("truediv", 2, runtime.truediv, symbol="truediv",
       doc="a / b as Python divides floats, correctly rounded (inf or nan at b = 0, as IEEE)",
       vjp=lambda F, g, out, a, b: (F.truediv(g, b), -(F.truediv(out, b) * g)),
       sympy=lambda sp, a, b: a / b),
)

# -- tensor ops: what the re-rolling pass builds ----------------------------------------
# Values on floats are flat row-major tuples.  Summation orders are part of each op's
# meaning, chosen so a re-rolled graph computes what the scalar graph did, bit for bit.

_define(
    Op("pack", None, tensor_rules.pack_eval, attr_names=("shape",), elementwise=False, shape=tensor_rules.pack_shape,
       negative_zero="any", vjp_reversed=True, vjp_per_part="when_operands_have_parts",
       doc="scalars gathered into a tensor of the given shape, row-major",
       vjp=lambda F, g, out, *xs: F.lanes(g, len(xs) - 1), lane_vjp=tensor_rules.pack_lane_vjp,
       sympy=lambda sp, *xs: tensor_rules.sym_matrix(sp, xs[:-1], xs[-1])),
    Op("index", 1, lambda v, i: v[i], attr_names=("i",), elementwise=False, shape=tensor_rules.index_shape,
       negative_zero="any", vjp_per_part=True,
       doc="lane i of a tensor (row-major)",
       vjp=lambda F, g, out, v, i: (F.unit(g, v, i),),
       sympy=lambda sp, v, i: v[i]),
    Op("unit", 2, tensor_rules.unit_eval, attr_names=("i",), elementwise=False, shape=tensor_rules.unit_shape,
       doc="a tensor shaped like the second operand: the first operand at lane i, 0.0 elsewhere "
           "(index's derivative)",
       vjp=lambda F, g, out, x, like, i: (F.index(g, i), None),
       sympy=lambda sp, x, like, i: sp.ImmutableMatrix(*like.shape, [x if k == i else 0 for k in range(len(like))])),
    Op("dot", 3, tensor_rules.dot_eval, elementwise=False, shape=tensor_rules.dot_shape,
       doc="acc + u0*v0 + u1*v1 + ..., added left to right: a neuron's sum(b, w0*x0, w1*x1, ...)",
       vjp=lambda F, g, out, acc, u, v: (g, v * g, u * g),
       sympy=lambda sp, acc, u, v: acc + sum(u[k] * v[k] for k in range(len(u)))),
    Op("matvec", 3, tensor_rules.matvec_eval, elementwise=False, shape=tensor_rules.matvec_shape,
       doc="y[j] = b[j] + W[j,0]*x[0] + W[j,1]*x[1] + ..., each row added left to right "
           "(a layer of neurons reading the same inputs); b may be a scalar for every row",
       vjp=lambda F, g, out, b, W, x: (g, F.outer(g, x), F.vecmat(-0.0, g, W)),
       lane_vjp=tensor_rules.matvec_lane_vjp, sympy=tensor_rules.sym_matvec),
    Op("vecmat", 3, tensor_rules.vecmat_eval, elementwise=False, shape=tensor_rules.vecmat_shape,
       doc="y[k] = acc[k] + W[m-1,k]*g[m-1] + ... + W[0,k]*g[0]: the last row first, the order "
           "in which reverse mode reaches a layer's neurons (matvec's gradient for x, acc -0.0; "
           "acc holds the parts of that gradient reverse mode reached before the layer); acc "
           "may be a scalar for every lane",
       vjp=lambda F, g, out, acc, h, W: (g, F.matvec(-0.0, W, g), F.outer(h, g)),
       sympy=tensor_rules.sym_vecmat),
    Op("outer", 2, tensor_rules.outer_eval, elementwise=False, shape=tensor_rules.outer_shape,
       doc="y[j,k] = b[k] * a[j] (matvec's gradient for W)",
       vjp=lambda F, g, out, a, b: (F.matvec(-0.0, g, b), F.vecmat(-0.0, a, g)),
       sympy=lambda sp, a, b: sp.ImmutableMatrix(len(a), len(b), [b[k] * a[j] for j in range(len(a))
                                                                   for k in range(len(b))])),
)

#: Leaf kinds of graph nodes.  They are not operations and have no table entry.
LEAVES = ("input", "param", "const")
#: ``_attr`` of the leaf Values operators create for plain numbers (``x * 2``): a trace makes
#: them constants even when they were created before it (they are never parameters).
CONSTANT = ("constant",)

#: The algebra that makes derivative rules compute floats (eager backward); ``lanes(g, n)``:
#: ``index(g, k)`` for k = 0 .. n-1 (a pack's cotangents), as :func:`graphc.autodiff.algebra` has.
FLOATS = types.SimpleNamespace(**{name: op.eval for name, op in TABLE.items()}, lanes=lambda g, n: tuple(g[:n]))


def lookup(name: str) -> Op:
    """The table entry for ``name``; a clear error for an unknown op."""
    try:
        return TABLE[name]
    except KeyError:
        from .errors import GraphcError
        raise GraphcError(f"unknown op {name!r}; graphc knows {', '.join(TABLE)}") from None


#: The ops that add: ``add`` for two operands, ``sum`` for more.
SUMS = ("add", "sum")

#: The ops whose result eager code holds as a number of its own, not a Value computed from
#: their operands: a comparison's bool, ``.data``'s float or ``detach()``'s leaf (a stopped
#: gradient).  Eager ``backward()`` never walks past such a number into what it was computed
#: from, so reverse mode's order does not either (:func:`graphc.autodiff.reverse_mode_order`).
WALLS = COMPARISONS | {name for name, op in TABLE.items() if op.stops_gradient}


def sum_op(count: int) -> str:
    """The op adding ``count`` (at least two) operands left to right."""
    return "add" if count == 2 else "sum"


def operators() -> dict[str, tuple[Op, ...]]:
    """Each Python operator method (``'__add__'``) and the ops implementing it, in table
    order: ``__pow__`` has two, ``pow`` for a number exponent, ``vpow`` for a Value one."""
    found: dict[str, tuple[Op, ...]] = {}
    for op in TABLE.values():
        for name in op.operators:
            found[name] = found.get(name, ()) + (op,)
    return found


def is_reflected(name: str) -> bool:
    """Whether operator method ``name`` is reflected (``__radd__``: ``other + self``)."""
    return name.startswith("__r") and f"__{name[3:]}" in operators()


def written_as_call(op: Op) -> bool:
    """Whether formulas and SymPy write ``op`` as a call ``name(x, ...)``: an elementwise op
    of fixed arity, without parameters, that is no operator (or a method as well: ``abs``)."""
    return op.elementwise and bool(op.arity) and not op.attr_names and (bool(op.method) or not op.operators)
