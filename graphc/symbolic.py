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

import functools
import math
import numbers
import types
from typing import Any, Iterable, Sequence

import sympy as sp

from . import ops
from .errors import ArgumentError, GraphcError
from .graph import LEAVES, Builder, Graph
from . import sympy_forms as forms
from .sympy_forms import short, sympy_number
from .tree import SCALAR

#: ``to_sympy`` refuses graphs with more live operations (see its docstring) ...
MAX_NODES = 20_000
#: ... or deeper than this: SymPy recurses once per level (a few frames each).
MAX_DEPTH = 100


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

    Numbers evaluate (``relu(2)`` is 2); ``diff``, ``.rewrite(sp.Piecewise)`` and what SymPy
    assumes (``relu(x)`` is real for a real ``x``) use the op table's SymPy form, so nothing
    about the op is defined twice.
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

    def _table_fact(self, fact: str) -> bool | None:
        """What SymPy knows of ``fact`` about the table form: relu of a real is real, sqrt of
        a real only if it is >= 0.  Without these SymPy assumes nothing and writes
        ``|exp(relu(x))|`` as ``exp(re(relu(x)))``, which from_sympy cannot read."""
        try:
            return getattr(self.table_form(), f"is_{fact}")
        except TypeError:  # a comparison of a non-real number (relu(I)): undefined
            return None

    def _eval_is_extended_real(self) -> bool | None:
        return self._table_fact("extended_real")

    def _eval_is_finite(self) -> bool | None:
        return self._table_fact("finite")


def _function_ops() -> tuple[dict[str, Any], dict[str, type]]:
    """Every table op written as a call (``relu(x)``, ``max(a, b)``): its SymPy function.

    An op whose table form is one SymPy function applied to its operands (``exp``, ``Abs``)
    uses that function; the others (``relu``, whose form is a Piecewise) get a
    :class:`TableFunction`.
    """
    functions: dict[str, Any] = {}
    named: dict[str, type] = {}
    for name, op in ops.TABLE.items():
        if not ops.written_as_call(op):
            continue
        arity = op.arity
        arguments = sp.symbols(f"a:{arity}", real=True)
        form = op.sympy(sp, *arguments)
        if isinstance(form, sp.Function) and form.args == arguments and not isinstance(form, sp.Piecewise):
            functions[name] = form.func
        else:
            functions[name] = named[name] = type(name, (TableFunction,), {
                "op_name": name, "arity": arity, "nargs": arity, "__module__": __name__,
                "__qualname__": f"NAMED.{name}",  # pickle finds it there (check_grad's child process)
                "_imp_": staticmethod(op.eval),  # what sympy.lambdify calls
                "__doc__": f"graphc's {name!r} op as a SymPy function (see TableFunction)."})
    return functions, named


#: Table ops written as calls, by name: SymPy builtins (exp, ...) or TableFunctions (relu, ...).
FUNCTIONS, _NAMED = _function_ops()
#: The :class:`TableFunction` s by op name, as attributes: where their qualified names point.
NAMED = types.SimpleNamespace(**_NAMED)


def _symbol(given: Any) -> Any:
    """What ``to_sympy(symbols=...)`` substitutes for ``given``: a SymPy expression or a number
    as it is, a name as the real Symbol :func:`symbols_of` would make (``"p"``)."""
    if isinstance(given, str):
        if not given.isidentifier():
            raise ArgumentError(f"to_sympy: symbols holds {given!r}, which is no name; pass a SymPy expression")
        return sp.Symbol(given, real=True)
    if isinstance(given, (sp.Basic, numbers.Real)) and not isinstance(given, bool):
        return given
    raise ArgumentError(f"to_sympy: symbols must be SymPy expressions, numbers or names; got "
                        f"{type(given).__name__} {given!r:.60}")


def to_sympy(graph: Graph, *, symbols: Sequence[Any] | None = None, named: bool = True,
             max_nodes: int | None = MAX_NODES, max_depth: int | None = MAX_DEPTH,
             exact_constants: bool = False) -> list[sp.Expr]:
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

    Constants are their shortest decimals (``0.1`` is ``1/10``); ``exact_constants=True``
    makes each the float's exact binary value, the number the code computes with (what
    :func:`graphc.check_grad` evaluates).

    Graphs with more than ``max_nodes`` live operations, or deeper than ``max_depth``
    (SymPy recurses once per level when it builds, prints or differentiates an
    expression), are refused with a :class:`GraphcError`; ``None`` lifts a limit.
    """
    if not isinstance(graph, Graph):
        raise ArgumentError(f"to_sympy takes a graphc.Graph (graphc.trace(...), compiled.graph); "
                            f"got {type(graph).__name__}")
    leaves = list(graph.inputs) + list(graph.params)
    given = [_symbol(s) for s in symbols] if symbols is not None else symbols_of(graph)
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
                exprs[i] = sympy_number(graph.attrs[i][0], exact_constants)
            elif op not in LEAVES:
                operands = [exprs[a] for a in graph.args[i]]
                form = _NAMED[op] if named and op in _NAMED else functools.partial(ops.TABLE[op].sympy, sp)
                if ops.TABLE[op].elementwise and any(isinstance(o, sp.MatrixBase) for o in operands):
                    exprs[i] = _lane_by_lane(form, operands, graph.attrs[i])  # of a re-rolled graph's tensors
                else:
                    exprs[i] = form(*operands, *graph.attrs[i])
    except RecursionError:
        raise GraphcError(f"to_sympy: SymPy recursed too deeply building node {i} of this "
                          f"{len(graph):,}-node graph; lower max_depth or use a smaller graph") from None
    return [exprs[o] for o in graph.outputs]


def _lane_by_lane(form: Any, operands: list, attrs: tuple) -> sp.ImmutableMatrix:
    """An elementwise op's form on tensors (SymPy Matrices; a scalar goes to every lane): the
    matrix of its form on each lane's operands."""
    shape = next(o.shape for o in operands if isinstance(o, sp.MatrixBase))
    lanes = [form(*[o[k] if isinstance(o, sp.MatrixBase) else o for o in operands], *attrs)
             for k in range(shape[0] * shape[1])]
    return sp.ImmutableMatrix(*shape, lanes)


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
#: The ops with a SymPy matcher (see graphc.sympy_forms), asked in table order.
_MATCHED = sorted((op for op in ops.TABLE.values() if op.sympy_inverse is not None),
                  key=lambda op: op.sympy_inverse not in forms.PRIORITY)
SUPPORTED = (f"numbers, symbols, calls of {', '.join(FUNCTIONS)} (and SymPy's own Abs, exp, ...); " +
             "; ".join(f"{op.name}: {op.sympy_inverse.__doc__}" for op in _MATCHED))


def _piecewise_forms() -> str:
    """The table's Piecewise forms (relu, step, max), for an error message."""
    x, y = sp.symbols("x y", real=True)
    forms = [(op.name, op.sympy(sp, *(x, y)[:op.arity])) for op in ops.TABLE.values()
             if op.elementwise and op.arity in (1, 2) and not op.attr_names]
    return ", ".join(f"{name} {form}" for name, form in forms if isinstance(form, sp.Piecewise))


def _free_symbols(roots: list[sp.Basic]) -> set[sp.Symbol]:
    """The symbols of ``roots``, found without recursion (SymPy's ``free_symbols`` recurses:
    a RecursionError at 2,000 nested tanh, an outside hunt); from_sympy has no bound symbols."""
    found, seen, stack = set(), set(), list(roots)
    while stack:
        e = stack.pop()
        if id(e) not in seen:
            seen.add(id(e))
            if isinstance(e, sp.Symbol):
                found.add(e)
            else:
                stack.extend(e.args)
    return found


def _symbol_order(s: sp.Symbol) -> tuple[str, str]:
    """Name, then assumptions: a set's order (hash-seeded) never decides between two ``x``."""
    return s.name, repr(sorted(s.assumptions0.items()))


def from_sympy(exprs: sp.Expr | Iterable[sp.Expr], symbols: Sequence[sp.Symbol] | None = None, *,
               name: str = "formula") -> Graph:
    """A Graph computing ``exprs`` (one expression, or several: one output each).

    ``symbols`` orders the graph's inputs (default: the free symbols sorted by name, then --
    symbols of one name but other assumptions, ``Symbol('x', real=True)`` and
    ``Symbol('x')`` -- by their assumptions, in every process the same); the
    graph has no params.  Sums become ``add``/``sub``/``sum``, products ``mul``/``neg``,
    ``x / y`` micrograd's ``x * y**-1``, ``1 / (1 + exp(-x))`` ``sigmoid``; functions
    outside :data:`SUPPORTED` raise :class:`GraphcError`.
    """
    single = isinstance(exprs, (sp.Basic, int, float))
    roots = [_as_sympy(e) for e in ([exprs] if single else list(exprs))]
    if symbols is None:
        symbols = sorted(_free_symbols(roots), key=_symbol_order)
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
            if op == "=":
                memo[e] = ids[0]
            elif op == _PRODUCT:
                memo[e] = functools.reduce(lambda a, c: b.add("mul", (a, c)), ids)
            else:
                memo[e] = b.add(op, ids, attr)
    return memo[root]


#: The plan of a product of more than two factors: ``mul`` nodes left to right, as ``mul``'s
#: matcher nests them, without building SymPy's product of every prefix (quadratic: a product
#: of 2,000 symbols took 12.6 s, an outside hunt).
_PRODUCT = "product"


def _plan(e: sp.Basic, symbols: list) -> tuple[str, tuple, tuple]:
    """The one node computing ``e``: (op, operand expressions, params)."""
    if e.is_Symbol:
        twin = [s for s in symbols if s.name == e.name]
        why = (f" (an input has that name, but is_real={twin[0].is_real} there and "
               f"{e.is_real} here)" if twin else "")
        raise GraphcError(f"from_sympy: symbol {e} is not among the inputs "
                          f"{', '.join(s.name for s in symbols) or '(none)'}{why}")
    if (e.is_Number or e.is_NumberSymbol) and (e is sp.nan or e.is_extended_real):
        value = float(e)
        if math.isinf(value) and e.is_finite:  # as eager's Value(10**400) refuses it
            raise GraphcError(f"from_sympy: constant {short(e)} does not fit in a float (|x| < 1.8e308)")
        return "const", (), (value,)
    if isinstance(e, sp.Mul):
        coeff, rest = e.as_coeff_Mul()
        if coeff == 1 and rest != e:  # an unevaluated 1 * x is x, exactly
            return "=", (rest,), ()
    if e.func in _BY_FUNCTION:
        return _BY_FUNCTION[e.func], e.args, ()
    for op in _MATCHED:
        match = op.sympy_inverse(sp, e)
        if match is not None:
            if op.name == "mul" and len(e.args) > 2:
                return _PRODUCT, e.args, ()
            return op.name, *match
    if isinstance(e, sp.Piecewise):
        raise GraphcError(f"from_sympy: cannot express {short(e)} with graphc ops; the Piecewise forms "
                          f"graphc knows are {_piecewise_forms()}")
    raise GraphcError(f"from_sympy: cannot express {type(e).__name__} ({short(e)}) with graphc ops; "
                      f"supported: {SUPPORTED}")
