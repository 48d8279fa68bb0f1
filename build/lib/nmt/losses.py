"""Masked token-level loss and metrics for teacher-forced training.

Targets are int32 [B, T] with PAD = 0 at padded positions; logits float32 [B, T, V]. Padded
positions contribute nothing to the loss or the metrics; the loss is the mean over real tokens.

Under a distribution strategy each of the R replicas sees only its share of the global batch.
Keras sums the replicas' gradients, so each replica's loss is its own token sum divided by the
token count of the *global* batch (all-reduced): the summed gradient is then exactly the
gradient of the global batch's mean, whatever the replicas' token counts, as on one device
(averaging per-replica means instead would weight a replica's tokens by 1/its own count, and
summing them would multiply the gradient by R). The metrics all-reduce their sums likewise, so
accuracy, perplexity and the per-step loss are those of the global batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

PAD_ID = 0


def replica_sum(value):
    """The sum of `value` over the replicas in sync, inside a distribution strategy's replica
    context; `value` itself elsewhere (no strategy, one replica, or cross-replica context)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _token_terms(y_true, y_pred):
    """-> (nll [B, T], mean of -log p over the vocabulary [B, T], mask [B, T] float32)."""
    y_true = tf.cast(y_true, tf.int32)
    log_probs = tf.nn.log_softmax(tf.cast(y_pred, tf.float32), axis=-1)  # [B, T, V]
    nll = -tf.gather(log_probs, y_true, batch_dims=2)  # [B, T]
    mask = tf.cast(tf.not_equal(y_true, PAD_ID), tf.float32)
    return nll, log_probs, mask


@keras.saving.register_keras_serializable(package="nmt")
class MaskedCrossEntropy(keras.losses.Loss):
    """Cross-entropy with label smoothing ε, averaged over non-pad target tokens.

    Per token: (1 − ε)·(−log p(y)) + ε·mean_v(−log p(v)) (smoothing spread uniformly over the
    vocabulary, as in Szegedy et al. 2016 and Vaswani et al. 2017).
    """

    def __init__(self, label_smoothing=0.0, name="masked_cross_entropy", **kwargs):
        kwargs.setdefault("reduction", None)
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        nll, log_probs, mask = _token_terms(y_true, y_pred)
        per_token = nll
        if self.label_smoothing:
            uniform = -tf.reduce_mean(log_probs, axis=-1)  # [B, T]
            per_token = (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform
        tokens = tf.stop_gradient(replica_sum(tf.reduce_sum(mask)))  # of the global batch
        return tf.reduce_sum(per_token * mask) / tf.maximum(tokens, 1.0)

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing)
        return config


@keras.saving.register_keras_serializable(package="nmt")
class MaskedAccuracy(keras.metrics.Metric):
    """Share of non-pad target tokens whose argmax prediction is right."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.cast(y_true, tf.int32)
        mask = tf.cast(tf.not_equal(y_true, PAD_ID), tf.float32)
        hits = tf.cast(tf.equal(tf.argmax(y_pred, axis=-1, output_type=tf.int32), y_true), tf.float32)
        self.correct.assign_add(replica_sum(tf.reduce_sum(hits * mask)))
        self.count.assign_add(replica_sum(tf.reduce_sum(mask)))

    def result(self):
        return self.correct / tf.maximum(self.count, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="nmt")
class Perplexity(keras.metrics.Metric):
    """exp of the mean negative log-likelihood per non-pad token (no label smoothing)."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        nll, _, mask = _token_terms(y_true, y_pred)
        self.total.assign_add(replica_sum(tf.reduce_sum(nll * mask)))
        self.count.assign_add(replica_sum(tf.reduce_sum(mask)))

    def result(self):
        return tf.exp(self.total / tf.maximum(self.count, 1.0))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="nmt")
class BatchLoss(keras.metrics.Metric):
    """The training loss of the last batch alone (Keras logs a running mean over the epoch).

    Under a distribution strategy, the loss of the global batch (each replica's loss is its share
    of it; their sum is held by every replica). Used for per-step loss logs.
    """

    def __init__(self, label_smoothing=0.0, name="batch_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.loss_fn = MaskedCrossEntropy(label_smoothing)
        self.value = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="value", aggregation="mean")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.value.assign(replica_sum(tf.cast(self.loss_fn(y_true, y_pred), tf.float32)))

    def result(self):
        return tf.identity(self.value)

    def reset_state(self):
        self.value.assign(0.0)

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.loss_fn.label_smoothing)
        return config
