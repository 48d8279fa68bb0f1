"""Fine-tuning (train.init_from) and the weights model.keras holds (train.average_checkpoints).

tiny_run (the tiny config's run, made once per session) is the parent, read only. The child changes the
dropout rates, the data order (data.seed) and the budget, which a fine-tuning run may, and averages its
kept checkpoints. What the test holds it to:

- the parent's weights carry over: the child's first loss is below the parent's after a third of its
  training (a fresh model's loss there is the parent's first, ~ln(vocabulary));
- the optimizer starts fresh: the child counts its own steps from 1;
- the tokenizer is the parent's, byte for byte;
- model.keras holds the element-wise mean of the kept checkpoints (computed here from the checkpoints);
- --resume of a fine-tuning run is exact: stopped at step 20 and resumed to 40, its losses equal those of
  the run that went to 40 at once (the resume must not take the parent's weights again);
- a model or tokenizer that differs from the parent's is one line naming the key, before anything is
  written; dropout may differ.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nmt import rundir
from tests.helpers import TINY, run_train, step_losses, train_cmd, train_env

CHILD = [
    "model.embedding_dropout=0.2",
    "model.output_dropout=0.0",
    "data.seed=5",
    "train.max_steps=40",
    "train.average_checkpoints=true",
]


def child_overrides(parent, *more) -> list[str]:
    return [*TINY, f"train.init_from={parent}", *CHILD, *more]


@pytest.mark.slow
def test_a_fine_tuned_run_starts_from_its_parent_and_resumes_exactly(tiny_run, tmp_path):
    child = tmp_path / "child"
    proc = run_train(child, *child_overrides(tiny_run))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"train.init_from: fine-tuning {tiny_run}" in proc.stderr

    parent_losses, losses = step_losses(tiny_run), step_losses(child)
    assert sorted(losses) == list(range(1, 41))  # a fresh optimizer: its own steps, from 1
    assert losses[1] < parent_losses[20] < parent_losses[1], (losses[1], parent_losses[20], parent_losses[1])
    for name in sorted(p.name for p in (tiny_run / "tokenizer").iterdir()):
        assert (child / "tokenizer" / name).read_bytes() == (tiny_run / "tokenizer" / name).read_bytes()

    results = json.loads((child / rundir.RESULTS_FILE).read_text(encoding="utf-8"))
    kept = json.loads((child / "checkpoints" / "last.json").read_text(encoding="utf-8"))["kept"]
    assert len(kept) == 2
    assert results["init_from"] == str(tiny_run)
    assert results["weights"] == f"the average of 2 checkpoints ({', '.join(kept)})"

    import keras

    from nmt.decode.translator import load_model

    model = load_model(child)
    versions = []
    for name in kept:
        version = load_model(child)
        version.load_weights(child / "checkpoints" / name / "weights.weights.h5")
        versions.append([v.numpy() for v in version.weights])
    for variable, *values in zip(model.weights, *versions):
        np.testing.assert_allclose(variable.numpy(), np.mean(values, axis=0), rtol=1e-6, atol=1e-6)
    keras.backend.clear_session()

    # --resume of a fine-tuning run: stopped at step 20, resumed to 40, the same losses
    resumed = tmp_path / "resumed"
    first = run_train(resumed, *child_overrides(tiny_run, "train.max_steps=20"))
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_train(resumed, *child_overrides(tiny_run), resume=True)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from step 20" in second.stderr and "train.init_from: fine-tuning" not in second.stderr
    assert step_losses(resumed) == losses


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.decoder_units=48", "model.decoder_units is 32 there but 48 here"),
        ("tokenizer.vocab_size=500", "tokenizer.vocab_size is"),
    ],
)
def test_a_model_or_tokenizer_unlike_the_parents_is_one_line(tiny_run, tmp_path, override, key):
    child = tmp_path / "child"
    proc = run_train(child, *child_overrides(tiny_run), override)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: train.init_from {tiny_run}: ") and key in lines[0], lines
    assert not child.exists()


def test_init_from_a_directory_that_is_no_run_is_one_line(tmp_path):
    (tmp_path / "parent").mkdir()
    proc = run_train(tmp_path / "child", *child_overrides(tmp_path / "parent"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: train.init_from {tmp_path / 'parent'}: not a complete run directory, missing config.yaml, "
        "tokenizer/, model.keras (expected config.yaml, tokenizer/ and model.keras, written by train.py)"
    )


def test_init_from_its_own_directory_is_refused(tiny_run, tmp_path):
    own = tmp_path / "own"
    shutil.copytree(tiny_run, own, ignore=shutil.ignore_patterns(".train.lock"))
    proc = subprocess.run(
        [*train_cmd(own, *child_overrides(own)), "--overwrite"], capture_output=True, text=True, env=train_env()
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: train.init_from {own}: is this run's own directory; expected another run to start from"
    )


def test_resume_may_change_which_checkpoints_are_kept_and_averaged(tmp_path):
    from nmt import config as config_module
    from nmt.errors import UserError
    from nmt.rundir import check_for_training

    toy = Path(__file__).resolve().parents[2] / "configs" / "toy.yaml"
    cfg = config_module.load(toy)
    (tmp_path / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.json").write_text('{"dir": "ckpt-00000010"}', encoding="utf-8")
    kept = config_module.load(toy, ["train.keep_checkpoints=3", "train.average_checkpoints=true"])
    assert check_for_training(kept, tmp_path, resume=True, overwrite=False) is True
    other = config_module.load(toy, ["train.keep_checkpoints=3", "train.init_from=elsewhere"])
    with pytest.raises(UserError, match=r"holds a different config \(train.init_from: None -> 'elsewhere'\)"):
        check_for_training(other, tmp_path, resume=True, overwrite=False)
