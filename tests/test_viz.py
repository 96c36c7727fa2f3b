"""Pictures: DOT text in micrograd's look, escaping of any label, summaries of big graphs, rendering."""
from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

import graphc
from graphc import GraphcError, Value, trace
from graphc import viz
from graphc.interpret import backprop, evaluate
from graphc.nn import MLP
from conftest import ROOT

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
NASTY = ['a"b', "{braces}", "<html>", "x|y", "line\nbreak", "back\\slash", "\\N\\G\\L", "", "tab\there",
         '"; node [label="pwned"]; "', "π ≈ 3.14", "&#9731;&lt;b&gt; &amp;"]


def neuron():
    w, b = Value(-3.0, label="w"), Value(6.8813735870195432, label="b")
    return trace(lambda x1, x2: (x1 * w + x2 * 2.0 + b).tanh(), 2.0, 0.0)


def records(dot: str) -> dict[str, str]:
    """node id -> record label content, for nodes drawn as records."""
    return dict(re.findall(r'^  (n\d+) \[shape=record.*label="\{ (.*) \}"\];$', dot, re.M))


def lex(dot: str) -> str:
    """The DOT text with every quoted string replaced by "": fails on a string left open or
    a raw newline inside one (what a bad label would cause)."""
    out, i = [], 0
    while i < len(dot):
        if dot[i] != '"':
            out.append(dot[i])
            i += 1
            continue
        j = i + 1
        while dot[j] != '"':
            assert dot[j] != "\n", f"raw newline inside a string at {j}"
            j += 2 if dot[j] == "\\" else 1
        out.append('""')
        i = j + 1
    return "".join(out)


def record_fields(label: str) -> int:
    """Fields of a record label, counting only unescaped | { } (escaped ones are text)."""
    depth, fields, i = 0, 1, 0
    while i < len(label):
        ch = label[i]
        if ch == "\\":
            i += 2
            continue
        assert ch not in "<>", "unescaped port syntax in a record label"
        depth += ch == "{"
        depth -= ch == "}"
        fields += ch == "|"
        i += 1
    assert depth == 0
    return fields


def test_micrograd_look_records_and_op_circles():
    g = neuron()
    values = evaluate(g, [2.0, 0.0])
    dot = viz.to_dot(g, values, backprop(g, values))
    assert "rankdir=LR" in dot
    recs = records(dot)
    assert recs["n0"] == "x1 | data 2.0000 | grad -1.5000"
    assert recs["n3"] == "b | data 6.8814 | grad 0.5000"
    out = g.outputs[0]
    assert recs[f"n{out}"] == f"v{out} | data 0.7071 | grad 1.0000"
    assert f'op{out} [shape=circle' in dot and 'label="tanh"' in dot
    assert f"  op{out} -> n{out};" in dot and f"  n{g.args[out][0]} -> op{out};" in dot
    assert re.search(r'n\d+ \[shape=plain.*label="2.0"\]', dot)  # the constant, as a small node
    assert g.to_dot() == viz.to_dot(g)


def test_without_values_records_show_names_only_and_operand_order_where_it_matters():
    g = trace(lambda x, y: x - y, 1.0, 2.0)
    dot = g.to_dot()
    assert records(dot) == {"n0": "x", "n1": "y", "n2": "v2"}
    assert 'n0 -> op2 [headlabel="0"' in dot and 'n1 -> op2 [headlabel="1"' in dot
    assert "headlabel" not in trace(lambda x, y: x * y, 1.0, 2.0).to_dot()


def test_pictures_name_params_as_the_listing_and_the_code_do():
    random.seed(0)
    model = MLP(2, [2, 1])
    g = trace(model, [1.0, 2.0])
    listing = str(g)
    code = graphc.compile(model)
    code([1.0, 2.0])
    recs = records(g.to_dot())
    for i in g.inputs + g.params:
        name, label = g.names[i], str(g.attrs[i][0])  # L0_N0_w1, L0.N0.w1; x_0, x[0]
        assert name != label and name in listing.split() and re.search(rf"\b{name}\b", code.source)
        assert recs[f"n{i}"] == f"{name}\\n{label}"
    summary = viz.to_dot(g, max_nodes=3)
    assert "L0_N0_w1" in summary and "L0.N0.w1" not in summary
    assert records(neuron().to_dot())["n2"] == "w"  # a label that is an identifier shows once


@pytest.mark.parametrize("label", NASTY)
def test_any_label_is_escaped(label):
    p = Value(2.0, label=label)
    g = trace(lambda x: x * p, 1.0)
    dot = viz.to_dot(g, title=label)
    skeleton = lex(dot)
    assert "pwned" not in skeleton and skeleton.count("{") == skeleton.count("}") == 1
    for content in records(dot).values():
        assert record_fields(content) == 1
    assert "\\N" not in dot.replace("\\\\", "")  # no Graphviz escape sequence survives from the label


@needs_dot
def test_nasty_labels_render_as_written(tmp_path):
    params = [Value(float(k), label=label) for k, label in enumerate(NASTY)]
    g = trace(lambda x: sum(x * p for p in params), 1.0)
    svg = viz.render(g, tmp_path / "nasty.svg").read_text()
    texts = ["".join((t.text or "").split()) for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
    for label in NASTY:  # compared without spaces: Graphviz drops some around non-ASCII text
        for line in label.split("\n"):
            if line.strip():
                assert "".join(line.split()) in texts, line


def test_big_graphs_become_a_summary():
    def wide(xs):
        return sum(x * x for x in xs)
    g = trace(wide, [1.0] * 5000)
    start = time.perf_counter()
    dot = viz.to_dot(g)
    assert time.perf_counter() - start < 0.5
    assert len(dot) < 3000 and "summary: more than max_nodes=300" in dot
    assert "mul: 5,000" in dot and "5,000 inputs" in dot and "... and 4,988 more" in dot
    assert "n100" not in dot
    assert records(viz.to_dot(g, max_nodes=20_000))  # a higher limit draws it all


def test_values_and_grads_must_match_the_graph():
    g = neuron()
    with pytest.raises(ValueError, match=r"values needs one number per node \(10\); got 2"):
        viz.to_dot(g, values=[1.0, 2.0])


def test_draw_value_is_micrograds_draw_dot():
    x = Value(0.5, label="x")
    w = Value(-1.0, label="w")
    out = (x * w + 1.0).tanh()
    out.label = "out"
    out.backward()
    dot = viz.draw_value(out)
    recs = list(records(dot).values())
    assert recs[:2] == ["x | data 0.5000 | grad -0.7864", "w | data -1.0000 | grad 0.3932"]
    assert recs[-1] == "out | data 0.4621 | grad 1.0000"
    assert 'shape=plain' in dot and 'label="1.0"' in dot  # the coerced 1.0 is a constant
    assert dot.count("shape=circle") == 3


def test_draw_value_walks_deep_graphs_without_recursion():
    v = Value(0.5, label="x")
    for _ in range(100_000):
        v = v * 1.0
    dot = viz.draw_value(v)
    assert "summary" in dot and "*: 100,000" in dot


def test_render_without_graphviz_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    with pytest.raises(GraphcError, match="apt-get install graphviz.*brew install graphviz.*conda"):
        viz.render(neuron(), tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()


def test_render_checks_format_and_object(tmp_path):
    with pytest.raises(ValueError, match="svg, png, pdf; got 'gif'"):
        viz.render(neuron(), tmp_path / "g.gif")
    with pytest.raises(TypeError, match="takes a Graph, a Value or DOT text; got int"):
        viz.render(3, tmp_path / "g.svg")


@needs_dot
def test_render_writes_svg_png_and_pdf(tmp_path):
    g = neuron()
    assert viz.render(g, tmp_path / "g.svg").read_text().lstrip().startswith("<?xml")
    assert viz.render(g, tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert viz.render(g, tmp_path / "picture", format="pdf").read_bytes()[:4] == b"%PDF"
    assert viz.render(Value(1.0) * 2.0, tmp_path / "v.svg").exists()


@needs_dot
def test_the_optimize_picture_example_writes_two_pictures(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "optimize_picture.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "before: 15 nodes" in result.stdout and "after: 10 nodes" in result.stdout
    for name in ("before", "after"):
        assert ET.parse(tmp_path / f"{name}.svg").getroot().tag.endswith("svg")


def test_a_lone_surrogate_in_a_label_reaches_graphviz_as_a_replacement_character():
    """A label of ``"\\ud800"`` made the DOT text unencodable, and ``display.svg`` raise
    UnicodeEncodeError (outside hunt)."""
    dot = viz.draw_value(Value(1.0, label="a\ud800b") * 2.0)
    assert "a\ufffdb" in dot.encode("utf-8").decode("utf-8")


def test_backprop_adds_each_outputs_parts_in_eager_backwards_order():
    """For output 1 the parts were added in reverse id order, (0.1 + 0.3) + 0.2 = 0.6, where
    eager backward() gives (0.1 + 0.2) + 0.3 = 0.6000000000000001 (an outside hunt)."""
    def f(x):
        p, q, r = x * 0.1, x * 0.3, x * 0.2
        return [p, (q + r) + p]
    x = graphc.Value(1.0)
    f(x)[1].backward()
    g = graphc.trace(f, 1.0)
    assert backprop(g, evaluate(g, [1.0]), output=1)[g.inputs[0]] == x.grad == 0.6000000000000001
