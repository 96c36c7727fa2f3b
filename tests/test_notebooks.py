"""The two notebooks in examples/ run top to bottom (micrograd's demo and trace_graph, compiled)."""
from __future__ import annotations

import pytest

from conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


@pytest.mark.parametrize("name", ["demo", "trace_graph"])
def test_notebook_runs(name):
    notebook = nbformat.read(ROOT / "examples" / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT / "examples")}})
    client.execute()  # raises CellExecutionError, with the failing cell, if any cell fails
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    if name == "demo":
        text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        assert "traces: 1" in text and "step 90" in text
