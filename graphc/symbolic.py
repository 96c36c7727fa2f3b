"""The SymPy bridge: a Graph as SymPy expressions, and SymPy expressions as a Graph.

``to_sympy`` reads each op's SymPy form from the op table, node by node in id order, so
SymPy sees exactly what the graph computes (the same decomposition: ``x / y`` is
``x * y**-1``); ops whose form is a Piecewise (relu, step, max) or a composite (sigmoid)
stay named functions by default, defined by those same table forms.  ``from_sympy``
walks a SymPy tree with an explicit stack and maps it onto table ops, so a formula can
be compiled.  Neither ever parses or evaluates text.

Constants become exact rationals of their shortest decimal form (``0.1`` -> ``1/10``),
which keeps SymPy's simplification exact and round-trips through ``float``; ``-0.0``
becomes ``0`` (SymPy has no signed zero), ``inf`` ``oo`` and ``nan`` ``nan``.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import sympy as sp

from . import ops
from .errors import ArgumentError, GraphcError
from .graph import LEAVES, Builder, Graph
from .tree import SCALAR

#: ``to_sympy`` refuses graphs with more live operations (see its docstring) ...
MAX_NODES = 20_000
#: ... or deeper than this: SymPy recurses once per level (a few frames each).
MAX_DEPTH = 100


def sympy_number(value: float) -> sp.Expr:
    """``value`` as an exact SymPy number: integers stay integers, ``0.1`` becomes ``1/10``."""
    value = float(value)
    if math.isnan(value):
        return sp.nan
    if math.isinf(value):
        return sp.oo if value > 0 else -sp.oo
    if value.is_integer() and abs(value) < 2.0 ** 53:
        return sp.Integer(int(value))
    return sp.Rational(repr(value))


def symbols_of(graph: Graph, **assumptions: Any) -> list[sp.Symbol]:
    """One Symbol per input, then per param, named as in the generated code (``graph.names``).

    Symbols are real unless ``assumptions`` say otherwise: graph values are real numbers,
    and SymPy spends exponential time on nested functions of symbols it cannot assume
    real (``tanh`` of ``tanh`` of ... asks whether each argument is zero).
    """
    assumptions.setdefault("real", True)
    names = graph.names
    return [sp.Symbol(names[i], **assumptions) for i in list(graph.inputs) + list(graph.params)]


class TableFunction(sp.Function):
    """A table op as a named SymPy function, ``relu(x)``; its meaning is the table's form.

    Numbers evaluate (``relu(2)`` is 2); ``diff`` and ``.rewrite(sp.Piecewise)`` use the op
    table's SymPy form, so nothing about the op is defined twice.
    """

    op_name = ""
    arity = 1

    @classmethod
    def eval(cls, *args):
        """SymPy's hook: the value for number arguments, None (stay unevaluated) otherwise."""
        if all(a.is_Number for a in args):
            try:
                return ops.TABLE[cls.op_name].sympy(sp, *args)
            except TypeError:  # a nan comparison: leave it unevaluated
                return None
        return None

    def table_form(self) -> sp.Expr:
        """The op table's SymPy form of this application."""
        return ops.TABLE[self.op_name].sympy(sp, *self.args)

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        """SymPy's hook: the derivative in argument ``argindex``, from the table form."""
        dummies = [sp.Dummy() for _ in self.args]  # an argument may be any expression
        u = dummies[argindex - 1]
        derivative = sp.diff(ops.TABLE[self.op_name].sympy(sp, *dummies), u)
        for name, cls in _NAMED.items():  # relu' is step's form: say step(x)
            if cls.arity == 1 and derivative == ops.TABLE[name].sympy(sp, u):
                derivative = cls(u)
        return derivative.xreplace(dict(zip(dummies, self.args)))

    def _eval_rewrite_as_Piecewise(self, *args, **hints) -> sp.Expr:
        return ops.TABLE[self.op_name].sympy(sp, *args)

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.table_form().evalf(sp.core.evalf.prec_to_dps(prec))


def _function_ops() -> tuple[dict[str, Any], dict[str, type]]:
    """Every table op written as a call (``relu(x)``, ``max(a, b)``): its SymPy function.

    An op whose table form is a SymPy builtin of the same name (``exp``) uses that builtin;
    the others (``relu``, whose form is a Piecewise) get a :class:`TableFunction`.
    """
    functions: dict[str, Any] = {}
    named: dict[str, type] = {}
    for name, op in ops.TABLE.items():
        called = isinstance(op.python, str) and op.python.startswith(f"_{name}(")
        if op.params or not called or not (op.method or op.symbol == name):  # vpow is written **
            continue
        arity = op.arity or 1
        form = op.sympy(sp, *sp.symbols(f"a:{arity}"))
        if isinstance(form, sp.Function) and form.func.__name__ == name:
            functions[name] = form.func
        else:
            functions[name] = named[name] = type(name, (TableFunction,), {
                "op_name": name, "arity": arity, "nargs": arity, "__module__": __name__,
                "_imp_": staticmethod(op.eval),  # what sympy.lambdify calls
                "__doc__": f"graphc's {name!r} op as a SymPy function (see TableFunction)."})
    return functions, named


#: Table ops written as calls, by name: SymPy builtins (exp, ...) or TableFunctions (relu, ...).
FUNCTIONS, _NAMED = _function_ops()


def to_sympy(graph: Graph, *, symbols: Sequence[Any] | None = None, named: bool = True,
             max_nodes: int | None = MAX_NODES, max_depth: int | None = MAX_DEPTH) -> list[sp.Expr]:
    """One SymPy expression per output of ``graph``.

    Inputs and params become the real Symbols of :func:`symbols_of` (named after
    ``graph.names``, so they match the generated code), unless ``symbols`` gives one SymPy
    expression per input and then per param (a number substitutes a value, e.g. the seed
    of a gradient graph).

    ``named=True`` writes relu, step, sigmoid and max as named functions
    (:class:`TableFunction`: ``relu(x)``), whose derivatives and ``.rewrite(sp.Piecewise)``
    come from the op table; ``named=False`` writes every op in its table form
    (``Piecewise((x, x > 0), (0, True))``).  Named is the default because SymPy folds
    nested Piecewise forms into each other at exponential cost: eight nested relus take
    seconds, a two-layer relu MLP does not finish.

    Graphs with more than ``max_nodes`` live operations, or deeper than ``max_depth``
    (SymPy recurses once per level when it builds, prints or differentiates an
    expression), are refused with a :class:`GraphcError`; ``None`` lifts a limit.
    """
    if not isinstance(graph, Graph):
        raise ArgumentError(f"to_sympy takes a graphc.Graph (graphc.trace(...), compiled.graph); "
                            f"got {type(graph).__name__}")
    leaves = list(graph.inputs) + list(graph.params)
    given = list(symbols) if symbols is not None else symbols_of(graph)
    if len(given) != len(leaves):
        raise GraphcError(f"to_sympy: {len(leaves)} inputs and params need as many symbols; "
                          f"got {len(given)}")
    live = graph.live()
    _check_size(graph, live, max_nodes, max_depth)
    exprs: list[Any] = [None] * len(graph)
    for i, expr in zip(leaves, given):
        exprs[i] = expr
    try:
        for i, op in enumerate(graph.ops):
            if not live[i] or exprs[i] is not None:
                continue
            if op == "const":
                exprs[i] = sympy_number(graph.attrs[i][0])
            elif op not in LEAVES:
                operands = [exprs[a] for a in graph.args[i]]
                if named and op in _NAMED:
                    exprs[i] = _NAMED[op](*operands)
                else:
                    exprs[i] = ops.TABLE[op].sympy(sp, *operands, *graph.attrs[i])
    except RecursionError:
        raise GraphcError(f"to_sympy: SymPy recursed too deeply building node {i} of this "
                          f"{len(graph):,}-node graph; lower max_depth or use a smaller graph") from None
    return [exprs[o] for o in graph.outputs]


def _check_size(graph: Graph, live: list[bool], max_nodes: int | None, max_depth: int | None) -> None:
    size = 0
    depth = [0] * len(graph)
    for i, op in enumerate(graph.ops):
        if live[i] and op not in LEAVES:
            size += 1
            depth[i] = 1 + max(depth[a] for a in graph.args[i])
    deepest = max(depth, default=0)
    if max_nodes is not None and size > max_nodes:
        raise GraphcError(
            f"to_sympy: the graph has {size:,} operations, more than max_nodes={max_nodes:,}; "
            f"SymPy expressions of that size swell (automatic simplification grows faster "
            f"than the graph) -- pass max_nodes=None to try anyway")
    if max_depth is not None and deepest > max_depth:
        raise GraphcError(
            f"to_sympy: the graph is {deepest:,} operations deep, more than max_depth={max_depth:,}; "
            f"SymPy builds, prints and differentiates expressions recursively, one Python "
            f"frame or more per level, and fails with RecursionError on deeper ones")


# -- from SymPy -------------------------------------------------------------------------

_BY_FUNCTION = {f: name for name, f in FUNCTIONS.items()}
SUPPORTED = ("numbers, symbols, +, -, *, /, ** (number or expression exponents), "
             f"{', '.join(FUNCTIONS)}, Max, Min, Abs, Heaviside(x, 0), and the Piecewise forms of relu "
             "Piecewise((x, x > 0), (0, True)), step Piecewise((1, x > 0), (0, True)) and max "
             "Piecewise((a, a >= b), (b, True))")


def from_sympy(exprs: sp.Expr | Iterable[sp.Expr], symbols: Sequence[sp.Symbol] | None = None, *,
               name: str = "formula") -> Graph:
    """A Graph computing ``exprs`` (one expression, or several: one output each).

    ``symbols`` orders the graph's inputs (default: the free symbols sorted by name); the
    graph has no params.  Sums become ``add``/``sub``/``sum``, products ``mul``/``neg``,
    ``x / y`` micrograd's ``x * y**-1``, ``1 / (1 + exp(-x))`` ``sigmoid``; functions
    outside :data:`SUPPORTED` raise :class:`GraphcError`.
    """
    single = isinstance(exprs, (sp.Basic, int, float))
    roots = [_as_sympy(e) for e in ([exprs] if single else list(exprs))]
    if symbols is None:
        symbols = sorted(set().union(*(e.free_symbols for e in roots)), key=lambda s: s.name)
    symbols = list(symbols)
    for s in symbols:
        if not isinstance(s, sp.Symbol):
            raise GraphcError(f"from_sympy: symbols must be SymPy Symbols; got {type(s).__name__} {s!r}")
    if len(set(symbols)) != len(symbols):
        raise GraphcError(f"from_sympy: symbols repeat: {symbols}")
    b = Builder()
    memo: dict[sp.Basic, int] = {}
    inputs = []
    for s in symbols:
        memo[s] = b.add("input", (), (s.name,))
        inputs.append(memo[s])
    outputs = [_convert(root, b, memo, symbols) for root in roots]
    out_tree = SCALAR if single else ("list", (SCALAR,) * len(roots))
    return b.finish(inputs, [], outputs, in_tree=("tuple", (SCALAR,) * len(inputs)),
                    out_tree=out_tree, name=name).verify()


def _as_sympy(e: Any) -> sp.Basic:
    if isinstance(e, sp.Basic):
        return e
    if isinstance(e, (int, float)) and not isinstance(e, bool):
        return sympy_number(e)
    raise TypeError(f"from_sympy takes SymPy expressions (or numbers); got {type(e).__name__}. "
                    f"To read text use graphc.formula.parse, which accepts only graphc's functions")


def _convert(root: sp.Basic, b: Builder, memo: dict, symbols: list) -> int:
    """Post-order walk with an explicit stack: each expression planned once, emitted once."""
    stack: list[tuple[sp.Basic, tuple | None]] = [(root, None)]
    while stack:
        e, plan = stack.pop()
        if e in memo:
            continue
        if plan is None:
            plan = _plan(e, symbols)
            if plan[0] == "const":
                memo[e] = b.const(plan[2][0])
                continue
            stack.append((e, plan))
            stack.extend((operand, None) for operand in reversed(plan[1]) if operand not in memo)
        else:
            op, operands, attr = plan
            ids = tuple(memo[o] for o in operands)
            memo[e] = ids[0] if op == "=" else b.add(op, ids, attr)
    return memo[root]


def _plan(e: sp.Basic, symbols: list) -> tuple[str, tuple, tuple]:
    """The one node computing ``e``: (op, operand expressions, params)."""
    if e.is_Symbol:
        twin = [s for s in symbols if s.name == e.name]
        why = (f" (an input has that name, but is_real={twin[0].is_real} there and "
               f"{e.is_real} here)" if twin else "")
        raise GraphcError(f"from_sympy: symbol {e} is not among the inputs "
                          f"{', '.join(s.name for s in symbols) or '(none)'}{why}")
    if (e.is_Number or e.is_NumberSymbol) and (e is sp.nan or e.is_extended_real):
        return "const", (), (float(e),)
    if isinstance(e, sp.Add):
        return _plan_add(e.args)
    if isinstance(e, sp.Mul):
        coeff, rest = e.as_coeff_Mul()
        if coeff == -1:
            return "neg", (rest,), ()
        if coeff == 1 and rest != e:  # an unevaluated 1 * x is x, exactly
            return "=", (rest,), ()
        return "mul", (sp.Mul(*e.args[:-1]), e.args[-1]), ()
    if isinstance(e, sp.Pow):
        return _plan_pow(*e.args)
    if e.func in _BY_FUNCTION:
        return _BY_FUNCTION[e.func], e.args, ()
    if isinstance(e, (sp.Max, sp.Min)):
        return _plan_extremum(e)
    if isinstance(e, sp.Abs):  # |x| = max(x, -x)
        return "max", (e.args[0], -e.args[0]), ()
    if isinstance(e, sp.Heaviside):
        if len(e.args) == 2 and e.args[1] == 0:
            return "step", (e.args[0],), ()
        raise GraphcError("from_sympy: Heaviside(x) is 1/2 at 0, graphc's step is 0 there; "
                          "write Heaviside(x, 0)")
    if isinstance(e, sp.Piecewise):
        return _plan_piecewise(e)
    raise GraphcError(f"from_sympy: cannot express {type(e).__name__} ({_short(e)}) with graphc ops; "
                      f"supported: {SUPPORTED}")


def _short(e: sp.Basic) -> str:
    text = str(e)
    return text if len(text) <= 60 else text[:57] + "..."


def _plan_add(terms: tuple) -> tuple[str, tuple, tuple]:
    negative = [t for t in terms if t.as_coeff_Mul()[0].is_negative]
    positive = [t for t in terms if t not in negative]
    if negative and positive:  # a - b, with b's terms negated back
        return "sub", (sp.Add(*positive), sp.Add(*[-t for t in negative])), ()
    if not positive:
        return "neg", (sp.Add(*[-t for t in negative]),), ()
    return ("add" if len(terms) == 2 else "sum"), tuple(terms), ()


def _plan_pow(base: sp.Expr, exponent: sp.Expr) -> tuple[str, tuple, tuple]:
    if exponent == -1 and isinstance(base, sp.Add) and len(base.args) == 2 and sp.S.One in base.args:
        other = base.args[1] if base.args[0] == 1 else base.args[0]
        if isinstance(other, sp.exp):  # 1 / (1 + exp(-x)) is sigmoid(x)
            return "sigmoid", (-other.args[0],), ()
    if exponent.is_Number:
        if not exponent.is_extended_real or exponent is sp.nan:
            raise GraphcError(f"from_sympy: exponent {exponent} is not a real number")
        try:
            e = float(exponent)
        except OverflowError:  # an Integer beyond float range; a Rational or Float gives inf
            e = math.inf
        if math.isinf(e) and exponent.is_finite:
            raise GraphcError(f"from_sympy: exponent {_short(exponent)} does not fit in a float (|x| < 1.8e308); "
                              f"graphc's pow takes a float exponent")
        return "pow", (base,), (int(exponent) if exponent.is_Integer else e,)
    return "vpow", (base, exponent), ()


def _plan_extremum(e: sp.Expr) -> tuple[str, tuple, tuple]:
    *rest, last = e.args
    head = e.func(*rest) if len(rest) > 1 else rest[0]
    if isinstance(e, sp.Max):
        return "max", (head, last), ()
    return "neg", (sp.Max(-head, -last, evaluate=False),), ()  # min(a, b) = -max(-a, -b)


def _plan_piecewise(e: sp.Piecewise) -> tuple[str, tuple, tuple]:
    if len(e.args) == 2 and e.args[1].cond == sp.true:
        (value, cond), (other, _) = e.args
        relation = _RELATIONS.get(type(cond))
        if relation and value == 1 and other == 0 and not (relation in ("gt", "lt") and 0 in cond.args):
            return relation, tuple(cond.args), ()  # a comparison op's form (x > 0 stays step's)
        big, small, strict = _comparison(cond)
        if strict and other == 0 and big is not None:
            u = big if small == 0 else big - small
            if value == u:
                return "relu", (u,), ()
            if value == 1:
                return "step", (u,), ()
        if not strict and big is not None and value == big and other == small:
            return "max", (big, small), ()
    raise GraphcError(f"from_sympy: cannot express {_short(e)} with graphc ops; the Piecewise forms "
                      f"graphc knows are relu Piecewise((x, x > 0), (0, True)), step "
                      f"Piecewise((1, x > 0), (0, True)) and max Piecewise((a, a >= b), (b, True))")


#: SymPy relations and the comparison ops whose forms they are.
_RELATIONS = {sp.StrictLessThan: "lt", sp.LessThan: "le", sp.StrictGreaterThan: "gt", sp.GreaterThan: "ge",
              sp.Equality: "eq", sp.Unequality: "ne"}


def _comparison(cond: sp.Basic) -> tuple[Any, Any, bool]:
    """``cond`` as ``big > small`` (strict) or ``big >= small``; (None, None, False) otherwise."""
    if isinstance(cond, sp.StrictGreaterThan):
        return cond.lhs, cond.rhs, True
    if isinstance(cond, sp.StrictLessThan):
        return cond.rhs, cond.lhs, True
    if isinstance(cond, sp.GreaterThan):
        return cond.lhs, cond.rhs, False
    if isinstance(cond, sp.LessThan):
        return cond.rhs, cond.lhs, False
    return None, None, False
