"""The masked loss and metrics against NumPy (float64), on one device and split across replicas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from nmt.train.losses import BatchLoss, MaskedAccuracy, MaskedCrossEntropy, Perplexity

ROOT = Path(__file__).resolve().parents[2]


def batch(seed, rows=5, length=7, vocab=11):
    """Random logits [B, T, V] and targets [B, T] padded with 0 after a random length >= 1."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(rows, length, vocab)).astype("float32")
    targets = rng.integers(1, vocab, size=(rows, length)).astype("int32")
    lengths = rng.integers(1, length + 1, size=rows)
    targets[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return logits, targets


def numpy_terms(logits, targets, eps):
    x = logits.astype("float64")
    log_p = x - x.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, targets[..., None].astype("int64"), -1)[..., 0]
    per_token = (1 - eps) * nll + eps * -log_p.mean(-1)
    mask = targets != 0
    hits = (logits.argmax(-1) == targets) & mask
    return per_token[mask].sum(), nll[mask].sum(), hits.sum(), mask.sum()


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_loss_is_the_mean_over_real_tokens(eps):
    logits, targets = batch(0)
    loss_sum, _, _, tokens = numpy_terms(logits, targets, eps)
    got = float(MaskedCrossEntropy(eps)(targets, logits))
    np.testing.assert_allclose(got, loss_sum / tokens, rtol=1e-6)


def test_padding_changes_nothing():
    logits, targets = batch(1)
    padded_logits = np.concatenate([logits, np.random.default_rng(2).normal(size=(5, 3, 11)).astype("float32")], 1)
    padded_targets = np.concatenate([targets, np.zeros((5, 3), "int32")], 1)
    loss = MaskedCrossEntropy(0.1)
    np.testing.assert_allclose(float(loss(padded_targets, padded_logits)), float(loss(targets, logits)), rtol=1e-6)


def test_an_all_padding_batch_has_zero_loss_not_nan():
    logits, _ = batch(3)
    assert float(MaskedCrossEntropy(0.1)(np.zeros((5, 7), "int32"), logits)) == 0.0


def test_metrics_accumulate_over_batches_and_batch_loss_keeps_the_last():
    (l1, t1), (l2, t2) = batch(4), batch(5, rows=3)
    accuracy, perplexity, last = MaskedAccuracy(), Perplexity(), BatchLoss(0.1)
    for logits, targets in ((l1, t1), (l2, t2)):
        for metric in (accuracy, perplexity, last):
            metric.update_state(targets, logits)
    s1, n1, h1, c1 = numpy_terms(l1, t1, 0.1)
    s2, n2, h2, c2 = numpy_terms(l2, t2, 0.1)
    np.testing.assert_allclose(float(accuracy.result()), (h1 + h2) / (c1 + c2), rtol=1e-6)
    np.testing.assert_allclose(float(perplexity.result()), np.exp((n1 + n2) / (c1 + c2)), rtol=1e-5)
    np.testing.assert_allclose(float(last.result()), s2 / c2, rtol=1e-6)


def numpy_gradient(logits, targets, eps):
    """d (mean loss over real tokens) / d logits, written out independently of the code:
    (softmax(z) − (1 − ε)·onehot(y) − ε/V)·mask / tokens, in float64."""
    x = logits.astype("float64")
    p = np.exp(x - x.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    onehot = np.eye(x.shape[-1])[targets]
    mask = (targets != 0)[..., None]
    return (p - (1 - eps) * onehot - eps / x.shape[-1]) * mask / mask.sum()


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_gradient_matches_the_written_out_softmax_gradient(eps):
    logits, targets = batch(7)
    x = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = MaskedCrossEntropy(eps)(targets, x)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), numpy_gradient(logits, targets, eps), atol=1e-7)


def test_loss_and_gradient_equal_keras_categorical_cross_entropy_on_real_tokens():
    """Keras' own smoothed cross-entropy (one-hot labels, from logits) over the non-pad tokens."""
    import keras

    logits, targets = batch(8)
    mask = targets != 0
    x = tf.constant(logits)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = MaskedCrossEntropy(0.1)(targets, x)
        real = tf.boolean_mask(x, mask)
        theirs = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
            tf.one_hot(targets[mask], logits.shape[-1]), real
        )
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(ours, x).numpy(), tape.gradient(theirs, x).numpy(), atol=1e-7)


def test_terms_shared_by_loss_and_metrics_follow_their_inputs():
    """The loss and the metrics share one computation per (targets, logits) pair: a metric fed the
    same logits with other targets, or a loss with another ε, still gets its own values."""
    logits, targets = batch(9)
    other = np.where(targets != 0, (targets % 10) + 1, 0).astype("int32")
    x, t = tf.constant(logits), tf.constant(targets)
    perplexity = Perplexity()

    @tf.function
    def step(x, t, u):
        loss = MaskedCrossEntropy(0.1)(t, x)
        plain = MaskedCrossEntropy(0.0)(t, x)
        perplexity.update_state(u, x)
        return loss, plain, perplexity.result()

    loss, plain, perplexity = step(x, t, tf.constant(other))
    s, _, _, n = numpy_terms(logits, targets, 0.1)
    _, nll, _, _ = numpy_terms(logits, targets, 0.0)
    _, nll_other, _, n_other = numpy_terms(logits, other, 0.0)
    np.testing.assert_allclose(float(loss), s / n, rtol=1e-6)
    np.testing.assert_allclose(float(plain), nll / n, rtol=1e-6)
    np.testing.assert_allclose(float(perplexity), np.exp(nll_other / n_other), rtol=1e-5)


REPLICAS = """
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
from nmt.train.losses import BatchLoss, MaskedAccuracy, MaskedCrossEntropy, Perplexity

data = np.load(sys.argv[2])
logits, targets, split = data["logits"], data["targets"], int(data["split"])
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    metrics = [MaskedAccuracy(), Perplexity(), BatchLoss(0.1)]
halves = [(logits[:split], targets[:split]), (logits[split:], targets[split:])]
values = strategy.experimental_distribute_values_from_function(lambda ctx: halves[ctx.replica_id_in_sync_group])

@tf.function
def step(inputs):
    def replica(inputs):
        x, y = inputs
        x = tf.constant(x) if not isinstance(x, tf.Tensor) else x
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = MaskedCrossEntropy(0.1)(y, x)
        for metric in metrics:
            metric.update_state(y, x)
        return loss, tape.gradient(loss, x), [m.result() for m in metrics]
    return strategy.run(replica, args=(inputs,))

loss, grad, results = step(values)
print(json.dumps({
    "losses": [float(v) for v in strategy.experimental_local_results(loss)],
    "grad": np.concatenate([g.numpy() for g in strategy.experimental_local_results(grad)]).tolist(),
    "results": [[float(v) for v in strategy.experimental_local_results(r)] for r in results],
}))
"""


@pytest.mark.slow
def test_replicas_add_up_to_the_global_batch(tmp_path):
    """Two replicas (logical CPU devices) with unequal shares of a batch: their losses add up to the
    global batch's mean loss, their gradients are the global loss's gradient, and every replica's
    metrics are those of the global batch."""
    import json

    logits, targets = batch(6, rows=6, length=9)
    targets[:2, 2:] = 0  # the first replica's share has far fewer tokens than the second's
    split = 2
    np.savez(tmp_path / "batch.npz", logits=logits, targets=targets, split=split)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", REPLICAS, str(ROOT), str(tmp_path / "batch.npz")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])

    loss_sum, nll_sum, hits, tokens = numpy_terms(logits, targets, 0.1)
    assert (
        numpy_terms(logits[:split], targets[:split], 0.1)[3] * 3 < numpy_terms(logits[split:], targets[split:], 0.1)[3]
    )
    np.testing.assert_allclose(sum(got["losses"]), loss_sum / tokens, rtol=1e-6)
    x = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(x)
        global_loss = MaskedCrossEntropy(0.1)(targets, x)
    np.testing.assert_allclose(np.array(got["grad"]), tape.gradient(global_loss, x).numpy(), atol=1e-7)
    accuracy, perplexity, last = got["results"]
    np.testing.assert_allclose(accuracy, [hits / tokens] * 2, rtol=1e-6)
    np.testing.assert_allclose(perplexity, [np.exp(nll_sum / tokens)] * 2, rtol=1e-5)
    np.testing.assert_allclose(last, [loss_sum / tokens] * 2, rtol=1e-6)
