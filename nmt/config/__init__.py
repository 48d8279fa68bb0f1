"""One typed, frozen configuration per run: YAML file + `section.key=value` overrides.

A config has six sections; every field of every section is declared here, once, with its type,
default, bounds and comment (`nmt.config.fields.setting`), and checked once when the section is built:

    corpus:    CorpusConfig     where the parallel text is, filters, splits     (nmt.text.corpus)
    tokenizer: TokenizerConfig  SentencePiece training                          (nmt.text.tokenizer)
    data:      DataConfig       batching, bucketing, shuffling                  (nmt.train.batches)
    model:     ModelConfig      architecture and sizes                          (nmt.model.seq2seq)
    train:     TrainConfig      optimisation, callbacks, checkpoints, precision (nmt.train.trainer)
    decode:    DecodeConfig     search defaults for dev BLEU, export, translate.py

A mistake is one line naming the key: `train.learning_rate: received 'fast', expected a positive
number`. Overrides are parsed as YAML scalars (`--set train.epochs=3`), never executed. This
module imports no TensorFlow, corpus or input-pipeline code: loading a run's config to translate
with it costs nothing. The configuration reference (docs/CONFIG.md) is generated from the declarations
(scripts/config_reference.py), and configs/toy.yaml's comments are tested against them.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nmt.config.fields import Section, setting
from nmt.errors import UserError

SPLITS = ("train", "dev", "test")
MODEL_TYPES = ("unigram", "bpe")
ARCHITECTURES = ("cho2014", "attention")
DEEP_OUTPUTS = ("maxout", "tanh", "none")
ATTENTION_POSITIONS = ("bahdanau", "luong")
ATTENTION_SCORES = ("additive", "dot", "scaled_dot")
ENCODER_MERGES = ("concat", "sum")
DECODER_INITS = ("projection", "backward", "zeros")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "inverse_sqrt", "plateau", "budget")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
STRATEGIES = ("default", "mirrored", "multi_worker")
MONITORS = ("bleu", "loss")
#: Batches hold up to this many tokens per side when neither data.batch_tokens nor data.batch_size is set.
DEFAULT_BATCH_TOKENS = 4096
#: Default padded lengths; the list is cut at max_len + 1 (rounded up to a multiple of 8).
DEFAULT_BUCKET_LENGTHS = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)

_PATH = dict(nonempty=True, expected="a non-empty path or name, or null")


# --------------------------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class CorpusConfig(Section):
    """Where the parallel text is and how it is filtered.

    Give the training data as exactly one of: ``dir`` (+ ``src_lang``/``tgt_lang``), ``train_src`` +
    ``train_tgt``, or ``train_tsv``. Dev and test data are optional and given the same way. With no
    training data at all, the built-in numbers corpus (`nmt.text.toy_corpus`) is used. When neither dev
    nor test data is given, ``dev_size`` and ``test_size`` pairs are held out of the training file.
    """

    NAME = "corpus"
    dir: str | None = setting(
        None,
        "prepared corpus directory with {train,dev,test}.{src_lang,tgt_lang}[.gz]; null + no files: the built-in "
        "numbers corpus (data/numbers, written on first use)",
        **_PATH,
    )
    src_lang: str | None = setting(None, "source language suffix of the files in dir (e.g. en)", **_PATH)
    tgt_lang: str | None = setting(None, "target language suffix of the files in dir (e.g. de)", **_PATH)
    train_src: str | None = setting(None, "or: training source file, one sentence per line (gzip allowed)", **_PATH)
    train_tgt: str | None = setting(None, "training target file, aligned line by line with train_src", **_PATH)
    dev_src: str | None = setting(None, "dev source file (dev BLEU, checkpoint selection, early stopping)", **_PATH)
    dev_tgt: str | None = setting(None, "dev target file", **_PATH)
    test_src: str | None = setting(None, "test source file (scored once at the end)", **_PATH)
    test_tgt: str | None = setting(None, "test target file", **_PATH)
    train_tsv: str | None = setting(
        None, "or: one TSV file per split (Tatoeba/Anki: English<TAB>other<TAB>attribution)", **_PATH
    )
    dev_tsv: str | None = setting(None, "dev TSV file", **_PATH)
    test_tsv: str | None = setting(None, "test TSV file", **_PATH)
    src_col: int = setting(1, "TSV column of the source, numbered from 1", min=1)
    tgt_col: int = setting(2, "TSV column of the target, numbered from 1", min=1)
    dev_size: int | float = setting(
        0.05,
        "held out of a single training file when no dev/test is given: fraction (float) or pairs (int)",
        min=0,
        expected="a fraction in (0, 1) or a whole number of pairs >= 0",
    )
    test_size: int | float = setting(
        0.05, "the same for the test split", min=0, expected="a fraction in (0, 1) or a whole number of pairs >= 0"
    )
    split_seed: int = setting(1234, "seed of that held-out split")
    max_len: int = setting(
        100, "training pairs with a side longer than this many subword tokens are dropped (and counted)", min=1
    )
    max_ratio: float = setting(
        3.0,
        "drop pairs whose longer side has more than this times the tokens of the shorter; 0 = off",
        min=0,
        expected="a number >= 1, or 0 to turn the filter off",
    )
    dedup: bool = setting(False, "drop duplicate training pairs and training pairs that equal a dev/test pair")

    def check(self) -> None:
        if self.src_col == self.tgt_col:
            raise UserError(f"corpus.src_col and corpus.tgt_col are both {self.src_col}; they must differ")
        for name in ("dev_size", "test_size"):
            value = getattr(self, name)
            if isinstance(value, float) and value >= 1:
                if value != int(value):
                    self.fail(name, "a fraction in (0, 1) or a whole number of pairs >= 0")
                object.__setattr__(self, name, int(value))  # 1000.0 from a YAML/float source: a count
        if 0 < self.max_ratio < 1:
            self.fail("max_ratio", "a number >= 1, or 0 to turn the filter off")
        if self.dir is not None and (self.src_lang is None or self.tgt_lang is None):
            raise UserError(
                "corpus.dir is set but corpus.src_lang / corpus.tgt_lang are not; give both language suffixes, "
                "e.g. en and de"
            )
        for split in SPLITS:
            src, tgt, tsv = (getattr(self, f"{split}_{k}") for k in ("src", "tgt", "tsv"))
            if (src is None) != (tgt is None):
                missing = f"{split}_tgt" if tgt is None else f"{split}_src"
                raise UserError(f"corpus.{missing} is missing: give both {split}_src and {split}_tgt")
            given = [k for k, v in ((f"{split}_src/{split}_tgt", src), (f"{split}_tsv", tsv)) if v is not None]
            if self.dir is not None and given:
                given.append("dir")
            if len(given) > 1:
                raise UserError(f"corpus: the {split} data is given twice ({' and '.join(given)}); keep one")

    def has_explicit_train(self) -> bool:
        return self.dir is not None or self.train_src is not None or self.train_tsv is not None


# ------------------------------------------------------------------------------------------ tokenizer


@dataclass(frozen=True)
class TokenizerConfig(Section):
    """How the SentencePiece models are trained."""

    NAME = "tokenizer"
    model_type: str = setting("unigram", "SentencePiece algorithm: unigram or bpe", choices=MODEL_TYPES)
    vocab_size: int = setting(
        8000, "pieces per model, including pad/unk/bos/eos and (with byte_fallback) 256 byte pieces", min=8
    )
    joint: bool = setting(True, "one model for both languages (true) or one per side (false)")
    character_coverage: float = setting(
        1.0, "share of characters covered by pieces; the rest become bytes or <unk>", min=0.9, max=1.0
    )
    input_sentence_size: int = setting(
        200_000,
        "most sentences per side sampled into memory to train the tokenizer (SentencePiece's memory and time "
        "grow with it)",
        min=1,
    )
    seed: int = setting(0, "seed of that sample")
    byte_fallback: bool = setting(True, "spell unknown characters as UTF-8 bytes instead of <unk>")


# ----------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DataConfig(Section):
    """Batching of the input pipeline: at most one of ``batch_tokens`` and ``batch_size``; with
    neither, batches hold up to DEFAULT_BATCH_TOKENS tokens per side."""

    NAME = "data"
    batch_tokens: int | None = setting(
        None,
        "token budget per batch (padded length x pairs, per side); null: use batch_size (or 4096 tokens if both null)",
        min=1,
    )
    batch_size: int | None = setting(None, "or: sentence pairs per batch", min=1)
    bucket_lengths: tuple[int, ...] | None = setting(
        None,
        "padded lengths: few distinct shapes (XLA compiles once per shape)",
        expected="a non-empty list of increasing whole numbers >= 1, or null",
    )
    max_len: int | None = setting(None, "longest side in subword tokens; null: corpus.max_len", min=1)
    shuffle_buffer: int | None = setting(
        None,
        "pairs in the shuffle buffer; null: the whole split (a uniform random order every epoch); 0 or 1: no shuffling",
        min=0,
    )
    shuffle_block: int = setting(
        200_000,
        "most pairs the whole-split shuffle holds in memory; a larger split is shuffled in blocks of lines, "
        "read once each per epoch, in a uniform random order still",
        min=1,
    )
    seed: int = setting(0, "shuffle seed: the same seed gives the same batches, epoch by epoch")
    eval_batch_size: int | None = setting(None, "pairs per dev batch for the dev loss; null: like training", min=1)

    def check(self) -> None:
        if self.batch_tokens is not None and self.batch_size is not None:
            raise UserError(
                f"data.batch_tokens={self.batch_tokens} and data.batch_size={self.batch_size} are both set; "
                "batches are bounded by a token budget or by a sentence count, give only one"
            )
        b = self.bucket_lengths
        if b is not None and (not b or min(b) < 1 or any(x >= y for x, y in zip(b, b[1:]))):
            self.fail("bucket_lengths", "a non-empty list of increasing whole numbers >= 1", list(b))

    @property
    def token_budget(self) -> int | None:
        """The effective token budget (None in sentence-count mode)."""
        if self.batch_size is not None:
            return None
        return self.batch_tokens if self.batch_tokens is not None else DEFAULT_BATCH_TOKENS

    def lengths_for(self, max_len: int) -> tuple[int, ...]:
        """Padded lengths for sides of up to max_len tokens (+1 for BOS/EOS on the target)."""
        need = max_len + 1
        if self.bucket_lengths is not None:
            if self.bucket_lengths[-1] < need:
                raise UserError(
                    f"data.bucket_lengths ends with {self.bucket_lengths[-1]}, shorter than max_len + 1 = {need} "
                    f"(a target of max_len={max_len} tokens plus BOS/EOS); add a length >= {need} or lower max_len"
                )
            lengths = tuple(x for x in self.bucket_lengths if x < need) + (
                min(x for x in self.bucket_lengths if x >= need),
            )
        else:
            top = -(-need // 8) * 8
            lengths = tuple(x for x in DEFAULT_BUCKET_LENGTHS if x < top) + (top,)
        budget = self.token_budget
        if budget is not None and budget < lengths[-1]:
            raise UserError(
                f"data.batch_tokens={budget} cannot hold one pair of {lengths[-1]} tokens (max_len={max_len} + "
                "BOS/EOS, "
                f"padded); raise batch_tokens to at least {lengths[-1]} or lower max_len"
            )
        return lengths

    def batch_plan(self, max_len: int) -> list[tuple[int, int]]:
        """[(padded length, most pairs per batch)] for each bucket."""
        budget = self.token_budget
        return [(L, budget // L if budget is not None else self.batch_size) for L in self.lengths_for(max_len)]

    def eval_batch(self, max_len: int) -> int:
        if self.eval_batch_size is not None:
            return self.eval_batch_size
        if self.batch_size is not None:
            return self.batch_size
        return max(1, self.token_budget // self.lengths_for(max_len)[-1])


# ---------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ModelConfig(Section):
    """The architecture and its sizes (nmt.model.seq2seq; the equations: nmt/model/decoder.py, luong.py).
    `attention_*`, `residual_norm`, `encoder_merge` and `decoder_init` are attention options: their
    defaults are Bahdanau et al.'s model, and cho2014 takes only the defaults."""

    NAME = "model"
    architecture: str = setting(
        "attention", "cho2014 (Cho et al. 2014) or attention (Bahdanau et al. 2015)", choices=ARCHITECTURES
    )
    embedding_dim: int = setting(256, "source and target embedding size", min=1)
    encoder_units: int = setting(256, "encoder GRU size (per direction for attention)", min=1)
    encoder_layers: int = setting(1, "stacked encoder GRUs", min=1)
    decoder_units: int = setting(512, "decoder GRU size", min=1)
    attention_units: int = setting(
        512, "hidden size of the additive attention (query/key size of dot-product scores)", min=1
    )
    attention_position: str = setting(
        "bahdanau",
        "bahdanau (the paper's: attention inside the decoder recurrence) or luong (decoder GRU first, attention "
        "over its outputs for all steps at once)",
        choices=ATTENTION_POSITIONS,
    )
    attention_score: str = setting(
        "additive", "additive (Bahdanau's), dot or scaled_dot (dot products: luong only)", choices=ATTENTION_SCORES
    )
    residual_norm: bool = setting(
        False, "luong only: o = LayerNorm(h + attention output) instead of Luong's tanh([c; h]·W_c)"
    )
    encoder_merge: str = setting(
        "concat",
        "bidirectional encoder directions: concat (2 x encoder_units) or sum (encoder_units)",
        choices=ENCODER_MERGES,
    )
    decoder_init: str = setting(
        "projection",
        "first attention-decoder state: projection tanh(W_s·←h_1) (Bahdanau's), backward (←h_1 itself) or zeros",
        choices=DECODER_INITS,
    )
    deep_output: str = setting(
        "maxout",
        "maxout (the papers' deep output), tanh (simpler readout) or none (luong only: no deep output)",
        choices=DEEP_OUTPUTS,
    )
    output_dim: int = setting(512, "deep output size before maxout (even) or tanh", min=1)
    embedding_dropout: float = setting(0.0, "dropout on source and target embeddings", min=0, below=1)
    word_dropout: float = setting(
        0.0, "dropout of whole source and target tokens: a dropped token's embedding is all zeros", min=0, below=1
    )
    layer_dropout: float = setting(0.0, "dropout between stacked encoder layers", min=0, below=1)
    output_dropout: float = setting(0.0, "dropout before the vocabulary projection", min=0, below=1)
    tie_embeddings: bool = setting(
        False, "share target embedding and output projection (needs readout size == embedding_dim)"
    )

    def check(self) -> None:
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        if self.architecture == "cho2014":
            for name in ("attention_position", "attention_score", "residual_norm", "encoder_merge", "decoder_init"):
                if getattr(self, name) != defaults[name]:
                    self.fail(name, f"{defaults[name]!r} with architecture cho2014 (an attention option)")
        if self.attention_position != "luong":
            where = "architecture cho2014" if self.architecture == "cho2014" else "attention_position bahdanau"
            for name, allowed in (
                ("attention_score", ("additive",)),
                ("residual_norm", (False,)),
                ("deep_output", ("maxout", "tanh")),
            ):
                if getattr(self, name) not in allowed:
                    expected = " or ".join(str(a).lower() for a in allowed)
                    self.fail(name, f"{expected} with {where} (this value needs attention_position luong)")
        if self.decoder_init == "backward" and self.encoder_units != self.decoder_units:
            self.fail(
                "decoder_init",
                f"projection or zeros, or encoder_units ({self.encoder_units}) equal to decoder_units "
                f"({self.decoder_units})",
            )
        if self.deep_output == "maxout" and self.output_dim % 2:
            self.fail("output_dim", "an even size (maxout takes pairs of units)")
        if self.tie_embeddings and self.readout_dim != self.embedding_dim:
            self.fail(
                "tie_embeddings",
                f"false, or a readout size ({self.readout_dim}, from deep_output {self.deep_output} and output_dim "
                f"{self.output_dim}) equal to embedding_dim ({self.embedding_dim})",
            )

    @property
    def readout_dim(self) -> int:
        """What the vocabulary projection reads: output_dim/2 (maxout), output_dim (tanh) or
        decoder_units (none)."""
        if self.deep_output == "none":
            return self.decoder_units
        return self.output_dim // 2 if self.deep_output == "maxout" else self.output_dim


# ---------------------------------------------------------------------------------------------- train


@dataclass(frozen=True)
class TrainConfig(Section):
    """Optimisation, callbacks, checkpoints and precision (nmt.train.trainer)."""

    NAME = "train"
    seed: int = setting(1234, "seeds Python, NumPy, TensorFlow and Keras: same seed, same losses on CPU")
    epochs: int = setting(10, "epochs to train (fewer if early stopping, max_steps or max_time stop first)", min=1)
    steps_per_epoch: int | None = setting(
        None, "steps per epoch (dev BLEU and checkpoints at each epoch end); null: one pass over the data", min=1
    )
    max_steps: int | None = setting(None, "stop after this many steps in all; null: no limit", min=1)
    max_time: float | None = setting(
        None, "wall-clock budget in seconds; training stops cleanly and still exports; null: none", above=0
    )
    optimizer: str = setting("adam", "adam or adamw", choices=OPTIMIZERS)
    learning_rate: float = setting(1e-3, "peak learning rate", above=0)
    weight_decay: float = setting(0.0, "decoupled weight decay (adamw only)", min=0)
    beta_1: float = setting(0.9, "Adam's first-moment decay", min=0, below=1)
    beta_2: float = setting(0.999, "Adam's second-moment decay", min=0, below=1)
    epsilon: float = setting(1e-8, "Adam's epsilon", above=0)
    clip_norm: float | None = setting(1.0, "clip gradients to this global norm; null: no clipping", above=0)
    schedule: str = setting(
        "constant",
        "constant, inverse_sqrt (warm-up then 1/sqrt(step)), plateau (reduce on a dev plateau) or budget "
        "(warm-up, then cosine decay to min_learning_rate at the run's last step: max_steps, the steps max_time buys, "
        "or epochs)",
        choices=SCHEDULES,
    )
    warmup_steps: int = setting(0, "warm-up steps for inverse_sqrt and budget", min=0)
    plateau_monitor: str = setting("bleu", "what plateau watches: bleu (dev BLEU) or loss (dev loss)", choices=MONITORS)
    plateau_factor: float = setting(0.5, "learning-rate factor on a plateau", above=0, below=1)
    plateau_patience: int = setting(2, "epochs without improvement before the learning rate drops", min=0)
    min_learning_rate: float = setting(1e-6, "lower bound for plateau; the final rate of budget", min=0)
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy", min=0, below=1)
    early_stopping_patience: int | None = setting(
        None, "stop after this many epochs without dev improvement; null: never", min=1
    )
    early_stopping_monitor: str = setting("bleu", "bleu or loss", choices=MONITORS)
    eval_max_sentences: int | None = setting(
        None, "translate at most this many dev sentences for dev BLEU; null: all", min=1
    )
    eval_beam_size: int = setting(1, "beam size for dev BLEU during training (1 = greedy)", min=1)
    checkpoint_every: int = setting(500, "also save the last checkpoint every this many steps (for --resume)", min=1)
    keep_checkpoints: int = setting(
        0, "keep the last this many epoch checkpoints (checkpoints/ckpt-*) besides last and best; 0: none", min=0
    )
    average_checkpoints: bool = setting(
        False, "model.keras and the export hold the mean of the kept checkpoints' weights instead of the best"
    )
    init_from: str | None = setting(
        None,
        "fine-tune: start from this run directory's model.keras and tokenizer (fresh optimizer); "
        "its model section must match except the dropout rates; null: random initialisation",
        **_PATH,
    )
    precision: str = setting(
        "float32",
        "float32, mixed_bfloat16, mixed_float16 (GPU), or auto: mixed_bfloat16 on a GPU or a CPU with "
        "avx512_bf16/amx_bf16, else float32",
        choices=PRECISIONS,
    )
    jit_compile: bool = setting(False, "compile the training step with XLA")
    distribute: str = setting(
        "default",
        "default, mirrored (MirroredStrategy) or multi_worker (MultiWorkerMirroredStrategy via TF_CONFIG)",
        choices=STRATEGIES,
    )
    tensorboard: bool = setting(True, "write TensorBoard logs to RUN_DIR/logs/tensorboard")
    sample_translations: int = setting(3, "dev sample translations shown in TensorBoard", min=0)
    verbose: int = setting(1, "Keras progress: 1 = progress bar, 2 = one line per epoch, 0 = silent", choices=(0, 1, 2))

    def check(self) -> None:
        if self.optimizer == "adam" and self.weight_decay:
            self.fail("weight_decay", "0 with optimizer adam (use adamw)")
        if self.schedule == "inverse_sqrt" and self.warmup_steps <= 0:
            self.fail("warmup_steps", "a positive integer with schedule inverse_sqrt")
        if self.schedule == "budget" and self.max_time is not None and self.distribute == "multi_worker":
            self.fail(
                "schedule",
                "not budget with max_time under multi_worker (each worker would estimate the steps on its own "
                "clock and set its own rate); give train.max_steps instead",
                "budget",
            )
        if self.schedule == "budget" and self.min_learning_rate > self.learning_rate:
            self.fail("min_learning_rate", f"at most learning_rate ({self.learning_rate:g}) with schedule budget")
        if self.average_checkpoints and self.keep_checkpoints < 2:
            self.fail("keep_checkpoints", "at least 2 with average_checkpoints: true (the checkpoints averaged)")


# --------------------------------------------------------------------------------------------- decode


def check_search_rules(section) -> None:
    """The rules between the search fields, for the decode section and `nmt.decode.settings.SearchSettings`
    alike: at most beam_size hypotheses in the n-best list, and room for at least one output token."""
    if section.nbest > section.beam_size:
        section.fail("nbest", f"at most the beam size ({section.beam_size})")
    if section.max_len_a == 0 and section.max_len_b == 0:
        section.fail("max_len_a", "max_len_a·|x| + max_len_b > 0")


@dataclass(frozen=True)
class DecodeConfig(Section):
    """Search defaults for dev BLEU, the exported model and translate.py."""

    NAME = "decode"
    beam_size: int = setting(5, "beam size of the final evaluation, the export and translate.py", min=1)
    length_penalty: float = setting(0.6, "GNMT length penalty alpha: score = log P / ((5 + |y|) / 6)^alpha", min=0)
    max_len_a: float = setting(1.5, "output length limit a·|x| + b, in subword tokens", min=0)
    max_len_b: int = setting(10, "see max_len_a", min=0)
    batch_size: int = setting(64, "sentences per decoding batch", min=1)
    nbest: int = setting(1, "hypotheses per sentence in the n-best signature", min=1)
    max_input_len: int = setting(
        256, "source tokens translated per sentence; longer inputs are cut, with a warning", min=1
    )
    shortlist: int = setting(
        50,
        "lexical shortlist: a batch's search scores only the reserved ids, the shortlist_frequent most frequent "
        "target pieces and this many translations of each of its source pieces (IBM Model 1 on the training pairs, "
        "RUN_DIR/shortlist.npz; at most 100); 0: every step scores the whole vocabulary",
        min=0,
    )
    shortlist_frequent: int = setting(300, "see shortlist: the most frequent target pieces always scored", min=0)
    tune_length_penalty: tuple[float, ...] | None = setting(
        None,
        "after training, decode dev (beam beam_size) with each of these α values and keep the best by dev BLEU "
        "for the test score, the export and translate.py (RUN_DIR/decode_tuned.yaml); null: length_penalty as given",
        expected="a non-empty list of distinct finite numbers >= 0, or null",
    )

    def check(self) -> None:
        values = self.tune_length_penalty
        if values is not None and (
            not values or min(values) < 0 or len(set(values)) < len(values) or not all(map(math.isfinite, values))
        ):
            self.fail("tune_length_penalty", "a non-empty list of distinct finite numbers >= 0, or null", list(values))
        check_search_rules(self)


# ----------------------------------------------------------------------------------------------- config

SECTIONS: dict[str, type[Section]] = {
    "corpus": CorpusConfig,
    "tokenizer": TokenizerConfig,
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "decode": DecodeConfig,
}


@dataclass(frozen=True)
class Config:
    corpus: CorpusConfig
    tokenizer: TokenizerConfig
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    decode: DecodeConfig

    def to_dict(self) -> dict:
        return {name: getattr(self, name).to_dict() for name in SECTIONS}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def build_section(name: str, values: dict | None) -> Section:
    """One section from its YAML mapping (None: all defaults)."""
    return SECTIONS[name].from_dict({} if values is None else values)


def from_dict(values: dict, origin: str = "config") -> Config:
    if not isinstance(values, dict):
        raise UserError(f"{origin}: expected a mapping of sections, received {type(values).__name__}")
    for key in values:
        if key not in SECTIONS:
            raise UserError(f"{origin}: unknown section {key!r}; expected some of {', '.join(SECTIONS)}")
    return Config(**{name: build_section(name, values.get(name)) for name in SECTIONS})


def parse_override(text: str) -> tuple[str, str, Any]:
    """'train.epochs=3' -> ('train', 'epochs', 3); the value is a YAML scalar or list."""
    if "=" not in text:
        raise UserError(f"--set {text}: expected section.key=value")
    path, raw = text.split("=", 1)
    parts = path.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--set {text}: expected section.key=value, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts[0], parts[1], value


def load_dict(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"{path}{where}: {problem}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a mapping of sections, received {type(values).__name__}")
    return values


def load(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """The config from a YAML file (or the defaults when path is None) plus overrides."""
    values = load_dict(path) if path is not None else {}
    values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    for text in overrides:
        section, key, value = parse_override(text)
        if section not in SECTIONS:
            raise UserError(f"--set {text}: unknown section {section!r}; expected one of {', '.join(SECTIONS)}")
        current = values.setdefault(section, {})
        if current is None:
            current = values[section] = {}
        current[key] = value
    return from_dict(values, origin=str(path) if path else "config")


# --------------------------------------------------------------------------------------------- reference

#: The commented config whose comments must equal the declarations' (tests/test_config.py checks it).
REFERENCE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "toy.yaml"


def field_comments(commented_yaml: str | Path) -> dict[str, str]:
    """{"section.key": comment} from a config file that writes every field as `  key: value  # comment`."""
    comments, section = {}, None
    for line in Path(commented_yaml).read_text(encoding="utf-8").splitlines():
        head = re.match(r"^(\w+):\s*(#.*)?$", line)
        if head:
            section = head.group(1)
            continue
        entry = re.match(r"^  (\w+):.*?\s#\s*(.*)$", line)
        if entry and section is not None:
            comments[f"{section}.{entry.group(1)}"] = entry.group(2).strip()
    return comments


def reference_markdown() -> str:
    """The configuration reference as a Markdown table generated from the declarations: every key of
    every section, its default, its allowed values and its meaning. docs/CONFIG.md holds it, and a test
    checks that it is this text (regenerate: python scripts/config_reference.py)."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for section, cls in SECTIONS.items():
        for name, default, allowed, doc in cls.declarations():
            value = list(default) if isinstance(default, tuple) else default
            shown = "null" if value is None else yaml.safe_dump(value, default_flow_style=True).strip()
            shown = shown.removesuffix("\n...").removesuffix("...").strip()
            cells = [f"`{section}.{name}`", f"`{shown}`", allowed, doc]
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
