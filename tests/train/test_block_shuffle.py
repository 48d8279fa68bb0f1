"""The whole-split shuffle of a split larger than data.shuffle_block (`nmt.train.batches._block_shuffled`):
a uniform random order every epoch (a chi-square test over all orders of a small split, against a
windowed shuffle that the same test rejects), at most shuffle_block pairs per block, every pair once
per epoch, and the exact-resume property of the training stream."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter

import pytest
import tensorflow as tf

from nmt.text.corpus import as_split, filter_split
from nmt.train.batches import (
    DataConfig,
    _block_buffer,
    _block_shuffled,
    _one_block,
    _shuffled_pairs,
    batches_per_pass,
    make_training_stream,
    shuffle_blocks,
    shuffle_size,
)

MAX_LEN = 30


def split_of(pairs, tokenizers):
    return filter_split(as_split(pairs), tokenizers, max_len=MAX_LEN)


def orders(split, cfg, epochs: int) -> list[tuple[str, ...]]:
    """The order of the split's sources in each of the first `epochs` epochs."""
    ds = tf.data.Dataset.range(epochs).flat_map(lambda e: _shuffled_pairs(split, cfg, e).map(lambda s, t: s))
    flat = [s.decode() for s in ds.as_numpy_iterator()]
    n = len(flat) // epochs
    return [tuple(flat[e * n : (e + 1) * n]) for e in range(epochs)]


def chi_square_critical(dof: int, z: float = 3.09) -> float:
    """The upper 0.1% point of chi-square with dof degrees of freedom (Wilson-Hilferty)."""
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


def chi_square(counts: Counter, cells: int, total: int) -> float:
    expected = total / cells
    return sum((counts.get(c, 0) - expected) ** 2 / expected for c in range(cells)) + 0.0


def test_every_order_of_a_small_split_is_equally_likely(numbers_corpus, numbers_tokenizers):
    """5 pairs in blocks of 2 (3 blocks): over 720 epochs each of the 120 orders comes up about 6 times
    (chi-square below its 0.1% point); a shuffle buffer of 2 (tf.data's windowed shuffle), which cannot
    move the last pair to the front, is rejected by the same test."""
    kept = list(split_of(numbers_corpus["train"][:20], numbers_tokenizers).pairs())
    pairs = kept[:5]
    split = split_of(pairs, numbers_tokenizers)
    assert len(split) == 5 and len({s for s, _ in pairs}) == 5
    epochs = 720
    perms = {p: i for i, p in enumerate(itertools.permutations(s for s, _ in pairs))}
    for cfg, uniform in (
        (DataConfig(batch_size=8, max_len=MAX_LEN, seed=7, shuffle_block=2), True),
        (DataConfig(batch_size=8, max_len=MAX_LEN, seed=7, shuffle_buffer=2), False),
    ):
        if uniform:
            assert shuffle_blocks(split, cfg) == 3 and shuffle_size(split, cfg) == _block_buffer(2)
        seen = orders(split, cfg, epochs)
        assert all(sorted(order) == sorted(s for s, _ in pairs) for order in seen)  # each pair once per epoch
        counts = Counter(perms[order] for order in seen)
        statistic = chi_square(counts, len(perms), epochs)
        if uniform:
            assert statistic < chi_square_critical(len(perms) - 1), statistic
        else:
            assert statistic > chi_square_critical(len(perms) - 1), statistic


def test_blocks_hold_at_most_shuffle_block_pairs_and_deal_every_pair_once(numbers_corpus, numbers_tokenizers):
    """1,000 pairs in blocks of 128: 8 blocks, each within its shuffle buffer (so shuffled whole), about
    125 pairs each; together, every pair once; each epoch deals them differently; the stream of the pass
    is the blocks one after another."""
    pairs = numbers_corpus["train"][:1000]
    split = split_of(pairs, numbers_tokenizers)
    block = 128
    blocks = shuffle_blocks(split, DataConfig(batch_size=8, max_len=MAX_LEN, shuffle_block=block))
    assert blocks == math.ceil(len(pairs) / block) == 8
    dealings = []
    for epoch in (0, 1):
        contents = [
            [s.decode() for s, _ in _one_block(split, block, 0, tf.constant(epoch), k).as_numpy_iterator()]
            for k in range(blocks)
        ]
        assert all(len(c) <= _block_buffer(block) for c in contents) and sum(len(c) for c in contents) == len(split)
        assert max(len(c) for c in contents) < 125 + 4 * math.sqrt(125)  # binomial(1000, 1/8): sd 10.5
        assert Counter(s for c in contents for s in c) == Counter(s for s, _ in split.pairs())
        whole = [s.decode() for s, _ in _block_shuffled(split, block, 0, tf.constant(epoch)).as_numpy_iterator()]
        assert whole == [s for c in contents for s in c]
        dealings.append([set(c) for c in contents])
    assert dealings[0] != dealings[1]


@pytest.mark.parametrize("block", [100, 250])
def test_the_training_stream_resumes_exactly_from_any_batch(numbers_corpus, numbers_tokenizers, block):
    """What exact resume needs, with the split shuffled in blocks: batch n of the stream is the same batch
    whichever batch the stream is started from, and each epoch holds every kept pair once."""
    split = split_of(numbers_corpus["train"][:700], numbers_tokenizers)
    cfg = DataConfig(batch_tokens=512, max_len=MAX_LEN, seed=3, shuffle_block=block)
    assert shuffle_blocks(split, cfg) == math.ceil(700 / block)
    one = [b for b in make_training_stream(split, numbers_tokenizers, cfg, epochs=1).as_numpy_iterator()]
    n = len(one)
    stream = [b for b in make_training_stream(split, numbers_tokenizers, cfg).take(2 * n).as_numpy_iterator()]

    def key(batch):
        return (batch[0][0].tobytes(), batch[1].tobytes())

    assert [key(b) for b in stream[:n]] == [key(b) for b in one]
    assert [key(b) for b in stream[n:]] != [key(b) for b in one]  # a new order in the second epoch
    for start in (1, n - 1, n + 2):
        resumed = make_training_stream(split, numbers_tokenizers, cfg, start=start, batches_per_epoch=n)
        assert [key(b) for b in resumed.take(2 * n - start).as_numpy_iterator()] == [key(b) for b in stream[start:]]
    other = dataclasses.replace(cfg, seed=4)
    assert [key(b) for b in make_training_stream(split, numbers_tokenizers, other, epochs=1).as_numpy_iterator()] != [
        key(b) for b in one
    ]


def test_a_split_within_shuffle_block_is_shuffled_whole_as_before(numbers_corpus, numbers_tokenizers):
    """Up to shuffle_block pairs, one buffer holds the whole split: the same stream as with a larger block
    (so runs on a corpus of this size keep their batches)."""
    split = split_of(numbers_corpus["train"][:300], numbers_tokenizers)
    small = DataConfig(batch_size=16, max_len=MAX_LEN, seed=2, shuffle_block=300)
    large = dataclasses.replace(small, shuffle_block=10**9)
    assert shuffle_blocks(split, small) == shuffle_blocks(split, large) == 1
    assert orders(split, small, 3) == orders(split, large, 3)


@pytest.mark.parametrize(
    "data",
    [
        dict(batch_tokens=512),
        dict(batch_size=7),
        dict(batch_tokens=1000, bucket_lengths=(8, 12, 40)),
        dict(batch_size=64, shuffle_block=150),
    ],
)
def test_batches_per_pass_counted_from_lengths_equals_a_pass_read_through(pairs_for_count, numbers_tokenizers, data):
    """The count training uses for an epoch (from the filter's length counts, Python SentencePiece) against
    the batches of one pass of the tf.data stream (tensorflow-text SentencePiece), counted."""
    split = split_of(pairs_for_count, numbers_tokenizers)
    cfg = DataConfig(max_len=MAX_LEN, seed=1, **data)
    counted = sum(1 for _ in make_training_stream(split, numbers_tokenizers, cfg, epochs=1))
    assert batches_per_pass(split, cfg) == counted


def test_batches_per_pass_on_multi30k(multi30k_dir, multi30k_tokenizers):
    """The same on real text (accents, punctuation, numbers): Multi30k's first 3,000 training pairs."""
    from nmt.text.corpus import FilePairSource

    head = list(itertools.islice(FilePairSource(multi30k_dir / "train.de", multi30k_dir / "train.en").pairs(), 3000))
    split = filter_split(as_split(head), multi30k_tokenizers, max_len=40, max_ratio=3.0)
    assert sum(split.length_counts.values()) == split.summary.kept
    for cfg in (DataConfig(batch_tokens=2048, max_len=40), DataConfig(batch_size=64, max_len=40)):
        counted = sum(1 for _ in make_training_stream(split, multi30k_tokenizers, cfg, epochs=1))
        assert batches_per_pass(split, cfg) == counted


@pytest.fixture(scope="module")
def pairs_for_count(numbers_corpus):
    """Numbers pairs of many lengths plus ones the filter drops (empty, too long)."""
    extra = [("", "leer"), (" ".join(["seven hundred seventy-seven thousand"] * 8), "siebenhundert")]
    return list(numbers_corpus["train"][:1200]) + extra
