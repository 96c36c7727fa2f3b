"""Scalar calls (``compiled(*args)`` and ``backward()``) per backend: what each costs on one row.

    .venv/bin/python bench/scalar.py [--number N]

For a tiny function and MLPs of growing size, prints the microseconds of a call and of a
call with its backward() for the Python backend (what the default, ``"auto"``, and
``"numpy"`` run for scalar calls) and for ``"c"`` (one-row C), plus what NumPy's batched
code would take on one row (``map`` of a 1-row batch) -- the reason the NumPy backend runs
scalar calls as Python.  Values and gradients are checked equal between Python and C.
"""
from __future__ import annotations

import argparse
import random
import timeit

import numpy as np

import graphc
from graphc import Value
from graphc.nn import MLP


def cases():
    """(name, fn, args as floats, whether x is passed as a Value)."""
    yield "x * y + z (x a Value)", lambda x, y, z: x * y + z, (2.0, 3.0, 4.0)
    for sizes in ([16, 16, 1], [64, 64, 1]):
        random.seed(1)
        model = MLP(2, sizes)
        yield f"MLP(2, {sizes}) hinge", (lambda m: lambda x, y, t: (1.0 + -t * m([x, y])).relu())(model), (0.5, -1.0, 1.0)


def per_call(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=300)
    number = parser.parse_args().number
    print(f"{'function':28s} {'backend':8s} {'call us':>9s} {'call+backward us':>17s}")
    for name, fn, args in cases():
        results = {}
        for backend in ("python", "c"):
            compiled = graphc.compile(fn, backend=backend)
            x = Value(args[0])
            out = compiled(x, *args[1:])
            out.backward()
            results[backend] = (out.data, x.grad)
            call = per_call(lambda: compiled(x, *args[1:]), number)
            both = per_call(lambda: compiled(x, *args[1:]).backward(), number)
            print(f"{name:28s} {backend:8s} {call:9.1f} {both:17.1f}")
        assert results["c"] == results["python"], results
        numpy = graphc.compile(fn, backend="numpy")
        row = [np.array([a]) for a in args]
        numpy.map(*row)
        print(f"{name:28s} {'numpy':8s} {per_call(lambda: numpy.map(*row), number):9.1f} {'(map of 1 row)':>17s}")


if __name__ == "__main__":
    main()
