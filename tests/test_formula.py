"""Formula text: what is accepted, what is refused (and that refusing runs nothing)."""
from __future__ import annotations

import pytest
import sympy as sp

from graphc.formula import FormulaError, MAX_LENGTH, parse
from graphc.symbolic import FUNCTIONS

x, w, b, y = sp.symbols("x w b y", real=True)


@pytest.mark.parametrize("text, expr, names", [
    ("tanh(x*w + b)", sp.tanh(x * w + b), ["x", "w", "b"]),
    ("relu(x)**2 + max(x, y)", FUNCTIONS["relu"](x) ** 2 + FUNCTIONS["max"](x, y), ["x", "y"]),
    ("x**(1/2) - 1e-3*y", sp.sqrt(x) - sp.Float("0.001") * y, ["x", "y"]),
    ("-x + +y / 2", -x + y / 2, ["x", "y"]),
    ("sigmoid(w) * step(b) * exp(log(sin(cos(x))))", FUNCTIONS["sigmoid"](w) * FUNCTIONS["step"](b)
     * sp.sin(sp.cos(x)), ["w", "b", "x"]),
    ("2**10", sp.Integer(1024), []),
    ("  y * x  ", y * x, ["y", "x"]),
    ("x**y * sin(x)", x ** y * sp.sin(x), ["x", "y"]),  # the first x, not the one met first in a walk
])
def test_formulas_parse_to_sympy_with_names_in_text_order(text, expr, names):
    got, symbols = parse(text)
    assert got == expr
    assert [s.name for s in symbols] == names and all(s.is_real for s in symbols)


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('touch pwned')", "calling attribute access"),
    ("__import__('os')", "calling __import__ is not allowed"),
    ("__builtins__", "the name '__builtins__' is not allowed"),
    ("x.real", "attribute access"),
    ("x[0]", "subscripting"),
    ("'text'", "str constant"),
    ("b'x'", "bytes constant"),
    ("lambda: 1", "lambda"),
    ("f(x)", "calling f is not allowed"),
    ("tanh(x, y)", r"tanh\(\) takes 1 argument\(s\); got 2"),
    ("max(x)", r"max\(\) takes 2 argument\(s\); got 1"),
    ("tanh(x=1)", "positional arguments only"),
    ("max(*x)", "positional arguments only"),
    ("x ^ 2", r"\^ \(use \*\* for powers\)"),
    ("x // 2", "operator //"),
    ("not x", "unary Not"),
    ("9**9**9", "overflows a float"),
    ("(10**200)**2", "overflows a float"),
    ("tanh", "tanh is a function"),
    ("x if y else b", "if/else"),
    ("x < y", "a comparison"),
    ("x and y", "and/or"),
    ("1j * x", "complex constant"),
    ("True", "bool constant"),
    ("Integer", "the name 'Integer' is not allowed"),
    ("[x]", "a list"),
    ("(x, y)", "a tuple"),
    ("(y := x)", "an assignment"),
    ("f'{x}'", "an f-string"),
    ("x; y", "not a formula"),
    ("", "not a formula"),
    ("x" * (MAX_LENGTH + 1), "at most"),
])
def test_everything_else_is_refused_with_a_reason(text, message):
    with pytest.raises(FormulaError, match=message):
        parse(text)


def test_refusing_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for text in ["__import__('os').system('touch pwned')", "exec('open(\"pwned\", \"w\")')",
                 "open('pwned', 'w')", "().__class__.__bases__[0].__subclasses__()"]:
        with pytest.raises(FormulaError):
            parse(text)
    assert list(tmp_path.iterdir()) == []


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(FormulaError):
        parse("(" * 500 + "x" + ")" * 500)
    expr, _ = parse("+".join(["x"] * 900))  # long flat chains are fine
    assert expr == 900 * x


def test_a_formula_error_is_a_graphc_error_and_a_value_error():
    from graphc import GraphcError
    assert issubclass(FormulaError, GraphcError) and issubclass(FormulaError, ValueError)
    with pytest.raises(TypeError, match="takes a string"):
        parse(3)
