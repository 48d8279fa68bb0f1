"""nmt.train.optim and nmt.train.callbacks: the inverse-square-root schedule against its formula, the optimizers the
config asks for, and the resumable plateau and early-stopping callbacks against uninterrupted ones
(a restart in the middle, with get_state/set_state, must act at the same epoch with the same numbers)."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

from nmt import config
from nmt.train import callbacks as cb
from nmt.train.optim import InverseSqrtSchedule, make_optimizer


def test_inverse_sqrt_schedule_equals_its_formula():
    lr, warmup = 2e-3, 400
    schedule = InverseSqrtSchedule(lr, warmup)
    steps = np.arange(0, 5000)
    got = np.array([float(schedule(int(s))) for s in steps[::37]])
    s = steps[::37] + 1.0  # Keras passes the optimizer's iterations (0 before the first update)
    want = lr * np.minimum(s / warmup, np.sqrt(warmup / s))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert float(schedule(warmup - 1)) == pytest.approx(lr)  # the peak, at the end of the warm-up
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(again, InverseSqrtSchedule) and float(again(1234)) == pytest.approx(float(schedule(1234)))


def test_the_optimizer_is_the_one_configured():
    cfg = config.load(
        None,
        [
            "train.optimizer=adamw",
            "train.weight_decay=0.01",
            "train.clip_norm=2.5",
            "train.schedule=inverse_sqrt",
            "train.warmup_steps=10",
            "train.learning_rate=0.004",
        ],
    )
    opt = make_optimizer(cfg.train)
    assert isinstance(opt, keras.optimizers.AdamW) and opt.weight_decay == pytest.approx(0.01)
    assert opt.global_clipnorm == pytest.approx(2.5)
    variable = keras.Variable(np.ones(3, "float32"))
    opt.build([variable])
    for _ in range(25):
        opt.apply_gradients([(keras.ops.ones(3), variable)])
    # the learning rate the optimizer reports is the schedule's at its step
    assert float(opt.learning_rate) == pytest.approx(0.004 * math.sqrt(10 / 26), rel=1e-5)
    plain = make_optimizer(config.load(None, ["train.clip_norm=null"]).train)
    assert type(plain) is keras.optimizers.Adam and plain.global_clipnorm is None


def _model(lr=0.1):
    model = keras.Sequential([keras.Input([1]), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


def _run(make_callback, scores, model, restart_after=None):
    """Feeds val_bleu scores epoch by epoch; with restart_after=k the callback is rebuilt after epoch k
    from get_state() (through JSON, as a checkpoint keeps it), as a resumed run does. -> (stopped epoch or
    None, learning rates after each epoch)."""
    callback = make_callback()
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, score in enumerate(scores):
        callback.on_epoch_end(epoch, {"val_bleu": score})
        rates.append(float(model.optimizer.learning_rate))
        if model.stop_training:
            return epoch, rates
        if restart_after == epoch:
            state = json.loads(json.dumps(callback.get_state()))
            callback = make_callback()
            callback.set_state(state)
            callback.set_model(model)
            callback.on_train_begin()
    return None, rates


SCORES = [10.0, 12.0, 11.5, 11.9, 13.0, 12.5, 12.9, 12.1, 11.0, 10.0]


@pytest.mark.parametrize("restart_after", [1, 2, 3, 5, 6])
def test_early_stopping_survives_a_restart(restart_after):
    make = lambda: cb.ResumableEarlyStopping(monitor="val_bleu", mode="max", patience=3)
    want, _ = _run(make, SCORES, _model())
    got, _ = _run(make, SCORES, _model(), restart_after=restart_after)
    assert want == 7  # best 13.0 at epoch 4, then 3 epochs without improvement
    assert got == want
    # a callback restarted without its state would wait 3 epochs from the restart
    if restart_after >= 5:
        plain, _ = _run(
            lambda: keras.callbacks.EarlyStopping(monitor="val_bleu", mode="max", patience=3),
            SCORES[: restart_after + 1],
            _model(),
        )
        assert plain is None


@pytest.mark.parametrize("restart_after", [1, 2, 5, 6])
def test_plateau_survives_a_restart(restart_after):
    make = lambda: cb.ResumableReduceLROnPlateau(monitor="val_bleu", mode="max", factor=0.5, patience=2, min_lr=1e-4)
    _, want = _run(make, SCORES, _model(0.1))
    _, got = _run(make, SCORES, _model(0.1), restart_after=restart_after)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert want[0] == pytest.approx(0.1) and want[-1] < 0.1  # it did reduce (epochs 2-3 and 5-6 plateaus)
    assert sorted(set(np.round(want, 6)), reverse=True) == [0.1, 0.05, 0.025, 0.0125][: len(set(np.round(want, 6)))]


def test_step_log_times_each_step_and_not_the_callbacks_between(tmp_path):
    """`seconds` in logs/steps.tsv covers the step (a 50 ms sleep inside the model's forward pass) and
    not the work other callbacks do between steps (a 500 ms sleep after each step)."""
    import csv
    import time

    import tensorflow as tf

    def slow(x):
        time.sleep(0.05)
        return x

    class Slow(keras.layers.Layer):
        def call(self, x):
            y = tf.numpy_function(slow, [x], tf.float32)
            y.set_shape(x.shape)
            return y

        def compute_output_shape(self, input_shape):
            return input_shape

    model = keras.Sequential([keras.Input([1]), Slow(), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")

    class BatchLoss(keras.callbacks.Callback):  # what training.py's batch_loss metric gives StepLog
        def on_train_batch_end(self, batch, logs=None):
            logs["batch_loss"] = logs["loss"]

    class Busy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.5)

    path = tmp_path / "steps.tsv"
    x = np.ones((8, 1), "float32")
    model.fit(x, x, batch_size=2, epochs=1, verbose=0, callbacks=[BatchLoss(), cb.StepLog(path), Busy()])
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    seconds = [float(r["seconds"]) for r in rows]
    assert all(0.05 <= s < 0.5 for s in seconds[1:]), seconds  # the first step also traces the function
