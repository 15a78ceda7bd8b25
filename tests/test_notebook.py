"""The walkthrough notebook: committed executed (outputs and plots render on a code host), and
it executes top to bottom here (its cells assert the math they show)."""

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

PATH = ROOT / "notebooks" / "bn_walkthrough.ipynb"


def _outputs(notebook):
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def _images(notebook):
    return [o for o in _outputs(notebook) if "image/png" in o.get("data", {})]


def test_the_committed_notebook_is_executed_with_its_plots():
    notebook = nbformat.read(PATH, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)  # every cell ran, in order
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [o for o in _outputs(notebook) if o.output_type == "error"]
    assert len(_images(notebook)) >= 2


@pytest.mark.slow
def test_walkthrough_notebook_runs(tmp_path):
    notebook = nbformat.read(PATH, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(PATH.parent)}},
    )
    client.execute()
    assert not [o for o in _outputs(notebook) if o.output_type == "error"]
    assert len(_images(notebook)) >= 2
    text = "".join(o.get("text", "") for o in _outputs(notebook))
    assert "max |by hand - layer|" in text and "m/(m-1)" in text
    assert "dx:     closed form vs autograd" in text and "variance after BN" in text
