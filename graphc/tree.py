"""Argument and output structures: flatten nested lists, tuples, dicts and arrays of scalars, and back.

A *tree* is a hashable description of a structure, so it doubles as the compile cache
key ("signature"):

* ``SCALAR`` -- an int, float, NumPy scalar or Value (all share a signature);
* ``("list", (t0, t1, ...))`` and ``("tuple", (...))`` -- a list or tuple of trees;
* ``("dict", ((key0, t0), (key1, t1), ...))`` -- in a traced function's result only (the
  public contract refuses dict arguments): a dict with str keys, its items in sorted key
  order, as JAX flattens a dict; it comes back as a dict;
* ``("namedtuple", (cls, (t0, t1, ...)))`` -- a ``collections.namedtuple`` (or
  ``typing.NamedTuple``) instance, which comes back as one of ``cls``;
* ``("array", shape)`` -- a NumPy array of numbers; a traced function receives it as
  nested lists of Values of that shape (:class:`ArrayRows`);
* ``NONE`` -- ``None`` in a traced function's result (``return loss, None``), an empty
  structure as in JAX's pytrees; it comes back as None.
"""
from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Callable, Iterator

import numpy as np

from . import standalone  # the structure helpers exported modules carry: one definition of each
from .engine import Value, _to_float
from .errors import ArgumentError, DataError, TraceError

SCALAR = "scalar"
NONE = ("none", ())
Tree = Any  # SCALAR | tuple[str, tuple]

_EXPECTED = "a number, a Value, a NumPy array of numbers, or a list/tuple of those"
#: Deeper nesting is refused (it would exhaust Python's stack; a list containing itself is
#: infinitely deep): far more than any real argument needs.
MAX_NESTING = 100


def flatten_args(args: tuple, names: list[str]) -> tuple[list, Tree, list[str]]:
    """Leaves (numbers, Values), the tree, and a path name per leaf (``X[3][1]``).

    Raises :class:`ArgumentError` naming the offending argument and what was expected.
    """
    leaves: list = []
    paths: list[str] = []
    trees = []
    for arg, name in zip(args, names):
        trees.append(_flatten(arg, name, leaves, paths, 0))
    return leaves, ("tuple", tuple(trees)), paths


def flatten_call(args: tuple, names: list[str]) -> tuple[list, Tree, list[int]]:
    """:func:`flatten_args` for a call: no path names (only a trace needs them, and an
    array's cost 1 us a number), and the positions of the Values among the leaves, noted as
    they come (an array holds none): micrograd's demo loss with 1,000 rows passed in spent
    1.7 of its 2.4 ms a step on the two."""
    leaves: list = []
    value_slots = _ValueSlots(leaves)
    trees = []
    for arg, name in zip(args, names):
        trees.append(_flatten(arg, name, leaves, value_slots, 0))
    return leaves, ("tuple", tuple(trees)), list(value_slots)


def _flatten(x: Any, path: str, leaves: list, paths: list, depth: int) -> Tree:
    if isinstance(x, Value) or (isinstance(x, (numbers.Real, np.bool_)) and not isinstance(x, np.ndarray)):
        if not isinstance(x, (float, Value)):
            _to_float(x, f"argument {path}")  # 10**400 is a number, but no float
        leaves.append(x)
        paths.append(path)
        return SCALAR
    if isinstance(x, np.ndarray):
        leaves.extend(plain_array(x, f"argument {path}").ravel().tolist())
        paths.extend(_array_paths(path, x.shape))
        return ("array", x.shape)
    if isinstance(x, (list, tuple)):  # not a dict: the public contract refuses dict arguments
        _check_depth(depth, path, "argument")
        return _container(x, path, lambda item, where: _flatten(item, where, leaves, paths, depth + 1))
    if is_foreign_value(x):
        raise ArgumentError(foreign_value_message(x, f"argument {path}"))
    raise ArgumentError(f"argument {path}: expected {_EXPECTED}; got {standalone._what(x, 60)}")


def _array_paths(path: str, shape: tuple) -> Iterator[str]:
    """Each element's path in an array argument (``X[3][1]``), made only as they are read."""
    for idx in np.ndindex(shape):
        yield f"{path}{''.join(f'[{i}]' for i in idx)}"


class _ValueSlots(list):
    """Stands in for the paths :func:`_flatten` appends a scalar leaf's to: notes the
    position of each leaf that is a Value instead."""

    def __init__(self, leaves: list) -> None:
        super().__init__()
        self.leaves = leaves

    def append(self, path: str) -> None:
        if isinstance(self.leaves[-1], Value):
            super().append(len(self.leaves) - 1)

    def extend(self, paths: Any) -> None:
        """An array's paths: not made (the generator is never run): its leaves are numbers."""


def numbers_array(value: Any) -> np.ndarray | None:
    """``value`` as an ndarray (one given as it is, so that :func:`plain_array` still sees
    its mask), numbers held as Python objects (a pandas column's ``.values``, an int too
    large for int64) as float64; None where NumPy cannot read it as an array (ragged).
    OverflowError for such an int too large for a float."""
    try:
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
    except Exception:  # ragged (TypeError, ValueError), or a torch tensor that requires grad (RuntimeError)
        return None
    if array.dtype == object and all(
            isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in array.flat):
        return array.astype(np.float64)
    return array


def plain_array(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` as a plain ndarray of numbers that fit in a float, refusing what graphc would
    lose silently: a mask (the numbers under it would be computed with), and finite numbers
    too large for a float (a ``np.longdouble`` array holds 1e400; as float64 it is inf).
    Wider-than-float64 floats come back as float64."""
    if array.dtype.kind not in "biuf":
        raise ArgumentError(f"{what}: expected an array of numbers, got dtype {array.dtype}")
    if np.ma.is_masked(array):
        raise ArgumentError(f"{what}: a masked array with masked entries (graphc would compute with the "
                            f"numbers under the mask); fill them first (e.g. array.filled(0.0)) or drop those rows")
    array = np.asarray(array)
    if array.dtype.kind != "f" or array.dtype.itemsize <= 8:
        return array
    with np.errstate(over="ignore"):
        converted = array.astype(np.float64)
    overflowed = np.isinf(converted) & np.isfinite(array)
    if overflowed.any():
        bad = tuple(int(i) for i in np.argwhere(overflowed)[0])
        raise DataError(f"{what}: expected real numbers that fit in a float (|x| < 1.8e308); "
                        f"item {list(bad)} is {array.dtype} {array[bad]!s}")
    return converted


def tree_leaves(tree: Any) -> int | None:
    """How many scalars ``tree`` holds, or None if it is no tree (a graph read back from
    networkx carries whatever its ``in_tree`` and ``out_tree`` were set to)."""
    count, stack = 0, [tree]
    while stack:
        t = stack.pop()
        if t == SCALAR:
            count += 1
            continue
        if not (isinstance(t, tuple) and len(t) == 2 and isinstance(t[1], tuple)):
            return None
        kind, spec = t
        if kind in ("list", "tuple"):
            stack.extend(spec)
        elif kind == "dict" and all(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                                    for item in spec) and len({key for key, _ in spec}) == len(spec):
            stack.extend(item for _, item in spec)
        elif kind == "namedtuple" and len(spec) == 2 and is_namedtuple(spec[0]) and isinstance(spec[1], tuple) \
                and len(spec[1]) == len(spec[0]._fields):
            stack.extend(spec[1])
        elif kind == "array" and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in spec):
            count += math.prod(spec)
        elif t == NONE:
            continue
        else:
            return None
    return count


class ArrayRows(list):
    """A NumPy array argument as a traced function receives it: nested lists of Values of
    its shape, each level one of these.  A list's ``+`` and ``*`` concatenate and repeat,
    where the array's add and multiply each element -- ``X * 2`` gave twice the rows, not
    the rows doubled (an outside hunt) -- so they are refused, with what to write instead;
    so is the arithmetic a list lacks (``row / 3.0``, ``row - 1.0``, ``-row``, ``row ** 2``),
    whose TypeError named this class."""

    __slots__ = ()

    def _refused(self, other: Any = None) -> Any:
        raise TraceError("a NumPy array argument reaches the traced function as nested lists of Values, "
                         "whose + and * concatenate and repeat lists (and - / ** do not exist) instead of "
                         "computing with each element: compute with each element ([v * 2 for v in row]), "
                         "or pass the array computed as an argument too")

    __add__ = __radd__ = __iadd__ = __mul__ = __rmul__ = __imul__ = _refused
    __sub__ = __rsub__ = __truediv__ = __rtruediv__ = __pow__ = __neg__ = __matmul__ = __rmatmul__ = _refused


def unflatten(tree: Tree, leaves: Iterator, rows: type = list) -> Any:
    """Rebuild a structure from an iterator of leaves (arrays come back as nested lists, each
    of type ``rows``: :class:`ArrayRows` for a traced function's arguments)."""
    return standalone._unflatten(tree, leaves, rows)  # one definition, shared with exported modules


def flatten_output(out: Any) -> tuple[list, Tree]:
    """Leaves and tree of a traced function's result: Values or numbers in lists, tuples and dicts."""
    leaves: list = []
    return leaves, _output_tree(out, "its result", 0, leaves)


def _output_tree(x: Any, path: str, depth: int, leaves: list) -> Tree:
    """:func:`flatten_output` of ``x``, its leaves appended to ``leaves``.  A function of the
    module, not a closure: a recursive closure is a reference cycle, which would keep the
    traced Values alive until the paused collector ran (see Record.count_kept)."""
    if isinstance(x, Value) or (isinstance(x, (numbers.Real, np.bool_)) and not isinstance(x, np.ndarray)):
        if not isinstance(x, (float, Value)):
            _to_float(x, f"{path} of the traced function")
        leaves.append(x)
        return SCALAR
    if x is None:
        return NONE
    if isinstance(x, (list, tuple, dict)):
        _check_depth(depth, path, "the traced function returned", TraceError,
                     "a Value, a number, or a list/tuple/dict of those")
        return _container(x, path, lambda item, where: _output_tree(item, where, depth + 1, leaves))
    if is_foreign_value(x):
        raise TraceError(foreign_value_message(x, path))
    raise TraceError(f"the traced function must return a Value, a number, None, or a list/tuple/dict of "
                     f"those; {path} is {standalone._what(x, 60)}")


def _container(x: list | tuple | dict, path: str, flatten: Callable[[Any, str], Tree]) -> Tree:
    """The tree of a list, tuple, namedtuple or dict, its items flattened by ``flatten(item,
    path)`` in order (a dict's in sorted key order, as JAX's pytrees)."""
    if isinstance(x, dict):
        if not all(isinstance(key, str) for key in x):
            bad = next(key for key in x if not isinstance(key, str))
            raise TraceError(f"{path}: a dict's keys must be str (graphc sorts them, and writes them in "
                             f"exported code); got key {standalone._what(bad)}")
        return ("dict", tuple((key, flatten(item, f"{path}[{key!a}]")) for key, item in sorted_items(x)))
    items = tuple(flatten(item, f"{path}[{i}]") for i, item in enumerate(x))
    if isinstance(x, tuple) and is_namedtuple(type(x)):
        return ("namedtuple", (type(x), items))
    return ("list" if isinstance(x, list) else "tuple", items)


def sorted_items(x: dict) -> list[tuple[str, Any]]:
    """A result dict's items in the order its tree holds them: sorted by key, each key a
    plain str (no subclass's ``__str__`` or ``__lt__`` changes it or the order)."""
    return sorted(((str.__str__(key), item) for key, item in x.items()), key=operator.itemgetter(0))


def is_namedtuple(cls: type) -> bool:
    """A ``collections.namedtuple`` class: a tuple whose ``_fields`` are its items' names."""
    fields = getattr(cls, "_fields", None)
    return isinstance(cls, type) and issubclass(cls, tuple) and isinstance(fields, tuple) \
        and all(isinstance(f, str) for f in fields) and hasattr(cls, "_make")


def is_foreign_value(x: Any) -> bool:
    """Whether ``x`` looks like another autograd library's Value (micrograd's, a tensor): it
    has ``.data`` and ``._prev`` or ``.grad`` but is no graphc Value.  Used on error paths
    only, to say what went wrong instead of "expected a Value; got Value"."""
    if isinstance(x, (Value, numbers.Number, np.ndarray, str, bytes, list, tuple, dict)):
        return False
    try:
        return hasattr(x, "data") and (hasattr(x, "_prev") or hasattr(x, "grad"))
    except Exception:  # a property that raises something other than AttributeError
        return False


def foreign_value_message(x: Any, where: str) -> str:
    """What to do when another library's Value reaches graphc."""
    kind = type(x)
    if hasattr(x, "__array__") and hasattr(x, "shape"):  # a tensor (torch, JAX): data, most likely
        return (f"{where} is a {kind.__module__}.{kind.__qualname__}: graphc takes data as NumPy arrays and "
                f"numbers; pass np.asarray(x) (x.detach().numpy() for a torch tensor that requires grad).  For a "
                f"model, build it from graphc's drop-ins: `from graphc import Value`, `from graphc.nn import MLP`")
    return (f"{where} is a {kind.__module__}.{kind.__qualname__}, another library's Value: graphc traces "
            f"graphc.Value only. Build the model from graphc's drop-ins instead: `from graphc import Value` "
            f"and `from graphc.nn import MLP` (micrograd's API, and the same weights for the same random.seed)")


def _check_depth(depth: int, path: str, what: str, error: type = ArgumentError,
                 expected: str = _EXPECTED) -> None:
    if depth >= MAX_NESTING:
        raise error(f"{what} {path[:40]}...: structures nested more than {MAX_NESTING} levels deep "
                    f"(a list or dict that contains itself?); expected {expected}")


def describe(tree: Tree) -> str:
    """A short human description of a tree, for retrace messages: ``(array(100, 2), list[3])``."""
    if tree == SCALAR:
        return "scalar"
    kind, spec = tree
    if kind == "array":
        return f"array{spec}"
    if kind == "none":
        return "None"
    if kind == "dict":
        inner = ", ".join(f"{key[:20]!a}: {describe(t)}" for key, t in spec[:4]) + (", ..." if len(spec) > 4 else "")
        return f"{{{inner}}}"
    name = ""
    if kind == "namedtuple":
        cls, spec = spec
        name = cls.__name__
    inner = ", ".join(describe(t) for t in spec[:4]) + (", ..." if len(spec) > 4 else "")
    return f"[{inner}]" if kind == "list" else f"{name}({inner})"
