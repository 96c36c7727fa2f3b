"""The errors and warnings graphc raises."""
from __future__ import annotations

import os
import sys

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning (warned by the caller) at the first frame
    outside graphc: the user's line, however deep in graphc the warning is found."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
        frame, level = frame.f_back, level + 1
    return level


class GraphcError(Exception):
    """Base class of every error graphc raises on purpose."""


class ArgumentError(GraphcError, TypeError):
    """An argument of the wrong type or structure (also a ``TypeError``)."""


class ShapeError(GraphcError, ValueError):
    """An argument of the right type but the wrong shape or length (also a ``ValueError``)."""


class DataError(GraphcError, ValueError):
    """Batched data of the right shape holding values graphc refuses, such as nan or inf."""


class NotTracedYet(GraphcError, AttributeError):
    """What a compiled function shows of its trace (``graph``, ``source``, ``params``, ...)
    asked before its first call.  Also an ``AttributeError``, so ``hasattr``, ``getattr``
    with a default and ``inspect.getmembers`` answer instead of raising (an outside hunt)."""


class TraceError(GraphcError):
    """The traced function did something graphc cannot turn into a graph."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        from .engine import current_record  # (engine imports this module)
        record = current_record()
        if record is not None:  # told to the trace, which refuses to finish if the function caught it
            record.refused(self)


class TracerWarning(UserWarning):
    """``graphc.trace`` recorded one branch of Python control flow that depends on traced
    values: the graph holds that branch, fixed (``graphc.compile`` guards it instead)."""


class FrozenDataWarning(TracerWarning):
    """A trace froze numbers read from outside the function's arguments (captured data,
    NumPy arrays made Values inside it) or random draws into the program: the compiled
    function keeps them even when they change.  Pass such data as arguments."""


class CompilerWarning(UserWarning):
    """The C backend cannot run as usual: without a C compiler the NumPy backend runs instead
    (and so does the default where the compiler found cannot build graphc's code); without a
    usable cache directory C builds in a private temporary one; a damaged cached library is
    built again.  The message says which and why."""


class LoadError(GraphcError, ValueError):
    """A state dict or saved file that does not fit: missing or unexpected keys, or a file that
    is not one ``graphc.save`` wrote (garbage, truncated, or holding anything but its arrays)."""
