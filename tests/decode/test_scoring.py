"""Forced decoding (nmt.decode.scoring, Translator.score): against the search's own log-probabilities for the
hypotheses it produced, and against teacher forcing through the model's training path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from nmt.decode.settings import Batching


@pytest.fixture(scope="module")
def run(translator_run):
    return translator_run


@pytest.fixture(scope="module")
def translator(run):
    from nmt.decode.translator import load_run

    return load_run(run["dir"])


def finished_hypotheses(translator, sources, settings):
    """(source, text, search log-probability) of every n-best hypothesis that ended with EOS (shorter than
    its length limit) and whose text tokenizes back to its tokens."""
    out = []
    for source, translation in zip(sources, translator.translate(sources, settings)):
        limit = math.floor(settings.max_len_a * len(translation.source_ids) + settings.max_len_b + 1e-3)
        for h in translation.hypotheses:
            if len(h.tokens) + 1 <= limit and translator.tokenizers.tgt.encode(h.text) == list(h.tokens):
                out.append((source, h.text, h.score))
    return out


def test_a_searched_hypothesis_scores_its_search_log_probability(translator, run):
    """With length penalty 0 a hypothesis's search score is its log-probability: scoring the pair gives it."""
    sources = [s for s, _ in run["test"][:24]]
    settings = translator.settings(beam_size=4, nbest=4, length_penalty=0.0)
    triples = finished_hypotheses(translator, sources, settings)
    assert len(triples) >= 60
    scores = translator.score([s for s, _, _ in triples], [t for _, t, _ in triples], Batching(batch_size=7))
    np.testing.assert_allclose([s.log_prob for s in scores], [x for _, _, x in triples], rtol=1e-5, atol=1e-4)
    assert all(s.length == len(translator.tokenizers.tgt.encode(t)) + 1 for s, (_, t, _) in zip(scores, triples))


def test_scores_equal_teacher_forcing(translator, run):
    """Independent path: the model's training call (teacher forcing, all steps at once), log-softmax,
    the target tokens and EOS summed, one pair at a time."""
    from nmt.text.tokenizer import BOS_ID, EOS_ID

    pairs = run["test"][:10] + [(run["test"][0][0], ""), (run["test"][1][0], run["test"][2][1])]
    scores = translator.score([s for s, _ in pairs], [t for _, t in pairs])
    tok = translator.tokenizers
    for (source, target), score in zip(pairs, scores):
        target_ids = tok.tgt.encode(target)
        x = tf.constant([tok.src.encode(source)], tf.int32)
        y_in = tf.constant([[BOS_ID] + target_ids], tf.int32)
        y_out = np.array(target_ids + [EOS_ID])
        logits = translator.model((x, y_in), training=False)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1).numpy()[0]
        expected = float(log_probs[np.arange(len(y_out)), y_out].sum())
        assert score.length == len(y_out)
        assert score.log_prob == pytest.approx(expected, rel=1e-4, abs=1e-3)
        assert score.per_token == pytest.approx(score.log_prob / score.length)
    assert scores[-2].length == 1  # an empty target: the end-of-sentence token alone


def test_order_batching_and_empty_sources(translator, run):
    sources = [s for s, _ in run["test"][:9]]
    targets = [t for _, t in run["test"][:9]]
    whole = translator.score(sources, targets, Batching(batch_size=64))
    ones = [translator.score([s], [t])[0] for s, t in zip(sources, targets)]
    np.testing.assert_allclose([s.log_prob for s in whole], [s.log_prob for s in ones], rtol=1e-5, atol=1e-5)
    # A source without tokens is translated as "" with score 0: only the empty target is possible.
    empty = translator.score(["", " ", ""], ["", "", targets[0]])
    assert [s.log_prob for s in empty[:2]] == [0.0, 0.0] and empty[2].log_prob == -math.inf
    from nmt.errors import UserError

    with pytest.raises(UserError, match="2 sources but 1 targets"):
        translator.score(sources[:2], targets[:1])
