"""Text in, text out: the in-process translator and its SavedModel export.

A run directory (written by training) holds::

    config.yaml    the resolved config (its decode: section gives the search defaults)
    decode_tuned.yaml   where training chose the length penalty on dev: that α (nmt.decode.tuning)
    tokenizer/     the SentencePiece model(s), read by `Tokenizers.load`
    model.keras    the model to translate with (the best checkpoint by dev BLEU)
    export/        the SavedModel written by `export_translator` (text -> text, for TF Serving)

In process::

    translator = load_run("runs/multi30k")
    translator.translate(["A man is sleeping."])                    # ["Ein Mann schläft."]
    translator.translate_nbest(["A man is sleeping."], nbest=3)     # [[Hypothesis(text, score), ...]]
    translator.translate_detailed(lines, attention=True)            # tokens, pieces, attention weights

All the work is done by `nmt.decode.graph.TranslationGraph`, one TensorFlow graph (tokenization, cut
to max_input_len, sort by length, batches, search, detokenization, input order). `Translator` is the Python
layer around it: the run's ``decode:`` defaults merged with the call's options (once, into a
`SearchSettings` and a `Batching`), chunks of a stream of any length, and result objects. A sentence
with no tokens (empty or blank) is not searched: its translation is "" with score 0.

The export (`export_translator`) saves the same graph module, with two signatures:

    serving_default   sentences: string[N] -> translations: string[N]
    nbest             sentences: string[N] -> translations: string[N, K], scores: float32[N, K]

with the beam size K, length penalty, output length limits, batch size and max_input_len of the config's
``decode`` section (the defaults of translate.py). Loading it needs tensorflow and tensorflow_text only::

    import tensorflow as tf, tensorflow_text  # registers the SentencePiece ops
    translate = tf.saved_model.load("runs/multi30k/export").signatures["serving_default"]
    translate(sentences=tf.constant(["A man is sleeping."]))["translations"]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from nmt.config import DecodeConfig
from nmt.decode import tuning
from nmt.decode.graph import (  # noqa: F401  (re-exported)
    ATTENTION_BUFFER_BYTES,
    INPUT_NAME,
    NBEST_SIGNATURE,
    SERVING_SIGNATURE,
    TranslationGraph,
    plan_batches,
    serving_signatures,
)
from nmt.decode.settings import Batching, SearchSettings, check_chunk_lines
from nmt.errors import UserError
from nmt.files import atomic_directory
from nmt.rundir import CONFIG_FILE, EXPORT_DIR, MODEL_FILE, TOKENIZER_DIR, check_run_dir  # noqa: F401  (re-exported)
from nmt.text.tokenizer import EOS_ID, Tokenizers


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


def make_batches(
    lengths: np.ndarray, batch_size: int | None = None, batch_tokens: int | None = None
) -> list[np.ndarray]:
    """The batches `TranslationGraph` makes of sources of these lengths, as lists of indices (sorted by
    length, stable, shortest first; sources of length 0 are in none). See `plan_batches`."""
    batching = Batching(batch_size=batch_size, batch_tokens=batch_tokens)
    order, bounds = (x.numpy() for x in plan_batches(lengths, batching.batch_size or 0, batching.batch_tokens or 0))
    return [order[bounds[p] : bounds[p + 1]] for p in range(len(bounds) - 1)]


def _decode_text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


class Translator:
    """Translates with a model, its tokenizers and the search defaults of a ``decode`` config section.

    model: an `nmt.model.seq2seq.Seq2Seq` (``encode``/``decode_step``); tokenizers: `Tokenizers`; decode:
    `DecodeConfig` (defaults when None; read at every call). jit_compile: run the search under XLA (batches
    padded to a bounded set of shapes). The work is done by ``self.graph``, a `TranslationGraph`: one traced
    function per `SearchSettings`.
    """

    def __init__(self, model, tokenizers: Tokenizers, decode: DecodeConfig | None = None, jit_compile: bool = False):
        self.model = model
        self.tokenizers = tokenizers
        self.decode = decode if decode is not None else DecodeConfig()
        self.jit_compile = bool(jit_compile)
        for side, tokenizer, size in (
            ("source", tokenizers.src, model.src_vocab_size),
            ("target", tokenizers.tgt, model.tgt_vocab_size),
        ):
            if tokenizer.vocab_size != size:
                raise UserError(
                    f"{side} vocabulary: the tokenizer has {tokenizer.vocab_size} pieces, the model expects {size}; "
                    "the model and tokenizer come from different runs"
                )
        self.graph = TranslationGraph(model, tokenizers, jit_compile=self.jit_compile)

    # ----------------------------------------------------------------------------------------- settings

    @property
    def architecture(self) -> str:
        return getattr(getattr(self.model, "model_config", None), "architecture", "")

    @property
    def has_attention(self) -> bool:
        return self.architecture == "attention"

    def settings(self, beam_size=None, nbest=None, length_penalty=None, attention=False) -> SearchSettings:
        """The decode section's search defaults overridden by the arguments that are not None."""
        return self._check_attention(
            SearchSettings.from_decode(
                self.decode, beam_size=beam_size, nbest=nbest, length_penalty=length_penalty, attention=attention
            )
        )

    def batching(self, batch_size=None, batch_tokens=None, max_input_len=None) -> Batching:
        """The decode section's batching overridden by the arguments that are not None."""
        return Batching.from_decode(
            self.decode, batch_size=batch_size, batch_tokens=batch_tokens, max_input_len=max_input_len
        )

    def _check_attention(self, settings: SearchSettings) -> SearchSettings:
        if settings.attention and not self.has_attention:
            raise UserError(
                f"attention weights: the model's architecture is {self.architecture!r}, which has no attention "
                "(only 'attention' models do)"
            )
        return settings

    def search_function(self, settings: SearchSettings):
        """The traced search of one batch: source_ids int32[B, S] -> (tokens [B,N,L], lengths [B,N], scores
        [B,N], attention [B,N,L,S] or [0]) (`TranslationGraph.search_function`)."""
        return self.graph.search_function(settings)

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
        settings: SearchSettings | None = None,
        batching: Batching | None = None,
    ) -> list[Translation]:
        """Translations with source ids, n-best hypotheses, target tokens and (optionally) attention.

        A source longer than max_input_len tokens (default: decode.max_input_len) is translated from its
        first max_input_len tokens, and its Translation says so (``truncated_from``): an input of any
        length is translated, in bounded memory. settings / batching: the options as made objects (then
        the single options above stay None).
        """
        settings, batching = self._options(
            beam_size=beam_size,
            nbest=nbest,
            length_penalty=length_penalty,
            batch_size=batch_size,
            batch_tokens=batch_tokens,
            attention=attention,
            max_input_len=max_input_len,
            settings=settings,
            batching=batching,
        )
        return self._translate(list(sentences), settings, batching)

    def _options(
        self,
        *,
        beam_size=None,
        nbest=None,
        length_penalty=None,
        batch_size=None,
        batch_tokens=None,
        attention=False,
        max_input_len=None,
        settings: SearchSettings | None = None,
        batching: Batching | None = None,
    ) -> tuple[SearchSettings, Batching]:
        """The options of a call as (SearchSettings, Batching): made from the decode section and the single
        options, or given as made."""
        if settings is None:
            settings = self.settings(beam_size, nbest, length_penalty, attention)
        elif any(x is not None for x in (beam_size, nbest, length_penalty)) or attention:
            raise TypeError("give settings or the single search options, not both")
        if batching is None:
            batching = self.batching(batch_size, batch_tokens, max_input_len)
        elif any(x is not None for x in (batch_size, batch_tokens, max_input_len)):
            raise TypeError("give batching or the single batching options, not both")
        return self._check_attention(settings), batching

    def _translate(self, sentences: list, settings: SearchSettings, batching: Batching) -> list[Translation]:
        """One call of the graph; its outputs (see `nmt.decode.graph`) as Translation objects."""
        for i, s in enumerate(sentences):
            if not isinstance(s, str):
                raise UserError(f"sentence {i + 1}: expected a string, got {type(s).__name__}")
        if not sentences:
            return []
        out = self.graph.function(settings)(
            tf.constant([s.encode("utf-8", "replace") for s in sentences], tf.string), **batching.tensors()
        )
        texts, scores = out["texts"].numpy(), out["scores"].numpy()  # [N, K]
        tokens, lengths = out["tokens"].numpy(), out["lengths"].numpy()  # [N, K, L], [N, K]
        source_values, source_splits = out["source_ids"].flat_values.numpy(), out["source_ids"].row_splits.numpy()
        full_lengths = out["source_lengths"].numpy()  # [N]
        if settings.attention:  # ragged [N, K, (steps), (source)]: the hypotheses' blocks, one after another
            weights = out["attention"]
            values, step_splits, width_splits = (
                weights.flat_values.numpy(),
                weights.nested_row_splits[1].numpy(),
                weights.nested_row_splits[2].numpy(),
            )
        n = settings.nbest
        translations = []
        for i, sentence in enumerate(sentences):
            source_ids = source_values[source_splits[i] : source_splits[i + 1]].tolist()
            hyps = []
            for k in range(n):
                count = int(lengths[i, k])
                toks = tokens[i, k, :count]
                shown = toks[:-1] if count and toks[-1] == EOS_ID else toks
                block = None
                if settings.attention:
                    r = i * n + k
                    begin, end = width_splits[step_splits[r]], width_splits[step_splits[r + 1]]
                    block = values[begin:end].reshape([count, len(source_ids)])
                hyps.append(
                    Hypothesis(_decode_text(texts[i, k]), float(scores[i, k]), tuple(int(t) for t in shown), block)
                )
            full = int(full_lengths[i])
            translations.append(Translation(sentence, source_ids, hyps, full if full > len(source_ids) else None))
        return translations

    def translate_stream(
        self, sentences: Iterable[str], *, chunk_lines: int = 4000, **options
    ) -> Iterator[Translation]:
        """translate_detailed over an iterable of any length, chunk_lines sentences at a time (memory stays
        constant; each chunk is sorted by length for batching); yields the translations in input order.
        The options are checked before the first sentence is read."""
        chunk_lines = check_chunk_lines(chunk_lines)
        settings, batching = self._options(**options)
        return self._stream(iter(sentences), chunk_lines, settings, batching)

    def _stream(self, sentences: Iterator[str], chunk_lines: int, settings, batching) -> Iterator[Translation]:
        chunk: list[str] = []
        for sentence in sentences:
            chunk.append(sentence)
            if len(chunk) >= chunk_lines:
                yield from self._translate(chunk, settings, batching)
                chunk = []
        if chunk:
            yield from self._translate(chunk, settings, batching)

    # ------------------------------------------------------------------------------------------ helpers

    def source_pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.tokenizers.src.id_to_piece(i) for i in ids]

    def target_pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.tokenizers.tgt.id_to_piece(i) for i in ids]


# -------------------------------------------------------------------------------------------- run directory


def load_run(run_dir, jit_compile: bool = False) -> Translator:
    """The Translator of a run directory: its model.keras, tokenizer/ and the decode section of config.yaml
    (with the length penalty chosen on dev, where training tuned it: decode_tuned.yaml, nmt.decode.tuning)."""
    import keras

    import nmt.model.seq2seq  # noqa: F401  (registers the serializable classes)
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
    return Translator(model, tokenizers, tuning.apply(d, cfg.decode), jit_compile=jit_compile)


# ------------------------------------------------------------------------------------------------ export


def export_translator(translator: Translator, path) -> Path:
    """Saves the text -> text SavedModel of `translator` at path (atomically: written next to it, then
    renamed over any previous export): a `TranslationGraph` of its model and tokenizers with the
    signatures of `serving_signatures` ("serving_default": sentences string[N] -> translations string[N];
    "nbest": -> translations string[N, K], scores float32[N, K]) for the settings of translator.decode.
    The search runs without XLA (a SavedModel that loads anywhere). Returns the path."""
    path = Path(path)
    graph = TranslationGraph(translator.model, translator.tokenizers)
    signatures = serving_signatures(graph, translator.decode)
    with atomic_directory(path) as tmp:
        try:
            tf.saved_model.save(graph, str(tmp), signatures=signatures)
        except tf.errors.OpError as error:  # e.g. a full disk, reported by TensorFlow's file system layer
            raise UserError(f"{path}: cannot write the SavedModel ({error.message.splitlines()[0][:200]})") from None
    return path


def export_run(run_dir) -> Path:
    """Exports the run directory's model to run_dir/export."""
    return export_translator(load_run(run_dir), Path(run_dir) / EXPORT_DIR)
