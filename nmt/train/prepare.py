"""The run's text before TensorFlow: its tokenizer and its filtered training pairs.

train.py reads the corpus, trains the SentencePiece tokenizer (or reads the run directory's) and
filters the training pairs with it before it imports TensorFlow, so that "vocabulary too large"
or "every training pair filtered" is reported within seconds, and before --overwrite removes an
earlier run. `nmt.train.trainer.train(..., prepared=...)` then writes the tokenizer trained here into
the run directory instead of training it again, and uses the filtered pairs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from nmt import rundir
from nmt.config import Config
from nmt.text.corpus import Corpus, CorpusSplit
from nmt.text.subword import META_FILE, SubwordPair, TrainedTokenizers, train_models


@dataclass(frozen=True)
class PreparedText:
    """`trained`: the tokenizer trained in memory, or None where the run directory's is reused;
    `seconds`: how long training it took; `train_split`: the training pairs after the corpus
    filters, counted with that tokenizer."""

    trained: TrainedTokenizers | None
    seconds: float
    train_split: CorpusSplit


def reuses_tokenizer(run_dir: Path, overwrite: bool) -> bool:
    """Whether the run keeps the tokenizer already in its directory (a resumed or restarted run;
    --overwrite removes it)."""
    return not overwrite and (run_dir / rundir.TOKENIZER_DIR / META_FILE).is_file()


def prepare(cfg: Config, corpus: Corpus, run_dir: Path, overwrite: bool) -> PreparedText:
    """The run's tokenizer (trained on the training split unless the run directory has one it keeps)
    and its filtered training pairs. Writes nothing."""
    if reuses_tokenizer(run_dir, overwrite):
        pair = SubwordPair.load(run_dir / rundir.TOKENIZER_DIR)
        trained, seconds = None, 0.0
    else:
        started = time.monotonic()
        trained = train_models(cfg.tokenizer, corpus.train.sources(), corpus.train.targets())
        seconds = time.monotonic() - started
        pair = trained.pair()
    return PreparedText(trained, seconds, corpus.filtered_train(pair))
