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
from typing import Any, Callable, Iterator

from . import logs, variants
from .bridge import call as bridge_call
from .signature import Signature
from .tree import describe


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

    def lookup(self, tree: Any, args: tuple | Callable[[], tuple]) -> Signature:
        """The signature of arguments described by ``tree``: cached, or traced on ``args``
        (example arguments, or a function giving them) and cached."""
        group = self._variants.get(tree)
        if group is None:
            with self.lock:
                group = self._variants.get(tree)
                if group is None:
                    reason = "first call" if not self._variants else \
                        f"new argument signature {describe(tree)}; known: " + \
                        ", ".join(describe(t) for t in self._variants)
                    first = not self._variants
                    logs.retrace(self.name, reason)
                    group = [self.make(args() if callable(args) else args, describe(tree))]
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
        self.lookup(tree, args)
        group = self._variants[tree]
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
