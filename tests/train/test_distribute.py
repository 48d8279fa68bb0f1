"""train.py over two replicas (MultiWorkerMirroredStrategy with two processes, MirroredStrategy with
two logical CPU devices) against one replica with the same global batches.

Trainings run as subprocesses of train.py, as a user runs them (tests/helpers.py); tiny_run, the
tiny config's run made once per test session, gives the reference losses and the tokenizer.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY, fresh_run, run_train, step_losses, train_cmd, train_env

ROOT = Path(__file__).resolve().parents[2]

# Each test runs train.py end to end.
pytestmark = pytest.mark.slow


# Dropout masks depend on how the batch is split across replicas: off where runs are compared.
NO_DROPOUT = ["model.embedding_dropout=0", "model.output_dropout=0"]


# Where replicas are compared with one device: no dropout, and an optimizer whose update scales
# with the gradient (Adam with epsilon 1 >> sqrt(v) is SGD with learning rate lr; no clipping), so
# a gradient R times too large or too small shows in the losses (plain Adam and clipping hide it):
# doubling the learning rate here moves the losses of steps 2-6 by 1e-4 to 7e-4 relative.
REPLICA_COMPARISON = [
    "train.max_steps=6",
    *NO_DROPOUT,
    "train.clip_norm=null",
    "train.epsilon=1",
    "train.learning_rate=1.0",
]


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_run):
    """One replica with REPLICA_COMPARISON: the run both tests compare their two replicas with."""
    run = fresh_run(tmp_path_factory.mktemp("replicas"), tiny_run, "single")
    proc = run_train(run, *TINY, *REPLICA_COMPARISON)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


def _free_ports(n):
    import socket

    sockets, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


def test_two_multi_worker_processes_match_a_single_worker(tmp_path, tiny_run, single):
    """Two MultiWorkerMirroredStrategy workers on 127.0.0.1 (TF_CONFIG), each taking half of every
    global batch of 32, against one worker with the same global batches.

    Each replica divides its token sum by the token count of the global batch, so the summed
    gradient is the global batch's, as on one worker: the losses agree to float rounding (measured
    1.4e-7 relative; 1e-5 allowed; a gradient twice too large moves them by 1e-4 to 7e-4, see
    REPLICA_COMPARISON). Averaging per-replica means instead differed by up to 3e-4, and
    both replicas taking the same half by 9e-4.
    """

    steps = REPLICA_COMPARISON
    ports = _free_ports(2)
    workers = []
    for index in range(2):
        run = fresh_run(tmp_path, tiny_run, f"worker{index}")
        env = train_env()
        env["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                "task": {"type": "worker", "index": index},
            }
        )
        log = open(tmp_path / f"worker{index}.log", "w")
        cmd = train_cmd(run, *TINY, *steps, "train.distribute=multi_worker")
        workers.append((run, log, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)))
    try:
        for run, _log, proc in workers:
            assert proc.wait(timeout=600) == 0, (tmp_path / f"{run.name}.log").read_text()[-3000:]
    finally:
        for _, log, proc in workers:
            if proc.poll() is None:
                proc.kill()
            log.close()
    want = step_losses(single)
    for run, _, _ in workers:
        log = (tmp_path / f"{run.name}.log").read_text()
        assert "distribution: MultiWorkerMirroredStrategy, 2 replica(s) in sync" in log, log[-3000:]
        got = step_losses(run)
        assert sorted(got) == sorted(want) == list(range(1, 7))
        for step in want:
            assert abs(got[step] - want[step]) <= 1e-5 * abs(want[step]), (step, got[step], want[step])


MIRRORED_ON_TWO_CPUS = """
import sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from nmt.train import trainer as training

# What MirroredStrategy() does on a machine with two GPUs, here on two logical CPU devices.
training.make_strategy = lambda name: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
sys.path.insert(0, sys.argv[1])
import train

sys.exit(train.main(sys.argv[2:]))
"""


def test_mirrored_strategy_with_two_replicas_matches_one(tmp_path, tiny_run, single):
    """MirroredStrategy over two replicas in one process (two logical CPU devices standing in for
    two GPUs), each taking half of every global batch, against one replica with the same batches.
    Same tolerance and reason as the multi-worker test; dropout is off as there."""
    steps = REPLICA_COMPARISON
    mirrored = fresh_run(tmp_path, tiny_run, "mirrored")
    cmd = [sys.executable, "-c", MIRRORED_ON_TWO_CPUS, str(ROOT)] + train_cmd(
        mirrored, *TINY, *steps, "train.distribute=mirrored"
    )[2:]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=train_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distribution: MirroredStrategy, 2 replica(s) in sync" in proc.stderr, proc.stderr[-3000:]
    want, got = step_losses(single), step_losses(mirrored)
    assert sorted(got) == sorted(want) == list(range(1, 7))
    for step in want:
        assert abs(got[step] - want[step]) <= 1e-5 * abs(want[step]), (step, got[step], want[step])
