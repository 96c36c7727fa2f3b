"""The tensor ops' rules: evaluation on flat row-major tuples, result shapes, SymPy forms.

:mod:`graphc.ops` defines the tensor ops (``pack``, ``index``, ``unit``, ``dot``,
``matvec``, ``vecmat``, ``outer``) with these.  Summation orders are part of each op's
meaning, chosen so that a re-rolled graph computes what the scalar graph did, bit for bit.
"""
from __future__ import annotations

import math
import numbers


def size_of(shape: tuple) -> int:
    """How many lanes a tensor of ``shape`` has (1 for a scalar)."""
    return math.prod(shape)


def pack_eval(*xs_and_shape):
    return tuple(xs_and_shape[:-1])


def dot_eval(acc, u, v):
    for a, b in zip(u, v):
        acc = acc + a * b
    return acc


def matvec_eval(b, W, x):
    n = len(x)
    m = len(W) // n
    rows = []
    for j in range(m):
        acc = b[j] if isinstance(b, tuple) else b
        for k in range(n):
            acc = acc + W[j * n + k] * x[k]
        rows.append(acc)
    return tuple(rows)


def vecmat_eval(acc, g, W):
    m = len(g)
    n = len(W) // m
    out = list(acc) if isinstance(acc, tuple) else [acc] * n
    for j in range(m - 1, -1, -1):
        for k in range(n):
            out[k] = out[k] + W[j * n + k] * g[j]
    return tuple(out)


def outer_eval(a, b):
    return tuple(bk * aj for aj in a for bk in b)


def unit_eval(g, like, i):
    out = [0.0] * len(like)
    out[i] = g
    return tuple(out)


def pack_shape(shapes, params):
    (shape,) = params
    if any(shapes):
        raise ValueError("pack takes scalars")
    if not isinstance(shape, (tuple, list)) or not shape or not all(_count(d) and d > 0 for d in shape):
        raise ValueError(f"a pack's shape is a tuple of positive ints; got {shape!r}")
    if size_of(shape) != len(shapes):
        raise ValueError(f"pack of {len(shapes)} scalars cannot have shape {shape}")
    return tuple(shape)


def index_shape(shapes, params):
    (v,), (i,) = shapes, params
    if v and (type(i) is int or _count(i)) and 0 <= i < math.prod(v):  # the usual case, decided with one call
        return ()
    raise ValueError(f"index {i} does not address a lane of a tensor of shape {v}")


def _count(x) -> bool:
    """An int (a NumPy one too), not a bool or a float that happens to be whole."""
    return type(x) is int or isinstance(x, numbers.Integral) and not isinstance(x, bool)  # int first: cheap


def dot_shape(shapes, params):
    acc, u, v = shapes
    if acc or len(u) != 1 or u != v:
        raise ValueError(f"dot takes a scalar and two vectors of one length; got shapes {shapes}")
    return ()


def matvec_shape(shapes, params):
    b, W, x = shapes
    if len(W) != 2 or x != (W[1],) or b not in ((), (W[0],)):
        raise ValueError(f"matvec takes b (m,) or a scalar, W (m, n), x (n,); got shapes {shapes}")
    return (W[0],)


def vecmat_shape(shapes, params):
    acc, g, W = shapes
    if len(W) != 2 or g != (W[0],) or acc not in ((), (W[1],)):
        raise ValueError(f"vecmat takes acc (n,) or a scalar, g (m,) and W (m, n); got shapes {shapes}")
    return (W[1],)


def outer_shape(shapes, params):
    a, b = shapes
    if len(a) != 1 or len(b) != 1:
        raise ValueError(f"outer takes two vectors; got shapes {shapes}")
    return (a[0], b[0])


def unit_shape(shapes, params):
    g, like = shapes
    if g or not like or not _count(params[0]) or not 0 <= params[0] < size_of(like):
        raise ValueError(f"unit takes a scalar and a tensor with lane {params[0]}; got shapes {shapes}")
    return like


def sym_matrix(sp, values, shape):
    rows, cols = (shape[0], 1) if len(shape) == 1 else shape
    return sp.ImmutableMatrix(rows, cols, list(values))


def matvec_lane_vjp(F, lanes, shapes, b, W, x):
    """matvec's cotangent parts when only rows ``lanes`` [(k, s_k)] have cotangents: those
    rows' dots differentiated alone.  W's: ``x[j] * s_k`` at each weight of those rows, as
    units (the other rows' weights get none, so no 0 * inf where W is computed); x's: a
    ``vecmat`` over those rows of W alone, adding them in the order reverse mode reached
    them (``lanes``' order; vecmat adds its last row first, so they are packed in reverse)."""
    n = shapes[1][1]
    dW = [F.unit(F.index(x, j) * s, W, k * n + j) for k, s in lanes for j in range(n)]
    reached = lanes[::-1]
    rows = F.pack(*[F.index(W, k * n + j) for k, _ in reached for j in range(n)], (len(lanes), n))
    dx = F.vecmat(-0.0, F.pack(*[s for _, s in reached], (len(lanes),)), rows)
    db = [F.unit(s, b, k) for k, s in lanes] if shapes[0] else [s for _, s in lanes]
    return db, dW, [dx]


def pack_lane_vjp(F, lanes, shapes, *xs_and_shape):
    """pack's cotangent parts when only ``lanes`` have cotangents: each read lane's operand
    gets its lane's, the others none (reverse mode hands them over last lane first: the op's
    ``vjp_reversed``)."""
    g = dict(lanes)
    return [[g[k]] if k in g else [] for k in range(len(xs_and_shape) - 1)]


def sym_matvec(sp, b, W, x):
    return sp.ImmutableMatrix([(b[j] if hasattr(b, "shape") else b) + sum(W[j, k] * x[k] for k in range(W.shape[1]))
                               for j in range(W.shape[0])])


def sym_vecmat(sp, acc, g, W):
    return sp.ImmutableMatrix([(acc[k] if hasattr(acc, "shape") else acc) + sum(W[j, k] * g[j] for j in range(W.shape[0]))
                               for k in range(W.shape[1])])
