"""Optimizer and learning-rate schedule from the `train:` section.

Schedules:
- "constant": the learning rate as given;
- "inverse_sqrt": linear warm-up to the learning rate over `warmup_steps`, then decay with
  1/sqrt(step) (Vaswani et al. 2017): lr · min(step / warmup, sqrt(warmup / step));
- "plateau": the learning rate as given, multiplied by `plateau_factor` by Keras'
  ReduceLROnPlateau when dev BLEU (or dev loss) stops improving (the callback is in nmt.train.trainer);
- "budget": linear warm-up over `warmup_steps`, then a cosine decay to `min_learning_rate` at the run's
  last step, which a time budget (`max_time`) sets by the pace of training: a callback sets the rate
  before every step (`nmt.train.callbacks.BudgetSchedule`).
Gradients are clipped by their global norm (`clip_norm`), Keras' `global_clipnorm`.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nmt")
class InverseSqrtSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lr · min(step / warmup, sqrt(warmup / step)), with step counted from 1."""

    def __init__(self, learning_rate, warmup_steps):
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0
        warmup = float(self.warmup_steps)
        return self.learning_rate * ops.minimum(step / warmup, ops.sqrt(warmup / step))

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


def learning_rate(cfg):
    """The optimizer's learning rate (a float or a schedule) for a TrainConfig."""
    if cfg.schedule == "inverse_sqrt":
        return InverseSqrtSchedule(cfg.learning_rate, cfg.warmup_steps)
    return cfg.learning_rate


def make_optimizer(cfg):
    """Adam or AdamW with global-norm clipping, from a TrainConfig."""
    common = dict(
        learning_rate=learning_rate(cfg),
        beta_1=cfg.beta_1,
        beta_2=cfg.beta_2,
        epsilon=cfg.epsilon,
        global_clipnorm=cfg.clip_norm,
    )
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(weight_decay=cfg.weight_decay, **common)
    return keras.optimizers.Adam(**common)
