"""SentencePiece subword tokenizers: training, loading, and tokenization in Python and in-graph.

Reserved ids (the same in every model this project trains, checked when a model is loaded):

=====  =====  ===========================================================
id     piece  meaning
=====  =====  ===========================================================
0      <pad>  padding (`PAD_ID`); batches are padded with 0
1      <unk>  unknown piece (`UNK_ID`); with byte_fallback it is rare
2      <s>    beginning of sentence (`BOS_ID`), prepended to decoder input
3      </s>   end of sentence (`EOS_ID`), appended to decoder targets
=====  =====  ===========================================================

Text is normalized by SentencePiece's ``nmt_nfkc`` rule (Unicode NFKC plus NMT-specific cleanup)
and runs of whitespace collapse to one space with none at either end. So
``detokenize(tokenize(s))`` is ``" ".join(unicodedata.normalize("NFKC", s).split())`` for ordinary
text (checked over the Multi30k validation set in English, German, French and Czech), with these
known exceptions from ``nmt_nfkc``: control characters (U+0000-U+001F other than whitespace, U+007F)
are removed, zero-width space U+200B and the SentencePiece meta symbol U+2581 become spaces, a byte
order mark U+FEFF is removed, and U+0085 is kept. With ``byte_fallback`` (the default) characters
not in the vocabulary are spelled as UTF-8 byte pieces and come back unchanged instead of as
``<unk>``; this costs 256 vocabulary entries.

`train_tokenizers` samples at most ``input_sentence_size`` non-empty lines per side (reservoir
sampling, seeded), so a corpus larger than memory can be used; only the sample is held.

`Tokenizers.load(dir)` gives ``.src`` and ``.tgt`` (the same object for a joint model), each a
`Tokenizer` with Python ``encode``/``decode`` and graph ops ``tf_tokenize``/``tf_detokenize`` built
on ``tensorflow_text.SentencepieceTokenizer``, which is created from the serialized model proto
(`Tokenizer.model_proto`), so a saved ``tf.Module`` that holds the tokenizer carries the model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops.sentencepiece_tokenizer import gen_sentencepiece_tokenizer

from nmt.config import MODEL_TYPES, TokenizerConfig  # noqa: F401  (re-exported)
from nmt.errors import UserError
from nmt.files import child, write_error

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
SPECIAL_PIECES = {PAD_ID: "<pad>", UNK_ID: "<unk>", BOS_ID: "<s>", EOS_ID: "</s>"}

META_FILE = "tokenizer.json"
JOINT_MODEL = "joint.model"
SRC_MODEL = "src.model"
TGT_MODEL = "tgt.model"


# --------------------------------------------------------------------------------------------
# Tokenizer


class _SentencepieceResource(tf.saved_model.experimental.TrackableResource):
    """tensorflow-text's SentencePiece model resource, with a unique shared name.

    tensorflow-text creates the model as a kernel-owned resource with an empty shared name, which
    TensorFlow deletes when it clears its eager kernel cache, as `tf.random.set_seed` (and so
    `keras.utils.set_random_seed`) does: every tokenizer made before a seed was set then fails
    with "Resource .../SentencepieceOp/... does not exist". A named resource lives in the
    resource manager until the process ends (one model copy per tokenizer; they are small).
    """

    def __init__(self, model_proto: bytes):
        super().__init__()
        self._model = model_proto
        self._shared_name = f"nmt_sentencepiece_{uuid.uuid4().hex}"
        _ = self.resource_handle  # creates the resource now

    def _create_resource(self):
        return gen_sentencepiece_tokenizer.sentencepiece_op(model=self._model, shared_name=self._shared_name)


class Tokenizer(tf.Module):
    """One SentencePiece model: Python encode/decode and TensorFlow graph ops.

    A `tf.Module`, so an exported module that keeps it as an attribute saves the model with it.
    """

    def __init__(self, model_proto: bytes, name: str = "tokenizer"):
        super().__init__(name=name)
        self.model_proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        for i, piece in SPECIAL_PIECES.items():
            if self._sp.id_to_piece(i) != piece:
                raise UserError(
                    f"tokenizer {name}: id {i} is {self._sp.id_to_piece(i)!r}, expected {piece!r}; "
                    "the model was not trained by this project (pad=0, unk=1, bos=2, eos=3)"
                )
        self.vocab_size = int(self._sp.get_piece_size())
        self._tf = tf_text.SentencepieceTokenizer(model=self.model_proto, out_type=tf.int32)
        # Replace tensorflow-text's model resource by one with a unique shared name (see below).
        self._tf._model_resource = _SentencepieceResource(self.model_proto)

    @classmethod
    def from_file(cls, path: str | Path, name: str = "tokenizer") -> Tokenizer:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"tokenizer model not found: {p}")
        try:
            data = p.read_bytes()
        except OSError as error:
            raise UserError(f"{p}: cannot read the tokenizer model ({error.strerror or error})") from None
        try:
            return cls(data, name=name)
        except UserError as error:
            raise UserError(f"{p}: {error}") from None
        except Exception as error:  # SentencePiece or tensorflow-text refusing a damaged model file
            detail = " ".join(str(error).split())[:200]
            raise UserError(f"{p}: not a valid SentencePiece model ({type(error).__name__}: {detail})") from None

    # Python side -------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Subword ids of one sentence (no BOS/EOS)."""
        return list(self._sp.encode(text))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self._sp.encode(list(texts)) if texts else []

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ids; stops at the first EOS or PAD, skips BOS."""
        out = []
        for i in ids:
            i = int(i)
            if i in (EOS_ID, PAD_ID):
                break
            if i != BOS_ID:
                out.append(i)
        return self._sp.decode(out)

    def id_to_piece(self, i: int) -> str:
        return self._sp.id_to_piece(int(i))

    def piece_to_id(self, piece: str) -> int:
        return int(self._sp.piece_to_id(piece))

    # Graph side --------------------------------------------------------------------------
    def tf_tokenize(self, texts) -> tf.RaggedTensor:
        """tf.string [N] -> int32 RaggedTensor [N, (tokens)] (no BOS/EOS)."""
        return self._tf.tokenize(tf.convert_to_tensor(texts, tf.string))

    def tf_detokenize(self, ids) -> tf.Tensor:
        """int ids [N, L] (dense and padded, or ragged) -> tf.string [N].

        Each row stops at its first EOS or PAD; BOS ids are skipped.
        """
        return self._tf.detokenize(text_ids(ids))


def text_ids(ids) -> tf.RaggedTensor:
    """int ids [N, L] (dense and padded, or ragged) -> the ids to detokenize, ragged int32 [N, (n)]:
    each row up to its first EOS or PAD, BOS ids skipped."""
    if isinstance(ids, tf.RaggedTensor):
        ids = ids.to_tensor(default_value=PAD_ID)
    ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)
    stop = tf.logical_or(tf.equal(ids, EOS_ID), tf.equal(ids, PAD_ID))
    before_stop = tf.equal(tf.cumsum(tf.cast(stop, tf.int32), axis=-1), 0)
    keep = tf.logical_and(before_stop, tf.not_equal(ids, BOS_ID))
    return tf.ragged.boolean_mask(ids, keep)


class Tokenizers:
    """The source and target tokenizers of a model (``src is tgt`` when joint)."""

    def __init__(
        self, src: Tokenizer, tgt: Tokenizer, config: TokenizerConfig | None = None, directory: Path | None = None
    ):
        self.src = src
        self.tgt = tgt
        self.config = config
        self.directory = directory

    @property
    def joint(self) -> bool:
        return self.src is self.tgt

    @classmethod
    def load(cls, directory: str | Path) -> Tokenizers:
        d = Path(directory)
        meta_path = d / META_FILE
        if not meta_path.is_file():
            raise UserError(f"no tokenizer in {d}: {META_FILE} not found (train one with train_tokenizers)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            cfg = TokenizerConfig(**meta["config"])
            src_file, tgt_file = meta["src"], meta["tgt"]
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(f"{meta_path}: not a valid tokenizer description ({e})") from None
        src_path, tgt_path = child(d, src_file, str(meta_path)), child(d, tgt_file, str(meta_path))
        src = Tokenizer.from_file(src_path, name="src_tokenizer" if src_file != tgt_file else "tokenizer")
        tgt = src if tgt_file == src_file else Tokenizer.from_file(tgt_path, name="tgt_tokenizer")
        return cls(src, tgt, cfg, d)


# --------------------------------------------------------------------------------------------
# Training


def _lines_of(source: Any, what: str) -> Iterator[str]:
    """Lines from: a file path (str or Path), a list of `Path` objects, or an iterable of sentences."""
    from nmt.corpus import CorpusSplit, check_file
    from nmt.textfile import read_lines

    if isinstance(source, CorpusSplit):
        raise UserError(f"{what}: pass split.sources() or split.targets(), not the split itself")
    if isinstance(source, (str, Path)):
        source = [Path(source)]
    if isinstance(source, (list, tuple)) and source and all(isinstance(x, Path) for x in source):
        for p in source:
            yield from read_lines(check_file(p, what), progress="sampling")
        return
    for i, line in enumerate(source, 1):
        if not isinstance(line, str):
            raise UserError(f"{what} item {i}: expected a string, got {type(line).__name__}")
        yield line


def sample_lines(lines: Iterable[str], k: int, seed: int) -> list[str]:
    """A seeded uniform sample of at most k non-empty lines (reservoir sampling), in input order."""
    rng = random.Random(seed)
    reservoir: list[tuple[int, str]] = []
    n = 0
    for line in lines:
        if not line.strip():
            continue
        if len(reservoir) < k:
            reservoir.append((n, line))
        else:
            j = rng.randrange(n + 1)
            if j < k:
                reservoir[j] = (n, line)
        n += 1
    reservoir.sort()
    return [line for _, line in reservoir]


def _train_one(cfg: TokenizerConfig, sentences: list[str], what: str) -> bytes:
    if not sentences:
        raise UserError(f"{what}: no non-empty lines to train the tokenizer on")
    import io

    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            model_type=cfg.model_type,
            vocab_size=cfg.vocab_size,
            character_coverage=float(cfg.character_coverage),
            byte_fallback=cfg.byte_fallback,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_piece=SPECIAL_PIECES[PAD_ID],
            unk_piece=SPECIAL_PIECES[UNK_ID],
            bos_piece=SPECIAL_PIECES[BOS_ID],
            eos_piece=SPECIAL_PIECES[EOS_ID],
            normalization_rule_name="nmt_nfkc",
            input_sentence_size=0,
            num_threads=max(1, min(8, os.cpu_count() or 1)),
            minloglevel=2,
        )
    except RuntimeError as e:
        raise _vocab_error(cfg, str(e), what) from None
    return model.getvalue()


def _vocab_error(cfg: TokenizerConfig, message: str, what: str) -> UserError:
    """SentencePiece's training error, said in this project's terms."""
    m = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", message)
    if m:
        return UserError(
            f"tokenizer.vocab_size={cfg.vocab_size} is larger than the {what} training text supports; "
            f"set tokenizer.vocab_size to {m.group(2)} or less (or train on more text)"
        )
    m = re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)", message)
    if m:
        return UserError(
            f"tokenizer.vocab_size={cfg.vocab_size} is too small for the characters of the {what} training text; "
            f"set tokenizer.vocab_size to at least {m.group(2)} (or lower tokenizer.character_coverage"
            + (", or set tokenizer.byte_fallback to false to save 256 ids)" if cfg.byte_fallback else ")")
        )
    detail = re.sub(r"^\w+: \S+\(\d+\) \[[^\]]*\] ", "", message.strip()).splitlines()[0]
    return UserError(f"SentencePiece could not train the {what} tokenizer: {detail}")


def train_tokenizers(
    cfg: TokenizerConfig,
    src: Any,
    tgt: Any,
    out_dir: str | Path,
) -> dict[str, Path]:
    """Train SentencePiece model(s) and write them with ``tokenizer.json`` into out_dir.

    ``src`` and ``tgt`` are the training sides: each an iterable of sentences (e.g.
    ``corpus.train.sources()``, a list of str), one file path (str or Path), or a list of `Path`. At most
    ``cfg.input_sentence_size`` non-empty lines per side are sampled (seeded). A joint model is
    trained on both samples together. Returns {"src": path, "tgt": path, "meta": path} (src and
    tgt are the same path for a joint model); load them with `Tokenizers.load(out_dir)`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src_sample = sample_lines(_lines_of(src, "tokenizer source text"), cfg.input_sentence_size, cfg.seed)
    tgt_sample = sample_lines(_lines_of(tgt, "tokenizer target text"), cfg.input_sentence_size, cfg.seed + 1)
    for side, sample in (("source", src_sample), ("target", tgt_sample)):
        if not sample:
            raise UserError(f"tokenizer {side} text: no non-empty lines to train the tokenizer on")
    if cfg.joint:
        _write(out / JOINT_MODEL, _train_one(cfg, src_sample + tgt_sample, "joint (source + target)"))
        names = {"src": JOINT_MODEL, "tgt": JOINT_MODEL}
    else:
        _write(out / SRC_MODEL, _train_one(cfg, src_sample, "source"))
        _write(out / TGT_MODEL, _train_one(cfg, tgt_sample, "target"))
        names = {"src": SRC_MODEL, "tgt": TGT_MODEL}
    meta = {
        "config": dataclasses.asdict(cfg),
        "src": names["src"],
        "tgt": names["tgt"],
        "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
        "sampled_sentences": {"src": len(src_sample), "tgt": len(tgt_sample)},
    }
    _write(out / META_FILE, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    return {"src": out / names["src"], "tgt": out / names["tgt"], "meta": out / META_FILE}


def _write(path: Path, data: bytes) -> None:
    """Writes one file of a tokenizer directory (itself written under a temporary name by training)."""
    try:
        path.write_bytes(data)
    except OSError as error:
        raise write_error(path, error) from None
