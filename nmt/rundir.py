"""The run directory's layout: the name of every file and folder train.py writes into RUN_DIR.

    config.yaml          the resolved config (every default filled in)
    tokenizer/           SentencePiece model(s) and tokenizer.json
    checkpoints/         ckpt-<step>/ (weights, state.json), last.json, best.json (nmt.checkpoint)
    model.keras          the best model by dev BLEU
    export/              the text-to-text SavedModel
    curves.png           loss, dev BLEU (against steps and minutes) and learning rate (nmt.plotting)
    logs/                train.csv, steps.tsv, tensorboard/

`--overwrite` removes these entries (and the temporary ones training leaves when killed) and
nothing else, and only from a directory that is a run directory: one whose config.yaml is a
config written by train.py. A directory of anything else is refused, so a mistyped --run-dir
cannot delete a checkout or a home folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from nmt.errors import UserError

CONFIG_FILE = "config.yaml"
TOKENIZER_DIR = "tokenizer"
CHECKPOINTS_DIR = "checkpoints"
MODEL_FILE = "model.keras"
EXPORT_DIR = "export"
CURVES_FILE = "curves.png"
LOGS_DIR = "logs"
STEPS_LOG = "steps.tsv"
EPOCHS_LOG = "train.csv"
TENSORBOARD_DIR = "tensorboard"

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
    LOGS_DIR,
    CURVES_FILE,
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


def clear(path) -> list[str]:
    """Removes what train.py wrote into the run directory path -> the names removed.

    Refuses (one-line UserError) a non-empty directory that is not a run directory. Entries of the
    user's own (notes, other files) are kept."""
    path = Path(path)
    if not path.exists():
        return []
    if not path.is_dir():
        raise UserError(f"--run-dir {path}: not a directory")
    entries = sorted(p.name for p in path.iterdir())
    if not entries:
        return []
    if not is_run_dir(path):
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise UserError(
            f"--overwrite: {path} is not a run directory (no {CONFIG_FILE} written by train.py; it holds {shown}); "
            "nothing was deleted; give a new or empty --run-dir"
        )
    removed = []
    for name in entries:
        if not ours(name):
            continue
        entry = path / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(name)
    return removed


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
