"""train.py stopping early: the time budget (a clean stop with an export) and a NaN loss (a
one-line error with a remedy that works).

Trainings run as subprocesses of train.py, as a user runs them (tests/helpers.py); tiny_run, the
tiny config's run made once per test session, gives the reference losses and the tokenizer.
"""

import pytest

from tests.helpers import TINY, fresh_run, run_train, step_losses


@pytest.mark.slow
def test_time_budget_stops_cleanly_and_exports(tmp_path, tiny_run):
    run = fresh_run(tmp_path, tiny_run, "budget")
    proc = run_train(run, *TINY, "train.max_steps=100000", "train.max_time=5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train.max_time=5s spent" in proc.stderr
    assert (run / "model.keras").exists() and (run / "export" / "saved_model.pb").exists()
    assert 0 < max(step_losses(run)) < 100000


@pytest.mark.slow
def test_nan_loss_stops_with_a_clear_message(tmp_path, tiny_run):
    run = fresh_run(tmp_path, tiny_run, "nan")
    proc = run_train(run, *TINY, "train.learning_rate=1.0e+30", "train.clip_norm=null")
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: training stopped: the loss became NaN or infinite at step ")
    assert "Traceback" not in proc.stderr
    # before the first checkpoint (every 10 steps): no "checkpoint None", and a remedy that works
    assert "before the first checkpoint" in last and "None" not in last
    assert "lower train.learning_rate" in last and "--overwrite" in last and "--resume" not in last


def test_nan_message_after_a_checkpoint_does_not_suggest_what_resume_refuses(tmp_path):
    from nmt.train.trainer import nan_message

    text = nan_message(412, tmp_path / "checkpoints" / "ckpt-00000400", tmp_path)
    assert "ckpt-00000400" in text and "--resume would repeat the same steps" in text
    assert "lower train.learning_rate" in text and "--overwrite" in text and "another --run-dir" in text
