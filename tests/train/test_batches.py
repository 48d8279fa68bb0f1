"""The tf.data pipeline: every kept pair exactly once per pass, token budget, bucket shapes, seeds,
exact restarts of the training stream, teacher-forcing layout, evaluation order, streaming from (gzip)
files."""

from __future__ import annotations

import dataclasses
import gzip
from collections import Counter

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf
from tensorflow.python.eager import context  # the global seed, to restore it

from nmt.errors import UserError
from nmt.text.corpus import Corpus, CorpusConfig, CorpusSplit, FilePairSource, as_split, filter_split
from nmt.text.tokenizer import BOS_ID, EOS_ID, PAD_ID
from nmt.train.batches import DataConfig, describe_plan, make_eval_dataset, make_training_stream

MAX_LEN = 30
BUDGET = 1024


@pytest.fixture(scope="module")
def sp(numbers_tokenizer_dir):
    """The plain sentencepiece processor: the independent reference for ids."""
    return spm.SentencePieceProcessor(model_file=str(numbers_tokenizer_dir / "joint.model"))


@pytest.fixture(scope="module")
def pairs(numbers_corpus):
    """The small numbers corpus plus pairs the filters must drop."""
    extra = [
        ("", "leer"),
        ("empty target", "   "),
        ("\t", "\t"),
        (" ".join(["seven hundred seventy-seven thousand"] * 8), "siebenhundertsiebenundsiebzigtausend"),
    ]
    out = list(numbers_corpus["train"][:1500])
    for i, p in enumerate(extra):
        out.insert(100 + 300 * i, p)
    return out


def filtered(pairs, tokenizers, max_len=MAX_LEN) -> CorpusSplit:
    """The training split of the pairs, filtered by the corpus module (length filter only): what the
    pipeline takes."""
    return filter_split(as_split(pairs), tokenizers, max_len=max_len)


@pytest.fixture(scope="module")
def train_split(pairs, numbers_tokenizers):
    return filtered(pairs, numbers_tokenizers)


def expected_rows(sp, pairs, max_len=MAX_LEN):
    """(source ids, target ids) of the pairs the pipeline should keep, computed independently."""
    rows = []
    for s, t in pairs:
        a, b = sp.encode(s), sp.encode(t)
        if 1 <= len(a) <= max_len and 1 <= len(b) <= max_len:
            rows.append((tuple(a), tuple(b)))
    return rows


def unpad(batch):
    """Rows of a batch as (source ids, target ids), checking the teacher-forcing layout."""
    (src, tin), tout = batch
    src, tin, tout = np.asarray(src), np.asarray(tin), np.asarray(tout)
    assert src.dtype == tin.dtype == tout.dtype == np.int32
    assert tin.shape == tout.shape and src.shape[0] == tin.shape[0]
    rows = []
    for s, ti, to in zip(src, tin, tout):
        n_s = int((s != PAD_ID).sum())
        assert (s[:n_s] != PAD_ID).all() and (s[n_s:] == PAD_ID).all()
        n_t = int((to != PAD_ID).sum())  # target ids + EOS
        assert to[n_t - 1] == EOS_ID and (to[n_t:] == PAD_ID).all()
        assert ti[0] == BOS_ID and (ti[1:n_t] == to[: n_t - 1]).all() and (ti[n_t:] == PAD_ID).all()
        tgt = to[: n_t - 1]
        assert EOS_ID not in tgt and BOS_ID not in tgt and BOS_ID not in s[:n_s]
        rows.append((tuple(int(x) for x in s[:n_s]), tuple(int(x) for x in tgt)))
    return rows


def assert_same_batches(got, want):
    """Equal batch lists: source, target-in and target-out of every batch, in order."""
    assert len(got) == len(want)
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x[0][0], y[0][0])
        np.testing.assert_array_equal(x[0][1], y[0][1])
        np.testing.assert_array_equal(x[1], y[1])


def collect(ds):
    return [((s.numpy(), ti.numpy()), to.numpy()) for (s, ti), to in ds]


@pytest.fixture(scope="module")
def token_batches(train_split, numbers_tokenizers):
    cfg = DataConfig(batch_tokens=BUDGET, max_len=MAX_LEN, shuffle_buffer=500, seed=11)
    ds = make_training_stream(train_split, numbers_tokenizers, cfg, epochs=1)
    return cfg, ds, collect(ds), train_split.summary.format()


def test_every_kept_pair_exactly_once(token_batches, sp, pairs):
    cfg, ds, batches, summary = token_batches
    got = [row for b in batches for row in unpad(b)]
    want = expected_rows(sp, pairs)
    assert len(want) < len(pairs) - 3  # the extras (and some long pairs) are dropped
    assert Counter(got) == Counter(want)
    # The summary the user sees counts exactly the difference.
    assert summary.startswith(
        f"train: {len(pairs):,} pairs read, {len(want):,} kept, {len(pairs) - len(want):,} dropped"
    )
    assert "3 empty or whitespace-only side" in summary


@pytest.mark.parametrize("unfiltered", ["list", "split"])
def test_training_batches_need_a_filtered_split(pairs, numbers_tokenizers, unfiltered):
    """Filtering is the corpus module's: the pipeline refuses pairs nobody filtered (and counted)."""
    source = pairs if unfiltered == "list" else as_split(pairs)
    with pytest.raises(ValueError, match=r"need a filtered corpus split .*filter_split"):
        make_training_stream(source, numbers_tokenizers, DataConfig(max_len=MAX_LEN))


def test_token_budget_and_bucket_shapes(token_batches):
    cfg, ds, batches, _ = token_batches
    lengths = [L for L, _ in cfg.batch_plan(MAX_LEN)]
    assert lengths[-1] >= MAX_LEN + 1
    shapes = set()
    for b in batches:
        (src, tin), tout = b
        B, L = src.shape
        assert tin.shape == (B, L)  # source and target padded to the bucket length
        assert L in lengths
        assert B * L <= BUDGET
        prev = max([0] + [x for x in lengths if x < L])
        for s, ti in zip(src, tin):
            need = max(int((s != 0).sum()), int((ti != 0).sum()))
            assert prev < need <= L  # in the shortest bucket that holds it
        shapes.add(L)
    assert len(shapes) >= 3
    # Full batches reach the budget's batch size (the budget is used, not just respected).
    plan = dict(cfg.batch_plan(MAX_LEN))
    assert any(b[0][0].shape[0] == plan[b[0][0].shape[1]] for b in batches)


def test_same_seed_same_batches(token_batches, train_split, numbers_tokenizers):
    cfg, ds, batches, _ = token_batches
    again = collect(make_training_stream(train_split, numbers_tokenizers, cfg, epochs=1))
    assert_same_batches(again, batches)
    other = collect(make_training_stream(train_split, numbers_tokenizers, dataclasses.replace(cfg, seed=12), epochs=1))
    assert [b[0][0].tolist() for b in other] != [b[0][0].tolist() for b in batches]


def _keys(batches):
    return [(b[0][0].tobytes(), b[1].tobytes()) for b in batches]


def test_training_stream_epochs_hold_every_pair_once_and_do_not_depend_on_history(
    token_batches, pairs, train_split, numbers_tokenizers, sp
):
    """The stream used by training: epoch after epoch, every kept pair exactly once per epoch, a new
    order each epoch, and batch n the same however many datasets were iterated before, whatever
    TensorFlow's global seed, and from whichever batch it is started (exact resume)."""
    cfg, ds, batches, _ = token_batches
    n = len(batches)
    stream = collect(make_training_stream(train_split, numbers_tokenizers, cfg).take(3 * n))
    want = Counter(expected_rows(sp, pairs))
    epochs = [stream[e * n : (e + 1) * n] for e in range(3)]
    for epoch in epochs:
        assert Counter(r for b in epoch for r in unpad(b)) == want
    assert len({tuple(_keys(e)) for e in epochs}) == 3

    collect(ds)  # iterating other datasets (or reshuffling ones) changes nothing
    previous = context.global_seed()
    tf.random.set_seed(1234)  # nor does TensorFlow's global seed
    try:
        again = make_training_stream(train_split, numbers_tokenizers, cfg)
        collect(again.take(5))
        assert _keys(collect(again.take(3 * n))) == _keys(stream)
    finally:
        tf.random.set_seed(previous)
    for start in (1, n - 1, n + 3, 2 * n):
        plain = make_training_stream(train_split, numbers_tokenizers, cfg, start=start)
        fast = make_training_stream(train_split, numbers_tokenizers, cfg, start=start, batches_per_epoch=n)
        assert _keys(collect(plain.take(3 * n - start))) == _keys(stream[start:])
        assert _keys(collect(fast.take(3 * n - start))) == _keys(stream[start:])
    other = make_training_stream(train_split, numbers_tokenizers, dataclasses.replace(cfg, seed=12))
    assert _keys(collect(other.take(n))) != _keys(stream[:n])


def test_a_stream_of_some_passes_ends_after_them(token_batches, train_split, numbers_tokenizers):
    """epochs=k: passes 0 .. k-1 of the endless stream, then the end (epochs=1: one pass, the same
    batches however often it is iterated); with start, from that batch on."""
    cfg, ds, batches, _ = token_batches
    n = len(batches)
    assert _keys(collect(ds)) == _keys(batches)
    endless = collect(make_training_stream(train_split, numbers_tokenizers, cfg).take(2 * n))
    two = collect(make_training_stream(train_split, numbers_tokenizers, cfg, epochs=2))
    assert _keys(two) == _keys(endless) and _keys(two[:n]) == _keys(batches)
    late = make_training_stream(train_split, numbers_tokenizers, cfg, start=n + 3, batches_per_epoch=n, epochs=2)
    assert _keys(collect(late)) == _keys(endless[n + 3 :])


def test_sentence_count_batches(pairs, train_split, numbers_tokenizers, sp):
    cfg = DataConfig(batch_size=64, max_len=MAX_LEN, seed=1, bucket_lengths=(16, 24, 32, 40))
    batches = collect(make_training_stream(train_split, numbers_tokenizers, cfg, epochs=1))
    assert all(b[0][0].shape[0] <= 64 and b[0][0].shape[1] in (16, 24, 32) for b in batches)
    assert sum(b[0][0].shape[0] == 64 for b in batches) >= len(batches) - 3  # at most one partial per bucket
    assert Counter(r for b in batches for r in unpad(b)) == Counter(expected_rows(sp, pairs))


def test_no_shuffle_keeps_file_order_within_buckets(pairs, train_split, numbers_tokenizers, sp):
    cfg = DataConfig(batch_size=32, max_len=MAX_LEN, shuffle_buffer=0)
    batches = collect(make_training_stream(train_split, numbers_tokenizers, cfg, epochs=1))
    want = expected_rows(sp, pairs)
    pos = {r: i for i, r in enumerate(want)}  # rows are unique in this corpus
    by_len = {}
    for b in batches:
        by_len.setdefault(b[0][0].shape[1], []).extend(pos[r] for r in unpad(b))
    for order in by_len.values():
        assert order == sorted(order)


def test_the_dev_set_is_not_autotuned(pairs, numbers_tokenizers):
    """Keras' fit keeps one dev iterator and deletes it at each evaluation; with tf.data autotuning on, that
    deletion waited 20-27 s for the autotune thread at about every second epoch end (docs/RESULTS.md). The dev
    set's pipeline is small and runs untuned; the training stream keeps autotuning."""
    cfg = DataConfig(batch_tokens=BUDGET, max_len=MAX_LEN)
    assert make_eval_dataset(pairs, numbers_tokenizers, cfg).options().autotune.enabled is False
    train = make_training_stream(filtered(pairs, numbers_tokenizers), numbers_tokenizers, cfg, epochs=1)
    assert train.options().autotune.enabled is not False


def test_evaluation_keeps_everything_in_order(pairs, numbers_tokenizers, sp):
    cfg = DataConfig(batch_tokens=BUDGET, max_len=MAX_LEN, eval_batch_size=50)
    batches = collect(make_eval_dataset(pairs, numbers_tokenizers, cfg))
    lengths = [L for L, _ in cfg.batch_plan(MAX_LEN)]
    rows = []
    for (src, tin), tout in batches:
        assert src.shape[0] <= 50
        for x in (src, tin):
            assert x.shape[1] in lengths or (x.shape[1] > lengths[-1] and x.shape[1] % 8 == 0)
        s, to = src, tout
        for k in range(src.shape[0]):
            n_s = int((s[k] != 0).sum())
            n_t = int((to[k] != 0).sum())
            rows.append((s[k][:n_s].tolist(), to[k][: n_t - 1].tolist()))
    assert rows == [(sp.encode(a), sp.encode(b)) for a, b in pairs]  # nothing dropped or moved
    assert any(len(s) > MAX_LEN for s, _ in rows)


def test_streaming_from_gzip_files_matches_memory(tmp_path, pairs, numbers_tokenizers, token_batches):
    cfg, _, batches, _ = token_batches
    with gzip.open(tmp_path / "train.en.gz", "wt", encoding="utf-8") as f:
        f.writelines(s + "\n" for s, _ in pairs)
    with gzip.open(tmp_path / "train.de.gz", "wt", encoding="utf-8") as f:
        f.writelines(t + "\n" for _, t in pairs)
    split = CorpusSplit("train", FilePairSource(tmp_path / "train.en.gz", tmp_path / "train.de.gz"))
    streamed = collect(make_training_stream(filtered(split, numbers_tokenizers), numbers_tokenizers, cfg, epochs=1))
    assert_same_batches(streamed, batches)


def test_corpus_split_through_pipeline(tmp_path, numbers_corpus, numbers_tokenizers, sp):
    raw = [(s, t) for s, t in numbers_corpus["train"][:600]]

    def passes(pair):  # the length and ratio filters, with plain SentencePiece
        a, b = sp.encode(pair[0]), sp.encode(pair[1])
        return 1 <= len(a) <= 20 and 1 <= len(b) <= 20 and max(len(a), len(b)) <= 3.0 * min(len(a), len(b))

    short = [i for i in range(11, 600) if passes(raw[i])]
    raw[10] = raw[short[0]]  # a duplicate the length filters keep, so dedup must drop it
    lines = [f"{s}\t{t}\tsource #{i}\n" for i, (s, t) in enumerate(raw)]
    (tmp_path / "all.tsv").write_text("".join(lines), encoding="utf-8")
    corpus = Corpus(
        CorpusConfig(train_tsv=str(tmp_path / "all.tsv"), dev_size=50, test_size=50, max_len=20, dedup=True)
    )
    train = corpus.filtered_train(numbers_tokenizers)
    assert train.summary.read == 500 and train.summary.kept == len(train)
    batches = collect(make_training_stream(train, numbers_tokenizers, DataConfig(batch_tokens=512), epochs=1))
    got = Counter(r for b in batches for r in unpad(b))
    assert sum(got.values()) == train.summary.kept
    # Independently of the corpus code: the raw pairs, less the held-out ones (the seeded split is
    # tested in test_corpus), less repeats and pairs equal to a held-out pair, less the length and
    # ratio filters, computed with plain SentencePiece.
    held = Counter(list(corpus.dev.pairs()) + list(corpus.test.pairs()))
    assert sum(held.values()) == 100
    remaining = Counter(raw) - held
    seen, want, repeats = set(), Counter(), 0
    for pair in raw:
        if remaining[pair] == 0:
            continue
        remaining[pair] -= 1
        if not passes(pair):
            continue
        if pair in seen or pair in held:
            repeats += 1
            continue
        seen.add(pair)
        want[(tuple(sp.encode(pair[0])), tuple(sp.encode(pair[1])))] += 1
    assert repeats == 1
    assert train.summary.dropped.get("duplicate", 0) + train.summary.dropped.get("heldout_duplicate", 0) == 1
    assert got == want
    held_out = {(tuple(sp.encode(s)), tuple(sp.encode(t))) for sp_ in (corpus.dev, corpus.test) for s, t in sp_.pairs()}
    assert not held_out & set(got)
    dev = collect(make_eval_dataset(corpus.dev, numbers_tokenizers, DataConfig(batch_tokens=512)))
    assert sum(b[1].shape[0] for b in dev) == 50


def test_multi30k_train_streams_every_kept_pair(multi30k_dir, multi30k_tokenizers):
    corpus = Corpus(CorpusConfig(dir=str(multi30k_dir), src_lang="en", tgt_lang="de", max_len=40))
    train = corpus.filtered_train(multi30k_tokenizers)
    assert train.summary.read == 29000
    cfg = DataConfig(batch_tokens=4096)
    n = 0
    for (src, tin), _ in make_training_stream(train, multi30k_tokenizers, cfg, epochs=1):
        assert src.shape[0] * src.shape[1] <= 4096 and tin.shape[0] * tin.shape[1] <= 4096
        n += int(src.shape[0])
    assert n == train.summary.kept


# --------------------------------------------------------------------------------------------
# Configuration


def test_config_from_plain_dict():
    cfg = DataConfig(**{"batch_tokens": 2048, "bucket_lengths": [8, 16, 32], "seed": 3, "shuffle_buffer": 100})
    assert cfg.bucket_lengths == (8, 16, 32) and cfg.token_budget == 2048
    assert DataConfig().token_budget == 4096 and DataConfig(batch_size=32).token_budget is None
    assert "buckets (batch_tokens=4096): 8x512" in describe_plan(DataConfig(), 100)
    assert describe_plan(DataConfig(), 100).endswith("104x39")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"batch_tokens": 1000, "batch_size": 10}, "data.batch_tokens=1000 and data.batch_size=10"),
        ({"batch_tokens": 0}, "data.batch_tokens"),
        ({"batch_size": 2.5}, "data.batch_size"),
        ({"bucket_lengths": [16, 8]}, "data.bucket_lengths"),
        ({"bucket_lengths": "8,16"}, "data.bucket_lengths"),
        ({"shuffle_buffer": -1}, "data.shuffle_buffer"),
        ({"max_len": 0}, "data.max_len"),
    ],
)
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(UserError) as e:
        DataConfig(**kwargs)
    assert field in str(e.value)


def test_inconsistent_lengths_are_user_errors(numbers_tokenizers, train_split):
    with pytest.raises(UserError, match=r"data.bucket_lengths ends with 16, shorter than max_len \+ 1 = 31"):
        make_training_stream(train_split, numbers_tokenizers, DataConfig(bucket_lengths=(8, 16), max_len=30))
    with pytest.raises(UserError, match=r"data.batch_tokens=20 cannot hold one pair of 32 tokens"):
        make_training_stream(train_split, numbers_tokenizers, DataConfig(batch_tokens=20, max_len=30), epochs=1)
    split = CorpusSplit("train", FilePairSource.__new__(FilePairSource))
    split.summary, split.max_len = object(), 50
    with pytest.raises(UserError, match=r"data.max_len=30 is below the corpus filter's max_len=50"):
        make_training_stream(split, numbers_tokenizers, DataConfig(max_len=30), epochs=1)


def test_separate_source_and_target_tokenizers_stay_on_their_sides(tmp_path, numbers_corpus):
    """With one SentencePiece model per side (tokenizer.joint: false) the source is encoded with
    the source model and the target with the target model, in the training stream and in the dev
    batches (a joint model, as elsewhere in this file, cannot tell the sides apart)."""
    from nmt.text.tokenizer import SRC_MODEL, TGT_MODEL, TokenizerConfig, Tokenizers, train_tokenizers

    train = numbers_corpus["train"][:800]
    train_tokenizers(
        TokenizerConfig(vocab_size=300, joint=False), [s for s, _ in train], [t for _, t in train], tmp_path
    )
    tokenizers = Tokenizers.load(tmp_path)
    sp_src = spm.SentencePieceProcessor(model_file=str(tmp_path / SRC_MODEL))
    sp_tgt = spm.SentencePieceProcessor(model_file=str(tmp_path / TGT_MODEL))
    assert sp_src.encode(train[0][0]) != sp_tgt.encode(train[0][0])  # the two models differ
    max_len = 24  # the length filter bites (about 90 of 800 kept), and differently for the two models

    def kept(sp_s, sp_t):
        return Counter(
            (tuple(sp_src.encode(s)), tuple(sp_tgt.encode(t)))
            for s, t in train
            if 1 <= len(sp_s.encode(s)) <= max_len and 1 <= len(sp_t.encode(t)) <= max_len
        )

    want = kept(sp_src, sp_tgt)
    assert 0 < sum(want.values()) < len(train) and want != kept(sp_tgt, sp_src)
    cfg = DataConfig(batch_size=64, max_len=max_len, seed=3)
    split = filtered(train, tokenizers, max_len)
    one_pass = collect(make_training_stream(split, tokenizers, cfg, epochs=1))
    assert Counter(r for b in one_pass for r in unpad(b)) == want
    dev = [r for b in collect(make_eval_dataset(train, tokenizers, cfg)) for r in unpad(b)]
    assert dev == [(tuple(sp_src.encode(s)), tuple(sp_tgt.encode(t))) for s, t in train]


def _order_correlation(pairs, tokenizers, cfg) -> float:
    """Spearman correlation between each pair's position in the corpus and the position at which one
    epoch of the training stream yields it (pairs found by their token ids; repeated ones skipped)."""
    from nmt.train.batches import make_training_stream

    keys = [tuple(tokenizers.src.encode(s)) for s, _ in pairs]
    counts = Counter(keys)
    index = {key: i for i, key in enumerate(keys) if counts[key] == 1}
    order, seen = [], set()
    for (src, _), _ in make_training_stream(filtered(pairs, tokenizers, cfg.max_len), tokenizers, cfg).take(10_000):
        rows = [tuple(int(t) for t in row if t != 0) for row in src.numpy()]
        if any(key in seen for key in rows):
            break  # the second epoch has begun
        seen.update(rows)
        order += [index[key] for key in rows if key in index]
    assert len(order) > 1000, len(order)
    ranks = np.argsort(np.argsort(order))
    return float(np.corrcoef(np.arange(len(order)), ranks)[0, 1])


def test_every_epoch_is_a_uniform_order_of_a_sorted_corpus(numbers_corpus, numbers_tokenizers):
    """A corpus sorted by length (as Tatoeba exports are): with the default shuffle (the whole split) the
    order in which pairs reach training is unrelated to their order in the file; a 50-pair buffer (the old
    kind of default, relative to this corpus) keeps the file's order almost intact."""
    pairs = sorted(numbers_corpus["train"], key=lambda p: (len(p[0]), p[0]))
    # one length bucket, so that batches leave in the shuffled order (buckets fill at different rates)
    base = dict(batch_size=32, max_len=MAX_LEN, seed=5, bucket_lengths=(32,))
    uniform = _order_correlation(pairs, numbers_tokenizers, DataConfig(**base))
    buffered = _order_correlation(pairs, numbers_tokenizers, DataConfig(**base, shuffle_buffer=50))
    assert abs(uniform) < 0.1, uniform  # a random permutation of ~2,000 pairs: |rho| ~ 0.02
    assert buffered > 0.9, buffered
