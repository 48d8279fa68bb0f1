"""Word dropout (model.word_dropout): whole tokens dropped when training, their embeddings all zeros, the
kept ones scaled by 1 / (1 - rate); nothing changes when not training. Checked against the embedding table
read directly (NumPy), on the source side (the encoder) and the target side (the decoder's embed)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from nmt.config import ModelConfig
from nmt.model.encoder import Encoder, drop_words
from nmt.model.seq2seq import build_model

RATE = 0.3


def check_rows(dropped: np.ndarray, embedded: np.ndarray, rate: float) -> np.ndarray:
    """Each token's row [..., E] is all zeros or the embedding / (1 - rate) -> bool [...] (dropped)."""
    zero = np.all(dropped == 0, axis=-1)
    kept = np.all(np.isclose(dropped, embedded / (1 - rate), rtol=1e-6, atol=1e-7), axis=-1)
    assert np.all(zero | kept)
    return zero & ~np.all(embedded == 0, axis=-1)


def binomial_bounds(n: int, p: float, sigmas: float = 6.0) -> tuple[float, float]:
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread


def test_drop_words_zeros_whole_tokens_at_the_rate_and_only_when_training():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 50, 16)).astype("float32")
    layer = keras.layers.Dropout(RATE, seed=3)
    dropped = check_rows(np.asarray(drop_words(layer, x, training=True)), x, RATE)
    low, high = binomial_bounds(dropped.size, RATE)
    assert low < dropped.sum() < high
    again = check_rows(np.asarray(drop_words(layer, x, training=True)), x, RATE)
    assert not np.array_equal(dropped, again)  # a new draw each call
    np.testing.assert_array_equal(np.asarray(drop_words(layer, x, training=False)), x)
    np.testing.assert_array_equal(np.asarray(drop_words(keras.layers.Dropout(0.0), x, training=True)), x)


def test_the_decoder_embeds_target_tokens_with_word_dropout():
    keras.utils.set_random_seed(1)
    cfg = ModelConfig(
        architecture="attention",
        attention_position="luong",
        deep_output="none",
        embedding_dim=8,
        encoder_units=8,
        decoder_units=8,
        attention_units=8,
        word_dropout=RATE,
    )
    model = build_model(cfg, 50, 60)
    tokens = np.random.default_rng(1).integers(1, 60, (30, 20)).astype("int32")
    table = np.asarray(model.decoder.embedding.embeddings)
    dropped = check_rows(np.asarray(model.decoder.embed(tokens, training=True)), table[tokens], RATE)
    low, high = binomial_bounds(dropped.size, RATE)
    assert low < dropped.sum() < high
    np.testing.assert_array_equal(np.asarray(model.decoder.embed(tokens, training=False)), table[tokens])
    assert model.encoder.word_dropout == RATE and model.decoder.word_dropout == RATE


def test_the_encoder_reads_dropped_source_tokens_as_zero_embeddings():
    """The encoder with word dropout, when training, equals the encoder without it fed the embeddings with
    the same tokens zeroed and the others scaled (the mask drawn from a twin dropout layer with the same
    seed state)."""
    keras.utils.set_random_seed(2)
    encoder = Encoder(40, 8, 8, bidirectional=True, word_dropout=RATE, merge="sum")
    encoder.build()
    source = np.random.default_rng(2).integers(1, 40, (6, 9)).astype("int32")
    twin = keras.layers.Dropout(RATE)
    twin.seed_generator.state.assign(encoder.word_drop.seed_generator.state)
    outputs, _, _ = encoder(source, training=True)
    table = np.asarray(encoder.embedding.embeddings)
    embedded = np.asarray(drop_words(twin, table[source], training=True))
    expected = np.asarray(encoder.rnns[0](embedded, mask=source != 0)[0])
    np.testing.assert_allclose(np.asarray(outputs), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rate", [0.0, RATE])
def test_word_dropout_survives_get_config_and_saving(tmp_path, rate):
    encoder = Encoder(40, 8, 8, word_dropout=rate)
    assert Encoder.from_config(encoder.get_config()).word_dropout == rate
    cfg = ModelConfig(architecture="attention", embedding_dim=8, encoder_units=8, decoder_units=8, word_dropout=rate)
    model = build_model(cfg, 30, 30)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.encoder.word_dropout == rate and loaded.decoder.word_dropout == rate
    # at rate 0 there is no dropout layer state: the checkpoints of runs without word dropout read as before
    assert hasattr(model.encoder.word_drop, "seed_generator") == (rate > 0)
