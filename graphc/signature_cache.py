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

from collections.abc import Mapping
from typing import Any, Callable, Iterator, NamedTuple

from . import forksafe, logs, variants
from .bridge import call as bridge_call
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
        self.lock = forksafe.RLock()
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
        :class:`SharedKey`."""
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

    def call(self, tree: Any, args: tuple, leaves: list, value_slots: list[int]) -> Any:
        """The compiled function's outputs on flat arguments ``leaves``, from the variant of
        their signature whose guards hold (a retrace when none does); ``value_slots``: where
        ``leaves`` holds Values (:func:`graphc.tree.flatten_call`)."""
        key = self._key_sharing(tree, args, leaves, value_slots) if value_slots else tree
        self.lookup(key, args)
        group = self._variants[key]
        result, failure = variants.first_that_holds(group, leaves, bridge_call, self.lock, value_slots)
        if failure is not None:
            result = variants.retrace(self, group, args, leaves, bridge_call, failure, value_slots)
        self.latest = group[0]
        return result

    def _key_sharing(self, tree: Any, args: tuple, leaves: list, value_slots: list[int]) -> Any:
        """The key of a call with Value arguments (at ``value_slots``): ``tree``, or a
        :class:`SharedKey` where a Value is passed twice, or is a param of the signature too
        (whose :meth:`lookup` this makes, with what to share)."""
        ids = [id(leaves[j]) for j in value_slots]
        group = self._variants.get(tree)
        if group is not None and len(group) == 1 and group[0].param_ids.isdisjoint(ids) and \
                (len(ids) == 1 or len(set(ids)) == len(ids)):  # the usual case, at once
            return tree
        shared = _repeated(value_slots, leaves) if len(set(ids)) < len(ids) else {}
        key = SharedKey(tree, _key(shared, leaves)) if shared else tree
        group = self._variants.get(key) or [self.lookup(key, args, shared)]
        params_ids = group[0].param_ids if len(group) == 1 else frozenset().union(*(s.param_ids for s in group))
        params = [j for j in value_slots if id(leaves[j]) in params_ids and j not in shared]
        if params:  # the param itself at its first slot, and at every slot repeating that one
            own = set(params)
            shared = {**{j: None if i in own else i for j, i in shared.items()}, **dict.fromkeys(params)}
            key = SharedKey(tree, _key(shared, leaves))
            self.lookup(key, args, shared)
        return key

    def count_trace(self, reason: str, first: bool = False) -> None:
        """Count a trace that succeeded; every trace after the first goes in ``retraces``."""
        if not first:
            self.retraces.append(reason)
        self.trace_count += 1


def _repeated(value_slots: list[int], leaves: list) -> dict[int, int]:
    """Each leaf of ``value_slots`` (the argument leaves that are Values) whose Value an
    earlier leaf is too -> that leaf.  A Value met twice is traced as one (see
    :func:`graphc.trace.trace_with_record`'s ``shared``): reverse mode then adds its uses in
    eager ``backward()``'s order, where two inputs' totals, each added into its ``.grad``,
    can differ in the last bit (an outside hunt: ``f(a, a)``)."""
    seen: dict[int, int] = {}
    repeated: dict[int, int] = {}
    for j in value_slots:
        first = seen.setdefault(id(leaves[j]), j)
        if first != j:
            repeated[j] = first
    return repeated


def _key(shared: dict[int, int | None], leaves: list) -> tuple:
    """The part of a signature's key ``shared`` adds: a param by its Value's identity (the
    signature keeps the Value, so the id stays its own)."""
    return tuple(sorted((j, ("param", id(leaves[j])) if i is None else i) for j, i in shared.items()))


def describe_key(key: Any) -> str:
    """:func:`graphc.tree.describe` of a key of the cache."""
    if isinstance(key, SharedKey):
        shared = ", ".join(f"leaf {j} is {'a param' if isinstance(i, tuple) else f'leaf {i}'}" for j, i in key.shared)
        return f"{describe(key.tree)} with {shared}"
    return describe(key)
