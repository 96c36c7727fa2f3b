"""Argument handling for exported modules: nested arguments to flat floats, and back.

:func:`graphc.export` copies this module's source (without this docstring) into every
exported module, next to :mod:`graphc.runtime`, so it imports nothing at all.  Trees are
:mod:`graphc.tree`'s: ``'scalar'``, ``('list', (...))``, ``('tuple', (...))``,
``('dict', ((key, tree), ...))`` (results only), ``('namedtuple', (cls, (...)))`` -- in an
exported module ``cls`` is :func:`_namedtuple`'s class of the same name and fields, as the
module cannot import the user's -- and ``('array', shape)``; an array argument may be a
NumPy array (anything with ``tolist``) or nested lists, and array gradients come back as
nested lists.
"""
import collections
import numbers


class _Namedtuples:
    """The namedtuple classes of this module's results, as attributes, where pickle finds
    them (by their ``__qualname__``)."""


def _namedtuple(name, fields):
    """One class per name and fields: an exported result's namedtuple, with the user's
    class's name and fields (and a namedtuple argument's gradients)."""
    attribute = f"{name}({','.join(fields)})"  # unique per name and fields; any text but "." finds it
    cls = getattr(_Namedtuples, attribute, None)
    if cls is None:
        cls = collections.namedtuple(name, fields)
        cls.__qualname__ = f"_Namedtuples.{attribute}"
        setattr(_Namedtuples, attribute, cls)
    return cls


def _what(x, limit=40):
    """``x`` for an error message: its type and the start of its repr."""
    text = repr(x)
    return f"{type(x).__name__} {text[:limit]}{'...' if len(text) > limit else ''}"


def _number(x, path):
    if isinstance(x, (str, bytes, list, tuple, dict)) or x is None:
        raise TypeError(f"argument {path}: expected a number; got {_what(x)}")
    try:
        y = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"argument {path}: expected a number; got {_what(x)}") from None
    except OverflowError:  # 10**400
        y = None
    if y is None or (y - y != 0.0 and abs(x) < float("inf")):  # or np.longdouble('1e400'): float() says inf
        raise ValueError(f"argument {path}: expected a number that fits in a float (|x| < 1.8e308); got {_what(x)}")
    return y


def _flatten(tree, x, path, out, integral):
    if tree == "scalar":
        out.append(_number(x, path))
        integral.append(isinstance(x, numbers.Integral))
        return
    kind, spec = tree
    if kind == "array":
        _flatten_array(spec, x.tolist() if hasattr(x, "tolist") else x, path, out, integral)
        return
    if kind == "namedtuple":  # any tuple of its length, as graphc takes a tuple in its place
        kind, spec = "tuple", spec[1]
    if not isinstance(x, (list, tuple)) or len(x) != len(spec):
        raise TypeError(f"argument {path}: expected a {kind} of {len(spec)} item(s); got {_what(x)}")
    for i, (item_tree, item) in enumerate(zip(spec, x)):
        _flatten(item_tree, item, f"{path}[{i}]", out, integral)


def _flatten_array(shape, x, path, out, integral):
    if not shape:
        out.append(_number(x, path))
        integral.append(isinstance(x, numbers.Integral))
        return
    if not isinstance(x, (list, tuple)) or len(x) != shape[0]:
        raise ValueError(f"argument {path}: expected an array of shape {tuple(shape)}; got {_what(x)}")
    for i, item in enumerate(x):
        _flatten_array(shape[1:], item, f"{path}[{i}]", out, integral)


def _flatten_args(in_tree, args, names, ints=()):
    """The arguments' numbers in graph input order; TypeError/ValueError naming a bad one.
    ``ints``: ``(k, path)`` for each number the trace relied on being an int (an int
    product's +0.0, an index): a float there is a ValueError, as the module computes the
    int's case alone."""
    spec = in_tree[1]
    if len(args) != len(spec):
        raise TypeError(f"expected {len(spec)} argument(s) ({', '.join(names)}); got {len(args)}")
    out, integral = [], []
    for tree, arg, name in zip(spec, args, names):
        _flatten(tree, arg, name, out, integral)
    for k, path in ints:
        if not integral[k]:
            raise ValueError(f"argument {path} is a float where the trace relied on its being an int: the module "
                             f"computes that case alone; export again after a call with such arguments")
    return out


def _unflatten(tree, leaves, rows=list):
    """The structure ``tree`` filled from the iterator ``leaves`` (arrays as nested lists,
    each of type ``rows``)."""
    if tree == "scalar":
        return next(leaves)
    kind, spec = tree
    if kind == "array":
        return _nested(spec, leaves, rows)
    if kind == "none":
        return None
    if kind == "dict":
        return {key: _unflatten(t, leaves, rows) for key, t in spec}
    if kind == "namedtuple":  # (its class, its fields' trees): _make, not cls(), which may coerce
        cls, fields = spec
        return cls._make([_unflatten(t, leaves, rows) for t in fields])
    items = [_unflatten(t, leaves, rows) for t in spec]
    return items if kind == "list" else tuple(items)


def _nested(shape, leaves, rows=list):
    if not shape:
        return next(leaves)
    return rows([_nested(shape[1:], leaves, rows) for _ in range(shape[0])])


def _check_params(params, expected):
    values = [_number(p, f"params[{k}]") for k, p in enumerate(params)]
    if len(values) != expected:
        raise ValueError(f"expected {expected} param value(s), as in PARAMS; got {len(values)}")
    return values
