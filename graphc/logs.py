"""What the compiler did, on the ``logging`` logger "graphc" -- graphc's ``TORCH_LOGS``.

``GRAPHC_LOGS=output_code,retraces,passes`` in the environment, or
``graphc.set_logs(...)`` in code, turns on some of these child loggers:

* ``graphc.output_code``: every generated program -- each argument signature, each kind
  (scalar Python, batched NumPy or C source) -- not only the latest that ``compiled.source``
  shows;
* ``graphc.retraces``: each trace of a compiled function and why (first call, or a new
  argument signature, with the signatures already known);
* ``graphc.passes``: the optimizer's report (nodes before and after, each pass's counts) for
  every graph a compiled function optimizes;
* ``graphc.rows``: whether a full-batch loss runs as one per-row program (batch recovery),
  and if not, why.

An enabled logger gets level INFO and the "graphc" logger one stderr handler, so the
messages appear without configuring ``logging``; records also propagate to the
application's own handlers as usual.  Without either switch graphc stays silent: the
others are at WARNING, so an application's ``logging.basicConfig(level=logging.INFO)``
does not turn them on (at NOTSET they took the root logger's INFO, every generated
program included: an outside hunt), as ``TORCH_LOGS`` keeps PyTorch's own.
"""
from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Iterable

#: The log names, and what each one sends.
LOGS = {
    "output_code": "every generated program (each signature, each backend)",
    "retraces": "each trace of a compiled function and its reason",
    "passes": "the optimizer's pass report for each graph a compiled function optimizes",
    "rows": "whether a full-batch loss runs as one per-row program, and if not, why",
}
ENVIRONMENT_VARIABLE = "GRAPHC_LOGS"

_root = logging.getLogger("graphc")
output_code = logging.getLogger("graphc.output_code")
retraces = logging.getLogger("graphc.retraces")
passes = logging.getLogger("graphc.passes")
rows_found = logging.getLogger("graphc.rows")
_LOGGERS = {"output_code": output_code, "retraces": retraces, "passes": passes, "rows": rows_found}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each message (as logging's own
    last-resort handler does), so redirecting stderr later still catches graphc's logs."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)
        self.setFormatter(logging.Formatter("[%(name)s] %(message)s"))

    @property
    def stream(self):
        return sys.stderr


_handler = _StderrHandler()


def set_logs(names: str | Iterable[str] | None = None, /, **flags: bool) -> None:
    """Choose which of graphc's logs go to stderr, replacing any earlier choice.

    ``set_logs(output_code=True, retraces=True, passes=True)``, or the names as one
    comma-separated string (``set_logs("output_code,passes")``, what ``GRAPHC_LOGS``
    holds) or a list; ``"all"`` turns on every log; ``set_logs()`` turns them all off.
    The names are those of :data:`LOGS`; any other raises a ValueError.
    """
    chosen = _parse(names) | {name for name, on in flags.items() if on}
    unknown = sorted(set(flags) - set(LOGS))
    if unknown:
        raise ValueError(f"set_logs: unknown log name(s) {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(LOGS)} (or 'all')")
    for name, logger in _LOGGERS.items():
        logger.setLevel(logging.INFO if name in chosen else logging.WARNING)
    if chosen and _handler not in _root.handlers:
        _root.addHandler(_handler)
    elif not chosen and _handler in _root.handlers:
        _root.removeHandler(_handler)


def enabled() -> list[str]:
    """The names of the logs turned on now."""
    return [name for name, logger in _LOGGERS.items() if logger.level == logging.INFO]


def _parse(names: str | Iterable[str] | None) -> set[str]:
    if names is None:
        return set()
    items = names.split(",") if isinstance(names, str) else list(names) if isinstance(names, (list, tuple)) else [names]
    if not all(isinstance(item, str) for item in items):
        raise TypeError(f"set_logs: expected log names (a comma-separated string or a list of strings); "
                        f"got {names!r}")
    chosen = {item.strip() for item in items if item.strip()}
    if "all" in chosen:
        return set(LOGS)
    unknown = sorted(chosen - set(LOGS))
    if unknown:
        raise ValueError(f"set_logs: unknown log name(s) {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(LOGS)} (or 'all')")
    return chosen


def _from_environment() -> None:
    """Apply ``GRAPHC_LOGS`` once, at import (every log off without it); unknown names give
    one warning, not an error, so a typo in the environment never stops a program."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "")
    if not value.strip():
        set_logs()
        return
    names = [item.strip() for item in value.split(",") if item.strip()]
    known = [name for name in names if name in LOGS or name == "all"]
    if len(known) < len(names):
        warnings.warn(f"{ENVIRONMENT_VARIABLE}={value!r}: ignored unknown log name(s) "
                      f"{', '.join(repr(n) for n in names if n not in known)}; choose from "
                      f"{', '.join(LOGS)} (or 'all')", stacklevel=2)
    set_logs(known)


# -- hook points ---------------------------------------------------------------------------

def program(function: str, signature: str, kind: str, source: str) -> None:
    """A generated program, with what it is for."""
    if output_code.isEnabledFor(logging.INFO):
        output_code.info("%s %s: %s\n%s", function, signature, kind, source.rstrip("\n"))


def retrace(function: str, reason: str) -> None:
    """A trace of ``function`` and its reason."""
    retraces.info("%s: tracing (%s)", function, reason)


def pass_report(function: str, signature: str, graph: str, report) -> None:
    """The optimizer's report (a :class:`graphc.passes.OptimizeReport`) for one graph."""
    if passes.isEnabledFor(logging.INFO):
        passes.info("%s %s: %s\n%s", function, signature, graph, report)


def rows(function: str, outcome: str) -> None:
    """Batch recovery's outcome for ``function``'s traced graph."""
    rows_found.info("%s: %s", function, outcome)


_from_environment()
