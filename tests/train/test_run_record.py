"""The run record: RUN_DIR/train.log holds every message train.py prints, each line time-stamped with its
level (appended to by --resume; none for a refused run), and RUN_DIR/results.json the final scores with
their sacreBLEU signatures and what produced them (search, steps, minutes, device, precision, versions,
the hash of config.yaml).

tiny_run (the tiny config's run, made once per session) is read only; the comparison with what train.py
printed needs a run of its own, whose standard error the test keeps.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import platform
import re
import shutil
import time
from pathlib import Path

import pytest

import nmt
from nmt import rundir
from nmt.cli import train as train_cli
from tests.helpers import TINY, fresh_run, run_train

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (INFO|WARNING|ERROR) (.*)$")
PREFIX = {"INFO": "", "WARNING": "warning: ", "ERROR": "error: "}


def logged(run_dir: Path) -> list[tuple[str, str, str]]:
    """train.log as (time stamp, level, text) per line; every line must carry a stamp and a level."""
    lines = (run_dir / rundir.TRAIN_LOG).read_text(encoding="utf-8").splitlines()
    matches = [LINE.match(line) for line in lines]
    assert lines and all(matches), [line for line, m in zip(lines, matches) if not m][:3]
    return [m.groups() for m in matches]


def as_printed(entries) -> list[str]:
    """The lines of train.log as train.py prints them on standard error."""
    return [PREFIX[level] + text for _, level, text in entries]


def printed_score(lines: list[str], split: str) -> tuple[str, str]:
    """-> (BLEU, chrF) as printed in the final "<split> (N sentences, beam ...): BLEU = ..." line and the next."""
    at = next(i for i, line in enumerate(lines) if re.match(rf"{split} \(\d+ sentences, beam ", line))
    bleu = re.search(r"BLEU = (\d+\.\d\d) ", lines[at]).group(1)
    chrf = re.match(r"chrF2 = (\d+\.\d\d) ", lines[at + 1]).group(1)
    return bleu, chrf


def check_results(run_dir: Path, printed: list[str], steps: int, stopped: str) -> dict:
    results = json.loads((run_dir / rundir.RESULTS_FILE).read_text(encoding="utf-8"))
    for split in ("dev", "test"):
        record = results[split]
        assert set(record) == {"bleu", "chrf", "bleu_signature", "chrf_signature"}
        assert (f"{record['bleu']:.2f}", f"{record['chrf']:.2f}") == printed_score(printed, split)
        assert record["bleu_signature"].startswith("nrefs:1|") and "tok:13a" in record["bleu_signature"]
        assert record["chrf_signature"].startswith("nrefs:1|") and "nc:6" in record["chrf_signature"]
        assert f"BLEU = {record['bleu']:.2f} " in "\n".join(printed) and record["bleu_signature"] in "\n".join(printed)
    assert re.search(
        rf"dev \(\d+ sentences, beam {results['beam_size']}, length penalty {results['length_penalty']:g}\)",
        "\n".join(printed),
    )
    assert results["steps"] == steps and results["epochs"] == steps // 20 and results["stopped"] == stopped
    assert 0 < results["minutes"] < 30
    assert results["precision"] == "float32"  # configs/toy.yaml
    assert isinstance(results["device"]["cpu"], str) and results["device"]["cpu"]
    assert isinstance(results["device"]["gpus"], list)
    config_bytes = (run_dir / rundir.CONFIG_FILE).read_bytes()
    assert results["config_sha256"] == hashlib.sha256(config_bytes).hexdigest()
    versions = results["versions"]
    assert versions == {
        "python": platform.python_version(),
        "tensorflow": importlib.metadata.version("tensorflow"),
        "keras": importlib.metadata.version("keras"),
        "tensorflow_text": importlib.metadata.version("tensorflow-text"),
        "sentencepiece": importlib.metadata.version("sentencepiece"),
        "sacrebleu": importlib.metadata.version("sacrebleu"),
        "nmt": nmt.__version__,
    }
    return results


@pytest.mark.slow
def test_results_json_of_the_tiny_run(tiny_run):
    """results.json of the session's tiny run agrees with what its train.log says train.py printed."""
    printed = as_printed(logged(tiny_run))
    assert printed[0].startswith("corpus: ") and printed[-1].startswith("done: 60 steps (max_steps); run directory ")
    check_results(tiny_run, printed, steps=60, stopped="max_steps")


@pytest.mark.slow
def test_train_log_holds_what_train_py_printed_and_resume_appends(tmp_path, tiny_run):
    run = fresh_run(tmp_path, tiny_run, "run")
    first = run_train(run, *TINY, "train.max_steps=20")
    assert first.returncode == 0, first.stderr[-3000:]
    printed = first.stderr.splitlines()
    assert printed[0].startswith("corpus: ") and printed[-1].startswith("done: 20 steps")
    entries = logged(run)
    assert as_printed(entries) == printed
    assert {level for _, level, _ in entries} == {"INFO"}
    stamps = [time.strptime(stamp, train_cli.TIME_FORMAT) for stamp, _, _ in entries]
    assert stamps == sorted(stamps)
    check_results(run, printed, steps=20, stopped="max_steps")

    resumed = run_train(run, *TINY, "train.max_steps=40", resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert any(line.startswith("resumed from step 20 ") for line in resumed.stderr.splitlines())
    assert as_printed(logged(run)) == printed + resumed.stderr.splitlines()
    check_results(run, resumed.stderr.splitlines(), steps=40, stopped="max_steps")


def test_a_refused_run_writes_no_train_log(tmp_path, tiny_run, capsys):
    """A run directory that a check refuses is left byte for byte, without a train.log: the error is
    printed, and logged nowhere else."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_run / rundir.CONFIG_FILE, run / rundir.CONFIG_FILE)
    before = sorted((p.name, p.read_bytes()) for p in run.iterdir())
    overrides = [arg for o in [*TINY, "model.decoder_units=64"] for arg in ("--set", o)]
    config = str(ROOT / "configs" / "toy.yaml")
    assert train_cli.main(["--config", config, "--run-dir", str(run), *overrides]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "holds a different config" in err[0]
    assert sorted((p.name, p.read_bytes()) for p in run.iterdir()) == before
    assert not logging.getLogger("nmt").handlers  # main() takes its handlers off again


def test_run_log_keeps_the_first_messages_stamps_every_line_and_appends(tmp_path, capsys):
    """RunLog: what is logged before train.log may be written reaches it first, with its own time; a
    warning and an error are printed as before ("warning: ", "error: ") and logged at their level; each
    line of a message carries the stamp; a second RunLog appends."""
    log = logging.getLogger("nmt.train.prepare")
    run_log = train_cli.RunLog()
    try:
        log.info("corpus: read")
        log.warning("no dev set")
        time.sleep(1.1)
        path = tmp_path / rundir.TRAIN_LOG
        run_log.to_file(path)
        log.info("dev: BLEU = 1.00\nchrF2 = 2.00")
        log.error("disk full")
    finally:
        run_log.close()
    log.info("after the run: not ours")
    assert capsys.readouterr().err.splitlines() == [
        "corpus: read",
        "warning: no dev set",
        "dev: BLEU = 1.00",
        "chrF2 = 2.00",
        "error: disk full",
    ]
    entries = logged(tmp_path)
    assert [(level, text) for _, level, text in entries] == [
        ("INFO", "corpus: read"),
        ("WARNING", "no dev set"),
        ("INFO", "dev: BLEU = 1.00"),
        ("INFO", "chrF2 = 2.00"),
        ("ERROR", "disk full"),
    ]
    assert entries[0][0] < entries[2][0] and entries[2][0] == entries[3][0]  # held records keep their time

    again = train_cli.RunLog()
    try:
        again.to_file(path)
        log.info("resumed")
    finally:
        again.close()
    assert [text for _, _, text in logged(tmp_path)][-2:] == ["disk full", "resumed"]
    nmt_logger = logging.getLogger("nmt")
    assert not nmt_logger.handlers and nmt_logger.level == logging.NOTSET and nmt_logger.propagate


def test_a_train_log_that_cannot_be_written_is_said_once(capsys):
    """A full disk under train.log: one warning on the terminal, every message still printed, the error last."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    log = logging.getLogger("nmt.train.trainer")
    run_log = train_cli.RunLog()
    try:
        log.info("corpus: read")
        run_log.to_file(Path("/dev/full"))
        log.info("epoch 1")
        log.error("checkpoint: No space left on device")
    finally:
        run_log.close()
    assert capsys.readouterr().err.splitlines() == [
        "corpus: read",
        "warning: /dev/full: cannot write it (No space left on device); messages go to the terminal only",
        "epoch 1",
        "error: checkpoint: No space left on device",
    ]


def test_an_unexpected_error_leaves_its_traceback_in_train_log(tmp_path):
    run_log = train_cli.RunLog()
    try:
        run_log.to_file(tmp_path / rundir.TRAIN_LOG)
        try:
            raise RuntimeError("a bug")
        except RuntimeError:
            run_log.crashed()
    finally:
        run_log.close()
    entries = logged(tmp_path)
    assert entries[0][1:] == ("ERROR", "train.py stopped on an unexpected error:")
    assert entries[1][2] == "Traceback (most recent call last):" and entries[-1][2] == "RuntimeError: a bug"


def test_keras_callback_messages_go_to_the_logger(caplog, capsys):
    """The lines Keras' callbacks print (early stopping, a reduced learning rate) reach train.log too."""
    from keras.src.utils import io_utils

    from nmt.train.callbacks import keras_messages_logged

    caplog.set_level(logging.INFO, logger="nmt")
    with keras_messages_logged():
        io_utils.print_msg("\nEpoch 5: early stopping")
    assert caplog.messages == ["Epoch 5: early stopping"]
    assert capsys.readouterr().out == ""
