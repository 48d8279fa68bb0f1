"""train.py's reproducibility: the same seed gives the same losses, and a run killed with kill -9
(mid-epoch, in a whole-pass epoch, before its first checkpoint) and resumed gives the uninterrupted
run's losses with no step logged twice.

Trainings run as subprocesses of train.py, as a user runs them (tests/helpers.py); tiny_run, the
tiny config's run made once per test session, gives the reference losses and the tokenizer.
"""

import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import (
    TINY,
    assert_logs_have_no_duplicates,
    fresh_run,
    kill_and_resume,
    run_train,
    step_losses,
    train_env,
)

ROOT = Path(__file__).resolve().parents[2]

# Each test runs train.py end to end.
pytestmark = pytest.mark.slow


def test_same_seed_same_losses(tmp_path, tiny_run):
    run = fresh_run(tmp_path, tiny_run, "again")
    proc = run_train(run, *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, again = step_losses(tiny_run), step_losses(run)
    assert first == again  # bit-identical on CPU
    other = fresh_run(tmp_path, tiny_run, "other_seed")
    proc = run_train(other, *TINY, "train.seed=7")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert step_losses(other)[1] != first[1]


def test_kill_9_mid_epoch_then_resume_gives_the_same_losses(tmp_path, tiny_run):
    # Mid-epoch 2 (20 steps an epoch), after the checkpoint at step 30.
    run = fresh_run(tmp_path, tiny_run, "killed")
    got, resumed_from = kill_and_resume(run, TINY, kill_after=33)
    assert resumed_from in (30, 40, 50), resumed_from  # a periodic checkpoint, mid-epoch
    want = step_losses(tiny_run)
    assert sorted(got) == sorted(want) == list(range(1, 61))
    for step in want:
        assert abs(got[step] - want[step]) <= 1e-6, (step, got[step], want[step])
    assert_logs_have_no_duplicates(run, steps=60, epochs=3)


@pytest.mark.parametrize("shuffle", ["whole split", "in blocks"])
def test_resume_with_whole_passes_as_epochs(tmp_path, tiny_run, shuffle):
    """Epochs that are whole passes over a small corpus (steps_per_epoch: null, as in the shipped
    configs), so the stream crosses epoch boundaries and reshuffles, and the last, partial epoch
    (max_steps) runs in a fit call of its own: an uninterrupted run against one killed in epoch 2
    and resumed from an epoch-end checkpoint. With dropout, whose generators resume too. The split is
    shuffled whole, or (data.shuffle_block=150) in 4 blocks as a corpus too large to hold would be."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for split, n in (("train", 600), ("dev", 10), ("test", 10)):
        for lang in ("en", "de"):
            lines = (ROOT / "data" / "numbers" / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()[:n]
            (corpus / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    overrides = (
        [o for o in TINY if not o.startswith("train.steps_per_epoch=")]
        + [
            f"corpus.dir={corpus}",
            "corpus.src_lang=en",
            "corpus.tgt_lang=de",
        ]
        + (["data.shuffle_block=150"] if shuffle == "in blocks" else [])
    )
    whole = fresh_run(tmp_path, tiny_run, "whole")
    proc = run_train(whole, *overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.search(r"one pass over the training data: (\d+) batches = 1 epoch", proc.stderr)
    assert match, proc.stderr[-3000:]
    per_epoch = int(match.group(1))
    assert 20 < per_epoch < 30, per_epoch  # so 60 steps end inside epoch 3, after a fit call of its own
    want = step_losses(whole)
    assert_logs_have_no_duplicates(whole, steps=60, epochs=3)
    run = fresh_run(tmp_path, tiny_run, "killed")
    got, resumed_from = kill_and_resume(run, overrides, kill_after=per_epoch + 4)
    assert per_epoch <= resumed_from < 60, resumed_from  # the epoch-end checkpoint, or a later periodic one
    assert sorted(got) == sorted(want) == list(range(1, 61))
    for step in want:
        assert abs(got[step] - want[step]) <= 1e-6, (step, got[step], want[step])
    assert_logs_have_no_duplicates(run, steps=60, epochs=3)


def test_resume_before_the_first_checkpoint_starts_at_step_zero(tmp_path, tiny_run):
    """A run killed in its first seconds leaves config.yaml, the tokenizer and a few logged steps but no
    checkpoint: --resume starts it again from step 0 with its config, says so, and gives the
    uninterrupted run's losses with no step logged twice.

    It resumes with Keras' progress bar on (train.verbose=1, a change --resume allows; NMT_PROGRESS=1 as if
    on a terminal): each epoch's dev BLEU line starts a line of its own on standard error, and nothing is
    written to standard output."""
    run = fresh_run(tmp_path, tiny_run, "early")
    shutil.copy(tiny_run / "config.yaml", run / "config.yaml")
    (run / "logs").mkdir()
    rows = (tiny_run / "logs" / "steps.tsv").read_text(encoding="utf-8").splitlines()[:4]
    (run / "logs" / "steps.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with_bar = [o for o in TINY if o != "train.verbose=0"] + ["train.verbose=1"]
    proc = run_train(run, *with_bar, resume=True, env=dict(train_env(), NMT_PROGRESS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == ""
    dev_lines = re.findall(r"(^|.)(epoch \d+ dev)", proc.stderr, flags=re.M)
    assert len(dev_lines) == 3 and all(before == "" for before, _ in dev_lines), proc.stderr[-3000:]
    plain = re.sub(r"\x1b\[[0-9;]*m", "", proc.stderr)  # Keras colours its bar
    assert re.search(r"\d+/20 .*loss", plain), plain[-3000:]  # the bar itself, on standard error
    assert "has no checkpoint yet" in proc.stderr and "starting from step 0 with its config" in proc.stderr
    assert step_losses(run) == step_losses(tiny_run)
    assert_logs_have_no_duplicates(run, steps=60, epochs=3)
