"""Atomic checkpoints in a run directory, safe against kill -9 at any moment.

Layout under RUN_DIR/checkpoints/:

    ckpt-<step>/weights.weights.h5   model + optimizer variables (Keras' save_weights)
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
import os
import shutil
import sys
import tempfile
from pathlib import Path

from nmt.errors import UserError

WEIGHTS = "weights.weights.h5"
STATE = "state.json"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Writes text to path via a temporary file in the same directory and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def rng_variables(model) -> list:
    """The model's variables that are not weights: the states of its Keras SeedGenerators (dropout
    masks), in the model's fixed variable order. Keras' save_weights leaves them out, so a resumed
    run would draw other dropout masks than the uninterrupted one without them."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


class CheckpointStore:
    """Writes and reads the checkpoints of one run directory."""

    def __init__(self, run_dir: str | Path):
        self.root = Path(run_dir) / "checkpoints"

    def _pointer(self, name: str) -> dict | None:
        path = self.root / f"{name}.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise UserError(f"{path}: not valid JSON; the checkpoint pointer is damaged") from None

    def path(self, name: str) -> Path | None:
        """The directory of the 'last' or 'best' checkpoint, or None."""
        pointer = self._pointer(name)
        return None if pointer is None else self.root / pointer["dir"]

    def state(self, name: str) -> dict | None:
        directory = self.path(name)
        if directory is None:
            return None
        return json.loads((directory / STATE).read_text(encoding="utf-8"))

    def save(self, model, state: dict, best: bool = False, extra_pointer: dict | None = None) -> Path:
        """Saves model (+ optimizer) weights and state as a new checkpoint and points 'last' at it
        (and 'best' too when best is set)."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"ckpt-{int(state['step']):08d}"
        final = self.root / name
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
        state = {**state, "rng": [{"path": v.path, "value": v.numpy().tolist()} for v in rng_variables(model)]}
        try:
            model.save_weights(tmp / WEIGHTS)
            with open(tmp / STATE, "w", encoding="utf-8") as f:
                json.dump(state, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            if final.exists():  # the same step saved again (e.g. epoch end right after a periodic save)
                shutil.rmtree(final)
            os.replace(tmp, final)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        atomic_write_text(self.root / "last.json", json.dumps({"dir": name}))
        if best:
            atomic_write_text(self.root / "best.json", json.dumps({"dir": name, **(extra_pointer or {})}))
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
        model.load_weights(directory / WEIGHTS)
        state = json.loads((directory / STATE).read_text(encoding="utf-8"))
        variables, saved = rng_variables(model), state.get("rng")
        if saved is None:  # written before checkpoints held them: the generators start afresh
            print(f"warning: {directory / STATE} holds no random-generator states (an older checkpoint); "
                  "dropout masks after it differ from an uninterrupted run's", file=sys.stderr)
            return state
        if len(variables) != len(saved):
            raise UserError(f"{directory / STATE}: {len(saved)} random-generator states for a model with {len(variables)}")
        for variable, entry in zip(variables, saved):
            variable.assign(entry["value"])
        return state
