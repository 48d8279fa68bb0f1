"""tests/harness/kill_resume.py at a reduced size: SIGKILL at random moments, then resume."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY, train_env

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI") == "true"


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path):
    """tests/harness/kill_resume.py at a reduced size: the tiny config killed with SIGKILL at random steps, one
    kill while a checkpoint directory is being written; every resume succeeds and the final weights
    (model and optimizer) and every step's loss equal the uninterrupted run's. The full variant is
    the script's default (configs/toy.yaml, 5 kills)."""
    kills = 2 if CI else 5
    cmd = [
        sys.executable,
        str(ROOT / "tests" / "harness" / "kill_resume.py"),
        "--kills",
        str(kills),
        "--seed",
        "3",
        "--work-dir",
        str(tmp_path),
        "--timeout",
        "600",
    ]
    for override in TINY:
        cmd += ["--set", override]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=train_env(), timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.count("\nkill ") == kills, proc.stdout
    assert re.search(r"while (a checkpoint|a second save of the same step) was written", proc.stdout), proc.stdout
    assert "final weights (" in proc.stdout, proc.stdout
    assert "result: every resume succeeded" in proc.stdout
