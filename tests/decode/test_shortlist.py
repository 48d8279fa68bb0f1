"""The lexical shortlist (nmt.decode.shortlist) and the search over it.

Oracles: a plain dictionary implementation of IBM Model 1's EM (Brown et al. 1993) for the table; Python
sets for a batch's vocabulary; and, for the search, the full-vocabulary search of the same model with its
logits outside the shortlist set to -inf (what a shortlist search is defined to be). Compaction of done
sentences is checked against the search with fixed shapes.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from nmt.decode import search, shortlist
from nmt.decode.settings import SearchSettings
from nmt.errors import UserError
from tests.decode.test_search import FakeModel, make_batch
from tests.model.test_seq2seq import VARIANTS, _model

# ---------------------------------------------------------------------------------------------- the table


def ibm1_oracle(pairs, iterations):
    """t[x][y] by EM with dictionaries, one sentence at a time, NULL (0) in every source."""
    t = collections.defaultdict(dict)
    targets = {y for _, tgt in pairs for y in tgt}
    for src, tgt in pairs:
        for x in [0, *src]:
            for y in tgt:
                t[x][y] = 1.0 / 1000  # uniform (its value cancels in the first E step)
    for _ in range(iterations):
        counts = collections.defaultdict(lambda: collections.defaultdict(float))
        for src, tgt in pairs:
            src = [0, *src]
            for y in tgt:
                total = sum(t[x][y] for x in src)
                for x in src:
                    counts[x][y] += t[x][y] / total
        t = collections.defaultdict(dict)
        for x, row in counts.items():
            norm = sum(row.values())
            for y, c in row.items():
                t[x][y] = c / norm
    assert targets
    return t


def random_pairs(seed, n=60, vocab=30):
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        src = list(rng.integers(4, vocab, rng.integers(1, 7)))
        # targets correlated with the sources (a noisy "translation"), plus noise words
        tgt = [int((x * 7) % vocab) if (x * 7) % vocab >= 4 else 4 for x in src if rng.random() < 0.8]
        tgt += list(rng.integers(4, vocab, rng.integers(0, 3)))
        pairs.append(([int(x) for x in src], [int(y) for y in tgt]))
    return pairs


@pytest.mark.parametrize("seed", [0, 1])
def test_the_table_ranks_translations_as_ibm_model_1_does(seed):
    vocab, keep = 30, 6
    pairs = random_pairs(seed, vocab=vocab)
    table = shortlist.train_table(pairs, vocab, vocab, iterations=4, keep=keep)
    oracle = ibm1_oracle(pairs, iterations=4)
    assert table.translations.shape == (vocab, keep)
    assert (table.translations[0] == -1).all()  # NULL is no source piece
    for x in range(1, vocab):
        ranked = [int(y) for y in table.translations[x] if y >= 0]
        row = oracle.get(x, {})
        assert len(ranked) == min(keep, len(row)), x
        values = [row[y] for y in ranked]
        assert all(a >= b - 1e-12 for a, b in zip(values, values[1:])), (x, values)  # best first
        if ranked:
            left_out = [p for y, p in row.items() if y not in ranked]
            assert all(p <= values[-1] + 1e-12 for p in left_out), x  # no better one left out
        assert all(y == -1 for y in table.translations[x][len(ranked) :])


def test_chunks_of_pairs_give_the_table_of_all_at_once():
    pairs = random_pairs(5, n=50)
    whole = shortlist.train_table(pairs, 30, 30, keep=8, chunk_pairs=1000)
    for chunk in (1, 7):
        part = shortlist.train_table(pairs, 30, 30, keep=8, chunk_pairs=chunk)
        np.testing.assert_array_equal(part.translations, whole.translations)
        np.testing.assert_array_equal(part.frequent, whole.frequent)


def test_a_textbook_corpus_learns_the_word_translations():
    das, haus, buch, ein = 10, 11, 12, 13
    the, house, book, a = 20, 21, 22, 23
    pairs = [([das, haus], [the, house]), ([das, buch], [the, book]), ([ein, buch], [a, book])]
    table = shortlist.train_table(pairs, 30, 30, iterations=10, keep=1)
    assert [table.translations[x, 0] for x in (das, haus, buch, ein)] == [the, house, book, a]


def test_frequent_pieces_are_counted_over_the_targets():
    pairs = random_pairs(3)
    table = shortlist.train_table(pairs, 30, 30)
    counts = collections.Counter(y for _, tgt in pairs for y in tgt)
    expected = sorted(counts, key=lambda y: (-counts[y], y))
    assert table.frequent.tolist() == expected


def test_no_pairs_give_an_empty_table():
    table = shortlist.train_table([([4], [])], 10, 12, keep=3)
    assert (table.translations == -1).all() and table.frequent.size == 0


def test_estimate_samples_text_pairs_and_saves_and_loads(tmp_path, numbers_tokenizers, numbers_corpus):
    pairs = numbers_corpus["train"]
    table, used = shortlist.estimate(pairs, numbers_tokenizers)
    assert used == min(len(pairs), shortlist.SAMPLE_PAIRS)
    src = numbers_tokenizers.src.encode_batch([s for s, _ in pairs])
    tgt = numbers_tokenizers.tgt.encode_batch([t for _, t in pairs])
    direct = shortlist.train_table(zip(src, tgt), numbers_tokenizers.src.vocab_size, numbers_tokenizers.tgt.vocab_size)
    np.testing.assert_array_equal(table.translations, direct.translations)
    path = table.save(tmp_path / "shortlist.npz")
    loaded = shortlist.LexicalTable.load(path)
    np.testing.assert_array_equal(loaded.translations, table.translations)
    np.testing.assert_array_equal(loaded.frequent, table.frequent)
    assert [p.name for p in tmp_path.iterdir()] == ["shortlist.npz"]  # no temporary file left


def test_a_foreign_file_and_a_mismatched_table_are_one_line_errors(tmp_path):
    bad = tmp_path / "shortlist.npz"
    bad.write_text("not numpy")
    with pytest.raises(UserError, match=r"shortlist\.npz: not a shortlist written by training"):
        shortlist.LexicalTable.load(bad)
    table = shortlist.train_table([([4, 5], [6, 7])], 10, 12)
    shortlist.check_table(table, 10, 12)
    with pytest.raises(UserError, match="comes from another run"):
        shortlist.check_table(table, 11, 12)
    with pytest.raises(UserError, match="comes from another run"):
        shortlist.check_table(table, 10, 7)
    assert shortlist.read_for_run(tmp_path / "nowhere") is None


@pytest.mark.parametrize("per_source,frequent", [(1, 0), (3, 5), (100, 100)])
def test_the_batch_vocabulary_in_tensorflow_equals_the_set_union(per_source, frequent):
    table = shortlist.train_table(random_pairs(4), 30, 30, keep=8)
    _, ids = make_batch(5, 7, max_len=6)
    ids = ids * 4 % 30  # source ids over the table's vocabulary, 0 still padding
    got = shortlist.batch_vocabulary(
        tf.constant(table.translations[:, :per_source]),
        tf.constant(table.frequent[:frequent]),
        ids,
        per_source,
        frequent,
    ).numpy()
    expected = set(shortlist.RESERVED_IDS) | set(table.frequent[:frequent].tolist())
    for x in {int(i) for i in ids.ravel() if i}:
        expected |= {int(y) for y in table.translations[x, :per_source] if y >= 0}
    assert got.tolist() == sorted(expected)
    assert got.tolist() == table.vocabulary(ids.tolist(), per_source, frequent).tolist()


# --------------------------------------------------------------------------------- the search over it


class Masked:
    """The oracle: a model whose logits outside `vocabulary` are -inf, searched over the whole vocabulary."""

    def __init__(self, model, vocabulary):
        self.model = model
        self.allowed = tf.constant(np.isin(np.arange(model.tgt_vocab_size), vocabulary))

    def encode(self, source_ids):
        return self.model.encode(source_ids)

    def decode_step(self, tokens, state):
        logits, new_state, attention = self.model.decoder.step(tokens, state)
        logits = tf.where(self.allowed[None, :], logits, float("-inf"))
        return tf.nn.log_softmax(logits), new_state, attention


SOURCES = np.array([[5, 6, 7, 8, 9, 3], [10, 11, 3, 0, 0, 0], [12, 13, 14, 3, 0, 0], [4, 3, 0, 0, 0, 0]], "int32")


@pytest.mark.parametrize(
    "variant", ["cho2014", "cho2014-tanh-tied-2layers", "attention", "attention-tanh-tied", "luong-fast"]
)
def test_restricted_logits_are_the_full_logits_columns(variant):
    model = _model(**VARIANTS[variant])
    vocabulary = tf.constant([0, 2, 3, 5, 9, 17, 22], tf.int32)
    state = model.encode(SOURCES)
    tokens = tf.constant([2, 5, 9, 3], tf.int32)
    full, _, _ = model.decoder.step(tokens, state)
    part, _, _ = model.decoder.step(tokens, dict(state, output=model.output_weights(vocabulary)))
    np.testing.assert_allclose(part.numpy(), tf.gather(full, vocabulary, axis=1).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["cho2014", "attention", "luong-fast", "attention-tanh-tied"])
@pytest.mark.parametrize("beam_size", [1, 3])
def test_a_shortlist_search_is_the_full_search_of_the_masked_model(variant, beam_size):
    model = _model(**VARIANTS[variant])
    vocabulary = np.array([0, 1, 2, 3, 4, 6, 7, 11, 15, 16, 21], np.int32)
    settings = SearchSettings(
        beam_size=beam_size, nbest=beam_size, length_penalty=0.8, max_len_a=1.0, max_len_b=3, attention=False
    )
    got = search.search(model, SOURCES, settings, vocabulary=vocabulary)
    want = search.search(Masked(model, vocabulary), SOURCES, settings)
    np.testing.assert_array_equal(got.tokens.numpy(), want.tokens.numpy())
    np.testing.assert_array_equal(got.lengths.numpy(), want.lengths.numpy())
    np.testing.assert_allclose(got.scores.numpy(), want.scores.numpy(), rtol=1e-5)
    assert set(np.unique(got.tokens.numpy())) <= set(vocabulary.tolist())


def test_a_shortlist_narrower_than_the_beam_still_searches():
    model = _model(**VARIANTS["luong-fast"])
    vocabulary = np.array([0, 1, 2, 3, 9], np.int32)  # 3 allowed ids (UNK, EOS, 9) for 4 beams
    settings = SearchSettings(beam_size=4, nbest=4, length_penalty=0.0, max_len_a=0.0, max_len_b=2)
    got = search.search(model, SOURCES, settings, vocabulary=vocabulary)
    want = search.search(Masked(model, vocabulary), SOURCES, settings)
    np.testing.assert_array_equal(got.tokens.numpy(), want.tokens.numpy())
    np.testing.assert_allclose(got.scores.numpy(), want.scores.numpy(), rtol=1e-5)


def test_an_ensemble_searches_its_shortlist_like_its_masked_members():
    from nmt.decode.ensemble import Ensemble

    first, second = _model(0, **VARIANTS["luong-fast"]), _model(1, **VARIANTS["luong-fast"])
    vocabulary = np.array([0, 1, 2, 3, 5, 8, 13, 21], np.int32)
    settings = SearchSettings(beam_size=3, nbest=2, length_penalty=0.6, max_len_a=1.0, max_len_b=2)
    got = search.search(Ensemble([first, second]), SOURCES, settings, vocabulary=vocabulary)

    class MaskedEnsemble(Ensemble):
        def __init__(self, models):
            super().__init__(models)
            self.masked = [Masked(m, vocabulary) for m in models]

        def decode_step(self, tokens, state):
            log_probs, recurrent = [], {}
            for i, masked in enumerate(self.masked):
                key = self._key(i)
                lp, new, _ = masked.decode_step(
                    tokens, {"memory": state["memory"][key], "recurrent": state["recurrent"][key]}
                )
                log_probs.append(lp)
                recurrent[key] = new["recurrent"]
            mean = tf.reduce_logsumexp(tf.stack(log_probs), axis=0) - np.log(2.0)
            return mean, {"memory": state["memory"], "recurrent": recurrent}, None

    want = search.search(MaskedEnsemble([first, second]), SOURCES, settings)
    np.testing.assert_array_equal(got.tokens.numpy(), want.tokens.numpy())
    np.testing.assert_allclose(got.scores.numpy(), want.scores.numpy(), rtol=1e-5)


# -------------------------------------------------------------------------------------------- compaction


@pytest.mark.parametrize("beam_size,nbest", [(1, 1), (3, 2)])
@pytest.mark.parametrize("share", [0.0, 0.25, 1.0])
def test_compaction_changes_nothing(monkeypatch, beam_size, nbest, share):
    """Dropping done sentences from the loop gives the fixed-shape search's results, eagerly and traced with
    unknown shapes, attention included, whenever compaction happens (share 0: at every step with a done
    sentence; 1: only once all are done)."""
    monkeypatch.setattr(search, "COMPACT_SHARE", share)
    model = FakeModel(3, eos_bias=-2.0, eos_slope=1.5)
    _, ids = make_batch(11, 12, max_len=7)
    settings = SearchSettings(
        beam_size=beam_size, nbest=nbest, length_penalty=0.6, max_len_a=1.5, max_len_b=2, attention=True
    )
    fixed = search.search(model, ids, settings, compact=False)
    traced = tf.function(
        lambda x: search.search(model, x, settings, compact=True),
        input_signature=[tf.TensorSpec([None, None], tf.int32)],
        autograph=False,
    )
    for got in (search.search(model, ids, settings, compact=True), traced(tf.constant(ids))):
        for name in ("tokens", "lengths"):
            np.testing.assert_array_equal(getattr(got, name).numpy(), getattr(fixed, name).numpy())
        for name in ("scores", "log_probs", "attention"):
            np.testing.assert_allclose(getattr(got, name).numpy(), getattr(fixed, name).numpy(), rtol=1e-6, atol=1e-7)


def test_compaction_runs_fewer_decoder_rows():
    """The point of compaction: once sentences are done, the decoder steps run on fewer rows."""
    rows = []

    class Counting(FakeModel):
        def decode_step(self, tokens, state):
            rows.append(int(tokens.shape[0]))
            return super().decode_step(tokens, state)

    model = Counting(3, eos_bias=-2.0, eos_slope=1.5)
    _, ids = make_batch(11, 12, max_len=7)
    settings = SearchSettings(beam_size=2, nbest=1, length_penalty=0.6, max_len_a=1.5, max_len_b=2)
    search.search(model, ids, settings, compact=False)
    fixed, rows[:] = list(rows), []
    search.search(model, ids, settings, compact=True)
    assert len(rows) == len(fixed) and set(fixed) == {24}
    assert rows[0] == 24 and rows[-1] < 24 and rows == sorted(rows, reverse=True)


# ------------------------------------------------------------------------------------------ translator


def test_the_translator_and_its_savedmodel_use_the_runs_shortlist(translator_run, tmp_path):
    import shutil

    from nmt.decode.translator import export_translator, load_run
    from tests.helpers import mixed_sentences, run_corpus

    run = tmp_path / "run"
    shutil.copytree(translator_run["dir"], run)
    translator = load_run(run)
    assert translator.shortlist is None  # a run without shortlist.npz (made before shortlists): whole vocabulary
    table, _ = shortlist.estimate(run_corpus()["train"], translator.tokenizers)
    # A deliberately narrow table: every source piece's one translation and no frequent pieces, so the
    # shortlist is far smaller than the vocabulary and decides what can be generated.
    narrow = shortlist.LexicalTable(table.translations[:, :1], table.frequent[:0])
    narrow.save(run / "shortlist.npz")
    translator = load_run(run)
    sentences = mixed_sentences(translator_run, 40)
    settings = translator.settings(beam_size=3, nbest=2)
    got = translator.translate(sentences, settings)
    full = translator.translate(sentences, dataclasses.replace(settings, shortlist=0))
    assert [t.text for t in got] != [t.text for t in full]  # the shortlist is in force
    ids = translator.tokenizers.src.encode_batch(sentences)
    everything = set(narrow.vocabulary(ids, 1, 0).tolist())  # a batch's shortlist: its sentences' union
    assert all(set(h.tokens) <= everything for t in got for h in t.hypotheses)
    for sentence, sentence_ids in list(zip(sentences, ids))[:8]:  # alone, a sentence has its own shortlist
        allowed = set(narrow.vocabulary([sentence_ids], 1, 0).tolist())
        (alone,) = translator.translate([sentence], settings)
        assert all(set(h.tokens) <= allowed for h in alone.hypotheses), sentence
    export = export_translator(translator, tmp_path / "export")
    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    served = [t.decode() for t in serve(sentences=tf.constant(sentences))["translations"].numpy()]
    default = translator.translate(sentences)
    assert served == [t.text for t in default]
