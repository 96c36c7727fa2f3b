"""Hypothesis strategies for random graphs: programs over every op, replayable eagerly or traced.

A *program* is a list of instructions ``(op name, operand slots, params)``; slots index
a growing list that starts with the inputs, then the params, then constants.  Replaying
it on Values gives the eager result; compiling the replay gives the compiled one.
"""
from __future__ import annotations

import math

from hypothesis import strategies as st

from graphc import Value, apply, ops

OP_NAMES = sorted(name for name, op in ops.TABLE.items() if op.elementwise)  # eager Values are scalars
EXPONENTS = [2, 3, -1, 0.5, -2, 1, 0, 1.5]
ORDINARY_CONSTANTS = [0.0, 1.0, -1.0, 2.0, 0.5, 3.0, -0.0]
SPECIAL_CONSTANTS = [0.0, -0.0, 1.0, -1.0, 1e300, -1e300, 1e-300, 5e-324, math.inf, -math.inf, math.nan]


@st.composite
def programs(draw, n_inputs=3, n_params=2, max_ops=12, constants=ORDINARY_CONSTANTS, op_names=OP_NAMES):
    consts = draw(st.lists(st.sampled_from(constants), min_size=1, max_size=3))
    slots = n_inputs + n_params + len(consts)
    program = []
    for _ in range(draw(st.integers(1, max_ops))):
        name = draw(st.sampled_from(op_names))
        op = ops.TABLE[name]
        arity = op.arity if op.arity is not None else draw(st.integers(1, 4))
        # prefer recent values so graphs get deep, but allow any (shared subexpressions)
        recent = st.integers(max(0, slots - 3), slots - 1)  # deep graphs ...
        anywhere = st.integers(0, slots - 1)  # ... with shared subexpressions and repeats
        operands = tuple(draw(st.one_of(recent, anywhere)) for _ in range(arity))
        attr = (draw(st.sampled_from(EXPONENTS)),) if op.attr_names else ()
        program.append((name, operands, attr))
        slots += 1
    n_outputs = draw(st.integers(1, min(3, len(program))))
    return {"consts": consts, "program": program, "n_outputs": n_outputs,
            "n_inputs": n_inputs, "n_params": n_params}


def replay(spec, inputs, params):
    """Run a program on Values (or numbers, for inputs) and return its outputs as a list."""
    values = list(inputs) + list(params) + list(spec["consts"])
    for name, operands, attr in spec["program"]:
        values.append(apply(name, *[values[k] for k in operands], attr=attr))
    outs = values[-spec["n_outputs"]:]
    return [v if isinstance(v, Value) else Value(v) for v in outs]


def point(n, low=-2.0, high=2.0):
    return st.lists(st.floats(low, high, allow_nan=False), min_size=n, max_size=n)
