"""``check_grad``: four independent answers to "what is the gradient here?", side by side.

For every input and param of ``fn`` at a point:

* **eager** -- ``fn`` run on fresh Values and ``backward()``: the op table's derivative
  rules applied to floats, micrograd-style;
* **compiled** -- ``graphc.compile(fn)`` called on Values and ``backward()``: the same rules
  applied to the graph, optimized, generated into code;
* **sympy** -- ``sympy.diff`` of the graph's :func:`~graphc.to_sympy` expression, evaluated
  at the point with 30 significant digits: derivatives from SymPy's own calculus, not
  from the op table's rules;
* **finite differences** -- central differences of the compiled forward with the step
  ``h = eps**(1/3) * max(1, |x|)``, which balances truncation error (~h^2) against
  rounding error (~eps/h).

The first three are exact methods and must agree to ``rtol`` (measured as
``|a - b| / max(|a|, |b|, 1)``).  Finite differences are approximate: their error is
allowed ``fd_rtol`` plus the rounding error the step implies, and a kink (relu, max, step)
within ``h`` of the point defeats them -- move the point or pass ``fd=False``.  The report
tells a kink from a wrong gradient: there the one-sided slopes differ from each other and
the exact gradient is one of them (``relu'(0)`` is 0, the left slope), and the verdict is
"inconclusive", not "FAILED".  Where the output or a gradient is nan in every method
(``x**y`` at x < 0) nothing can be compared, and the verdict says "nan", not "ok".  Where
SymPy's form cannot speak for the code at the point -- it is undefined there while eager and
compiled agree, it holds a nan or an infinity its algebra absorbs other terms into (``x +
log(-1)`` is ``x + nan``, whose derivative is 0), or it simplified an undefined step away
(``y/y`` is 1, nan at y = 0) -- its entry is left out with a note.

Eager and compiled gradients share the op table's rules, so a wrong rule makes both wrong
alike; SymPy and finite differences are what catch it.

**Symbolic limits.**  SymPy expressions swell: each level of a graph can double the size
of a derivative's expression tree (the product rule repeats subexpressions), SymPy's
automatic simplification costs more than linear time, and SymPy recurses once per level.
So the sympy column is computed only for graphs of at most ``symbolic_limit`` operations
(default 500; a 2-16-16-1 MLP on one sample is ~700) and depth
:data:`graphc.symbolic.MAX_DEPTH`; derivatives are tidied for display up to
:data:`SIMPLIFY_LIMIT` operations.  The *proof* mode -- the compiled gradient graph
converted to SymPy and ``simplify(graph gradient - sympy.diff) == 0`` per entry -- runs
up to ``prove_limit`` operations of that gradient graph (default 80: about a second;
169 operations take two minutes).  Beyond a limit the column is skipped, and the report
says so.  Size is not the whole story -- SymPy's derivatives and ``simplify`` of a few
piecewise terms (``max``, ``abs``, ``relu``) can run for minutes -- so each of the two
columns also stops after ``sympy_seconds`` (default 10), where ``fork`` lets a child
process do the work (Linux, macOS), and the report says that too.
"""
from __future__ import annotations

import math
import multiprocessing
import numbers
import os
import random
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import sympy as sp

from . import ops
from .compile import Compiled, compile as compile_fn
from .engine import Value
from .errors import ArgumentError, GraphcError
from .functional import _no_gradient
from .graph import LEAVES, Graph
from .interpret import evaluate
from .symbolic import symbols_of, to_sympy
from .trace import argument_names
from .tree import flatten_args, flatten_output, unflatten

RTOL = 1e-8
FD_RTOL = 1e-6
#: One-sided differences are first-order accurate (error ~ h*|f''|, h ~ 6e-6): slopes
#: further apart than this straddle a kink, and a gradient this close to one is its slope.
KINK_RTOL = 1e-4
SYMBOLIC_LIMIT = 500
#: Seconds each of the sympy column and the proofs may take (see the module docstring).
SYMPY_SECONDS = 10.0
PROVE_LIMIT = 80
#: Derivatives of graphs up to this many operations are tidied (``sympy.factor_terms``)
#: for ``report.symbolic``; full ``simplify`` costs up to seconds per entry and often
#: reads no better than what ``diff`` returns.
SIMPLIFY_LIMIT = 100
DIGITS = 30
_SCREEN_POINTS, _SCREEN_DIGITS = 3, 40
_EPS = sys.float_info.epsilon


def rel_err(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|, 1)``; 0 when both are the same special value (nan, inf)."""
    if math.isnan(a) or math.isnan(b):
        return 0.0 if math.isnan(a) and math.isnan(b) else math.inf
    if math.isinf(a) or math.isinf(b):
        return 0.0 if a == b else math.inf
    return abs(a - b) / max(abs(a), abs(b), 1.0)


@dataclass
class GradRow:
    """One input or param: its gradient by each method (None where a method was skipped)."""

    name: str
    kind: str  # "input" or "param"
    value: float
    eager: float | None  # None: left out (a Compiled of other numerics than "exact")
    compiled: float
    sympy: float | None = None
    finite_diff: float | None = None
    fd_allowance: float = 0.0  # the finite-difference error this row tolerates
    fd_step: float = 0.0  # h
    fd_slopes: tuple[float, float] | None = None  # one-sided: (f(x) - f(x-h))/h, (f(x+h) - f(x))/h
    fd_truncation: float = 0.0  # the central difference's truncation error, estimated (relative)
    proved: bool | None = None

    @property
    def rel_error(self) -> float:
        """The largest disagreement among the exact methods (eager, compiled, sympy)."""
        exact = [v for v in (self.eager, self.compiled, self.sympy) if v is not None]
        return max(rel_err(a, b) for k, a in enumerate(exact) for b in exact[k + 1:])

    @property
    def fd_error(self) -> float | None:
        """Finite differences against the compiled gradient, in the same relative measure."""
        return None if self.finite_diff is None else rel_err(self.finite_diff, self.compiled)

    @property
    def kink(self) -> bool:
        """Finite differences fail because a kink or jump lies within ``h``: the one-sided
        slopes differ from each other, and the exact gradient is one of them."""
        if self.fd_slopes is None or self.fd_error is None or self.fd_error <= self.fd_allowance:
            return False
        left, right = self.fd_slopes
        return rel_err(left, right) > KINK_RTOL and min(rel_err(self.compiled, left),
                                                        rel_err(self.compiled, right)) <= KINK_RTOL

    @property
    def coarse(self) -> bool:
        """Finite differences fail by no more than twice their own truncation error, as a
        second step of 2h estimates it: the step, which grows with |x|, is too coarse for the
        curvature at this point (``sin`` at x = 1000) -- not evidence of a wrong gradient."""
        return self.fd_error is not None and not self.fd_error <= self.fd_allowance and not self.kink \
            and self.fd_error <= self.fd_allowance + 2 * self.fd_truncation

    @property
    def outvoted(self) -> bool:
        """Finite differences fail (not at a kink, nor by their truncation error) where SymPy's
        own derivative at this point -- which shares nothing with the op table's rules --
        agrees with eager and compiled (it is one of the exact methods): rounding inside the
        function defeats them (``(x + 1e16) - 1e16`` has steps of 2 in x), not a wrong
        gradient.  (A proof does not count: one may hold only away from this point.)  The
        report counts it only where SymPy's value agrees with the others to ``rtol``."""
        return self.fd_error is not None and not self.fd_error <= self.fd_allowance and not self.kink \
            and not self.coarse and self.sympy is not None

    @property
    def undefined(self) -> bool:
        """The gradient is nan by the exact methods: there is nothing to compare."""
        return math.isnan(self.compiled) and (self.eager is None or math.isnan(self.eager))


@dataclass
class GradReport:
    """The result of :func:`check_grad`; ``str()`` is a table with one row per input/param."""

    function: str
    output: float
    rows: list[GradRow]
    rtol: float
    symbolic: dict[str, sp.Expr] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def max_rel_error(self) -> float:
        """The largest disagreement between the exact methods over all rows."""
        return max((r.rel_error for r in self.rows), default=0.0)

    @property
    def max_fd_error(self) -> float | None:
        """The largest finite-difference error (held to its own, looser tolerance), or None."""
        errors = [r.fd_error for r in self.rows if r.fd_error is not None]
        return max(errors) if errors else None

    def failures(self) -> list[str]:
        """What disagrees, one line per problem (empty when ``ok``)."""
        out = []
        for r in self.rows:
            if not r.rel_error <= self.rtol:
                out.append(f"{r.name}: exact methods differ by {r.rel_error:.3g} (rtol {self.rtol:g})")
            if r.kink:
                left, right = r.fd_slopes
                out.append(f"{r.name}: finite differences differ by {r.fd_error:.3g}, but they straddle a kink "
                           f"or jump within h={r.fd_step:.2g} of {r.name}={r.value:g}: the slope is {left:.6g} "
                           f"on the left and {right:.6g} on the right, and the exact methods' {r.compiled:.6g} "
                           f"is one of them (relu'(0) = 0, max sends ties to its first operand); finite "
                           f"differences cannot check this point: move it or skip them (fd=False, --no-fd)")
            elif r.coarse:
                out.append(f"{r.name}: finite differences differ by {r.fd_error:.3g} (allowed {r.fd_allowance:.3g}), "
                           f"within their own truncation error at h={r.fd_step:.2g} (about {r.fd_truncation:.2g}, "
                           f"from a second step of 2h; the step grows with |{r.name}|): they cannot check this "
                           f"point; check one nearer 0, or skip them (fd=False, --no-fd)")
            elif r.outvoted and r.rel_error <= self.rtol:
                out.append(f"{r.name}: finite differences differ by {r.fd_error:.3g} (allowed {r.fd_allowance:.3g}), "
                           f"but SymPy's own derivative agrees with eager and compiled: rounding inside the "
                           f"function (a cancellation such as (x + 1e16) - 1e16) or a step of h={r.fd_step:.2g} "
                           f"too coarse for it defeats finite differences here, not evidence of a wrong gradient")
            elif r.fd_error is not None and not r.fd_error <= r.fd_allowance:
                out.append(f"{r.name}: finite differences differ by {r.fd_error:.3g} "
                           f"(allowed {r.fd_allowance:.3g})")
        return out

    @property
    def verdict(self) -> str:
        """One word for the whole report: "ok"; "FAILED"; "inconclusive" when only finite
        differences disagree, at a kink (:attr:`GradRow.kink`), by their own truncation
        error (:attr:`GradRow.coarse`) or against SymPy's agreeing derivative
        (:attr:`GradRow.outvoted`); "nan" when the numbers agree but the output or a
        gradient is nan, so nothing was really compared."""
        if self.failures():
            excused = all(r.kink or r.coarse or r.outvoted for r in self.rows
                          if r.fd_error is not None and not r.fd_error <= r.fd_allowance)
            return "inconclusive" if excused and self.max_rel_error <= self.rtol else "FAILED"
        if math.isnan(self.output) or any(r.undefined for r in self.rows):
            return "nan"
        return "ok"

    @property
    def ok(self) -> bool:
        """Every method agrees within its tolerance.

        A proof that did not succeed does not make this False: SymPy's ``simplify`` cannot
        show every true identity (``x**(y-1) == x**y/x`` needs ``x != 0``), so "not proved"
        is reported as a note, and the numbers decide.
        """
        return not self.failures()

    def __str__(self) -> str:
        header = ("name", "kind", "value", "eager", "compiled", "sympy", "finite diff", "rel err",
                  "fd err", "proof")
        table = [header] + [(
            r.name, r.kind, _num(r.value), _num(r.eager), _num(r.compiled), _num(r.sympy),
            _num(r.finite_diff), f"{r.rel_error:.1e}",
            "-" if r.fd_error is None else f"{r.fd_error:.1e}" + ("" if r.fd_error <= r.fd_allowance else " !"),
            {True: "yes", False: "NO", None: "-"}[r.proved]) for r in self.rows]
        widths = [max(len(row[k]) for row in table) for k in range(len(header))]
        lines = [f"check_grad({self.function}): output {_num(self.output)}"]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
        fd = self.max_fd_error
        lines.append(f"{self.verdict}: max rel error {self.max_rel_error:.2g} between exact "
                     f"methods (rtol {self.rtol:g}); finite differences "
                     + ("skipped" if fd is None else f"max {fd:.2g}"))
        lines += [f"  {line}" for line in self.failures()]
        if self.verdict == "nan":
            nan = (["output"] if math.isnan(self.output) else []) + [f"d/d{r.name}" for r in self.rows if r.undefined]
            lines.append(f"  nan at this point: {', '.join(nan)}; every method agrees on nan, so nothing was "
                         f"compared (x**y with x < 0, log of a negative number, ...): choose another point")
        unproved = [r.name for r in self.rows if r.proved is False]
        if unproved:
            lines.append(f"note: not proved for {', '.join(unproved)}: SymPy could not simplify the compiled "
                         f"gradient minus its own derivative to 0 (a wrong rule, or an identity simplify misses)")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.10g}"


def check_grad(fn: Callable | Compiled, *args: Any, output: int = 0, rtol: float = RTOL,
               fd: bool = True, fd_rtol: float = FD_RTOL, symbolic_limit: int = SYMBOLIC_LIMIT,
               prove: bool | None = None, prove_limit: int = PROVE_LIMIT,
               sympy_seconds: float = SYMPY_SECONDS) -> GradReport:
    """Compare the gradient of ``fn(*args)`` (output ``output``) by four methods.

    ``args`` are what ``fn`` takes (numbers, Values, lists, NumPy arrays, as for
    ``graphc.compile``).  Params' ``.grad`` and ``.data`` are restored afterwards.
    ``prove`` None proves when the gradient graph has at most ``prove_limit`` operations;
    True proves regardless; False never.  ``sympy_seconds``: each SymPy column's time
    limit (``math.inf``: none).  See the module docstring for the limits.  A function whose
    output is a number computed from ``.data``, ``float(x)`` or a comparison has no gradient
    to check, and is refused, as :func:`graphc.grad` refuses it.
    """
    for name, limit in (("rtol", rtol), ("fd_rtol", fd_rtol), ("sympy_seconds", sympy_seconds)):
        if isinstance(limit, bool) or not isinstance(limit, numbers.Real) or not limit >= 0:
            raise ArgumentError(f"check_grad: {name} must be a number >= 0; got {limit!r:.60}")
    for name, count in (("output", output), ("symbolic_limit", symbolic_limit), ("prove_limit", prove_limit)):
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or not count >= 0:
            raise ArgumentError(f"check_grad: {name} must be an int >= 0; got {count!r:.60}")
    options = {}
    if isinstance(fn, Compiled):  # its own options: the compiled column is what its calls compute
        fn, options = fn.fn, {"backend": fn.backend, "numerics": fn.numerics}
    compiled = compile_fn(fn, **options)
    eager_differs = options.get("numerics", "exact") != "exact"
    leaves, in_tree, _ = flatten_args(args, argument_names(fn, len(args)))
    point = [x.data if isinstance(x, Value) else float(x) for x in leaves]
    # traced on Values, so the graph and its params are known: the inputs are differentiated, so
    # their arithmetic is micrograd's (a compiled call's number arguments compute as Python's)
    try:
        compiled(*_structure(in_tree, [Value(x) for x in point]))
    except TypeError as error:
        if "a Value used as an index" not in str(error):
            raise
        raise ArgumentError(f"check_grad differentiates every argument, so each is a Value, and one is used as an "
                            f"index ({error}): fix the index in the function, as in check_grad(lambda X: "
                            f"f(X, 1), X)") from error
    graph = compiled.graph
    params = graph.param_values
    if not 0 <= output < len(graph.outputs):
        raise GraphcError(f"check_grad: output {output} does not exist; {compiled.name} has "
                          f"{len(graph.outputs)} output(s)")
    guards = compiled._require_latest().guards
    if guards.kinds is not None and _no_gradient(guards.kinds[output], guards.froze_numbers):
        raise GraphcError(f"check_grad needs a function whose output {output} is a Value, as grad does; "
                          f"{compiled.name} returns a plain number computed from .data, float(x) or a "
                          f"comparison, which carries no gradient (eager and compiled would say 0 for any "
                          f"slope): compute with the Values themselves, as x.exp()")
    saved = [(p.data, p.grad) for p in params]
    stopped = [i for i, op in enumerate(graph.ops) if op in ops.TABLE and ops.TABLE[op].stops_gradient]
    try:
        value, compiled_grads = _backward(compiled, in_tree, point, params, output)
        eager_grads = None if eager_differs else _backward(fn, in_tree, point, params, output)[1]
        eager_plain = eager_grads is None and not eager_differs  # graphc.grad(f) in eager code: a float
        if eager_grads is None:  # no gradient of the code's formula to check
            eager_grads = [None] * len(compiled_grads)
        rows = [GradRow(graph.names[i], kind, v, e, c) for i, kind, v, e, c in zip(
            list(graph.inputs) + list(graph.params), ["input"] * len(point) + ["param"] * len(params),
            point + [p.data for p in params], eager_grads, compiled_grads)]
        if fd:
            _finite_differences(compiled, graph, stopped, in_tree, point, params, output, rows, fd_rtol)
    finally:
        for p, (data, grad) in zip(params, saved):
            p.data, p.grad = data, grad
    report = GradReport(compiled.name, value, rows, rtol)
    if fd and stopped:
        report.notes.append(f"finite differences hold {', '.join(sorted({graph.ops[i] for i in stopped}))} at its "
                            f"value at the point, as reverse mode treats it (a constant there)")
    if eager_plain:
        report.notes.append(f"eager left out: {compiled.name} returns a plain number in eager code (a "
                            f"constant, or graphc.grad's float), which has no history to differentiate; "
                            f"compiled, it is a Value")
    if eager_differs:
        report.notes.append(f"eager left out: numerics={compiled.numerics!r} compiles other formulas than the "
                            f"function's own, which eager code runs")
    at_non_finite = [f"{r.name} = {r.value:g}" for r in rows if fd and not math.isfinite(r.value)]
    if at_non_finite:
        report.notes.append(f"finite differences skipped at {', '.join(at_non_finite)}: there is no difference "
                            f"quotient at a point that is not finite")
    skipped = [r.name for r in rows if fd and r.finite_diff is None and math.isfinite(r.value)]
    if skipped:
        report.notes.append(f"finite differences skipped for {', '.join(skipped)}: the output is not finite "
                            f"within h of the point")
    _symbolic(report, compiled, graph, output, point + [d for d, _ in saved],
              symbolic_limit, prove, prove_limit, sympy_seconds)
    return report


def _structure(in_tree: Any, leaves: list) -> list:
    """The call's arguments rebuilt from leaves; arrays come back as nested lists."""
    return list(unflatten(in_tree, iter(leaves)))


def _backward(fn: Callable, in_tree: Any, point: list[float], params: list[Value],
              output: int) -> tuple[float, list[float] | None]:
    """Output ``output`` of ``fn`` on fresh Values, and its gradient for every input and param
    (None where the output is a plain number: nothing to differentiate)."""
    values = [Value(x) for x in point]
    for p in params:
        p.grad = 0
    outs, _ = flatten_output(fn(*_structure(in_tree, values)))
    out = outs[output]
    if not isinstance(out, Value):
        return float(out), None
    out.backward()
    return out.data, [float(v.grad) for v in values] + [float(p.grad) for p in params]


def _finite_differences(compiled: Compiled, graph: Graph, stopped: list[int], in_tree: Any, point: list[float],
                        params: list[Value], output: int, rows: list[GradRow], fd_rtol: float) -> None:
    """Each row's central difference; ``stopped``: the graph's nodes no gradient passes,
    held at their values at the point."""
    if stopped:  # the function reverse mode differentiates: those nodes constant, at the point's values
        at_point = evaluate(graph, point, [p.data for p in params])
        held = {i: at_point[i] for i in stopped}

    def f(inputs: list[float]) -> float:
        if stopped:
            return evaluate(graph, inputs, [p.data for p in params], held)[graph.outputs[output]]
        outs, _ = flatten_output(compiled(*_structure(in_tree, [Value(x) for x in inputs])))
        return outs[output].data if isinstance(outs[output], Value) else float(outs[output])

    center = f(point)
    for k, row in enumerate(rows):
        x = row.value
        if not math.isfinite(x):
            continue  # nan + h is nan, inf + h is inf: no step to take
        h = _EPS ** (1 / 3) * max(1.0, abs(x))
        xp, xm = x + h, x - h

        def f_at(value: float) -> float:
            """The output with this row's input or param at ``value``, the others at the point."""
            if k < len(point):
                return f(point[:k] + [value] + point[k + 1:])
            p = params[k - len(point)]
            p.data = value
            try:
                return f(point)
            finally:
                p.data = x
        fp, fm = f_at(xp), f_at(xm)
        if not (math.isfinite(fp) and math.isfinite(fm) and math.isfinite(center)):
            continue  # an output that overflows (or is nan) near the point has no difference quotient
        row.finite_diff = (fp - fm) / (xp - xm)
        row.fd_step = h
        row.fd_slopes = ((center - fm) / (x - xm), (fp - center) / (xp - x))
        rounding = 4 * _EPS * max(abs(fp), abs(fm), abs(center)) / (xp - xm)
        scale = max(abs(row.finite_diff), abs(row.compiled), 1.0)
        row.fd_allowance = fd_rtol + rounding / scale if math.isfinite(rounding) else fd_rtol
        if not row.fd_error <= row.fd_allowance:  # D(2h) - D(h) = 3 c h^2, D(h)'s own error c h^2
            wide = (f_at(x + 2 * h) - f_at(x - 2 * h)) / (4 * h)
            if math.isfinite(wide):
                row.fd_truncation = abs(wide - row.finite_diff) / 3 / scale


def _symbolic(report: GradReport, compiled: Compiled, graph: Graph, output: int, point: list[float],
              symbolic_limit: int, prove: bool | None, prove_limit: int, seconds: float) -> None:
    """Fill the sympy and proof columns and ``report.symbolic``, or note why not."""
    size = _operations(graph)
    if size > symbolic_limit:
        report.notes.append(f"sympy column skipped: {size:,} operations > symbolic_limit={symbolic_limit:,} "
                            f"(derivative expressions swell with graph size)")
        return
    syms = symbols_of(graph)
    try:
        expr, exact = to_sympy(graph)[output], to_sympy(graph, exact_constants=True)[output]
        at = dict(zip(syms, point))
        computed = _within(seconds, lambda: _derivatives_at(expr, exact, syms, at))
    except (GraphcError, RecursionError) as error:
        report.notes.append(f"sympy column skipped: {error}")
        return
    except SYMPY_REFUSALS as error:  # SymPy's own: a nan it must compare (Max(x, nan))
        report.notes.append(f"sympy column skipped: SymPy cannot differentiate it ({type(error).__name__}: {error})")
        return
    if computed is None:
        report.notes.append(f"sympy column stopped after sympy_seconds={seconds:g}: SymPy's derivatives of "
                            f"piecewise terms (max, abs, relu) can swell for minutes, and their values at a "
                            f"point take as long where a number is huge (exp(exp(exp(exp(exp(x))))) at x = 1)")
        return
    derivatives, values, overflowed, absorbing, forward = computed
    _fill_sympy_column(report, values, absorbing, forward)
    if overflowed:
        report.notes.append("sympy column: a value past any float counted as inf there, as float64 gives it, "
                            "not the exact number")
    cheap = size <= SIMPLIFY_LIMIT
    report.symbolic = {row.name: sp.factor_terms(d) if cheap else d for row, d in zip(report.rows, derivatives)}
    if prove is False:
        return
    if any(absorbing):
        report.notes.append("proof skipped: SymPy's form holds a nan or an infinity, which its algebra absorbs "
                            "terms into (x + nan is nan, with derivative 0)")
        return
    joint = compiled.stages(output, wrt_inputs=True).joint
    joint_size = _operations(joint)
    if prove is None and joint_size > prove_limit:
        report.notes.append(f"proof skipped: the gradient graph has {joint_size:,} operations > "
                            f"prove_limit={prove_limit:,} (simplify's cost grows steeply)")
        return
    n_in = len(graph.inputs)
    try:
        grads = to_sympy(joint, symbols=syms[:n_in] + [sp.Integer(1)] + syms[n_in:])[len(graph.outputs):]
    except (GraphcError, RecursionError) as error:
        report.notes.append(f"proof skipped: {error}")
        return
    try:
        proved = _within(seconds, lambda: [_equal(g, d, syms) for g, d in zip(grads, derivatives)])
    except SYMPY_REFUSALS as error:
        report.notes.append(f"proof skipped: SymPy cannot compare them ({type(error).__name__}: {error})")
        return
    if proved is None:
        report.notes.append(f"proof stopped after sympy_seconds={seconds:g}: simplify of piecewise terms "
                            f"(max, abs, relu) can run for minutes")
        return
    for row, is_proved in zip(report.rows, proved):
        row.proved = bool(is_proved)
    generic = [row.name for row, is_proved in zip(report.rows, proved) if is_proved == GENERIC]
    if generic:
        report.notes.append(f"proved for {', '.join(generic)} but at the points where a comparison in the gradient "
                            f"is an equality (a rule's special case, such as x ** y's at x = 0, where SymPy's "
                            f"derivative is undefined)")


#: Why :func:`_fill_sympy_column` leaves a row's SymPy value out, by kind.
_LEFT_OUT = {
    "absorbed": "SymPy's form holds a nan or an infinity (a constant such as log(-1) or exp(1000), folded), "
                "into which its algebra absorbs the other terms: x + nan is nan and x + oo is oo, whose "
                "derivative in x is 0, where the code's arithmetic keeps each term's gradient",
    "diverged": "SymPy's form is {forward} at this point, where the code computes {output}: SymPy simplified "
                "an undefined step away (y/y is 1 to SymPy, nan at y = 0), so its derivative is another "
                "function's here",
    "undefined": "SymPy's derivative is undefined at this point (0/0, a pole as y*x**y/x at x = 0, or a complex "
                 "step as log of a negative number) where eager and compiled agree on a number",
    "continued": "eager and compiled are nan here (a step of the function is undefined, as log of a negative "
                 "number), where SymPy's simplified derivative has a value",
}


def _fill_sympy_column(report: GradReport, values: list[float], absorbing: list[bool], forward: float) -> None:
    """Each row's SymPy value, or a note saying why it is left out (see :data:`_LEFT_OUT`)."""
    diverged = not math.isfinite(report.output) and not rel_err(forward, report.output) <= report.rtol
    left_out: dict[str, list[str]] = {kind: [] for kind in _LEFT_OUT}
    for row, value, absorbed in zip(report.rows, values, absorbing):
        if absorbed:
            left_out["absorbed"].append(row.name)
        elif diverged:
            left_out["diverged"].append(row.name)
        elif math.isnan(value) and not row.undefined and (row.eager is None or
                                                          rel_err(row.eager, row.compiled) <= report.rtol):
            left_out["undefined"].append(row.name)  # 0/0 or a pole; the exact methods agree on a number
        elif row.undefined and not math.isnan(value):
            left_out["continued"].append(row.name)  # sigmoid(log(x))' simplified to 1/(x**2*(1 + 1/x)**2)
        else:
            row.sympy = value
    for kind, names in left_out.items():
        if names:
            why = _LEFT_OUT[kind].format(forward=_num(forward), output=_num(report.output))
            report.notes.append(f"sympy column left out for {', '.join(names)}: {why}")


#: What SymPy raises on an expression it cannot work with -- ``TypeError: Invalid NaN
#: comparison`` for a ``max`` against nan -- which skips its columns with a note.
SYMPY_REFUSALS = (TypeError, ValueError, ZeroDivisionError)


def _derivatives_at(expr: sp.Expr, exact: sp.Expr, syms: list[sp.Symbol],
                    at: dict) -> tuple[list, list[float], bool, list[bool], float]:
    """SymPy's derivatives of ``expr`` (to show), the values at ``at`` of those of ``exact``
    (``expr`` with each constant the float the code holds, not its shortest decimal: 0.1 -
    0.1 is 0 in the code, and so in the sympy column), whether some value went past any
    float (see :func:`evaluate_at`), per derivative whether it or ``exact`` holds a nan or
    an infinity (SymPy's algebra absorbs terms into one), and ``exact``'s value at ``at``:
    the work :func:`_within` bounds."""
    derivatives = [sp.diff(expr, s) for s in syms]
    overflowed: list = []
    exact_derivatives = [sp.diff(exact, s) for s in syms]
    values = [evaluate_at(d, at, overflowed=overflowed) for d in exact_derivatives]
    whole = exact.has(*_NON_FINITE)
    absorbing = [whole or d.has(*_NON_FINITE) for d in exact_derivatives]
    return derivatives, values, bool(overflowed), absorbing, evaluate_at(exact, at)


#: SymPy's numbers that are not finite: a sum or product with one is one (x + nan is nan).
_NON_FINITE = (sp.nan, sp.zoo, sp.oo, -sp.oo)


_NO_LIMIT = 1e7  # seconds (four months): more is no limit, sympy_seconds=math.inf


def _within(seconds: float, work: Callable[[], Any]) -> Any:
    """``work()``, or None if it did not finish within ``seconds``: run in a forked child,
    killed at the limit (SymPy has no time limit of its own).  Where there is no fork
    (Windows), run here, unbounded."""
    if not hasattr(os, "fork"):
        return work()
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_send_result, args=(send, work), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(None if seconds > _NO_LIMIT else seconds):  # poll's clock cannot count to inf
            return None
        ok, result = receive.recv()
    except EOFError:  # the child died without a word (killed, out of memory)
        return None
    finally:
        child.kill()
        child.join()
        receive.close()
    if not ok:
        raise result
    return result


def _send_result(send: Any, work: Callable[[], Any]) -> None:
    """In the child: ``work()``'s result, or the exception it raised, to the parent."""
    try:
        send.send((True, work()))
    except BaseException as error:  # noqa: BLE001 - handed to the parent, which raises it
        send.send((False, error))


def _operations(graph: Graph) -> int:
    live = graph.live()
    return sum(1 for i, op in enumerate(graph.ops) if live[i] and op not in LEAVES)


def _equal(a: sp.Expr, b: sp.Expr, symbols: list[sp.Symbol]) -> bool | str:
    """Whether SymPy can show ``a - b`` is zero: as written, simplified, or simplified with
    the named functions in their table forms (``sigmoid`` as ``1/(1 + exp(-x))``).

    ``simplify`` runs only if ``a`` and ``b`` agree to 25 digits at a few points: a
    difference SymPy cannot simplify away (a constant the optimizer folded to a float,
    such as ``log(2.0)``) can otherwise send it into huge exact arithmetic.
    """
    difference = a - b
    if difference == 0:
        return True
    rng = random.Random(0)
    for _ in range(_SCREEN_POINTS):
        at = {s: rng.uniform(0.3, 1.7) for s in symbols}
        gap, size = evaluate_at(difference, at, _SCREEN_DIGITS), evaluate_at(a, at, _SCREEN_DIGITS)
        if math.isfinite(gap) and math.isfinite(size) and abs(gap) > 1e-25 * max(1.0, abs(size)):
            return False
    if sp.simplify(difference) == 0:
        return True
    piecewise = difference.rewrite(sp.Piecewise)
    if sp.simplify(piecewise) == 0:
        return True
    # a rule's special case at single points (x ** y at x = 0: log(x + eq(x, 0))) left out
    generic = piecewise.replace(lambda e: isinstance(e, sp.Eq), lambda e: sp.false)
    return GENERIC if generic != piecewise and sp.simplify(generic) == 0 else False


#: What :func:`_equal` says of a gradient equal to SymPy's but where a comparison in it is an
#: equality (a rule's special case at single points, such as ``x ** y``'s at x = 0).
GENERIC = "generic"


def evaluate_at(expr: sp.Expr, point: dict[sp.Symbol, float], digits: int = DIGITS,
                overflowed: list | None = None) -> float:
    """``expr`` at ``point`` as a float, computed with ``digits`` significant digits.

    Each distinct subexpression is evaluated once (an explicit-stack walk with a memo), so
    shared subexpressions cost nothing extra, as ``subs``/``xreplace`` would.  Complex or
    undefined results, at any step (``log(-1)``, ``1/0``), come back as nan, as in IEEE
    arithmetic (``sigmoid(log(-2))`` is nan, not the complex continuation's 1); a
    value too large for mpmath (``exp`` of ``exp`` ... of 0.7) as inf, noted in
    ``overflowed`` (a list) if given.
    """
    memo: dict[sp.Basic, sp.Basic] = {s: sp.Float(v, digits) for s, v in point.items()}
    stack = [expr]
    while stack:
        e = stack[-1]
        if e in memo:
            stack.pop()
            continue
        pending = [a for a in e.args if a not in memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        try:
            value = e.func(*[memo[a] for a in e.args]) if e.args else e
            # a complex value (log(-2)) is nan, as in float64, not continued (sigmoid(log(-2)) is 1)
            memo[e] = sp.nan if value.is_number and value.is_extended_real is False else value
        except (TypeError, ValueError):  # e.g. an unevaluated Derivative at a number
            memo[e] = sp.nan
        except OverflowError:  # past any float (exp(exp(...)) of 10**10**k): what float64 would give
            memo[e] = sp.oo
            if overflowed is not None:
                overflowed.append(e)
    try:
        result = memo[expr].evalf(digits)
    except OverflowError:
        if overflowed is not None:
            overflowed.append(expr)
        return math.inf
    except TypeError:  # a comparison of a complex number inside a piecewise form (relu of one)
        return math.nan
    if result is sp.nan or result is sp.zoo or not result.is_extended_real or not result.is_number:
        return math.nan
    return float(result)

