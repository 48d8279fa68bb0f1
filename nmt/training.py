"""Training on Keras fit: corpus -> tokenizer -> tf.data -> model -> fit -> export.

The run directory (RUN_DIR) ends up with:

    config.yaml              the resolved config (all defaults filled in)
    tokenizer/               SentencePiece model(s) + tokenizer.json (nmt.tokenizer)
    checkpoints/             atomic last/best checkpoints (nmt.checkpoint)
    model.keras              the best model by dev BLEU (the last one without a dev set)
    export/                  the text-to-text SavedModel (nmt.translator)
    logs/train.csv           one row per epoch (Keras CSVLogger): loss, val_loss, val_bleu, ...
    logs/steps.tsv           the loss and learning rate of every step
    logs/tensorboard/        TensorBoard: train/validation curves, dev BLEU, sample translations

Epochs: an epoch is `train.steps_per_epoch` steps (default: the batches of one pass over the
training data, counted once at the start). The training batches are one endless, seeded stream
(`nmt.data.make_training_stream`: pass e is shuffled with the seed pair (data.seed, e + 1), so
batch n is the same in every process whatever was iterated before), and the position in the
data is the global step: each fit call, a resumed run's included, starts the stream at its
step (skipping whole passes without reading them) and sees exactly the batches the
uninterrupted run would have seen. With model, optimizer (incl. its step and learning rate),
dropout seed state and callback counters restored, the losses after a resume equal those of an
uninterrupted run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf
import yaml

from nmt import callbacks as cb
from nmt import config as config_lib
from nmt import evaluation, precision, rundir
from nmt.checkpoint import CheckpointStore
from nmt.corpus import Corpus
from nmt.data import make_dataset, make_training_stream
from nmt.errors import UserError
from nmt.files import atomic_write_text, write_error
from nmt.losses import BatchLoss, MaskedAccuracy, MaskedCrossEntropy, Perplexity
from nmt.model import build_model
from nmt.optim import make_optimizer
from nmt.tokenizer import META_FILE, Tokenizers, train_tokenizers

# Keys that may change between a run and its resumption (they do not change the computation).
RESUMABLE_CHANGES = {("train", "epochs"), ("train", "max_time"), ("train", "max_steps"), ("train", "verbose")}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    epochs: int
    stopped: str  # "completed", "early_stopping", "max_time", "max_steps"
    dev_scores: object | None
    test_scores: object | None


# ------------------------------------------------------------------------------------------- run dir


def _config_differences(old: dict, new: dict) -> list[str]:
    diffs = []
    for section in new:
        for key in new[section]:
            a = (old.get(section) or {}).get(key, "<missing>")
            b = new[section][key]
            if a != b:
                diffs.append(f"{section}.{key}: {a!r} -> {b!r}")
    return diffs


def prepare_run_dir(cfg: config_lib.Config, run_dir: Path, resume: bool, overwrite: bool) -> bool:
    """Checks the run directory against the config; writes config.yaml. -> whether there is a
    checkpoint to resume from (False for a fresh start, and for --resume of a run that was stopped
    before its first checkpoint, which starts again from step 0 with the same config)."""
    config_path = run_dir / rundir.CONFIG_FILE
    has_checkpoint = (run_dir / rundir.CHECKPOINTS_DIR / "last.json").is_file()
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--run-dir {run_dir}: not a directory")
    if overwrite and not resume:
        removed = rundir.clear(run_dir)
        if removed:
            log(f"--overwrite: removed {', '.join(removed)} from {run_dir}")
        has_checkpoint = False
    elif config_path.is_file():
        try:
            old = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            raise UserError(
                f"{config_path}: not a config written by train.py; use another --run-dir, or --overwrite to start over"
            ) from None
        if not isinstance(old, dict):
            raise UserError(
                f"{config_path}: not a config written by train.py; use another --run-dir, or --overwrite to start over"
            )
        diffs = [
            d
            for d in _config_differences(old, cfg.to_dict())
            if not (resume and tuple(d.split(":")[0].split(".")) in RESUMABLE_CHANGES)
        ]
        if diffs:
            raise UserError(
                f"{config_path} holds a different config ({'; '.join(diffs[:3])}"
                f"{'; ...' if len(diffs) > 3 else ''}); use another --run-dir, or --overwrite to start over"
            )
        if has_checkpoint and not resume:
            raise UserError(
                f"{run_dir} already holds a training run; pass --resume to continue it or --overwrite to start over"
            )
    if resume and not has_checkpoint:
        if not config_path.is_file():
            raise UserError(
                f"--resume: {run_dir} holds no training run to resume (no {rundir.CONFIG_FILE}); "
                "start it without --resume"
            )
        log(
            f"--resume: {run_dir} has no checkpoint yet (the run stopped before its first one); "
            "starting from step 0 with its config"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / rundir.LOGS_DIR).mkdir(exist_ok=True)
    except OSError as error:
        raise UserError(f"--run-dir {run_dir}: cannot create it ({error.strerror or error})") from None
    atomic_write_text(config_path, cfg.to_yaml())
    return resume and has_checkpoint


def load_or_train_tokenizers(cfg: config_lib.Config, corpus: Corpus, run_dir: Path) -> Tokenizers:
    directory = run_dir / rundir.TOKENIZER_DIR
    if (directory / META_FILE).is_file():
        tokenizers = Tokenizers.load(directory)
        log(
            f"tokenizer: reusing {directory} (vocabulary {tokenizers.src.vocab_size:,}"
            f"{'' if tokenizers.joint else f' / {tokenizers.tgt.vocab_size:,}'})"
        )
        return tokenizers
    tmp = run_dir / rundir.TOKENIZER_TMP
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.monotonic()
    try:
        train_tokenizers(cfg.tokenizer, corpus.train.sources(), corpus.train.targets(), tmp)
        os.replace(tmp, directory)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError):
            raise write_error(directory, error) from None
        raise
    tokenizers = Tokenizers.load(directory)
    log(
        f"tokenizer: trained {cfg.tokenizer.model_type} "
        f"{'joint' if tokenizers.joint else 'source/target'} vocabulary of "
        f"{tokenizers.tgt.vocab_size:,} pieces in {time.monotonic() - started:.1f}s -> {directory}"
    )
    return tokenizers


# ---------------------------------------------------------------------------------------- strategy


def make_strategy(name: str) -> tf.distribute.Strategy:
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


def _deterministic(ds: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


def training_input(strategy: tf.distribute.Strategy, stream: tf.data.Dataset):
    """The endless training stream (`nmt.data.make_training_stream`), split across replicas.

    Every worker builds the same seeded stream of global batches; replica r of R takes rows
    [r·⌈B/R⌉, (r+1)·⌈B/R⌉) of each batch, so a global batch means the same data whatever the
    number of workers and replicas (the last replica may get fewer rows).
    """
    stream = _deterministic(stream)
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


# ------------------------------------------------------------------------------------------- train


def _vector_logs(model) -> None:
    """Keras 3 reduces fit's logs across workers with reduce("MEAN", v, axis=0), which fails on
    the scalar metric results under MultiWorkerMirroredStrategy (tensorflow/tensorflow#72388).
    Returning each as a [1] vector makes that reduction give back the scalar."""
    for name in ("train_step", "test_step"):
        step = getattr(model, name)

        def as_vectors(data, step=step):
            return {k: tf.reshape(v, [1]) for k, v in step(data).items()}

        setattr(model, name, as_vectors)


def cut_log(path: Path, delimiter: str, keep) -> None:
    """Rewrites a CSV/TSV log with a header keeping the rows for which keep(row) holds (atomically)."""
    if not path.exists():
        return
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        fields = reader.fieldnames
        rows = [row for row in reader if keep(row)]
    if fields is None:
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, out.getvalue())


def count_batches(ds: tf.data.Dataset) -> int:
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())


def build_and_compile(cfg: config_lib.Config, tokenizers: Tokenizers):
    model = build_model(cfg.model, tokenizers.src.vocab_size, tokenizers.tgt.vocab_size)
    model.compile(
        optimizer=make_optimizer(cfg.train),
        loss=MaskedCrossEntropy(cfg.train.label_smoothing),
        metrics=[MaskedAccuracy(), Perplexity(), BatchLoss(cfg.train.label_smoothing)],
        jit_compile=cfg.train.jit_compile,
    )
    dummy = tf.ones([1, 2], tf.int32)
    model((dummy, dummy))
    model.optimizer.build(model.trainable_variables)
    return model


def make_translate(model, tokenizers, cfg: config_lib.Config, beam_size: int):
    from nmt.translator import Translator

    translator = Translator(model, tokenizers, cfg.decode)

    def translate(lines):
        return translator.translate(list(lines), beam_size=beam_size)

    return translate


def train(cfg: config_lib.Config, run_dir: str | Path, resume: bool = False, overwrite: bool = False) -> TrainResult:
    run_dir = Path(run_dir)
    resume = prepare_run_dir(cfg, run_dir, resume, overwrite)
    tc = cfg.train
    keras.utils.set_random_seed(tc.seed)
    policy, why = precision.resolve(tc.precision)
    if tc.precision == "auto":
        log(f"train.precision=auto: {policy} ({why})")
    keras.mixed_precision.set_global_policy(policy)
    strategy = make_strategy(tc.distribute)
    if tc.distribute != "default":
        kind = {"mirrored": "MirroredStrategy", "multi_worker": "MultiWorkerMirroredStrategy"}[tc.distribute]
        log(
            f"distribution: {kind}, {strategy.num_replicas_in_sync} replica(s) in sync; "
            f"each takes its share of every global batch"
        )

    corpus = Corpus(cfg.corpus)
    log(corpus.describe())
    tokenizers = load_or_train_tokenizers(cfg, corpus, run_dir)
    train_split = corpus.filtered_train(tokenizers)
    log(train_split.summary.format())
    one_pass = lambda: make_dataset(train_split, tokenizers, cfg.data, training=True, log=None)
    dev = corpus.dev
    # Dev batches use the training buckets (dev pairs are never filtered; longer ones get a shape of their own).
    dev_data = dataclasses.replace(cfg.data, max_len=cfg.data.max_len or train_split.max_len)
    dev_ds = _deterministic(make_dataset(dev, tokenizers, dev_data, training=False, log=None)) if dev else None
    dev_steps = count_batches(dev_ds) if dev else None  # known length: Keras need not run dry

    store = CheckpointStore(run_dir)
    state = store.state("last") if resume else None
    steps_per_epoch = tc.steps_per_epoch
    if state is not None:
        steps_per_epoch = state["steps_per_epoch"]
    if steps_per_epoch is None:
        steps_per_epoch = count_batches(one_pass())
        log(f"one pass over the training data: {steps_per_epoch:,} batches = 1 epoch")

    with strategy.scope():
        model = build_and_compile(cfg, tokenizers)
        if tc.distribute != "default":
            # Keras' fit builds metrics and loss from the first distributed batch averaged over
            # replicas (_maybe_symbolic_build), which fails for nested int32 batches under
            # MultiWorkerMirroredStrategy; build them here from a local batch instead.
            model._symbolic_build(data_batch=next(iter(one_pass().take(1))))
            model._maybe_symbolic_build = lambda *args, **kwargs: None
            if tc.distribute == "multi_worker":
                _vector_logs(model)
    if state is not None:
        state = store.load(model, "last")
        log(f"resumed from step {state['step']:,} (epoch {state['step'] // steps_per_epoch + 1}, {store.path('last')})")
    start_step = int(model.optimizer.iterations.numpy())
    if resume and start_step != state["step"]:
        raise UserError(f"{store.path('last')}: checkpoint step {state['step']} != optimizer step {start_step}")

    dev_pairs = list(dev.pairs()) if dev else []
    if tc.eval_max_sentences is not None:
        dev_pairs = dev_pairs[: tc.eval_max_sentences]

    # Callbacks: order matters at epoch end (DevBleu adds val_bleu before the others read it).
    nan_guard = cb.StopOnNaN()
    time_budget = cb.TimeBudget(tc.max_time, spent_before=(state or {}).get("time_spent", 0.0))
    # Keras' progress bar first: its epoch line is finished before the dev BLEU line is printed.
    callbacks = [keras.callbacks.ProgbarLogger()] if tc.verbose else []
    callbacks += [nan_guard, time_budget]
    dev_bleu = None
    if dev_pairs:
        dev_bleu = cb.DevBleu(
            make_translate(model, tokenizers, cfg, tc.eval_beam_size),
            [s for s, _ in dev_pairs],
            [t for _, t in dev_pairs],
            evaluation.score,
            writer_dir=run_dir / rundir.LOGS_DIR / rundir.TENSORBOARD_DIR / "dev" if tc.tensorboard else None,
            samples=tc.sample_translations,
        )
        callbacks.append(dev_bleu)
    monitor_name = lambda m: "val_bleu" if (m == "bleu" and dev_bleu) else "val_loss"
    plateau = early = None
    if tc.schedule == "plateau" and dev_ds is not None:
        mon = monitor_name(tc.plateau_monitor)
        plateau = cb.ResumableReduceLROnPlateau(
            monitor=mon,
            mode="max" if mon == "val_bleu" else "min",
            factor=tc.plateau_factor,
            patience=tc.plateau_patience,
            min_lr=tc.min_learning_rate,
            verbose=1,
        )
        callbacks.append(plateau)
    if tc.early_stopping_patience is not None and dev_ds is not None:
        mon = monitor_name(tc.early_stopping_monitor)
        early = cb.ResumableEarlyStopping(
            monitor=mon,
            mode="max" if mon == "val_bleu" else "min",
            patience=tc.early_stopping_patience,
            verbose=1,
        )
        callbacks.append(early)
    if state is not None:
        for callback in (plateau, early):
            if callback is not None:
                callback.set_state(state["callbacks"].get(type(callback).__name__))

    def checkpoint_state(best):
        step = int(model.optimizer.iterations.numpy())
        return {
            "step": step,
            "epoch": step // steps_per_epoch,
            "steps_per_epoch": steps_per_epoch,
            "best": best if math.isfinite(best) else None,
            "time_spent": time_budget.spent(),
            "callbacks": {type(c).__name__: c.get_state() for c in (plateau, early) if c is not None},
        }

    best_before = (state or {}).get("best")
    checkpointer = cb.Checkpointer(
        store,
        tc.checkpoint_every,
        checkpoint_state,
        monitor="val_bleu",  # without a dev set no checkpoint is "best"; model.keras is the last
        best=best_before if best_before is not None else -math.inf,
        guard=nan_guard,
    )
    logs = run_dir / rundir.LOGS_DIR
    steps_log, epochs_log = logs / rundir.STEPS_LOG, logs / rundir.EPOCHS_LOG
    if state is None:  # a fresh start (in a directory whose earlier run may have left logs but no checkpoint)
        for path in (steps_log, epochs_log):
            path.unlink(missing_ok=True)
    else:  # rows written after the checkpoint, before the process died, are trained and logged again
        cut_log(steps_log, "\t", lambda row: int(row["step"]) <= state["step"])
        cut_log(epochs_log, ",", lambda row: int(row["epoch"]) < state["epoch"])
    callbacks.append(cb.RunClock(time_budget))  # step and minutes in each epoch's row, for the plots
    callbacks.append(cb.StepLog(steps_log))
    # append: one run makes several fit calls (a partial epoch runs in its own), each starting the logger again
    callbacks.append(keras.callbacks.CSVLogger(str(epochs_log), append=True))
    callbacks.append(checkpointer)  # after the loggers: a checkpoint never runs ahead of the logs
    if tc.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(logs / rundir.TENSORBOARD_DIR), update_freq="epoch"))

    total_steps = tc.epochs * steps_per_epoch
    if tc.max_steps is not None:
        total_steps = min(total_steps, tc.max_steps)
    stopped = "completed"
    step = start_step
    while step < total_steps:
        # A partly done epoch (after a resume, or cut by max_steps) runs as its own fit call.
        epoch = step // steps_per_epoch
        whole = (total_steps - step) // steps_per_epoch if step % steps_per_epoch == 0 else 0
        if whole:
            epochs_end, steps = epoch + whole, steps_per_epoch
        else:
            epochs_end = epoch + 1
            steps = min((epoch + 1) * steps_per_epoch, total_steps) - step
        model.fit(
            training_input(
                strategy,
                make_training_stream(
                    train_split,
                    tokenizers,
                    cfg.data,
                    start=step,
                    log=None,
                    # an epoch is a whole pass unless train.steps_per_epoch says otherwise
                    batches_per_epoch=steps_per_epoch if tc.steps_per_epoch is None else None,
                ),
            ),
            epochs=epochs_end,
            initial_epoch=epoch,
            steps_per_epoch=steps,
            validation_data=dev_ds,
            validation_steps=dev_steps,
            callbacks=callbacks,
            verbose=progress_verbosity(tc.verbose),
            shuffle=False,  # the stream is shuffled by tf.data, with its seed
        )
        for callback in (plateau, early):
            if callback is not None:
                callback.set_state(callback.get_state())
        step = int(model.optimizer.iterations.numpy())
        if model.stop_training or nan_guard.nan_step is not None:
            break
    step = int(model.optimizer.iterations.numpy())
    if nan_guard.nan_step is not None:
        raise UserError(nan_message(nan_guard.nan_step, store.path("last"), run_dir))
    if time_budget.stopped:
        stopped = "max_time"
        log(f"train.max_time={tc.max_time:g}s spent: stopped at step {step:,}")
    elif early is not None and early.stopped_epoch:
        stopped = "early_stopping"
    elif tc.max_steps is not None and step >= tc.max_steps:
        stopped = "max_steps"

    return finish(cfg, run_dir, model, tokenizers, store, corpus, dev_pairs, step, stopped, steps_per_epoch)


def progress_verbosity(verbose: int) -> int:
    """Keras' fit verbosity: the live progress bar (1) only where standard error, where it is drawn, is a
    terminal (or NMT_PROGRESS=1 asks for it); elsewhere (logs, CI) one line per epoch (2)."""
    if verbose == 1 and not (sys.stderr.isatty() or os.environ.get("NMT_PROGRESS") == "1"):
        return 2
    return verbose


def nan_message(nan_step: int, last: Path | None, run_dir: Path) -> str:
    """What the user can do after a NaN loss. Resuming repeats the same steps on the same batches (exact
    resume) and reaches the same NaN, and --resume refuses a changed learning rate: the way out is a
    new run with a lower train.learning_rate or a train.clip_norm."""
    remedy = (
        f"start again with a lower train.learning_rate or a train.clip_norm, either with --overwrite "
        f"(replaces {run_dir}) or with another --run-dir"
    )
    if last is None:
        return (
            f"training stopped: the loss became NaN or infinite at step {nan_step}, before the first "
            f"checkpoint; {remedy}"
        )
    return (
        f"training stopped: the loss became NaN or infinite at step {nan_step}; the last good checkpoint "
        f"is {last}, but --resume would repeat the same steps and reach the same NaN; {remedy}"
    )


def finish(cfg, run_dir, model, tokenizers, store, corpus, dev_pairs, step, stopped, steps_per_epoch):
    """Loads the best checkpoint, saves model.keras, exports the translator, scores dev and test."""
    from nmt.translator import Translator, export_translator

    if store.path("best") is not None:
        store.load(model, "best")
        log(f"best checkpoint: {store.path('best')}")
    tmp = run_dir / rundir.MODEL_TMP
    try:
        model.save(tmp)
        os.replace(tmp, run_dir / rundir.MODEL_FILE)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise write_error(run_dir / rundir.MODEL_FILE, error) from None
    translator = Translator(model, tokenizers, cfg.decode)
    export_translator(translator, run_dir / rundir.EXPORT_DIR)
    try:
        from nmt.plotting import plot_runs

        log(f"curves: {plot_runs([run_dir], run_dir / rundir.CURVES_FILE)}")
    except UserError as error:
        log(f"warning: no curves plotted ({error})")
    log(f"exported: {run_dir / rundir.MODEL_FILE} and the SavedModel {run_dir / 'export'}")

    scores = {}
    for name, pairs in (("dev", dev_pairs), ("test", list(corpus.test.pairs()) if corpus.test else [])):
        if not pairs:
            scores[name] = None
            continue
        hyps = translator.translate([s for s, _ in pairs])
        scores[name] = evaluation.score(hyps, [t for _, t in pairs])
        log(f"{name} ({len(pairs)} sentences, beam {cfg.decode.beam_size}): {scores[name].format()}")
    return TrainResult(run_dir, step, step // steps_per_epoch, stopped, scores["dev"], scores["test"])
