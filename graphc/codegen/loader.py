"""Load generated Python source: compile it, run it in a fresh namespace, register its lines.

Only source that graphc generated goes through here -- never user text -- and it runs in
a namespace holding nothing but the helpers it was generated against.  The source is
registered with :mod:`linecache` under a unique pseudo-filename, so tracebacks,
``inspect.getsource`` and debuggers show the generated lines; the entry is dropped when
the loaded function is garbage-collected.
"""
from __future__ import annotations

import itertools
import linecache
import weakref
from typing import Any, Callable

_serial = itertools.count(1)


def load(source: str, entry: str, namespace: dict[str, Any], label: str) -> Callable:
    """Compile ``source`` and return its function ``entry``."""
    filename = f"<graphc-generated {label} #{next(_serial)}>"
    code = compile(source, filename, "exec")
    scope = dict(namespace)
    scope["__name__"] = "graphc.generated"
    exec(code, scope)  # graphc's own generated code, in a fresh namespace
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    function = scope[entry]
    weakref.finalize(function, linecache.cache.pop, filename, None)
    return function
