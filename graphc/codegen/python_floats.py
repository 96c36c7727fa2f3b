"""Python over floats: each op's spelling, and the helpers the spellings call.

The Python backend writes every node with this table; the NumPy backend writes with it the
nodes that do not vary across rows (params, constants and what depends on them alone), so
both compute those on Python floats with :mod:`graphc.runtime`'s IEEE semantics.  Operands
are names or literals, so a spelling needs no parentheses.
"""
from __future__ import annotations

import math

from .. import ops
from .common import Spelling


def _lanes(f, operands: tuple, params: tuple = ()) -> tuple:
    """An elementwise op on tensors (flat tuples), lane by lane; scalar operands broadcast."""
    size = max(len(x) for x in operands if isinstance(x, tuple))
    return tuple(f(*[x[k] if isinstance(x, tuple) else x for x in operands], *params) for k in range(size))


#: What generated code may refer to: each op's float evaluation as ``_<op name>``, and
#: ``_lanes`` for an elementwise op on tensors (flat tuples).
NAMESPACE = {f"_{name}": op.eval for name, op in ops.TABLE.items()} | {
    "inf": math.inf, "nan": math.nan, "_lanes": _lanes}


def _sum(operands: list[str], params: tuple) -> str:
    """``a + b + c`` -- or, past 64 terms, ``_sum(a, b, ...)``: CPython's compiler recurses
    once per ``+`` of a chain and overflows its stack near a few thousand.  A starred operand
    (``*map(...)``, several operands read in one go) needs the call too."""
    if len(operands) <= 64 and not any(text.startswith("*") for text in operands):
        return " + ".join(operands)
    return f"_sum({', '.join(operands)})"


def _pack(operands: list[str], params: tuple) -> str:
    return "(" + ", ".join(operands) + ",)"


#: Op name -> its Python spelling over floats (tensors are flat tuples).
SPELLINGS: dict[str, Spelling] = {
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "neg": "-{0}",
    "sum": _sum,
    "pow": "_pow({0}, {exponent})",
    "vpow": "_vpow({0}, {1})",
    "relu": "_relu({0})",
    "tanh": "_tanh({0})",
    "exp": "_exp({0})",
    "log": "_log({0})",
    "log1p": "_log1p({0})",
    "softplus": "_softplus({0})",
    "sigmoid": "_sigmoid({0})",
    "sin": "_sin({0})",
    "cos": "_cos({0})",
    "step": "_step({0})",
    "max": "_max({0}, {1})",
    "abs": "_abs({0})",
    "sqrt": "_sqrt({0})",
    "stop_gradient": "{0}",
    "lt": "_lt({0}, {1})",
    "le": "_le({0}, {1})",
    "gt": "_gt({0}, {1})",
    "ge": "_ge({0}, {1})",
    "eq": "_eq({0}, {1})",
    "ne": "_ne({0}, {1})",
    "truediv": "_truediv({0}, {1})",
    "pack": _pack,
    "index": "{0}[{i}]",
    "unit": "_unit({0}, {1}, {i})",
    "dot": "_dot({0}, {1}, {2})",
    "matvec": "_matvec({0}, {1}, {2})",
    "vecmat": "_vecmat({0}, {1}, {2})",
    "outer": "_outer({0}, {1})",
}
