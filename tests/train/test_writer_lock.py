"""One writer per run directory (nmt.rundir.WriterLock): a second training process on the same directory is
refused with one line naming the directory and the process that holds it, before it reads or writes
anything; the lock dies with its process (kill -9 included), so --resume right after a kill works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from nmt import rundir
from nmt.errors import UserError
from tests.helpers import REPO_ROOT, TINY, fresh_run, step_losses, tiny_run, train_cmd, train_env  # noqa: F401

HOLD = """
import sys, time
from nmt.rundir import WriterLock
lock = WriterLock(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


def hold_lock(run_dir) -> subprocess.Popen:
    """Another process that takes the run directory's writer lock and keeps it (until killed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_the_lock_is_held_by_one_process_and_dies_with_it(tmp_path):
    run = tmp_path / "run"
    holder = hold_lock(run)
    try:
        with pytest.raises(UserError) as error:
            rundir.WriterLock.check(run)
        assert str(error.value) == (
            f"--run-dir {run}: another training process (pid {holder.pid}) is writing this run directory; "
            "wait for it to end or stop it (a run directory has one writer at a time)"
        )
        with pytest.raises(UserError, match=f"pid {holder.pid}"):
            rundir.WriterLock(run)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    rundir.WriterLock.check(run)  # no stale lock after kill -9
    lock = rundir.WriterLock(run)
    assert (run / rundir.LOCK_FILE).read_text() == f"{os.getpid()}\n"
    other = subprocess.run(  # another process sees this one's lock
        [sys.executable, "-c", "import sys; from nmt.rundir import WriterLock; WriterLock.check(sys.argv[1])", run],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        capture_output=True,
        text=True,
    )
    assert other.returncode != 0 and f"another training process (pid {os.getpid()})" in other.stderr
    lock.release()
    rundir.WriterLock.check(run)


def test_the_lock_file_is_not_output(tmp_path):
    """--overwrite keeps the lock file, and a directory holding only it counts as empty."""
    run = tmp_path / "run"
    rundir.WriterLock(run).release()
    assert [p.name for p in run.iterdir()] == [rundir.LOCK_FILE]
    rundir._check_clearable(run)  # empty for --overwrite: no error
    (run / rundir.CONFIG_FILE).write_text(
        "".join(f"{section}: {{}}\n" for section in rundir.CONFIG_SECTIONS), encoding="utf-8"
    )
    assert rundir.clear(run) == [rundir.CONFIG_FILE]
    assert (run / rundir.LOCK_FILE).exists()


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]


@pytest.mark.slow
def test_a_second_train_py_is_refused_while_the_first_runs_and_resume_works_after_a_kill(tmp_path, tiny_run):  # noqa: F811
    run = fresh_run(tmp_path, tiny_run, "run")
    endless = [*TINY, "train.max_steps=100000"]
    first = subprocess.Popen(
        train_cmd(run, *endless), cwd=REPO_ROOT, env=train_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while not ((run / "logs" / "steps.tsv").exists() and max(step_losses(run) or [0]) >= 12):
            assert first.poll() is None, "the first training process ended early"
            assert time.monotonic() < deadline, "the first training process did not reach step 12"
            time.sleep(0.1)
        assert (run / rundir.LOCK_FILE).read_text().strip() == str(first.pid)
        expected = f"another training process (pid {first.pid}) is writing this run directory"
        for extra in (["--resume"], ["--overwrite"], []):
            second = subprocess.run(
                train_cmd(run, *endless) + extra, cwd=REPO_ROOT, env=train_env(), capture_output=True, text=True
            )
            assert expected in one_error_line(second), extra
            assert first.poll() is None  # the first goes on, and --overwrite deleted nothing
            assert (run / rundir.CONFIG_FILE).is_file() and (run / "checkpoints" / "last.json").is_file()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
        resumed = subprocess.run(
            train_cmd(run, *TINY, "train.max_steps=20", resume=True),  # the same config, a budget of 20 steps
            cwd=REPO_ROOT,
            env=train_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "resumed from step" in resumed.stderr
        assert (run / "model.keras").is_file()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=60)
