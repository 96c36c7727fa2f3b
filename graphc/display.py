"""Jupyter display: a ``Graph``, an eager ``Value`` and a ``Compiled`` render inline.

Jupyter asks an object for ``_repr_svg_``, ``_repr_html_``, ... and shows one answer,
preferring HTML to SVG; these functions are those answers, and the HTML one steps aside
(returns None) whenever a picture can be drawn.  A Graph or a Value is a picture in
micrograd's ``draw_dot`` look (:mod:`graphc.viz`) when Graphviz can draw it -- its
``dot`` program and the ``graphviz`` package -- and otherwise an HTML listing, so a
notebook shows something useful on any machine.  A Compiled is a summary (backend,
argument signatures, graph sizes) and its generated code.

Nothing shown grows without bound: pictures of more than ``viz.MAX_NODES`` nodes are
summaries, and so are listings; code beyond ``MAX_CODE_LINES`` lines is cut, saying so.
Every piece of text is HTML-escaped.
"""
from __future__ import annotations

import importlib.util
import shutil
from collections import Counter
from html import escape

from . import viz
from .engine import CONSTANT, Value, topological_order
from .errors import GraphcError
from .graph import CONSTANT_SPELLINGS, Graph
from .codegen.common import python_number
from .names import Namespace
from .viz import _number

MAX_CODE_LINES = 400
MAX_SIGNATURES = 20
_NO_PICTURE = "(a listing: install Graphviz's <code>dot</code> and <code>pip install graphviz</code> for a picture)"


def can_draw() -> bool:
    """Whether Graphviz can draw here (its ``dot`` program and the ``graphviz`` package)."""
    return shutil.which("dot") is not None and importlib.util.find_spec("graphviz") is not None


def svg(dot: str) -> str | None:
    """The SVG picture of DOT text, or None (no Graphviz, or it failed) so Jupyter falls
    back to the HTML repr."""
    if not can_draw():
        return None
    try:
        return viz.pipe(dot, "svg").decode("utf-8")
    except GraphcError:
        return None


def graph_html(graph: Graph) -> str | None:
    """A Graph as HTML when it cannot be drawn: its listing (``str(graph)``), or for a big
    graph how many nodes of each op."""
    if can_draw():
        return None
    heading = f"<b>{escape(repr(graph))}</b>"
    if len(graph) > viz.MAX_NODES:
        return f"{heading}<br>summary (more than {viz.MAX_NODES:,} nodes): {escape(graph.op_mix())}"
    return f"{heading} {_NO_PICTURE}<pre>{escape(str(graph))}</pre>"


def value_html(root: Value) -> str | None:
    """An eager Value's graph as an HTML table when it cannot be drawn: one row per value,
    children first (micrograd's order), with its op, operands, data and grad."""
    if can_draw():
        return None
    heading = f"<b>{escape(repr(root))}</b>"
    topo = topological_order([root])
    if len(topo) > viz.MAX_NODES:
        counts = Counter("const" if _constant(v) else v._op or "leaf" for v in topo)
        mix = ", ".join(f"{n:,} {op}" for op, n in counts.most_common())
        return f"{heading}<br>{len(topo):,} values (more than {viz.MAX_NODES:,}): {escape(mix)}"
    names = _row_names(topo)
    rows = []
    for v in topo:
        if _constant(v):
            continue  # a number coerced by an operator: shown among its user's operands
        operands = " ".join(python_number(c.data) if _constant(c) else names[id(c)] for c in v._prev)
        cells = [names[id(v)], f"{v._op} {operands}".strip(), _number(v.data), _number(v.grad)]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    header = "<tr><th>value</th><th>computed as</th><th>data</th><th>grad</th></tr>"
    return f"{heading} {_NO_PICTURE}<table>{header}{''.join(rows)}</table>"


def compiled_html(name: str, backend: str, numerics: str, signatures: list[tuple[str, Graph]],
                  source: str | None) -> str:
    """A Compiled function as HTML: what it is, its signatures and graph sizes, and the
    generated code of its latest call (``source``; None before the first call)."""
    head = (f"<b>graphc.Compiled</b> <code>{escape(name)}</code>: backend {escape(backend)}, "
            f"numerics {escape(numerics)}, {len(signatures)} trace(s)")
    if source is None:
        return f"{head}<br>not called yet: the first call traces it and generates its code"
    items = [f"<li><code>{escape(tree)}</code>: {escape(repr(graph))}</li>"
             for tree, graph in signatures[:MAX_SIGNATURES]]
    if len(signatures) > MAX_SIGNATURES:
        items.append(f"<li>... and {len(signatures) - MAX_SIGNATURES:,} more</li>")
    lines = source.splitlines()
    shown = source
    if len(lines) > MAX_CODE_LINES:
        shown = "\n".join(lines[:MAX_CODE_LINES] + [f"... {len(lines) - MAX_CODE_LINES:,} more lines "
                                                     "(compiled.source has them all)"])
    return (f"{head}<ul>{''.join(items)}</ul><details open><summary>generated code of the latest call "
            f"({len(lines):,} lines)</summary><pre>{escape(shown)}</pre></details>")


def _row_names(topo: list[Value]) -> dict[int, str]:
    """Per Value (by id), a name no other row and no number has, as :attr:`Graph.names`
    gives: labels first, sanitized and made unique (two ``a`` labels were two rows ``a``,
    a label ``2.0`` read as the number -- an outside hunt), then ``v<k>`` for the others."""
    namespace = Namespace(CONSTANT_SPELLINGS)
    names = {id(v): namespace.create(v.label, "v") for v in topo if v.label and not _constant(v)}
    for k, v in enumerate(topo):
        if id(v) not in names:
            names[id(v)] = namespace.create(f"v{k}")
    return names


def _constant(v: Value) -> bool:
    """A number an operator coerced into a Value (``x * 2``), not a leaf the user made."""
    return not v._prev and v._attr is CONSTANT
