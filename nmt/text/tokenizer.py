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
sampling, seeded), so a corpus larger than memory can be used; only the sample is held. Training
and the reserved ids live in `nmt.text.subword`, which needs no TensorFlow (train.py trains the
tokenizer before loading it); they are re-exported here.

`Tokenizers.load(dir)` gives ``.src`` and ``.tgt`` (the same object for a joint model), each a
`Tokenizer` with Python ``encode``/``decode`` and graph ops ``tf_tokenize``/``tf_detokenize`` built
on ``tensorflow_text.SentencepieceTokenizer``, which is created from the serialized model proto
(`Tokenizer.model_proto`), so a saved ``tf.Module`` that holds the tokenizer carries the model.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops.sentencepiece_tokenizer import gen_sentencepiece_tokenizer

from nmt.config import MODEL_TYPES, TokenizerConfig  # noqa: F401  (re-exported)
from nmt.errors import UserError
from nmt.files import child
from nmt.text.subword import (  # noqa: F401  (re-exported: training and the reserved ids live in nmt.text.subword)
    BOS_ID,
    EOS_ID,
    JOINT_MODEL,
    META_FILE,
    PAD_ID,
    SPECIAL_PIECES,
    SRC_MODEL,
    TGT_MODEL,
    UNK_ID,
    TrainedTokenizers,
    checked_model_bytes,
    processor,
    read_meta,
    sample_lines,
    train_models,
    train_tokenizers,
)

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
        self._sp = processor(self.model_proto, name)
        self.vocab_size = int(self._sp.get_piece_size())
        self._tf = tf_text.SentencepieceTokenizer(model=self.model_proto, out_type=tf.int32)
        # Replace tensorflow-text's model resource by one with a unique shared name (see below).
        self._tf._model_resource = _SentencepieceResource(self.model_proto)

    @classmethod
    def from_file(cls, path: str | Path, name: str = "tokenizer") -> Tokenizer:
        p = Path(path)
        data = checked_model_bytes(p)
        try:
            return cls(data, name=name)
        except Exception as error:  # tensorflow-text refusing a model SentencePiece read
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
        cfg, src_file, tgt_file = read_meta(d)
        meta_path = d / META_FILE
        src_path, tgt_path = child(d, src_file, str(meta_path)), child(d, tgt_file, str(meta_path))
        src = Tokenizer.from_file(src_path, name="src_tokenizer" if src_file != tgt_file else "tokenizer")
        tgt = src if tgt_file == src_file else Tokenizer.from_file(tgt_path, name="tgt_tokenizer")
        return cls(src, tgt, cfg, d)
