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

**One row at vector speed.**  The row loop (every row of a batch of one) calls the layer
helpers ``gc_matvec_t``, ``gc_vecmat`` and ``gc_outer_add`` on one row; they put ``GC_B``
consecutive *outputs* in a vector (the blocked helpers put rows there), so a vector lane
is one output's own sum, added in its op's order: the same additions as a scalar loop,
only side by side.  ``gc_lin`` keeps four vectors of outputs in registers per pass over
the terms.  Where the number of outputs is not a multiple of ``GC_B``, the last vector
starts ``GC_B`` before the end and so recomputes a few outputs of the vector before it,
with the same operations in the same order, hence the same bits (no scalar tail); in
``gc_outer_into``, which adds into memory, that vector reads its row before the others
write it and is stored last.  ``gc_outer_first`` writes ``0.0 + product`` into a sum the
writer did not zero (:data:`graphc.codegen.c_sums.FIRST_WRITES`); ``gc_outer_step`` writes
the params after train's step with that gradient instead (:mod:`graphc.codegen.c_sums`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from .. import ops
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
#define GC_PACK(out, ...) memcpy(out, (const double[]){__VA_ARGS__}, sizeof(out))
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
""" + r"""
/* Blocks of GC_B rows (see graphc/codegen/c_blocks.py): a value that varies across rows holds
   the block's rows side by side, lane by lane (v[lane * GC_B + rb]), so one vector operation
   does one step of GC_B rows' sums, each row's additions in its own order. */
#if defined(__AVX512F__)
#define GC_B 8   /* a block's rows fill one vector register */
#else
#define GC_B 4
#endif
#if defined(__GNUC__) && !defined(GC_PORTABLE)  /* GNU vector extensions (gcc, clang) */
typedef double gc_vec __attribute__((vector_size(GC_B * sizeof(double))));
#define GC_ADD(a, b) ((a) + (b))
#define GC_MULS(s, v) ((s) * (v))  /* scalar times each lane */
#define GC_MULV(v, s) ((v) * (s))
#define GC_SUB(a, b) ((a) - (b))
#define GC_NEG(a) (-(a))
static inline gc_vec gc_splat(double s) { gc_vec v; for (int q = 0; q < GC_B; q++) v[q] = s; return v; }
#else
typedef struct { double lane[GC_B]; } gc_vec;
static inline gc_vec gc_vadd(gc_vec a, gc_vec b) { for (int q = 0; q < GC_B; q++) a.lane[q] = a.lane[q] + b.lane[q]; return a; }
static inline gc_vec gc_vmuls(double s, gc_vec v) { for (int q = 0; q < GC_B; q++) v.lane[q] = s * v.lane[q]; return v; }
static inline gc_vec gc_vmulv(gc_vec v, double s) { for (int q = 0; q < GC_B; q++) v.lane[q] = v.lane[q] * s; return v; }
static inline gc_vec gc_vsub(gc_vec a, gc_vec b) { for (int q = 0; q < GC_B; q++) a.lane[q] = a.lane[q] - b.lane[q]; return a; }
static inline gc_vec gc_vneg(gc_vec a) { for (int q = 0; q < GC_B; q++) a.lane[q] = -a.lane[q]; return a; }
static inline gc_vec gc_splat(double s) { gc_vec v; for (int q = 0; q < GC_B; q++) v.lane[q] = s; return v; }
#define GC_ADD(a, b) gc_vadd(a, b)
#define GC_MULS(s, v) gc_vmuls(s, v)
#define GC_MULV(v, s) gc_vmulv(v, s)
#define GC_SUB(a, b) gc_vsub(a, b)
#define GC_NEG(a) gc_vneg(a)
#endif
static inline gc_vec gc_load(const double *p) { gc_vec v; memcpy(&v, p, sizeof v); return v; }
static inline void gc_store(double *p, gc_vec v) { memcpy(p, &v, sizeof v); }
static inline gc_vec gc_start(const double *b, int bj, int bb, int o)
{   /* a sum's first term for output o: b[o * bj] in every row (bb = 0), or the rows' own (bb = 1) */
    return bb ? gc_load(b + o * bj) : gc_splat(b[o * bj]);
}

static inline void gc_blin(double *y, const double *b, int bj, int bb, const double *M, int mo, int mi,
                           const double *x, int m, int n, int down)
{   /* y[o] = ((b[o] + M(o,i0)*x[i0]) + M(o,i1)*x[i1]) + ... in every row of the block, i = 0, 1, ...
       (matvec: M(o,i) = M[o*mo + i*mi]) or i = n-1, n-2, ... (down: vecmat); four outputs at a time */
    int o = 0;
    for (; o + 4 <= m; o += 4) {
        gc_vec a0 = gc_start(b, bj, bb, o), a1 = gc_start(b, bj, bb, o + 1);
        gc_vec a2 = gc_start(b, bj, bb, o + 2), a3 = gc_start(b, bj, bb, o + 3);
        const double *row = M + o * mo;
        for (int t = 0; t < n; t++) {
            int i = down ? n - 1 - t : t;
            gc_vec xi = gc_load(x + i * GC_B);
            a0 = GC_ADD(a0, GC_MULS(row[i * mi], xi));
            a1 = GC_ADD(a1, GC_MULS(row[mo + i * mi], xi));
            a2 = GC_ADD(a2, GC_MULS(row[2 * mo + i * mi], xi));
            a3 = GC_ADD(a3, GC_MULS(row[3 * mo + i * mi], xi));
        }
        gc_store(y + o * GC_B, a0); gc_store(y + (o + 1) * GC_B, a1);
        gc_store(y + (o + 2) * GC_B, a2); gc_store(y + (o + 3) * GC_B, a3);
    }
    for (; o < m; o++) {
        gc_vec a0 = gc_start(b, bj, bb, o);
        for (int t = 0; t < n; t++) {
            int i = down ? n - 1 - t : t;
            a0 = GC_ADD(a0, GC_MULS(M[o * mo + i * mi], gc_load(x + i * GC_B)));
        }
        gc_store(y + o * GC_B, a0);
    }
}

static inline void gc_bouter_add(double *y, const double *a, const double *b, int m, int n)
{   /* y += outer(a, b) for each row of the block in turn (y[j,k] + b[k]*a[j], row 0 first):
       GC_B columns k at a time, the block's b[k..k+GC_B] turned into rows of a small tile */
    int k = 0;
    for (; k + GC_B <= n; k += GC_B) {
        double tile[GC_B * GC_B];
        for (int q = 0; q < GC_B; q++)
            for (int rb = 0; rb < GC_B; rb++) tile[rb * GC_B + q] = b[(k + q) * GC_B + rb];
        for (int j = 0; j < m; j++) {
            gc_vec acc = gc_load(y + j * n + k);
            for (int rb = 0; rb < GC_B; rb++) acc = GC_ADD(acc, GC_MULV(gc_load(tile + rb * GC_B), a[j * GC_B + rb]));
            gc_store(y + j * n + k, acc);
        }
    }
    for (; k < n; k++)
        for (int j = 0; j < m; j++)
            for (int rb = 0; rb < GC_B; rb++) y[j * n + k] = y[j * n + k] + b[k * GC_B + rb] * a[j * GC_B + rb];
}
""" + r"""
/* one row: matvec, vecmat and outer over outputs side by side (GC_B outputs a vector), each
   output's sum in its own order (see graphc/codegen/c_runtime.py) */
static inline int gc_min(int a, int b) { return a < b ? a : b; }
static inline gc_vec gc_terms(const double *b, int b_stride, int o)
{   /* b[o * b_stride], b[(o + 1) * b_stride], ...: the first term of each output's sum */
    if (b_stride == 1) return gc_load(b + o);
    double tile[GC_B];
    for (int q = 0; q < GC_B; q++) tile[q] = b[(o + q) * b_stride];
    return gc_load(tile);
}

static inline void gc_lin(double *y, const double *b, int b_stride, const double *M, int mi, const double *x,
                          int m, int n, int down)
{   /* y[o] = ((b[o] + M[i0*mi + o]*x[i0]) + M[i1*mi + o]*x[i1]) + ..., i = 0, 1, ... (or n-1, ..., 0 if
       down), four sums of GC_B outputs in each step */
    if (m < GC_B) {
        for (int o = 0; o < m; o++) y[o] = b[o * b_stride];
        for (int t = 0; t < n; t++) {
            int i = down ? n - 1 - t : t;
            for (int o = 0; o < m; o++) y[o] = y[o] + M[i * mi + o] * x[i];
        }
        return;
    }
    for (int o = 0; o < m; o += 4 * GC_B) {
        int at[4];
        for (int q = 0; q < 4; q++) at[q] = gc_min(o + q * GC_B, m - GC_B);
        gc_vec a0 = gc_terms(b, b_stride, at[0]), a1 = gc_terms(b, b_stride, at[1]);
        gc_vec a2 = gc_terms(b, b_stride, at[2]), a3 = gc_terms(b, b_stride, at[3]);
        for (int t = 0; t < n; t++) {
            int i = down ? n - 1 - t : t;
            const double *row = M + i * mi;
            double xi = x[i];
            a0 = GC_ADD(a0, GC_MULV(gc_load(row + at[0]), xi));
            a1 = GC_ADD(a1, GC_MULV(gc_load(row + at[1]), xi));
            a2 = GC_ADD(a2, GC_MULV(gc_load(row + at[2]), xi));
            a3 = GC_ADD(a3, GC_MULV(gc_load(row + at[3]), xi));
        }
        gc_store(y + at[0], a0); gc_store(y + at[1], a1); gc_store(y + at[2], a2); gc_store(y + at[3], a3);
    }
}

static inline void gc_matvec_t(double *y, const double *b, int b_stride, const double *Wt, const double *x, int m, int n)
{   /* gc_matvec reading W transposed (Wt[k*m + j] = W[j,k]): the same additions, outputs contiguous */
    gc_lin(y, b, b_stride, Wt, m, x, m, n, 0);
}

static inline void gc_vecmat(double *y, const double *acc, int acc_stride, const double *g, const double *W,
                             int m, int n)
{   /* y[k] = acc[k] + W[m-1,k]*g[m-1] + ... + W[0,k]*g[0] */
    gc_lin(y, acc, acc_stride, W, n, g, n, m, 1);
}

static inline double gc_sgd(double p, double g, double lr, long step)
{   /* train's step of p with gradient g: p - lr * g (step 1: lr) or p + (-(lr * g)) (step 2: SGD) */
    return step == 1 ? p - lr * g : p + (-(lr * g));
}

static inline gc_vec gc_vsgd(gc_vec p, gc_vec g, double lr, long step)
{
    return step == 1 ? GC_SUB(p, GC_MULS(lr, g)) : GC_ADD(p, GC_NEG(GC_MULS(lr, g)));
}

static inline double gc_into(const double *y, double x, int summed, double lr, long step)
{   /* gc_outer_into at y: y + x (summed), 0.0 + x, or the step of y with gradient 0.0 + x (step) */
    if (summed) return *y + x;
    return step ? gc_sgd(*y, 0.0 + x, lr, step) : 0.0 + x;
}

static inline gc_vec gc_vinto(const double *y, gc_vec x, int summed, double lr, long step)
{
    if (summed) return GC_ADD(gc_load(y), x);
    gc_vec g = GC_ADD(gc_splat(0.0), x);
    return step ? gc_vsgd(gc_load(y), g, lr, step) : g;
}

static inline void gc_outer_into(double *y, const double *x, const double *a, const double *b, int m, int n,
                                 int summed, double lr, long step)
{   /* y[j,k] = gc_into(x[j,k], b[k]*a[j], ...) (x: y, or the params of a step), the vector at k = n - GC_B of
       each row first */
    if (n < GC_B) {
        for (int j = 0; j < m; j++)
            for (int k = 0; k < n; k++) y[j * n + k] = gc_into(x + j * n + k, b[k] * a[j], summed, lr, step);
        return;
    }
    const int e = n - GC_B;
    for (int j = 0; j < m; j++) {
        double *row = y + j * n;
        const double *u = x + j * n, s = a[j];
        gc_vec v = gc_vinto(u + e, GC_MULV(gc_load(b + e), s), summed, lr, step);
        for (int k = 0; k < e; k += GC_B)
            gc_store(row + k, gc_vinto(u + k, GC_MULV(gc_load(b + k), s), summed, lr, step));
        gc_store(row + e, v);
    }
}

static inline void gc_outer_add(double *y, const double *a, const double *b, int m, int n)
{   /* y += outer(a, b): a gradient summed over rows without forming the products first */
    gc_outer_into(y, y, a, b, m, n, 1, 0.0, 0);
}

static inline void gc_outer_first(double *y, const double *a, const double *b, int m, int n)
{   /* y = 0.0 + outer(a, b): the first row of a sum, without 0.0 in y first */
    gc_outer_into(y, y, a, b, m, n, 0, 0.0, 0);
}

static inline void gc_outer_step(double *y, const double *p, const double *a, const double *b, int m, int n,
                                 double lr, long step)
{   /* y = gc_sgd(p, 0.0 + outer(a, b), lr, step): one row's gradient and train's step with that gradient */
    gc_outer_into(y, p, a, b, m, n, 0, lr, step);
}

#if defined(__GNUC__)
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


def _libm_calls() -> tuple[str, ...]:
    """The libm functions (lowercase names, no underscore) a spelling calls, directly or
    through the prelude helper it calls."""
    calls = re.compile(r"\b([a-z][a-z0-9]*)\(")
    names: set[str] = set()
    for text in texts():
        names.update(calls.findall(text))
        for name in re.findall(r"\b(gc_\w+)\(", text):
            names.update(calls.findall(helper(name)))
    return tuple(sorted(names))


#: The libm functions generated code calls (see :mod:`graphc.codegen.c_toolchain`).
LIBM_CALLS = _libm_calls()
