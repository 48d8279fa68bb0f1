"""The fast recipe of configs/multi30k.yaml (attention after the decoder GRU, its scores, residual +
LayerNorm, summed encoder directions, zero initial state, no deep output) trained end to end on the
built-in toy corpus at a reduced size: it must reach the toy config's BLEU bar, and its translations
must be the same through the in-process translator and the exported SavedModel.

The recipe's architecture keys are read from configs/multi30k.yaml (every model key that is not a
size), so this test follows the recommended configuration when its choices change; the sizes and the
training schedule stay the toy config's (a Multi30k-size model does not train in CI's minutes).
CI trains no Multi30k model.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CI = os.environ.get("CI", "").lower() == "true"
SIZES = {"embedding_dim", "encoder_units", "decoder_units", "attention_units", "output_dim", "encoder_layers"}


def recipe_overrides() -> list[str]:
    """`model.key=value` for every non-size model key of configs/multi30k.yaml."""
    model = yaml.safe_load((ROOT / "configs" / "multi30k.yaml").read_text(encoding="utf-8"))["model"]
    return [f"model.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in model.items() if k not in SIZES]


def test_the_recipe_is_the_luong_decoder():
    """What this file trains is the fast recipe, not the papers' models."""
    overrides = dict(o.split("=", 1) for o in recipe_overrides())
    assert overrides["model.attention_position"] == "luong"
    assert overrides["model.architecture"] == "attention"


@pytest.mark.slow
def test_fast_recipe_reaches_the_toy_bleu_bar(tmp_path):
    run = tmp_path / "fast"
    overrides = recipe_overrides() + ["train.verbose=0", "train.tensorboard=false", "train.precision=float32"]
    if CI:
        overrides += ["train.epochs=2"]
    cmd = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "toy.yaml")]
    cmd += ["--run-dir", str(run)] + [a for o in overrides for a in ("--set", o)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(run / "logs" / "train.csv", encoding="utf-8") as f:
        best = max(float(row["val_bleu"]) for row in csv.DictReader(f))
    assert best >= 90.0, proc.stderr[-2000:]

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops the SavedModel uses)

    from nmt.translator import load_run

    translator = load_run(run)
    assert translator.model.model_config.attention_position == "luong"
    sources = (ROOT / "data" / "numbers" / "dev.en").read_text(encoding="utf-8").splitlines()[:50]
    in_process = translator.translate(sources)
    exported = tf.saved_model.load(str(run / "export")).signatures["serving_default"]
    saved = [t.decode("utf-8") for t in exported(sentences=tf.constant(sources))["translations"].numpy()]
    assert saved == in_process
