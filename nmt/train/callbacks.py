"""Training callbacks that Keras does not have, and resumable versions of two it has.

Keras' own callbacks are used as they are where they do the job (progress bar, TensorBoard,
CSVLogger, TerminateOnNaN's check). Added here:

- `DevBleu`: dev-set translation + sacreBLEU at each epoch end, through the same translator code
  path as the final evaluation; adds `val_bleu`, `val_chrf` and `learning_rate` to the logs and
  writes sample translations to TensorBoard as text.
- `StepLog`: the loss of every step (not Keras' running mean) to logs/steps.tsv, for the
  reproducibility and exact-resume checks.
- `Checkpointer`: atomic last/best checkpoints (nmt.checkpoint), every N steps and each epoch.
- `TimeBudget`: stops cleanly when train.max_time is spent (the run still exports).
- `StopOnNaN`: Keras' TerminateOnNaN that remembers the step, so training can report it.
- `BudgetSchedule`: train.schedule "budget", a learning rate that warms up and then decays to the end of
  the run's step or time budget.
- `ResumableEarlyStopping`, `ResumableReduceLROnPlateau`: Keras' callbacks whose counters survive a
  restart (`get_state`/`set_state`), since Keras resets them in on_train_begin; the lines they print
  ("Epoch 5: early stopping", a reduced learning rate) go to the logger like the other messages.

Messages go to the logger "nmt.train.callbacks" (standard `logging`, INFO); train.py prints them and
writes them to RUN_DIR/train.log (nmt.cli.train).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import resource
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def keras_messages_logged():
    """The lines Keras' callbacks print on standard output (keras.utils.io_utils.print_msg) while this
    is active go to the logger instead, one INFO message per line."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            yield
    finally:
        for line in printed.getvalue().splitlines():
            if line.strip():
                logger.info(line)


def current_learning_rate(optimizer) -> float:
    lr = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(lr))


class _ResumableMixin:
    """Keeps the named counters across restarts: set_state before fit, applied after reset."""

    _state_keys: tuple[str, ...] = ()

    def get_state(self) -> dict:
        return {k: _plain(getattr(self, k)) for k in self._state_keys}

    def set_state(self, state: dict | None) -> None:
        self._pending = dict(state) if state else None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        pending = getattr(self, "_pending", None)
        if pending:
            for k, v in pending.items():
                setattr(self, k, v)
        self._pending = None

    def on_epoch_end(self, epoch, logs=None):
        with keras_messages_logged():
            super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        with keras_messages_logged():
            super().on_train_end(logs)


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


class ResumableEarlyStopping(_ResumableMixin, keras.callbacks.EarlyStopping):
    _state_keys = ("wait", "best", "best_epoch", "stopped_epoch")


class ResumableReduceLROnPlateau(_ResumableMixin, keras.callbacks.ReduceLROnPlateau):
    _state_keys = ("wait", "best", "cooldown_counter")


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Stops at the first non-finite loss and remembers where."""

    def __init__(self):
        super().__init__()
        self.nan_step = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan_step = int(self.model.optimizer.iterations.numpy())
            self.model.stop_training = True


class TimeBudget(keras.callbacks.Callback):
    """Stops training once `seconds` of training time (this process + earlier ones) are spent."""

    def __init__(self, seconds: float | None, spent_before: float = 0.0):
        super().__init__()
        self.seconds = seconds
        self.spent_before = float(spent_before)
        self.started = None
        self.stopped = False

    def spent(self) -> float:
        return self.spent_before + (time.monotonic() - self.started if self.started else 0.0)

    def on_train_begin(self, logs=None):
        if self.started is None:
            self.started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds is not None and self.spent() >= self.seconds:
            self.stopped = True
            self.model.stop_training = True


class BudgetSchedule(_ResumableMixin, keras.callbacks.Callback):
    """The learning rate of train.schedule "budget", set before every step: linear warm-up from 0 to
    `peak` over `warmup_steps`, then a cosine decay from `peak` to `floor` that ends at the run's last step T,
    `floor` after it:

        lr(s) = peak · (s + 1) / W                                          s < W
        lr(s) = floor + (peak - floor) · (1 + cos(π · (s - W) / (T - W))) / 2     W <= s < T

    T is the run's step budget `max_steps` (train.max_steps, or train.epochs times the steps of an epoch,
    whichever ends first). With train.max_time, T is the smaller of that and the steps the time buys,
    estimated at every epoch end from the pace so far, s · max_time / (time spent), dev evaluation and
    start-up included. T is part of the checkpoint's state: a resumed run goes on with it.
    """

    _state_keys = ("total_steps",)

    def __init__(self, peak, warmup_steps, floor, max_steps: int, max_time=None, budget: TimeBudget | None = None):
        super().__init__()
        self.peak, self.warmup, self.floor = float(peak), int(warmup_steps), float(floor)
        self.max_steps, self.max_time, self.budget = max_steps, max_time, budget
        self.total_steps = max_steps

    def rate(self, step: int) -> float:
        """The learning rate of (0-based) step."""
        if step < self.warmup:
            return self.peak * (step + 1) / self.warmup
        if step >= self.total_steps:
            return self.floor
        span = max(self.total_steps - self.warmup, 1)
        return self.floor + (self.peak - self.floor) * 0.5 * (1.0 + math.cos(math.pi * (step - self.warmup) / span))

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.rate(int(self.model.optimizer.iterations.numpy()))

    def on_epoch_end(self, epoch, logs=None):
        if self.max_time is None or self.budget is None:
            return
        step, spent = int(self.model.optimizer.iterations.numpy()), self.budget.spent()
        if step > 0 and spent > 0:
            self.total_steps = min(int(step * self.max_time / spent), self.max_steps)


class RunClock(keras.callbacks.Callback):
    """Adds ``step`` (the optimizer's step), ``minutes`` (training wall time so far, earlier processes
    of a resumed run included, dev evaluation included) and ``peak_rss_mb`` (this process's peak
    resident memory so far) to each epoch's logs, so logs/train.csv can be plotted against steps and
    against wall-clock minutes (scripts/plot_run.py) and scripts/results.py can report memory."""

    def __init__(self, budget: TimeBudget):
        super().__init__()
        self.budget = budget

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["step"] = int(self.model.optimizer.iterations.numpy())
            logs["minutes"] = self.budget.spent() / 60.0
            logs["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


class StepLog(keras.callbacks.Callback):
    """Appends `step<TAB>loss<TAB>learning_rate<TAB>seconds` for every training step to a TSV file.

    The loss is the step's own (the `batch_loss` metric), not Keras' running mean. `seconds` is
    the step's wall time, from Keras' batch-begin to its batch-end callback (fetching the batch,
    the forward and backward pass, the update and reading the loss back): what
    bench/bench_train.py measures per step, so `bench_train.py --run RUN_DIR` can split a real
    run's time into training steps and everything else. Each line is flushed when written, so
    the log is up to date while training runs and after a kill.
    """

    COLUMNS = ("step", "loss", "learning_rate", "seconds")

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self._file = None
        self._began = None

    def on_train_begin(self, logs=None):
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", encoding="utf-8")
        if new:
            self._file.write("\t".join(self.COLUMNS) + "\n")

    def on_train_batch_begin(self, batch, logs=None):
        self._began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        step = int(self.model.optimizer.iterations.numpy())
        if "batch_loss" not in logs:  # Keras' "loss" is a running mean: never log it as the step's loss
            raise ValueError(f"StepLog needs the batch_loss metric in the logs; got {sorted(logs)}")
        loss = logs["batch_loss"]
        lr = current_learning_rate(self.model.optimizer)
        seconds = time.perf_counter() - self._began if self._began is not None else float("nan")
        self._file.write(f"{step}\t{float(loss):.9g}\t{lr:.9g}\t{seconds:.6f}\n")
        self._file.flush()  # each line reaches the file at once: a killed run keeps its steps

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class DevBleu(keras.callbacks.Callback):
    """Translates the dev sources at each epoch end and adds sacreBLEU/chrF to the logs."""

    def __init__(self, translate, sources, references, score, writer_dir=None, samples=3, log=None):
        """translate: list[str] -> list[str]; score: (hyps, refs) -> nmt.text.evaluation.Scores."""
        super().__init__()
        self.translate = translate
        self.sources = list(sources)
        self.references = list(references)
        self.score = score
        self.samples = samples
        self.log = log or logger.info
        self.writer = tf.summary.create_file_writer(str(writer_dir)) if writer_dir else None
        self.last = None

    def evaluate(self):
        hyps = self.translate(self.sources)
        return hyps, self.score(hyps, self.references)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        hyps, scores = self.evaluate()
        self.last = scores
        logs["val_bleu"] = scores.bleu
        logs["val_chrf"] = scores.chrf
        logs["learning_rate"] = current_learning_rate(self.model.optimizer)
        self.log(f"epoch {epoch + 1} dev ({len(hyps)} sentences): {scores.format()}")
        if self.writer is not None:
            step = int(self.model.optimizer.iterations.numpy())
            with self.writer.as_default(step=step):
                tf.summary.scalar("dev_bleu", scores.bleu)
                tf.summary.scalar("dev_chrf", scores.chrf)
                tf.summary.scalar("learning_rate", logs["learning_rate"])
                lines = [
                    f"| source | {s} |\n| reference | {r} |\n| hypothesis | {h} |"
                    for s, r, h in list(zip(self.sources, self.references, hyps))[: self.samples]
                ]
                if lines:
                    tf.summary.text("dev_samples", "\n\n".join(lines))
            self.writer.flush()


class Checkpointer(keras.callbacks.Callback):
    """Saves the 'last' checkpoint every `every` steps and at each epoch end, and the 'best' one
    when the monitored dev score improves; with `keep` > 0 the last `keep` epoch-end checkpoints
    stay. `state_fn(best)` gives the state dict to store; put this callback after those whose
    counters the state records."""

    def __init__(self, store, every: int, state_fn, monitor="val_bleu", best=-math.inf, guard=None, keep: int = 0):
        super().__init__()
        self.store = store
        self.keep = keep  # epoch checkpoints kept (train.keep_checkpoints)
        self.every = every
        self.state_fn = state_fn
        self.monitor = monitor
        self.best = best
        self.guard = guard  # a StopOnNaN: never checkpoint a NaN model

    def _ok(self):
        return self.guard is None or self.guard.nan_step is None

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every == 0 and self._ok():
            self.store.save(self.model, self.state_fn(self.best))

    def on_epoch_end(self, epoch, logs=None):
        if not self._ok():
            return
        value = (logs or {}).get(self.monitor)
        improved = value is not None and value > self.best
        if improved:
            self.best = float(value)
        self.store.save(
            self.model,
            self.state_fn(self.best),
            best=improved,
            extra_pointer={self.monitor: self.best} if improved else None,
            keep=self.keep,
        )

    def on_train_end(self, logs=None):
        """A run stopped early (time budget) keeps its last step."""
        if self._ok():
            self.store.save(self.model, self.state_fn(self.best))
