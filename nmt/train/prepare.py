"""Preparing a training run, before TensorFlow: the run directory, the tokenizer, the training pairs.

`prepare(cfg, run_dir, resume, overwrite)` is the one way a run is prepared; its result, a
`PreparedRun`, is what `nmt.train.trainer.train` takes (train.py: prepare, import TensorFlow,
train). In this order:

1. the run directory is checked (`nmt.rundir.check_for_training`: a new or empty directory, a run of
   the same config with --resume, or --overwrite of a run directory);
2. every corpus file is read through once (`nmt.text.corpus.Corpus`);
3. the SentencePiece tokenizer is trained on the training split, in memory, or the run directory's
   is read (a resumed or restarted run keeps its own; --overwrite trains a new one), or, for a
   fine-tuning run (`train.init_from`), the parent run's is read after its config is checked
   (`nmt.rundir.check_parent`: the same model but for the dropout rates, the same tokenizer section);
4. the training pairs are filtered with it (lengths in its pieces, length ratio, duplicates);
5. only then is the run directory written: what an earlier run wrote is removed (--overwrite), the
   directory, logs/ and config.yaml are written, and the tokenizer trained in 3 (or the parent's) is
   moved in place. The trainer then starts the model from the parent's model.keras weights.

So a mistake ("vocabulary too large", a bad corpus line, every training pair filtered) is reported
within seconds, without TensorFlow (seconds to load), and before --overwrite removes an earlier run:
nothing is written, and nothing is logged, until every check has passed.

Messages go to the standard `logging` logger "nmt.train.prepare" (INFO; warnings at WARNING), like those
of `nmt.train.trainer` and `nmt.train.callbacks`, all under the "nmt" logger. The library installs no
handler: train.py (`nmt.cli.train`) prints them on standard error and writes them, time-stamped, to
RUN_DIR/train.log; a Python caller sees them once it configures logging, e.g.
`logging.basicConfig(level=logging.INFO, format="%(message)s")`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from nmt import rundir
from nmt.config import Config
from nmt.errors import UserError
from nmt.files import atomic_write_text, write_error
from nmt.text.corpus import Corpus, CorpusSplit
from nmt.text.subword import META_FILE, SubwordPair, TrainedTokenizers, train_models

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedRun:
    """A run directory ready for training: checked, config.yaml and the tokenizer written.

    `resume`: whether there is a checkpoint to continue from (False for a fresh start, and for
    --resume of a run stopped before its first checkpoint, which starts again from step 0);
    `corpus`: the corpus, every file read and checked; `train_split`: the training pairs after the
    corpus filters, counted with the run's tokenizer (RUN_DIR/tokenizer)."""

    cfg: Config
    run_dir: Path
    resume: bool
    corpus: Corpus
    train_split: CorpusSplit
    #: the run directory's writer lock, held as long as this object lives (nmt.rundir.WriterLock)
    lock: rundir.WriterLock | None = field(default=None, repr=False, compare=False)
    #: the run to start from (train.init_from, checked) when this one starts at step 0; else None
    parent: Path | None = None


def prepare(cfg: Config, run_dir: str | Path, resume: bool = False, overwrite: bool = False) -> PreparedRun:
    """Checks and prepares the run of `cfg` in `run_dir` (the module docstring says how). `resume`:
    continue the run there (--resume); `overwrite`: remove what an earlier run wrote there first
    (--overwrite; `resume` takes precedence). -> the prepared run; a one-line UserError, with nothing
    changed on disk, where a check fails."""
    run_dir = Path(run_dir)
    rundir.WriterLock.check(run_dir)  # another process writing here: say so first, changing nothing
    from_checkpoint = rundir.check_for_training(cfg, run_dir, resume, overwrite)
    start_over = overwrite and not resume
    parent = rundir.check_parent(cfg, run_dir) if cfg.train.init_from and not from_checkpoint else None
    corpus = Corpus(cfg.corpus)
    tokenizer_dir = run_dir / rundir.TOKENIZER_DIR
    trained = None
    if not start_over and (tokenizer_dir / META_FILE).is_file():
        pair = SubwordPair.load(tokenizer_dir)
    elif parent is not None:
        pair = SubwordPair.load(parent / rundir.TOKENIZER_DIR)
    else:
        started = time.monotonic()
        trained = train_models(cfg.tokenizer, corpus.train.pairs(progress="sampling"))  # one read of both files
        seconds = time.monotonic() - started  # sampling and training, not the filter below
        pair = trained.pair()
    train_split = corpus.filtered_train(pair)

    # Every check has passed: take the directory (one writer at a time), say what was read, then write it.
    lock = rundir.WriterLock(run_dir)
    logger.info(corpus.describe())
    write_run_dir(cfg, run_dir, start_over)
    if resume and not from_checkpoint:
        logger.info(
            f"--resume: {run_dir} has no checkpoint yet (the run stopped before its first one); "
            "starting from step 0 with its config"
        )
    joint = pair.src is pair.tgt
    if parent is not None:
        logger.info(f"train.init_from: fine-tuning {parent} (its model.keras weights, a fresh optimizer)")
    if trained is None and not (tokenizer_dir / META_FILE).is_file():  # a fine-tuning run's first start
        copy_tokenizer(parent / rundir.TOKENIZER_DIR, tokenizer_dir, run_dir / rundir.TOKENIZER_TMP)
        logger.info(f"tokenizer: {parent / rundir.TOKENIZER_DIR} copied -> {tokenizer_dir}")
    elif trained is None:
        logger.info(
            f"tokenizer: reusing {tokenizer_dir} (vocabulary {pair.src.vocab_size:,}"
            f"{'' if joint else f' / {pair.tgt.vocab_size:,}'})"
        )
    else:
        write_tokenizer(trained, tokenizer_dir, run_dir / rundir.TOKENIZER_TMP)
        logger.info(
            f"tokenizer: trained {cfg.tokenizer.model_type} {'joint' if joint else 'source/target'} vocabulary of "
            f"{pair.tgt.vocab_size:,} pieces in {seconds:.1f}s -> {tokenizer_dir}"
        )
    logger.info(train_split.summary.format())
    return PreparedRun(cfg, run_dir, from_checkpoint, corpus, train_split, lock, parent)


def write_run_dir(cfg: Config, run_dir: Path, start_over: bool) -> None:
    """With `start_over` (--overwrite), removes what an earlier run wrote into run_dir (`rundir.clear`);
    creates the directory and its logs/ and writes the config to config.yaml."""
    if start_over:
        removed = rundir.clear(run_dir)
        if removed:
            logger.info(f"--overwrite: removed {', '.join(removed)} from {run_dir}")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / rundir.LOGS_DIR).mkdir(exist_ok=True)
    except OSError as error:
        raise UserError(f"--run-dir {run_dir}: cannot create it ({error.strerror or error})") from None
    atomic_write_text(run_dir / rundir.CONFIG_FILE, cfg.to_yaml())


def copy_tokenizer(source: Path, directory: Path, tmp: Path) -> None:
    """Copies the parent run's tokenizer/ into `directory` whole (into `tmp` first, then renamed)."""
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(source, tmp)
        os.replace(tmp, directory)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError):
            raise write_error(directory, error) from None
        raise


def write_tokenizer(trained: TrainedTokenizers, directory: Path, tmp: Path) -> None:
    """Writes the tokenizer into `directory` whole: into `tmp` first, then renamed (a killed run leaves
    no half-written tokenizer to reuse)."""
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        trained.write(tmp)
        os.replace(tmp, directory)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError):
            raise write_error(directory, error) from None
        raise
