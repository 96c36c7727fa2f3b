"""The NumPy backend's spelling of every op against the scalar runtime (libm), element by element.

At IEEE special values (signed zeros, subnormals, extremes, infinities, nan) every op must
give the runtime's exact result -- value, class and sign of zero -- with each operand
either batched (an array) or not (a float param).  On ordinary inputs NumPy's SIMD
``exp``, ``tanh``, ``pow``... may differ from libm in the last bits: the measured maximum
must stay within the budget the differential fuzz grants (fuzzing.ULPS["numpy"]).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from graphc import ops
from graphc.codegen import numpy as numpy_backend
from graphc.graph import Builder
from fuzzing import EXPONENTS, SCALAR_OPS, SPECIAL_INPUTS, ULPS, same

OPS = SCALAR_OPS
GRID = SPECIAL_INPUTS + [-0.5, 2.0, -20.0, 745.5, -5e-324, -1e-300, 1e16]


def program(name: str, batched: tuple[bool, ...], attr: tuple):
    """A NumPy-backend function computing one op; batched operands are inputs, others params."""
    b = Builder()
    operands = [b.add("input" if is_batched else "param", (), (f"a{k}",)) for k, is_batched in enumerate(batched)]
    out = b.add(name, tuple(operands), attr)
    graph = b.finish([i for i, m in zip(operands, batched) if m], [i for i, m in zip(operands, batched) if not m], [out])
    function, _ = numpy_backend.compile_graph(graph, "f")
    return function


def evaluate(function, batched, columns, fixed):
    """Run over the rows of ``columns`` (the batched operands) with ``fixed`` unbatched ones."""
    n = len(columns[0]) if columns else 1
    with np.errstate(all="ignore"):
        (out,), _ = function(np.array(columns, dtype=np.float64).reshape(len(columns), n), list(fixed), n)
    return np.broadcast_to(out, (n,))


def cases(name: str):
    op = ops.TABLE[name]
    arity = op.arity or 3
    attrs = [(e,) for e in EXPONENTS + [-0.0, 5e-324]] if op.attr_names else [()]
    for attr in attrs:
        for batched in itertools.product([True, False], repeat=arity):
            if any(batched):
                yield attr, batched


@pytest.mark.parametrize("name", OPS)
def test_special_values_are_the_runtimes_exactly(name):
    op = ops.TABLE[name]
    arity = op.arity or 3
    grid = GRID if arity < 3 else GRID[:12]
    for attr, batched in cases(name):
        function = program(name, batched, attr)
        combos = list(itertools.product(grid, repeat=arity))
        by_fixed: dict[str, list] = {}
        for combo in combos:  # one call per value of the unbatched operands (-0.0 apart from 0.0)
            by_fixed.setdefault(repr([v for v, m in zip(combo, batched) if not m]), []).append(combo)
        for group in by_fixed.values():
            fixed = [v for v, m in zip(group[0], batched) if not m]
            columns = [[c[k] for c in group] for k in range(arity) if batched[k]]
            got = evaluate(function, batched, columns, fixed)
            for combo, value in zip(group, got.tolist()):
                want = op.eval(*combo, *attr)
                assert close(value, want, ULPS["numpy"].get(name, 1) - 1), (name, attr, batched, combo, value, want)


def close(a: float, b: float, max_ulps: int) -> bool:
    """The same special value (class, sign of zero) -- or, both finite, nonzero and of one
    sign, at most ``max_ulps`` apart."""
    if math.isfinite(a) and math.isfinite(b) and a != 0 and b != 0 and (a > 0) == (b > 0):
        return int(ulps(np.array([a]), np.array([b]))[0]) <= max_ulps
    return same(a, b)


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place (adjacent floats are 1 apart; -0.0 and 0.0 are 0)."""
    ia, ib = a.view(np.int64), b.view(np.int64)
    ia = np.where(ia < 0, np.int64(-2**63) - ia, ia)
    ib = np.where(ib < 0, np.int64(-2**63) - ib, ib)
    return np.abs(ia - ib)


DOMAINS = {
    "exp": lambda r, n: r.uniform(-745, 709, n),
    "log": lambda r, n: np.exp(r.uniform(-700, 700, n)),
    "log1p": lambda r, n: np.expm1(r.uniform(-30, 30, n)),
    "tanh": lambda r, n: r.normal(0, 5, n),
    "sigmoid": lambda r, n: r.normal(0, 20, n),
    "softplus": lambda r, n: r.normal(0, 20, n),
    "sin": lambda r, n: r.uniform(-100, 100, n),
    "cos": lambda r, n: r.uniform(-100, 100, n),
    "pow": lambda r, n: np.exp(r.uniform(-5, 5, n)),
    "vpow": lambda r, n: np.exp(r.uniform(-5, 5, n)),
}


@pytest.mark.parametrize("name", sorted(ULPS["numpy"]))
def test_ordinary_inputs_stay_within_the_fuzzing_budget(name):
    rng = np.random.default_rng(name.encode()[0])
    x = DOMAINS[name](rng, 20_000)
    op = ops.TABLE[name]
    if name == "vpow":
        y = rng.uniform(-5, 5, x.size)
        got = evaluate(program(name, (True, True), ()), (True, True), [x, y], ())
        want = np.array([op.eval(a, b) for a, b in zip(x.tolist(), y.tolist())])
    else:
        exponents = [2, 3, -1, 0.5, 1.5, -2.5] if op.attr_names else [None]
        parts = []
        for e in exponents:
            attr = (e,) if e is not None else ()
            got_e = evaluate(program(name, (True,), attr), (True,), [x], ())
            parts.append((got_e, np.array([op.eval(v, *attr) for v in x.tolist()])))
        got, want = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    distance = ulps(got, want)
    assert distance.max() < ULPS["numpy"][name], (name, int(distance.max()), float((distance > 0).mean()))
