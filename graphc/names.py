"""Turning user text (labels, argument names) into safe, unique, readable identifiers.

Generated code never contains user text: every name in it passes through
:class:`Namespace`, which keeps only ASCII letters, digits and underscores, avoids Python
keywords, builtins and the names graphc's own code uses, and adds ``_1``, ``_2`` suffixes
until the name is unique (the torch.fx approach).
"""
from __future__ import annotations

import builtins
import keyword
import re
from operator import itemgetter

_ILLEGAL = re.compile(r"[^A-Za-z0-9]+")  # runs of anything else, underscores included
_ILLEGAL_KEEPING_NUL = re.compile(r"[^A-Za-z0-9\x00]+")  # the same, texts joined by NUL
MAX_LENGTH = 40
#: Every ASCII character the regexes above replace, to "_" (runs are then made one).
_ASCII_ILLEGAL = {c: "_" for c in range(128) if not (chr(c).isalnum() or c == 0)}
_BAD_STARTS = frozenset("0123456789_")  # what no name starts with
_RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))


def sanitize(text: str, fallback: str = "v") -> str:
    """A legal identifier resembling ``text``: ``'L0.N3.w1'`` -> ``'L0_N3_w1'``."""
    return _base(_ILLEGAL.sub("_", str(text)), fallback)


def sanitize_all(texts: list[str], fallback: str = "v") -> list[str]:
    """:func:`sanitize` of each of ``texts``, in bulk: one pass over them all (a table's
    when they are ASCII), then a look for a name that needs more (``L0.N3.w1`` does not)."""
    joined = "\x00".join(texts)
    if joined.count("\x00") != len(texts) - 1:  # a text holds NUL itself
        return [sanitize(text, fallback) for text in texts]
    if joined.isascii():  # 15x faster than the regex substitution for MNIST's 79,510 labels
        substituted = joined.translate(_ASCII_ILLEGAL)
        while "__" in substituted:
            substituted = substituted.replace("__", "_")
    else:
        substituted = _ILLEGAL_KEEPING_NUL.sub("_", joined)
    names = substituted.split("\x00")
    lengths = list(map(len, names))
    if min(lengths) == 0 or max(lengths) > MAX_LENGTH or substituted.endswith("_") or "_\x00" in substituted \
            or not _BAD_STARTS.isdisjoint(map(itemgetter(0), names)):  # some name needs more
        return [_base(name, fallback) for name in names]
    return names


def _base(substituted: str, fallback: str) -> str:
    """:func:`sanitize` after its substitution."""
    name = substituted.strip("_")[:MAX_LENGTH].rstrip("_")
    if not name:
        name = fallback
    if name[0].isdigit():
        name = f"{fallback}{name}"
    return name


class Namespace:
    """Hands out unique identifiers; names starting with ``_`` are reserved for graphc."""

    def __init__(self, reserved: frozenset[str] | set[str] = frozenset()) -> None:
        self._taken = set(_RESERVED) | set(reserved)
        self._suffix: dict[str, int] = {}  # per base, the suffix its last unique name took

    def create(self, text: str, fallback: str = "v") -> str:
        if text.isalnum() and text.isascii() and not text[0].isdigit() and len(text) <= MAX_LENGTH \
                and text not in self._taken:  # already its own sanitized form, and free (``v123``)
            self._taken.add(text)
            return text
        base = sanitize(text, fallback)  # never starts with "_"
        return self._unique(base)

    def create_all(self, texts: list[str], fallback: str = "v") -> list[str]:
        """:meth:`create` for each of ``texts``, in order (the same names), in bulk where it
        can: :func:`sanitize_all`, then :meth:`create_plain`."""
        if len(texts) < 2:
            return [self.create(text, fallback) for text in texts]
        return self.create_plain(sanitize_all(texts, fallback))

    def create_plain(self, texts: list[str]) -> list[str]:
        """:meth:`create` for each of ``texts`` that are already legal identifiers (``v12``,
        or what :func:`sanitize_all` gives): the bulk path for one name per node."""
        taken = self._taken
        if taken.isdisjoint(texts):  # the usual case, checked in bulk
            size = len(taken)
            taken.update(texts)
            if len(taken) == size + len(texts):  # no text repeats another
                return list(texts)
            taken.difference_update(texts)  # (none of them was taken before)
        out = []
        for text in texts:
            if text in taken:
                text = self._unique(text)
            else:
                taken.add(text)
            out.append(text)
        return out

    def _unique(self, base: str) -> str:
        """``base``, else ``base_k`` for the least free k: names are never given back, so the
        search resumes where the last one for ``base`` stopped (from 1 it was quadratic: 89 s
        for 70,000 params labelled alike)."""
        k = self._suffix.get(base, 0)
        name = base if k == 0 else f"{base}_{k}"
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        self._suffix[base] = k
        return name
