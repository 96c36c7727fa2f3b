"""Reading a formula typed by a person (``"tanh(x*w + b)"``) as a SymPy expression, safely.

Text is checked twice before SymPy sees it.  First Python's own parser turns it into a
syntax tree, and :func:`parse` walks that tree and allows only numbers, names, ``+ - * /
**``, unary ``-``/``+`` and calls of the op table's functions (``tanh``, ``relu``, ``max``,
...) with the right number of positional arguments.  Anything else -- attribute access,
subscripts, strings, lambdas, keywords, dunder names -- is rejected with a message
naming it, and a constant part that would overflow a float (``9**9**9``) is refused
before SymPy tries to compute it exactly.  Only then does SymPy's ``parse_expr`` read the
text, with every name it may resolve given explicitly and no builtins at all.
"""
from __future__ import annotations

import ast
import math
from typing import Any

import sympy as sp
from sympy.parsing.sympy_parser import parse_expr, standard_transformations

from .errors import GraphcError
from .symbolic import FUNCTIONS, TableFunction

MAX_LENGTH = 2_000
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_UNARY = {ast.USub: "-", ast.UAdd: "+"}
_HINTS = {ast.BitXor: "^ (use ** for powers)", ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@",
          ast.BitAnd: "&", ast.BitOr: "|", ast.LShift: "<<", ast.RShift: ">>"}
#: Names SymPy's parser emits itself (``Integer(2)``): they cannot be symbols.
_PARSER_NAMES = {"Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational, "Symbol": sp.Symbol}


class FormulaError(GraphcError, ValueError):
    """Text that is not a formula graphc accepts; the message says what was found."""


def parse(text: str) -> tuple[sp.Expr, list[sp.Symbol]]:
    """The SymPy expression of ``text`` and its symbols in order of first appearance.

    Symbols are real (as :func:`graphc.symbolic.symbols_of` makes them); functions are
    :data:`graphc.symbolic.FUNCTIONS`.  Raises :class:`FormulaError` for anything else.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse takes a string; got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula has {len(text):,} characters; at most {MAX_LENGTH:,} are read")
    text = text.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise FormulaError(f"not a formula: {error.msg} (column {error.offset}) in {text!r}") from None
    except (RecursionError, MemoryError, ValueError) as error:
        raise FormulaError(f"cannot read the formula: {type(error).__name__}") from None
    names, functions = _check(tree)
    symbols = [sp.Symbol(name, real=True) for name in names]
    local_dict: dict[str, Any] = {s.name: s for s in symbols} | {f: FUNCTIONS[f] for f in functions}
    global_dict: dict[str, Any] = {"__builtins__": {}} | _PARSER_NAMES
    try:
        expr = parse_expr(text, local_dict=local_dict, global_dict=global_dict,
                          transformations=standard_transformations)
    except (TypeError, ValueError, SyntaxError, RecursionError) as error:
        raise FormulaError(f"SymPy could not read {text!r}: {error}") from None
    return expr, symbols


def _check(tree: ast.Expression) -> tuple[list[str], set[str]]:
    """Walk the syntax tree (explicit stack); return symbol names in text order and the
    functions used, or raise FormulaError naming the first thing not allowed."""
    symbols: dict[str, tuple[int, int]] = {}
    functions: set[str] = set()
    called: set[int] = set()  # ids of Name nodes that are the function of a Call
    stack: list[ast.AST] = [tree.body]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise FormulaError(f"operator {_HINTS.get(type(node.op), type(node.op).__name__)} is not "
                                   f"allowed; use + - * / **")
            _check_power(node)
            stack += [node.left, node.right]
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise FormulaError(f"unary {type(node.op).__name__} is not allowed; only - and +")
            stack.append(node.operand)
        elif isinstance(node, ast.Constant):
            if type(node.value) not in (int, float):
                raise FormulaError(f"{type(node.value).__name__} constant {node.value!r} is not allowed; "
                                   f"only real numbers")
        elif isinstance(node, ast.Name):
            name = node.id
            if name.startswith("__") or name in _PARSER_NAMES:
                raise FormulaError(f"the name {name!r} is not allowed")
            if id(node) in called:
                functions.add(name)
            elif name in FUNCTIONS:
                raise FormulaError(f"{name} is a function: call it, as {name}(...)")
            else:
                position = (node.lineno, node.col_offset)
                symbols[name] = min(symbols.get(name, position), position)
        elif isinstance(node, ast.Call):
            _check_call(node)
            called.add(id(node.func))
            stack += [node.func, *node.args]
        else:
            raise FormulaError(f"{_describe(node)} is not allowed in a formula; use numbers, names, "
                               f"+ - * / ** and the functions {', '.join(FUNCTIONS)}")
    return sorted(symbols, key=symbols.get), functions


def _check_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        what = node.func.id if isinstance(node.func, ast.Name) else _describe(node.func)
        raise FormulaError(f"calling {what} is not allowed; the functions are {', '.join(FUNCTIONS)}")
    name = node.func.id
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise FormulaError(f"{name}() takes positional arguments only")
    function = FUNCTIONS[name]
    arity = function.arity if isinstance(function, type) and issubclass(function, TableFunction) else 1
    if len(node.args) != arity:
        raise FormulaError(f"{name}() takes {arity} argument(s); got {len(node.args)}")


def _check_power(node: ast.BinOp) -> None:
    """Refuse constant powers beyond float range: SymPy would compute them exactly."""
    if isinstance(node.op, ast.Pow):
        base, exponent = _constant(node.left), _constant(node.right)
        if base is not None and exponent is not None:
            try:
                value = math.pow(abs(base), exponent)
            except (OverflowError, ValueError, ZeroDivisionError):
                value = math.inf
            if math.isinf(value) and base != 0:
                raise FormulaError("a constant power in the formula overflows a float; write a smaller one")


def _constant(node: ast.AST) -> float | None:
    """The float value of a subtree without names, or None (an explicit-stack evaluation)."""
    values: dict[int, float | None] = {}
    stack: list[tuple[ast.AST, bool]] = [(node, False)]
    while stack:
        current, ready = stack.pop()
        if isinstance(current, ast.Constant) and type(current.value) in (int, float):
            values[id(current)] = float(current.value)
        elif isinstance(current, ast.UnaryOp) and type(current.op) in _UNARY:
            if not ready:
                stack += [(current, True), (current.operand, False)]
                continue
            inner = values[id(current.operand)]
            values[id(current)] = None if inner is None else (-inner if isinstance(current.op, ast.USub) else inner)
        elif isinstance(current, ast.BinOp) and type(current.op) in _BINARY:
            if not ready:
                stack += [(current, True), (current.left, False), (current.right, False)]
                continue
            values[id(current)] = _combine(current.op, values[id(current.left)], values[id(current.right)])
        else:
            values[id(current)] = None
    return values[id(node)]


def _combine(op: ast.operator, a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Mult):
        return a * b
    if isinstance(op, ast.Div):
        return a / b if b else math.inf
    try:
        return math.pow(abs(a), b)  # a magnitude is all the overflow check needs
    except (OverflowError, ValueError, ZeroDivisionError):
        return math.inf


def _describe(node: ast.AST) -> str:
    names = {ast.Attribute: "attribute access (.)", ast.Subscript: "subscripting ([])",
             ast.Lambda: "lambda", ast.Compare: "a comparison", ast.BoolOp: "and/or",
             ast.IfExp: "if/else", ast.JoinedStr: "an f-string", ast.NamedExpr: "an assignment (:=)",
             ast.Starred: "unpacking (*)", ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict",
             ast.Set: "a set"}
    return names.get(type(node), type(node).__name__)
