"""The `tf.data` input pipeline: parallel text in, padded teacher-forcing batches out.

Two builders, one for each use:

* `make_training_stream(split, tokenizers, cfg)`: the training batches, the one builder training,
  the epoch count (``epochs=1``: one pass) and the benchmarks use;
* `make_eval_dataset(pairs, tokenizers, cfg)`: the dev (or any evaluation) batches, a different job:
  nothing dropped, shuffled or reordered.

Both yield ``((source_ids, target_in), target_out)``, all int32 and padded with `PAD_ID` (0):

* ``source_ids`` [B, S]: subword ids of the source sentence (no BOS/EOS);
* ``target_in``  [B, T]: BOS followed by the target ids (decoder input);
* ``target_out`` [B, T]: the target ids followed by EOS (what the decoder must predict).

Training takes a split the corpus module has already filtered (`nmt.text.corpus.Corpus.filtered_train`
or `nmt.text.corpus.filter_split`, which count what they drop); this module filters nothing itself.
The lines are streamed from disk by ``tf.data`` (only dropped/held-out line numbers are held in memory),
each pass over them shuffled with its own seed, tokenized in the graph, and grouped by length
(``group_by_window``) into batches whose padded length is one of ``bucket_lengths``, so XLA sees a
small, fixed set of shapes. A pair goes to the shortest bucket that holds both its source and its
target (with BOS/EOS); source and target are padded to that length. With ``batch_tokens`` a bucket of
length L takes ``batch_tokens // L`` pairs, so ``padded length x batch size <= batch_tokens`` for
source and target alike; with ``batch_size`` every batch has at most that many pairs. Every kept pair
appears exactly once per pass (the last batch of each bucket may be smaller). Batches are prefetched.

Evaluation: pairs come in file order, ``eval_batch_size`` at a time, each side padded up to the next
bucket length (to a multiple of 8 beyond the longest bucket).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import tensorflow as tf

from nmt.config import DataConfig
from nmt.errors import UserError
from nmt.text.corpus import CorpusSplit, as_split
from nmt.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizers

DEFAULT_MAX_LEN = 100
_TOKENIZE_BLOCK = 256


def _tokenize_block(tokenizers: Tokenizers, max_len: int | None = None, lengths: tuple[int, ...] | None = None):
    """A function from a block of (source, target) strings to ragged (source, target_in, target_out).

    With max_len, pairs with an empty or over-long side are left out and a fourth value, each
    pair's bucket (index into lengths), is added. Everything is vectorized over the block: per-pair
    functions in tf.data cost more than the tokenization itself.
    """
    lengths_t = tf.constant(lengths or (0,), tf.int64)

    def fn(src, tgt):
        s = tokenizers.src.tf_tokenize(src)
        t = tokenizers.tgt.tf_tokenize(tgt)
        if max_len is not None:
            # The filters already dropped (and counted) such pairs; this guard keeps the
            # bucketing sound whatever happens upstream.
            ls, lt = s.row_lengths(), t.row_lengths()
            ok = (ls >= 1) & (ls <= max_len) & (lt >= 1) & (lt <= max_len)
            s, t = tf.ragged.boolean_mask(s, ok), tf.ragged.boolean_mask(t, ok)
        n = s.nrows()
        bos = tf.RaggedTensor.from_tensor(tf.fill(tf.stack([n, 1]), tf.constant(BOS_ID, tf.int32)))
        eos = tf.RaggedTensor.from_tensor(tf.fill(tf.stack([n, 1]), tf.constant(EOS_ID, tf.int32)))
        out = (s, tf.concat([bos, t], axis=1), tf.concat([t, eos], axis=1))
        if max_len is None:
            return out
        # A pair goes to the shortest bucket holding its source and its target with BOS/EOS.
        need = tf.maximum(s.row_lengths(), t.row_lengths() + 1)
        return out + (tf.searchsorted(lengths_t, need, side="left", out_type=tf.int64),)

    return fn


def _pad_to(x: tf.RaggedTensor, length) -> tf.Tensor:
    """A ragged batch [B, (n)] as a dense [B, length] padded with PAD_ID (length >= every n)."""
    dense = x.to_tensor(default_value=PAD_ID)
    return tf.pad(dense, [[0, 0], [0, tf.cast(length, tf.int32) - tf.shape(dense)[1]]], constant_values=PAD_ID)


def make_training_stream(
    split: CorpusSplit,
    tokenizers: Tokenizers,
    cfg: DataConfig | None = None,
    start: int = 0,
    batches_per_epoch: int | None = None,
    epochs: int | None = None,
) -> tf.data.Dataset:
    """The training batches: pass after pass over the split, from batch number ``start`` on.

    Pass (epoch) e = 0, 1, 2, ... is the split shuffled with the seed pair (``cfg.seed``, e + 1), then
    bucketed (see the module docstring); its order is a pure function of (seed, e), whatever
    TensorFlow's global seed. So batch number n of the stream is the same batch in every process,
    whatever was iterated before: what exact resume needs (a resumed run starts the stream at its
    global step).

    ``epochs``: the stream ends after passes 0 .. epochs - 1 (``epochs=1``: one pass, e.g. to count
    its batches); None: it never ends (what fit reads).

    Each pass has the same number of batches (a bucket of n pairs and batch size b always gives
    ceil(n / b) batches); given it as ``batches_per_epoch``, ``start`` skips whole passes without
    reading them, and only ``start mod batches_per_epoch`` batches are read and dropped.

    ``split``: a filtered training split (``corpus.filtered_train(tokenizers)`` or
    `nmt.text.corpus.filter_split`); an unfiltered one is refused (its pairs were never counted).
    """
    cfg = cfg if cfg is not None else DataConfig()
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    max_len = _planned_max_len(split, cfg)
    first_epoch, skip = (start // batches_per_epoch, start % batches_per_epoch) if batches_per_epoch else (0, start)

    @tf.autograph.experimental.do_not_convert  # plain graph building, no Python control flow on tensors
    def one_epoch(epoch):
        return _training_dataset(split, tokenizers, cfg, max_len, epoch)

    ds = tf.data.Dataset.range(first_epoch, _ENDLESS if epochs is None else epochs).flat_map(one_epoch)
    return ds.skip(skip).prefetch(tf.data.AUTOTUNE)


def make_eval_dataset(pairs_source: Any, tokenizers: Tokenizers, cfg: DataConfig | None = None) -> tf.data.Dataset:
    """The evaluation batches of ``pairs_source`` (a `CorpusSplit` such as ``corpus.dev``, a `Corpus` (its
    training split) or a list of (source, target) strings): every pair, in file order, ``eval_batch_size``
    at a time, each side padded up to the next bucket length. Not autotuned (`_NO_AUTOTUNE`)."""
    cfg = cfg if cfg is not None else DataConfig()
    split = as_split(pairs_source, name="eval")
    split.source.count()  # validate the files before streaming them
    max_len = cfg.max_len if cfg.max_len is not None else (split.max_len or DEFAULT_MAX_LEN)
    return _eval_dataset(split, tokenizers, cfg, max_len)


_ENDLESS = 2**62  # epochs in the training stream (never reached)


def _shuffle_once(ds: tf.data.Dataset, buffer_size: int, seed: int, seed2: tf.Tensor) -> tf.data.Dataset:
    """`ds` shuffled once (tf.data's shuffle op) with the seed pair (seed, seed2); seed2 >= 1.

    The op is called directly because `Dataset.shuffle` mixes in TensorFlow's global seed and
    cannot take a seed tensor when that global seed is 0; here the order depends on (seed, seed2)
    alone. seed2 is never 0, so the pair is never (0, 0), which the op reads as "nondeterministic".
    """
    specs = tf.nest.flatten(ds.element_spec)
    variant = tf.raw_ops.ShuffleDatasetV3(
        input_dataset=tf.data.experimental.to_variant(ds),
        buffer_size=tf.constant(buffer_size, tf.int64),
        seed=tf.constant(seed, tf.int64),
        seed2=tf.cast(seed2, tf.int64),
        seed_generator=tf.raw_ops.DummySeedGenerator(),
        output_types=[spec.dtype for spec in specs],
        output_shapes=[spec.shape for spec in specs],
        reshuffle_each_iteration=False,
    )
    return tf.data.experimental.from_variant(variant, ds.element_spec)


def _planned_max_len(split: Any, cfg: DataConfig) -> int:
    """The max_len the batches of a filtered training split are planned for (a ValueError for a split
    nobody filtered, a UserError for a data.max_len below the filter's)."""
    if not isinstance(split, CorpusSplit) or split.summary is None:
        got = f"the unfiltered split {split.name!r}" if isinstance(split, CorpusSplit) else type(split).__name__
        raise ValueError(
            f"training batches need a filtered corpus split (nmt.text.corpus.Corpus.filtered_train or "
            f"nmt.text.corpus.filter_split), got {got}"
        )
    max_len = cfg.max_len if cfg.max_len is not None else split.max_len
    if max_len < split.max_len:
        raise UserError(
            f"data.max_len={max_len} is below the corpus filter's max_len={split.max_len}: pairs in between would "
            "be dropped without being counted; set data.max_len >= corpus.max_len or leave it unset"
        )
    return max_len


def batches_per_pass(split: CorpusSplit, cfg: DataConfig | None = None) -> int | None:
    """The number of batches in one pass over a filtered training split, counted from its length counts
    (`CorpusSplit.length_counts`, made by the filter) without reading it: a bucket of padded length L and
    batch size b receiving n pairs gives ceil(n / b) batches (group_by_window flushes each bucket's last,
    smaller batch at the end of a pass); a pair goes to the shortest bucket >= max(source, target + 1)
    tokens, as in `_tokenize_block`. None for a split without length counts (then count a pass)."""
    cfg = cfg if cfg is not None else DataConfig()
    if getattr(split, "length_counts", None) is None:
        return None
    plan = cfg.batch_plan(_planned_max_len(split, cfg))
    lengths = [L for L, _ in plan]
    pairs = [0] * len(plan)
    for need, count in split.length_counts.items():
        pairs[bisect.bisect_left(lengths, need)] += count
    return sum(-(-n // size) for n, (_, size) in zip(pairs, plan))


def shuffle_size(split: CorpusSplit, cfg: DataConfig) -> int:
    """The shuffle buffer of a training split: data.shuffle_buffer, or (None) all of the split's pairs, which
    makes tf.data's shuffle a uniform random permutation of the whole split, or, for a split of more than
    data.shuffle_block pairs, that of one of its blocks (`_block_shuffled`)."""
    if cfg.shuffle_buffer is not None:
        return cfg.shuffle_buffer
    if shuffle_blocks(split, cfg) > 1:
        return _block_buffer(cfg.shuffle_block)
    return max(split.summary.kept, 1)


def shuffle_blocks(split: CorpusSplit, cfg: DataConfig) -> int:
    """How many blocks the whole-split shuffle reads the split's files in, each once per epoch: 1 where
    data.shuffle_buffer is set or the split's kept pairs fit in data.shuffle_block, else
    ceil(lines / data.shuffle_block) over the lines of its files (`_block_shuffled`)."""
    if cfg.shuffle_buffer is not None or split.summary.kept <= cfg.shuffle_block:
        return 1
    return -(-split.source.count() // cfg.shuffle_block)


def _shuffled_pairs(split: CorpusSplit, cfg: DataConfig, epoch: tf.Tensor) -> tf.data.Dataset:
    """The (source, target) strings of pass ``epoch`` over the split, in its shuffled order: a pure function
    of (data.seed, epoch)."""
    if shuffle_blocks(split, cfg) > 1:
        return _block_shuffled(split, cfg.shuffle_block, cfg.seed, epoch)
    ds = split.tf_pairs()
    buffer = shuffle_size(split, cfg)
    return _shuffle_once(ds, buffer, cfg.seed, tf.cast(epoch, tf.int64) + 1) if buffer > 1 else ds


def _block_shuffled(split: CorpusSplit, block: int, seed: int, epoch: tf.Tensor) -> tf.data.Dataset:
    """The split in a uniform random order, holding about ``block`` pairs in memory, not all of them.

    The Rao-Sandelius shuffle: each of the n lines of the split's files is dealt into one of
    K = ceil(n / block) blocks at random, independently and uniformly; each block is shuffled uniformly;
    the blocks follow each other. That is a uniform random permutation of the split, whatever K. The deal
    is a hash, SplitMix64 of (seed, epoch, line), so it needs no table of n entries and is the same in
    every process (exact resume). Block k is one read of the files keeping its own lines (sequential,
    ahead of training), shuffled by tf.data's shuffle op with a buffer that holds the whole block: about
    n / K <= ``block`` pairs, at most `_block_buffer` (``block`` + 8 standard deviations of its size).
    """
    blocks = -(-split.source.count() // block)
    return tf.data.Dataset.range(blocks).flat_map(lambda k: _one_block(split, block, seed, epoch, k))


def _block_buffer(block: int) -> int:
    """The shuffle buffer of a block of `_block_shuffled`: its size is binomial with mean <= block, so this
    bound (8 standard deviations above) is never reached and each block is shuffled whole."""
    return block + 8 * math.isqrt(block) + 64


_SPLITMIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def _splitmix64(z: tf.Tensor) -> tf.Tensor:
    """SplitMix64's output function on uint64 (wrapping arithmetic): a well-mixed 64-bit hash of z."""
    golden, m1, m2 = (tf.constant(c, tf.uint64) for c in _SPLITMIX)
    z = z + golden
    z = tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(30, tf.uint64))) * m1
    z = tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(27, tf.uint64))) * m2
    return tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(31, tf.uint64)))


def _one_block(split: CorpusSplit, block: int, seed: int, epoch: tf.Tensor, k: tf.Tensor) -> tf.data.Dataset:
    """Block k of pass ``epoch`` in `_block_shuffled`: the split's lines dealt to block k, in a uniform
    random order."""
    blocks = -(-split.source.count() // block)
    seed_hash = _splitmix64(tf.cast(tf.constant(seed, tf.int64), tf.uint64))
    key = _splitmix64(tf.bitwise.bitwise_xor(seed_hash, tf.cast(tf.cast(epoch, tf.int64), tf.uint64)))  # per epoch
    k = tf.cast(k, tf.int64)

    def dealt_here(idx):  # line indices [n] -> bool [n]
        draw = _splitmix64(key + tf.cast(idx, tf.uint64))
        return tf.equal(tf.cast(draw % tf.constant(blocks, tf.uint64), tf.int64), k)

    pairs = split.tf_pair_blocks(keep=dealt_here).map(lambda idx, src, tgt: (src, tgt)).unbatch()
    return _shuffle_once(pairs, _block_buffer(block), seed, tf.cast(epoch, tf.int64) * blocks + k + 1)


def _training_dataset(
    split: CorpusSplit, tokenizers: Tokenizers, cfg: DataConfig, max_len: int, epoch: tf.Tensor
) -> tf.data.Dataset:
    """Pass ``epoch`` over the split: shuffled with the seed pair (cfg.seed, epoch + 1), bucketed and
    batched (not prefetched)."""
    plan = cfg.batch_plan(max_len)
    lengths = tuple(L for L, _ in plan)
    lengths_t = tf.constant(lengths, tf.int64)
    sizes_t = tf.constant([b for _, b in plan], tf.int64)
    ds = _shuffled_pairs(split, cfg, epoch).batch(_TOKENIZE_BLOCK)
    ds = ds.map(_tokenize_block(tokenizers, max_len, lengths), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.unbatch()

    def batch_bucket(key, window):
        L = tf.gather(lengths_t, key)
        batches = window.batch(tf.gather(sizes_t, key))
        return batches.map(lambda s, ti, to, k: ((_pad_to(s, L), _pad_to(ti, L)), _pad_to(to, L)))

    # The grouping of bucket_by_sequence_length, with the bucket computed per block above and
    # padding done per batch (per-pair functions cost more than the work they do).
    return ds.group_by_window(
        key_func=lambda s, ti, to, key: key,
        reduce_func=batch_bucket,
        window_size_func=lambda key: tf.gather(sizes_t, key),
    )


#: tf.data options of the dev set: no autotuning. Keras' fit keeps one dev iterator for the whole run
#: and deletes it at the start of each evaluation; with autotuning on, deleting an iterator that had
#: lived a whole epoch waits for its autotune thread (the main thread in RootDataset::Iterator's
#: destructor), tens of seconds at some epoch ends (docs/RESULTS.md). The dev set is small: its
#: pipeline needs no tuning.
_NO_AUTOTUNE = tf.data.Options()
_NO_AUTOTUNE.autotune.enabled = False


def _eval_dataset(split: CorpusSplit, tokenizers: Tokenizers, cfg: DataConfig, max_len: int) -> tf.data.Dataset:
    lengths = tf.constant(cfg.lengths_for(max_len), tf.int32)
    n_lengths = int(lengths.shape[0])

    def pad_up(x: tf.RaggedTensor) -> tf.Tensor:
        L = tf.cast(tf.reduce_max(tf.concat([x.row_lengths(), tf.zeros([1], tf.int64)], 0)), tf.int32)
        i = tf.searchsorted(lengths, tf.reshape(L, [1]), side="left")[0]
        target = tf.where(i < n_lengths, tf.gather(lengths, tf.minimum(i, n_lengths - 1)), (L + 7) // 8 * 8)
        return _pad_to(x, target)

    ds = split.tf_pairs().batch(_TOKENIZE_BLOCK)
    ds = ds.map(_tokenize_block(tokenizers), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.unbatch().batch(cfg.eval_batch(max_len))
    ds = ds.map(lambda s, ti, to: ((pad_up(s), pad_up(ti)), pad_up(to)))
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_NO_AUTOTUNE)


def describe_plan(cfg: DataConfig, max_len: int) -> str:
    """One line: the buckets and their batch sizes."""
    plan = cfg.batch_plan(max_len)
    mode = f"batch_tokens={cfg.token_budget}" if cfg.token_budget is not None else f"batch_size={cfg.batch_size}"
    return f"buckets ({mode}): " + ", ".join(f"{L}x{b}" for L, b in plan)
