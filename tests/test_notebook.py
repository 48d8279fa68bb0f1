"""The walkthrough notebook as people read it: committed with its outputs (the training curves and an
attention heatmap shown inline), its code cells only calling into nmt, and running top to bottom as a
notebook in a Jupyter kernel (nbclient), with training cut to a few steps."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"
TRAINING = '"train.epochs=2"'  # the notebook's training length, cut in the test
REDUCED = '"train.epochs=1", "train.max_steps=30", "train.tensorboard=false"'


def code_cells(nb) -> list:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def images(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell["outputs"])


def image_cells(nb) -> dict:
    """{what the cell shows: the cell}: the curves training drew and the attention heatmap."""
    cells = code_cells(nb)
    (curves,) = [c for c in cells if "curves.png" in "".join(c["source"])]
    (attention,) = [c for c in cells if "plot_translation(" in "".join(c["source"])]
    return {"curves": curves, "attention": attention}


def test_walkthrough_cells_compile_and_only_call_nmt():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    code = ["".join(c["source"]) for c in code_cells(nb)]
    assert len(code) >= 5
    for source in code:
        tree = ast.parse(source)
        for node in ast.walk(tree):
            # No logic of its own: no function or class definitions, no loops.
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.For, ast.While)), source
    assert any("import nmt" in s for s in code)
    assert "\n".join(code).count(TRAINING) == 1


def test_the_committed_notebook_holds_its_outputs():
    """Executed once, top to bottom, in one kernel: execution counts 1..N, no errors, every cell's result
    shown, the pictures inline (PNG in the notebook, not only a file beside it)."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = code_cells(nb)
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    for cell in cells:
        assert all(o["output_type"] != "error" for o in cell["outputs"]), cell["source"]
        assert "Traceback" not in json.dumps(cell["outputs"])
    for what, cell in image_cells(nb).items():
        assert images(cell) == 1, what
    text = "".join("".join(o.get("text", "")) for c in cells for o in c["outputs"] if o["output_type"] == "stream")
    assert "BLEU = " in text and "chrF2 = " in text  # what training reports, as it reports it


def test_the_readme_links_the_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](notebooks/walkthrough.ipynb)" in readme


@pytest.mark.slow
def test_walkthrough_runs_as_a_notebook(tmp_path):
    """Every code cell runs, in order, in a Jupyter kernel started from notebooks/ (training cut to 30
    steps): the API the notebook shows exists and works, the run directory is written, and the curves and
    the attention heatmap come back as inline images."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in code_cells(nb):
        cell.source = cell.source.replace(TRAINING, REDUCED)
        cell.outputs = []
    # The layout the notebook expects around it: ../nmt and ../configs next to notebooks/.
    for name in ("nmt", "configs"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "notebooks").mkdir()
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path / "notebooks")}}
    )
    client.execute()  # a cell's error raises nbclient's CellExecutionError with the cell and its traceback
    assert (tmp_path / "runs" / "notebook" / "model.keras").is_file()
    for what, cell in image_cells(nb).items():
        assert images(cell) == 1, (what, cell.outputs)
    png = tmp_path / "runs" / "notebook" / "attention.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
