"""Training on Keras fit: a prepared run -> tf.data -> model -> fit -> export.

`train(prepared)` takes a run that `nmt.train.prepare.prepare` has checked and written (config.yaml,
the tokenizer, the filtered training pairs) and adds to its run directory (RUN_DIR):

    checkpoints/             atomic last/best/kept checkpoints (nmt.checkpoint)
    model.keras              the best model by dev BLEU (the last one without a dev set; the mean of
                             the kept checkpoints with train.average_checkpoints)
    export/                  the text-to-text SavedModel (nmt.decode.translator)
    shortlist.npz            the lexical shortlist's table, from the training pairs (nmt.decode.shortlist)
    decode_tuned.yaml        the length penalty chosen on dev (decode.tune_length_penalty)
    curves.png               loss, dev BLEU and learning rate (nmt.train.plotting)
    logs/train.csv           one row per epoch (Keras CSVLogger): loss, val_loss, val_bleu, ...
    logs/steps.tsv           the loss and learning rate of every step
    logs/tensorboard/        TensorBoard: train/validation curves, dev BLEU, sample translations
    results.json             the final scores and how they were reached (write_results)

Epochs: an epoch is `train.steps_per_epoch` steps (default: the batches of one pass over the
training data, counted once at the start). The training batches are one endless, seeded stream
(`nmt.train.batches.make_training_stream`: pass e is shuffled with the seed pair (data.seed, e + 1), so
batch n is the same in every process whatever was iterated before), and the position in the
data is the global step: each fit call, a resumed run's included, starts the stream at its
step (skipping whole passes without reading them) and sees exactly the batches the
uninterrupted run would have seen. With model, optimizer (incl. its step and learning rate),
dropout seed state and callback counters restored, the losses after a resume equal those of an
uninterrupted run.

train() runs these pieces in turn: start_run (seed, precision, checkpoint store), start_strategy,
load_data (the tokenizer in TensorFlow, the dev batches), resume_point (checkpoint state, steps per
epoch), build_run_model and restore, make_callbacks, fit (the fit calls), stop_reason and finish
(best checkpoint, model.keras, shortlist, length penalty, export, scores). What running under tf.distribute
needs (the strategy, each replica's rows of a batch, and the Keras workarounds) is in
nmt.train.distribute.

Messages go to the logger "nmt.train.trainer" (standard `logging`, INFO; warnings at WARNING): train.py
prints them and writes them to RUN_DIR/train.log (nmt.cli.train); the library installs no handler.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from nmt import config as config_lib
from nmt import rundir
from nmt.checkpoint import CheckpointChoice, CheckpointStore
from nmt.decode import tuning
from nmt.errors import UserError
from nmt.files import atomic_write_text, write_error
from nmt.model import precision
from nmt.model.seq2seq import build_model
from nmt.text import evaluation
from nmt.text.corpus import Corpus, CorpusSplit
from nmt.text.tokenizer import Tokenizers
from nmt.train import callbacks as cb
from nmt.train.batches import batches_per_pass, make_eval_dataset, make_training_stream
from nmt.train.distribute import STRATEGY_CLASSES, make_strategy, patch_fit, same_on_every_worker, training_input
from nmt.train.losses import BatchLoss, MaskedAccuracy, MaskedCrossEntropy, Perplexity
from nmt.train.optim import make_optimizer
from nmt.train.prepare import PreparedRun

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run reached: its directory, the global step and epoch it stopped at, why, and the final dev
    and test Scores (None without that split)."""

    run_dir: Path
    steps: int
    epochs: int
    stopped: str  # "completed", "early_stopping", "max_time", "max_steps"
    dev_scores: object | None
    test_scores: object | None


# ------------------------------------------------------------------------------------- the run


@dataclass
class RunContext:
    """One training run as train()'s pieces hand it on; `state` and `steps_per_epoch` are filled
    in once the data is known (resume_point) and `state` again once the checkpoint is loaded."""

    cfg: config_lib.Config
    run_dir: Path
    resume: bool  # whether there is a checkpoint to continue from (PreparedRun.resume)
    store: CheckpointStore
    state: dict | None = None  # the last checkpoint's state when resuming, else None
    steps_per_epoch: int = 0
    parent: Path | None = None  # the run to start from (train.init_from) at step 0


@dataclass(frozen=True)
class TrainingData:
    """The corpus as training reads it: batches are ((src [B, S], tgt_in [B, T]), tgt_out [B, T])."""

    corpus: Corpus
    tokenizers: Tokenizers
    train_split: CorpusSplit  # the training pairs after the corpus filters
    data_cfg: config_lib.DataConfig
    dev_ds: tf.data.Dataset | None  # dev batches in the training buckets; None without a dev set
    dev_steps: int | None  # how many: a known length, so Keras need not run the dev set dry
    dev_pairs: list[tuple[str, str]]  # the dev pairs dev BLEU translates (train.eval_max_sentences)

    def stream(
        self, start: int = 0, batches_per_epoch: int | None = None, epochs: int | None = None
    ) -> tf.data.Dataset:
        """-> the seeded training batches from global step `start` (nmt.train.batches.make_training_stream):
        endless, or `epochs` passes (epochs=1: one pass, to count its batches)."""
        return make_training_stream(
            self.train_split, self.tokenizers, self.data_cfg, start, batches_per_epoch=batches_per_epoch, epochs=epochs
        )


def start_run(prepared: PreparedRun) -> RunContext:
    """Seeds Keras' random generators and sets the precision policy. -> the run, `resume` True only
    where a checkpoint is there to continue from."""
    tc = prepared.cfg.train
    keras.utils.set_random_seed(tc.seed)
    policy, why = precision.resolve(tc.precision)
    if tc.precision == "auto":
        logger.info(f"train.precision=auto: {policy} ({why})")
    keras.mixed_precision.set_global_policy(policy)
    return RunContext(
        prepared.cfg, prepared.run_dir, prepared.resume, CheckpointStore(prepared.run_dir), parent=prepared.parent
    )


def start_strategy(name: str) -> tf.distribute.Strategy:
    """-> the tf.distribute strategy of train.distribute=`name`, said in one line unless it is the
    default. `make_strategy` (nmt.train.distribute) is looked up in this module, where tests replace it."""
    strategy = make_strategy(name)
    if name != "default":
        logger.info(
            f"distribution: {STRATEGY_CLASSES[name]}, {strategy.num_replicas_in_sync} replica(s) in sync; "
            f"each takes its share of every global batch"
        )
    return strategy


def load_data(prepared: PreparedRun) -> TrainingData:
    """Loads the run's tokenizer (written by `nmt.train.prepare.prepare`) into TensorFlow and batches
    the dev set. -> the training data."""
    cfg, corpus, train_split = prepared.cfg, prepared.corpus, prepared.train_split
    tokenizers = Tokenizers.load(prepared.run_dir / rundir.TOKENIZER_DIR)
    dev = corpus.dev
    # Dev batches use the training buckets (dev pairs are never filtered; longer ones get a shape of their own).
    dev_data = dataclasses.replace(cfg.data, max_len=cfg.data.max_len or train_split.max_len)
    dev_ds = same_on_every_worker(make_eval_dataset(dev, tokenizers, dev_data)) if dev else None
    dev_steps = count_batches(dev_ds) if dev else None
    dev_pairs = list(dev.pairs()) if dev else []
    if cfg.train.eval_max_sentences is not None:
        dev_pairs = dev_pairs[: cfg.train.eval_max_sentences]
    return TrainingData(corpus, tokenizers, train_split, cfg.data, dev_ds, dev_steps, dev_pairs)


def resume_point(run: RunContext, data: TrainingData) -> tuple[dict | None, int]:
    """-> (the last checkpoint's state when resuming, else None; the steps of an epoch): those the
    run started with when resuming, else train.steps_per_epoch, else one pass, counted here."""
    state = run.store.state("last") if run.resume else None
    steps_per_epoch = run.cfg.train.steps_per_epoch
    if state is not None:
        steps_per_epoch = state["steps_per_epoch"]
    if steps_per_epoch is None:  # from the filter's length counts, else one pass read through
        steps_per_epoch = batches_per_pass(data.train_split, data.data_cfg) or count_batches(data.stream(epochs=1))
        logger.info(f"one pass over the training data: {steps_per_epoch:,} batches = 1 epoch")
    return state, steps_per_epoch


# ------------------------------------------------------------------------------------------ model


def count_batches(ds: tf.data.Dataset) -> int:
    """-> the number of batches in `ds` (one pass through it)."""
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())


def build_and_compile(cfg: config_lib.Config, tokenizers: Tokenizers) -> keras.Model:
    """-> the model of `cfg.model`, compiled with the run's optimizer, loss and metrics, its weights
    and the optimizer's variables built (so that a checkpoint can be loaded before training)."""
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


def build_run_model(run: RunContext, data: TrainingData, strategy: tf.distribute.Strategy) -> keras.Model:
    """-> the compiled model (optimizer built), made in the strategy's scope and, under a strategy
    other than the default, adapted to it (nmt.train.distribute.patch_fit)."""
    name = run.cfg.train.distribute
    with strategy.scope():
        model = build_and_compile(run.cfg, data.tokenizers)
        if name != "default":
            patch_fit(model, name, lambda: next(iter(data.stream(epochs=1).take(1))))
    return model


def restore(run: RunContext, model: keras.Model) -> dict | None:
    """Loads the last checkpoint into the model when resuming (weights, optimizer, random
    generators) and checks the optimizer's step against it; a fine-tuning run's fresh start takes
    its parent's weights (`init_from`). -> the checkpoint's state, or None for a fresh start."""
    state = None
    if run.state is not None:
        state = run.store.load(model, "last")
        logger.info(
            f"resumed from step {state['step']:,} (epoch {state['step'] // run.steps_per_epoch + 1}, "
            f"{run.store.path('last')})"
        )
    elif run.parent is not None:
        init_from(model, run.parent)
    start_step = int(model.optimizer.iterations.numpy())
    if run.resume and start_step != state["step"]:
        raise UserError(f"{run.store.path('last')}: checkpoint step {state['step']} != optimizer step {start_step}")
    return state


def init_from(model: keras.Model, parent: Path) -> None:
    """Sets the weights of `model` (a fine-tuning run at step 0) to those of the parent run's model.keras
    (its best, or the average it chose), one variable at a time by path and shape; the optimizer, its
    step and the random generators stay fresh."""
    from nmt.decode.translator import load_model

    source = load_model(parent)
    theirs = {v.path: v for v in source.weights}
    for variable in model.weights:
        other = theirs.get(variable.path)
        if other is None or tuple(other.shape) != tuple(variable.shape):
            found = "none" if other is None else f"shape {tuple(other.shape)}"
            raise UserError(
                f"train.init_from {parent / rundir.MODEL_FILE}: no weight {variable.path} of shape "
                f"{tuple(variable.shape)} there ({found}); expected the model its config.yaml describes"
            )
        variable.assign(other)
    logger.info(f"train.init_from: {len(model.weights)} weights from {parent / rundir.MODEL_FILE}")


def make_translate(
    model: keras.Model, tokenizers: Tokenizers, cfg: config_lib.Config, beam_size: int
) -> Callable[[Iterable[str]], list[str]]:
    """-> lines -> translations with the model as it is now (for dev BLEU during training)."""
    from nmt.decode.translator import Translator

    translator = Translator(model, tokenizers, cfg.decode)

    def translate(lines):
        return [t.text for t in translator.translate(list(lines), translator.settings(beam_size=beam_size))]

    return translate


# -------------------------------------------------------------------------------------- callbacks


@dataclass
class RunCallbacks:
    """The callbacks of every fit call (`all`, in the order Keras calls them) and those train()
    reads afterwards."""

    all: list[keras.callbacks.Callback]
    nan_guard: cb.StopOnNaN
    time_budget: cb.TimeBudget
    plateau: cb.ResumableReduceLROnPlateau | None
    early: cb.ResumableEarlyStopping | None
    budget: cb.BudgetSchedule | None = None

    def resumable(self) -> list[keras.callbacks.Callback]:
        """-> the callbacks whose counters a checkpoint keeps (plateau, early stopping, the budget schedule)."""
        return [c for c in (self.plateau, self.early, self.budget) if c is not None]


def early_stopping_against_budget(tc: config_lib.TrainConfig) -> str:
    """-> the warning for early stopping beside the budget schedule: a dev plateau while the rate is still
    high can end the run before the decay, which is where the budget schedule's best checkpoints came."""
    return (
        f"train.early_stopping_patience={tc.early_stopping_patience} with train.schedule=budget: a dev plateau "
        "before the decay can end the run at a high learning rate; null turns early stopping off"
    )


def make_callbacks(run: RunContext, data: TrainingData, model: keras.Model) -> RunCallbacks:
    """-> the run's callbacks. Order matters at epoch end: the progress bar first (its epoch line
    is finished before the dev BLEU line is printed), dev BLEU before those that read val_bleu
    (plateau, early stopping), then the logs and the checkpointer (add_log_callbacks)."""
    tc, state = run.cfg.train, run.state
    nan_guard = cb.StopOnNaN()
    time_budget = cb.TimeBudget(tc.max_time, spent_before=(state or {}).get("time_spent", 0.0))
    callbacks = [keras.callbacks.ProgbarLogger()] if tc.verbose else []
    callbacks += [nan_guard, time_budget]
    dev_bleu = None
    if data.dev_pairs:
        dev_bleu = cb.DevBleu(
            make_translate(model, data.tokenizers, run.cfg, tc.eval_beam_size),
            [s for s, _ in data.dev_pairs],
            [t for _, t in data.dev_pairs],
            evaluation.score,
            writer_dir=run.run_dir / rundir.LOGS_DIR / rundir.TENSORBOARD_DIR / "dev" if tc.tensorboard else None,
            samples=tc.sample_translations,
        )
        callbacks.append(dev_bleu)
    monitor_name = lambda m: "val_bleu" if (m == "bleu" and dev_bleu) else "val_loss"
    plateau = early = budget = None
    if tc.schedule == "budget":
        steps = (
            tc.epochs * run.steps_per_epoch
            if tc.max_steps is None
            else min(tc.max_steps, tc.epochs * run.steps_per_epoch)
        )
        budget = cb.BudgetSchedule(
            tc.learning_rate, tc.warmup_steps, tc.min_learning_rate, steps, tc.max_time, time_budget
        )
        callbacks.append(budget)
    if tc.schedule == "plateau" and data.dev_ds is not None:
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
    if tc.early_stopping_patience is not None and data.dev_ds is not None:
        mon = monitor_name(tc.early_stopping_monitor)
        early = cb.ResumableEarlyStopping(
            monitor=mon,
            mode="max" if mon == "val_bleu" else "min",
            patience=tc.early_stopping_patience,
            verbose=1,
        )
        callbacks.append(early)
    if budget is not None and early is not None:
        logger.warning(early_stopping_against_budget(tc))
    result = RunCallbacks(callbacks, nan_guard, time_budget, plateau, early, budget)
    if state is not None:
        for callback in result.resumable():
            callback.set_state(state["callbacks"].get(type(callback).__name__))
    add_log_callbacks(run, model, result)
    return result


def add_log_callbacks(run: RunContext, model: keras.Model, callbacks: RunCallbacks) -> None:
    """Appends to `callbacks.all` the run clock, the step and epoch logs (cut back to the
    checkpoint when resuming, removed on a fresh start), the checkpointer and TensorBoard. -> None."""
    tc, state, steps_per_epoch = run.cfg.train, run.state, run.steps_per_epoch

    def checkpoint_state(best):
        step = int(model.optimizer.iterations.numpy())
        return {
            "step": step,
            "epoch": step // steps_per_epoch,
            "steps_per_epoch": steps_per_epoch,
            "best": best if math.isfinite(best) else None,
            "time_spent": callbacks.time_budget.spent(),
            "callbacks": {type(c).__name__: c.get_state() for c in callbacks.resumable()},
        }

    best_before = (state or {}).get("best")
    checkpointer = cb.Checkpointer(
        run.store,
        tc.checkpoint_every,
        checkpoint_state,
        monitor="val_bleu",  # without a dev set no checkpoint is "best"; model.keras is the last
        best=best_before if best_before is not None else -math.inf,
        guard=callbacks.nan_guard,
        keep=tc.keep_checkpoints,
    )
    logs = run.run_dir / rundir.LOGS_DIR
    steps_log, epochs_log = logs / rundir.STEPS_LOG, logs / rundir.EPOCHS_LOG
    if state is None:  # a fresh start (in a directory whose earlier run may have left logs but no checkpoint)
        for path in (steps_log, epochs_log):
            path.unlink(missing_ok=True)
    else:  # rows written after the checkpoint, before the process died, are trained and logged again
        cut_log(steps_log, "\t", lambda row: int(row["step"]) <= state["step"])
        cut_log(epochs_log, ",", lambda row: int(row["epoch"]) < state["epoch"])
    added = callbacks.all
    added.append(cb.RunClock(callbacks.time_budget))  # step and minutes in each epoch's row, for the plots
    added.append(cb.StepLog(steps_log))
    # append: one run makes several fit calls (a partial epoch runs in its own), each starting the logger again
    added.append(keras.callbacks.CSVLogger(str(epochs_log), append=True))
    added.append(checkpointer)  # after the loggers: a checkpoint never runs ahead of the logs
    if tc.tensorboard:
        added.append(keras.callbacks.TensorBoard(str(logs / rundir.TENSORBOARD_DIR), update_freq="epoch"))


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


# ------------------------------------------------------------------------------------------- train


def train(prepared: PreparedRun) -> TrainResult:
    """Trains (or, when `prepared.resume`, continues) the prepared run (`nmt.train.prepare.prepare`),
    then exports it and scores dev and test. -> what the run reached and why it stopped."""
    run = start_run(prepared)
    strategy = start_strategy(run.cfg.train.distribute)
    data = load_data(prepared)
    run.state, run.steps_per_epoch = resume_point(run, data)
    model = build_run_model(run, data, strategy)
    run.state = restore(run, model)
    callbacks = make_callbacks(run, data, model)
    step = fit(run, data, model, strategy, callbacks)
    stopped = stop_reason(run, callbacks, step)
    return finish(run, data, model, step, stopped, minutes=callbacks.time_budget.spent() / 60.0)


def next_fit_call(step: int, total_steps: int, steps_per_epoch: int) -> tuple[int, int, int]:
    """-> (initial_epoch, epochs, steps_per_epoch) of the fit call that starts at global `step`:
    all the whole epochs left when the step is at an epoch's start; else the rest of the current
    epoch (after a resume, or cut by max_steps), which runs as a fit call of its own."""
    epoch = step // steps_per_epoch
    whole = (total_steps - step) // steps_per_epoch if step % steps_per_epoch == 0 else 0
    if whole:
        return epoch, epoch + whole, steps_per_epoch
    return epoch, epoch + 1, min((epoch + 1) * steps_per_epoch, total_steps) - step


def fit(
    run: RunContext, data: TrainingData, model: keras.Model, strategy: tf.distribute.Strategy, callbacks: RunCallbacks
) -> int:
    """Runs Keras' fit from the model's step to the last one (train.epochs, cut by train.max_steps),
    each call starting the training stream at its step, until a callback stops training.
    -> the step reached."""
    tc, steps_per_epoch = run.cfg.train, run.steps_per_epoch
    total_steps = tc.epochs * steps_per_epoch
    if tc.max_steps is not None:
        total_steps = min(total_steps, tc.max_steps)
    step = int(model.optimizer.iterations.numpy())
    while step < total_steps:
        epoch, epochs_end, steps = next_fit_call(step, total_steps, steps_per_epoch)
        # an epoch is a whole pass unless train.steps_per_epoch says otherwise
        stream = data.stream(step, batches_per_epoch=steps_per_epoch if tc.steps_per_epoch is None else None)
        model.fit(
            training_input(strategy, stream),
            epochs=epochs_end,
            initial_epoch=epoch,
            steps_per_epoch=steps,
            validation_data=data.dev_ds,
            validation_steps=data.dev_steps,
            callbacks=callbacks.all,
            verbose=progress_verbosity(tc.verbose),
            shuffle=False,  # the stream is shuffled by tf.data, with its seed
        )
        for callback in callbacks.resumable():
            callback.set_state(callback.get_state())
        step = int(model.optimizer.iterations.numpy())
        if model.stop_training or callbacks.nan_guard.nan_step is not None:
            break
    return int(model.optimizer.iterations.numpy())


def stop_reason(run: RunContext, callbacks: RunCallbacks, step: int) -> str:
    """-> why training stopped at `step`: "completed", "early_stopping", "max_time" or "max_steps";
    a NaN loss raises a UserError that says what to do instead."""
    tc = run.cfg.train
    if callbacks.nan_guard.nan_step is not None:
        raise UserError(nan_message(callbacks.nan_guard.nan_step, run.store.path("last"), run.run_dir))
    if callbacks.time_budget.stopped:
        logger.info(f"train.max_time={tc.max_time:g}s spent: stopped at step {step:,}")
        return "max_time"
    if callbacks.early is not None and callbacks.early.stopped_epoch:
        return "early_stopping"
    if tc.max_steps is not None and step >= tc.max_steps:
        return "max_steps"
    return "completed"


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


def tune_decode(run: RunContext, data: TrainingData, translator) -> tuple[object, dict]:
    """With decode.tune_length_penalty: the length penalty of the best dev BLEU, chosen and written to
    RUN_DIR/decode_tuned.yaml (nmt.decode.tuning). -> (the translator with it, {"dev": its dev Scores}); else
    (translator, {}), and no decode_tuned.yaml is left from an earlier finish."""
    penalties, decode = run.cfg.decode.tune_length_penalty, translator.decode
    if not penalties or not data.dev_pairs:
        if penalties:
            logger.warning(f"decode.tune_length_penalty: no dev set; length_penalty {decode.length_penalty:g} kept")
        (run.run_dir / rundir.TUNED_DECODE_FILE).unlink(missing_ok=True)
        return translator, {}
    logger.info(
        f"decode.tune_length_penalty: {len(penalties)} values on dev ({len(data.dev_pairs)} sentences, "
        f"beam {decode.beam_size})"
    )
    chosen, sweep = tuning.sweep(translator, data.dev_pairs, penalties, logger.info)
    logger.info(f"length penalty {chosen:g} chosen on dev -> {tuning.write(run.run_dir, chosen, sweep)}")
    # The same translator with the chosen default: its graph keeps the search the sweep traced for it.
    translator.decode = dataclasses.replace(decode, length_penalty=chosen)
    return translator, {"dev": sweep[chosen]}


def final_weights(run: RunContext, model: keras.Model) -> str:
    """Loads what model.keras and the export hold: the mean of the kept checkpoints with
    train.average_checkpoints (the best where fewer than two were kept), else the best checkpoint (the
    model as it is without a dev set). -> which, for the log and results.json."""
    store, tc = run.store, run.cfg.train
    if tc.average_checkpoints:
        kept = store.kept()
        if len(kept) >= 2:
            weights = CheckpointChoice(run.run_dir, "average").apply(model)
            logger.info(f"train.average_checkpoints: model.keras holds {weights}")
            return weights
        logger.warning(
            f"train.average_checkpoints: only {len(kept)} epoch checkpoint(s) kept, nothing to average; "
            "model.keras holds the best"
        )
    if store.path("best") is None:
        return f"the last step ({int(model.optimizer.iterations.numpy())}; no dev set, no best checkpoint)"
    store.load(model, "best")
    logger.info(f"best checkpoint: {store.path('best')}")
    return f"best checkpoint {store.path('best').name}"


def finish(
    run: RunContext, data: TrainingData, model: keras.Model, step: int, stopped: str, minutes: float | None = None
) -> TrainResult:
    """Loads the best checkpoint, saves model.keras and the shortlist, exports the translator, plots the
    curves, scores dev and test and writes results.json (`minutes`: the training's wall-clock time, earlier
    processes of a resumed run included). -> the run's result."""
    from nmt.decode.translator import Translator, export_translator

    cfg, run_dir = run.cfg, run.run_dir
    weights = final_weights(run, model)
    tmp = run_dir / rundir.MODEL_TMP
    try:
        model.save(tmp)
        os.replace(tmp, run_dir / rundir.MODEL_FILE)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise write_error(run_dir / rundir.MODEL_FILE, error) from None
    table = write_shortlist(run, data)
    translator, scores = tune_decode(run, data, Translator(model, data.tokenizers, cfg.decode, shortlist=table))
    export_translator(translator, run_dir / rundir.EXPORT_DIR)
    try:
        from nmt.train.plotting import plot_runs

        logger.info(f"curves: {plot_runs([run_dir], run_dir / rundir.CURVES_FILE)}")
    except UserError as error:
        logger.warning(f"no curves plotted ({error})")
    logger.info(f"exported: {run_dir / rundir.MODEL_FILE} and the SavedModel {run_dir / rundir.EXPORT_DIR}")

    test = data.corpus.test
    for name, pairs in (("dev", data.dev_pairs), ("test", list(test.pairs()) if test else [])):
        if not pairs:
            scores[name] = None
            continue
        if name not in scores:  # dev after a length-penalty sweep: the sweep's score, not decoded again
            hyps = [t.text for t in translator.translate([s for s, _ in pairs])]
            scores[name] = evaluation.score(hyps, [t for _, t in pairs])
        decode = translator.decode
        logger.info(
            f"{name} ({len(pairs)} sentences, beam {decode.beam_size}, length penalty {decode.length_penalty:g}): "
            f"{scores[name].format()}"
        )
    result = TrainResult(run_dir, step, step // run.steps_per_epoch, stopped, scores["dev"], scores["test"])
    write_results(result, translator.decode, minutes, weights=weights, init_from=cfg.train.init_from)
    return result


def write_shortlist(run: RunContext, data: TrainingData):
    """Estimates the lexical shortlist's table on (a sample of) the training pairs and writes it to
    RUN_DIR/shortlist.npz (`nmt.decode.shortlist`). -> the table."""
    from nmt.decode import shortlist

    started = time.monotonic()
    table, used = shortlist.estimate(data.train_split.pairs(), data.tokenizers, seed=run.cfg.train.seed)
    path = table.save(run.run_dir / rundir.SHORTLIST_FILE)
    logger.info(
        f"shortlist: IBM Model 1 on {used:,} training pairs in {time.monotonic() - started:.1f}s -> {path} "
        f"(decode.shortlist {run.cfg.decode.shortlist}, decode.shortlist_frequent {run.cfg.decode.shortlist_frequent})"
    )
    return table


# ------------------------------------------------------------------------------------------ results.json


def write_results(
    result: TrainResult, decode, minutes: float | None, weights: str | None = None, init_from: str | None = None
) -> Path:
    """Writes RUN_DIR/results.json (atomically): the final dev and test scores with their sacreBLEU
    signatures (null without that split), the search they were decoded with (`decode`: the translator's
    settings, the tuned length penalty included), steps, epochs, minutes and why training stopped, which
    weights model.keras holds (`weights`), the parent run of a fine-tuning run (`init_from`), the device,
    the precision policy, the package versions and the sha256 of config.yaml. -> its path."""
    run_dir = result.run_dir
    values = {
        "dev": score_record(result.dev_scores),
        "test": score_record(result.test_scores),
        "length_penalty": float(decode.length_penalty),
        "beam_size": int(decode.beam_size),
        "steps": result.steps,
        "epochs": result.epochs,
        "minutes": None if minutes is None else round(minutes, 3),
        "stopped": result.stopped,
        "weights": weights,
        "init_from": init_from,
        "device": device_description(),
        "precision": keras.mixed_precision.global_policy().name,
        "versions": package_versions(),
        "config_sha256": hashlib.sha256((run_dir / rundir.CONFIG_FILE).read_bytes()).hexdigest(),
    }
    path = run_dir / rundir.RESULTS_FILE
    atomic_write_text(path, json.dumps(values, indent=2) + "\n", what="the run's results")
    return path


def score_record(scores) -> dict | None:
    """-> {"bleu", "chrf", "bleu_signature", "chrf_signature"} of an nmt.text.evaluation.Scores, or None."""
    if scores is None:
        return None
    return {
        "bleu": scores.bleu,
        "chrf": scores.chrf,
        "bleu_signature": scores.signatures.get("bleu"),
        "chrf_signature": scores.signatures.get("chrf"),
    }


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """-> the CPU's model name (/proc/cpuinfo's "model name", else platform.processor() or the machine type)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_description() -> dict:
    """-> {"cpu": the CPU's model name, "gpus": the names of the GPUs TensorFlow sees ([] if none)}."""
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            details = {}
        gpus.append(details.get("device_name") or device.name)
    return {"cpu": cpu_model(), "gpus": gpus}


def package_versions() -> dict:
    """-> the versions of Python and of the packages a result depends on (as imported)."""
    import sacrebleu
    import sentencepiece
    import tensorflow_text

    import nmt

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tensorflow_text": tensorflow_text.__version__,
        "sentencepiece": sentencepiece.__version__,
        "sacrebleu": sacrebleu.__version__,
        "nmt": nmt.__version__,
    }
