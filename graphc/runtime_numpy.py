"""Element-wise math over NumPy arrays with the same IEEE results as :mod:`graphc.runtime`.

The NumPy backend calls these (as ``_v<op>``) where a plain NumPy function would differ
from the scalar semantics: a sigmoid that never overflows, micrograd's relu derivative,
a maximum that keeps the first operand on ties.  Callers silence NumPy's floating-point
warnings (``np.errstate``): inf and nan are results here, not errors.

This module imports only NumPy: ``graphc.export`` copies it into standalone modules.
"""
import numpy as np


def vsigmoid(x):
    """1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x)) otherwise, as runtime.sigmoid."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def vpower(x, y):
    """x ** y as C99 ``pow`` (runtime.pow).  NumPy computes an exponent 0.5 that does not vary
    along the loop (a scalar, or one element broadcast) as ``sqrt``, which differs from pow at
    two points: sqrt(-0.0) is -0.0 (pow: +0.0) and sqrt(-inf) is nan (pow: +inf); elsewhere
    both are within an ulp of the exact root."""
    r = np.power(x, y)
    half = np.equal(y, 0.5)  # a scalar, or an array broadcast from one element, takes sqrt
    if half.any():
        r = np.where(half & (x == -np.inf), np.inf, np.where(half & (x == 0.0), 0.0, r))
    return r


def vsoftplus(x):
    """max(x, 0) + log1p(exp(-|x|)), as runtime.softplus."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def vstep(x):
    """1.0 where x > 0, else 0.0 (nan included)."""
    return np.greater(x, 0.0).astype(np.float64)


def vmax(a, b):
    """The larger of a and b; nan if either is; the first operand on ties (-0.0 vs 0.0 too)."""
    return np.where(a >= b, a, np.where(b > a, b, a + b))


def vsum(*xs):
    """((x0 + x1) + x2) + ..., accumulating in place into the first partial sum."""
    if len(xs) == 1:
        return xs[0]
    total = xs[0] + xs[1]
    for x in xs[2:]:
        total += x
    return total
