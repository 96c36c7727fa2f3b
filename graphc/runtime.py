"""Scalar math with IEEE 754 results instead of Python exceptions.

Python's ``math`` raises where C, NumPy and PyTorch return a special value
(``math.exp(1000)`` raises OverflowError, ``0.0 ** -1`` raises ZeroDivisionError,
``math.log(0)`` raises ValueError).  graphc gives every backend the same answers, so
the eager engine and the generated Python code both evaluate through these functions:
``exp(1000) == inf``, ``pow(0.0, -1) == inf``, ``log(0.0) == -inf``, ``log(-1.0)`` is nan.

This module imports only the standard library: ``graphc.export`` copies it verbatim
into standalone modules.
"""
import math

inf = math.inf
nan = math.nan


def _is_odd_integer(y):
    return math.isfinite(y) and y == math.floor(y) and math.fmod(y, 2.0) != 0.0


def pow(x, y):  # noqa: A001 - shadows the builtin on purpose: C99 pow semantics
    """x ** y as C99 ``pow``: never raises, never returns a complex number."""
    try:
        return math.pow(x, y)
    except OverflowError:
        return -inf if x < 0.0 and _is_odd_integer(y) else inf
    except ValueError:
        if x == 0.0:  # 0 ** negative: a pole
            return math.copysign(inf, x) if _is_odd_integer(y) else inf
        return nan  # negative ** non-integer


def exp(x):
    try:
        return math.exp(x)
    except OverflowError:
        return inf


def log(x):
    try:
        return math.log(x)
    except ValueError:
        return -inf if x == 0.0 else nan


def log1p(x):
    """log(1 + x), exact to an ulp even where 1 + x rounds (tiny x); -inf at -1, nan below."""
    try:
        return math.log1p(x)
    except ValueError:
        return -inf if x == -1.0 else nan


def softplus(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): exp never overflows, and for very
    negative x the result is exp(x) (not 0) and for large x it is x (not inf)."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(exp(x))  # x <= 0, or nan


def sin(x):
    try:
        return math.sin(x)
    except ValueError:  # sin(+-inf)
        return nan


def cos(x):
    try:
        return math.cos(x)
    except ValueError:  # cos(+-inf)
        return nan


tanh = math.tanh
fabs = math.fabs  # |x| as a float: fabs(-0.0) is 0.0, fabs(nan) nan


def sqrt(x):
    """The correctly rounded square root (C99 sqrt): sqrt(-0.0) is -0.0, below 0 nan."""
    try:
        return math.sqrt(x)
    except ValueError:  # x < 0 or -inf
        return nan


def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp only ever sees a non-positive number."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = exp(x)
    return e / (1.0 + e)


def truediv(x, y):
    """x / y as IEEE divides: at y = 0, +-inf (signs multiplied) or nan (0/0, nan/0)."""
    try:
        return x / y
    except ZeroDivisionError:
        if x != x or x == 0.0:
            return nan
        return math.copysign(inf, x) * math.copysign(1.0, y)


def relu(x):
    """micrograd's relu: ``0 if x < 0 else x`` (so relu(-0.0) is -0.0 and relu(nan) is nan)."""
    return 0.0 if x < 0.0 else x


def step(x):
    """Heaviside step with step(0) = 0: the derivative of relu, as micrograd takes it."""
    return 1.0 if x > 0.0 else 0.0


def maximum(x, y):
    """The larger of x and y; nan if either is nan; the first operand on ties."""
    if x >= y:
        return x
    if y > x:
        return y
    return x + y  # one of them is nan


# Python comparisons as numbers, 1.0 or 0.0: what a traced ``x.data > 0`` computes.

def lt(x, y):
    """1.0 if x < y else 0.0."""
    return 1.0 if x < y else 0.0


def le(x, y):
    """1.0 if x <= y else 0.0."""
    return 1.0 if x <= y else 0.0


def gt(x, y):
    """1.0 if x > y else 0.0."""
    return 1.0 if x > y else 0.0


def ge(x, y):
    """1.0 if x >= y else 0.0."""
    return 1.0 if x >= y else 0.0


def eq(x, y):
    """1.0 if x == y else 0.0."""
    return 1.0 if x == y else 0.0


def ne(x, y):
    """1.0 if x != y else 0.0."""
    return 1.0 if x != y else 0.0
