"""Text in, text out: the in-process translator and its SavedModel export.

A run directory (written by training) holds::

    config.yaml    the resolved config (its decode: section gives the search defaults)
    tokenizer/     the SentencePiece model(s), read by `Tokenizers.load`
    model.keras    the model to translate with (the best checkpoint by dev BLEU)
    export/        the SavedModel written by `export_translator` (text -> text, for TF Serving)

In process::

    translator = load_run("runs/multi30k")
    translator.translate(["A man is sleeping."])                    # ["Ein Mann schläft."]
    translator.translate_nbest(["A man is sleeping."], nbest=3)     # [[Hypothesis(text, score), ...]]
    translator.translate_detailed(lines, attention=True)            # tokens, pieces, attention weights

Sentences are tokenized (``tf_tokenize``, the tensorflow-text op the export uses), sorted by length,
cut into batches (``batch_size`` sentences, or ``batch_tokens`` padded source tokens), searched by
`nmt.search.search` in a ``tf.function`` with an input signature (one trace per search setting; with
``jit_compile`` XLA, batches are padded to ``batch_size`` rows and a multiple of 8 tokens so the
number of compiled shapes stays small), detokenized, and returned in input order. A sentence with
no tokens (empty or blank) is not searched: its translation is "" with score 0.

The export (`export_translator`) is a ``tf.Module`` whose signatures do the same inside one graph
(tokenization, sort by length, batches, beam search, detokenization, original order):

    serving_default   sentences: string[N] -> translations: string[N]
    nbest             sentences: string[N] -> translations: string[N, K], scores: float32[N, K]

with the beam size K, length penalty, output length limits and batch size of the config's
``decode`` section (the defaults of translate.py). Loading it needs tensorflow and
tensorflow_text only::

    import tensorflow as tf, tensorflow_text  # registers the SentencePiece ops
    translate = tf.saved_model.load("runs/multi30k/export").signatures["serving_default"]
    translate(sentences=tf.constant(["A man is sleeping."]))["translations"]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from nmt.config import DecodeConfig
from nmt.errors import UserError
from nmt.files import atomic_directory
from nmt.rundir import CONFIG_FILE, EXPORT_DIR, MODEL_FILE, TOKENIZER_DIR  # noqa: E402  (re-exported)
from nmt.search import search
from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizers, text_ids

SERVING_SIGNATURE = "serving_default"
NBEST_SIGNATURE = "nbest"
INPUT_NAME = "sentences"
XLA_WIDTH_MULTIPLE = 8
#: The most memory the search's attention weights may take per batch (translate.py --attention-plot).
ATTENTION_BUFFER_BYTES = 256 << 20


class Hypothesis(NamedTuple):
    """One translation of one sentence.

    text: the detokenized translation; score: log P(y|x) / lp(|y|) (the search score; 0 for an empty
    source, -inf for an n-best slot no hypothesis filled); tokens: the target ids without BOS/EOS;
    attention: float32[len(tokens) + 1, S] (rows: the tokens then EOS when produced; columns: the
    source pieces) when requested, else None.
    """

    text: str
    score: float
    tokens: tuple = ()
    attention: np.ndarray | None = None


@dataclass
class Translation:
    """The n-best list (best first) of one source sentence and its source pieces."""

    source: str
    source_ids: list[int]
    hypotheses: list[Hypothesis]
    #: the source's token count when it was longer than max_input_len and cut to it, else None
    truncated_from: int | None = None

    @property
    def text(self) -> str:
        return self.hypotheses[0].text

    @property
    def score(self) -> float:
        return self.hypotheses[0].score


@dataclass(frozen=True)
class SearchSettings:
    """Validated search options (the key of one traced function)."""

    beam_size: int
    nbest: int
    length_penalty: float
    max_len_a: float
    max_len_b: float
    attention: bool = False
    jit_compile: bool = False


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def check_settings(beam_size, nbest, length_penalty) -> None:
    """One-line UserErrors for bad search options (the names are translate.py's options)."""
    if not _is_int(beam_size) or beam_size < 1:
        raise UserError(f"--beam-size: expected an integer >= 1, got {beam_size!r}")
    if not _is_int(nbest) or nbest < 1:
        raise UserError(f"--nbest: expected an integer >= 1, got {nbest!r}")
    if nbest > beam_size:
        raise UserError(f"--nbest: expected at most the beam size ({beam_size}), got {nbest}")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) or not length_penalty >= 0:
        raise UserError(f"--length-penalty: expected a number >= 0, got {length_penalty!r}")
    if math.isinf(length_penalty):
        raise UserError(f"--length-penalty: expected a finite number >= 0, got {length_penalty!r}")


def check_batching(batch_size, batch_tokens) -> None:
    if batch_size is not None and batch_tokens is not None:
        raise UserError("--batch-size and --batch-tokens: give only one of them")
    if batch_size is not None and (not _is_int(batch_size) or batch_size < 1):
        raise UserError(f"--batch-size: expected an integer >= 1, got {batch_size!r}")
    if batch_tokens is not None and (not _is_int(batch_tokens) or batch_tokens < 1):
        raise UserError(f"--batch-tokens: expected an integer >= 1, got {batch_tokens!r}")


def make_batches(
    lengths: np.ndarray, batch_size: int | None = None, batch_tokens: int | None = None
) -> list[np.ndarray]:
    """Indices of the non-empty sentences in batches, sorted by length (stable; shortest first).

    batch_size: at most that many sentences per batch; batch_tokens: at most that many padded source
    tokens (sentences x longest length) per batch, at least one sentence. Sentences of length 0 are in
    no batch.
    """
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    if batch_tokens is None:
        size = batch_size or 64
        return [order[i : i + size] for i in range(0, len(order), size)]
    batches, start = [], 0
    for end in range(1, len(order) + 1):
        # sorted ascending: the padded width of order[start:end] is the length of its last sentence
        if (end - start) * int(lengths[order[end - 1]]) > batch_tokens and end - 1 > start:
            batches.append(order[start : end - 1])
            start = end - 1
    if start < len(order):
        batches.append(order[start:])
    return batches


def _decode_text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


class Translator:
    """Translates with a model, its tokenizers and the search defaults of a ``decode`` config section.

    model: an `nmt.model.Seq2Seq` (``encode``/``decode_step``); tokenizers: `Tokenizers`; decode:
    `DecodeConfig` (defaults when None). jit_compile: run the search under XLA (batches padded to fixed
    shapes). Search functions are traced once per setting and cached.
    """

    def __init__(self, model, tokenizers: Tokenizers, decode: DecodeConfig | None = None, jit_compile: bool = False):
        self.model = model
        self.tokenizers = tokenizers
        self.decode = decode if decode is not None else DecodeConfig()
        self.jit_compile = bool(jit_compile)
        self._functions = {}
        for side, tokenizer, size in (
            ("source", tokenizers.src, model.src_vocab_size),
            ("target", tokenizers.tgt, model.tgt_vocab_size),
        ):
            if tokenizer.vocab_size != size:
                raise UserError(
                    f"{side} vocabulary: the tokenizer has {tokenizer.vocab_size} pieces, the model expects {size}; "
                    "the model and tokenizer come from different runs"
                )

    # ----------------------------------------------------------------------------------------- settings

    @property
    def architecture(self) -> str:
        return getattr(getattr(self.model, "model_config", None), "architecture", "")

    @property
    def has_attention(self) -> bool:
        return self.architecture == "attention"

    def settings(self, beam_size=None, nbest=None, length_penalty=None, attention=False) -> SearchSettings:
        """The decode section's defaults overridden by the arguments that are not None, validated."""
        d = self.decode
        beam_size = d.beam_size if beam_size is None else beam_size
        nbest = (min(d.nbest, beam_size) if _is_int(beam_size) else d.nbest) if nbest is None else nbest
        length_penalty = d.length_penalty if length_penalty is None else length_penalty
        check_settings(beam_size, nbest, length_penalty)
        if attention and not self.has_attention:
            raise UserError(
                f"attention weights: the model's architecture is {self.architecture!r}, which has no attention "
                "(only 'attention' models do)"
            )
        return SearchSettings(
            int(beam_size),
            int(nbest),
            float(length_penalty),
            float(d.max_len_a),
            float(d.max_len_b),
            bool(attention),
            self.jit_compile,
        )

    def search_function(self, settings: SearchSettings):
        """The traced search: source_ids int32[B, S] -> (tokens [B,N,L], lengths [B,N], scores [B,N], attention
        [B,N,L,S] or [0])."""
        fn = self._functions.get(settings)
        if fn is None:
            model = self.model

            def run(source_ids):
                result = search(
                    model,
                    source_ids,
                    beam_size=settings.beam_size,
                    n_best=settings.nbest,
                    alpha=settings.length_penalty,
                    max_len_a=settings.max_len_a,
                    max_len_b=settings.max_len_b,
                    return_attention=settings.attention,
                    bos_id=BOS_ID,
                    eos_id=EOS_ID,
                    pad_id=PAD_ID,
                )
                attention = result.attention if settings.attention else tf.zeros([0])
                return result.tokens, result.lengths, result.scores, attention

            fn = tf.function(
                run,
                input_signature=[tf.TensorSpec([None, None], tf.int32, name="source_ids")],
                jit_compile=settings.jit_compile,
            )
            self._functions[settings] = fn
        return fn

    # ---------------------------------------------------------------------------------------- translate

    def translate(
        self, sentences: Sequence[str], *, beam_size=None, length_penalty=None, batch_size=None, batch_tokens=None
    ) -> list[str]:
        """The best translation of every sentence, in input order."""
        return [
            t.text
            for t in self.translate_detailed(
                sentences,
                beam_size=beam_size,
                length_penalty=length_penalty,
                batch_size=batch_size,
                batch_tokens=batch_tokens,
            )
        ]

    def translate_nbest(
        self,
        sentences: Sequence[str],
        *,
        nbest=None,
        beam_size=None,
        length_penalty=None,
        batch_size=None,
        batch_tokens=None,
    ) -> list[list[Hypothesis]]:
        """The n-best list (nbest entries, best first; default: the beam size) of every sentence."""
        if nbest is None:
            nbest = self.decode.beam_size if beam_size is None else beam_size
        translations = self.translate_detailed(
            sentences,
            beam_size=beam_size,
            nbest=nbest,
            length_penalty=length_penalty,
            batch_size=batch_size,
            batch_tokens=batch_tokens,
        )
        return [t.hypotheses for t in translations]

    def translate_detailed(
        self,
        sentences: Sequence[str],
        *,
        beam_size=None,
        nbest=None,
        length_penalty=None,
        batch_size=None,
        batch_tokens=None,
        attention: bool = False,
        max_input_len=None,
    ) -> list[Translation]:
        """Translations with source ids, n-best hypotheses, target tokens and (optionally) attention.

        A source longer than max_input_len tokens (default: decode.max_input_len) is translated from its
        first max_input_len tokens, and its Translation says so (``truncated_from``): an input of any
        length is translated, in bounded memory.
        """
        settings = self.settings(beam_size, nbest, length_penalty, attention)
        check_batching(batch_size, batch_tokens)
        max_input_len = self.decode.max_input_len if max_input_len is None else max_input_len
        if not _is_int(max_input_len) or max_input_len < 1:
            raise UserError(f"--max-input-len: expected an integer >= 1, got {max_input_len!r}")
        if batch_size is None and batch_tokens is None:
            batch_size = self.decode.batch_size
        sentences = list(sentences)
        for i, s in enumerate(sentences):
            if not isinstance(s, str):
                raise UserError(f"sentence {i + 1}: expected a string, got {type(s).__name__}")
        if not sentences:
            return []
        ragged = self.tokenizers.src.tf_tokenize(
            tf.constant([s.encode("utf-8", "replace") for s in sentences], tf.string)
        )
        values, splits = ragged.flat_values.numpy(), ragged.row_splits.numpy()
        full_lengths = np.diff(splits)
        lengths = np.minimum(full_lengths, max_input_len)
        source_ids = [values[splits[i] : splits[i] + lengths[i]].tolist() for i in range(len(sentences))]
        empty = [Hypothesis("", 0.0, (), np.zeros([0, 0], np.float32) if attention else None)] * settings.nbest
        out = [
            Translation(s, ids, list(empty), int(n) if n > max_input_len else None)
            for s, ids, n in zip(sentences, source_ids, full_lengths)
        ]
        fn = self.search_function(settings)
        for batch in make_batches(lengths, batch_size, batch_tokens):
            for part in self._attention_parts(batch, lengths, settings):
                self._run_batch(fn, settings, part, lengths, values, splits, out, batch_size)
        return out

    def _attention_parts(self, batch, lengths, settings: SearchSettings) -> list[np.ndarray]:
        """The batch, split where attention weights are returned so that the search's attention
        buffers (rows x beams x output length x source length floats, for the beams and the n-best
        archive) stay within ATTENTION_BUFFER_BYTES."""
        if not settings.attention:
            return [batch]
        width = int(lengths[batch].max())
        out_len = int(settings.max_len_a * width + settings.max_len_b) + 2
        per_row = 4 * (settings.beam_size + settings.nbest) * out_len * width
        rows = max(1, ATTENTION_BUFFER_BYTES // per_row)
        return [batch[i : i + rows] for i in range(0, len(batch), rows)]

    def _run_batch(self, fn, settings, batch, lengths, values, splits, out, batch_size):
        rows = len(batch)
        width = int(lengths[batch].max())
        padded_rows, padded_width = rows, width
        if settings.jit_compile:  # bounded set of shapes for XLA
            padded_width = -(-width // XLA_WIDTH_MULTIPLE) * XLA_WIDTH_MULTIPLE
            padded_rows = max(rows, batch_size or 1 << (rows - 1).bit_length())
        ids = np.zeros([padded_rows, padded_width], np.int32)
        for r, i in enumerate(batch):
            ids[r, : lengths[i]] = values[splits[i] : splits[i] + lengths[i]]
        if padded_rows > rows:
            ids[rows:] = ids[0]  # filler rows repeat a real sentence (discarded)
        tokens, hyp_lengths, scores, att = (x.numpy() for x in fn(tf.constant(ids)))
        n, length = tokens.shape[1], tokens.shape[2]
        texts = self.tokenizers.tgt.tf_detokenize(tf.constant(tokens[:rows].reshape([rows * n, length]))).numpy()
        for r, i in enumerate(batch):
            hyps = []
            for k in range(n):
                count = int(hyp_lengths[r, k])
                toks = tokens[r, k, :count]
                shown = toks[:-1] if count and toks[-1] == EOS_ID else toks
                weights = att[r, k, :count, : lengths[i]] if settings.attention else None
                hyps.append(
                    Hypothesis(
                        _decode_text(texts[r * n + k]), float(scores[r, k]), tuple(int(t) for t in shown), weights
                    )
                )
            out[i].hypotheses = hyps

    def translate_stream(
        self, sentences: Iterable[str], *, chunk_lines: int = 4000, **options
    ) -> Iterator[Translation]:
        """translate_detailed over an iterable of any length, chunk_lines sentences at a time (memory stays
        constant; each chunk is sorted by length for batching); yields the translations in input order."""
        if not _is_int(chunk_lines) or chunk_lines < 1:
            raise UserError(f"--chunk-lines: expected an integer >= 1, got {chunk_lines!r}")
        chunk: list[str] = []
        for sentence in sentences:
            chunk.append(sentence)
            if len(chunk) >= chunk_lines:
                yield from self.translate_detailed(chunk, **options)
                chunk = []
        if chunk:
            yield from self.translate_detailed(chunk, **options)

    # ------------------------------------------------------------------------------------------ helpers

    def source_pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.tokenizers.src.id_to_piece(i) for i in ids]

    def target_pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.tokenizers.tgt.id_to_piece(i) for i in ids]


# -------------------------------------------------------------------------------------------- run directory


def check_run_dir(run_dir) -> Path:
    """The run directory as a Path; a one-line UserError naming what is missing."""
    d = Path(run_dir)
    if not d.exists():
        raise UserError(f"--model {d}: no such run directory")
    if not d.is_dir():
        raise UserError(f"--model {d}: not a directory (expected a run directory written by train.py)")
    missing = []
    if not (d / CONFIG_FILE).is_file():
        missing.append(CONFIG_FILE)
    if not (d / TOKENIZER_DIR).is_dir():
        missing.append(TOKENIZER_DIR + "/")
    if not (d / MODEL_FILE).is_file():
        missing.append(MODEL_FILE)
    if missing:
        raise UserError(
            f"--model {d}: not a complete run directory, missing {', '.join(missing)} "
            f"(expected {CONFIG_FILE}, {TOKENIZER_DIR}/ and {MODEL_FILE}, written by train.py)"
        )
    return d


def load_run(run_dir, jit_compile: bool = False) -> Translator:
    """The Translator of a run directory: its model.keras, tokenizer/ and the decode section of config.yaml."""
    import keras

    import nmt.model  # noqa: F401  (registers the serializable classes)
    from nmt import config as config_module

    d = check_run_dir(run_dir)
    cfg = config_module.load(d / CONFIG_FILE)
    tokenizers = Tokenizers.load(d / TOKENIZER_DIR)
    try:
        # safe_mode: a .keras file is data; one holding Python code (a Lambda layer's bytecode) is refused.
        model = keras.models.load_model(d / MODEL_FILE, compile=False, safe_mode=True)
    except Exception as error:  # a corrupt or foreign file: say which, in one line, with the root cause
        cause = error
        while (cause.__cause__ or cause.__context__) is not None:
            cause = cause.__cause__ or cause.__context__
        detail = " ".join(str(cause).split())[:300]
        raise UserError(f"{d / MODEL_FILE}: cannot load the model ({type(cause).__name__}: {detail})") from None
    if not hasattr(model, "decode_step"):
        raise UserError(f"{d / MODEL_FILE}: expected an nmt model (cho2014 or attention), got {type(model).__name__}")
    return Translator(model, tokenizers, cfg.decode, jit_compile=jit_compile)


# ------------------------------------------------------------------------------------------------ export


class ExportedTranslator(tf.Module):
    """The text -> text module that `export_translator` saves.

    Holds the model's variables and the SentencePiece model(s) (inside the tensorflow-text tokenizer's
    resource), so the SavedModel is self-contained. Both functions take string[N]:
    ``translate`` returns {"translations": string[N]}, ``nbest`` {"translations": string[N, K], "scores":
    float32[N, K]} (K = beam size; best first; "" and 0 for a sentence without tokens).
    """

    def __init__(self, translator: Translator):
        super().__init__(name="nmt_translator")
        d = translator.decode
        self.model = translator.model
        # Own tensorflow-text tokenizers with distinct names: TensorFlow's loader gives a kernel-owned
        # resource the shared name "<node name>_load_<n>", the same for two SentencePiece models created
        # under the same default name scope, so after reloading both would use one model
        # (tensorflow/text#1304). Distinct name scopes give distinct node names.
        tokenizers = translator.tokenizers
        self.source_sentencepiece = tf_text.SentencepieceTokenizer(
            model=tokenizers.src.model_proto, out_type=tf.int32, name="nmt_source_sentencepiece"
        )
        self.target_sentencepiece = (
            self.source_sentencepiece
            if tokenizers.tgt is tokenizers.src
            else tf_text.SentencepieceTokenizer(
                model=tokenizers.tgt.model_proto, out_type=tf.int32, name="nmt_target_sentencepiece"
            )
        )
        self._best = translator.settings(d.beam_size, 1, d.length_penalty)
        self._nbest = translator.settings(d.beam_size, d.beam_size, d.length_penalty)
        self._batch_size = int(d.batch_size)
        self._max_input_len = int(d.max_input_len)
        spec = tf.TensorSpec([None], tf.string, name=INPUT_NAME)
        self.translate = tf.function(self._translate, input_signature=[spec])
        self.nbest = tf.function(self._translate_nbest, input_signature=[spec])

    def _translate(self, sentences):
        texts, _ = self._search(sentences, self._best)
        return {"translations": texts[:, 0]}

    def _translate_nbest(self, sentences):
        texts, scores = self._search(sentences, self._nbest)
        return {"translations": texts, "scores": scores}

    def _search(self, sentences, settings: SearchSettings):
        """sentences string[N] -> (texts string[N, K], scores float32[N, K]) in input order."""
        n_best = settings.nbest
        ragged = self.source_sentencepiece.tokenize(sentences)[:, : self._max_input_len]  # longer inputs cut
        lengths = tf.cast(ragged.row_lengths(), tf.int32)  # [N]
        order = tf.argsort(lengths, stable=True)  # shortest first, empty sentences at the front
        sorted_lengths = tf.gather(lengths, order)
        sorted_ids = tf.gather(ragged.to_tensor(default_value=PAD_ID), order)  # [N, S]
        count = tf.size(lengths)
        first = tf.reduce_sum(tf.cast(tf.equal(sorted_lengths, 0), tf.int32))
        batch_size = self._batch_size
        num_batches = (count - first + batch_size - 1) // batch_size
        texts = tf.TensorArray(tf.string, size=num_batches + 1, infer_shape=False, element_shape=[None, n_best])
        scores = tf.TensorArray(tf.float32, size=num_batches + 1, infer_shape=False, element_shape=[None, n_best])
        texts = texts.write(0, tf.fill([first, n_best], ""))
        scores = scores.write(0, tf.zeros([first, n_best]))

        def body(i, texts, scores):
            start = first + i * batch_size
            end = tf.minimum(start + batch_size, count)
            width = sorted_lengths[end - 1]  # the longest of the batch (sorted)
            source_ids = sorted_ids[start:end, :width]  # [B, S]
            result = search(
                self.model,
                source_ids,
                beam_size=settings.beam_size,
                n_best=n_best,
                alpha=settings.length_penalty,
                max_len_a=settings.max_len_a,
                max_len_b=settings.max_len_b,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                pad_id=PAD_ID,
            )
            rows, length = tf.shape(result.tokens)[0], tf.shape(result.tokens)[2]
            batch_texts = _detokenize(self.target_sentencepiece, tf.reshape(result.tokens, [rows * n_best, length]))
            batch_texts = tf.reshape(batch_texts, [rows, n_best])
            return i + 1, texts.write(i + 1, batch_texts), scores.write(i + 1, result.scores)

        _, texts, scores = tf.while_loop(lambda i, *_: i < num_batches, body, (tf.constant(0), texts, scores))
        inverse = tf.math.invert_permutation(order)
        return tf.gather(texts.concat(), inverse), tf.gather(scores.concat(), inverse)


def _detokenize(sentencepiece, ids):
    """ids int32[R, L] (search output: tokens, EOS, PAD) -> string[R], by the rule of
    `Tokenizer.tf_detokenize` (each row stops at its first EOS or PAD)."""
    return sentencepiece.detokenize(text_ids(ids))


def export_translator(translator: Translator, path) -> Path:
    """Saves the text -> text SavedModel of `translator` at path (atomically: written next to it, then
    renamed over any previous export). Signatures: "serving_default" (sentences string[N] ->
    translations string[N]) and "nbest" (-> translations string[N, K], scores float32[N, K]), with the
    search settings of translator.decode. Returns the path."""
    path = Path(path)
    module = ExportedTranslator(translator)
    signatures = {SERVING_SIGNATURE: module.translate, NBEST_SIGNATURE: module.nbest}
    with atomic_directory(path) as tmp:
        try:
            tf.saved_model.save(module, str(tmp), signatures=signatures)
        except tf.errors.OpError as error:  # e.g. a full disk, reported by TensorFlow's file system layer
            raise UserError(f"{path}: cannot write the SavedModel ({error.message.splitlines()[0][:200]})") from None
    return path


def export_run(run_dir) -> Path:
    """Exports the run directory's model to run_dir/export."""
    return export_translator(load_run(run_dir), Path(run_dir) / EXPORT_DIR)
