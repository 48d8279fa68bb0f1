"""Text in, text out: the in-process translator and its SavedModel export.

A run directory (written by training) holds::

    config.yaml    the resolved config (its decode: section gives the search defaults)
    decode_tuned.yaml   where training chose the length penalty on dev: that α (nmt.decode.tuning)
    tokenizer/     the SentencePiece model(s), read by `Tokenizers.load`
    model.keras    the model to translate with (the best checkpoint by dev BLEU)
    shortlist.npz  the lexical shortlist's table (`nmt.decode.shortlist`; older runs have none and decode
                   over the whole vocabulary)
    export/        the SavedModel written by `export_translator` (text -> text, for TF Serving)

In process::

    translator = load_run("runs/multi30k")
    [t.text for t in translator.translate(["A man is sleeping."])]             # ["Ein Mann schläft."]
    settings = translator.settings(beam_size=5, nbest=3, length_penalty=1.0)  # the run's defaults, overridden
    translator.translate(lines, settings)[0].hypotheses                       # [Hypothesis(text, score, ...)]
    translator.translate(lines, translator.settings(attention=True))          # with attention weights
    translator.translate_stream(open("big.txt"), settings)                    # any length, in input order

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

import logging
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
from nmt.decode.shortlist import LexicalTable, check_table, read_for_run
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


def _decode_text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


class Translator:
    """Translates with a model, its tokenizers and the search defaults of a ``decode`` config section.

    model: an `nmt.model.seq2seq.Seq2Seq` (``encode``/``decode_step``); tokenizers: `Tokenizers`; decode:
    `DecodeConfig` (defaults when None; read at every call). jit_compile: run the search under XLA (batches
    padded to a bounded set of shapes). shortlist: the run's `LexicalTable` (`nmt.decode.shortlist`), used where
    the settings' shortlist is > 0 and not under XLA; None: the whole vocabulary. The work is done by
    ``self.graph``, a `TranslationGraph`: one traced function per `SearchSettings`.
    """

    def __init__(
        self,
        model,
        tokenizers: Tokenizers,
        decode: DecodeConfig | None = None,
        jit_compile: bool = False,
        shortlist: LexicalTable | None = None,
    ):
        self.model = model
        self.tokenizers = tokenizers
        self.decode = decode if decode is not None else DecodeConfig()
        self.jit_compile = bool(jit_compile)
        self.shortlist = shortlist
        for side, tokenizer, size in (
            ("source", tokenizers.src, model.src_vocab_size),
            ("target", tokenizers.tgt, model.tgt_vocab_size),
        ):
            if tokenizer.vocab_size != size:
                raise UserError(
                    f"{side} vocabulary: the tokenizer has {tokenizer.vocab_size} pieces, the model expects {size}; "
                    "the model and tokenizer come from different runs"
                )
        if shortlist is not None:
            check_table(shortlist, model.src_vocab_size, model.tgt_vocab_size)
        self.graph = TranslationGraph(model, tokenizers, jit_compile=self.jit_compile, shortlist=shortlist)
        self._forced = None  # the traced forced decoding of `score`, made at its first call

    # ----------------------------------------------------------------------------------------- settings

    @property
    def architecture(self) -> str:
        return getattr(getattr(self.model, "model_config", None), "architecture", "")

    @property
    def has_attention(self) -> bool:
        explicit = getattr(self.model, "has_attention", None)  # an ensemble says whether all its models have it
        return self.architecture == "attention" if explicit is None else bool(explicit)

    def settings(
        self, beam_size=None, nbest=None, length_penalty=None, attention=False, shortlist=None
    ) -> SearchSettings:
        """The run's search settings (its ``decode:`` section with the tuned length penalty) with the options
        given instead, where not None: the one place where a call's options meet the run's defaults."""
        return self._check_attention(
            SearchSettings.from_decode(
                self.decode,
                beam_size=beam_size,
                nbest=nbest,
                length_penalty=length_penalty,
                shortlist=shortlist,
                attention=attention,
            )
        )

    def _check_attention(self, settings: SearchSettings) -> SearchSettings:
        if settings.attention and not self.has_attention:
            raise UserError(
                f"attention weights: the model's architecture is {self.architecture!r}, which has no attention "
                "(only 'attention' models do)"
            )
        return settings

    def batching(self, batch_size=None, batch_tokens=None, max_input_len=None) -> Batching:
        """The run's batching (its ``decode:`` section) with the options given instead, where not None."""
        return Batching.from_decode(
            self.decode, batch_size=batch_size, batch_tokens=batch_tokens, max_input_len=max_input_len
        )

    # ---------------------------------------------------------------------------------------- translate

    def translate(
        self, sentences: Sequence[str], settings: SearchSettings | None = None, batching: Batching | None = None
    ) -> list[Translation]:
        """The translations of sentences, in input order: each a `Translation` (``.text`` the best, ``.hypotheses``
        the settings.nbest best, with target tokens and, with settings.attention, attention weights).

        settings / batching: default ``self.settings()`` / ``self.batching()`` (the run's). A source longer than
        batching.max_input_len tokens is translated from its first max_input_len tokens, and its Translation
        says so (``truncated_from``): an input of any length is translated, in bounded memory.
        """
        settings, batching = self._options(settings, batching)
        return self._translate(list(sentences), settings, batching)

    def translate_stream(
        self,
        sentences: Iterable[str],
        settings: SearchSettings | None = None,
        batching: Batching | None = None,
        chunk_lines: int = 4000,
    ) -> Iterator[Translation]:
        """`translate` over an iterable of any length, chunk_lines sentences at a time (memory stays constant;
        each chunk is sorted by length for batching); yields the translations in input order. The options are
        checked before the first sentence is read."""
        chunk_lines = check_chunk_lines(chunk_lines)
        settings, batching = self._options(settings, batching)
        return self._stream(iter(sentences), chunk_lines, settings, batching)

    def _options(self, settings, batching) -> tuple[SearchSettings, Batching]:
        settings = self.settings() if settings is None else settings
        batching = self.batching() if batching is None else batching
        if not isinstance(settings, SearchSettings):
            raise TypeError(f"settings: expected a SearchSettings, got {type(settings).__name__}")
        if not isinstance(batching, Batching):
            raise TypeError(f"batching: expected a Batching, got {type(batching).__name__}")
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

    def _stream(self, sentences: Iterator[str], chunk_lines: int, settings, batching) -> Iterator[Translation]:
        chunk: list[str] = []
        for sentence in sentences:
            chunk.append(sentence)
            if len(chunk) >= chunk_lines:
                yield from self._translate(chunk, settings, batching)
                chunk = []
        if chunk:
            yield from self._translate(chunk, settings, batching)

    def score(self, sources: Sequence[str], targets: Sequence[str], batching: Batching | None = None) -> list:
        """The log-probability of every target given its source, log P(y, EOS | x) without length penalty,
        with the search's decoder step (`nmt.decode.scoring`): [PairScore(log_prob, length)] in input order.
        batching: default ``self.batching()`` (batch_size pairs per batch; sources cut to max_input_len)."""
        from nmt.decode import scoring

        batching = self.batching() if batching is None else batching
        if not isinstance(batching, Batching):
            raise TypeError(f"batching: expected a Batching, got {type(batching).__name__}")
        if self._forced is None:
            self._forced = scoring.forced_function(self.model)
        return scoring.score_pairs(self._forced, self.tokenizers, sources, targets, batching)

    # ------------------------------------------------------------------------------------------ helpers

    def source_pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.tokenizers.src.id_to_piece(i) for i in ids]

    def target_pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.tokenizers.tgt.id_to_piece(i) for i in ids]


# -------------------------------------------------------------------------------------------- run directory


def load_run(run_dir, jit_compile: bool = False, ensemble=(), checkpoint: str | None = None) -> Translator:
    """The Translator of a run directory: its model.keras, tokenizer/ and the decode section of config.yaml
    (with the length penalty chosen on dev, where training tuned it: decode_tuned.yaml, nmt.decode.tuning).
    The model decodes in the precision `for_decoding` picks for this machine.

    ensemble: more run directories whose models are decoded together with this one, their per-step
    probabilities averaged (`nmt.decode.ensemble`); they must have this run's tokenizer (the same
    vocabulary), and the decoding defaults are this run's.
    checkpoint: translate with other weights than model.keras' (`nmt.checkpoint`): "best", "last",
    "average" (the mean of the kept checkpoints) or a step number; with an ensemble, of every member."""
    from nmt import config as config_module

    d = check_run_dir(run_dir)
    cfg = config_module.load(d / CONFIG_FILE)
    tokenizers = Tokenizers.load(d / TOKENIZER_DIR)
    model = for_decoding(load_model(d, checkpoint))
    if ensemble:
        from nmt.decode.ensemble import Ensemble
        from nmt.rundir import check_same_tokenizer

        others = [check_run_dir(other) for other in ensemble]
        check_same_tokenizer([d, *others])
        model = Ensemble([model, *(for_decoding(load_model(other, checkpoint)) for other in others)])
    decode = tuning.apply(d, cfg.decode)
    return Translator(model, tokenizers, decode, jit_compile=jit_compile, shortlist=read_for_run(d))


def for_decoding(model):
    """The model as decoding runs it on this machine (`nmt.model.precision.decoding_policy`): a model trained
    with mixed_bfloat16 gets bfloat16 variables where bfloat16 is fast (the same products without a cast of
    every kernel at every step) and float32 ones where it is emulated; any other model is returned as is."""
    from nmt.model import precision

    policy = precision.decoding_policy(model)
    return model if policy is None else precision.with_policy(model, policy)


def load_model(path, checkpoint: str | None = None):
    """A trained model as a Keras model (`nmt.load_model`): path is a run directory (its model.keras) or a
    .keras file that train.py wrote. Safe mode: a .keras file is data. With `checkpoint` ("best", "last",
    "average" or a step), that checkpoint's weights of the run directory are put into it (nmt.checkpoint).
    nmt's layers are registered first, so this works in a fresh process where keras.models.load_model
    would not know them. A missing or foreign file is a one-line UserError."""
    import keras

    import nmt.model.seq2seq  # noqa: F401  (registers the serializable classes)

    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise UserError(f"{path}: no such file; expected a run directory or the model.keras that train.py wrote")
    try:
        # safe_mode: a .keras file is data; one holding Python code (a Lambda layer's bytecode) is refused.
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # a corrupt or foreign file: say which, in one line, with the root cause
        cause = error
        while (cause.__cause__ or cause.__context__) is not None:
            cause = cause.__cause__ or cause.__context__
        detail = " ".join(str(cause).split())[:300]
        raise UserError(f"{path}: cannot load the model ({type(cause).__name__}: {detail})") from None
    if not hasattr(model, "decode_step"):
        raise UserError(f"{path}: expected an nmt model (cho2014 or attention), got {type(model).__name__}")
    if checkpoint is not None:
        from nmt.checkpoint import CheckpointChoice

        loaded = CheckpointChoice(run_dir, checkpoint).apply(model)
        logging.getLogger(__name__).info(f"{run_dir}: translating with {loaded}")
    return model


# ------------------------------------------------------------------------------------------------ export


def export_translator(translator: Translator, path) -> Path:
    """Saves the text -> text SavedModel of `translator` at path (atomically: written next to it, then
    renamed over any previous export): a `TranslationGraph` of its model and tokenizers with the
    signatures of `serving_signatures` ("serving_default": sentences string[N] -> translations string[N];
    "nbest": -> translations string[N, K], scores float32[N, K]) for the run's settings (translator.settings()).
    The search runs without XLA (a SavedModel that loads anywhere). Returns the path."""
    path = Path(path)
    graph = TranslationGraph(translator.model, translator.tokenizers, shortlist=translator.shortlist)
    signatures = serving_signatures(graph, translator.settings(), translator.batching())
    with atomic_directory(path) as tmp:
        try:
            tf.saved_model.save(graph, str(tmp), signatures=signatures)
        except tf.errors.OpError as error:  # e.g. a full disk, reported by TensorFlow's file system layer
            raise UserError(f"{path}: cannot write the SavedModel ({error.message.splitlines()[0][:200]})") from None
    return path
