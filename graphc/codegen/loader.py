"""Load generated Python source: compile it, run it in a fresh namespace, register its lines.

Only source that graphc generated goes through here -- never user text -- and it runs in
a namespace holding nothing but the helpers it was generated against.  The source is
registered with :mod:`linecache` under a unique pseudo-filename, so tracebacks,
``inspect.getsource`` and debuggers show the generated lines; the entry is dropped when
the loaded function is garbage-collected.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import linecache
import weakref
from types import CodeType
from typing import Any, Callable

_serial = itertools.count(1)


def _release_freed_memory() -> None:
    """Give memory freed by the compiler back to the OS (glibc keeps it otherwise: measured
    ~40% of a huge load's resident memory); a no-op where there is no ``malloc_trim``."""
    if _libc is not None:
        _libc.malloc_trim(0)


try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _libc.malloc_trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):
    _libc = None


def load(source: str, entry: str, namespace: dict[str, Any], label: str,
         blocks: list[int] | None = None) -> Callable:
    """Compile ``source`` and return its function ``entry``.

    ``blocks`` lists the character offsets where independently compilable pieces of the
    source start; each is compiled on its own, so CPython's compiler holds one piece in
    memory at a time (it needs ~2 KB per line), and its code objects are then moved to
    the piece's line numbers in the whole source.  The lines are handed to linecache
    lazily: a 10^6-line source is not split into a list unless a traceback needs it.
    """
    filename = f"graphc-generated/{label} #{next(_serial)}"
    starts = sorted(set(blocks or [0]) | {0})
    scope = dict(namespace)
    scope["__name__"] = "graphc.generated"
    line = 0
    previous = 0
    for start, end in zip(starts, starts[1:] + [len(source)]):
        line += source.count("\n", previous, start)
        previous = start
        code = _moved(compile(source[start:end], filename, "exec"), line)
        exec(code, scope)  # graphc's own generated code, in a fresh namespace
        if len(starts) > 1:
            _release_freed_memory()
    linecache.cache[filename] = (lambda: source,)  # a lazy entry: linecache splits it on demand
    function = scope[entry]
    weakref.finalize(function, linecache.cache.pop, filename, None)
    return function


def _moved(code: CodeType, lines: int) -> CodeType:
    """``code`` and the functions it defines, ``lines`` lines further down their file
    (line tables are relative to ``co_firstlineno``, so only that moves)."""
    if not lines:
        return code
    consts = tuple(_moved(c, lines) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + lines, co_consts=consts)
