"""What the decoders share: the target embedding, the deep output and the first state.

The decoders, one module each: `nmt.model.cho2014` (Cho et al. 2014), `nmt.model.bahdanau`
(Bahdanau et al. 2015, attention inside the recurrence) and `nmt.model.luong` (attention after it).

All of them read out through the deep output ("readout") of the papers, for target position t
with previous word y_{t-1}, new decoder state h_t and context c_t:

    s_t = O_h·h_t + O_y·e(y_{t-1}) + O_c·c_t + b            [..., D]
    maxout: u_t = max(s_t[:D/2], s_t[D/2:])                 [..., D/2]   ("maxout", D even)
    or      u_t = tanh(s_t)                                  [..., D]     ("tanh", simpler)
    logits_t = dropout(u_t)·W_o + b_o                        [..., V]     (W_o = E_tgtᵀ, tied)

Maxout pairs unit i with unit i + D/2 rather than 2i with 2i + 1: the same model up to a
permutation of O's columns, and two contiguous slices are cheaper than strided ones. The paper
(Bahdanau appendix A.2.2) writes U_o·s_{i-1}; we follow its section 3.1, g(y_{i-1}, s_i, c_i), and
Cho et al. 2014, and read out the new state.

State dictionaries (see `nmt.model.seq2seq`): every leaf is batch-major; "memory" is constant per
sentence, "recurrent" = {"hidden": [B, units]} is what a step changes.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from nmt.model.encoder import drop_words


class Decoder(keras.layers.Layer):
    """Target embedding, deep output and vocabulary projection, shared by every decoder.

    A subclass gives `context_dim` (what the readout's O_c reads), creates its recurrence's weights
    in `_build_recurrence`, and implements the protocol `nmt.model.seq2seq` relies on:
    `start(encoder_outputs, final_states, source_mask) -> state`, `call(target_in, state,
    training) -> logits float32 [B, T, V]` (teacher forcing) and `step(tokens, state) -> (logits
    float32 [B, V], new state, attention float32 [B, S] or None)`.

    Sizes: vocab_size V, embedding_dim E, units H (decoder GRU), context_dim C (what the readout's
    O_c reads), output_dim D (before maxout), encoder_dim (the encoder's output size).
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        units,
        encoder_dim,
        output_dim,
        deep_output="maxout",
        embedding_dropout=0.0,
        output_dropout=0.0,
        tie_embeddings=False,
        word_dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.encoder_dim = int(encoder_dim)
        self.output_dim = int(output_dim)
        self.deep_output = str(deep_output)
        self.embedding_dropout = float(embedding_dropout)
        self.output_dropout = float(output_dropout)
        self.tie_embeddings = bool(tie_embeddings)
        self.word_dropout = float(word_dropout)
        if self.readout_dim != self.embedding_dim and self.tie_embeddings:
            raise ValueError(
                f"tied embeddings need readout size {self.readout_dim} == embedding_dim {self.embedding_dim}"
            )
        policy = self.dtype_policy
        self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_dim, dtype=policy, name="embedding")
        self.embedding_drop = keras.layers.Dropout(self.embedding_dropout, name="embedding_dropout")
        self.word_drop = keras.layers.Dropout(self.word_dropout, name="word_dropout")
        if self.deep_output != "none":
            self.readout_state = keras.layers.Dense(self.output_dim, dtype=policy, name="readout_state")
            self.readout_embedding = keras.layers.Dense(
                self.output_dim, use_bias=False, dtype=policy, name="readout_embedding"
            )
            self.readout_context = keras.layers.Dense(
                self.output_dim, use_bias=False, dtype=policy, name="readout_context"
            )
        self.output_drop = keras.layers.Dropout(self.output_dropout, name="output_dropout")
        if not self.tie_embeddings:
            self.projection = keras.layers.Dense(self.vocab_size, dtype=policy, name="projection")

    @property
    def readout_dim(self):
        """Size after maxout/tanh, what the vocabulary projection reads (the decoder state's size
        without a deep output)."""
        if self.deep_output == "none":
            return self.units
        return self.output_dim // 2 if self.deep_output == "maxout" else self.output_dim

    @property
    def context_dim(self):
        raise NotImplementedError

    def build(self, input_shape=None):
        self.embedding.build()
        if self.deep_output != "none":
            self.readout_state.build((None, self.units))
            self.readout_embedding.build((None, self.embedding_dim))
            self.readout_context.build((None, self.context_dim))
        if self.tie_embeddings:
            self.projection_bias = self.add_weight(
                name="projection_bias", shape=(self.vocab_size,), initializer="zeros"
            )
        else:
            self.projection.build((None, self.readout_dim))
        self._build_recurrence()
        self.built = True

    def _build_recurrence(self):
        raise NotImplementedError

    def embed(self, tokens, training=None):
        """tokens int [...] -> embeddings [..., E] (word and embedding dropout when training)."""
        embedded = drop_words(self.word_drop, self.embedding(tf.cast(tokens, tf.int32)), training)
        return self.embedding_drop(embedded, training=training)

    def readout(self, hidden, embedded, context_term, training=None, output=None):
        """hidden [..., H], embedded [..., E], context_term O_c·c [..., D]
        -> logits float32 [..., V] (output: see `project`)."""
        s = self.readout_state(hidden) + self.readout_embedding(embedded) + context_term
        if self.deep_output == "maxout":
            u = tf.maximum(*tf.split(s, 2, axis=-1))  # [..., D/2]
        else:
            u = tf.tanh(s)  # [..., D]
        return self.project(u, training, output)

    def project(self, u, training=None, output=None):
        """u [..., readout_dim] -> logits float32 [..., V] (dropout when training); with output (from
        `output_weights(vocabulary)`), the logits of those V' ids only: float32 [..., V']."""
        u = self.output_drop(u, training=training)
        if output is not None:
            u = ops.cast(u, output["kernel"].dtype)
            logits = tf.tensordot(u, output["kernel"], [[-1], [0]]) + output["bias"]
        elif self.tie_embeddings:
            table = ops.cast(self.embedding.embeddings, self.compute_dtype)  # [V, E]
            logits = tf.tensordot(u, table, [[-1], [1]]) + ops.cast(self.projection_bias, self.compute_dtype)
        else:
            logits = self.projection(u)  # [..., V]
        return tf.cast(logits, tf.float32)

    def output_weights(self, vocabulary):
        """The vocabulary projection restricted to the target ids vocabulary int32[V'] (a lexical shortlist,
        `nmt.decode.shortlist`), gathered once per batch: {"kernel": float32 [readout_dim, V'], "bias": float32
        [V']}. `project(u, output=...)` then computes the logits of those ids, in that order, in float32 whatever
        the compute dtype: a shortlist's projection is small, and bfloat16 logits (8 significant bits) cost
        test BLEU at beam 5 (docs/BENCHMARKS.md)."""
        if self.tie_embeddings:
            kernel = tf.transpose(tf.gather(self.embedding.embeddings, vocabulary))  # [E, V']
            bias = tf.gather(self.projection_bias, vocabulary)
        else:
            kernel = tf.gather(self.projection.kernel, vocabulary, axis=1)  # [readout_dim, V']
            bias = tf.gather(self.projection.bias, vocabulary)
        return {"kernel": ops.cast(kernel, "float32"), "bias": ops.cast(bias, "float32")}

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            encoder_dim=self.encoder_dim,
            output_dim=self.output_dim,
            deep_output=self.deep_output,
            embedding_dropout=self.embedding_dropout,
            output_dropout=self.output_dropout,
            tie_embeddings=self.tie_embeddings,
            word_dropout=self.word_dropout,
        )
        return config


def initial_decoder_state(decoder, backward_state, batch):
    """The attention decoders' first state from the backward encoder's state ←h_1 [B, units]:
    "projection" tanh(←h_1·W_s) (Bahdanau et al.; `decoder.bridge`), "backward" ←h_1 itself (its
    size must equal the decoder's), "zeros" a zero state -> [B, H] in the compute dtype."""
    dtype = decoder.compute_dtype
    if decoder.decoder_init == "projection":
        return ops.cast(decoder.bridge(backward_state), dtype)
    if decoder.decoder_init == "backward":
        return ops.cast(backward_state, dtype)
    return tf.zeros([batch, decoder.units], dtype)
