"""One translation graph: sentences in, translations out, every step inside one TensorFlow function.

`TranslationGraph` is a ``tf.Module`` holding a model (its variables) and its tokenizers (the SentencePiece
models). For each `nmt.decode.search.SearchSettings` it gives one ``tf.function``, traced once (the batching
arrives as tensors)::

    graph = TranslationGraph(model, tokenizers)
    translate = graph.function(SearchSettings(beam_size=5, nbest=2))
    out = translate(tf.constant(["A man sleeps.", ""]), batch_size=64, batch_tokens=0, max_input_len=256)

which does, with N sentences:

1. tokenize (tensorflow-text SentencePiece)            ids ragged int32[N, (n_i)]
2. cut every source to its first max_input_len tokens   ragged int32[N, (s_i)], s_i = min(n_i, max_input_len)
3. sort by s_i, stable, shortest first; a source with s_i = 0 is not searched
4. cut the sorted sources into batches (`plan_batches`): batch_size sentences, or, with batch_tokens > 0,
   at most batch_tokens padded tokens (rows x longest) and at least one sentence; with attention, a batch
   is split again so that the search's attention buffers stay within ATTENTION_BUFFER_BYTES
5. search each batch (`nmt.decode.search.search`), over the batch's lexical shortlist where the graph has a
   table and settings.shortlist > 0 (`nmt.decode.shortlist.batch_vocabulary`); with jit_compile under XLA
   (the batch padded to a bounded set of shapes: rows to batch_size, or a power of two with batch_tokens,
   and width to a multiple of 8), over the whole vocabulary: a shortlist's width changes with every batch
6. detokenize, and put every output back in input order.

Outputs (a dict; K = settings.nbest, L = the output buffer length of the longest cut source):

    texts           string[N, K]    hypotheses, best first; "" for a source without tokens
    scores          float32[N, K]   log P(y|x) / lp(|y|); 0 for a source without tokens, -inf for a slot
                                    no hypothesis filled
    tokens          int32[N, K, L]  generated ids, EOS included when produced, then PAD
    lengths         int32[N, K]     |y| (EOS included)
    source_ids      ragged int32[N, (s_i)]  the cut sources
    source_lengths  int32[N]        n_i, the token counts before cutting
    attention       ragged float32[N, K, (lengths), (s_i)]  only with settings.attention

`serving_signatures` wraps two of these functions as the SavedModel signatures that
`nmt.decode.translator.export_translator` saves, so the SavedModel computes what the in-process translator does.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from nmt.decode.search import Reserved, buffer_length, search
from nmt.decode.settings import Batching, SearchSettings
from nmt.decode.shortlist import LexicalTable, batch_vocabulary
from nmt.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizers

SERVING_SIGNATURE = "serving_default"
NBEST_SIGNATURE = "nbest"
INPUT_NAME = "sentences"
XLA_WIDTH_MULTIPLE = 8
RESERVED = Reserved(pad=PAD_ID, bos=BOS_ID, eos=EOS_ID)
#: The most memory the search's attention weights may take per batch (translate.py --attention-plot).
ATTENTION_BUFFER_BYTES = 256 << 20


# ------------------------------------------------------------------------------------------------- batches


def plan_batches(lengths, batch_size, batch_tokens=0, settings: SearchSettings | None = None):
    """The search batches of sources of these lengths, as TensorFlow ops (in the graph, or eagerly).

    lengths int32[N] (after cutting); batch_size int32[] (used when batch_tokens is 0); batch_tokens
    int32[] (> 0: at most that many padded tokens per batch, at least one sentence); settings: with
    settings.attention, every batch is split into parts of at most max(1, ATTENTION_BUFFER_BYTES //
    (4 (K + N) (floor(a w + b) + 2) w)) rows, w the batch's longest source (the search's beams and n-best
    archive of attention weights).
    Returns (order int32[N], bounds int32[P + 1]): order sorts the sources by length (stable, shortest
    first, sources of length 0 at the front); batch p is order[bounds[p]:bounds[p + 1]]; bounds[0] is the
    number of sources of length 0 (in no batch) and bounds[P] = N.
    """
    lengths = tf.cast(lengths, tf.int32)
    batch_size = tf.convert_to_tensor(batch_size, tf.int32)
    batch_tokens = tf.convert_to_tensor(batch_tokens, tf.int32)
    order = tf.argsort(lengths, stable=True)
    sorted_lengths = tf.gather(lengths, order)  # [N] ascending
    count = tf.size(lengths)
    first = tf.reduce_sum(tf.cast(tf.equal(sorted_lengths, 0), tf.int32))  # empty sources, in no batch
    starts = tf.cond(
        batch_tokens > 0,
        lambda: _token_batch_starts(sorted_lengths, first, count, batch_tokens),
        lambda: tf.range(first, count, tf.maximum(batch_size, 1)),
    )  # [P]
    bounds = tf.concat([starts, count[None]], 0)  # [P + 1]
    if settings is not None and settings.attention:
        starts, ends = tf.cast(bounds[:-1], tf.int64), tf.cast(bounds[1:], tf.int64)
        width = tf.cast(tf.gather(sorted_lengths, bounds[1:] - 1), tf.int64)  # the longest of each batch
        starts = tf.ragged.range(starts, ends, _attention_rows(width, settings)).flat_values  # parts' starts
        bounds = tf.concat([tf.cast(starts, tf.int32), count[None]], 0)
    return order, bounds


def _token_batch_starts(sorted_lengths, first, count, batch_tokens):
    """The first index of every batch of at most batch_tokens padded tokens (ascending lengths: the padded
    size of sorted[start:i + 1] is (i + 1 - start) * sorted[i]); a sentence over the limit is alone."""
    opens = tf.TensorArray(tf.bool, size=count - first, element_shape=[])  # opens[i - first]: a batch starts at i

    def body(i, start, opens):
        over = tf.logical_and((i + 1 - start) * sorted_lengths[i] > batch_tokens, i > start)
        return i + 1, tf.where(over, i, start), opens.write(i - first, over)

    _, _, opens = tf.while_loop(lambda i, *_: i < count, body, (first, first, opens))
    later = first + tf.cast(tf.where(opens.stack())[:, 0], tf.int32)
    return tf.concat([tf.range(first, count)[:1], later], 0)


def _attention_rows(width, settings: SearchSettings):
    """Rows per search whose attention buffers fit ATTENTION_BUFFER_BYTES, for sources width int64[P] wide."""
    a, b = settings.max_len_a, settings.max_len_b
    out_len = tf.cast(tf.floor(a * tf.cast(width, tf.float64) + b), tf.int64) + 2
    per_row = 4 * (settings.beam_size + settings.nbest) * out_len * tf.maximum(width, 1)
    return tf.maximum(tf.constant(1, tf.int64), ATTENTION_BUFFER_BYTES // per_row)


def _cut(ids: tf.RaggedTensor, max_len) -> tf.RaggedTensor:
    """ragged [N, (n_i)] -> ragged [N, (min(n_i, max_len))]: every row's first max_len values.

    Memory linear in the values: TensorFlow's repeat and value_rowids make a dense [N, max n_i] mask, which
    a single 100,000-token line would make huge. The offset of every value's row start is a cumulative sum
    of jumps scattered at the row starts."""
    values, starts, lengths = ids.flat_values, ids.row_starts(), ids.row_lengths()  # [T], [N], [N]
    starts = tf.boolean_mask(starts, lengths > 0)  # the starts of the non-empty rows, increasing
    jumps = starts - tf.concat([[0], starts[:-1]], 0)
    total = tf.size(values, out_type=tf.int64)
    offset = tf.cumsum(tf.scatter_nd(starts[:, None], jumps, total[None]))  # [T] the start of each value's row
    keep = tf.range(total) - offset < tf.cast(max_len, tf.int64)
    return tf.RaggedTensor.from_row_lengths(
        tf.boolean_mask(values, keep), tf.minimum(lengths, tf.cast(max_len, tf.int64)), validate=False
    )


def _power_of_two_at_least(n):
    return tf.while_loop(lambda p: p < n, lambda p: (p * 2,), (tf.constant(1),))[0]


# --------------------------------------------------------------------------------------------------- module


class _Cache:
    """The traced functions (a plain object: tf.Module does not track what it holds)."""

    def __init__(self):
        self.functions = {}


class TranslationGraph(tf.Module):
    """Text to text with a model and its tokenizers, in one graph (see the module docstring).

    model: an `nmt.model.seq2seq.Seq2Seq` (``encode`` / ``decode_step``); tokenizers: `Tokenizers` (their
    tensorflow-text ops, so a saved module carries the SentencePiece models); jit_compile: run each batch's
    search under XLA; shortlist: the run's `LexicalTable` or None (its arrays become constants of the
    graph, so a saved module carries them too).
    """

    def __init__(
        self,
        model,
        tokenizers: Tokenizers,
        jit_compile: bool = False,
        name: str = "nmt_translator",
        shortlist: LexicalTable | None = None,
    ):
        super().__init__(name=name)
        self.model = model
        self.source_tokenizer = tokenizers.src
        self.target_tokenizer = tokenizers.tgt
        self.jit_compile = bool(jit_compile)
        self._cache = _Cache()
        self._cache.shortlist = shortlist

    def function(self, settings: SearchSettings):
        """The translation function of settings (traced once, cached):
        (sentences string[N], batch_size int32[], batch_tokens int32[], max_input_len int32[]) -> the
        outputs of the module docstring."""
        key = ("translate", settings)
        if key not in self._cache.functions:

            def translate(sentences, batch_size, batch_tokens, max_input_len):
                return self._translate(settings, sentences, batch_size, batch_tokens, max_input_len)

            # autograph off: the graph's control flow is explicit (tf.while_loop, tf.cond), and AutoGraph's
            # conversion of the tokenizer methods needs temporary files (it goes wrong on a full disk).
            self._cache.functions[key] = tf.function(
                translate,
                autograph=False,
                input_signature=[
                    tf.TensorSpec([None], tf.string, name=INPUT_NAME),
                    tf.TensorSpec([], tf.int32, name="batch_size"),
                    tf.TensorSpec([], tf.int32, name="batch_tokens"),
                    tf.TensorSpec([], tf.int32, name="max_input_len"),
                ],
            )
        return self._cache.functions[key]

    def search_function(self, settings: SearchSettings):
        """The search of one batch (traced once, cached; under XLA with jit_compile): source_ids int32[B, S]
        -> (tokens int32[B, K, L], lengths int32[B, K], scores float32[B, K], attention float32[B, K, L, S],
        or float32[0] without settings.attention)."""
        key = ("search", settings)
        if key not in self._cache.functions:
            model, jit_compile = self.model, self.jit_compile
            table = self._cache.shortlist if settings.shortlist and not self.jit_compile else None
            if table is not None:
                translations = tf.constant(table.translations[:, : settings.shortlist], tf.int32)
                frequent = tf.constant(table.frequent[: settings.shortlist_frequent], tf.int32)

            def run(source_ids):
                vocabulary = None
                if table is not None:
                    vocabulary = batch_vocabulary(
                        translations, frequent, source_ids, settings.shortlist, settings.shortlist_frequent
                    )
                result = search(
                    model, source_ids, settings, reserved=RESERVED, vocabulary=vocabulary, compact=not jit_compile
                )
                attention = result.attention if settings.attention else tf.zeros([0])
                return result.tokens, result.lengths, result.scores, attention

            self._cache.functions[key] = tf.function(
                run,
                input_signature=[tf.TensorSpec([None, None], tf.int32, name="source_ids")],
                jit_compile=self.jit_compile,
                # The searches build their loops with tf.while_loop: nothing to convert. (AutoGraph could not
                # convert this closure anyway and said so in a warning at every trace.)
                autograph=False,
            )
        return self._cache.functions[key]

    # ------------------------------------------------------------------------------------------ the graph

    def _translate(self, settings: SearchSettings, sentences, batch_size, batch_tokens, max_input_len) -> dict:
        K = settings.nbest
        ids = self.source_tokenizer.tf_tokenize(sentences)  # ragged int32[N, (n_i)]
        source_lengths = tf.cast(ids.row_lengths(), tf.int32)  # [N] n_i
        ids = _cut(ids, max_input_len)  # ragged int32[N, (s_i)]
        lengths = tf.cast(ids.row_lengths(), tf.int32)  # [N] s_i
        order, bounds = plan_batches(lengths, batch_size, batch_tokens, settings)
        sorted_ids = tf.gather(ids, order)  # ragged [N, (s_i)], shortest first
        sorted_lengths = tf.gather(lengths, order)
        out_length = buffer_length(tf.reduce_max(tf.concat([[0], lengths], 0)), settings.max_len_a, settings.max_len_b)
        first = bounds[0]
        parts = tf.size(bounds) - 1
        search_batch = self.search_function(settings)

        def arrays(dtype, shape):
            return tf.TensorArray(dtype, size=parts + 1, infer_shape=False, element_shape=shape)

        out = dict(
            texts=arrays(tf.string, [None, K]).write(0, tf.fill([first, K], "")),
            scores=arrays(tf.float32, [None, K]).write(0, tf.zeros([first, K])),
            tokens=arrays(tf.int32, [None, K, None]).write(0, tf.fill([first, K, out_length], PAD_ID)),
            lengths=arrays(tf.int32, [None, K]).write(0, tf.zeros([first, K], tf.int32)),
        )
        if settings.attention:  # the ragged [rows * K, (steps), (source)] pieces: values, steps, widths
            out["attention"] = arrays(tf.float32, [None]).write(0, tf.zeros([0]))
            out["steps"] = arrays(tf.int64, [None]).write(0, tf.zeros([first * K], tf.int64))
            out["widths"] = arrays(tf.int64, [None]).write(0, tf.zeros([0], tf.int64))

        def body(p, out):
            start, end = bounds[p], bounds[p + 1]
            rows = end - start
            part_lengths = sorted_lengths[start:end]  # [R]
            source = tf.gather(sorted_ids, tf.range(start, end)).to_tensor(default_value=PAD_ID)  # [R, S]
            if self.jit_compile:
                source = self._pad_for_xla(source, rows, batch_size, batch_tokens, settings)
            tokens, hyp_lengths, scores, attention = search_batch(source)  # [R', K, L'] ...
            tokens, hyp_lengths, scores = tokens[:rows], hyp_lengths[:rows], scores[:rows]
            steps = tf.shape(tokens)[2]
            texts = self.target_tokenizer.tf_detokenize(tf.reshape(tokens, [rows * K, steps]))  # [R * K]
            tokens = tf.pad(tokens[:, :, :out_length], [[0, 0], [0, 0], [0, tf.maximum(out_length - steps, 0)]])
            new = dict(
                texts=out["texts"].write(p + 1, tf.reshape(texts, [rows, K])),
                scores=out["scores"].write(p + 1, scores),
                tokens=out["tokens"].write(p + 1, tokens),
                lengths=out["lengths"].write(p + 1, hyp_lengths),
            )
            if settings.attention:  # each hypothesis's weights [|y|, s_i], row-major
                counts = tf.cast(tf.reshape(hyp_lengths, [rows * K]), tf.int64)
                widths = tf.cast(tf.repeat(part_lengths, K), tf.int64)  # [R * K]
                keep = tf.logical_and(
                    tf.range(tf.cast(steps, tf.int64))[None, :, None] < counts[:, None, None],
                    tf.range(tf.shape(attention, out_type=tf.int64)[3])[None, None, :] < widths[:, None, None],
                )  # [R * K, L', S']
                weights = tf.reshape(attention[:rows], [rows * K, steps, -1])
                new["attention"] = out["attention"].write(p + 1, tf.boolean_mask(weights, keep))
                new["steps"] = out["steps"].write(p + 1, counts)
                new["widths"] = out["widths"].write(p + 1, tf.repeat(widths, counts))
            return p + 1, new

        _, out = tf.while_loop(lambda p, _: p < parts, body, (tf.constant(0), out), parallel_iterations=1)
        inverse = tf.math.invert_permutation(order)  # input position -> sorted position
        result = {
            "texts": tf.ensure_shape(tf.gather(out["texts"].concat(), inverse), [None, K]),
            "scores": tf.ensure_shape(tf.gather(out["scores"].concat(), inverse), [None, K]),
            "tokens": tf.gather(out["tokens"].concat(), inverse),
            "lengths": tf.gather(out["lengths"].concat(), inverse),
            "source_ids": ids,
            "source_lengths": source_lengths,
        }
        if settings.attention:
            weights = tf.RaggedTensor.from_nested_row_lengths(
                out["attention"].concat(), [out["steps"].concat(), out["widths"].concat()]
            )  # [N * K, (steps), (s_i)] in sorted order
            hypotheses = tf.reshape(inverse[:, None] * K + tf.range(K)[None, :], [-1])  # [N * K]
            weights = tf.gather(weights, hypotheses)
            result["attention"] = tf.RaggedTensor.from_uniform_row_length(weights, K)
        return result

    def _pad_for_xla(self, source, rows, batch_size, batch_tokens, settings: SearchSettings):
        """source int32[R, S] -> [R', S']: S' the next multiple of XLA_WIDTH_MULTIPLE; R' = batch_size (a power
        of two with batch_tokens, and at most the attention part's rows), filler rows repeating row 0."""
        width = tf.shape(source)[1]
        padded_width = -(-width // XLA_WIDTH_MULTIPLE) * XLA_WIDTH_MULTIPLE
        target = tf.where(batch_tokens > 0, _power_of_two_at_least(rows), batch_size)
        if settings.attention:
            cap = _attention_rows(tf.cast(width, tf.int64)[None], settings)[0]
            target = tf.cast(tf.minimum(tf.cast(target, tf.int64), cap), tf.int32)
        padded_rows = tf.maximum(rows, target)
        source = tf.pad(source, [[0, 0], [0, padded_width - width]])
        return tf.concat([source, tf.tile(source[:1], [padded_rows - rows, 1])], 0)


# ------------------------------------------------------------------------------------------------- export


def serving_signatures(graph: TranslationGraph, settings: SearchSettings, batching: Batching) -> dict:
    """The SavedModel signatures of graph for a run's search settings and batching, K = settings.beam_size:

        serving_default   sentences string[N] -> translations string[N]
        nbest             sentences string[N] -> translations string[N, K], scores float32[N, K]

    They are also set as graph.translate and graph.nbest (functions of the saved module)."""
    best = graph.function(dataclasses.replace(settings, nbest=1, attention=False))
    nbest = graph.function(dataclasses.replace(settings, nbest=settings.beam_size, attention=False))
    spec = tf.TensorSpec([None], tf.string, name=INPUT_NAME)

    @tf.function(input_signature=[spec], autograph=False)
    def translate(sentences):
        return {"translations": best(sentences, **batching.tensors())["texts"][:, 0]}

    @tf.function(input_signature=[spec], autograph=False)
    def translate_nbest(sentences):
        out = nbest(sentences, **batching.tensors())
        return {"translations": out["texts"], "scores": out["scores"]}

    graph.translate, graph.nbest = translate, translate_nbest
    return {SERVING_SIGNATURE: translate, NBEST_SIGNATURE: translate_nbest}
