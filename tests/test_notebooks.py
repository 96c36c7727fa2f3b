"""The two notebooks in examples/ run top to bottom (micrograd's demo and trace_graph, compiled)."""
from __future__ import annotations

import os

import pytest

from conftest import ROOT
from graphc import display

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


@pytest.mark.parametrize("name", ["demo", "trace_graph"])
def test_notebook_runs(name, monkeypatch):
    # the kernel is a new process: make it import this checkout's graphc, not an installed one
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(ROOT / "examples" / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT / "examples")}})
    client.execute()  # raises CellExecutionError, with the failing cell, if any cell fails
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert "def show" not in "".join(cell.source for cell in notebook.cells)  # the reprs do the showing
    picture = "image/svg+xml" if display.can_draw() else "text/html"  # a Graph's or a Value's
    results = {o.data["text/plain"]: o.data for o in outputs if o.output_type == "execute_result"}
    assert results and all(("text/html" if text.startswith("<graphc.Compiled") else picture) in data
                           for text, data in results.items())
    if name == "demo":
        text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        assert "traces: 1" in text and "step 90" in text
