"""train.py end to end: learning on the toy corpus, reproducibility, kill -9 and exact resume,
the time budget, NaN handling and the run directory's contents.

Trainings run as subprocesses of train.py, as a user runs them. The tiny model below takes a few
seconds per run; the BLEU test trains the real toy config (smaller under CI=true).
"""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CI = os.environ.get("CI") == "true"

TINY = [
    "model.embedding_dim=16", "model.encoder_units=32", "model.decoder_units=32",
    "model.attention_units=32", "model.output_dim=32",
    "model.embedding_dropout=0.1", "model.output_dropout=0.1",  # dropout: its RNG state must resume too
    "data.batch_size=32", "train.steps_per_epoch=20", "train.max_steps=60",
    "train.checkpoint_every=10", "train.eval_max_sentences=10", "train.tensorboard=false",
    "train.verbose=0", "decode.beam_size=1",
]


def _env():
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = str(ROOT)
    return env


def train_cmd(run_dir, *overrides, resume=False):
    cmd = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "toy.yaml"),
           "--run-dir", str(run_dir)]
    for o in overrides:
        cmd += ["--set", o]
    if resume:
        cmd.append("--resume")
    return cmd


def run_train(run_dir, *overrides, resume=False, timeout=600):
    proc = subprocess.run(train_cmd(run_dir, *overrides, resume=resume), capture_output=True,
                          text=True, cwd=ROOT, env=_env(), timeout=timeout)
    return proc


def step_losses(run_dir):
    """{step: loss} from logs/steps.tsv; a step logged twice (before a kill and after the resume)
    keeps its later value."""
    losses = {}
    with open(Path(run_dir) / "logs" / "steps.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            losses[int(row["step"])] = float(row["loss"])
    return losses


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """One tokenizer for the tiny runs (training reuses a run directory's tokenizer)."""
    run = tmp_path_factory.mktemp("first") / "run"
    proc = run_train(run, *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


def _fresh_run(tmp_path, tokenizer_dir, name):
    run = tmp_path / name
    run.mkdir()
    shutil.copytree(tokenizer_dir / "tokenizer", run / "tokenizer")
    return run


def test_run_directory_layout(tokenizer_dir):
    run = tokenizer_dir
    for path in ("config.yaml", "tokenizer/tokenizer.json", "model.keras", "export/saved_model.pb",
                 "checkpoints/last.json", "checkpoints/best.json", "logs/train.csv", "logs/steps.tsv"):
        assert (run / path).exists(), path
    losses = step_losses(run)
    assert sorted(losses) == list(range(1, 61))
    with open(run / "logs" / "train.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and {"loss", "val_loss", "val_bleu", "learning_rate"} <= set(rows[0])


def test_same_seed_same_losses(tmp_path, tokenizer_dir):
    run = _fresh_run(tmp_path, tokenizer_dir, "again")
    proc = run_train(run, *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, again = step_losses(tokenizer_dir), step_losses(run)
    assert first == again  # bit-identical on CPU
    other = _fresh_run(tmp_path, tokenizer_dir, "other_seed")
    proc = run_train(other, *TINY, "train.seed=7")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert step_losses(other)[1] != first[1]


def test_kill_9_mid_epoch_then_resume_gives_the_same_losses(tmp_path, tokenizer_dir):
    run = _fresh_run(tmp_path, tokenizer_dir, "killed")
    proc = subprocess.Popen(train_cmd(run, *TINY), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    steps_file = run / "logs" / "steps.tsv"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if steps_file.exists() and max(step_losses(run) or [0]) >= 33:
                break  # mid-epoch 2 (20 steps an epoch), after the checkpoint at step 30
            if proc.poll() is not None:
                pytest.fail("training ended before it could be killed")
            time.sleep(0.05)
        else:
            pytest.fail("training did not reach step 33 in time")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "model.keras").exists()
    resumed = run_train(run, *TINY, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from step" in resumed.stderr
    got, want = step_losses(run), step_losses(tokenizer_dir)
    assert sorted(got) == sorted(want) == list(range(1, 61))
    for step in want:
        assert abs(got[step] - want[step]) <= 1e-6, (step, got[step], want[step])


def test_resume_refuses_a_different_config_and_existing_runs(tmp_path, tokenizer_dir):
    run = _fresh_run(tmp_path, tokenizer_dir, "guarded")
    shutil.copytree(tokenizer_dir / "checkpoints", run / "checkpoints")
    shutil.copy(tokenizer_dir / "config.yaml", run / "config.yaml")
    proc = run_train(run, *TINY, "model.decoder_units=64", resume=True)
    assert proc.returncode == 2
    assert "holds a different config (model.decoder_units: 32 -> 64)" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_train(run, *TINY)
    assert proc.returncode == 2 and "pass --resume to continue it or --overwrite" in proc.stderr
    proc = run_train(tmp_path / "empty", *TINY, resume=True)
    assert proc.returncode == 2 and "has no checkpoint to resume from" in proc.stderr


def test_time_budget_stops_cleanly_and_exports(tmp_path, tokenizer_dir):
    run = _fresh_run(tmp_path, tokenizer_dir, "budget")
    proc = run_train(run, *TINY, "train.max_steps=100000", "train.max_time=5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train.max_time=5s spent" in proc.stderr
    assert (run / "model.keras").exists() and (run / "export" / "saved_model.pb").exists()
    assert 0 < max(step_losses(run)) < 100000


def test_nan_loss_stops_with_a_clear_message(tmp_path, tokenizer_dir):
    run = _fresh_run(tmp_path, tokenizer_dir, "nan")
    proc = run_train(run, *TINY, "train.learning_rate=1.0e+30", "train.clip_norm=null")
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: training stopped: the loss became NaN or infinite at step ")
    assert "Traceback" not in proc.stderr


def test_mixed_bfloat16_with_xla_trains_and_exports(tmp_path, tokenizer_dir):
    """train.precision=mixed_bfloat16 and train.jit_compile=true: bucketed shapes compile, the loss
    falls like float32's, and the exported model translates."""
    run = _fresh_run(tmp_path, tokenizer_dir, "bf16")
    proc = run_train(run, *TINY, "train.precision=mixed_bfloat16", "train.jit_compile=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    got, want = step_losses(run), step_losses(tokenizer_dir)
    assert sorted(got) == list(range(1, 61))
    assert abs(got[1] - want[1]) < 0.05 * want[1]  # same start, bfloat16 rounding apart
    assert got[60] < got[1]
    assert (run / "export" / "saved_model.pb").exists()


@pytest.mark.slow
def test_toy_config_reaches_dev_bleu_90(tmp_path):
    """The README's main job: the toy config learns number translation (dev BLEU >= 90)."""
    run = tmp_path / "toy"
    overrides = ["train.verbose=0", "train.tensorboard=false"]
    if CI:
        overrides += ["train.epochs=2"]  # about 2.5 minutes on 2 cores
    proc = run_train(run, *overrides, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(run / "logs" / "train.csv", encoding="utf-8") as f:
        best = max(float(row["val_bleu"]) for row in csv.DictReader(f))
    assert best >= 90.0, proc.stderr[-2000:]

    # On the trained model: beam search (5) finds, for every dev sentence, a translation the model
    # scores at least as high as greedy search's, and its dev BLEU is at least greedy's.
    from nmt import evaluation
    from nmt.translator import load_run

    translator = load_run(run)
    dev_src = (ROOT / "data" / "numbers" / "dev.en").read_text(encoding="utf-8").splitlines()
    dev_ref = (ROOT / "data" / "numbers" / "dev.de").read_text(encoding="utf-8").splitlines()
    greedy = translator.translate_nbest(dev_src, beam_size=1, nbest=1)
    beam = translator.translate_nbest(dev_src, beam_size=5, nbest=1)
    for sentence, g, b in zip(dev_src, greedy, beam):
        assert b[0].score >= g[0].score - 1e-5, (sentence, g[0], b[0])
    greedy_bleu = evaluation.score([h[0].text for h in greedy], dev_ref).bleu
    beam_bleu = evaluation.score([h[0].text for h in beam], dev_ref).bleu
    assert beam_bleu >= greedy_bleu, (beam_bleu, greedy_bleu)


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


@pytest.mark.slow
def test_two_multi_worker_processes_match_a_single_worker(tmp_path, tokenizer_dir):
    """Two MultiWorkerMirroredStrategy workers on 127.0.0.1 (TF_CONFIG), each taking half of every
    global batch of 32, against one worker with the same global batches.

    Tolerance: each replica averages the loss over its own tokens and the gradients are averaged
    over replicas, while a single worker averages over all tokens of the batch; the halves hold
    slightly different token counts, so the losses agree to about 1e-4 relative, not exactly.
    """
    import json

    steps = ["train.max_steps=6"]
    single = _fresh_run(tmp_path, tokenizer_dir, "single")
    proc = run_train(single, *TINY, *steps)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ports = _free_ports(2)
    workers = []
    for index in range(2):
        run = _fresh_run(tmp_path, tokenizer_dir, f"worker{index}")
        env = _env()
        env["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        })
        log = open(tmp_path / f"worker{index}.log", "w")
        cmd = train_cmd(run, *TINY, *steps, "train.distribute=multi_worker")
        workers.append((run, log, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)))
    try:
        for run, log, proc in workers:
            assert proc.wait(timeout=600) == 0, (tmp_path / f"{run.name}.log").read_text()[-3000:]
    finally:
        for _, log, proc in workers:
            if proc.poll() is None:
                proc.kill()
            log.close()
    want = step_losses(single)
    for run, _, _ in workers:
        got = step_losses(run)
        assert sorted(got) == sorted(want) == list(range(1, 7))
        for step in want:
            assert abs(got[step] - want[step]) <= 1e-3 * abs(want[step]), (step, got[step], want[step])
