"""Branch variants of a compiled signature: check the guards, retrace on a miss, cap the count.

compile.py asks this module two things (its hooks): trace a signature with its guards
(:func:`trace_for_compile`), and call a signature's variants (:func:`call`).  One argument
signature may hold several programs, one per outcome of its guards (the branches its
Python took); they are tried most recently used first.  A call whose guards all hold in
some program returns that program's results; otherwise the function is traced again for
the new outcomes, with the reason in ``compiled.retraces`` and the ``retraces`` log, up to
:data:`MAX_VARIANTS` programs per signature.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Callable

from . import logs
from .errors import FrozenDataWarning, GraphcError
from .graph import Graph
from .guards import GuardFailure, GuardSet
from .trace import trace_with_record

#: Programs (branch variants) one argument signature may hold before a clear error.
MAX_VARIANTS = 8

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def trace_for_compile(owner: Any, fn: Callable, args: tuple, params: list | None) -> tuple[Graph, GuardSet]:
    """``fn`` traced on ``args`` for compiling: the graph (its outputs, then one 0/1 output per
    guard) and the guards.  Frozen data is announced once per compiled function."""
    graph, record, kinds = trace_with_record(fn, *args, params=params, name=owner.name, guards=True)
    message = record.frozen_message(owner.name)
    if message is not None and not getattr(owner, "_frozen_said", False):
        owner._frozen_said = True
        warnings.warn(message, FrozenDataWarning, stacklevel=_user_stacklevel())
    return graph, GuardSet(record.guards, len(graph.outputs) - len(record.guards), kinds)


def call(compiled: Any, tree: Any, args: tuple, leaves: list) -> Any:
    """The outputs of the first variant of ``tree``'s signature whose guards hold; a retrace
    when none does."""
    group = compiled._variants.get(tree)
    if group is None:
        first = compiled._signature(tree, args)
        group = compiled._variants.setdefault(tree, [first])
    signature = group[0]
    result = signature.call(leaves)
    if type(result) is not GuardFailure:  # the common case: the latest branch again
        compiled._latest = signature
        return result
    failures = [result]
    for signature in tuple(group[1:]):
        result = signature.call(leaves)
        if type(result) is not GuardFailure:
            if signature is not group[0]:
                with compiled._lock:
                    if signature in group:
                        group.remove(signature)
                        group.insert(0, signature)
            compiled._latest = signature
            return result
        failures.append(result)
    return _retrace(compiled, group, args, leaves, failures)


def _retrace(compiled: Any, group: list, args: tuple, leaves: list, failures: list[GuardFailure]) -> Any:
    with compiled._lock:
        if len(group) >= MAX_VARIANTS:
            raise GraphcError(_cap_message(compiled, group, failures))
        reason = failures[0].reason
        compiled.retraces.append(reason)
        logs.retrace(compiled.name, reason)
        signature = type(group[0])(compiled, args, group[0].description)
        compiled.trace_count += 1
        group.insert(0, signature)
    result = signature.call(leaves)
    if type(result) is GuardFailure:
        raise GraphcError(f"{compiled.name} decided differently on the very arguments it was just traced with "
                          f"({result.reason}): its Python is not deterministic (a random draw, or state that "
                          f"changes between runs); graphc cannot compile it")
    compiled._latest = signature
    return result


def _cap_message(compiled: Any, group: list, failures: list[GuardFailure]) -> str:
    guard = failures[0].guard
    return (f"{compiled.name}: {guard.describe()} keeps failing: {len(group)} programs (the cap, "
            f"graphc.variants.MAX_VARIANTS) were traced for argument signature {group[0].description}, one per "
            f"branch its Python took, and this call needs another. Control flow or conversions (float, int, "
            f"round, a number used as a Value) that depend on values changing from call to call cannot be "
            f"compiled as branches: compute them with Value ops (relu, max, ...), or decide outside the "
            f"compiled function and pass the decision in as an argument")


def refuse_batched(compiled: Any, signature: Any) -> None:
    """map, mean and train run one program for every row: a signature with guards (branches
    some rows might not take) cannot, so say so rather than compute a wrong branch."""
    specs = signature.guards.specs
    if specs:
        raise GraphcError(f"{compiled.name}: map, mean and train run one program for every row, but the function "
                          f"branches on traced values ({specs[0].describe()}"
                          f"{f' and {len(specs) - 1} more' if len(specs) > 1 else ''}), so rows could need "
                          f"different branches. Write the branch with Value ops (relu, max, ...), or call the "
                          f"compiled function row by row")


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside graphc."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
        frame, level = frame.f_back, level + 1
    return level
