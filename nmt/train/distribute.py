"""Running training under tf.distribute: the strategy, each replica's share of a global batch, and
the workarounds Keras 3's fit needs under a strategy.

Every place where training leans on a TensorFlow/Keras limitation or a private Keras API to run
under tf.distribute is in this module, each with its reason, the upstream issue where one was
found, and what to recheck on an upgrade. Written against the pins of requirements.txt
(tensorflow 2.21.0, keras 3.15.1). After an upgrade, run tests/train/test_distribute.py's replica tests
(test_mirrored_strategy_with_two_replicas_matches_one and
test_two_multi_worker_processes_match_a_single_worker): they compare every step's loss with a
single-replica run, and show whether a workaround below can go.

Where the data comes from: every worker builds the same seeded stream of global batches
(`nmt.train.batches.make_training_stream`); `training_input` gives replica r of R rows
[r·⌈B/R⌉, (r+1)·⌈B/R⌉) of each batch, so that batch n means the same rows whatever R is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import keras
import tensorflow as tf

from nmt.errors import UserError

# train.distribute -> the strategy's class name, for the "distribution: ..." line.
STRATEGY_CLASSES = {"mirrored": "MirroredStrategy", "multi_worker": "MultiWorkerMirroredStrategy"}


def make_strategy(name: str) -> tf.distribute.Strategy:
    """-> the strategy for train.distribute: "default" (TensorFlow's default, one replica),
    "mirrored" (all local GPUs) or "multi_worker" (the cluster in TF_CONFIG, checked here)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise UserError("train.distribute=multi_worker needs the TF_CONFIG environment variable")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError:
            raise UserError("TF_CONFIG: not valid JSON") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def same_on_every_worker(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` with tf.data options that keep it the same on every worker: deterministic order, and
    no auto-sharding. -> the dataset (same elements, element_spec unchanged).

    Why: under MultiWorkerMirroredStrategy tf.data shards a dataset across workers by default
    (AutoShardPolicy.AUTO: by file where it can, else DATA, every worker keeping every n-th
    element; tensorflow/tensorflow#36846, tensorflow/tensorflow#45157 explain the policies). Here
    each worker must read the whole seeded stream and take its own rows of every batch
    (`training_input`), and evaluate the whole dev set, so sharding is off. `deterministic` is
    tf.data's default; it is set so that no option elsewhere can trade the order (on which exact
    resume and the replica tests depend) for speed. No upstream bug: a choice of this design.
    Recheck on an upgrade: the default of `tf.data.Options().experimental_distribute` and that
    Keras' fit still distributes the validation set with the dataset's own options.
    """
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


def training_input(strategy: tf.distribute.Strategy, stream: tf.data.Dataset):
    """The endless training stream of global batches ((src, tgt_in), tgt_out), split across
    replicas. -> `stream` itself for one replica; else a DistributedDataset whose replica r of R
    gets rows [r·⌈B/R⌉, (r+1)·⌈B/R⌉) of each global batch of B rows (the last replica may get
    fewer), each a ((src [b, S], tgt_in [b, T]), tgt_out [b, T]) batch with b <= ⌈B/R⌉.

    Why not hand fit the batched dataset: Keras then calls `experimental_distribute_dataset`,
    which splits each batch across the replicas as a best effort and does not always split it
    (seen by OpenNMT-tf with token-based batches: OpenNMT/OpenNMT-tf#542); our bucketed batches
    have varying B, and a global batch must mean the same rows whatever the number of workers
    and replicas. So each input pipeline takes its replicas' rows itself.
    Recheck on an upgrade: that Keras' TFEpochIterator still passes a tf.distribute
    DistributedDataset through as it is (keras/src/backend/tensorflow/trainer.py), and the fields
    of tf.distribute.InputContext used below.
    """
    stream = same_on_every_worker(stream)
    if strategy.num_replicas_in_sync == 1:
        return stream

    def per_replica(ctx: tf.distribute.InputContext):
        replicas = ctx.num_replicas_in_sync
        local = replicas // ctx.num_input_pipelines
        first = ctx.input_pipeline_id * local

        def take(inputs, target, r):
            rows = tf.shape(target)[0]
            size = (rows + replicas - 1) // replicas
            start = tf.minimum(tf.cast(r, tf.int32) * size, rows)
            end = tf.minimum(start + size, rows)
            (src, tgt_in) = inputs
            return (src[start:end], tgt_in[start:end]), target[start:end]

        return stream.flat_map(
            lambda inputs, target: tf.data.Dataset.range(first, first + local).map(lambda r: take(inputs, target, r))
        )

    return strategy.distribute_datasets_from_function(per_replica)


def patch_fit(model: keras.Model, name: str, local_batch: Callable[[], object]) -> None:
    """Adapts a compiled model's fit to the strategy train.distribute=`name` (not "default");
    call it inside `strategy.scope()`. `local_batch()` -> one training batch
    ((src [B, S], tgt_in [B, T]), tgt_out [B, T]), read only here. -> None; the model is changed
    in place (two private Keras APIs, and the step functions under "multi_worker").

    1. Metrics and loss built from a local batch. Under a strategy, Keras' fit builds them first
       (`Trainer._maybe_symbolic_build`, TensorFlow backend) from the first *distributed* batch,
       averaged over the replicas with strategy.reduce("MEAN"), which fails for our nested int32
       batches (seen under MultiWorkerMirroredStrategy). So `Trainer._symbolic_build` runs here
       on a batch that is not distributed, and the hook becomes a no-op. That build step came
       with keras-team/keras#19969 (rolled back, then landed again: keras-team/keras#20045); no
       upstream issue about this failure was found.
       Recheck on an upgrade: that `_symbolic_build(data_batch=...)` and `_maybe_symbolic_build`
       still exist with these signatures (keras/src/backend/tensorflow/trainer.py); then try
       without this patch.
    2. Under "multi_worker", `vector_logs` (its docstring says why).
    """
    model._symbolic_build(data_batch=local_batch())
    model._maybe_symbolic_build = lambda *args, **kwargs: None
    if name == "multi_worker":
        vector_logs(model)


def vector_logs(model: keras.Model) -> None:
    """Makes the model's train_step and test_step return each log value as a [1] vector instead of
    a scalar. -> None; the model is changed in place.

    Why: Keras 3's fit reduces the step logs across workers with strategy.reduce("MEAN", v,
    axis=0) (`reduce_per_replica`, keras/src/backend/tensorflow/trainer.py), which fails on the
    scalar metric results under MultiWorkerMirroredStrategy ("Invalid reduction dimension 0 for
    input with 0 dimensions": tensorflow/tensorflow#72388, also keras-team/keras#20585). On [1]
    vectors that reduction gives back the scalar (the values are already the same on every
    replica).
    Recheck on an upgrade: whether those issues are fixed (`reduce_per_replica` with reduction
    "auto"); if so, drop this and check that the multi-worker test still passes.
    """
    for name in ("train_step", "test_step"):
        step = getattr(model, name)

        def as_vectors(data, step=step):
            return {k: tf.reshape(v, [1]) for k, v in step(data).items()}

        setattr(model, name, as_vectors)
