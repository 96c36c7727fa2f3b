"""A whole training run in one C call: minibatches, the optimizer update and the learning
rate schedule around a generated mean-and-gradient kernel (:mod:`.c_writer`).

The driver is the same C for every model, so it is built once per machine (with the exact
flags and its loops vectorized, :data:`.c_toolchain.VECTORIZED_FLAGS`, into the cache, on
the first native ``train``) and reaches a model's kernel through a pointer to the step entry
its library exports (:func:`.c_writer.generate_kernel`).  A model's own build is the kernel
alone, which ``mean_and_grad`` needs (the driver in the same file added 0.06-0.11 s to each
model's build: the moons step's 0.69-0.75 s, MNIST's 0.75-0.78 s from code to loaded
library; built alone, it takes 0.13 s, once).  Per step it
copies the step's rows (``rows[bounds[s]:bounds[s+1]]`` of the data) into a scratch block
of the kernel's (n_inputs, b) layout, calls the kernel with the seed
``1.0 / b``, takes the mean loss as :func:`graphc.batches.row_mean` does (first to last,
``+ 0.0``, ``/ b``) and updates the params in the kernel layout with the same operations,
in the same order, as :mod:`graphc.optim` computes them with NumPy (``pow`` and ``sqrt``
from libm, as Python's ``**`` and NumPy's ``sqrt`` on float64): the same steps, bit for
bit, whatever the kernel's numerics (only a ``fast`` kernel's gradient is fast).  Params,
gradients and the optimizer's state all stay in the kernel layout (:mod:`.c_layout`) for
the whole call; the optimizers are elementwise, so the layout does not change their
numbers.  A step of one row without an L2 term, with ``lr`` or plain SGD, is taken by an
exact kernel itself, the same operations on the gradient it would have written (``step``:
see :mod:`.c_sums`), into a second array of params: the two swap roles, and the params are
copied back to the caller's array at the end of the call if needed.

**The data as the caller holds it.**  The driver reads the arguments' own row-major arrays
(``parts``: one (N, width) float64 array per argument, not copied when they are C-contiguous
float64 already), so a step's row is a few contiguous runs of memory, not one number from each
of ``n_inputs`` rows of a transposed copy (at a batch of one, that gather missed the cache on
every input and cost a third of the step).
"""
from __future__ import annotations

import ctypes
import functools
from typing import Callable

import numpy as np

from ..errors import GraphcError
from .c_call import address
from .c_toolchain import load

#: Optimizer kinds the driver runs, as :meth:`graphc.optim.Optimizer.native` names them.
KINDS = ("lr", "sgd", "momentum", "nesterov", "adam", "adam_eps_hat")

DRIVER = r"""/* graphc.codegen.c_train: a whole training run around a kernel, in one call */
#include <math.h>
#include <string.h>

typedef void (*gc_step_kernel)(const double *, const double *, double, long, double *, double *, double *, long,
                               double);

static int gc_driver_rows(double *restrict to, const double *restrict part, long width, const long *restrict rows, long b)
{{  /* rows[0 .. b - 1] of part ((N, width), row-major) into columns, to[k * b + r] = part[rows[r] * width + k]:
       eight rows at a time, each read in order, so that the eight numbers written for an input are side by side
       (one row at a time wrote across the block and missed the cache on most writes; one input at a time read
       across rows, 1.5x the time at 784 inputs and b = 32); the last rows one at a time, eight inputs at a time.
       Whether some number was inf or nan: x * 0.0 is nan then, else a zero, added up in eight sums held in
       registers (one sum made a batch of one wait on each addition; sums in an array indexed by the input and
       row, stored and loaded again, made the copy 2.2x slower at b = 32 and 3.7x at b = 1) */
    double {sums};
    long r0 = 0;
    for (; r0 + 8 <= b; r0 += 8) {{
{eight_rows_from}
        double *t = to + r0;
        for (long k = 0; k < width; k++) {{
{eight_rows_copy}
        }}
    }}
    for (; r0 < b; r0++) {{
        const double *from = part + rows[r0] * width;
        double *t = to + r0;
        long k = 0;
        for (; k + 8 <= width; k += 8) {{
{eight_inputs_copy}
        }}
        for (; k < width; k++) {{
            const double x = from[k];
            t[k * b] = x;
            s0 = s0 + x * 0.0;
        }}
    }}
    return !({all_zero});
}}

/* gc_train: steps of minibatch training with kernel, a model's step entry (of P params), in one call;
   may_step: whether the kernel may take the step of a batch of one itself (not a fast one: its update would be) */
void gc_train(gc_step_kernel kernel, long P, long may_step, const double *const *restrict parts,
              const long *restrict widths, long n_parts, const long *restrict rows, const long *restrict bounds,
              long steps, double *restrict params, double *restrict spare, double *restrict grads,
              double *restrict cols, double *restrict values, long kind, const double *restrict hyper,
              const double *restrict lrs, long t, double *restrict s1, double *restrict s2, double *restrict losses,
              const long *restrict decay, long n_decay, const double *restrict scales, double *restrict penalties,
              long check, long *restrict done)
{{
    const double wd = hyper[3];                       /* weight_decay, and hyper[4]: decoupled (AdamW) */
    const int decoupled = hyper[4] != 0.0;
    double *p = params, *q = spare;                   /* a step the kernel takes writes q: then they swap */
    for (long s = 0; s < steps; s++) {{
        const long start = bounds[s], b = bounds[s + 1] - start;
        double *to = cols;                            /* input k of row r of the step: cols[k * b + r] */
        int bad = 0;
        for (long a = 0; a < n_parts; a++) {{
            bad |= gc_driver_rows(to, parts[a], widths[a], rows + start, b);
            to += widths[a] * b;
        }}
        if (bad && check) {{                           /* an inf or nan in the rows of the step: stop before it */
            done[1] = 1;
            break;
        }}
        const double lr = lrs[s];
        const long step = may_step && b == 1 && !decay && kind <= 1 && wd == 0.0 ? kind + 1 : 0;  /* c_sums.py */
        kernel(cols, p, 1.0 / (double)b, b, values, grads, q, step, lr);
        double acc = values[0];                       /* batches.row_mean */
        for (long r = 1; r < b; r++) acc = acc + values[r];
        losses[s] = (acc + 0.0) / (double)b;
        if (decay) {{                                  /* an L2 penalty: scales[s] * sum of p * p over p[decay[..]] */
            const double scale = scales[s];
            double squares = 0.0;
            for (long k = 0; k < n_decay; k++) {{
                const long i = decay[k];
                squares = squares + p[i] * p[i];
                grads[i] = grads[i] + 2.0 * scale * p[i];
            }}
            penalties[s] = scale * squares;
        }}
        if (wd != 0.0 && !decoupled) {{                 /* weight decay (SGD, Adam): grads + wd * params */
            for (long i = 0; i < P; i++) grads[i] = grads[i] + wd * p[i];
        }} else if (wd != 0.0) {{                       /* decoupled (AdamW): the params shrink before the update */
            const double shrink = 1.0 - lr * wd;
            for (long i = 0; i < P; i++) p[i] = p[i] * shrink;
        }}
        if (step) {{                                   /* one row, no L2, lr or SGD: the kernel took the step */
            double *stepped = q;
            q = p;
            p = stepped;
        }} else if (kind == 0) {{                       /* params -= lr * grads */
            for (long i = 0; i < P; i++) p[i] = p[i] - lr * grads[i];
        }} else if (kind == 1) {{                       /* SGD: data + -(lr * grad) */
            for (long i = 0; i < P; i++) p[i] = p[i] + (-(lr * grads[i]));
        }} else if (kind == 2 || kind == 3) {{          /* SGD with (Nesterov) momentum */
            const double mu = hyper[0];
            for (long i = 0; i < P; i++) {{
                s1[i] = mu * s1[i] - lr * grads[i];
                p[i] = p[i] + (kind == 3 ? mu * s1[i] - lr * grads[i] : s1[i]);
            }}
        }} else {{                                      /* Adam */
            const double b1 = hyper[0], b2 = hyper[1], eps = hyper[2];
            t = t + 1;
            const double c1 = 1.0 - pow(b1, (double)t), c2 = 1.0 - pow(b2, (double)t);
            for (long i = 0; i < P; i++) {{
                s1[i] = b1 * s1[i] + (1.0 - b1) * grads[i];
                s2[i] = b2 * s2[i] + (1.0 - b2) * grads[i] * grads[i];
            }}
            if (kind == 5) {{                           /* eps_hat: the Section 2 form of the paper */
                const double rate = lr * sqrt(c2) / c1;
                for (long i = 0; i < P; i++) p[i] = p[i] + (-(rate * s1[i] / (sqrt(s2[i]) + eps)));
            }} else {{
                for (long i = 0; i < P; i++)
                    p[i] = p[i] + (-(lr * (s1[i] / c1) / (sqrt(s2[i] / c2) + eps)));
            }}
        }}
        *done = *done + 1;                             /* steps completed, over all calls */
    }}
    if (p != params) memcpy(params, p, P * sizeof(double));
}}
"""


#: gc_driver_rows' eight sums, and its statements for eight rows or eight inputs, one line each.
_EIGHT = range(8)
_ROWS_PARTS = dict(
    sums=", ".join(f"s{q} = 0.0" for q in _EIGHT),
    eight_rows_from="\n".join(f"        const double *from{q} = part + rows[r0 + {q}] * width;" for q in _EIGHT),
    eight_rows_copy="\n".join(f"            {{ const double x = from{q}[k]; t[k * b + {q}] = x; "
                               f"s{q} = s{q} + x * 0.0; }}" for q in _EIGHT),
    eight_inputs_copy="\n".join(f"            {{ const double x = from[k + {q}]; t[(k + {q}) * b] = x; "
                                 f"s{q} = s{q} + x * 0.0; }}" for q in _EIGHT),
    all_zero=" && ".join(f"s{q} == 0.0" for q in _EIGHT))
#: The driver's C source, the same for every model.
SOURCE = DRIVER.format(**_ROWS_PARTS)


@functools.lru_cache(maxsize=None)
def _driver() -> Callable:
    """The driver's C function, built (or taken from the cache) on first use."""
    function = load(SOURCE, "gc_train", vectorized=True)
    function.argtypes, function.restype = ARGTYPES, None
    return function


_P = ctypes.c_void_p
#: Numbers of a step's columns the driver keeps between calls (4 MB): more are made anew.
KEPT_COLUMNS = 1 << 19
ARGTYPES = [_P, ctypes.c_long, ctypes.c_long, _P, _P, ctypes.c_long, _P, _P, ctypes.c_long, _P, _P, _P, _P, _P,
            ctypes.c_long, _P, _P, ctypes.c_long, _P, _P, _P, _P, ctypes.c_long, _P, _P, ctypes.c_long, _P]


class Driver:
    """The driver for one kernel: :meth:`run` takes arrays already in the kernel layout.
    ``kernel``: the address of the kernel's step entry (its library stays loaded);
    ``may_step``: whether the kernel takes the step of a batch of one (an exact one)."""

    def __init__(self, kernel: int, n_inputs: int, n_params: int, may_step: bool) -> None:
        self.kernel, self.n_inputs, self.n_params, self.may_step = kernel, n_inputs, n_params, int(may_step)
        self.seconds: tuple[float, float] | None = None  # per step and per row in the last call (graphc.train_native)
        self._scratch: list[_Scratch] = []  # free ones, taken and given back by each call (a thread's own meanwhile)

    def run(self, parts: list[np.ndarray], rows: np.ndarray, bounds: np.ndarray, width: int, params: np.ndarray,
            kind: str, hyper: np.ndarray, lrs: np.ndarray, t: int, state: list[np.ndarray], losses: np.ndarray,
            decay: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, done: np.ndarray | None = None,
            check: bool = False) -> None:
        """Steps ``0 .. len(bounds) - 2``: ``params`` and ``state`` (float64, kernel layout)
        updated in place, each step's mean loss into ``losses``.  ``parts``: the data, C-contiguous
        float64 arrays of shape (N, width), n_inputs columns in all; ``rows``, ``bounds``: int64
        (C long); ``width``: at least the most rows a step takes.  ``decay``: (positions,
        scales, penalties) for an L2 penalty ``scales[s] * sum(p * p)`` over the params at
        ``positions`` (int64, kernel layout), its gradient ``2 * scales[s] * p`` added
        to step s's before the update, its value written to ``penalties[s]``
        (scikit-learn's penalty, summed first to last in the order of ``positions``).  ``done``: an int64
        array of two entries: 0 counts the steps completed, one by one; with ``check``, 1 is
        set to 1 when a step's rows held an inf or nan, and the run stops before that step."""
        if sum(part.shape[1] for part in parts) != self.n_inputs or \
                any(part.dtype != np.float64 or not part.flags.c_contiguous for part in parts):
            raise GraphcError(f"the training driver reads C-contiguous float64 arrays of {self.n_inputs} "
                              f"columns in all (a graphc bug)")
        pointers = np.array([address(part) for part in parts], dtype=np.uintp)
        widths = np.array([part.shape[1] for part in parts], dtype=np.int64)
        try:
            scratch = self._scratch.pop()
        except IndexError:  # none free: every other is some call's (a thread's) meanwhile
            scratch = _Scratch(self.n_params)
        try:
            s1, s2 = (list(state) + [scratch.unused, scratch.unused])[:2]
            _driver()(self.kernel, self.n_params, self.may_step, address(pointers), address(widths), len(parts),
                      address(rows), address(bounds), len(bounds) - 1, address(params), scratch.spare, scratch.grads,
                      *scratch.rows(self.n_inputs, width), KINDS.index(kind), address(hyper), address(lrs), t,
                      address(s1), address(s2), address(losses),
                      *((None, 0, None, None) if decay is None else
                        (address(decay[0]), len(decay[0]), address(decay[1]), address(decay[2]))), int(check),
                      address(np.zeros(2, dtype=np.int64) if done is None else done))
        finally:
            scratch.keep_small()
            self._scratch.append(scratch)


class _Scratch:
    """The driver's working arrays and their addresses, kept between calls: the params'
    spare copy and gradients, and (grown as needed) room for the columns and values of a
    step's rows."""

    def __init__(self, n_params: int) -> None:
        self.params = (np.empty(n_params), np.empty(n_params))
        self.spare, self.grads = (address(a) for a in self.params)
        self.unused = np.empty(1)  # an optimizer state the optimizer does not have
        self.room: tuple[np.ndarray, np.ndarray] | None = None  # columns, values
        self.at = (0, 0)  # their addresses

    def rows(self, n_inputs: int, width: int) -> tuple[int, int]:
        """The addresses of room for ``width`` rows' columns and values."""
        if self.room is None or width > len(self.room[1]):
            self.room = (np.empty(n_inputs * width), np.empty(width))
            self.at = (address(self.room[0]), address(self.room[1]))
        return self.at

    def keep_small(self) -> None:
        """Let go of the rows' room if it is large (a full batch of a big dataset)."""
        if self.room is not None and self.room[0].size > KEPT_COLUMNS:
            self.room = None
