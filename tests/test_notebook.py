"""The walkthrough notebook is valid and its code cells compile (it only calls into nmt)."""

import ast
import json
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "walkthrough.ipynb"


def test_walkthrough_cells_compile_and_only_call_nmt():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 5
    for source in code:
        tree = ast.parse(source)
        for node in ast.walk(tree):
            # No logic of its own: no function or class definitions, no loops.
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.For, ast.While)), source
    assert any("from nmt import" in s for s in code)
