"""Helpers shared by several test files (imported as ``tests.helpers``; not a test file itself).

- ``build_once``: a directory made once per test session and shared by the pytest-xdist workers.
- The translator run: a small attention model on the built-in numbers corpus, trained in process
  (the translator, CLI, fuzz, safety and packaging tests), and the per-sentence search oracle.
- train.py runs as a user starts them (the training tests): the tiny config, its command line, the
  step losses it logs, and a kill -9 followed by --resume.
"""

from __future__ import annotations

import csv
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------------------------ once per session


def session_dir(tmp_path_factory) -> Path:
    """The directory this test session's workers share: with pytest-xdist each worker's base
    temporary directory is popen-gwN inside the session's own one; without it, the base directory."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """session_dir/name, made by build(directory) in the first worker that asks for it.

    The others wait on a file lock (flock: released by the kernel if its holder dies) and reuse it.
    build writes into a scratch directory that is renamed to the final name when build returns, so
    the final name exists only complete; a build that failed leaves nothing, and the next worker
    that asks tries again (and fails the same way, with its own traceback)."""
    root = session_dir(tmp_path_factory)
    target = root / name
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not target.is_dir():
                scratch = root / f".{name}.building"
                shutil.rmtree(scratch, ignore_errors=True)
                build(scratch)
                scratch.rename(target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


# ------------------------------------------------------------------------------------------ translator run


def run_corpus() -> dict:
    """The translator run's corpus: 1500 training and 100 test pairs of numbers up to 3 digits."""
    from nmt.text import toy_corpus

    return toy_corpus.generate(seed=5, sizes={"train": 1500, "test": 100}, max_digits=3)


def make_run(directory: Path, architecture: str = "attention", epochs: int | None = None, batch_size: int = 16) -> dict:
    """Writes config.yaml, tokenizer/ and model.keras into directory; returns {"dir", "test": [(en, de)]}.

    Separate (not joint) SentencePiece models, so a reload that mixes up the two models
    (tensorflow/text#1304) shows. The global seed is set before the model is built, so its initial
    weights, and after training its weights, do not depend on what ran before in the process.
    epochs=0 saves the untrained model. The default, 8 epochs, makes translations peaked (no
    near-ties between beams) and mostly right: seeds 1-4 gave 33-36 of the first 40 test sentences
    and 88-90 of 100 right.
    """
    import keras

    from nmt import config as config_module
    from nmt.model.seq2seq import build_model
    from nmt.text.tokenizer import BOS_ID, EOS_ID, Tokenizers, train_tokenizers

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    corpus = run_corpus()
    cfg = config_module.load(
        None,
        [
            f"model.architecture={architecture}",
            "model.embedding_dim=32",
            "model.encoder_units=32",
            "model.decoder_units=64",
            "model.attention_units=32",
            "model.output_dim=64",
            "tokenizer.vocab_size=80",
            "tokenizer.joint=false",
            "tokenizer.byte_fallback=false",
            f"decode.batch_size={batch_size}",
        ],
    )
    train = corpus["train"]
    train_tokenizers(cfg.tokenizer, [s for s, _ in train], [t for _, t in train], directory / "tokenizer")
    tokenizers = Tokenizers.load(directory / "tokenizer")
    keras.utils.set_random_seed(1)
    model = build_model(cfg.model, tokenizers.src.vocab_size, tokenizers.tgt.vocab_size)
    epochs = 8 if epochs is None else epochs
    if epochs:
        src = [tokenizers.src.encode(s) for s, _ in train]
        tgt = [tokenizers.tgt.encode(t) for _, t in train]
        x = np.zeros([len(src), max(map(len, src))], np.int32)
        y_in = np.zeros([len(src), max(map(len, tgt)) + 1], np.int32)
        y_out = np.zeros_like(y_in)
        for i, (s, t) in enumerate(zip(src, tgt)):
            x[i, : len(s)] = s
            y_in[i, : len(t) + 1] = [BOS_ID] + t
            y_out[i, : len(t) + 1] = t + [EOS_ID]
        model.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        )
        model.fit((x, y_in), y_out, batch_size=64, epochs=epochs, verbose=0)
    model.save(directory / "model.keras")
    (directory / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
    return {"dir": directory, "test": corpus["test"]}


def shared_run(tmp_path_factory) -> dict:
    """The trained attention run (make_run's defaults), made once per test session for all workers.
    Tests read it and never write into it (copy it first)."""
    directory = build_once(tmp_path_factory, "translator_run", make_run)
    return {"dir": directory, "test": run_corpus()["test"]}


def mixed_sentences(run, n=100):
    """n test sentences of mixed lengths with empty and blank lines among them, not sorted."""
    sentences = [s for s, _ in run["test"][:n]]
    sentences[3:3] = [""]
    sentences[10:10] = ["   "]
    sentences.append("")
    return sentences


_ORACLES = {}


def search_one(translator, sentence: str, beam_size: int, nbest: int):
    """Oracle: the sentence alone (batch of 1, no sorting, no padding) through Python SentencePiece and
    nmt.decode.search (in a tf.function of its own, for speed)."""
    import tensorflow as tf

    from nmt.decode.search import search

    key = (id(translator), beam_size, nbest)
    if key not in _ORACLES:
        settings = translator.settings(beam_size=beam_size, nbest=nbest)
        _ORACLES[key] = tf.function(
            lambda ids: search(translator.model, ids, settings),
            input_signature=[tf.TensorSpec([1, None], tf.int32)],
        )
    result = _ORACLES[key](tf.constant([translator.tokenizers.src.encode(sentence)], tf.int32))
    texts = [translator.tokenizers.tgt.decode(row) for row in result.tokens.numpy()[0]]
    return texts, result.scores.numpy()[0].tolist()


def assert_same_search(texts, scores, want_texts, want_scores, tol=1e-4):
    """A translation against the per-sentence oracle: the same scores, and the same texts except where
    two hypotheses tie (equal scores within tol). Batched and single-sentence searches round differently
    (padding, other matmul shapes), and the model itself differs between CPUs, so at a tie either text
    is a correct answer; a wrong text with a different score still fails."""
    np.testing.assert_allclose(scores, want_scores, rtol=tol, atol=tol)
    for text, score, want_text, want_score in zip(texts, scores, want_texts, want_scores):
        assert text == want_text or abs(score - want_score) <= tol, (text, score, want_text, want_score)


# ------------------------------------------------------------------------------------------ train.py runs

# The tiny config of the training tests: a few seconds of training per run, 3 epochs of 20 steps.
TINY = [
    "model.embedding_dim=16",
    "model.encoder_units=32",
    "model.decoder_units=32",
    "model.attention_units=32",
    "model.output_dim=32",
    "model.embedding_dropout=0.1",
    "model.output_dropout=0.1",  # dropout: its RNG state must resume too
    "data.batch_size=32",
    "train.steps_per_epoch=20",
    "train.max_steps=60",
    "train.checkpoint_every=10",
    "train.keep_checkpoints=2",  # the last two epoch checkpoints stay (--checkpoint average, STEP)
    "train.eval_max_sentences=10",
    "train.tensorboard=false",
    "train.verbose=0",
    "decode.beam_size=1",
]


def train_env() -> dict:
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def train_cmd(run_dir, *overrides, resume=False) -> list:
    """train.py on configs/toy.yaml with --set overrides."""
    cmd = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        "--config",
        str(REPO_ROOT / "configs" / "toy.yaml"),
        "--run-dir",
        str(run_dir),
    ]
    for o in overrides:
        cmd += ["--set", o]
    if resume:
        cmd.append("--resume")
    return cmd


def run_train(run_dir, *overrides, resume=False, timeout=600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        train_cmd(run_dir, *overrides, resume=resume),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=train_env() if env is None else env,
        timeout=timeout,
    )


def step_losses(run_dir) -> dict:
    """{step: loss} from logs/steps.tsv; a step logged twice (before a kill and after the resume)
    keeps its later value."""
    losses = {}
    with open(Path(run_dir) / "logs" / "steps.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            losses[int(row["step"])] = float(row["loss"])
    return losses


def tiny_run(tmp_path_factory) -> Path:
    """train.py with TINY (60 steps), run once per test session for all workers: the reference
    losses and run directory of the training tests, and the tokenizer their own runs reuse.
    Tests read it and never write into it."""

    def build(directory):
        proc = run_train(directory, *TINY)
        assert proc.returncode == 0, proc.stderr[-3000:]

    return build_once(tmp_path_factory, "tiny_run", build)


def fresh_run(parent: Path, tiny: Path, name: str) -> Path:
    """parent/name holding only the tiny run's tokenizer (train.py reuses a run directory's tokenizer)."""
    run = parent / name
    run.mkdir()
    shutil.copytree(tiny / "tokenizer", run / "tokenizer")
    return run


def kill_and_resume(run, overrides, kill_after):
    """Starts train.py, SIGKILLs it once `kill_after` steps are logged, resumes it.

    -> (losses by step, the step the resume started from). The step log is flushed every step,
    so the kill lands in the middle of training, and the resume must start from a checkpoint
    before the end (a test that killed a finished run would prove nothing)."""
    proc = subprocess.Popen(
        train_cmd(run, *overrides),
        cwd=REPO_ROOT,
        env=train_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    steps_file = run / "logs" / "steps.tsv"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if steps_file.exists() and max(step_losses(run) or [0]) >= kill_after:
                break
            if proc.poll() is not None:
                pytest.fail("training ended before it could be killed")
            time.sleep(0.05)
        else:
            pytest.fail(f"training did not reach step {kill_after} in time")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "model.keras").exists()
    resumed = run_train(run, *overrides, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    match = re.search(r"resumed from step (\d+)", resumed.stderr)
    assert match, resumed.stderr[-3000:]
    return step_losses(run), int(match.group(1))


def assert_logs_have_no_duplicates(run, steps, epochs):
    with open(run / "logs" / "steps.tsv", encoding="utf-8") as f:
        assert [int(row["step"]) for row in csv.DictReader(f, delimiter="\t")] == list(range(1, steps + 1))
    with open(run / "logs" / "train.csv", encoding="utf-8") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(epochs))
