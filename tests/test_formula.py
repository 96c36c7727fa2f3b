"""Formula text: what is accepted, what is refused (and that refusing runs nothing)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sympy as sp

from graphc.formula import FUNCTIONS, MAX_LENGTH, FormulaError, parse

import graphc
from graphc import Value, ops, symbolic
from graphc.symbolic import to_sympy
from conftest import ROOT

x, w, b, y = sp.symbols("x w b y", real=True)
F = symbolic.FUNCTIONS


@pytest.mark.parametrize("text, expr, names", [
    ("tanh(x*w + b)", sp.tanh(x * w + b), ["x", "w", "b"]),
    ("relu(x)**2 + max(x, y)", F["relu"](x) ** 2 + F["max"](x, y), ["x", "y"]),
    ("x**(1/2) - 1e-3*y", sp.sqrt(x) - sp.Rational(1, 1000) * y, ["x", "y"]),
    ("-x + +y / 2", -x + y / 2, ["x", "y"]),
    ("sigmoid(w) * step(b) * exp(log(sin(cos(x))))", F["sigmoid"](w) * F["step"](b)
     * sp.exp(sp.log(sp.sin(sp.cos(x)))), ["w", "b", "x"]),
    ("2**10", sp.Integer(1024), []),
    ("  y * x  ", y * x, ["y", "x"]),
    ("x**y * sin(x)", x ** y * sp.sin(x), ["x", "y"]),  # the first x, not the one met first in a walk
    ("log1p(x) + softplus(y)", F["log1p"](x) + F["softplus"](y), ["x", "y"]),
])
def test_formulas_compute_what_they_say_with_names_in_text_order(text, expr, names):
    """SymPy is the oracle: the traced graph, read back into SymPy, is the formula."""
    formula = parse(text)
    assert list(formula.names) == names
    graph = graphc.trace(formula.function(), *[0.5] * len(names))
    assert [graph.names[i] for i in graph.inputs] == names
    (got,) = to_sympy(graph, symbols=sp.symbols(names, real=True) if names else [])
    assert sp.simplify((got - expr).rewrite(sp.Piecewise)) == 0


@pytest.mark.parametrize("text, listing", [
    # as written: SymPy's parser made `x*y + x*y` into 2*x*y and exp(x)*exp(x) into exp(2*x)
    ("x*y + x*y", ["mul x y", "mul x y", "add v2 v3"]),
    ("exp(x)*exp(x)", ["exp x", "exp x", "mul v1 v2"]),
    ("-(-x)", ["neg x", "neg v1"]),
    ("x - x", ["sub x x"]),
    ("x/y", ["pow[exponent=-1.0] y", "mul x v2"]),  # micrograd's x * y**-1
    ("x/4", ["mul x 0.25"]),  # as Value / 4: the reciprocal computed in Python
    ("2**x", ["vpow 2.0 x"]),
    ("x*(2*3)", ["mul x 6.0"]),  # constant parts computed as Python computes them
    ("+x * 1", ["mul x 1.0"]),
])
def test_formulas_are_traced_as_written(text, listing):
    formula = parse(text)
    graph = graphc.trace(formula.function(), *[0.5] * len(formula.names))
    lines = [line.split("=", 1)[1].strip() for line in str(graph).splitlines() if " = " in line]
    assert lines == listing


def test_graphcs_passes_do_the_merging():
    graph = graphc.trace(parse("x*y + x*y").function(), 1.0, 2.0)
    optimized, report = graphc.optimize(graph, report=True)
    assert "cse" in str(report) and "merged x1" in str(report)
    assert optimized.ops.count("mul") == 1


def test_a_formula_is_a_function_of_values_with_eager_gradients():
    formula = parse("tanh(x*w + b)")
    xv, wv, bv = Value(2.0), Value(-3.0), Value(0.5)
    out = formula(xv, wv, bv)
    out.backward()
    assert out.data == (xv * wv + bv).tanh().data
    assert wv.grad == pytest.approx(2.0 * (1 - out.data ** 2))
    assert formula(1.0, 1.0, 1.0).data == pytest.approx(float(sp.tanh(2)))
    with pytest.raises(TypeError, match=r"takes 3 value\(s\) \(x, w, b\); got 1"):
        formula(1.0)
    assert parse("2**10")().data == 1024.0


def test_the_functions_are_the_op_tables():
    """Derived from graphc.ops.TABLE: every elementwise op without parameters that no
    operator writes, with its arity -- the same set the SymPy bridge names."""
    assert set(FUNCTIONS) == set(symbolic.FUNCTIONS)
    assert FUNCTIONS == {name: op.arity for name, op in ops.TABLE.items()
                         if op.method or name in ("step", "lt", "le", "gt", "ge", "eq", "ne", "truediv")}
    # an independent reading of the table today
    assert {"log1p", "softplus", "relu", "max"} <= set(FUNCTIONS)


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
    ("x**1" + "0" * 400, r"the number 100000000000...\(401 characters\) does not fit in a float"),
    ("x*1e400", "the number 1e400 does not fit in a float"),
    ("x + 1/0", "constant part of the formula fails: division by zero"),
    ("x * 0**-1", "constant part of the formula fails"),
    ("x * (-8)**(1/3)", "not a real number"),
    ("x * (1e200*1e200)", "does not fit in a float"),
    ("x * (10**300*10**300)", "does not fit in a float"),
    ("tanh", "tanh is a function"),
    ("x if y else b", "if/else"),
    ("x < y", "a comparison"),
    ("x and y", "and/or"),
    ("1j * x", "complex constant"),
    ("True", "bool constant"),
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


#: Parses each formula text of its arguments (then calls x**y with integers), printing the
#: FormulaError of each without its caret lines.
REFUSE_IN_A_CHILD = """
import sys
from graphc.formula import FormulaError, parse
for text in sys.argv[1:]:
    try:
        parse(text)
    except FormulaError as error:
        print(str(error).split(" at ")[0])
try:
    parse("x**y")(3, 10**9)
except FormulaError as error:
    print(str(error).split(" at ")[0])
"""


def test_an_integer_power_beyond_floats_is_refused_before_python_computes_it():
    """Regression (an outside tester): overflow was judged in floats, where 10**30 + 10**9 - 10**30
    is 0, so 3**(10**30+10**9-10**30) passed and Python computed every digit of 3**(10**9).  A
    child process, so a hang fails the test (on timeout) instead of stopping the run."""
    texts = ["3**(10**30+10**9-10**30)", "x*(2**60+3-2**60)**(10**8)", "(-3)**(10**30 + 10**9 - 10**30) * x",
             "x**(2**(2**1000 - 2**1000 + 10**6))", "tanh(x) + (10**300 - 10**300 + 2)**(3**40 - 3**40 + 10**9)",
             "(2**1023 - 2**1023 + 7)**(5*10**8 - 1)"]
    result = subprocess.run([sys.executable, "-c", REFUSE_IN_A_CHILD, *texts], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    refused = "the constant part of the formula overflows a float; write a smaller one"
    assert result.stdout.splitlines() == [refused] * (len(texts) + 1), result.stderr
    assert parse("x * 3**646")(1.0).data == 3.0 ** 646  # the largest power of 3 a float holds
    assert parse("x * (2**53 + 1 - 2**53)**(10**300) * 2**1023")(1.0).data == 2.0 ** 1023


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
    formula = parse("+".join(["x"] * 900))  # long flat chains are fine: no recursion anywhere
    assert formula(Value(2.0)).data == 1800.0


@pytest.mark.parametrize("text, where, line, carets", [
    ("x + * y", "column 5", "  x + * y", "      ^"),
    ("   x + * y", "column 8", "     x + * y", "         ^"),  # a column of the text as typed
    ("x +", "column 4", "  x +", "     ^"),  # just past the end
    ("x +   ", "column 4", "  x +   ", "     ^"),  # of the formula, not of trailing blanks
    ("tanh(x", "column 5", "  tanh(x", "      ^"),
    ("  x + y[0]", "column 7", "    x + y[0]", "        ^^^^"),
    ("a*x + βb.c", "column 7", "  a*x + βb.c", "        ^^^^"),  # characters, not UTF-8 bytes
    ("(x\n+ y.z)", "line 2, column 3", "  + y.z)", "    ^^^"),
    # a lone \r ends a line, as Python's tokenizer reads it (it was an IndexError)
    ("(x +\rfoo(y))", "line 2, column 1", "  foo(y))", "  ^^^"),
    ("(x\r+\r\ry.z)", "line 4, column 1", "  y.z)", "  ^^^"),
    ("x +\\\r 1e999", "line 2, column 2", "   1e999", "   ^^^^^"),
    ("(x +\r* y)", "line 2, column 1", "  * y)", "  ^"),  # was column 11 of line 1
    ("\r\n(x +\r\n\r- y.z)", "line 4, column 3", "  - y.z)", "    ^^^"),
    ("f(x) + 1", "column 1", "  f(x) + 1", "  ^"),
    ("x + 1/0", "column 5", "  x + 1/0", "      ^^^"),
])
def test_errors_point_at_the_column_as_typed(text, where, line, carets):
    with pytest.raises(FormulaError) as error:
        parse(text)
    message = str(error.value).splitlines()
    assert message[0].endswith(f" at {where}:") and message[1:] == [line, carets]


def test_a_long_line_is_shown_around_the_error():
    with pytest.raises(FormulaError) as error:
        parse("x+" * 100 + "y.z" + "+x" * 100)
    _, line, carets = str(error.value).splitlines()
    assert line.startswith("  ...") and line.endswith("...") and len(line) < 90
    assert line[carets.index("^"):].startswith("y.z")


def test_a_formula_error_is_a_graphc_error_and_a_value_error():
    from graphc import GraphcError
    assert issubclass(FormulaError, GraphcError) and issubclass(FormulaError, ValueError)
    with pytest.raises(TypeError, match="takes a string"):
        parse(3)
