"""The run directory's layout: the name of every file and folder train.py writes into RUN_DIR.

    config.yaml          the resolved config (every default filled in)
    tokenizer/           SentencePiece model(s) and tokenizer.json
    checkpoints/         ckpt-<step>/ (weights, state.json), last.json, best.json (nmt.checkpoint)
    model.keras          the best model by dev BLEU
    shortlist.npz        the lexical shortlist's table (nmt.decode.shortlist)
    export/              the text-to-text SavedModel
    decode_tuned.yaml    the length penalty chosen on dev (decode.tune_length_penalty; nmt.decode.tuning)
    curves.png           loss, dev BLEU (against steps and minutes) and learning rate (nmt.train.plotting)
    logs/                train.csv, steps.tsv, tensorboard/
    train.log            every message train.py printed, time-stamped, with its level (appended to on --resume)
    results.json         the final dev/test BLEU and chrF with signatures, search, steps, minutes, device,
                         precision, package versions, sha256 of config.yaml (nmt.train.trainer.write_results)

`--overwrite` removes these entries (and the temporary ones training leaves when killed) and
nothing else, and only from a directory that is a run directory: one whose config.yaml is a
config written by train.py. A directory of anything else is refused, so a mistyped --run-dir
cannot delete a checkout or a home folder.

One writer per run directory: `WriterLock` holds an operating-system lock (flock) on RUN_DIR/.train.lock
for as long as a training process lives, so a second train.py on the same directory (a second start by
mistake, --resume or --overwrite while the first still runs) is refused with one line naming the process
that holds it, before anything is read or written. The kernel drops the lock when its process ends, however
it ends (kill -9 included), so --resume right after a kill works; the file itself stays, holding the last
writer's process id. Readers (translate.py, the translator, the export) never take it.

Before training into a directory, `check_for_training` says (changing nothing) whether the config
may go there: a new or empty directory, a run of the same config with --resume, or --overwrite of a
run directory. TensorFlow-free, so train.py reports a wrong --run-dir at once; the run is then
prepared (the directory cleared and written) by `nmt.train.prepare.prepare`, which calls it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from nmt.errors import UserError

if TYPE_CHECKING:
    from nmt.config import Config

CONFIG_FILE = "config.yaml"
TOKENIZER_DIR = "tokenizer"
CHECKPOINTS_DIR = "checkpoints"
MODEL_FILE = "model.keras"
EXPORT_DIR = "export"
SHORTLIST_FILE = "shortlist.npz"
TUNED_DECODE_FILE = "decode_tuned.yaml"
CURVES_FILE = "curves.png"
LOGS_DIR = "logs"
STEPS_LOG = "steps.tsv"
EPOCHS_LOG = "train.csv"
TENSORBOARD_DIR = "tensorboard"
TRAIN_LOG = "train.log"
RESULTS_FILE = "results.json"

#: The writer's lock (`WriterLock`): not a run's output, so --overwrite keeps it and it does not make a
#: directory non-empty.
LOCK_FILE = ".train.lock"

#: Temporary entries of a run being written: the tokenizer being trained, model.keras being saved.
TOKENIZER_TMP = ".tokenizer.tmp"
MODEL_TMP = ".model.tmp.keras"

#: Everything train.py writes at the top of a run directory.
ENTRIES = (
    CONFIG_FILE,
    TOKENIZER_DIR,
    CHECKPOINTS_DIR,
    MODEL_FILE,
    EXPORT_DIR,
    SHORTLIST_FILE,
    TUNED_DECODE_FILE,
    LOGS_DIR,
    CURVES_FILE,
    TRAIN_LOG,
    RESULTS_FILE,
    TOKENIZER_TMP,
    MODEL_TMP,
)
#: Prefixes of the temporary files and folders written beside those entries (nmt.files).
TEMP_PREFIXES = tuple(f".{name}." for name in ENTRIES)

#: The sections of a config written by train.py (nmt.config.SECTIONS; listed here so that checking a
#: directory needs no model code).
CONFIG_SECTIONS = ("corpus", "tokenizer", "data", "model", "train", "decode")


def is_run_dir(path) -> bool:
    """True if path/config.yaml is a mapping with the sections of a config written by train.py."""
    config = Path(path) / CONFIG_FILE
    try:
        values = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(values, dict) and set(CONFIG_SECTIONS) <= set(values)


def ours(name: str) -> bool:
    """True for a top-level entry of a run directory that train.py writes (or leaves when killed)."""
    return name in ENTRIES or name.startswith(TEMP_PREFIXES)


def _check_clearable(path: Path) -> None:
    """A one-line UserError unless `path` is missing, empty, or a run directory (what `clear` may empty)."""
    if not path.exists():
        return
    if not path.is_dir():
        raise UserError(f"--run-dir {path}: not a directory")
    entries = sorted(p.name for p in path.iterdir() if p.name != LOCK_FILE)
    if entries and not is_run_dir(path):
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise UserError(
            f"--overwrite: {path} is not a run directory (no {CONFIG_FILE} written by train.py; it holds {shown}); "
            "nothing was deleted; give a new or empty --run-dir"
        )


def clear(path) -> list[str]:
    """Removes what train.py wrote into the run directory path -> the names removed.

    Refuses (one-line UserError) a non-empty directory that is not a run directory. Entries of the
    user's own (notes, other files) are kept."""
    path = Path(path)
    _check_clearable(path)
    if not path.exists():
        return []
    removed = []
    for name in sorted(p.name for p in path.iterdir()):
        if not ours(name):
            continue
        entry = path / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(name)
    return removed


class WriterLock:
    """The lock of the one process that writes a run directory (see the module docstring).

    `check(run_dir)` raises the one-line error if another process holds it, changing nothing on disk;
    `WriterLock(run_dir)` takes it (creating the directory and the lock file) and keeps it until `release()`
    or until the object or its process goes away."""

    def __init__(self, run_dir):
        self._fd = None
        self.path = Path(run_dir) / LOCK_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise UserError(
                f"--run-dir {self.path.parent}: cannot create {LOCK_FILE} ({error.strerror or error})"
            ) from None
        try:
            _take(fd, self.path)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        with contextlib.suppress(OSError):  # the process id is for people; the lock holds without it
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())

    @staticmethod
    def check(run_dir) -> None:
        path = Path(run_dir) / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return  # no lock file (or none readable): no writer holds this directory
        try:
            _take(fd, path)
        finally:
            os.close(fd)  # closing drops a lock taken just now

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.release()


def _take(fd: int, path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        raise UserError(
            f"--run-dir {path.parent}: another training process (pid {holder}) is writing this run directory; "
            "wait for it to end or stop it (a run directory has one writer at a time)"
        ) from None


def check_same_tokenizer(run_dirs, what: str = "--model") -> None:
    """A one-line UserError unless every run directory's tokenizer/ holds the same files as the first's (an
    ensemble decodes with one vocabulary)."""

    def files(run_dir: Path) -> dict[str, bytes]:
        directory = Path(run_dir) / TOKENIZER_DIR
        try:
            return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}
        except OSError as error:
            raise UserError(f"{what} {run_dir}: cannot read {TOKENIZER_DIR}/ ({error.strerror or error})") from None

    first = files(run_dirs[0])
    for other in run_dirs[1:]:
        if files(other) != first:
            raise UserError(
                f"{what} {other}: its tokenizer differs from that of {run_dirs[0]}; an ensemble needs models with "
                "one vocabulary (the same tokenizer/)"
            )


def check_run_dir(run_dir, what: str | None = None) -> Path:
    """The run directory as a Path; a one-line UserError naming what is missing (and starting with what,
    e.g. a command line's option, when given)."""
    d = Path(run_dir)
    name = f"{what} {d}" if what else str(d)
    if not d.exists():
        raise UserError(f"{name}: no such run directory")
    if not d.is_dir():
        raise UserError(f"{name}: not a directory (expected a run directory written by train.py)")
    missing = []
    if not (d / CONFIG_FILE).is_file():
        missing.append(CONFIG_FILE)
    if not (d / TOKENIZER_DIR).is_dir():
        missing.append(TOKENIZER_DIR + "/")
    if not (d / MODEL_FILE).is_file():
        missing.append(MODEL_FILE)
    if missing:
        raise UserError(
            f"{name}: not a complete run directory, missing {', '.join(missing)} "
            f"(expected {CONFIG_FILE}, {TOKENIZER_DIR}/ and {MODEL_FILE}, written by train.py)"
        )
    return d


# ------------------------------------------------------------------------------ training into a run directory

#: The model settings a fine-tuned run may change from its parent's (train.init_from): they change no weight.
FINE_TUNE_CHANGES = {"embedding_dropout", "layer_dropout", "output_dropout", "word_dropout"}


def check_parent(cfg: Config, run_dir: Path) -> Path:
    """The parent run of a fine-tuning run (train.init_from), checked without TensorFlow: a complete run
    directory other than `run_dir`, whose model section equals cfg's but for the dropout rates and whose
    tokenizer section equals cfg's (the child uses its tokenizer and its weights). -> its path; a one-line
    UserError naming the first key that differs."""
    from nmt import config as config_module

    what = "train.init_from"
    parent = check_run_dir(cfg.train.init_from, what=what)
    if parent.resolve() == Path(run_dir).resolve():
        raise UserError(f"{what} {parent}: is this run's own directory; expected another run to start from")
    theirs = config_module.load(parent / CONFIG_FILE).to_dict()
    ours = cfg.to_dict()
    for section, allowed in (("model", FINE_TUNE_CHANGES), ("tokenizer", set())):
        for key, value in ours[section].items():
            if key in allowed:
                continue
            there = theirs[section].get(key, "<missing>")
            if there != value:
                rule = (
                    "its model must match except the dropout rates"
                    if section == "model"
                    else "it uses the parent's tokenizer"
                )
                raise UserError(
                    f"{what} {parent}: {section}.{key} is {there!r} there but {value!r} here; a fine-tuned run "
                    f"starts from its parent's weights, so {rule}"
                )
    return parent


#: Config keys that may change between a run and its resumption (they do not change the computation):
#: the budget, the progress display, and which checkpoints are kept and what model.keras holds at the end.
RESUMABLE_CHANGES = {
    ("train", "epochs"),
    ("train", "max_time"),
    ("train", "max_steps"),
    ("train", "verbose"),
    ("train", "keep_checkpoints"),
    ("train", "average_checkpoints"),
}


def config_differences(old: dict, new: dict, allowed: frozenset | set = frozenset()) -> list[str]:
    """-> "section.key: old -> new" for every key of `new` whose value `old` does not share, except
    the (section, key) pairs in `allowed`."""
    diffs = []
    for section in new:
        for key in new[section]:
            if (section, key) in allowed:
                continue
            a = (old.get(section) or {}).get(key, "<missing>")
            b = new[section][key]
            if a != b:
                diffs.append(f"{section}.{key}: {a!r} -> {b!r}")
    return diffs


def _not_ours(config_path: Path) -> UserError:
    return UserError(
        f"{config_path}: not a config written by train.py; use another --run-dir, or --overwrite to start over"
    )


def check_for_training(cfg: Config, run_dir: Path, resume: bool, overwrite: bool) -> bool:
    """Checks, changing nothing, that train.py may train `cfg` into `run_dir` (a one-line UserError
    otherwise). Fast: `nmt.train.prepare.prepare` calls it before it reads the corpus.

    -> whether there is a checkpoint to resume from (False for a fresh start, and for --resume of a
    run that was stopped before its first checkpoint, which starts again from step 0 with its config).
    """
    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    has_checkpoint = (run_dir / CHECKPOINTS_DIR / "last.json").is_file()
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--run-dir {run_dir}: not a directory")
    if overwrite and not resume:
        _check_clearable(run_dir)
        return False
    if config_path.is_file():
        try:
            old = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            raise _not_ours(config_path) from None
        if not isinstance(old, dict):
            raise _not_ours(config_path)
        diffs = config_differences(old, cfg.to_dict(), RESUMABLE_CHANGES if resume else frozenset())
        if diffs:
            raise UserError(
                f"{config_path} holds a different config ({'; '.join(diffs[:3])}"
                f"{'; ...' if len(diffs) > 3 else ''}); use another --run-dir, or --overwrite to start over"
            )
        if has_checkpoint and not resume:
            raise UserError(
                f"{run_dir} already holds a training run; pass --resume to continue it or --overwrite to start over"
            )
    if resume and not has_checkpoint and not config_path.is_file():
        raise UserError(
            f"--resume: {run_dir} holds no training run to resume (no {CONFIG_FILE}); start it without --resume"
        )
    return resume and has_checkpoint
