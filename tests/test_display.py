"""Jupyter reprs: SVG pictures through Graphviz when it is there, HTML listings when not;
escaped, bounded, and what IPython's formatter hands a notebook."""
from __future__ import annotations

import random
import re
import shutil
import xml.etree.ElementTree as ET
from html import escape

import pytest

import graphc
from graphc import GraphcError, Value, display, viz
from graphc.nn import MLP

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
NASTY = '<script>alert("x")</script> & {a|b}'


def neuron_value() -> Value:
    x, w = Value(2.0, label="x"), Value(-3.0, label=NASTY)
    out = (x * w + 6.88).tanh()
    out.backward()
    return out


def neuron_graph():
    w = Value(-3.0, label="w")
    return graphc.trace(lambda x: (x * w + 6.88).tanh(), 2.0)


@pytest.fixture
def no_graphviz(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)


@pytest.fixture
def fake_graphviz(monkeypatch):
    """Graphviz 'installed': dot found, and pipe returns a stand-in SVG holding the DOT text."""
    seen = []

    def pipe(dot, fmt="svg"):
        seen.append((dot, fmt))
        return f"<svg>{len(dot)}</svg>".encode()
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")
    monkeypatch.setattr(viz, "pipe", pipe)
    return seen


def test_without_graphviz_a_value_is_an_escaped_table_of_its_graph(no_graphviz):
    out = neuron_value()
    assert out._repr_svg_() is None
    html = out._repr_html_()
    assert NASTY not in html and escape(NASTY) not in html  # named as the listing names it
    assert html.count("<tr>") == 1 + 5  # header; x, w, mul, add, tanh (the constant 6.88 is an operand)
    assert f"<td>tanh v4</td><td>{viz._number(out.data)}</td><td>1.0000</td>" in html
    assert "<td>v2</td><td>* x script_alert_x_script_a_b</td>" in html and "<td>+ v2 6.88</td>" in html


def test_a_values_table_names_each_row_once_and_never_like_a_number(no_graphviz):
    """Rows were named by raw labels: two ``a`` rows, a label ``2.0`` read as the constant,
    a label ``v2`` beside the unlabelled value the table named v2 (an outside hunt)."""
    a, b = Value(1.0, label="a"), Value(2.0, label="a")
    two, v2 = Value(5.0, label="2.0"), Value(7.0, label="v2")
    html = ((a * b) * two * 2.0 + v2)._repr_html_()
    names = re.findall(r"<tr><td>([^<]*)</td>", html)
    assert names == ["a", "a_1", "v2_1", "v2_0", "v4", "v6", "v2", "v8"]
    assert "<td>* v2_1 v2_0</td>" in html and "<td>* v4 2.0</td>" in html and "<td>+ v6 v2</td>" in html


def test_without_graphviz_a_graph_is_its_listing(no_graphviz):
    graph = neuron_graph()
    assert graph._repr_svg_() is None
    assert f"<pre>{escape(str(graph))}</pre>" in graph._repr_html_()


def test_with_graphviz_pictures_are_micrograd_draw_dot_and_html_steps_aside(fake_graphviz):
    out, graph = neuron_value(), neuron_graph()
    assert out._repr_svg_() == f"<svg>{len(viz.draw_value(out))}</svg>"
    assert graph._repr_svg_() == f"<svg>{len(graph.to_dot())}</svg>"
    assert fake_graphviz == [(viz.draw_value(out), "svg"), (graph.to_dot(), "svg")]
    assert out._repr_html_() is None and graph._repr_html_() is None


def test_a_graphviz_failure_falls_back_to_nothing_rather_than_raising(monkeypatch):
    def broken(dot, fmt="svg"):
        raise GraphcError("Graphviz failed: syntax error")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")
    monkeypatch.setattr(viz, "pipe", broken)
    assert neuron_graph()._repr_svg_() is None


def test_big_graphs_are_summaries(no_graphviz):
    x = Value(0.5, label="x")
    y = x
    for _ in range(20_000):  # deeper than Python's recursion limit
        y = (y * 1.0001).tanh()
    html = y._repr_html_()
    assert "60,001 values" in html and "20,000 const, 20,000 *, 20,000 tanh, 1 leaf" in html and len(html) < 1000
    random.seed(0)
    graph = graphc.trace(MLP(10, [30, 1]), [0.0] * 10)
    html = graph._repr_html_()
    assert "summary (more than 300 nodes)" in html and "330 mul, 330 add, 30 relu" in html and "<pre>" not in html


def test_compiled_shows_its_signatures_and_escaped_code(monkeypatch):
    compiled = graphc.compile(lambda x, y: (x[0] * y).relu(), backend="numpy")
    assert "not called yet" in compiled._repr_html_()
    compiled([1.0], 2.0)
    compiled([1.0, 2.0], 2.0)
    html = compiled._repr_html_()
    assert "backend numpy, numerics exact, 2 trace(s)" in html
    assert "<code>([scalar], scalar)</code>" in html and "<code>([scalar, scalar], scalar)</code>" in html
    assert f"<pre>{escape(compiled.source)}</pre>" in html
    assert NASTY not in display.compiled_html("f", "c", "exact", [], NASTY)  # any text is escaped
    monkeypatch.setattr(display, "MAX_CODE_LINES", 3)
    lines = compiled.source.splitlines()
    assert f"... {len(lines) - 3:,} more lines (compiled.source has them all)" in compiled._repr_html_()


def test_ipython_hands_the_notebook_svg_or_html(no_graphviz):
    formatters = pytest.importorskip("IPython.core.formatters")
    formatter = formatters.DisplayFormatter()
    for obj in (neuron_value(), neuron_graph()):
        data, _ = formatter.format(obj)
        assert "text/html" in data and "image/svg+xml" not in data and data["text/plain"] == repr(obj)


@needs_dot
def test_real_graphviz_draws_parseable_svg():
    out = neuron_value()
    root = ET.fromstring(out._repr_svg_())
    assert root.tag.endswith("svg") and "tanh" in ET.tostring(root, encoding="unicode")
