"""graphc: micrograd grown into a graph compiler.

Eager ``Value`` and ``nn`` are drop-ins for micrograd's; ``trace`` records a function of
Values as a :class:`Graph`, ``optimize`` simplifies it, and ``compile`` turns it into
generated code that computes values and gradients.  ``to_sympy``/``from_sympy`` bridge to
SymPy, ``check_grad`` compares gradients four ways, ``export`` writes a standalone module.
"""
from ._version import __version__
from .engine import Value, apply
from .errors import (ArgumentError, CompilerWarning, DataError, FrozenDataWarning, GraphcError, LoadError,
                     ShapeError, TraceError, TracerWarning)
from .graph import Graph
from .passes import optimize
from .trace import trace
from .compile import Compiled, compile  # (needs the modules above)
from .interpret import as_function
from .export import export
from .saving import load, save
from .functional import grad, make_graph, stop_gradient, value_and_grad
from .logs import set_logs

#: Public names loaded on first use: they need SymPy, whose import costs ~0.25 s.
_LAZY = {"to_sympy": "symbolic", "from_sympy": "symbolic", "check_grad": "check", "GradReport": "check"}


def __getattr__(name: str):
    """Import the SymPy-based parts of graphc when one of their names is first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graphc' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["Value", "apply", "Graph", "trace", "optimize", "compile", "Compiled",
           "to_sympy", "from_sympy", "as_function", "check_grad", "GradReport", "export",
           "save", "load", "LoadError",
           "grad", "value_and_grad", "make_graph", "stop_gradient", "set_logs",
           "GraphcError", "ArgumentError", "DataError", "ShapeError", "TraceError", "TracerWarning",
           "FrozenDataWarning", "CompilerWarning",
           "__version__"]
