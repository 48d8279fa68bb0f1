"""Additive (Bahdanau) attention, mask-aware.

Bahdanau et al. 2015, appendix A.1.2: for decoder state s_{i-1} and encoder states h_j,

    e_ij = v_aᵀ · tanh(W_a·s_{i-1} + U_a·h_j)        score (no biases, as in the paper)
    α_ij = softmax_j(e_ij) over the unpadded positions j, exactly 0 on padding
    c_i  = Σ_j α_ij · h_j                           context vector

U_a·h_j does not depend on the decoder: `project_keys` computes it once per sentence; a decoder
step computes the query W_a·s_{i-1} (`project_query`, or fused with its own matmul on s_{i-1}) and
`attend` does element-wise work over [B, S, A] and two small matmuls.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

_NEG = -1e9  # score given to padded positions before the softmax (exp underflows to exactly 0)


def additive_attention(projected_query, keys, values, mask, score_vector):
    """One step. projected_query W_a·s [B, A], keys U_a·h_j [B, S, A], values h_j [B, S, D],
    mask [B, S] (float 0/1 or bool; 1 = real position), score_vector v_a [A].

    Returns context [B, D] (the values' dtype) and weights float32 [B, S]: a distribution over the
    unpadded positions, exactly 0 on padded ones (all 0 for an all-padding row). A pure function of
    its inputs (no variable reads), so a hand-written gradient can call it.
    """
    units = keys.shape[-1]
    hidden = tf.tanh(keys + projected_query[:, None, :])  # [B, S, A]
    scores = tf.matmul(tf.reshape(hidden, [-1, units]), score_vector[:, None])  # [B·S, 1]
    scores = tf.reshape(tf.cast(scores, tf.float32), tf.shape(keys)[:2])  # [B, S]
    mask = tf.cast(mask, tf.float32)
    weights = tf.nn.softmax(scores + (1.0 - mask) * _NEG, axis=-1)  # padding: exp(-1e9) = 0
    weights = weights * mask  # [B, S], exact zeros on padding, even for an all-padding row
    w = tf.cast(weights, values.dtype)
    context = tf.matmul(w[:, None, :], values)[:, 0, :]  # Σ_j α_j·h_j: [B, D]
    return context, weights


@keras.saving.register_keras_serializable(package="nmt")
class AdditiveAttention(keras.layers.Layer):
    """Weights `query_kernel` W_a [query_dim, A], `key_kernel` U_a [value_dim, A], `score_vector`
    v_a [A]. Sizes are given up front so the weights exist as soon as the layer is built.

    `project_keys(values [B, S, value_dim]) -> keys [B, S, A]`, once per sentence;
    `attend(projected_query [B, A], keys, values, mask [B, S]) -> (context [B, value_dim],
    weights float32 [B, S])`, once per decoder step, after `project_query(query [B, query_dim])`;
    `call(query, values, value_mask=None)` does all three (for standalone use).
    """

    def __init__(self, units, query_dim, value_dim, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.query_dim = int(query_dim)
        self.value_dim = int(value_dim)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape=None):
        self.query_kernel = self.add_weight(
            name="query_kernel",
            shape=(self.query_dim, self.units),
            initializer=self.kernel_initializer,
        )
        self.key_kernel = self.add_weight(
            name="key_kernel",
            shape=(self.value_dim, self.units),
            initializer=self.kernel_initializer,
        )
        self.score_vector = self.add_weight(
            name="score_vector", shape=(self.units,), initializer=self.kernel_initializer
        )
        self.built = True

    def _w(self, variable):
        return ops.cast(variable, self.compute_dtype)

    def project_keys(self, values):
        """values [B, S, value_dim] -> keys U_a·h_j [B, S, A]."""
        values = ops.cast(values, self.compute_dtype)
        return ops.matmul(values, self._w(self.key_kernel))

    def project_query(self, query):
        """query [B, query_dim] -> W_a·s [B, A]."""
        query = ops.cast(query, self.compute_dtype)
        return ops.matmul(query, self._w(self.query_kernel))

    def attend(self, projected_query, keys, values, mask):
        """One step: `additive_attention` with this layer's score vector."""
        return additive_attention(projected_query, keys, values, mask, self._w(self.score_vector))

    def call(self, query, values, value_mask=None):
        """query [B, query_dim], values [B, S, value_dim], value_mask [B, S] (None: all real)
        -> (context [B, value_dim], weights float32 [B, S])."""
        values = ops.cast(values, self.compute_dtype)
        if value_mask is None:
            value_mask = tf.ones(tf.shape(values)[:2], dtype=tf.float32)
        return self.attend(self.project_query(query), self.project_keys(values), values, value_mask)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            query_dim=self.query_dim,
            value_dim=self.value_dim,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
