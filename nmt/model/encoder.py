"""The source side: embedding and a stack of `nmt.model.gru.GRU` layers (uni- or bidirectional).

    x = dropout(word_dropout(E_src[source_ids]))           [B, S, E]
    h^1 = GRU_1(x), h^k = GRU_k(dropout(h^{k-1}))           [B, S, H·dirs]

Bidirectional layers merge their two directions by concatenation [→h_j; ←h_j] (H·2, Bahdanau et
al.) or by their sum →h_j + ←h_j (H, `merge="sum"`, the TensorFlow tutorial's encoder).

Padding (id 0) is masked: a padded step leaves each direction's state unchanged, so the final
states are those after the last (forward) or first (backward) real token, and the outputs at
padded positions are exactly 0. Sources are padded at the end.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from nmt.model.gru import GRU


@keras.saving.register_keras_serializable(package="nmt")
class Encoder(keras.layers.Layer):
    """`encoder(source_ids int [B, S], training=None) -> (outputs, final_states, mask)`:
    outputs [B, S, units·dirs] of the top layer (0 on padding), final_states a tuple of the top
    layer's last states [B, units] (forward; then backward when bidirectional), mask bool [B, S].
    Weights are created in `build()` from the sizes given here (no input needed).
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        units,
        num_layers=1,
        bidirectional=False,
        embedding_dropout=0.0,
        layer_dropout=0.0,
        pad_id=0,
        merge="concat",
        word_dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.embedding_dropout = float(embedding_dropout)
        self.layer_dropout = float(layer_dropout)
        self.word_dropout = float(word_dropout)
        self.pad_id = int(pad_id)
        if merge not in ("concat", "sum"):
            raise ValueError(f"merge: received {merge!r}, expected concat or sum")
        self.merge = merge
        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_dim, dtype=policy, name="embedding")
        self.embedding_drop = keras.layers.Dropout(self.embedding_dropout, name="embedding_dropout")
        self.word_drop = keras.layers.Dropout(self.word_dropout, name="word_dropout")
        self.layer_drop = keras.layers.Dropout(self.layer_dropout, name="layer_dropout")
        self.rnns = []
        for k in range(self.num_layers):
            gru = GRU(
                self.units,
                return_sequences=True,
                return_state=True,
                zero_output_for_mask=True,
                dtype=policy,
                name=f"gru_{k}",
            )
            if self.bidirectional:
                gru = keras.layers.Bidirectional(gru, merge_mode=merge, dtype=policy, name=f"bigru_{k}")
            self.rnns.append(gru)

    @property
    def output_dim(self):
        return self.units * (2 if self.bidirectional and self.merge == "concat" else 1)

    def build(self, input_shape=None):
        self.embedding.build()
        in_dim = self.embedding_dim
        for rnn in self.rnns:
            rnn.build((None, None, in_dim))
            in_dim = self.output_dim
        self.built = True

    def call(self, source_ids, training=None):
        source_ids = tf.cast(source_ids, tf.int32)
        mask = tf.not_equal(source_ids, self.pad_id)  # [B, S]
        x = drop_words(self.word_drop, self.embedding(source_ids), training)  # [B, S, E]
        x = self.embedding_drop(x, training=training)
        final_states = ()
        for k, rnn in enumerate(self.rnns):
            if k > 0:
                x = self.layer_drop(x, training=training)
            x, *final_states = rnn(x, mask=mask, training=training)  # [B, S, H·dirs]
        return x, tuple(final_states), mask

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            embedding_dropout=self.embedding_dropout,
            layer_dropout=self.layer_dropout,
            pad_id=self.pad_id,
            merge=self.merge,
            word_dropout=self.word_dropout,
        )
        return config


def drop_words(dropout, embedded, training=None):
    """Word dropout: embedded [..., E] with whole tokens dropped when training. One keep-or-drop draw per
    token (dropout, a keras.layers.Dropout, applied to ones [..., 1]): a dropped token's embedding is all
    zeros, a kept one is scaled by 1 / (1 - rate), as dropout scales. Identity when not training or at
    rate 0."""
    if not training or dropout.rate == 0:
        return embedded
    return embedded * dropout(ops.ones_like(embedded[..., :1]), training=training)
