"""The checkpoints of a run directory: atomic (safe against kill -9 at any moment), resumable, and
the weights translation picks from them.

Layout under RUN_DIR/checkpoints/:

    ckpt-<step>[.<n>]/weights.weights.h5   model + optimizer variables (Keras' save_weights;
                                     .<n> when the same step is saved again)
    ckpt-<step>/state.json           step, epoch, position in the epoch, callback states, and the
                                     state of the model's random generators (dropout masks)
    last.json                        {"dir": "ckpt-<step>", "kept": [...]}: the newest complete
                                     checkpoint, and the epoch checkpoints kept (train.keep_checkpoints)
    best.json                        {"dir": "ckpt-<step>", "val_bleu": ...}: the best by dev BLEU

A checkpoint directory is written under a temporary name and renamed when complete; the pointer
files are replaced atomically (write a temporary file, fsync, os.replace) only after that. So a
process killed at any instant leaves `last.json` naming a complete checkpoint, and the list of kept
checkpoints moves with it in the same write. Directories that no pointer names are removed after
each save.

Kept checkpoints (`train.keep_checkpoints: N`): the last N checkpoints saved at an epoch's end (Keras
ends an epoch also where the time budget or max_steps stops it), kept beside `last` and `best`. The
weights to translate with (`translate.py --checkpoint`, `select_weights`) are `best`, `last`, a step
(`ckpt-<step>` of any checkpoint there) or `average`: the element-wise mean of the kept checkpoints'
model weights (checkpoint averaging; the optimizer's variables are not read).
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

    def kept(self) -> list[str]:
        """-> the names of the kept epoch checkpoints (train.keep_checkpoints), oldest first."""
        pointer = self._pointer("last") or {}
        kept = pointer.get("kept", [])
        if not isinstance(kept, list) or not all(isinstance(name, str) for name in kept):
            raise UserError(f"{self.root / 'last.json'}: damaged list of kept checkpoints, got {kept!r:.80}")
        return kept

    def save(self, model, state: dict, best: bool = False, extra_pointer: dict | None = None, keep: int = 0) -> Path:
        """Saves model (+ optimizer) weights and state as a new checkpoint and points 'last' at it
        (and 'best' too when best is set). `keep` > 0: the checkpoint of an epoch's end, kept among the
        last `keep` such ones (a second one of the same step replaces the first).

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
        kept = self.kept()
        if keep:
            if kept and self._step_of(kept[-1]) == int(state["step"]):
                kept = kept[:-1]
            kept = [*kept, name][-keep:]
        last = {"dir": name, "kept": kept} if kept else {"dir": name}
        atomic_write_text(self.root / "last.json", json.dumps(last), what="checkpoint pointer")
        if best:
            atomic_write_text(
                self.root / "best.json", json.dumps({"dir": name, **(extra_pointer or {})}), what="checkpoint pointer"
            )
        self._clean()
        return final

    @staticmethod
    def _step_of(name: str) -> int | None:
        """-> the step in a checkpoint's name (ckpt-<step>[.<n>]), or None."""
        digits = name.removeprefix("ckpt-").split(".")[0]
        return int(digits) if name.startswith("ckpt-") and digits.isdigit() else None

    def _clean(self) -> None:
        keep = {p.name for p in (self.path("last"), self.path("best")) if p is not None} | set(self.kept())
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
        load_model_weights(model, directory)  # the optimizer's variables too: the model is compiled and built
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


# ------------------------------------------------------------------------------ weights to translate with

#: The names `translate.py --checkpoint` takes besides a step number.
CHECKPOINT_CHOICES = ("best", "last", "average")


def check_choice(value: str, what: str = "--checkpoint") -> str:
    """`value` if it is best, last, average or a step number (a non-negative integer); else a one-line
    UserError naming `what`. Checked before TensorFlow loads."""
    if value in CHECKPOINT_CHOICES or (value.isascii() and value.isdigit()):
        return value
    raise UserError(f"{what}: received {value!r}, expected best, last, average or a step number")


class CheckpointChoice:
    """The checkpoints of one run directory that `--checkpoint` names (`resolve`), and loading their
    weights into a model of the run (`apply`)."""

    def __init__(self, run_dir, choice: str, what: str = "--checkpoint"):
        self.store = CheckpointStore(run_dir)
        self.choice = check_choice(choice, what)
        self.what = what

    def resolve(self) -> list[Path]:
        """-> the checkpoint directories the choice names (several for `average`), each checked to be
        there; a one-line UserError saying what the run has instead."""
        store, choice = self.store, self.choice
        if choice in ("best", "last"):
            directory = store.path(choice)
            if directory is None:
                why = "it was trained without a dev set" if choice == "best" else "it has no checkpoint"
                raise UserError(f"{self.what} {choice}: {store.root.parent} has no {choice} checkpoint ({why})")
            found = [directory]
        elif choice == "average":
            found = [child(store.root, name, str(store.root / "last.json")) for name in store.kept()]
            if len(found) < 2:
                raise UserError(
                    f"{self.what} average: {store.root.parent} keeps {len(found)} epoch checkpoint(s), at least 2 "
                    "are needed (train it with train.keep_checkpoints: N, N >= 2)"
                )
        else:
            found = [p for p in self.available() if CheckpointStore._step_of(p.name) == int(choice)]
            if not found:
                steps = ", ".join(str(n) for n in sorted({CheckpointStore._step_of(p.name) for p in self.available()}))
                steps = steps or "none"
                raise UserError(
                    f"{self.what} {choice}: no checkpoint of step {int(choice)} in {store.root} (steps: {steps})"
                )
            found = found[-1:]  # ckpt-<step>.<n>: the latest save of that step
        for directory in found:
            if not (directory / WEIGHTS).is_file():
                raise UserError(f"{directory / WEIGHTS}: missing; the checkpoint {directory.name} is incomplete")
        return found

    def available(self) -> list[Path]:
        """-> the complete checkpoint directories of the run, by step."""
        if not self.store.root.is_dir():
            return []
        found = [p for p in self.store.root.iterdir() if p.is_dir() and CheckpointStore._step_of(p.name) is not None]
        return sorted(found, key=lambda p: (CheckpointStore._step_of(p.name), p.name))

    def apply(self, model) -> str:
        """Loads the chosen weights into `model` (a model of the run, built): one checkpoint's, or the
        element-wise mean of the kept ones' (`average`). -> what was loaded, for a log line."""
        directories = self.resolve()
        if len(directories) == 1:
            load_model_weights(model, directories[0])
            return f"{self.choice} checkpoint {directories[0].name}"
        average_weights(model, directories)
        return f"the average of {len(directories)} checkpoints ({', '.join(d.name for d in directories)})"


def load_model_weights(model, directory: Path) -> None:
    """Loads a checkpoint's weights into `model`: the optimizer's variables too where the model has a
    built optimizer, else the model's alone; a one-line UserError for a damaged file or the weights of
    another model."""
    try:
        model.load_weights(directory / WEIGHTS)
    except Exception as error:  # a truncated or foreign HDF5 file, or weights of another model
        detail = " ".join(str(error).split())[:200]
        raise UserError(
            f"{directory / WEIGHTS}: cannot load the checkpoint's weights ({type(error).__name__}: {detail})"
        ) from None


def average_weights(model, directories: list[Path]) -> None:
    """Sets every weight of `model` to the element-wise mean of that weight in the checkpoints
    `directories` (summed in float64, then cast to the variable's dtype)."""
    import numpy as np

    total = None
    for directory in directories:
        load_model_weights(model, directory)
        values = [np.asarray(v.numpy(), dtype=np.float64) for v in model.weights]
        total = values if total is None else [t + v for t, v in zip(total, values)]
    for variable, summed in zip(model.weights, total):
        variable.assign((summed / len(directories)).astype(variable.dtype))


def check_models(models, checkpoint: str | None = None) -> tuple[list[Path], str]:
    """The run directories of `--model` given once or more (an ensemble), checked before TensorFlow loads:
    each a complete run, all with the first one's tokenizer, and `--checkpoint`'s weights there in each.
    -> (the directories, what --checkpoint loads in each, for a line on standard error; "" without it)."""
    from nmt.rundir import check_run_dir, check_same_tokenizer

    run_dirs = [check_run_dir(model, what="--model") for model in models]
    if len(run_dirs) > 1:
        check_same_tokenizer(run_dirs)
    if checkpoint is None:
        return run_dirs, ""
    chosen = [CheckpointChoice(run_dir, checkpoint).resolve() for run_dir in run_dirs]
    return run_dirs, "; ".join(f"{d}: {', '.join(p.name for p in found)}" for d, found in zip(run_dirs, chosen))
