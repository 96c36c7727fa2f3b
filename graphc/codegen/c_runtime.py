"""The C backend's runtime: the prelude every generated file starts with, and each op's
spelling in terms of it.

**Exactness.**  The prelude defines graphc's runtime semantics in C -- relu keeps -0.0,
step(nan) = 0, the stable sigmoid of :mod:`graphc.runtime`, max with ties to the first
operand -- and the spellings call the same libm functions (``exp``, ``log``, ``tanh``,
``sin``, ``cos``, C99 ``pow``) that CPython's ``math`` module calls, so results equal the
eager engine's bit for bit in the forward pass.  Tensor ops are short loops that add in
the order their op defines (:mod:`graphc.ops`).  :data:`SPELLINGS` is the only place that
maps an op to its C helper; :data:`LIBM_CALLS` (which the toolchain builds with
``-fno-builtin-<name>``) is derived from it.

The layer kernels of the prelude (blocks of rows, one row at vector speed) are
:mod:`graphc.codegen.c_layers`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from .. import ops
from .c_layers import BLOCKS, ONE_ROW
from .common import Spelling

PRELUDE = r"""#include <math.h>
#include <string.h>

/* graphc's runtime semantics (graphc/runtime.py), in C */
static inline double gc_relu(double x) { return x < 0.0 ? 0.0 : x; }       /* keeps -0.0 and nan */
static inline double gc_step(double x) { return x > 0.0 ? 1.0 : 0.0; }     /* step(nan) = 0 */
static inline double gc_max(double a, double b) { return a >= b ? a : (b > a ? b : a + b); }
static inline double gc_sigmoid(double x)                                   /* never overflows */
{
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
static inline double gc_softplus(double x)                                  /* log(1 + exp(x)), stable */
{
    return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* tensor ops (graphc/ops.py); each adds in the order its op defines */
#define GC_PACK(out, ...) memcpy(out, (const double[]){__VA_ARGS__}, sizeof((const double[]){__VA_ARGS__}))
#define GC_UNIT(out, size, g, i) do { for (int k_ = 0; k_ < (size); k_++) (out)[k_] = 0.0; (out)[i] = (g); } while (0)

static inline double gc_dot(double acc, const double *u, const double *v, int n)
{
    for (int k = 0; k < n; k++) acc = acc + u[k] * v[k];
    return acc;
}

static inline void gc_matvec(double *y, const double *b, int b_stride, const double *W, const double *x, int m, int n)
{   /* y[j] = ((b[j] + W[j,0]*x[0]) + W[j,1]*x[1]) + ...: columns outside, rows inside */
    for (int j = 0; j < m; j++) y[j] = b[j * b_stride];
    for (int k = 0; k < n; k++)
        for (int j = 0; j < m; j++) y[j] = y[j] + W[j * n + k] * x[k];
}

static inline void gc_transpose(double *Wt, const double *W, int m, int n)
{
    for (int j = 0; j < m; j++)
        for (int k = 0; k < n; k++) Wt[k * m + j] = W[j * n + k];
}

static inline void gc_outer(double *y, const double *a, const double *b, int m, int n)
{
    for (int j = 0; j < m; j++)
        for (int k = 0; k < n; k++) y[j * n + k] = b[k] * a[j];
}

/* the layer kernels' entry points (graphc/codegen/c_layers.py): inlined at each call, where gcc
   specializes them for its sizes; with GC_OUTLINED (graphc/codegen/c_toolchain.py: kernels a
   Python loop calls once a step), one copy of each, which gcc builds in less time */
#if defined(GC_OUTLINED) && defined(__GNUC__)
#define GC_LAYER static __attribute__((noinline))
#else
#define GC_LAYER static inline
#endif
""" + BLOCKS + ONE_ROW + r"""#if defined(__GNUC__)
#define GC_NOINLINE __attribute__((noinline))  /* see graphc/codegen/c_sums.py */
#else
#define GC_NOINLINE
#endif
"""


@dataclass(frozen=True)
class Call:
    """A tensor op as a call of a prelude helper (a statement, or an expression for a
    scalar result).

    ``text`` is formatted with the operands ``{0}``, ``{1}``, ..., the lane parameter
    ``{i}``, the result array ``{out}``, its number of lanes ``{size}``, and the
    dimensions ``dims(operand shapes)`` returns (``{m}``, ``{n}``; or a ``{size}`` of its
    own).  ``scalar_first``: operand 0 may be a scalar, passed as a one-element array read
    with stride ``{s0}`` = 0.  ``transposed``: the same call reading operand 1 from its
    transposed copy, made once per call for a matrix that is the same in every row.
    """

    text: Spelling
    dims: Callable[[list], dict] = field(default=lambda shapes: {})
    scalar_first: bool = False
    transposed: str = ""


def _join(sep: str) -> Spelling:
    return lambda operands, params: "(" + sep.join(operands) + ")"


def _matrix(shapes: list) -> dict:
    return {"m": shapes[1][0], "n": shapes[1][1]}


def _matrix_of_vecmat(shapes: list) -> dict:
    return {"m": shapes[2][0], "n": shapes[2][1]}


#: Op name -> its C spelling: a C99 expression over doubles for a scalar op (applied lane by
#: lane to tensors), a :class:`Call` of a prelude helper for a tensor op.
SPELLINGS: dict[str, Spelling | Call] = {
    "add": "({0} + {1})",
    "sub": "({0} - {1})",
    "mul": "({0} * {1})",
    "neg": "(-{0})",
    "sum": _join(" + "),
    "pow": "pow({0}, {exponent})",
    "vpow": "pow({0}, {1})",
    "relu": "gc_relu({0})",
    "tanh": "tanh({0})",
    "exp": "exp({0})",
    "log": "log({0})",
    "log1p": "log1p({0})",
    "softplus": "gc_softplus({0})",
    "sigmoid": "gc_sigmoid({0})",
    "sin": "sin({0})",
    "cos": "cos({0})",
    "step": "gc_step({0})",
    "max": "gc_max({0}, {1})",
    "abs": "fabs({0})",
    "sqrt": "sqrt({0})",
    "stop_gradient": "({0})",
    "lt": "(({0} < {1}) ? 1.0 : 0.0)",
    "le": "(({0} <= {1}) ? 1.0 : 0.0)",
    "gt": "(({0} > {1}) ? 1.0 : 0.0)",
    "ge": "(({0} >= {1}) ? 1.0 : 0.0)",
    "eq": "(({0} == {1}) ? 1.0 : 0.0)",
    "ne": "(({0} != {1}) ? 1.0 : 0.0)",
    "truediv": "({0} / {1})",
    "pack": Call(lambda operands, params: f"GC_PACK({{out}}, {', '.join(operands)});"),
    "index": Call("{0}[{i}]"),
    "unit": Call("GC_UNIT({out}, {size}, {0}, {i});", dims=lambda shapes: {"size": ops.size_of(shapes[1])}),
    "dot": Call("gc_dot({0}, {1}, {2}, {n})", dims=lambda shapes: {"n": shapes[1][0]}),
    "matvec": Call("gc_matvec({out}, {0}, {s0}, {1}, {2}, {m}, {n});", dims=_matrix, scalar_first=True,
                   transposed="gc_matvec_t({out}, {0}, {s0}, {1}, {2}, {m}, {n});"),
    "vecmat": Call("gc_vecmat({out}, {0}, {s0}, {1}, {2}, {m}, {n});", dims=_matrix_of_vecmat, scalar_first=True),
    "outer": Call("gc_outer({out}, {0}, {1}, {m}, {n});",
                  dims=lambda shapes: {"m": shapes[0][0], "n": shapes[1][0]}),
}


def texts() -> list[str]:
    """Every spelling written as text (callables left out): what the generated code calls."""
    found = []
    for spelling in SPELLINGS.values():
        if isinstance(spelling, Call):
            found += [t for t in (spelling.text, spelling.transposed) if isinstance(t, str) and t]
        elif isinstance(spelling, str):
            found.append(spelling)
    return found


def helper(name: str) -> str:
    """The code of the prelude's helper function ``name``, comments left out (empty if the
    prelude has no such function)."""
    found = re.search(rf"static inline \w+ {name}\(.*?(?=\nstatic inline|\n\n|\Z)", PRELUDE, re.S)
    return re.sub(r"/\*.*?\*/", "", found.group(0), flags=re.S) if found else ""


def _libm_names(text: str) -> set[str]:
    """The libm functions (lowercase names, no underscore) ``text`` calls, directly or
    through the prelude helper it calls."""
    calls = re.compile(r"\b([a-z][a-z0-9]*)\(")
    names = set(calls.findall(text))
    for name in re.findall(r"\b(gc_\w+)\(", text):
        names.update(calls.findall(helper(name)))
    return names


def _libm_calls() -> tuple[str, ...]:
    """The libm functions a spelling calls."""
    return tuple(sorted(set().union(*map(_libm_names, texts()))))


#: The libm functions generated code calls (see :mod:`graphc.codegen.c_toolchain`).
LIBM_CALLS = _libm_calls()
#: The ops whose spelling calls libm (built with -fno-builtin-*: a real call, which no loop
#: around it is vectorized across; :mod:`graphc.codegen.c_blocks` keeps them out of its runs).
LIBM_OPS = frozenset(op for op, spelling in SPELLINGS.items()
                     if isinstance(spelling, str) and _libm_names(spelling))
