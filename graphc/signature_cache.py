"""The per-signature cache of a compiled function: one trace per argument signature.

An argument signature is the structure and sizes of the arguments (see
:func:`graphc.tree.flatten_args`); the first call with a new one traces and compiles a
:class:`~graphc.signature.Signature`, and the reason is logged (``GRAPHC_LOGS=retraces``).
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Callable, Iterator

from . import logs
from .signature import Signature
from .tree import describe


class SignatureCache(Mapping):
    """Argument signature -> :class:`Signature`, made on first sight, once (threads racing
    for a new signature trace it once).  ``trace_count`` counts the traces, ``latest`` is
    the signature of the latest call (None before the first)."""

    def __init__(self, name: str, make: Callable[[tuple, str], Signature]) -> None:
        self.name, self._make = name, make
        self._signatures: dict[Any, Signature] = {}
        self._lock = threading.RLock()
        self.trace_count = 0
        self.latest: Signature | None = None

    def __getitem__(self, tree: Any) -> Signature:
        return self._signatures[tree]

    def __iter__(self) -> Iterator:
        return iter(self._signatures)

    def __len__(self) -> int:
        return len(self._signatures)

    def lookup(self, tree: Any, args: tuple | Callable[[], tuple]) -> Signature:
        """The signature of arguments described by ``tree``: cached, or traced on ``args``
        (example arguments, or a function giving them) and cached."""
        signature = self._signatures.get(tree)
        if signature is None:
            with self._lock:
                signature = self._signatures.get(tree)
                if signature is None:
                    reason = "first call" if not self._signatures else \
                        f"new argument signature {describe(tree)}; known: " + \
                        ", ".join(describe(t) for t in self._signatures)
                    logs.retrace(self.name, reason)
                    signature = self._make(args() if callable(args) else args, describe(tree))
                    self._signatures[tree] = signature
                    self.trace_count += 1
        self.latest = signature
        return signature
