"""Pictures: a Graph (or an eager Value graph) as Graphviz DOT text, in micrograd's look.

As in micrograd's ``draw_dot``: left to right, one record per value ``{ name | data 1.0000 |
grad 0.5000 }`` (data and grad where known), and each operation a small circle feeding
the value it computes.  Constants are small plain nodes.  Inputs, params and outputs are
tinted so the interface stands out; operand order is labelled where it matters
(``sub``, ``vpow``, ``max``).

A graph beyond ``max_nodes`` is drawn as a summary -- how many nodes of each op, and the
inputs, params and outputs -- since Graphviz takes minutes on 10^4 nodes and nobody can
read 10^5.  Every piece of text (user labels may hold quotes, braces, ``<>``, ``|``,
backslashes, newlines) is escaped, so the DOT text always parses and never carries
Graphviz escape sequences from user data.

``to_dot`` needs nothing beyond graphc; ``render`` writes SVG/PNG/PDF through the
``graphviz`` Python package and the Graphviz ``dot`` program.
"""
from __future__ import annotations

import operator
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import ops
from .codegen.common import python_number
from .errors import GraphcError
from .ops import CONSTANT, LEAVES
from .walk import depth_first

if TYPE_CHECKING:  # viz imports neither: Graph.to_dot and Value's Jupyter hook import viz
    from .engine import Value
    from .graph import Graph

MAX_NODES = 300
MAX_LABEL = 40  # characters of a user label shown in a picture
FORMATS = ("svg", "png", "pdf")
INSTALL = ("rendering needs the Graphviz 'dot' program, which is not on PATH; install it with "
           "`apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) or "
           "`conda install -c conda-forge graphviz`, then try again (graph.to_dot() works without it)")
_FILL = {"input": "#dbeafe", "param": "#fef3c7", "output": "#dcfce7"}
_ORDERED = {name for name, op in ops.TABLE.items() if not op.commutative and op.arity != 1}


@dataclass
class _Node:
    """One value in a picture: a record, plus an op circle if an operation computed it."""

    name: str
    kind: str  # input, param, const, op (micrograd Values: leaf or op)
    data: float | None = None
    grad: float | None = None
    op: str = ""  # the op circle's label
    label: str = ""  # the user's label, when the name (an identifier) spells it differently
    ordered: bool = False  # label operand order on the edges
    operands: list[int] = field(default_factory=list)
    output: bool = False


def to_dot(graph: Graph, values: Sequence[float] | None = None, grads: Sequence[float] | None = None,
           max_nodes: int = MAX_NODES, *, title: str | None = None) -> str:
    """DOT text for ``graph``; ``values``/``grads`` (one per node, e.g. from
    :func:`graphc.interpret.evaluate` and :func:`~graphc.interpret.backprop`) fill the
    records.  Graphs of more than ``max_nodes`` nodes become a summary.  Nodes are named
    as ``str(graph)`` and the generated code name them (``graph.names``); an input or param
    whose label is spelled otherwise (``L0.N3.w1``) shows it under that name."""
    for what, seq in (("values", values), ("grads", grads)):
        if seq is not None and len(seq) != len(graph):
            raise ValueError(f"to_dot: {what} needs one number per node ({len(graph)}); got {len(seq)}")
    heading = title if title is not None else f"{graph.name}: {len(graph):,} nodes"
    if len(graph) > max_nodes:
        return _summary(heading, graph.counts(), max_nodes, [
            ("inputs", [graph.names[i] for i in graph.inputs]),
            ("params", [graph.names[i] for i in graph.params]),
            ("outputs", [graph.names[o] for o in graph.outputs])])
    names = graph.names
    nodes = []
    for i, op in enumerate(graph.ops):
        node = _Node(names[i], op if op in LEAVES else "op",
                     values[i] if values is not None else (graph.attrs[i][0] if op == "const" else None),
                     grads[i] if grads is not None else None)
        if op not in LEAVES:
            node.op = ops.TABLE[op].label(graph.attrs[i])
            node.ordered = op in _ORDERED
            node.operands = list(graph.args[i])
        if op in ("input", "param") and str(graph.attrs[i][0]) != names[i]:
            node.label = str(graph.attrs[i][0])  # L0.N3.w1 under L0_N3_w1, as the listing names it
        nodes.append(node)
    for o in graph.outputs:
        nodes[o].output = True
    return _emit(heading, nodes)


def draw_value(root: Value, max_nodes: int = MAX_NODES, *, title: str | None = None) -> str:
    """DOT text for the eager graph behind ``root`` -- micrograd's ``draw_dot(root)``.

    Every Value is a record ``{ label | data | grad }``; numbers coerced by operators
    (``x * 2``) are drawn as constants.  The walk is iterative, so depth is no limit."""
    topo = depth_first([root], operator.attrgetter("_prev"))
    heading = title if title is not None else f"{len(topo):,} values"
    if len(topo) > max_nodes:
        return _summary(heading, Counter(v._op or "leaf" for v in topo), max_nodes, [
            ("leaves", [v.label or "" for v in topo if not v._prev and v.label]),
            ("root", [root.label or "root"])])
    index = {id(v): k for k, v in enumerate(topo)}
    nodes = []
    for v in topo:
        constant = not v._prev and v._attr is CONSTANT
        node = _Node(v.label, "const" if constant else ("op" if v._prev else "param"), v.data,
                     None if constant else v.grad)
        if v._prev:
            node.op = v._op
            node.ordered = getattr(v._kind, "name", "") in _ORDERED
            node.operands = [index[id(c)] for c in v._prev]
        nodes.append(node)
    nodes[-1].output = True
    return _emit(heading, nodes)


def render(obj: Graph | Value | str, path: str | Path, format: str | None = None, **options) -> Path:
    """Write a picture of ``obj`` (a Graph, a Value's graph, or DOT text) to ``path``.

    ``format`` is svg, png or pdf (default: the path's suffix, else svg); ``options`` go to
    :func:`to_dot` / :func:`draw_value`.  Raises :class:`GraphcError` saying how to
    install Graphviz when its ``dot`` program or the ``graphviz`` package is missing.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".") or "svg").lower()
    if fmt not in FORMATS:
        raise ValueError(f"render: format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if isinstance(obj, str):
        dot = obj
    elif hasattr(type(obj), "to_dot") and hasattr(obj, "ops"):  # a Graph (viz imports neither class)
        dot = to_dot(obj, **options)
    elif hasattr(type(obj), "_prev") and hasattr(obj, "backward"):  # a Value
        dot = draw_value(obj, **options)
    else:
        raise TypeError(f"render takes a Graph, a Value or DOT text; got {type(obj).__name__}")
    path.write_bytes(pipe(dot, fmt))
    return path


def pipe(dot: str, fmt: str = "svg") -> bytes:
    """The picture of DOT text in ``fmt``, from Graphviz; a :class:`GraphcError` saying how to
    install it when its ``dot`` program or the ``graphviz`` package is missing."""
    if shutil.which("dot") is None:
        raise GraphcError(INSTALL)
    try:
        import graphviz
    except ImportError:
        raise GraphcError("rendering needs the graphviz Python package: pip install graphviz "
                          "(or pip install 'graphc[viz]')") from None
    try:
        return graphviz.Source(dot).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphcError(INSTALL) from None
    except graphviz.CalledProcessError as error:
        raise GraphcError(f"Graphviz failed: {error.stderr.decode(errors='replace').strip()}") from None


# -- DOT text -----------------------------------------------------------------------------

def _emit(heading: str, nodes: list[_Node]) -> str:
    lines = ["digraph graphc {", "  graph [rankdir=LR, fontname=Helvetica, labelloc=t, "
             f'label="{_escape(heading)}"];',
             '  node [fontname=Helvetica, fontsize=11];', '  edge [arrowsize=0.6];']
    for k, node in enumerate(nodes):
        if node.kind == "const":
            lines.append(f'  n{k} [shape=plain, fontsize=9, fontcolor="#555555", '
                         f'label="{_escape(python_number(node.data))}"];')
            continue
        fields = [_escape_record(_short(node.name))] if node.name else []
        if node.label:
            fields = [f"{fields[0]}\\n{_escape_record(_short(node.label))}"]
        if node.data is not None:
            fields.append(f"data {_escape_record(_number(node.data))}")
        if node.grad is not None:
            fields.append(f"grad {_escape_record(_number(node.grad))}")
        fields = fields or [" "]
        kind = "output" if node.output else node.kind
        style = f', style="rounded,filled", fillcolor="{_FILL[kind]}"' if kind in _FILL else ', style=rounded'
        width = ", penwidth=2" if node.output else ""
        lines.append(f'  n{k} [shape=record{style}{width}, label="{{ {" | ".join(fields)} }}"];')
        if node.op:
            lines.append(f'  op{k} [shape=circle, width=0.3, fixedsize=false, margin=0.02, fontsize=10, '
                         f'label="{_escape(_short(node.op, 12))}"];')
            lines.append(f"  op{k} -> n{k};")
            for position, a in enumerate(node.operands):
                label = f' [headlabel="{position}", labelfontsize=8]' if node.ordered else ""
                lines.append(f"  n{a} -> op{k}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _summary(heading: str, counts: Counter, max_nodes: int, groups: list[tuple[str, list[str]]]) -> str:
    total = sum(counts.values())
    op_lines = [f"{name}: {n:,}" for name, n in counts.most_common()]
    lines = ["digraph graphc {", "  graph [rankdir=LR, fontname=Helvetica, labelloc=t, "
             f'label="{_escape(heading)} (summary: more than max_nodes={max_nodes:,})"];',
             "  node [fontname=Helvetica, fontsize=11, shape=record, style=rounded];"]
    lines.append(f'  counts [label="{{ {total:,} nodes | {_escape_record(_listing(op_lines))} }}"];')
    for k, (name, items) in enumerate(groups):
        shown = [_short(item) for item in items]
        text = f"{len(items):,} {name} | {_escape_record(_listing(shown))}"
        lines.append(f'  group{k} [label="{{ {text} }}"];')
        lines.append(f"  counts -> group{k};" if k == len(groups) - 1 else f"  group{k} -> counts;")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _listing(items: list[str], limit: int = 12) -> str:
    shown = items[:limit] + ([f"... and {len(items) - limit:,} more"] if len(items) > limit else [])
    return "\n".join(shown) if shown else "(none)"


def _number(x: float | None) -> str:
    if x is None:
        return ""
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")) or x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.4f}"
    return f"{x:.3e}"


def _short(text: str, limit: int = MAX_LABEL) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _escape(text: str) -> str:
    """Text for a quoted DOT label: backslashes and quotes escaped, ``&`` as ``&amp;`` (Graphviz
    decodes HTML entities in every label: ``&lt;`` drew as ``<``), newlines as ``\\n``, a
    lone surrogate (no character UTF-8 can carry to Graphviz) as U+FFFD."""
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "&":
            out.append("&amp;")
        elif ch == "\n":
            out.append("\\n")
        elif ch < " " or ch == "\x7f":
            out.append(" ")
        elif "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def _escape_record(text: str) -> str:
    """Text for one field of a record label: also ``{ } | < >`` escaped (they are syntax there)."""
    return "".join("\\" + ch if ch in "{}|<>" else ch for ch in _escape(text))
