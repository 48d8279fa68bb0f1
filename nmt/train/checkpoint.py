"""Atomic checkpoints in a run directory, safe against kill -9 at any moment.

Layout under RUN_DIR/checkpoints/:

    ckpt-<step>[.<n>]/weights.weights.h5   model + optimizer variables (Keras' save_weights;
                                     .<n> when the same step is saved again)
    ckpt-<step>/state.json           step, epoch, position in the epoch, callback states, and the
                                     state of the model's random generators (dropout masks)
    last.json                        {"dir": "ckpt-<step>"}: the newest complete checkpoint
    best.json                        {"dir": "ckpt-<step>", "bleu": ...}: the best by dev BLEU

A checkpoint directory is written under a temporary name and renamed when complete; the pointer
files are replaced atomically (write a temporary file, fsync, os.replace) only after that. So a
process killed at any instant leaves `last.json` naming a complete checkpoint. Directories that
no pointer names are removed after each save.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from nmt.errors import UserError
from nmt.files import atomic_write_text, child, fsync_dir, new_temp_dir, write_error
from nmt.rundir import CHECKPOINTS_DIR

WEIGHTS = "weights.weights.h5"
STATE = "state.json"


def weights_bytes(model) -> int:
    """About the size of the model's weights file: its variables and the optimizer's, plus HDF5 overhead."""
    import numpy as np

    variables = list(model.variables) + list(getattr(getattr(model, "optimizer", None), "variables", []) or [])
    raw = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
    return int(raw * 1.1) + (256 << 10)


def check_free_space(directory: Path, needed: int, what: Path) -> None:
    """Refuses, in one line, a write of `needed` bytes where the file system has less room. HDF5 (Keras'
    weights files) does not fail cleanly on a full disk (tracebacks from its clean-up, then a crash), so
    a checkpoint that cannot fit is not started."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return
    if free < needed:
        raise UserError(
            f"checkpoint {what}: cannot write it (No space left on device: about {needed / 1e6:.1f} MB needed, "
            f"{free / 1e6:.1f} MB free); free some space and continue with --resume"
        )


def rng_variables(model) -> list:
    """The model's variables that are not weights: the states of its Keras SeedGenerators (dropout
    masks), in the model's fixed variable order. Keras' save_weights leaves them out, so a resumed
    run would draw other dropout masks than the uninterrupted one without them."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


class CheckpointStore:
    """Writes and reads the checkpoints of one run directory."""

    def __init__(self, run_dir: str | Path):
        self.root = Path(run_dir) / CHECKPOINTS_DIR

    def _pointer(self, name: str) -> dict | None:
        path = self.root / f"{name}.json"
        if not path.is_file():
            return None
        try:
            pointer = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            raise UserError(
                f'{path}: not a valid checkpoint pointer (expected {{"dir": "ckpt-..."}}); the file is damaged'
            ) from None
        if not isinstance(pointer, dict) or not isinstance(pointer.get("dir"), str):
            raise UserError(
                f'{path}: not a valid checkpoint pointer (expected {{"dir": "ckpt-..."}}), got {pointer!r:.80}'
            )
        return pointer

    def path(self, name: str) -> Path | None:
        """The directory of the 'last' or 'best' checkpoint, or None."""
        pointer = self._pointer(name)
        if pointer is None:
            return None
        return child(self.root, pointer["dir"], str(self.root / f"{name}.json"))

    def state(self, name: str) -> dict | None:
        directory = self.path(name)
        if directory is None:
            return None
        return self._read_state(directory)

    def _read_state(self, directory: Path) -> dict:
        path = directory / STATE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: missing; the checkpoint {directory.name} is incomplete") from None
        except (ValueError, OSError) as error:
            raise UserError(
                f"{path}: damaged checkpoint state ({type(error).__name__}); expected the JSON written by train.py"
            ) from None
        if not isinstance(state, dict) or not isinstance(state.get("step"), int):
            raise UserError(
                f"{path}: damaged checkpoint state (no integer 'step'); expected the JSON written by train.py"
            )
        return state

    def _free_name(self, step: int) -> str:
        """ckpt-<step>, or ckpt-<step>.<n> when that step was saved before (an epoch end right after a
        periodic save): a new name, so the directory a pointer names is never touched while it is
        written."""
        name = f"ckpt-{step:08d}"
        n = 1
        while (self.root / name).exists():
            name = f"ckpt-{step:08d}.{n}"
            n += 1
        return name

    def save(self, model, state: dict, best: bool = False, extra_pointer: dict | None = None) -> Path:
        """Saves model (+ optimizer) weights and state as a new checkpoint and points 'last' at it
        (and 'best' too when best is set).

        Order: the new directory is written under a temporary name and renamed to a name no pointer
        uses; then the pointers are replaced atomically; only then are directories no pointer names
        removed. At every instant last.json (and best.json) name a complete checkpoint."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            name = self._free_name(int(state["step"]))
            final = self.root / name
            tmp = new_temp_dir(self.root, f".{name}.")
        except OSError as error:
            raise write_error(self.root, error, "checkpoint") from None
        state = {**state, "rng": [{"path": v.path, "value": v.numpy().tolist()} for v in rng_variables(model)]}
        try:
            check_free_space(tmp, weights_bytes(model), final)
            model.save_weights(tmp / WEIGHTS)
            atomic_write_text(tmp / STATE, json.dumps(state, indent=1))
            os.replace(tmp, final)
            fsync_dir(self.root)
        except BaseException as error:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(error, OSError):
                raise write_error(final, error, "checkpoint") from None
            raise
        atomic_write_text(self.root / "last.json", json.dumps({"dir": name}), what="checkpoint pointer")
        if best:
            atomic_write_text(
                self.root / "best.json", json.dumps({"dir": name, **(extra_pointer or {})}), what="checkpoint pointer"
            )
        self._clean()
        return final

    def _clean(self) -> None:
        keep = {p.name for p in (self.path("last"), self.path("best")) if p is not None}
        for entry in self.root.iterdir():
            if entry.is_dir() and entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)

    def load(self, model, name: str = "last") -> dict:
        """Loads the named checkpoint's weights (model + optimizer, which must be built) -> state."""
        directory = self.path(name)
        if directory is None:
            raise UserError(f"{self.root}: no {name} checkpoint to load")
        if not directory.is_dir():
            raise UserError(
                f"{self.root / (name + '.json')}: names {directory.name}, which does not exist; "
                "the checkpoints are damaged"
            )
        state = self._read_state(directory)
        try:
            model.load_weights(directory / WEIGHTS)
        except Exception as error:  # a truncated or foreign HDF5 file, or weights of another model
            detail = " ".join(str(error).split())[:200]
            raise UserError(
                f"{directory / WEIGHTS}: cannot load the checkpoint's weights ({type(error).__name__}: {detail})"
            ) from None
        variables, saved = rng_variables(model), state.get("rng")
        if saved is None:  # written before checkpoints held them: the generators start afresh
            logging.getLogger(__name__).warning(
                f"{directory / STATE} holds no random-generator states (an older checkpoint); "
                "dropout masks after it differ from an uninterrupted run's"
            )
            return state
        if len(variables) != len(saved):
            raise UserError(
                f"{directory / STATE}: {len(saved)} random-generator states for a model with {len(variables)}"
            )
        try:
            for variable, entry in zip(variables, saved):
                variable.assign(entry["value"])
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"{directory / STATE}: damaged random-generator state ({type(error).__name__})") from None
        return state
