"""The per-signature cache of a compiled function: one trace per argument signature and
branch outcome.

An argument signature is the structure and sizes of the arguments (see
:func:`graphc.tree.flatten_args`); the first call with a new one traces and compiles a
:class:`~graphc.signature.Signature`, and the reason is logged (``GRAPHC_LOGS=retraces``).
One signature may hold several *variants*, one per outcome of its guards (the branches its
Python took, :mod:`graphc.guards`); calls try them most recently used first, and a call
none of them fits retraces (:mod:`graphc.variants`).
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Callable, Iterator, NamedTuple

from . import logs, variants
from .bridge import call as bridge_call
from .engine import Value
from .signature import Signature
from .tree import describe


class SharedKey(NamedTuple):
    """The key of an argument signature whose Value arguments repeat (see :func:`_repeated`)."""

    tree: Any
    shared: tuple


class SignatureCache(Mapping):
    """Argument signature -> its latest :class:`Signature`, made on first sight, once
    (threads racing for a new signature trace it once).  ``trace_count`` counts the traces,
    ``retraces`` says why each after the first happened, ``latest`` is the signature of the
    latest call (None before the first)."""

    def __init__(self, name: str, make: Callable[[tuple, str], Signature]) -> None:
        self.name, self.make = name, make
        self._variants: dict[Any, list[Signature]] = {}
        self.lock = threading.RLock()
        self.trace_count = 0
        self.retraces: list[str] = []
        self.latest: Signature | None = None

    def __getitem__(self, tree: Any) -> Signature:
        return self._variants[tree][0]

    def __iter__(self) -> Iterator:
        return iter(self._variants)

    def __len__(self) -> int:
        return len(self._variants)

    def lookup(self, tree: Any, args: tuple | Callable[[], tuple],
               shared: dict[int, int | None] | None = None) -> Signature:
        """The signature of arguments described by ``tree``: cached, or traced on ``args``
        (example arguments, or a function giving them) and cached; ``shared``: see
        :func:`shared_values`."""
        group = self._variants.get(tree)
        if group is None:
            with self.lock:
                group = self._variants.get(tree)
                if group is None:
                    reason = "first call" if not self._variants else \
                        f"new argument signature {describe_key(tree)}; known: " + \
                        ", ".join(describe_key(t) for t in self._variants)
                    first = not self._variants
                    logs.retrace(self.name, reason)
                    group = [self.make(args() if callable(args) else args, describe_key(tree), shared)]
                    self.count_trace(reason, first)
                    self._variants[tree] = group
        self.latest = group[0]
        return group[0]

    def lookup_batched(self, tree: Any, args: Callable[[], tuple]) -> Signature:
        """:meth:`lookup` for map, mean and train: one program for every row, so a signature
        with guards (branches rows might not all take) is refused."""
        signature = self.lookup(tree, args)
        variants.refuse_batched(self.name, signature)
        return signature

    def call(self, tree: Any, args: tuple, leaves: list) -> Any:
        """The compiled function's outputs on flat arguments ``leaves``, from the variant of
        their signature whose guards hold (a retrace when none does)."""
        shared = _repeated(leaves)
        key = tree if not shared else SharedKey(tree, _key(shared, leaves))
        self.lookup(key, args, shared)
        group = self._variants[key]
        if shared is not None:  # Value arguments: is one a param too?
            params = {j: None for j, leaf in enumerate(leaves) if isinstance(leaf, Value) and j not in shared
                      and any(id(leaf) in signature.param_ids for signature in group)}
            if params:
                shared = {**shared, **params}
                key = SharedKey(tree, _key(shared, leaves))
                self.lookup(key, args, shared)
                group = self._variants[key]
        result, failure = variants.first_that_holds(group, leaves, bridge_call, self.lock)
        if failure is not None:
            result = variants.retrace(self, group, args, leaves, bridge_call, failure)
        self.latest = group[0]
        return result

    def count_trace(self, reason: str, first: bool = False) -> None:
        """Count a trace that succeeded; every trace after the first goes in ``retraces``."""
        if not first:
            self.retraces.append(reason)
        self.trace_count += 1


def _repeated(leaves: list) -> dict[int, int] | None:
    """None if no argument leaf is a Value; else each leaf that is a Value an earlier leaf is
    too -> that leaf.  A Value met twice is traced as one (see
    :func:`graphc.trace.trace_with_record`'s ``shared``): reverse mode then adds its uses in
    eager ``backward()``'s order, where two inputs' totals, each added into its ``.grad``,
    can differ in the last bit (an outside hunt: ``f(a, a)``)."""
    seen: dict[int, int] | None = None
    repeated: dict[int, int] = {}
    for j, leaf in enumerate(leaves):
        if isinstance(leaf, Value):
            seen = {} if seen is None else seen
            first = seen.setdefault(id(leaf), j)
            if first != j:
                repeated[j] = first
    return None if seen is None else repeated


def _key(shared: dict[int, int | None], leaves: list) -> tuple:
    """The part of a signature's key ``shared`` adds: a param by its Value's identity (the
    signature keeps the Value, so the id stays its own)."""
    return tuple(sorted((j, ("param", id(leaves[j])) if i is None else i) for j, i in shared.items()))


def describe_key(key: Any) -> str:
    """:func:`graphc.tree.describe` of a key of the cache."""
    if isinstance(key, SharedKey):
        return f"{describe(key.tree)}, a Value argument repeated or a param"
    return describe(key)
