"""Branch variants of a compiled signature: check the guards, retrace on a miss, cap the count.

:class:`~graphc.signature.Signature` traces with its guards (:func:`trace_for_compile`);
:class:`~graphc.signature_cache.SignatureCache` calls a signature's variants
(:func:`first_that_holds`) and retraces (:func:`retrace`).  One argument
signature may hold several programs, one per outcome of its guards (the branches its
Python took); they are tried most recently used first.  A call whose guards all hold in
some program returns that program's results; otherwise the function is traced again for
the new outcomes, with the reason in ``compiled.retraces`` and the ``retraces`` log, up to
:data:`MAX_VARIANTS` programs per signature.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable

from . import logs
from .errors import FrozenDataWarning, GraphcError, _user_stacklevel
from .graph import Graph
from .guards import GuardFailure, GuardSet
from .trace import trace_with_record

#: Programs (branch variants) one argument signature may hold before a clear error.
MAX_VARIANTS = 8


def trace_for_compile(name: str, fn: Callable, args: tuple, params: list | None,
                      frozen: Callable[[str, frozenset[str]], None],
                      shared: dict[int, int | None] | None = None,
                      as_values: set[int] | None = None) -> tuple[Graph, GuardSet]:
    """``fn`` traced on ``args`` for compiling: the graph (its outputs, then one 0/1 output per
    guard) and the guards.  Frozen data is told to ``frozen(message, kinds)``; ``shared`` and
    ``as_values``: see :func:`graphc.trace.trace_with_record`."""
    graph, record, kinds = trace_with_record(fn, *args, params=params, name=name, guards=True, shared=shared,
                                             as_values=as_values)
    message = record.frozen_message(name)
    if message is not None:
        frozen(message, record.frozen_kinds())
    return graph, GuardSet(record.guards, len(graph.outputs) - len(record.guards), kinds, record.argument_kinds)


def warn_once() -> Callable[[str, frozenset[str]], None]:
    """A ``frozen`` callback for :func:`trace_for_compile`: a FrozenDataWarning, at the first
    frame outside graphc, for each trace that meets a kind of frozen data the compiled
    function has not said yet (:meth:`graphc.guards.Record.frozen_kinds`): a retrace that
    draws random numbers the first trace did not (micrograd's ``loss(batch_size=10)`` after
    ``loss()``) was silent (an outside hunt), and one that freezes the same data again is."""
    said: set[str] = set()

    def frozen(message: str, kinds: frozenset[str]) -> None:
        if not kinds <= said:
            said.update(kinds)
            warnings.warn(message, FrozenDataWarning, stacklevel=_user_stacklevel())
    return frozen


def first_that_holds(group: list, leaves: list, call: Callable, lock: Any,
                     value_args: list[int]) -> tuple[Any, GuardFailure | None]:
    """The outputs of the first variant in ``group`` whose guards hold on ``leaves`` (moved
    to the front: most recently used first) and None; or None and the first variant's
    failed guard.  ``lock`` (the cache's) is held to move it: a thread looking for a
    variant under the lock never sees the group without it."""
    first = None
    for k, signature in enumerate(tuple(group)):
        result = call(signature, leaves, value_args)
        if type(result) is not GuardFailure:
            if k:
                with lock:
                    with contextlib.suppress(ValueError):  # another thread moved it
                        group.remove(signature)
                    group.insert(0, signature)
            return result, None
        first = first or result
    return None, first


def retrace(cache: Any, group: list, args: tuple, leaves: list, call: Callable, failure: GuardFailure,
            value_args: list[int]) -> Any:
    """Trace ``fn`` again for a call no variant fits (``failure``: the latest variant's failed
    guard), within :data:`MAX_VARIANTS`."""
    with cache.lock:
        result, again = first_that_holds(group, leaves, call, cache.lock, value_args)  # another thread may have traced it
        if again is None:
            return result
        if len(group) >= MAX_VARIANTS:
            raise GraphcError(_cap_message(cache.name, group, failure))
        logs.retrace(cache.name, failure.reason)
        signature = cache.make(args, group[0].description, group[0].shared)
        cache.count_trace(failure.reason)
        group.insert(0, signature)
    result = call(signature, leaves, value_args)
    if type(result) is GuardFailure:
        raise GraphcError(f"{cache.name} decided differently on the very arguments it was just traced with "
                          f"({result.reason}): its Python is not deterministic (a random draw, or state that "
                          f"changes between runs); graphc cannot compile it")
    return result


def _cap_message(name: str, group: list, failure: GuardFailure) -> str:
    return (f"{name}: no program fits this call ({failure.guard.describe()} fails in the latest): "
            f"{len(group)} programs (the cap, "
            f"graphc.variants.MAX_VARIANTS) were traced for argument signature {group[0].description}, one per "
            f"branch its Python took, and this call needs another. Control flow or conversions (float, int, "
            f"round, a number used as a Value) that depend on values changing from call to call cannot be "
            f"compiled as branches: compute them with Value ops (relu, max, ...), or decide outside the "
            f"compiled function and pass the decision in as an argument.  To print or log a number inside "
            f"it, format it (f\"{{x.data:.4f}}\", \"%.4f\" % x.data: text, not guarded; round(x.data, 4) "
            f"is a number, guarded)")


def refuse_batched(name: str, signature: Any) -> None:
    """map, mean and train run one program for every row: a signature with guards (branches
    some rows might not take) cannot, so say so rather than compute a wrong branch."""
    specs = signature.guards.specs
    if specs:
        raise GraphcError(f"{name}: map, mean and train run one program for every row, but the function "
                          f"branches on traced values, or divides by one ({specs[0].describe()}"
                          f"{f' and {len(specs) - 1} more' if len(specs) > 1 else ''}): rows, or the steps of "
                          f"train as it updates the params, could need the other branch, or raise. Write it with "
                          f"Value ops (relu, max, x / y on Values, ...), or call the compiled function row by row")
