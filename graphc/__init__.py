"""graphc: micrograd grown into a graph compiler."""
from .engine import Value, apply
from .errors import ArgumentError, GraphcError, ShapeError, TraceError, TracerWarning

__version__ = "0.1.0"

__all__ = ["Value", "apply", "GraphcError", "ArgumentError", "ShapeError", "TraceError",
           "TracerWarning", "__version__"]
