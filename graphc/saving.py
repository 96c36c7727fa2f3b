"""``graphc.save`` and ``graphc.load``: a model's architecture and numbers in a NumPy ``.npz``.

The file is a zip of ``.npy`` arrays that ``np.load(path, allow_pickle=False)`` also opens:
``__graphc__`` holds a JSON header -- format, version, the class (``MLP``, ``Layer`` or
``Neuron``) and the arguments that rebuild it -- and every other member is one entry of the
model's :meth:`~graphc.nn.Module.state_dict`, as float64.  No code and no pickle is ever
stored or read.  ``load`` trusts nothing in the file: it reads the header as JSON and checks
it against the known classes and argument types, refuses a model of more than ``max_params``
params before building it, and checks every array's header (float64, exactly the shape
the model implies) before reading its data, so a hostile file costs no more memory than an
honest one of that size.  Anything amiss raises :class:`~graphc.errors.LoadError`.
"""
from __future__ import annotations

import errno
import json
import math
import os
import secrets
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArgumentError, LoadError
from .nn import MLP, Layer, Module, Neuron

FORMAT, VERSION = "graphc.save", 1
HEADER = "__graphc__"
#: The header is a small JSON text; a longer one is not graphc's.
MAX_HEADER_BYTES = 1 << 20
#: Each class ``save`` knows -> its constructor arguments and their JSON types.
ARCHITECTURES = {
    "MLP": {"nin": int, "nouts": list, "activation": str},
    "Layer": {"nin": int, "nout": int, "nonlin": bool, "activation": str},
    "Neuron": {"nin": int, "nonlin": bool, "activation": str},
}
_READ_HEADER = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def save(model: Module, path: str | os.PathLike) -> None:
    """Write ``model`` (an ``MLP``, ``Layer`` or ``Neuron``) to ``path`` as one ``.npz`` file:
    its class, the arguments that rebuild it and its :meth:`~graphc.nn.Module.state_dict`.

    The file appears whole or not at all (written aside, then renamed over the old one:
    a new file, with the old one's permissions, else those the umask gives a new file);
    a symbolic link is followed, its target written.  For a Module of your own
    class, save ``model.state_dict()`` (e.g. with ``np.savez``) and load it into a model
    your code builds: a file cannot safely say how to build an arbitrary class.
    """
    header = {"format": FORMAT, "version": VERSION, "class": type(model).__name__, "config": _config(model)}
    arrays = {HEADER: np.array(json.dumps(header)), **model.state_dict()}
    asked = Path(path)
    path = Path(os.path.realpath(asked))
    if path.is_dir():  # os.replace would name the file written aside in its error
        raise IsADirectoryError(errno.EISDIR, f"cannot write {asked}: it is a directory", str(asked))
    try:
        handle, temporary = _create_aside(path)
    except OSError as error:  # named after the path asked for, not the file written aside
        raise type(error)(error.errno, f"cannot write {asked}: {error.strerror}", str(asked.parent)) from None
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _create_aside(path: Path) -> tuple[int, Path]:
    """A new file beside ``path`` to write, open: with ``path``'s permissions if it exists,
    else created with mode 0o666, which the umask then narrows (``tempfile.mkstemp``'s
    0o600 would leave a saved model unreadable to the group sharing its folder).  Nothing
    is left behind when the permissions cannot be set."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    for _ in range(100):
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        try:
            if mode is not None and hasattr(os, "fchmod"):  # not on Windows, nor a file system without modes
                os.fchmod(handle, mode)
        except OSError:
            os.close(handle)
            os.unlink(temporary)
            raise
        return handle, temporary
    raise FileExistsError(errno.EEXIST, "no unused name for the file written aside", str(path.parent))


def load(path: str | os.PathLike, *, max_params: int = 10_000_000) -> Module:
    """The model :func:`save` wrote to ``path``, rebuilt with its numbers bit for bit.

    Raises :class:`~graphc.errors.LoadError` for a file that is not one ``save`` wrote --
    garbage, truncated, a pickle, unknown classes, wrong shapes or dtypes, extra members --
    or a model of more than ``max_params`` params; ``random``'s state is left alone.
    """
    if not isinstance(path, (str, bytes, os.PathLike)):  # open() would take an int as a file descriptor, and close it
        raise ArgumentError(f"graphc.load takes a path (str, bytes or os.PathLike); got {type(path).__name__} "
                            f"{path!r:.60}")
    if isinstance(max_params, bool) or not isinstance(max_params, (int, np.integer)) or max_params < 0:
        raise ArgumentError(f"graphc.load: max_params must be an int >= 0; got {type(max_params).__name__} "
                            f"{max_params!r:.60}")
    with open(path, "rb") as file:
        try:
            with zipfile.ZipFile(file) as archive:
                return _read(archive, max_params)
        except LoadError as error:
            raise LoadError(f"graphc.load({str(path)!r}): {error}"[:800]) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, TypeError, RuntimeError) as error:
            raise LoadError(f"graphc.load({str(path)!r}): not a file graphc.save wrote ({type(error).__name__}: "
                            f"{error})"[:800]) from None


def _config(model: Module) -> dict[str, Any]:
    """The constructor arguments that rebuild ``model``, checked to rebuild exactly it."""
    if type(model) not in (MLP, Layer, Neuron):
        raise ArgumentError(f"graphc.save stores an MLP, a Layer or a Neuron; got {type(model).__name__} "
                            f"(save its state_dict() instead, and load that into a model you build)")
    layers = model.layers if isinstance(model, MLP) else [model] if isinstance(model, Layer) else []
    parts = [*layers, *(n for layer in layers for n in layer.neurons)]
    foreign = next((m for m in parts if type(m) not in (Layer, Neuron)), None)
    if foreign is not None:  # a subclass's repr is its base's: it reloaded as the base, silently (an outside hunt)
        raise ArgumentError(f"graphc.save stores an MLP, a Layer or a Neuron built by graphc.nn; this "
                            f"{type(model).__name__} holds a {type(foreign).__name__} (save its state_dict() "
                            f"instead, and load that into a model you build)")
    first_layer = model.layers[0] if isinstance(model, MLP) else model
    neuron = model if isinstance(model, Neuron) else first_layer.neurons[0]
    config: dict[str, Any] = {"nin": len(neuron.w), "activation": neuron.activation}
    if isinstance(model, MLP):
        config["nouts"] = [len(layer.neurons) for layer in model.layers]
    else:
        config["nonlin"] = neuron.nonlin
        if isinstance(model, Layer):
            config["nout"] = len(model.neurons)
    if repr(_build(type(model).__name__, config)) != repr(model):  # the repr shows every neuron's kind and size
        raise ArgumentError(f"graphc.save: this {type(model).__name__} was changed after it was built, so its "
                            f"constructor arguments cannot rebuild it: {model!r}"[:300])
    params = model.parameters()
    tied = len({id(p) for p in params}) < len(params)
    if tied or any(p._prev for p in params):  # the repr does not show it: reloaded untied, silently (an outside hunt)
        raise ArgumentError(f"graphc.save: this {type(model).__name__} holds "
                            f"{'one param in several places (tied weights)' if tied else 'a computed Value as a param'}, "
                            f"which its constructor does not build (save its state_dict() instead, and load that "
                            f"into a model you build and tie)")
    return config


def _build(name: str, config: dict[str, Any]) -> Module:
    """A model of class ``name`` with all params 0, built without drawing random numbers."""
    if name == "Neuron":
        return Neuron(config["nin"], config["nonlin"], activation=config["activation"], w=[0.0] * config["nin"])
    if name == "Layer":
        return Layer(config["nin"], config["nout"], init=_zeros, nonlin=config["nonlin"],
                     activation=config["activation"])
    return MLP(config["nin"], config["nouts"], activation=config["activation"], init=_zeros)


def _zeros(fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((fan_in, fan_out)), np.zeros(fan_out)


def _read(archive: zipfile.ZipFile, max_params: int) -> Module:
    names = archive.namelist()
    if len(names) != len(set(names)) or f"{HEADER}.npy" not in names:
        raise LoadError(f"not a file graphc.save wrote: expected a {HEADER} member and no duplicates; "
                        f"found {', '.join(names)}")
    header = _read_member(archive, HEADER, None)
    name, config = _checked_header(header)
    count = _param_count(name, config)
    if count > max_params:
        raise LoadError(f"the file describes a {name} of {count:,} params, over max_params={max_params:,}")
    try:
        model = _build(name, config)
    except (TypeError, ValueError) as error:
        raise LoadError(f"the header's {name} arguments {config} do not build one: {error}") from None
    shapes = {key: value.shape for key, value in model.state_dict().items()}
    expected = {f"{HEADER}.npy", *(f"{key}.npy" for key in shapes)}
    if set(names) != expected:
        raise LoadError(f"a {name} has members {', '.join(sorted(expected))}; the file has "
                        f"{', '.join(sorted(names))}")
    model.load_state_dict({key: _read_member(archive, key, shape) for key, shape in shapes.items()})
    return model


def _read_member(archive: zipfile.ZipFile, key: str, shape: tuple[int, ...] | None) -> Any:
    """One ``.npy`` member: a float64 array of ``shape``, or (``shape`` None) the header text.
    Its header is checked before any data is read."""
    with archive.open(f"{key}.npy") as member:
        read_header = _READ_HEADER.get(np.lib.format.read_magic(member))
        if read_header is None:
            raise LoadError(f"{key}: an .npy version graphc.save does not write")
        found, fortran_order, dtype = read_header(member)
        if shape is None:
            if dtype.kind != "U" or found != () or dtype.itemsize > MAX_HEADER_BYTES:
                raise LoadError(f"{key}: expected a JSON text; found dtype {dtype}, shape {found}")
        elif dtype != np.dtype("<f8") or found != shape:
            raise LoadError(f"{key}: expected float64 of shape {shape}; found {dtype} of shape {found}")
        size = math.prod(found) * dtype.itemsize
        data = member.read(size + 1)
    if len(data) != size:
        raise LoadError(f"{key}: expected {size} bytes of data; found {len(data)}")
    array = np.frombuffer(data, dtype=dtype).reshape(found, order="F" if fortran_order else "C")
    return str(array[()]) if shape is None else array


def _checked_header(text: str) -> tuple[str, dict[str, Any]]:
    """The class name and constructor arguments, if the header is what ``save`` writes."""
    try:
        header = json.loads(text)
    except ValueError:
        raise LoadError(f"{HEADER} is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise LoadError("not a file graphc.save wrote (its header lacks the format mark)")
    if type(header.get("version")) is not int or header["version"] != VERSION:  # JSON's true is no version 1
        raise LoadError(f"format version {header.get('version')!r}; this graphc reads version {VERSION}")
    name, config = header.get("class"), header.get("config")
    if name not in ARCHITECTURES:
        raise LoadError(f"unknown class {name!r}: graphc.load rebuilds {', '.join(ARCHITECTURES)}"[:300])
    types = ARCHITECTURES[name]
    if not isinstance(config, dict) or set(config) != set(types) or \
            any(type(config[arg]) is not kind for arg, kind in types.items()) or \
            any(type(n) is not int for n in config.get("nouts", [])):
        raise LoadError(f"the {name} arguments must be {', '.join(f'{a} ({t.__name__})' for a, t in types.items())}"
                        f"; found {config!r}"[:400])
    return name, config


def _param_count(name: str, config: dict[str, Any]) -> int:
    """How many params the model has, computed from its arguments before building it."""
    if name == "Neuron":
        return config["nin"] + 1
    if name == "Layer":
        return (config["nin"] + 1) * config["nout"]
    sizes = [config["nin"], *config["nouts"]]
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))
