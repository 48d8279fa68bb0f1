"""nmt.checkpoint: a round trip of weights, optimizer and state; a crash at any file operation of a save
(including a second save of the same step) leaves a loadable last checkpoint; damaged checkpoints and
pointers are one-line errors; a pointer cannot lead outside the checkpoints folder."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from nmt import checkpoint as checkpoint_module
from nmt import files as files_module
from nmt.checkpoint import STATE, WEIGHTS, CheckpointStore
from nmt.errors import UserError


def small_model(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input([3]), keras.layers.Dense(4), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def train_a_step(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model.train_on_batch(rng.normal(size=[8, 3]).astype("float32"), rng.normal(size=[8, 2]).astype("float32"))


def variables(model) -> list:
    return [v.numpy().copy() for v in model.variables] + [v.numpy().copy() for v in model.optimizer.variables]


def test_round_trip_restores_weights_optimizer_and_state(tmp_path):
    model = small_model(1)
    train_a_step(model, 1)
    store = CheckpointStore(tmp_path)
    store.save(model, {"step": 1, "note": "x"}, best=True, extra_pointer={"val_bleu": 12.5})
    want = variables(model)
    other = small_model(2)
    state = CheckpointStore(tmp_path).load(other, "last")
    assert state["step"] == 1 and state["note"] == "x"
    for a, b in zip(want, variables(other)):
        np.testing.assert_array_equal(a, b)
    assert json.loads((tmp_path / "checkpoints" / "best.json").read_text())["val_bleu"] == 12.5


class Killed(BaseException):
    """Stands for the process dying at one file operation."""


def crash_at(monkeypatch, n: int) -> list:
    """Makes the n-th file operation of a save (rename, tree removal, fsync, file write) raise Killed."""
    calls = []

    def wrap(module, name):
        original = getattr(module, name)

        def op(*args, **kwargs):
            calls.append(name)
            if len(calls) == n:
                raise Killed(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, op)

    for module in (checkpoint_module.os, files_module.os):
        wrap(module, "replace")
        wrap(module, "fsync")
    wrap(checkpoint_module.shutil, "rmtree")
    return calls


def test_a_crash_at_any_moment_of_a_save_leaves_a_loadable_last_checkpoint(tmp_path, monkeypatch):
    """Saves step 10, then step 10 again (an epoch end right after a periodic save, with other
    weights) and step 20, crashing at the 1st, 2nd, ... file operation until a save completes: after
    every crash a new process (a new store) loads 'last', and gets the old or the new checkpoint whole."""
    model = small_model(1)
    CheckpointStore(tmp_path).save(model, {"step": 10, "version": "a"})
    versions = {"a": variables(model)}
    for step, version in ((10, "b"), (20, "c")):
        train_a_step(model, len(versions))
        versions[version] = variables(model)
        crashes = 0
        for n in range(1, 100):
            with monkeypatch.context() as m:
                crash_at(m, n)
                try:
                    CheckpointStore(tmp_path).save(model, {"step": step, "version": version})
                except Killed:
                    crashes += 1
                else:
                    break
            reader = small_model(3)
            state = CheckpointStore(tmp_path).load(reader, "last")
            assert state["version"] in versions, state
            for a, b in zip(versions[state["version"]], variables(reader)):
                np.testing.assert_array_equal(a, b)
        assert crashes >= 4, crashes  # the save went through several operations that could be cut
        reader = small_model(3)
        assert CheckpointStore(tmp_path).load(reader, "last")["version"] == version


def damaged_store(tmp_path):
    model = small_model(1)
    store = CheckpointStore(tmp_path)
    directory = store.save(model, {"step": 5})
    return model, store, directory


def assert_one_line(error, *parts):
    message = str(error.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message


def test_a_truncated_weights_file_is_one_line_naming_it(tmp_path):
    model, store, directory = damaged_store(tmp_path)
    data = (directory / WEIGHTS).read_bytes()
    (directory / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as error:
        store.load(model)
    assert_one_line(error, str(directory / WEIGHTS), "cannot load")


@pytest.mark.parametrize("content", ["", '{"step": 5, "rn', "[1, 2]", '{"step": "five"}'])
def test_a_damaged_state_file_is_one_line_naming_it(tmp_path, content):
    model, store, directory = damaged_store(tmp_path)
    (directory / STATE).write_text(content)
    with pytest.raises(UserError) as error:
        store.load(model)
    assert_one_line(error, str(directory / STATE), "damaged")
    with pytest.raises(UserError):
        store.state("last")


@pytest.mark.parametrize(
    "pointer", ['{"dir": "../../outside"}', '{"dir": "/etc"}', '{"dir": 7}', "not json", '{"dir": "ckpt-99"}']
)
def test_bad_pointers_are_refused(tmp_path, pointer):
    model, store, _ = damaged_store(tmp_path)
    (tmp_path / "checkpoints" / "last.json").write_text(pointer)
    with pytest.raises(UserError) as error:
        store.load(model)
    assert_one_line(error, "last.json")


def test_a_pointer_through_a_symbolic_link_is_refused(tmp_path):
    model, store, directory = damaged_store(tmp_path)
    outside = tmp_path / "elsewhere"
    shutil.copytree(directory, outside)
    os.symlink(outside, tmp_path / "checkpoints" / "ckpt-link")
    (tmp_path / "checkpoints" / "last.json").write_text('{"dir": "ckpt-link"}')
    with pytest.raises(UserError) as error:
        store.load(model)
    assert_one_line(error, "leads outside")


# ------------------------------------------------------------------------------ kept checkpoints, averaging


def names(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.is_dir())


def test_the_last_n_epoch_checkpoints_are_kept_besides_last_and_best(tmp_path):
    model, store = small_model(1), CheckpointStore(tmp_path)
    store.save(model, {"step": 10}, best=True, keep=2)  # epoch 1, the best
    for step in (15, 20, 25, 30, 35, 40):  # periodic saves between epoch ends at 20, 30, 40
        store.save(model, {"step": step}, keep=2 if step % 10 == 0 else 0)
    assert store.kept() == ["ckpt-00000030", "ckpt-00000040"]
    assert names(tmp_path) == ["ckpt-00000010", "ckpt-00000030", "ckpt-00000040"]  # best, kept (last among them)
    store.save(model, {"step": 40})  # the end of training at an epoch's end: a second save of the step
    assert store.kept() == ["ckpt-00000030", "ckpt-00000040"]
    assert store.path("last").name == "ckpt-00000040.1"
    store.save(model, {"step": 40}, keep=2)  # an epoch end saved again at the same step replaces it
    assert store.kept() == ["ckpt-00000030", "ckpt-00000040.2"]


def test_without_keep_only_last_and_best_stay(tmp_path):
    model, store = small_model(1), CheckpointStore(tmp_path)
    for step in (10, 20, 30):
        store.save(model, {"step": step}, best=step == 10)
    assert store.kept() == [] and names(tmp_path) == ["ckpt-00000010", "ckpt-00000030"]
    assert json.loads((tmp_path / "checkpoints" / "last.json").read_text()) == {"dir": "ckpt-00000030"}


def weights_of(model) -> list:
    return [v.numpy().copy() for v in model.weights]


def test_average_is_the_element_wise_mean_of_the_kept_checkpoints(tmp_path):
    model, store = small_model(1), CheckpointStore(tmp_path)
    saved = []
    for step in (10, 20, 30):
        train_a_step(model, step)
        store.save(model, {"step": step}, keep=3)
        saved.append(weights_of(model))
    other = small_model(7)  # another model of the same shapes, without an optimizer
    other_plain = small_model(7)
    loaded = checkpoint_module.CheckpointChoice(tmp_path, "average").apply(other_plain)
    assert "average of 3 checkpoints" in loaded
    for got, *versions in zip(weights_of(other_plain), *saved):
        np.testing.assert_allclose(got, np.mean(versions, axis=0), rtol=1e-6, atol=1e-7)
    # one step, and best/last, load that checkpoint's weights exactly
    assert checkpoint_module.CheckpointChoice(tmp_path, "20").apply(other) == "20 checkpoint ckpt-00000020"
    for got, want in zip(weights_of(other), saved[1]):
        np.testing.assert_array_equal(got, want)
    checkpoint_module.CheckpointChoice(tmp_path, "last").apply(other)
    for got, want in zip(weights_of(other), saved[2]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "choice, message",
    [
        ("newest", "--checkpoint: received 'newest', expected best, last, average or a step number"),
        ("-3", "--checkpoint: received '-3', expected best, last, average or a step number"),
        ("25", "--checkpoint 25: no checkpoint of step 25 in"),
        ("best", "--checkpoint best: "),
        ("average", "--checkpoint average: "),
    ],
)
def test_a_checkpoint_that_is_not_there_is_one_line(tmp_path, choice, message):
    model, store = small_model(1), CheckpointStore(tmp_path)
    store.save(model, {"step": 10}, keep=2)
    store.save(model, {"step": 20})
    with pytest.raises(UserError) as error:
        checkpoint_module.CheckpointChoice(tmp_path, choice).resolve()
    text = str(error.value)
    assert text.startswith(message) and "\n" not in text
    if choice == "25":
        assert text.endswith("(steps: 10, 20)")
    if choice == "average":
        assert "keeps 1 epoch checkpoint(s), at least 2" in text
    if choice == "best":
        assert "no best checkpoint (it was trained without a dev set)" in text


def test_a_kept_name_cannot_lead_outside_the_checkpoints(tmp_path):
    model, store = small_model(1), CheckpointStore(tmp_path)
    store.save(model, {"step": 10}, keep=2)
    (tmp_path / "checkpoints" / "last.json").write_text(
        json.dumps({"dir": "ckpt-00000010", "kept": ["../../x", "ckpt-00000010"]})
    )
    with pytest.raises(UserError, match="not a plain file name"):
        checkpoint_module.CheckpointChoice(tmp_path, "average").resolve()
