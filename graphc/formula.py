"""Reading a formula typed by a person (``"tanh(x*w + b)"``) as a function of Values, safely.

Python's own parser turns the text into a syntax tree, and :func:`parse` walks that tree
and allows only numbers, names, ``+ - * / **``, unary ``-``/``+`` and calls of the op
table's functions (:data:`FUNCTIONS`: ``tanh``, ``relu``, ``max``, ...) with the right
number of positional arguments.  Anything else -- attribute access, subscripts, strings,
lambdas, keywords, dunder names -- is refused with a message naming it and pointing at
its column, and so is a constant that does not fit in a float (``9**9**9``, a 401-digit
integer) before Python computes it exactly: an integer power is sized from the bit lengths
of its exact operands first.

The result, a :class:`Formula`, is evaluated by a small interpreter over that checked tree
(an explicit stack, no recursion): names are its arguments, operators are Value's
operators and a call is :func:`graphc.apply` of the table op.  So graphc traces the
formula as written -- ``x*y + x*y`` is two products and a sum, which graphc's own passes
then merge -- and no text is ever evaluated: neither Python nor SymPy reads it as code.
"""
from __future__ import annotations

import ast
import inspect
import operator
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable

from . import ops
from .engine import Value, apply
from .errors import GraphcError

MAX_LENGTH = 2_000
#: The functions a formula may call, name -> number of arguments: the table ops written as
#: calls (:func:`graphc.ops.written_as_call`); the others are operators (``+ - * **``, ``-x``).
FUNCTIONS = {name: op.arity for name, op in ops.TABLE.items() if ops.written_as_call(op)}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_HINTS = {ast.BitXor: "^ (use ** for powers)", ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@",
          ast.BitAnd: "&", ast.BitOr: "|", ast.LShift: "<<", ast.RShift: ">>"}
_FLOAT_MAX = sys.float_info.max
_SHOWN = 72  # characters of a line shown under an error
_LINE_END = re.compile(r"\r\n|\r|\n")  # where Python's tokenizer ends a line: a lone \r too


class FormulaError(GraphcError, ValueError):
    """Text that is not a formula graphc accepts; the message says what was found, and where."""


@dataclass(frozen=True)
class Formula:
    """A checked formula: call it with one Value (or number) per name, in :attr:`names` order."""

    text: str
    names: tuple[str, ...]
    tree: ast.Expression

    def __call__(self, *values: Any) -> Value:
        """The formula's Value at ``values``, built with Value's operators as written."""
        if len(values) != len(self.names):
            raise TypeError(f"the formula {self.text!r} takes {len(self.names)} value(s) "
                            f"({', '.join(self.names) or 'none'}); got {len(values)}")
        result = _evaluate(self, dict(zip(self.names, values)))
        return result if isinstance(result, Value) else Value(result)

    def function(self) -> Callable[..., Value]:
        """This formula as a function named ``formula`` whose parameters are its names, so
        ``graphc.trace``/``graphc.compile`` name the graph's inputs after them."""
        def formula(*values: Any) -> Value:
            return self(*values)
        kind = inspect.Parameter.POSITIONAL_ONLY
        formula.__signature__ = inspect.Signature([inspect.Parameter(n, kind) for n in self.names])
        formula.__doc__ = f"The formula {self.text!r} (graphc.formula.parse)."
        return formula


def parse(text: str) -> Formula:
    """The :class:`Formula` of ``text``; names are ordered by first appearance.

    Raises :class:`FormulaError` for anything but numbers, names, ``+ - * / **``, unary
    ``-``/``+`` and calls of :data:`FUNCTIONS`.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse takes a string; got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula has {len(text):,} characters; at most {MAX_LENGTH:,} are read")
    body = text.strip()
    place = _Place(text, len(text) - len(text.lstrip()))
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as error:
        column = error.offset if error.offset and error.offset > 0 else None  # 0: at the end
        raise FormulaError(f"not a formula: {error.msg}{place.show(error.lineno or 1, column)}") from None
    except (RecursionError, MemoryError, ValueError) as error:
        raise FormulaError(f"cannot read the formula: {type(error).__name__}") from None
    formula = Formula(text, tuple(_check(tree, place)), tree)
    formula(*[Value(1.0)] * len(formula.names))  # refuses constant parts Python cannot compute (1/0) now
    return formula


@dataclass(frozen=True)
class _Place:
    """Points at a position of the parsed text (``text.strip()``, which starts ``lead``
    characters in) in the text as typed."""

    text: str
    lead: int

    def show(self, lineno: int, column: int | None, end: int | None = None) -> str:
        """`` at column N:``, then the line as typed with carets under columns [column, end)
        (1-based characters of the parsed text's line ``lineno``; None: just past its end)."""
        parsed = _lines(self.text.strip())
        first, parsed_line = parsed[lineno - 1]
        start = self.lead + first + (len(parsed_line) if column is None else column - 1)
        typed = _lines(self.text)
        number = sum(1 for line_start, _ in typed if line_start <= start) - 1
        line_start, line = typed[number]
        col = start - line_start
        where = f"column {col + 1}" if len(parsed) == 1 else f"line {number + 1}, column {col + 1}"
        low = max(0, col - 40) if len(line) > _SHOWN else 0  # a window around a long line's column
        high = low + _SHOWN
        shown = ("..." if low else "") + line[low:high] + ("..." if high < len(line) else "")
        pad = ("   " if low else "") + "".join(c if c == "\t" else " " for c in line[low:col])
        carets = "^" * max(1, min((end or 0) - (column or 0), len(line) - col, high - col))
        return f" at {where}:\n  {shown}\n  {pad}{carets}"

    def node(self, node: ast.AST) -> str:
        """:meth:`show` for a syntax-tree node (whose offsets count UTF-8 bytes)."""
        line = _lines(self.text.strip())[node.lineno - 1][1].encode()
        column = len(line[:node.col_offset].decode(errors="ignore")) + 1
        end = None
        if node.end_lineno == node.lineno:
            end = len(line[:node.end_col_offset].decode(errors="ignore")) + 1
        return self.show(node.lineno, column, end)


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, text) of each line of ``text``, split as Python's tokenizer splits it, so
    line numbers of the syntax tree and of its errors find their line."""
    starts = [0] + [match.end() for match in _LINE_END.finditer(text)]
    return list(zip(starts, _LINE_END.split(text)))


def _check(tree: ast.Expression, place: _Place) -> list[str]:
    """Walk the syntax tree (explicit stack); return the names in text order, or raise
    FormulaError naming (and pointing at) the first thing not allowed."""
    names: dict[str, tuple[int, int]] = {}
    called: set[int] = set()  # ids of Name nodes that are the function of a Call
    stack: list[ast.AST] = [tree.body]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise FormulaError(f"operator {_HINTS.get(type(node.op), type(node.op).__name__)} is not "
                                   f"allowed; use + - * / **{place.node(node)}")
            stack += [node.left, node.right]
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise FormulaError(f"unary {type(node.op).__name__} is not allowed; only - and +{place.node(node)}")
            stack.append(node.operand)
        elif isinstance(node, ast.Constant):
            _check_number(node, place)
        elif isinstance(node, ast.Name):
            _check_name(node, id(node) in called, place)
            if id(node) not in called:
                position = (node.lineno, node.col_offset)
                names[node.id] = min(names.get(node.id, position), position)
        elif isinstance(node, ast.Call):
            _check_call(node, place)
            called.add(id(node.func))
            stack += [node.func, *node.args]
        else:
            raise FormulaError(f"{_describe(node)} is not allowed in a formula; use numbers, names, "
                               f"+ - * / ** and the functions {', '.join(FUNCTIONS)}{place.node(node)}")
    return sorted(names, key=names.get)


def _check_number(node: ast.Constant, place: _Place) -> None:
    value = node.value
    if type(value) not in (int, float):
        raise FormulaError(f"{type(value).__name__} constant {value!r} is not allowed; only real numbers"
                           f"{place.node(node)}")
    if abs(value) > _FLOAT_MAX:  # a float literal beyond range (1e400) parses as inf
        literal = ast.get_source_segment(place.text[place.lead:], node) or repr(value)
        shown = literal if len(literal) <= 24 else f"{literal[:12]}...({len(literal)} characters)"
        raise FormulaError(f"the number {shown} does not fit in a float (|x| < 1.8e308){place.node(node)}")


def _check_name(node: ast.Name, is_called: bool, place: _Place) -> None:
    if node.id.startswith("__"):
        raise FormulaError(f"the name {node.id!r} is not allowed{place.node(node)}")
    if not is_called and node.id in FUNCTIONS:
        raise FormulaError(f"{node.id} is a function: call it, as {node.id}(...){place.node(node)}")


def _check_call(node: ast.Call, place: _Place) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        what = node.func.id if isinstance(node.func, ast.Name) else _describe(node.func)
        raise FormulaError(f"calling {what} is not allowed; the functions are {', '.join(FUNCTIONS)}"
                           f"{place.node(node.func)}")
    name = node.func.id
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise FormulaError(f"{name}() takes positional arguments only{place.node(node)}")
    if len(node.args) != FUNCTIONS[name]:
        raise FormulaError(f"{name}() takes {FUNCTIONS[name]} argument(s); got {len(node.args)}{place.node(node)}")


# -- the interpreter ------------------------------------------------------------------------

def _evaluate(formula: Formula, values: dict[str, Any]) -> Any:
    """Post-order over the checked tree with an explicit stack, operands left to right (as
    Python evaluates them, so nodes are created in the order the text reads)."""
    results: dict[int, Any] = {}
    root = formula.tree.body
    stack: list[tuple[ast.AST, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        operands = _operands(node)
        if operands and not ready:
            stack.append((node, True))
            stack.extend((o, False) for o in reversed(operands))
            continue
        args = [results.pop(id(o)) for o in operands]
        results[id(node)] = _step(formula, node, args, values)
    return results[id(root)]


def _operands(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Call):
        return list(node.args)
    return []


def _step(formula: Formula, node: ast.AST, args: list, values: dict[str, Any]) -> Any:
    """One node of the checked tree applied to its operands' results."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.Call):
        return apply(node.func.id, *args)
    function = _BINARY[type(node.op)] if isinstance(node, ast.BinOp) else _UNARY[type(node.op)]
    if any(isinstance(a, Value) for a in args):
        return args[0] if isinstance(node.op, ast.UAdd) else function(*args)
    return _number(formula, node, function, args)


def _number(formula: Formula, node: ast.AST, function: Callable, args: list) -> int | float:
    """A constant part, computed as Python computes it; what Python would raise on, or turn
    complex, is a FormulaError."""
    place = _Place(formula.text, len(formula.text) - len(formula.text.lstrip()))
    try:
        result = _power(*args) if function is operator.pow else function(*args)
    except ZeroDivisionError as error:
        raise FormulaError(f"the constant part of the formula fails: {error}{place.node(node)}") from None
    except OverflowError:
        raise FormulaError(f"the constant part of the formula overflows a float; write a smaller one"
                           f"{place.node(node)}") from None
    if isinstance(result, complex):
        raise FormulaError(f"the constant part of the formula is not a real number "
                           f"(a negative number to a fractional power){place.node(node)}")
    if abs(result) > _FLOAT_MAX:
        raise FormulaError(f"the constant part of the formula does not fit in a float{place.node(node)}")
    return result


def _power(base: int | float, exponent: int | float) -> int | float:
    """``base ** exponent``; OverflowError first if both are integers and the power's bit
    length shows it is beyond float range, as Python would compute every digit of it
    (``3**(10**9)`` takes minutes)."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 \
            and (abs(base).bit_length() - 1) * exponent >= sys.float_info.max_exp:  # |base|**e >= 2**(that)
        raise OverflowError
    return base ** exponent


def _describe(node: ast.AST) -> str:
    names = {ast.Attribute: "attribute access (.)", ast.Subscript: "subscripting ([])",
             ast.Lambda: "lambda", ast.Compare: "a comparison", ast.BoolOp: "and/or",
             ast.IfExp: "if/else", ast.JoinedStr: "an f-string", ast.NamedExpr: "an assignment (:=)",
             ast.Starred: "unpacking (*)", ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict",
             ast.Set: "a set"}
    return names.get(type(node), type(node).__name__)
