"""graphc: micrograd grown into a graph compiler.

Eager ``Value`` and ``nn`` are drop-ins for micrograd's; ``trace`` records a function of
Values as a :class:`Graph`, ``optimize`` simplifies it, and ``compile`` turns it into
generated code that computes values and gradients.
"""
__version__ = "0.1.0"

from .engine import Value, apply  # noqa: E402
from .errors import ArgumentError, DataError, GraphcError, ShapeError, TraceError, TracerWarning
from .graph import Graph  # noqa: E402
from .passes import optimize
from .trace import trace
from .compile import Compiled, compile  # noqa: E402  (needs the modules above)

__all__ = ["Value", "apply", "Graph", "trace", "optimize", "compile", "Compiled",
           "GraphcError", "ArgumentError", "DataError", "ShapeError", "TraceError", "TracerWarning",
           "__version__"]
