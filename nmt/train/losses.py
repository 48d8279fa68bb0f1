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

import threading

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


def smoothed_cross_entropy(logits, targets, label_smoothing):
    """logits float32 [..., V], targets int32 [...] -> (loss [...], nll [...]) per position:

        nll  = −log p(y)               = lse(z) − z_y
        loss = (1 − ε)·nll + ε·mean_v(−log p(v)) = lse(z) − (1 − ε)·z_y − ε·mean_v(z_v)

    with p = softmax(z) and lse the log-sum-exp. The gradient is written out, d loss/dz =
    p − (1 − ε)·onehot(y) − ε/V and d nll/dz = p − onehot(y), from the softmax kept by the forward
    pass: one exp over the logits instead of log_softmax's forward and backward passes and the
    dense scatter of a gather's gradient (timings: docs/BENCHMARKS.md, "The loss").
    """
    eps = float(label_smoothing)
    vocab = tf.cast(tf.shape(logits)[-1], tf.float32)
    rows = tf.reshape(targets, [-1, 1])

    @tf.custom_gradient
    def terms(z):
        flat = tf.reshape(z, [-1, tf.shape(z)[-1]])  # [N, V]
        top = tf.reduce_max(flat, axis=-1, keepdims=True)  # [N, 1]
        exps = tf.exp(flat - top)
        total = tf.reduce_sum(exps, axis=-1, keepdims=True)
        lse = tf.reshape(tf.math.log(total) + top, tf.shape(targets))
        z_y = tf.reshape(tf.gather(flat, rows, batch_dims=1), tf.shape(targets))
        nll = lse - z_y
        loss = nll if not eps else lse - (1.0 - eps) * z_y - eps * tf.reduce_mean(z, axis=-1)

        def grad(d_loss, d_nll):
            d_loss = tf.zeros_like(loss) if d_loss is None else d_loss
            d_nll = tf.zeros_like(nll) if d_nll is None else d_nll
            g_all = tf.reshape(d_loss + d_nll, [-1, 1])  # both terms' p
            g_target = tf.reshape((1.0 - eps) * d_loss + d_nll, [-1])  # their onehot(y)
            d = exps * (g_all / total)
            if eps:
                d -= (eps / vocab) * tf.reshape(d_loss, [-1, 1])
            index = tf.concat([tf.range(tf.shape(rows)[0])[:, None], rows], axis=1)
            d = tf.tensor_scatter_nd_sub(d, index, g_target)
            return tf.reshape(d, tf.shape(z))

        return (loss, nll), grad

    return terms(logits)


# The loss and the metrics of one training step are given the same (targets, logits) tensors; the
# per-token terms are computed once for them (TensorFlow's graph optimizer does not merge the
# copies, and over a large vocabulary they are a sizeable part of a step; docs/BENCHMARKS.md). One
# slot per thread (a distribution strategy runs each replica in its own thread), matched by object
# identity, so a miss (another batch, another trace) only recomputes; tensors are immutable.
_cache = threading.local()


def _token_terms(y_true, y_pred, label_smoothing=None):
    """-> (loss [B, T] with label smoothing ε, nll [B, T], mask [B, T] float32); label_smoothing
    None: only nll and mask are wanted (the loss term is that of whichever ε was computed)."""
    targets, logits, eps, terms = getattr(_cache, "last", (None, None, None, None))
    if y_true is targets and y_pred is logits and label_smoothing in (None, eps):
        return terms
    eps = label_smoothing or 0.0
    targets = tf.cast(y_true, tf.int32)
    loss, nll = smoothed_cross_entropy(tf.cast(y_pred, tf.float32), targets, eps)
    terms = (loss, nll, tf.cast(tf.not_equal(targets, PAD_ID), tf.float32))
    _cache.last = (y_true, y_pred, eps, terms)
    return terms


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

    def __call__(self, y_true, y_pred, sample_weight=None):
        with tf.name_scope(self.name):
            return self.call(y_true, y_pred)

    def call(self, y_true, y_pred):
        per_token, _, mask = _token_terms(y_true, y_pred, self.label_smoothing)
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
        _, nll, mask = _token_terms(y_true, y_pred)
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
