"""``graphc.export``: a compiled function as a standalone module that needs no graphc.

The module holds the generated forward+gradient code of the latest signature, the IEEE
scalar helpers it calls (:mod:`graphc.runtime`, copied), plain-Python argument handling
(:mod:`graphc.standalone`, copied), the param values at export time as ``PARAMS``, and
two entry points::

    forward(*args, params=PARAMS)         # floats, in the compiled call's output structure
    value_and_grad(*args, params=PARAMS)  # (value, arg_grads, param_grads) of output 0

The module computes the case the trace took: arguments taking another branch of the
function's Python, or a float where the trace relied on an int (an int product, an index),
raise a ValueError.  An int where the trace had a float computes as that float (eager's int
product ``0 * -1`` is 0 where the module's is -0.0).

Backends plug in through :data:`EXPORTERS` (``from graphc.export import EXPORTERS``:
``graphc.export`` is the function): a function from an :class:`ExportPlan` (the graphs,
structures and names, nothing backend-specific) to module text.  The Python exporter is
the one defined here; another backend registers its own.
"""
from __future__ import annotations

import ast
import builtins
import inspect
import keyword
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import runtime, standalone
from ._version import __version__
from .codegen import python as python_backend
from .codegen.common import python_number, tuple_literal
from .compile import Compiled
from .engine import INT_PLACEHOLDER
from .errors import GraphcError
from .graph import Graph
from .names import sanitize
from .trace import argument_names
from .tree import SCALAR, describe

ENTRY = "forward_and_gradient"
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[0-9]+\])*\Z")  # x, X[3][1]: safe to print


@dataclass(frozen=True)
class ExportPlan:
    """What any backend's exporter needs: graphs, structures, names and param values."""

    name: str
    graph: Graph  # the optimized forward graph
    joint: Graph  # forward + gradient of output 0 w.r.t. every input, then every param
    arg_names: list[str]  # one per top-level argument, identifiers
    input_names: list[str]  # one per flat input, e.g. X[3][1]
    param_names: list[str]  # identifiers
    param_values: list[float]
    guards: tuple[float, ...] = ()  # each guard's value at the trace (1.0 or 0.0): outputs after the function's
    ints: tuple[tuple[int, str], ...] = ()  # (input, its path) for each input the trace relied on being an int


def make_plan(compiled: Compiled) -> ExportPlan:
    """The export plan of ``compiled``'s latest signature (it must have been called): its
    graphs as the compiled calls run them (:meth:`Compiled.stages`), numerics included."""
    if compiled._latest is not None and compiled._latest.shared:
        raise GraphcError(
            f"{compiled.name}'s latest call passed one Value as two arguments, or a param as an argument, "
            f"and its signature reads them as one (so its gradients add up as eager's do): a module taking "
            f"the arguments apart would compute something else.  Call it once with distinct arguments "
            f"(numbers, or other Values), then export")
    stages = compiled.stages(0, wrt_inputs=True)
    graph, joint = stages.graph, stages.joint
    n_args = len(graph.in_tree[1])
    names = graph.names
    inputs = [graph.attrs[i][0] if _PATH.match(str(graph.attrs[i][0])) else names[i] for i in graph.inputs]
    return ExportPlan(
        name=compiled.name, graph=graph, joint=joint,
        arg_names=[sanitize(n, "x") for n in argument_names(compiled.fn, n_args)],
        input_names=inputs, param_names=[names[i] for i in graph.params],
        param_values=[p.data for p in graph.param_values], guards=compiled._latest.guards.expected,
        ints=_relied_on_ints(compiled._latest.guards))


def _relied_on_ints(guards: Any) -> tuple[tuple[int, str], ...]:
    """``(input, its path)`` for each input the trace relied on being an int (an int
    product's +0.0, an index), which the module refuses a float for.  Where it relied on a
    float, an int computes as its float (eager's int product of 0 and -1 is 0, the module's
    -0.0 -- the module docstring says so)."""
    return tuple((k, str(path)) for k, (path, kinds) in guards.argument_kinds if kinds and kinds <= {INT_PLACEHOLDER})


def _params_literal(names: list[str], values: list[str]) -> str:
    """One param a line, named in a comment: a 2,000-param model stays readable (and diffable)."""
    if not values:
        return "PARAMS = []"
    return "PARAMS = [\n" + "".join(f"    {v},  # {n}\n" for n, v in zip(names, values)) + "]"


def python_module(plan: ExportPlan) -> str:
    """The Python backend's standalone module: standard library only."""
    source, entry, blocks = python_backend.generate(plan.joint, ENTRY, seed=plan.joint.inputs[-1],
                                                    n_forward=len(plan.graph.outputs))
    graph = plan.graph
    in_tree, out_tree = _exportable(graph.in_tree), _exportable(graph.out_tree)
    args = ", ".join(plan.arg_names)
    values = [python_number(v) for v in plan.param_values]
    params = "".join(f"\n    {n}: {v}" for n, v in zip(plan.param_names, values))
    doc = "\n".join([
        f'"""{plan.name}: forward and gradient, exported by graphc {__version__} (Python backend).',
        "",
        "Standalone: imports only the Python standard library.",
        "",
        f"    forward({args}{', ' if args else ''}params=PARAMS)",
        f"        -> floats shaped {_in_docstring(describe(out_tree))}",
        f"    value_and_grad({args}{', ' if args else ''}params=PARAMS)",
        "        -> (value of output 0 -- the result's first number, a dict's items taken in sorted key",
        "            order --, gradients shaped like the arguments, gradients of PARAMS)",
        "",
        f"Arguments ({len(plan.arg_names)}), shaped {_in_docstring(describe(in_tree))}, flatten to "
        f"{len(plan.input_names)} input(s), in order: {', '.join(plan.input_names) or '(none)'}.",
        f"Then {len(plan.param_names)} param(s), PARAMS in order:{params or ' (none).'}",
        '"""',
    ])
    constants = (_params_literal(plan.param_names, values) + "\n"
                 f"_IN_TREE = {_literal(in_tree)}\n"
                 f"_OUT_TREE = {_literal(out_tree)}\n"
                 f"_ARG_NAMES = {tuple_literal([repr(n) for n in plan.arg_names])}\n"
                 f"_N_OUTPUTS = {len(graph.outputs) - len(plan.guards)}\n"
                 f"_GUARDS = {tuple_literal([python_number(g) for g in plan.guards])}\n"
                 f"_INTS = {tuple_literal([ascii(entry) for entry in plan.ints])}")
    sections = [
        doc,
        "# -- IEEE scalar math (graphc.runtime) --\n" + _copy(runtime),
        "# -- argument handling (graphc.standalone) --\n" + _copy(standalone),
        "# -- what the generated code calls --\n" + _helpers(source),
        constants,
    ]
    head = "\n\n\n".join(section.strip("\n") for section in sections) + "\n\n\n"
    code = _pieces(source, blocks, head.count("\n") + 1) if len(blocks) > 1 else source
    return head + "\n\n\n".join([code.strip("\n"), _ENTRY_POINTS.format(entry=entry, n_params=len(plan.param_values))]) + "\n"


def _pieces(source: str, blocks: list[int], line: int) -> str:
    """Generated code in part functions (a graph of more than ``STRAIGHT_LIMIT`` ops) as text
    the module compiles a piece at a time, at the piece's own lines of the file, as graphc's
    loader does: CPython compiling the whole module at once would hold ~2 KB a line
    (3.2 GB to import the export of a 3x10^5-op chain).  As it is where a piece holds what a
    raw string cannot."""
    starts = [0] + blocks[1:]  # the first with the header above it
    pieces = [source[start:end] for start, end in zip(starts, starts[1:] + [len(source)])]
    if any("\\" in piece or "\'\'\'" in piece for piece in pieces):
        return source
    lines = [f"# -- the generated code: {len(pieces)} pieces, compiled one at a time as the module is imported --",
             "_PIECES = ("]
    line += 2
    for piece in pieces:
        piece = piece.rstrip("\n") + "\n"
        lines.append(f"    ({line}, r'''\n{piece}'''),")  # each def at the start of its line, as inspect finds it
        line += piece.count("\n") + 2
    lines += [")", "for _line, _piece in _PIECES:  # the lines before a piece: tracebacks point into this file",
              "    exec(compile(\"\\n\" * (_line - 1) + _piece, globals().get(\"__file__\", \"<graphc export>\"), \"exec\"))",
              "del _PIECES, _line, _piece"]
    return "\n".join(lines)


_ENTRY_POINTS = '''\
def _check_branch(outputs):
    """A ValueError unless the arguments take the branches of the function's Python that its
    trace took: the exported code computes those alone (each guard an output after the
    function's own)."""
    for k, (got, want) in enumerate(zip(outputs[_N_OUTPUTS:], _GUARDS)):
        if got != want:
            raise ValueError(f"these arguments take another branch of the exported function's Python than "
                             f"its trace did (guard {{k + 1}} of {{len(_GUARDS)}}): the module computes that "
                             f"branch alone; export again after a call with such arguments")


def forward(*args, params=PARAMS):
    """The outputs as floats, in the compiled function's output structure."""
    frame = {entry}(_flatten_args(_IN_TREE, args, _ARG_NAMES, _INTS), _check_params(params, {n_params}))
    outputs = next(frame)
    frame.close()
    _check_branch(outputs)
    return _unflatten(_OUT_TREE, iter(outputs))


def value_and_grad(*args, params=PARAMS):
    """(value, arg_grads, param_grads) of output 0; arg_grads mirrors the arguments.  Each
    gradient is added to 0 as backward() adds it into a .grad (+0.0 where it is -0.0), so
    these are the numbers graphc.value_and_grad and .grad give."""
    inputs = _flatten_args(_IN_TREE, args, _ARG_NAMES, _INTS)
    frame = {entry}(inputs, _check_params(params, {n_params}))
    outputs = next(frame)
    _check_branch(outputs)
    grads = [0.0 + g for g in frame.send(1.0)]
    frame.close()
    n = len(inputs)
    return outputs[0], _unflatten(_IN_TREE, iter(grads[:n])), list(grads[n:])'''

#: Exporters by backend name: ``ExportPlan -> module text``.
EXPORTERS: dict[str, Callable[[ExportPlan], str]] = {"python": python_module}


def export(compiled: Compiled, path: str | Path, *, backend: str | None = None) -> Path:
    """Write the latest signature of ``compiled`` to ``path`` as a standalone module.

    ``backend`` picks the exporter (default: the compiled function's backend if it has
    one, else ``"python"``).  Returns the path.  See the module docstring for what the module defines.
    """
    if not isinstance(compiled, Compiled):
        raise TypeError(f"graphc.export takes a graphc.compile(...) result; got {type(compiled).__name__}")
    if backend is None:  # the compiled function's own, else plain Python (which runs anywhere)
        backend = compiled.backend if compiled.backend in EXPORTERS else "python"
    exporter = EXPORTERS.get(backend)
    if exporter is None:
        raise GraphcError(f"no exporter for backend {backend!r} yet; exporters: {', '.join(EXPORTERS)} "
                          f"(export(compiled, path, backend='python') works for any compiled function)")
    path = Path(path)
    path.write_text(exporter(make_plan(compiled)))
    return path


def _copy(module: Any) -> str:
    """``module``'s source without its docstring, checked to import only the standard library."""
    source = inspect.getsource(module)
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or "."]
            for name in names:
                if node.__class__ is ast.ImportFrom and node.level or name.split(".")[0] not in sys.stdlib_module_names:
                    raise GraphcError(f"{module.__name__} imports {name}: exported modules may use only the "
                                      f"standard library")
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        source = "\n".join(source.splitlines()[body[0].end_lineno:])
    return source.strip("\n") + "\n"


def _helpers(source: str) -> str:
    """Definitions of the ``_<op>`` helpers the generated ``source`` calls.

    A helper found in :mod:`graphc.runtime` (by identity) becomes an alias (``_tanh =
    tanh``); any other plain function that uses nothing but builtins and its arguments
    (like the op table's left-to-right ``sum``) is copied with its source.
    """
    in_runtime = {id(obj): name for name, obj in vars(runtime).items() if not name.startswith("__")}
    lines = []
    for name, obj in python_backend.NAMESPACE.items():
        if name in vars(runtime) or not re.search(rf"\b{re.escape(name)}\b", source):
            continue
        if id(obj) in in_runtime:
            lines.append(f"{name} = {in_runtime[id(obj)]}")
        elif _self_contained(obj):
            lines.append(textwrap.dedent(inspect.getsource(obj)).rstrip("\n"))
            lines.append(f"{name} = {obj.__name__}")
        else:
            raise GraphcError(f"generated code calls {name} ({obj!r}), which is neither in "
                              f"graphc.runtime nor a self-contained function; it cannot be exported")
    return "\n".join(lines) + "\n"


def _self_contained(obj: Any) -> bool:
    """A plain function whose code refers to nothing but builtins."""
    return (inspect.isfunction(obj) and obj.__closure__ is None
            and set(obj.__code__.co_names) <= set(dir(builtins)))


def _exportable(tree: Any) -> Any:
    """``tree`` with each namedtuple whose name and fields are no names ``namedtuple()``
    takes a plain tuple (the module makes a class of the same name and fields for the others:
    it cannot import the user's)."""
    if tree == SCALAR or not isinstance(tree, tuple) or tree[0] == "array":
        return tree
    kind, spec = tree
    if kind == "dict":
        return ("dict", tuple((key, _exportable(t)) for key, t in spec))
    if kind == "namedtuple":
        cls, items = spec
        items = tuple(_exportable(t) for t in items)
        names = (cls.__name__, *cls._fields)
        if all(isinstance(n, str) and n.isidentifier() and not keyword.iskeyword(n) for n in names) \
                and not any(n.startswith("_") for n in names[1:]) and len(set(names[1:])) == len(items):
            return ("namedtuple", (cls, items))
        return ("tuple", items)
    return (kind, tuple(_exportable(t) for t in spec))


def _in_docstring(text: str) -> str:
    """``text`` (a structure's description: a dict's keys are the user's) as it reads inside
    the module's docstring: its backslashes and quotes escaped, so no key ends the docstring."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _literal(tree: Any) -> str:
    """A Python literal for a structure tree; only graphc's own kinds, integers and str keys."""
    if tree == SCALAR:
        return repr(SCALAR)
    kind, spec = tree
    if kind == "array":
        return f"('array', {tuple_literal([str(int(n)) for n in spec])})"
    if kind == "none":
        return "('none', ())"
    if kind == "dict":  # str keys, as ascii() writes them: a literal, never code, and ASCII as the module is
        return f"('dict', {tuple_literal([f'({key!a}, {_literal(t)})' for key, t in spec])})"
    if kind == "namedtuple":  # identifiers (see _exportable), written as ascii() literals all the same
        cls, items = spec
        fields = tuple_literal([ascii(f) for f in cls._fields])
        return f"('namedtuple', (_namedtuple({cls.__name__!a}, {fields}), {tuple_literal([_literal(t) for t in items])}))"
    if kind not in ("list", "tuple"):
        raise GraphcError(f"cannot export a structure of kind {kind!r}")
    return f"({kind!r}, {tuple_literal([_literal(t) for t in spec])})"
