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


def test_load_model_reads_model_keras_from_a_run_or_the_file(tiny_run):
    """nmt.load_model against Keras' own loader (after registering nmt's layers): the same class and weights,
    whether given the run directory or its model.keras."""
    import keras
    import numpy as np

    import nmt
    import nmt.model.seq2seq  # noqa: F401  (registers nmt's layers for keras.models.load_model)

    reference = keras.models.load_model(tiny_run / "model.keras", compile=False)
    for path in (tiny_run, tiny_run / "model.keras", str(tiny_run)):
        model = nmt.load_model(path)
        assert type(model) is type(reference)
        assert [w.path for w in model.weights] == [w.path for w in reference.weights]
        for mine, theirs in zip(model.weights, reference.weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_load_model_works_in_a_fresh_process_where_keras_alone_does_not(tiny_run):
    code = (
        "import sys, keras, nmt\n"
        "path = sys.argv[1]\n"
        "try:\n"
        "    keras.models.load_model(path, compile=False)\n"
        "    print('keras alone: loaded')\n"
        "except Exception:\n"
        "    print('keras alone: failed')\n"
        "model = nmt.load_model(path)\n"
        "print(type(model).__name__, model.count_params())\n"
    )
    argv = [sys.executable, "-c", code, str(tiny_run / "model.keras")]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "keras alone: failed", proc.stdout  # why the README names nmt.load_model
    name, params = lines[1].split()
    assert name.isidentifier() and int(params) > 0


def test_load_model_mistakes_are_one_line_user_errors(tmp_path):
    import nmt

    with pytest.raises(nmt.UserError, match=f"^{tmp_path / 'nothing'}: no such file; expected a run directory"):
        nmt.load_model(tmp_path / "nothing")
    with pytest.raises(nmt.UserError, match=f"^{tmp_path / 'runs'}/model.keras: no such file"):
        (tmp_path / "runs").mkdir()
        nmt.load_model(tmp_path / "runs")
    foreign = tmp_path / "foreign.keras"
    foreign.write_text("not a zip file\n", encoding="utf-8")
    with pytest.raises(nmt.UserError, match=f"^{foreign}: cannot load the model \\("):
        nmt.load_model(foreign)
