"""Element-wise math over NumPy arrays with the same IEEE results as :mod:`graphc.runtime`.

The NumPy backend calls these (as ``_v<op>``) where a plain NumPy function would differ
from the scalar semantics: a sigmoid that never overflows, micrograd's relu derivative,
a maximum that keeps the first operand on ties.  Every function named ``v...`` is such a
helper: the backend's namespace is derived from that (:data:`graphc.codegen.numpy.HELPERS`).  Callers silence NumPy's floating-point
warnings (``np.errstate``): inf and nan are results here, not errors.

This module imports only NumPy: ``graphc.export`` copies it into standalone modules.
"""
import numpy as np


def vsigmoid(x):
    """1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x)) otherwise, as runtime.sigmoid."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def vpower(x, y):
    """x ** y as C99 ``pow`` (runtime.pow).  NumPy takes an exponent that does not vary along
    the loop (a scalar, or one element broadcast) of 2, -1 or 0.5 as ``square``,
    ``reciprocal`` or ``sqrt``: an ulp from pow, which is not correctly rounded, now and
    then, and at -0.0 and -inf sqrt is not pow.  An exponent array as large as the result
    never takes those paths (NumPy's scalar math does: a scalar's goes through an array)."""
    shape = np.broadcast_shapes(np.shape(x), np.shape(y))
    if not shape:
        return np.power(np.reshape(x, 1), np.reshape(y, 1))[0]
    if np.shape(y) != shape or 0 in np.asarray(y).strides:
        y = np.broadcast_to(y, shape).copy()
    return np.power(x, y)


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
        if np.shape(x) == np.shape(total):
            total += x
        else:  # broadcasting to a larger shape (a row onto a scalar, a batch onto one lane)
            total = total + x
    return total


# -- tensors: a tensor node is a 2-D array (lanes, B), B = N rows (batched) or 1 -------------
# Each helper keeps the summation order of its op (graphc.ops): products are formed
# exactly, then added by in_order, strictly first to last.


def in_order(terms):
    """terms[0] + terms[1] + ... along axis 0, strictly in that order, starting from
    terms[0] itself.

    ``np.add.reduce`` along the outer axis of a C-contiguous array adds whole terms one
    after another, first to last: NumPy sums pairwise only along the contiguous inner axis
    (``numpy.sum``'s notes).  It starts from the identity, +0.0, which would turn a sum of
    -0.0 terms into +0.0, so it starts from ``initial=-0.0`` instead: -0.0 + x is x for
    every x.  That is 2.5-3x faster than adding the terms in a loop of NumPy calls (16x100
    numbers: 6.3 against 20 us; 785x50x32: 290 against 760 us).  Terms of one number would
    make the outer axis the only one, which NumPy would sum pairwise, so those are
    accumulated (each partial sum from the one before; a wider term ran 6-10x slower so).
    Tested in tests/test_batched.py against a loop of additions, bit for bit, on sums whose
    value depends on the order.
    """
    if terms[0].size != 1:
        return np.add.reduce(terms, axis=0, initial=-0.0)
    return np.add.accumulate(terms.reshape(-1))[-1:].reshape(terms.shape[1:])


def vpack(*xs):
    """Scalars (floats or (N,) rows) as a (lanes, B) array."""
    try:
        out = np.array(xs, dtype=np.float64)
    except ValueError:  # floats mixed with rows: broadcast
        out = np.array(np.broadcast_arrays(*xs), dtype=np.float64)
    return out if out.ndim == 2 else out.reshape(len(xs), 1)


def _width(*xs):
    """The batch width the operands broadcast to: 1 for those the same in every row, else
    N -- zero included (``max`` would give 1 for a batch of 0 rows against a width-1 weight)."""
    width = 1
    for x in xs:
        if np.ndim(x) and x.shape[-1] != 1:
            width = x.shape[-1]
    return width


def vdot(acc, u, v):
    """acc + u[0]*v[0] + u[1]*v[1] + ..., left to right: a (B,) row."""
    terms = np.empty((u.shape[0] + 1, _width(acc, u, v)))
    terms[0] = acc
    np.multiply(u, v, out=terms[1:])
    return in_order(terms)


def vmatvec(b, W, x):
    """y[j] = b[j] + W[j,0]*x[0] + W[j,1]*x[1] + ..., each row left to right: (m, B)."""
    n = x.shape[0]
    m = W.shape[0] // n
    terms = np.empty((n + 1, m, _width(b, W, x)))
    terms[0] = b
    np.multiply(W.reshape(m, n, -1).transpose(1, 0, 2), x[:, None, :], out=terms[1:])
    return in_order(terms)


def vvecmat(acc, g, W):
    """y[k] = acc[k] + W[m-1,k]*g[m-1] + ... + W[0,k]*g[0], the last row first: (n, B)."""
    m = g.shape[0]
    n = W.shape[0] // m
    terms = np.empty((m + 1, n, _width(acc, g, W)))
    terms[0] = acc
    np.multiply(W.reshape(m, n, -1)[::-1], g[::-1, None, :], out=terms[1:])
    return in_order(terms)


def vouter(a, b):
    """y[j,k] = b[k] * a[j], flattened row-major: (m*n, B)."""
    return np.multiply(b[None, :, :], a[:, None, :]).reshape(a.shape[0] * b.shape[0], -1)


def vouter_rowsum(a, b):
    """outer(a, b) summed over the rows of the batch, flattened: one matrix product.  An
    operand that is the same in every row (width 1) counts once per row of the other."""
    width = _width(a, b)
    a, b = np.broadcast_to(a, (a.shape[0], width)), np.broadcast_to(b, (b.shape[0], width))
    return (a @ b.T).reshape(-1)


# -- numerics="fast": the same ops as matrix products (BLAS), summed in any order ----------


def vdot_fast(acc, u, v):
    """acc + sum(u * v) as a dot product: a (B,) row."""
    if u.shape[-1] == 1:
        return acc + u[:, 0] @ v
    if v.shape[-1] == 1:
        return acc + v[:, 0] @ u
    return acc + np.einsum("lb,lb->b", u, v)


def vmatvec_fast(b, W, x):
    """b + W @ x as a matrix product: (m, B)."""
    n = x.shape[0]
    m = W.shape[0] // n
    if W.shape[-1] == 1:  # the weights are the same in every row: one matrix
        return b + W.reshape(m, n) @ x
    return b + np.einsum("jkb,kb->jb", W.reshape(m, n, -1), np.broadcast_to(x, (n, W.shape[-1])))


def vvecmat_fast(acc, g, W):
    """acc + W.T @ g as a matrix product: (n, B)."""
    m = g.shape[0]
    n = W.shape[0] // m
    if W.shape[-1] == 1:
        return acc + W.reshape(m, n).T @ g
    return acc + np.einsum("jkb,jb->kb", W.reshape(m, n, -1), np.broadcast_to(g, (m, W.shape[-1])))


def vouter_rowsum_fast(a, b):
    """vouter_rowsum by ``np.dot``, which takes BLAS's fast path on any operands (NumPy's
    ``@`` was measured 100x slower on some arrays of the same shapes)."""
    width = _width(a, b)
    a, b = np.broadcast_to(a, (a.shape[0], width)), np.broadcast_to(b, (b.shape[0], width))
    return np.dot(a, b.T).reshape(-1)


def vunit(g, like, i):
    """Zeros shaped like ``like``, with g in lane i: as wide as the batch where either varies
    across rows (the batched analysis marks the node batched then; a width of 1 there made
    a row sum add g once instead of once per row)."""
    out = np.zeros((like.shape[0], _width(g, like)))
    out[i] = g
    return out
