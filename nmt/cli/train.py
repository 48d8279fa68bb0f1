#!/usr/bin/env python
"""Train a GRU encoder-decoder: nmt train (python train.py) --config FILE [--run-dir DIR] [--set k=v ...] [--resume]

Command line only; the work is in nmt.train.prepare (before TensorFlow is imported) and
nmt.train.trainer. User mistakes end in one line on stderr ("error: ...", exit status 2), not a
traceback.

Every message goes through the standard `logging` logger "nmt" (the library's modules log under it and
install no handler). For the length of `main` this module gives it two handlers (`RunLog`): standard
error, where a message looks as it always has (no time stamp; "warning: " or "error: " before a warning or
an error), and RUN_DIR/train.log, each line with its time stamp and level, opened once
nmt.train.prepare has checked the run directory and written it (a refused run writes no train.log);
the messages logged before that are kept and written first. --resume appends to train.log. Keras'
progress bar is drawn on the terminal only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

#: train.log's lines: "2026-12-07 11:40:02 INFO corpus: ..." (every line of a message stamped)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class TerminalFormatter(logging.Formatter):
    """A message as train.py has always printed it: bare, "warning: ..." or "error: ..."."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            return f"error: {message}"
        if record.levelno >= logging.WARNING:
            return f"warning: {message}"
        return message


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a message comes (as logging's own last-resort handler does),
    with the TerminalFormatter."""

    def __init__(self):
        super().__init__()
        self.setFormatter(TerminalFormatter())

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class FileFormatter(logging.Formatter):
    """Each line of a message (and of its traceback, if any) after its record's time stamp and level (a
    score is two lines)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = f"{self.formatTime(record, TIME_FORMAT)} {record.levelname}"
        text = record.getMessage()
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return "\n".join(f"{stamp} {line}" for line in text.split("\n"))


class LogFile(logging.FileHandler):
    """RUN_DIR/train.log, appended to. Where it cannot be written (a full disk), a warning says so once on
    standard error and the file takes no more messages: the terminal still shows them, and the error
    that ends the run stays the last line there."""

    def __init__(self, path: Path):
        super().__init__(path, mode="a", encoding="utf-8")
        self.setFormatter(FileFormatter())
        self.failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # what could not be written before cannot be now
            pass

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            error = sys.exc_info()[1]
            reason = getattr(error, "strerror", None) or error
            sys.stderr.write(
                f"warning: {self.baseFilename}: cannot write it ({reason}); messages go to the terminal only\n"
            )


class _Held(logging.Handler):
    """Keeps records until train.log may be written."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class RunLog:
    """The handlers of train.py on the "nmt" logger (the module docstring says what they do); `close()`
    takes them off again and restores the logger."""

    def __init__(self):
        self.logger = logging.getLogger("nmt")
        self._saved = (self.logger.level, self.logger.propagate)
        self.terminal = StderrHandler()
        self.held = _Held()
        self.file: logging.FileHandler | None = None
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False  # printed once, whatever handlers the root logger has
        self.logger.addHandler(self.terminal)
        self.logger.addHandler(self.held)

    def to_file(self, path: Path) -> None:
        """Appends the messages so far, then every later one, to `path` (RUN_DIR/train.log)."""
        self.file = LogFile(path)
        for record in self.held.records:
            self.file.handle(record)
        for handler in (self.held, self.terminal):
            self.logger.removeHandler(handler)
        # the file first: a warning that it cannot be written comes before the message on the terminal
        self.logger.addHandler(self.file)
        self.logger.addHandler(self.terminal)

    def crashed(self) -> None:
        """Writes the exception being handled, with its traceback, to train.log (if it is open); Python
        prints it on the terminal as it always has."""
        if self.file is not None:
            message = "train.py stopped on an unexpected error:"
            record = self.logger.makeRecord(self.logger.name, logging.ERROR, __file__, 0, message, None, sys.exc_info())
            self.file.handle(record)

    def close(self) -> None:
        for handler in (self.terminal, self.held, self.file):
            if handler is not None:
                self.logger.removeHandler(handler)
                handler.close()
        self.logger.setLevel(self._saved[0])
        self.logger.propagate = self._saved[1]


def parse_args(argv=None):
    from nmt.errors import ArgumentParser

    p = ArgumentParser(description="Train an nmt model (see configs/ for commented configs).")
    p.add_argument("--config", required=True, help="YAML config file, e.g. configs/toy.yaml")
    p.add_argument("--run-dir", help="where checkpoints, logs and the export go (default: runs/<config name>)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=3 (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up and runtime messages")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="remove what an earlier run wrote into --run-dir and start over (refused for a directory "
        "that is not a run directory; files of your own in it are kept)",
    )
    args = p.parse_args(argv)
    if args.resume and args.overwrite:
        p.error("--resume and --overwrite exclude each other")
    return args


def main(argv=None) -> int:
    from nmt.errors import UserError, fail

    try:
        args = parse_args(argv)
    except UserError as error:
        return fail(error)
    run_log = RunLog()
    try:
        return run(args, run_log)
    except Exception:  # a bug, not a user's mistake: its traceback is part of the record
        run_log.crashed()
        raise
    finally:
        run_log.close()


def run(args, run_log: RunLog) -> int:
    from nmt.errors import UserError

    try:
        from nmt import config, rundir
        from nmt.train.prepare import prepare

        # Mistakes in the config, the run directory, the corpus or the tokenizer are reported before
        # TensorFlow (seconds to load) is imported, and before anything is changed on disk.
        cfg = config.load(args.config, args.overrides)
        run_dir = args.run_dir or os.path.join("runs", os.path.splitext(os.path.basename(args.config))[0])
        prepared = prepare(cfg, run_dir, resume=args.resume, overwrite=args.overwrite)
        run_log.to_file(prepared.run_dir / rundir.TRAIN_LOG)  # checked and written: the directory is ours
        from nmt.cli.quiet import import_tensorflow

        import_tensorflow(verbose=args.verbose)
        from nmt.train import trainer

        # Keras draws its progress bar on standard output; ours goes to standard error, with the other
        # messages, so that standard output stays free for what a command produces.
        with contextlib.redirect_stdout(sys.stderr):
            result = trainer.train(prepared)
    except UserError as exc:
        logger.error(str(exc))
        return 2
    except OSError as exc:  # e.g. a full disk under a log or a checkpoint: say which file, no traceback
        where = exc.filename or args.run_dir or "the run directory"
        logger.error(f"{where}: {exc.strerror or exc}")
        return 2
    except KeyboardInterrupt:
        logger.info("interrupted: the last checkpoint is kept; continue with --resume")
        return 130
    logger.info(f"done: {result.steps:,} steps ({result.stopped}); run directory {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
