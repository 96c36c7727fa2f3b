"""Differential fuzzing helpers: random programs, eager references, and error budgets.

The oracle is eager graphc (micrograd semantics, IEEE results).  Each backend is compared
with it under one of two rules:

* **exact** -- the Python backend (scalar calls, and ``backend="python"`` batched) and the C
  backend run the same libm functions in the same order, so every forward value must be
  the same bits, sign of zero and nan included;
* **within a budget** -- the NumPy backend's ``exp``, ``tanh``, ``pow``, ... are NumPy's own
  SIMD implementations, a few ulps from libm (``ULPS`` below, measured in
  ``test_fuzz_elementwise.py``).  A difference is accepted when first-order error analysis
  explains it: ``|a - b| <= tol * max(|a|, |b|, 1) + slack``, with ``slack`` the sum over
  the graph's nodes of ``|d out / d node| * |node| * ulps(op) * eps``, taken on the eager
  graph.  Where ``slack`` is infinite or nan (a singular point: ``log`` of a result that
  is 0 only because of rounding; or an error that first order does not bound, ``cos`` of
  4.4e38 a few ulps off), any result is accepted; where ``slack`` is 0 (no
  inexact op upstream) the bits must match.

The batched programs' gradients are compared the same way with a *reassociation* budget:
rows add a param's parts row by row, where eager's full-batch ``backward()`` adds them in
its own order, and a param read in several places of a row has its parts reached in
another order by the re-rolled program -- both round differently.  (A compiled call's own
gradient is eager's bits: ``test_fuzz_exact.py``.)  The budget is ``K * eps * G``, ``G`` the
gradient computed with absolute values of every contribution; where ``G`` is inf or nan
(an intermediate contribution overflows or is nan) the special value may differ too.

``GRAPHC_FUZZ=<factor>`` (``make fuzz``) multiplies every test's example count.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Iterable

from hypothesis import HealthCheck, settings, strategies as st

from graphc import Value, apply, ops
from graphc.engine import topological_order
from graphc.ops import FLOATS

EPS = sys.float_info.epsilon
#: The ops a Value can apply (tensor ops exist only inside graphs, made by re-rolling).
SCALAR_OPS = sorted(name for name, op in ops.TABLE.items() if op.elementwise)
FACTOR = int(os.environ.get("GRAPHC_FUZZ", "0") or 0)

#: Special inputs: signed zeros, extremes, subnormals, infinities, nan -- and the
#: neighbourhoods where ops change behaviour (exp's overflow, tanh's saturation).
SPECIAL_INPUTS = [0.0, -0.0, 1.0, -1.0, 0.5, -2.0, 3.0, 1e300, -1e300, 1e-300, 5e-324, -5e-324,
                  709.0, 710.0, -746.0, 20.0, 1.7976931348623157e308, math.inf, -math.inf, math.nan]
SPECIAL_CONSTANTS = [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 1e300, -1e300, 1e-300, 5e-324,
                     math.inf, -math.inf, math.nan]
EXPONENTS = [2, 3, -1, 0.5, -2, 1, 0, 1.5, -0.5, 1e300, math.inf, math.nan]

#: ulps each batched backend may differ from libm per op (None: every op, "other" entries).
#: NumPy's measured maxima (test_fuzz_elementwise.py): exp 1, log 1, tanh 3, sigmoid 2,
#: pow 1, sin/cos 0; the budget allows one more.
ULPS: dict[str, dict[str, float]] = {
    "python": {},
    "c": {},  # libm's functions, no -ffast-math, no fused multiply-add: eager's bits
    "numpy": {"exp": 2, "log": 2, "tanh": 4, "sigmoid": 3, "pow": 2, "vpow": 2, "sin": 2, "cos": 2,
              "log1p": 2, "softplus": 4},
}
#: A backend this module does not know (a new one, such as C): 4 ulps on every
#: transcendental op and 1 on arithmetic (fused multiply-add), sums in any order.
UNKNOWN_BACKEND = {name: (1 if name in ("add", "sub", "mul", "neg", "sum") else 4) for name in SCALAR_OPS}


def budget(backend: str) -> dict[str, float]:
    return ULPS.get(backend, UNKNOWN_BACKEND)


def examples(fast: int) -> settings:
    """Hypothesis settings: ``fast`` examples in ``make test``, ``fast * GRAPHC_FUZZ`` in ``make fuzz``."""
    return settings(max_examples=fast * FACTOR if FACTOR else fast, deadline=None, derandomize=not FACTOR,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                    print_blob=True)


def same(a: float, b: float) -> bool:
    """Equal bit for bit up to nan payloads (so 0.0 and -0.0 differ)."""
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def agree(a: float, b: float, slack: float, tol: float, zero_sign: bool = True) -> bool:
    """``a`` and ``b`` equal, or apart by no more than ``tol`` relative plus ``slack``
    absolute (see the module docstring); a nonfinite slack accepts anything."""
    if same(a, b) or (not zero_sign and a == b):
        return True
    if not math.isfinite(slack):
        return True
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    if a == b:  # zeros of opposite sign: only rounding (slack > 0) can flip a zero's sign
        return slack > 0
    return abs(a - b) <= tol * max(abs(a), abs(b), 1.0) + slack


# -- programs ------------------------------------------------------------------------------

@st.composite
def programs(draw, n_inputs: int = 3, n_params: int = 2, max_ops: int = 14, constants=SPECIAL_CONSTANTS):
    """A random straight-line program over every op of the table.

    Instructions ``(op, operand slots, params)`` read earlier slots (inputs, params,
    constants, results): mostly recent ones (deep graphs), sometimes any (shared
    subexpressions), sometimes the same slot twice (``x * x``); some instructions repeat an
    earlier one exactly or with its operands swapped (work for CSE).
    """
    consts = draw(st.lists(st.sampled_from(constants), min_size=1, max_size=3))
    slots = n_inputs + n_params + len(consts)
    program: list = []
    names = SCALAR_OPS
    for _ in range(draw(st.integers(1, max_ops))):
        if program and draw(st.integers(0, 5)) == 0:
            name, operands, attr = draw(st.sampled_from(program))
            if draw(st.booleans()):
                operands = operands[::-1]
        else:
            name = draw(st.sampled_from(names))
            op = ops.TABLE[name]
            arity = op.arity if op.arity is not None else draw(st.integers(1, 4))
            recent = st.integers(max(0, slots - 3), slots - 1)
            anywhere = st.integers(0, slots - 1)
            operands = tuple(draw(st.one_of(recent, anywhere)) for _ in range(arity))
            if arity == 2 and draw(st.integers(0, 6)) == 0:
                operands = (operands[0], operands[0])
            attr = (draw(st.sampled_from(EXPONENTS)),) if op.attr_names else ()
        program.append((name, operands, attr))
        slots += 1
    n_outputs = draw(st.integers(1, min(3, len(program))))
    return {"consts": consts, "program": program, "n_outputs": n_outputs, "n_inputs": n_inputs,
            "n_params": n_params}


#: The constants of the shapes the passes rewrite (simplify's ``C`` s), first in the program's
#: constants so a shape finds each at a known slot; ``K`` s draw from all of them.
REWRITE_CONSTANTS = [1.0, -1.0, 0.0, -0.0, 2.0, 0.5, -2.0, math.inf, math.nan]


@st.composite
def rewritable_programs(draw, n_inputs: int = 3, n_params: int = 2, max_shapes: int = 8):
    """A random program (see :func:`programs`) built of the shapes the passes rewrite -- each
    of simplify's rule patterns, read from its table, and chains of sums of one to three
    operands (flatten's) -- over leaves and results read anywhere, so a rewritten node's
    operands have other readers, with outputs drawn among the results.  Reverse mode
    reaches a leaf's gradient parts in the order of the graph it differentiates: a rewrite
    before it that moves one part changes the rounding unless it keeps that order (an
    outside fuzz drew ``sum(p) - (-(p / p))``, differentiated for its second output, whose
    ``sum(p)`` flatten had absorbed)."""
    from graphc.passes.simplify import C, K, P, RULES, Rest, Var

    program: list = []
    first_const = n_inputs + n_params
    first_result = first_const + len(REWRITE_CONSTANTS)
    sums: list[int] = []

    def const_slot(value: float) -> int:
        return first_const + next(k for k, c in enumerate(REWRITE_CONSTANTS) if same(c, value))

    def leaf_or_result() -> int:
        results = st.integers(first_result, first_result + len(program) - 1) if program else st.nothing()
        return draw(st.one_of(st.integers(0, first_const - 1), results))

    def emit(pattern, bound: dict) -> int:
        if isinstance(pattern, Var):
            if pattern.name not in bound:
                bound[pattern.name] = leaf_or_result()
            return bound[pattern.name]
        if isinstance(pattern, C):
            return const_slot(pattern.value)
        if isinstance(pattern, K):
            return const_slot(draw(st.sampled_from(REWRITE_CONSTANTS)))
        operands = tuple(emit(o, bound) for o in pattern.operands if not isinstance(o, Rest))
        if pattern.operands and isinstance(pattern.operands[-1], Rest):
            operands += tuple(leaf_or_result() for _ in range(draw(st.integers(0, 2))))
        program.append((pattern.op, operands, pattern.attr or ()))
        return first_result + len(program) - 1

    X, Y, Z = Var("x"), Var("y"), Var("z")
    shapes = [rule.pattern for rule in RULES] + [P("sum", X), P("add", X, Y), P("sum", X, Y, Z)]
    for _ in range(draw(st.integers(1, max_shapes))):
        kind = draw(st.integers(0, 3))
        if kind == 0:  # the next link of a chain of sums
            chain = {"x": draw(st.sampled_from(sums))} if sums else {}
            sums.append(emit(draw(st.sampled_from(shapes[-3:])), chain))
        elif kind == 1:  # two shapes over the same leaves, combined: one's rewrite passes the other's reads
            bound: dict = {}
            both = {"a": emit(draw(st.sampled_from(shapes)), bound), "b": emit(draw(st.sampled_from(shapes)), bound)}
            emit(P(draw(st.sampled_from(["add", "sub", "mul", "truediv"])), *map(Var, draw(st.permutations("ab")))), both)
        else:
            emit(draw(st.sampled_from(shapes)), {})
    results = range(first_result, first_result + len(program))
    outputs = draw(st.lists(st.sampled_from(results), min_size=1, max_size=3, unique=True))
    return {"consts": list(REWRITE_CONSTANTS), "program": program, "outputs": outputs, "n_outputs": len(outputs),
            "n_inputs": n_inputs, "n_params": n_params}


def replay(spec: dict, inputs: list, params: list) -> list[Value]:
    """Run a program on Values (or numbers, for inputs); its outputs as Values."""
    values = list(inputs) + list(params) + list(spec["consts"])
    for name, operands, attr in spec["program"]:
        values.append(apply(name, *[values[k] for k in operands], attr=attr))
    outs = [values[k] for k in spec["outputs"]] if "outputs" in spec else values[-spec["n_outputs"]:]
    return [v if isinstance(v, Value) else Value(v) for v in outs]


def scalars(special: float = 0.5):
    """Floats: special values with probability ``special``, else ordinary ones."""
    ordinary = st.floats(-3.0, 3.0, allow_nan=False)
    anything = st.floats(allow_nan=True, allow_infinity=True)
    return st.one_of(st.sampled_from(SPECIAL_INPUTS), ordinary, anything) if special else ordinary


# -- eager references and error budgets --------------------------------------------------

def abs_gradient(root: Value) -> dict[int, float]:
    """For each node id reachable from ``root``: the gradient eager ``backward()`` would give
    it if every contribution were replaced by its absolute value (``G`` in the docstring).
    Nodes no gradient reaches are absent, as they receive nothing in eager either."""
    g = {id(root): 1.0}
    for v in reversed(topological_order((root,))):
        gv = g.get(id(v))
        if gv is None or v._kind is None:
            continue
        contributions = v._kind.vjp(FLOATS, gv, v._data, *[p._data for p in v._prev], *v._attr)
        for p, c in zip(v._prev, contributions):
            if c is not None:
                g[id(p)] = g.get(id(p), 0.0) + abs(c)
    return g


def forward_slack(root: Value, ulps: dict[str, float]) -> float:
    """First-order bound on how far ``root`` moves when every op node of its graph errs by
    up to ``ulps[op]`` ulps (a sum by ``ulps["sum"]`` ulps of the sum of its operands' sizes);
    inf where the bound is no bound: an op that is not linear in its operands, and that
    the output depends on, gets an operand whose error, carried forward to first order, is
    not small against its size (above :data:`LINEAR`), so the terms the bound leaves out may
    be larger than it (``cos`` of 4.4e38, a few ulps off: any number in [-1, 1], and a
    ``log`` after it nan)."""
    if not ulps:
        return 0.0
    adjoint = abs_gradient(root)
    total = 0.0
    error: dict[int, float] = {}  # each node's error carried forward, to first order
    for v in topological_order((root,)):
        kind = v._kind
        if kind is None:
            continue
        partials = kind.vjp(FLOATS, 1.0, v._data, *[p._data for p in v._prev], *v._attr)
        carried = sum(abs(c) * error.get(id(p), 0.0) for p, c in zip(v._prev, partials) if c is not None)
        if kind.name in ("sum", "add", "sub"):
            size = sum(abs(p._data) for p in v._prev)
        else:
            size = abs(v._data)
        own = 0.0
        if kind.name in ulps and not (size == 0.0 or math.isinf(size) or math.isnan(size)):
            own = size * ulps[kind.name] * EPS * max(1, len(v._prev) - 1)
            if id(v) in adjoint:
                total += adjoint[id(v)] * own
        error[id(v)] = carried + own  # a relative error does not move 0 or inf (their classes are tested per op)
        if kind.name not in LINEAR_OPS and adjoint.get(id(v)) and any(
                error.get(id(p), 0.0) > LINEAR * max(abs(p._data), 1.0) for p in v._prev):
            return math.inf
    return total


#: The largest error against its node's size (or 1) at which :func:`forward_slack`'s first
#: order still bounds what a nonlinear op makes of it.
LINEAR = 1e-3
#: Ops whose first order is exact in each operand: their result's error is what is carried.
LINEAR_OPS = frozenset({"add", "sub", "sum", "neg", "mul"})


def reassociation_slack(g: float, nodes: int) -> float:
    """Budget for reordering the sums of a gradient whose absolute-value gradient is ``g``."""
    return 4 * nodes * EPS * g


def graph_values(graph, inputs: Iterable[float], params: Iterable[float]) -> list[Value]:
    """Evaluate a Graph eagerly, node by node, as Values (so its outputs can be differentiated)."""
    values: list = []
    supply_in, supply_par = iter(inputs), iter(params)
    for op, args, attr in zip(graph.ops, graph.args, graph.attrs):
        if op == "input":
            values.append(Value(next(supply_in)))
        elif op == "param":
            values.append(Value(next(supply_par)))
        elif op == "const":
            values.append(Value(attr[0]))
        else:
            values.append(apply(op, *[values[a] for a in args], attr=attr))
    return values

