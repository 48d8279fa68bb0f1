"""Additive (Bahdanau) attention, mask-aware.

Bahdanau et al. 2015, appendix A.1.2: for decoder state s_{i-1} and encoder states h_j,

    e_ij = v_aᵀ · tanh(W_a·s_{i-1} + U_a·h_j)        score (no biases, as in the paper)
    α_ij = softmax_j(e_ij) over the unpadded positions j, exactly 0 on padding
    c_i  = Σ_j α_ij · h_j                           context vector

U_a·h_j does not depend on the decoder: `project_keys` computes it once per sentence; a decoder
step computes the query W_a·s_{i-1} (`project_query`, or fused with its own matmul on s_{i-1}) and
`attend` does element-wise work over [B, S, A] and two small matmuls.

The same layer also scores many queries at once (`attend_all`, for attention that reads the
decoder GRU's outputs after the recurrence, `nmt.model.luong`), with one of three scores:

    additive:    e_tj = v_aᵀ · tanh(W_a·q_t + U_a·h_j)      (as above)
    dot:         e_tj = (W_a·q_t) · (U_a·h_j)               (Luong's "general", low rank)
    scaled_dot:  e_tj = (W_a·q_t) · (U_a·h_j) / √A          (Vaswani et al. 2017)
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from nmt.config import ATTENTION_SCORES as SCORES

_NEG = -1e9  # score given to padded positions before the softmax (exp underflows to exactly 0)


def _masked_softmax(scores, mask):
    """scores float32 [..., S], mask [B, S] broadcast over the middle axes -> weights float32
    [..., S]: a distribution over the unpadded positions, exactly 0 on padded ones."""
    mask = tf.cast(mask, tf.float32)
    while len(mask.shape) < len(scores.shape):
        mask = mask[:, None]
    weights = tf.nn.softmax(scores + (1.0 - mask) * _NEG, axis=-1)  # padding: exp(-1e9) = 0
    return weights * mask  # exact zeros on padding, even for an all-padding row


def attention_all(projected_queries, keys, values, mask, score, score_vector=None):
    """All target positions at once. projected_queries W_a·q_t [B, T, A], keys U_a·h_j [B, S, A],
    values h_j [B, S, C], mask [B, S] (1 = real position), score one of SCORES, score_vector v_a [A]
    (additive only). Returns context [B, T, C] (the values' dtype) and weights float32 [B, T, S]."""
    units = keys.shape[-1]
    if score == "additive":
        hidden = tf.tanh(keys[:, None, :, :] + projected_queries[:, :, None, :])  # [B, T, S, A]
        scores = tf.tensordot(hidden, score_vector, [[3], [0]])  # [B, T, S]
    else:
        scores = tf.matmul(projected_queries, keys, transpose_b=True)  # [B, T, S]
    scores = tf.cast(scores, tf.float32)
    if score == "scaled_dot":
        scores = scores / math.sqrt(units)
    weights = _masked_softmax(scores, mask)  # [B, T, S]
    context = tf.matmul(tf.cast(weights, values.dtype), values)  # Σ_j α_tj·h_j: [B, T, C]
    return context, weights


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
    weights = _masked_softmax(scores, mask)  # [B, S]
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

    def __init__(self, units, query_dim, value_dim, kernel_initializer="glorot_uniform", score="additive", **kwargs):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"score: received {score!r}, expected one of {', '.join(SCORES)}")
        self.score = score
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
        self.score_vector = None
        if self.score == "additive":
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
        """query [..., query_dim] -> W_a·q [..., A]."""
        query = ops.cast(query, self.compute_dtype)
        if len(query.shape) == 2:
            return ops.matmul(query, self._w(self.query_kernel))
        return tf.tensordot(query, self._w(self.query_kernel), [[-1], [0]])

    def attend(self, projected_query, keys, values, mask):
        """One step: `additive_attention` with this layer's score vector (additive score only)."""
        return additive_attention(projected_query, keys, values, mask, self._w(self.score_vector))

    def attend_all(self, queries, keys, values, mask):
        """queries [B, T, query_dim], keys from `project_keys` [B, S, A], values [B, S, value_dim],
        mask [B, S] -> (context [B, T, value_dim], weights float32 [B, T, S]) with this layer's
        score; T = 1 is one decoding step."""
        vector = None if self.score_vector is None else self._w(self.score_vector)
        return attention_all(self.project_query(queries), keys, values, mask, self.score, vector)

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
            score=self.score,
        )
        return config
