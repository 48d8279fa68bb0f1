"""Preparing a run (nmt.train.prepare), without TensorFlow: the run directory checked once, the tokenizer
trained or kept, the training pairs filtered, and nothing written or logged until every check has passed.

prepare logs through the standard `logging` logger "nmt" and installs no handler; these tests give it the
handler train.py gives it on standard error (nmt.cli.train.StderrHandler), so they read what train.py
prints."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nmt import config, rundir
from nmt.cli.train import StderrHandler
from nmt.errors import UserError
from nmt.text import toy_corpus
from nmt.train.prepare import PreparedRun, prepare

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "configs" / "toy.yaml"


@pytest.fixture(autouse=True)
def printed_like_train_py():
    """The "nmt" logger prints on standard error as under train.py, for the length of a test."""
    logger = logging.getLogger("nmt")
    handler = StderrHandler()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory) -> list[str]:
    """--set overrides for a small numbers corpus in two files (dev and test held out of them)."""
    directory = tmp_path_factory.mktemp("corpus")
    pairs = [p for p in toy_corpus.generate(seed=3, sizes={"train": 500})["train"] if " " in p[0]][:400]
    assert len(pairs) == 400  # none of one word: corpus.max_len=1 filters every pair
    (directory / "train.en").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    (directory / "train.de").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    return [
        f"corpus.train_src={directory / 'train.en'}",
        f"corpus.train_tgt={directory / 'train.de'}",
        "corpus.dev_size=20",
        "corpus.test_size=20",
        "tokenizer.vocab_size=120",
        "tokenizer.byte_fallback=false",
    ]


def tree(path: Path) -> list:
    """Every entry under path with its bytes (None for a folder)."""
    return sorted((str(p.relative_to(path)), p.read_bytes() if p.is_file() else None) for p in path.rglob("*"))


def tokenizer_meta(run_dir: Path) -> dict:
    return json.loads((run_dir / rundir.TOKENIZER_DIR / "tokenizer.json").read_text(encoding="utf-8"))


def test_a_fresh_run_is_checked_then_written(tmp_path, corpus_files, capfd):
    cfg = config.load(TOY, corpus_files)
    run_dir = tmp_path / "run"
    prepared = prepare(cfg, run_dir)
    assert isinstance(prepared, PreparedRun) and prepared.run_dir == run_dir and prepared.resume is False
    assert prepared.cfg is cfg and len(prepared.corpus.dev) == 20 and len(prepared.corpus.test) == 20
    summary = prepared.train_split.summary
    assert summary.read == 360 and 0 < summary.kept == len(prepared.train_split) <= 360
    assert sorted(p.name for p in run_dir.iterdir()) == [rundir.LOCK_FILE, "config.yaml", "logs", "tokenizer"]
    assert (run_dir / rundir.CONFIG_FILE).read_text(encoding="utf-8") == cfg.to_yaml()
    assert list((run_dir / rundir.LOGS_DIR).iterdir()) == []
    assert tokenizer_meta(run_dir)
    err = capfd.readouterr().err.splitlines()
    assert err[0].startswith("corpus: train 360 pairs")
    assert err[1].startswith("tokenizer: trained unigram joint vocabulary of 120 pieces in ")
    assert err[1].endswith(f"-> {run_dir / 'tokenizer'}")
    assert err[2] == summary.format() and len(err) == 3


def test_a_restarted_or_resumed_run_keeps_its_tokenizer_and_overwrite_starts_over(tmp_path, corpus_files, capfd):
    cfg = config.load(TOY, corpus_files)
    run_dir = tmp_path / "run"
    first = prepare(cfg, run_dir)
    tokenizer = tree(run_dir / rundir.TOKENIZER_DIR)
    # The prepared run holds the directory's writer lock: a second preparation is refused until it goes.
    with pytest.raises(UserError, match=f"another training process \\(pid {os.getpid()}\\)"):
        prepare(cfg, run_dir)
    first.lock.release()
    capfd.readouterr()

    # The same config again, no checkpoint yet: its tokenizer is kept, the pairs filter the same.
    again = prepare(cfg, run_dir)
    assert again.resume is False and tree(run_dir / rundir.TOKENIZER_DIR) == tokenizer
    assert again.train_split.summary == first.train_split.summary
    assert "tokenizer: reusing " in capfd.readouterr().err
    again.lock.release()

    # --resume before the first checkpoint: from step 0, said so.
    assert prepare(cfg, run_dir, resume=True).resume is False
    assert "has no checkpoint yet" in capfd.readouterr().err

    # With a checkpoint: only --resume (or --overwrite) may go on; --resume may change train.max_steps.
    (run_dir / rundir.CHECKPOINTS_DIR).mkdir()
    (run_dir / rundir.CHECKPOINTS_DIR / "last.json").write_text("{}")
    with pytest.raises(UserError, match="pass --resume to continue it or --overwrite"):
        prepare(cfg, run_dir)
    resumed = prepare(config.load(TOY, [*corpus_files, "train.max_steps=7"]), run_dir, resume=True)
    assert resumed.resume is True and tree(run_dir / rundir.TOKENIZER_DIR) == tokenizer
    assert yaml.safe_load((run_dir / rundir.CONFIG_FILE).read_text(encoding="utf-8"))["train"]["max_steps"] == 7
    resumed.lock.release()
    capfd.readouterr()

    # --overwrite with another tokenizer: the earlier run's entries go, the user's own stay, a new tokenizer.
    (run_dir / rundir.MODEL_FILE).write_bytes(b"weights")
    (run_dir / "notes.txt").write_text("mine")
    other = config.load(TOY, [*corpus_files, "tokenizer.vocab_size=100"])
    fresh = prepare(other, run_dir, overwrite=True)
    assert fresh.resume is False
    assert sorted(p.name for p in run_dir.iterdir()) == [
        rundir.LOCK_FILE,
        "config.yaml",
        "logs",
        "notes.txt",
        "tokenizer",
    ]
    assert tokenizer_meta(run_dir)["config"]["vocab_size"] == 100
    err = capfd.readouterr().err
    assert f"--overwrite: removed checkpoints, config.yaml, logs, model.keras, tokenizer from {run_dir}" in err
    assert "tokenizer: trained " in err


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["tokenizer.vocab_size=5000"], "tokenizer.vocab_size=5000 is larger than"),
        (["corpus.max_len=1"], "raise corpus.max_len"),
        (["model.decoder_units=64"], "holds a different config"),
    ],
)
def test_a_failed_check_changes_and_prints_nothing(tmp_path, corpus_files, capfd, overrides, message):
    """An earlier run is left whole, byte for byte, whether the mistake is in the run directory, the
    tokenizer or the corpus filters, and even with --overwrite."""
    run_dir = tmp_path / "run"
    prepare(config.load(TOY, corpus_files), run_dir).lock.release()
    (run_dir / rundir.CHECKPOINTS_DIR).mkdir()
    (run_dir / rundir.CHECKPOINTS_DIR / "last.json").write_text("{}")
    before = tree(run_dir)
    capfd.readouterr()
    cfg = config.load(TOY, [*corpus_files, *overrides])
    overwrite = not message.startswith("holds")  # a different config is refused only without --overwrite
    with pytest.raises(UserError, match=message):
        prepare(cfg, run_dir, resume=not overwrite, overwrite=overwrite)
    assert tree(run_dir) == before
    assert capfd.readouterr() == ("", "")


def test_prepare_imports_no_tensorflow(tmp_path, corpus_files):
    code = (
        "import sys\n"
        "from nmt import config\n"
        "from nmt.train.prepare import prepare\n"
        "prepare(config.load(sys.argv[1], sys.argv[3:]), sys.argv[2])\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'tensorflow_text') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(TOY), str(tmp_path / "run"), *corpus_files],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "[]\n"
    assert (tmp_path / "run" / rundir.TOKENIZER_DIR / "tokenizer.json").is_file()
