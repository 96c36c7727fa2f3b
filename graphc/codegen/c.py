"""C backend: a (re-rolled) per-sample graph as one C99 function with the batch loop inside.

The generated function has the NumPy backend's interface -- inputs are the rows of an
(n_inputs, N) array, params one array, gradients summed over rows -- and its shape::

    void loss(const double *inputs, const double *params, double seed, long n,
              double *per_row, double *sums)
    {
        const double w = params[0];            // params, and all that depends on them
        double v12[32]; GC_PACK(v12, ...);     // alone, computed once per call
        for (long r = 0; r < n; r++) {         // the batch loop
            const double x_0 = inputs[0 * n + r];
            double v20[16]; gc_matvec(v20, v13, 1, v12, v19, 16, 2);   // a re-rolled layer
            ...
            per_row[0 * n + r] = v40;          // per-row outputs
            v55_sum[...] += ...;               // gradients, summed over the rows in order
        }
        sums[0] = ...;
    }

One statement per scalar node, one helper call (a short loop, defined in the prelude) per
tensor node: the code is readable and small, so gcc compiles it in a fraction of a second
at -O2 even for the digits MLP (a straight-line 10^5-statement function would take
minutes: see :func:`build`).

**Exactness.**  The prelude defines graphc's runtime semantics in C -- relu keeps -0.0,
step(nan) = 0, the stable sigmoid of :mod:`graphc.runtime`, max with ties to the first
operand -- and calls the same libm functions (``exp``, ``log``, ``tanh``, ``sin``,
``cos``, C99 ``pow``) that CPython's ``math`` module calls, so results equal the eager
engine's bit for bit in the forward pass.  Compiled without ``-ffast-math`` and with
``-ffp-contract=off`` (no fused multiply-adds), constants as hex floats (``INFINITY``,
``NAN``), dot products in their ops' order; gradients summed over the rows in row order.

**Loading: ctypes and a shared library, not cffi.**  ctypes is in the standard library,
so the backend adds no dependency and no build step of its own (cffi's API mode would
compile a CPython extension module per graph, needing Python's headers; its ABI mode
saves nothing over ctypes here).  The function has one fixed signature of pointers and
scalars, so the call costs a few microseconds -- once per batch, not per node.

**Cache.**  Libraries are cached as :mod:`graphc.codegen.c_cache` describes: in a private
per-user directory (one another user owns or can write to is refused; when none can be
used, a private temporary one, with a :class:`~graphc.CompilerWarning` saying why), named
by a SHA-256 of the source, the compiler and its version and the flags, sealed with the
SHA-256 of their bytes (a damaged library is built again, never loaded), renamed into place
atomically (concurrent builds of one graph are safe), pruned to the most recently used.
graphc only ever loads libraries named by such a hash, and never unpickles anything.
``$GRAPHC_CFLAGS`` adds flags after graphc's own (split as a shell would; e.g.
``-fsanitize=address,undefined`` for ``make asan``), and is part of the key.
"""
from __future__ import annotations

import _ctypes
import ctypes
import functools
import hashlib
import math
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from .. import ops
from .._version import __version__
from ..errors import GraphcError
from ..graph import Graph, node_names
from ..names import Namespace
from . import c_cache
from .numpy import batched_nodes

#: Compiler flags, after the optimization level.  No -ffast-math, no fused multiply-adds:
#: every operation rounds as in graphc's other backends.
FLAGS = ("-std=c99", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")
#: -O2 for functions of up to OPT_LIMIT statements: gcc's vectorizer and inliner specialize
#: the prelude's loops for each call's constant sizes (the moons and digits programs have
#: ~100 and ~400 statements and build in 0.15 and 0.3 s).  Beyond it -- a graph that
#: re-rolling could not shrink -- -O0: gcc's time at -O1 and -O2 grows faster than the
#: function (30,000 straight-line statements: 10 s at -O1 or -O2, 1.8 s at -O0).
OPT_LIMIT = 3000


def _machine_flags() -> tuple[str, ...]:
    """``-mavx2`` where the CPU has it (Linux): 4-wide vector loops, the same IEEE results
    (AVX2 adds no fused multiply-add; -ffp-contract=off forbids it anyway).  The flag is part
    of the cache key, so a library is only ever reused on a machine that built it alike."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return ("-mavx2",) if " avx2" in line else ()
    except OSError:
        pass
    return ()

C_WORDS = frozenset("""auto break case char const continue default do double else enum extern float for goto
if inline int long register restrict return short signed sizeof static struct switch typedef union
unsigned void volatile while _Bool _Complex _Imaginary exp log tanh sin cos pow memcpy INFINITY NAN
inputs params n r per_row sums lane""".split())
#: Names <math.h> and <string.h> may define as macros (C99 7.12, 7.21; POSIX's M_ constants
#: and GNU's unix/linux where a compiler defines them): an identifier spelled like one
#: would be macro-expanded and break the build, so user labels never become one.
HEADER_NAMES = frozenset("""HUGE_VAL HUGE_VALF HUGE_VALL INFINITY NAN FP_INFINITE FP_NAN FP_NORMAL
FP_SUBNORMAL FP_ZERO FP_FAST_FMA FP_FAST_FMAF FP_FAST_FMAL FP_ILOGB0 FP_ILOGBNAN MATH_ERRNO
MATH_ERREXCEPT math_errhandling fpclassify isfinite isinf isnan isnormal signbit isgreater
isgreaterequal isless islessequal islessgreater isunordered float_t double_t NULL size_t M_E M_LOG2E
M_LOG10E M_LN2 M_LN10 M_PI M_PI_2 M_PI_4 M_1_PI M_2_PI M_2_SQRTPI M_SQRT2 M_SQRT1_2 unix linux i386
errno""".split())

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

static inline void gc_matvec_t(double *y, const double *b, int b_stride, const double *Wt, const double *x, int m, int n)
{   /* gc_matvec reading W transposed (Wt[k*m + j] = W[j,k]): the same additions, rows contiguous */
    for (int j = 0; j < m; j++) y[j] = b[j * b_stride];
    for (int k = 0; k < n; k++)
        for (int j = 0; j < m; j++) y[j] = y[j] + Wt[k * m + j] * x[k];
}

static inline void gc_transpose(double *Wt, const double *W, int m, int n)
{
    for (int j = 0; j < m; j++)
        for (int k = 0; k < n; k++) Wt[k * m + j] = W[j * n + k];
}

static inline void gc_vecmat(double *y, const double *g, const double *W, int m, int n)
{   /* y[k] = W[m-1,k]*g[m-1] + ... + W[0,k]*g[0]; -0.0 + t is t */
    for (int k = 0; k < n; k++) y[k] = -0.0;
    for (int j = m - 1; j >= 0; j--)
        for (int k = 0; k < n; k++) y[k] = y[k] + W[j * n + k] * g[j];
}

static inline void gc_outer(double *y, const double *a, const double *b, int m, int n)
{
    for (int j = 0; j < m; j++)
        for (int k = 0; k < n; k++) y[j * n + k] = b[k] * a[j];
}

static inline void gc_outer_add(double *y, const double *a, const double *b, int m, int n)
{   /* y += outer(a, b): a gradient summed over rows without forming the products first */
    for (int j = 0; j < m; j++)
        for (int k = 0; k < n; k++) y[j * n + k] = y[j * n + k] + b[k] * a[j];
}
"""

#: The identifiers the writer itself emits around the nodes' own names: the entry point's
#: arguments, loop counters, and the accumulator of a gradient that is the same in every row.
WRITER_NAMES = frozenset("inputs params seed_unused n r per_row sums lane k acc".split())
#: The libm functions the ops' C spellings call.  Each is built with -fno-builtin-<name>: gcc
#: would otherwise replace ``pow(x, 2.0)`` by ``x * x`` and ``pow(x, -1.0)`` by ``1.0 / x``,
#: which differ from libm's pow -- what Python's math.pow, hence the eager engine, calls --
#: in the last bit on ~0.1% of inputs.
LIBM_CALLS = tuple(sorted({name for op in ops.TABLE.values() if isinstance(op.c, str)
                           for name in re.findall(r"\b([a-z][a-z0-9]*)\(", op.c)} | {"log1p", "exp"}))
NO_BUILTINS = tuple(f"-fno-builtin-{name}" for name in LIBM_CALLS)
#: Every name an identifier of the generated code must not take, derived from all the text
#: the generator emits besides node names: C's keywords and the headers' macros (above),
#: every identifier of the prelude (helpers, macros, their parameters), every function an
#: op's C spelling calls (``log1p`` for a label "log1p" would shadow the function it calls)
#: and the writer's own names.
RESERVED = C_WORDS | HEADER_NAMES | WRITER_NAMES | frozenset(re.findall(r"\b[A-Za-z_]\w*", PRELUDE)) | \
    frozenset(name for op in ops.TABLE.values() if isinstance(op.c, str) for name in re.findall(r"(\w+)\(", op.c))


def c_number(x: float) -> str:
    """A C literal for ``x``, exact: integers as ``2.0``, others as hex floats."""
    x = float(x)
    if math.isnan(x):
        return "NAN"
    if math.isinf(x):
        return "INFINITY" if x > 0 else "(-INFINITY)"
    if x == 0.0:
        return "(-0.0)" if math.copysign(1.0, x) < 0 else "0.0"
    text = f"{int(x)}.0" if x.is_integer() and abs(x) < 2 ** 53 else x.hex()
    return f"({text})" if x < 0 else text


def generate(graph: Graph, name: str, *, seed: int | None = None, reduced: frozenset[int] = frozenset()
             ) -> tuple[str, str, int, int]:
    """Source text, function name, and the numbers of per-row and summed outputs."""
    return _Writer(graph, name, seed, reduced).source()


class _Writer:
    def __init__(self, graph: Graph, name: str, seed: int | None, reduced: frozenset[int]) -> None:
        self.graph, self.seed, self.reduced = graph, seed, reduced
        self.namespace = namespace = Namespace(RESERVED)
        self.entry = namespace.create(name, "fn")
        self.names = node_names(graph, namespace)
        self._derived: dict[tuple[int, str], str] = {}
        for i, op in enumerate(graph.ops):
            if op == "const":
                self.names[i] = c_number(graph.attrs[i][0])
        self.shapes = graph.shapes
        self.batched = batched_nodes(graph, {seed} if seed is not None else set())
        self.transposed = {graph.args[i][1] for i, op in enumerate(graph.ops)
                           if op == "matvec" and not self.batched[graph.args[i][1]]}

    def _reduced_tensors(self) -> dict[int, str]:
        """Batched tensors whose lanes are summed outputs: each is summed over the rows as a
        whole (``"tensor"``), an ``outer`` read by nothing else without being formed (``"outer"``)."""
        g = self.graph
        users = [0] * len(g)
        for operands in g.args:
            for a in operands:
                users[a] += 1
        per_row = {g.outputs[k] for k in range(len(g.outputs)) if k not in self.reduced}
        found: dict[int, list[int]] = {}
        for k in sorted(self.reduced):
            o = g.outputs[k]
            if g.ops[o] == "index" and self.batched[g.args[o][0]]:
                found.setdefault(g.args[o][0], []).append(o)
        kinds = {}
        for m, lanes in found.items():
            index_users = set(lanes)
            only_outputs = all(not users[i] and i not in per_row for i in index_users)
            kinds[m] = "outer" if g.ops[m] == "outer" and only_outputs and users[m] == len(index_users) else "tensor"
        return kinds

    def source(self) -> tuple[str, str, int, int]:
        g, names, shapes = self.graph, self.names, self.shapes
        inputs = [i for i in g.inputs if i != self.seed]
        reduced_tensors = self._reduced_tensors()
        roots = []
        for k, o in enumerate(g.outputs):
            m = g.args[o][0] if g.ops[o] == "index" and k in self.reduced else None
            if m in reduced_tensors:
                roots += list(g.args[m]) if reduced_tensors[m] == "outer" else [m]
            else:
                roots.append(o)
        live = g.live(roots)
        gathered = self._gathers(live, inputs)
        used = [False] * len(g)  # leaves read by name (not only through a gathered pack)
        for i in range(len(g)):
            if live[i] and i not in gathered:
                for a in g.args[i]:
                    used[a] = True
        for r in roots:
            used[r] = True
        seed_name = names[self.seed] if self.seed is not None else "seed_unused"
        head = (f"void {self.entry}(const double *restrict inputs, const double *restrict params, "
                f"double {seed_name}, long n, double *restrict per_row, double *restrict sums)")
        body = ["{", "    /* params, and everything that depends on them alone: once per call */"]
        body += [f"    const double {names[p]} = params[{k}];" for k, p in enumerate(g.params) if used[p]]
        statements = 0
        for i, op in enumerate(g.ops):
            if op not in ops.LEAVES and live[i] and not self.batched[i]:
                body += ["    " + s for s in self.statement(i, gathered)]
                statements += 1
        per_row, summed = [], []
        for k, o in enumerate(g.outputs):
            (summed if k in self.reduced else per_row).append((k, o))
        body.append("    /* sums over the rows, in row order, from +0.0 (as .grad adds the gradients of the rows) */")
        accumulators = {}
        for m in reduced_tensors:
            size = ops.size_of(shapes[m])
            accumulators[m] = f"{self.derived(m, 'sum')}"
            body.append(f"    double {self.derived(m, 'sum')}[{size}];")
            body.append(f"    for (int lane = 0; lane < {size}; lane++) {self.derived(m, 'sum')}[lane] = 0.0;")
        for k, o in summed:
            if self.batched[o] and o not in accumulators and not self._in_tensor(o, reduced_tensors):
                accumulators[o] = f"{self.derived(o, 'sum')}"
                body.append(f"    double {self.derived(o, 'sum')} = 0.0;")
        body.append("    for (long r = 0; r < n; r++) {")
        for k, i in enumerate(inputs):
            if used[i]:
                body.append(f"        const double {names[i]} = inputs[{k} * n + r];")
        for i, op in enumerate(g.ops):
            if op not in ops.LEAVES and live[i] and self.batched[i]:
                body += ["        " + s for s in self.statement(i, gathered)]
                statements += 1
        for row, (k, o) in enumerate(per_row):
            body.append(f"        per_row[{row} * n + r] = {names[o]};")
        for key, acc in accumulators.items():
            if reduced_tensors.get(key) == "outer":
                a, b = g.args[key]
                body.append(f"        gc_outer_add({acc}, {names[a]}, {names[b]}, {shapes[a][0]}, {shapes[b][0]});")
            elif key in reduced_tensors:
                size = ops.size_of(shapes[key])
                body.append(f"        for (int lane = 0; lane < {size}; lane++) {acc}[lane] = {acc}[lane] + {names[key]}[lane];")
            else:
                body.append(f"        {acc} = {acc} + {names[key]};")
        body.append("    }")
        scattered: dict[int, list[tuple[int, int]]] = {}
        for s, (k, o) in enumerate(summed):
            if not self.batched[o]:  # the same value in every row, added n times (n * value rounds otherwise)
                body.append(f"    {{ double acc = 0.0; for (long r = 0; r < n; r++) acc = acc + {names[o]}; "
                            f"sums[{s}] = acc; }}")
            elif self._in_tensor(o, reduced_tensors):
                scattered.setdefault(g.args[o][0], []).append((s, g.attrs[o][0]))
            else:
                body.append(f"    sums[{s}] = {self.derived(o, 'sum')};")
        for m, pairs in scattered.items():
            (slot, lane), count = pairs[0], len(pairs)
            if pairs == [(slot + j, lane + j) for j in range(count)]:  # a run of lanes to a run of slots
                body.append(f"    memcpy(sums + {slot}, {self.derived(m, 'sum')} + {lane}, {count} * sizeof(double));")
                continue
            body.append(f"    static const int {self.derived(m, 'slot')}[{len(pairs)}] = {_table(p for p, _ in pairs)};")
            body.append(f"    static const int {self.derived(m, 'lane')}[{len(pairs)}] = {_table(q for _, q in pairs)};")
            body.append(f"    for (int k = 0; k < {len(pairs)}; k++) sums[{self.derived(m, 'slot')}[k]] = "
                        f"{self.derived(m, 'sum')}[{self.derived(m, 'lane')}[k]];")
        body.append("}")
        mix = g.op_mix()
        header = (f"/* Generated by graphc {__version__} (C backend). Do not edit: regenerate instead.\n"
                  f" * {self.entry}: for each of n rows of inputs, {len(per_row)} per-row output(s)"
                  f"{f' and {len(summed)} gradient(s) summed over the rows' if summed else ''}.\n"
                  f" * {statements:,} statements from a graph of {mix or 'no operations'}.\n */\n")
        return header + PRELUDE + "\n" + head + "\n" + "\n".join(body) + "\n", self.entry, len(per_row), len(summed)

    def derived(self, i: int, suffix: str) -> str:
        """The name of a helper variable of node ``i`` (``v8_sum``), from the same namespace as
        every other name, so a user label spelled ``v8_sum`` cannot collide with it."""
        key = (i, suffix)
        if key not in self._derived:
            self._derived[key] = self.namespace.create(f"{self.names[i]}_{suffix}")
        return self._derived[key]

    def _in_tensor(self, o: int, reduced_tensors: dict) -> bool:
        g = self.graph
        return g.ops[o] == "index" and g.args[o][0] in reduced_tensors

    def _gathers(self, live: list[bool], inputs: list[int]) -> dict[int, str]:
        """Packs of params (or of inputs) read straight from the argument arrays through a
        table of positions, instead of one named scalar per lane."""
        g = self.graph
        slot = {p: k for k, p in enumerate(g.params)}
        row = {i: k for k, i in enumerate(inputs)}
        found = {}
        for i, op in enumerate(g.ops):
            if op == "pack" and live[i] and len(g.args[i]) >= 4:
                if all(a in slot for a in g.args[i]):
                    found[i] = "params"
                elif all(a in row for a in g.args[i]):
                    found[i] = "inputs"
        self._positions = slot, row
        return found

    def statement(self, i: int, gathered: dict[int, str]) -> list[str]:
        """Node ``i``'s lines, then the transposed copy of a weight matrix read by matvecs."""
        return self._compute(i, gathered) + self._transposed_copy(i)

    def _compute(self, i: int, gathered: dict[int, str]) -> list[str]:
        g, names, shapes = self.graph, self.names, self.shapes
        op = ops.TABLE[g.ops[i]]
        operands = [names[a] for a in g.args[i]]
        shape = shapes[i]
        if i in gathered:
            slot, row = self._positions
            size = ops.size_of(shape)
            if gathered[i] == "params":
                table = _table(slot[a] for a in g.args[i])
                return [f"double {names[i]}[{size}];",
                        f"static const int {self.derived(i, 'from')}[{size}] = {table};",
                        f"for (int lane = 0; lane < {size}; lane++) {names[i]}[lane] = params[{self.derived(i, 'from')}[lane]];"]
            table = _table(row[a] for a in g.args[i])
            return [f"double {names[i]}[{size}];",
                    f"static const int {self.derived(i, 'from')}[{size}] = {table};",
                    f"for (int lane = 0; lane < {size}; lane++) {names[i]}[lane] = inputs[{self.derived(i, 'from')}[lane] * n + r];"]
        if op.elementwise:
            if not shape:
                return [f"const double {names[i]} = {_spell(op, operands, g.attrs[i])};"]
            lanes = [f"{o}[lane]" if shapes[a] else o for o, a in zip(operands, g.args[i])]
            size = ops.size_of(shape)
            return [f"double {names[i]}[{size}];",
                    f"for (int lane = 0; lane < {size}; lane++) {names[i]}[lane] = {_spell(op, lanes, g.attrs[i])};"]
        dims = self.dims(i)
        text = op.c(operands, g.attrs[i]) if callable(op.c) else op.c
        if op.name == "matvec" and g.args[i][1] in self.transposed:
            # W is the same for every row: read the copy transposed once per call
            text = text.replace("gc_matvec(", "gc_matvec_t(")
            operands[1] = self.derived(g.args[i][1], "t")
        if "{s0}" in text and not shapes[g.args[i][0]]:
            operands[0] = f"(const double[]){{{operands[0]}}}"  # a scalar broadcast: stride 0
        if callable(op.c):
            text = text.format(**dims)
        else:
            text = text.format(*operands, **{p: str(v) for p, v in zip(op.params, g.attrs[i])}, **dims)
        if not shape:
            return [f"const double {names[i]} = {text};"]
        return [f"double {names[i]}[{ops.size_of(shape)}];", text]

    def _transposed_copy(self, i: int) -> list[str]:
        if i not in self.transposed:
            return []
        m, n = self.shapes[i]
        name = self.names[i]
        return [f"double {self.derived(i, 't')}[{m * n}];", f"gc_transpose({self.derived(i, 't')}, {name}, {m}, {n});"]

    def dims(self, i: int) -> dict:
        g, shapes = self.graph, self.shapes
        operand_shapes = [shapes[a] for a in g.args[i]]
        op = g.ops[i]
        dims = {"out": self.names[i], "size": ops.size_of(shapes[i]) if shapes[i] else 1, "s0": 1 if operand_shapes[0] else 0}
        if op == "dot":
            dims["n"] = operand_shapes[1][0]
        elif op in ("matvec", "vecmat"):
            dims["m"], dims["n"] = operand_shapes[1]
        elif op == "outer":
            dims["m"], dims["n"] = operand_shapes[0][0], operand_shapes[1][0]
        elif op == "unit":
            dims["size"] = ops.size_of(operand_shapes[1])
        return dims


def _spell(op: ops.Op, operands: list[str], attr: tuple) -> str:
    if callable(op.c):
        return op.c(operands, attr)
    return op.c.format(*operands, **{p: c_number(v) for p, v in zip(op.params, attr)})


def _table(values) -> str:
    """A C initializer list of ints, wrapped every 20 entries."""
    items = [str(v) for v in values]
    rows = [", ".join(items[k:k + 20]) for k in range(0, len(items), 20)]
    return "{" + ",\n        ".join(rows) + "}"


# -- building and loading ------------------------------------------------------------------

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL] = {}


@functools.lru_cache(maxsize=None)
def find_compiler() -> tuple[str, str] | None:
    """``(path, version line)`` of the C compiler (``$CC``, else cc, gcc, clang), or None."""
    candidates = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for candidate in candidates:
        path = shutil.which(candidate)
        if path is None:
            continue
        try:
            version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if version.returncode == 0:
            return path, (version.stdout.splitlines() or [""])[0]
    return None


def optimization_level(source: str) -> str:
    """-O2, or -O0 for a function of more than OPT_LIMIT statements (see OPT_LIMIT);
    statements are counted as lines ending in a semicolon, the prelude's excluded."""
    return "-O2" if source.count(";\n") - PRELUDE.count(";\n") <= OPT_LIMIT else "-O0"


def build(source: str) -> Path:
    """The shared library for ``source``, from the cache or freshly compiled into it."""
    compiler = find_compiler()
    if compiler is None:
        raise GraphcError("no C compiler found (set CC, or install gcc or clang)")
    cc, version = compiler
    flags = (optimization_level(source),) + FLAGS + NO_BUILTINS + _machine_flags() + \
        tuple(shlex.split(os.environ.get("GRAPHC_CFLAGS", "")))
    key = hashlib.sha256("\0".join([source, cc, version, *flags, c_cache.FORMAT]).encode()).hexdigest()[:40]
    directory = c_cache.build_dir()
    library = directory / f"graphc-{key}.so"
    if c_cache.usable(library):
        return library
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=directory))
    try:
        (scratch / "graph.c").write_text(source)
        result = subprocess.run([cc, *flags, "-o", str(scratch / "graph.so"), str(scratch / "graph.c"), "-lm"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise GraphcError(f"the C compiler rejected graphc's generated code (a graphc bug):\n"
                              f"{result.stderr[-2000:]}")
        c_cache.seal(scratch / "graph.so")
        os.replace(scratch / "graph.c", directory / f"graphc-{key}.c")  # for people to read
        os.replace(scratch / "graph.so", library)  # atomic: a concurrent build's result is the same
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    c_cache.prune(directory)
    return library


def load(source: str, entry: str) -> Callable:
    """The C function ``entry`` of ``source`` (built or taken from the cache)."""
    with _lock:
        library = build(source)
        function = _open(library, entry)
        if function is None:  # pruned by another process meanwhile, or not a library graphc built
            c_cache.discard(library, f"cannot be loaded or lacks {entry}")
            function = _open(build(source), entry)
        if function is None:
            raise GraphcError(f"graphc cannot load the C library it has just built, {library}")
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_double, ctypes.c_long,
                         ctypes.c_void_p, ctypes.c_void_p]
    function.restype = None
    return function


def _open(library: Path, entry: str) -> Callable | None:
    """``entry`` of ``library``, loaded; None if the library cannot be loaded or lacks it."""
    handle = _loaded.get(str(library))
    if handle is not None:
        return getattr(handle, entry)
    try:
        handle = ctypes.CDLL(str(library))
    except OSError:
        return None
    if not hasattr(handle, entry):
        _ctypes.dlclose(handle._handle)  # else dlopen of this path would return it again
        return None
    _loaded[str(library)] = handle
    return getattr(handle, entry)


def compile_graph(graph: Graph, name: str, *, seed: int | None = None, reduced: frozenset[int] = frozenset()
                  ) -> tuple[Callable, str]:
    """Generate, build and load; the returned callable has the NumPy backend's interface:
    ``f(inputs, params, [seed,] n) -> (per_row arrays, summed floats)``, and ``.raw`` the same
    on a params array, returning the sums as an array."""
    source, entry, n_rows, n_sums = generate(graph, name, seed=seed, reduced=reduced)
    function = load(source, entry)
    shape = (len(graph.inputs) - (seed is not None), len(graph.params))

    def raw(inputs: np.ndarray, params, seed: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        inputs, params = _c_arrays(inputs, params, n, shape)
        per_row, sums = np.empty((n_rows, n)), np.empty(n_sums)
        function(inputs.ctypes.data, params.ctypes.data, seed, n, per_row.ctypes.data, sums.ctypes.data)
        return per_row, sums

    if seed is None:
        def run(inputs, params, n):
            per_row, sums = raw(inputs, params, 0.0, n)
            return list(per_row), sums.tolist()
    else:
        def run(inputs, params, seed, n):
            per_row, sums = raw(inputs, params, seed, n)
            return list(per_row), sums.tolist()
    run.__doc__ = f"{entry} in C: see the generated source"
    run.raw = raw
    return run, source


def _c_arrays(inputs, params, n: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``inputs`` and ``params`` as the C function reads them: C-contiguous float64 arrays of
    exactly the expected sizes.  A strided, reversed or transposed view, or a list, is copied:
    the C code indexes raw memory, so it must never see a layout it does not expect."""
    inputs = np.ascontiguousarray(inputs, dtype=np.float64)
    params = np.ascontiguousarray(params, dtype=np.float64)
    if inputs.shape != (shape[0], n) or params.shape != (shape[1],):
        raise GraphcError(f"the C function takes inputs of shape {(shape[0], n)} and {shape[1]} params; "
                          f"got {inputs.shape} and {params.shape} (a graphc bug)")
    return inputs, params
