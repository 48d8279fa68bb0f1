"""The public Python API (nmt/__init__.py): every name resolves to the object it documents, and importing
nmt (or the TensorFlow-free settings) loads no TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_is_the_documented_object():
    import nmt
    from nmt.config import load
    from nmt.decode.settings import Batching, SearchSettings
    from nmt.errors import UserError
    from nmt.text.evaluation import score

    assert nmt.load_config is load and nmt.score is score and nmt.UserError is UserError
    assert nmt.SearchSettings is SearchSettings and nmt.Batching is Batching
    assert set(nmt.__all__) <= set(dir(nmt))
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        nmt.nonexistent  # noqa: B018


def test_import_nmt_and_settings_load_no_tensorflow():
    code = (
        "import sys, nmt, nmt.config, nmt.decode.settings\n"
        "nmt.SearchSettings(beam_size=2); nmt.load_config\n"
        "print('tensorflow' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
