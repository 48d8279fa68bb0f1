"""nmt.cli.quiet: TensorFlow's own messages stay off the command-line tools' standard error unless
--verbose / NMT_VERBOSE=1 asks for them. Run in fresh interpreters: the settings apply only when
nmt imports TensorFlow first, as the tools do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Six tf.functions of one Python function, each traced once (as decode.tune_length_penalty traces
# one search per length penalty): TensorFlow's Python logger warns about frequent retracing.
SCRIPT = """
from nmt.cli.quiet import import_tensorflow
import_tensorflow()
import tensorflow as tf

def make(k):
    def f(x):
        return x * k
    return tf.function(f)

for k in range(6):
    make(k)(tf.constant(1.0))
print("done")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_tensorflow_python_warnings_only_with_verbose(verbose):
    env = {k: v for k, v in os.environ.items() if k not in ("NMT_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    if verbose:
        env["NMT_VERBOSE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr[-2000:]
    assert ("triggered tf.function retracing" in proc.stderr) == verbose, proc.stderr[-2000:]
    if not verbose:
        assert proc.stderr == ""
