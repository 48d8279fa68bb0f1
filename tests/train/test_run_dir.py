"""train.py's run directory: its layout and file modes, the logs plotted, and the mistakes it refuses
(a different config, an existing run, a bad corpus or config) before changing anything.

Trainings run as subprocesses of train.py, as a user runs them (tests/helpers.py); tiny_run, the
tiny config's run made once per test session, gives the reference losses and the tokenizer.
"""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY, fresh_run, run_train, step_losses, train_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_run_directory_layout(tiny_run):
    run = tiny_run
    for path in (
        "config.yaml",
        "tokenizer/tokenizer.json",
        "model.keras",
        "shortlist.npz",
        "export/saved_model.pb",
        "checkpoints/last.json",
        "checkpoints/best.json",
        "curves.png",
        "logs/train.csv",
        "logs/steps.tsv",
        "train.log",
        "results.json",
    ):
        assert (run / path).exists(), path
    losses = step_losses(run)
    assert sorted(losses) == list(range(1, 61))
    # what train.py writes has the modes open()/mkdir() would give (mkstemp/mkdtemp give 0600/0700)
    from nmt.files import plain_mode

    for path in (
        "config.yaml",
        "model.keras",
        "shortlist.npz",
        "export",
        "export/saved_model.pb",
        "checkpoints",
        "checkpoints/last.json",
        "tokenizer",
        "tokenizer/tokenizer.json",
        "logs/steps.tsv",
        "train.log",
        "results.json",
    ):
        want = plain_mode(directory=(run / path).is_dir())
        assert (run / path).stat().st_mode & 0o777 == want, (path, oct((run / path).stat().st_mode & 0o777))
    for checkpoint in (run / "checkpoints").iterdir():
        if checkpoint.is_dir():
            assert checkpoint.stat().st_mode & 0o777 == plain_mode(directory=True)
            assert (checkpoint / "state.json").stat().st_mode & 0o777 == plain_mode()
    with open(run / "logs" / "train.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and {"loss", "val_loss", "val_bleu", "learning_rate"} <= set(rows[0])
    # the shortlist's table fits the model, and training says where it came from
    from nmt.decode.shortlist import LexicalTable, check_table
    from nmt.text.subword import SubwordPair

    pair = SubwordPair.load(run / "tokenizer")
    check_table(LexicalTable.load(run / "shortlist.npz"), pair.src.vocab_size, pair.tgt.vocab_size)
    assert "shortlist: IBM Model 1 on " in (run / "train.log").read_text(encoding="utf-8")


@pytest.mark.slow
def test_plot_run_draws_several_runs(tmp_path, tiny_run):
    other = tmp_path / "other"  # a second run's logs: the first one's, changed
    (other / "logs").mkdir(parents=True)
    shutil.copy(tiny_run / "logs" / "steps.tsv", other / "logs" / "steps.tsv")
    rows = (tiny_run / "logs" / "train.csv").read_text(encoding="utf-8").splitlines()
    (other / "logs" / "train.csv").write_text("\n".join(rows[:3]) + "\n", encoding="utf-8")  # two epochs
    out = tmp_path / "runs.png"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "plot_run.py"), str(tiny_run), str(other), "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=train_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    height, width = imread(out).shape[:2]
    assert width >= 1000 and height >= 700
    with open(tiny_run / "logs" / "train.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [20, 40, 60] and all(float(r["minutes"]) > 0 for r in rows)
    # The run files kept beside the results (docs/results/RUN/: config.yaml and train.csv, no logs/)
    # plot like a run directory, their training loss and learning rate taken at the epoch ends.
    from nmt.train.plotting import plot_runs

    flat = tmp_path / "kept"
    flat.mkdir()
    shutil.copy(tiny_run / "logs" / "train.csv", flat / "train.csv")
    assert imread(plot_runs([flat], tmp_path / "kept.png")).shape[1] >= 1000
    bad = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "plot_run.py"), str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=train_env(),
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "nothing" in bad.stderr


@pytest.mark.slow
def test_resume_refuses_a_different_config_and_existing_runs(tmp_path, tiny_run):
    run = fresh_run(tmp_path, tiny_run, "guarded")
    shutil.copytree(tiny_run / "checkpoints", run / "checkpoints")
    shutil.copy(tiny_run / "config.yaml", run / "config.yaml")
    proc = run_train(run, *TINY, "model.decoder_units=64", resume=True)
    assert proc.returncode == 2
    assert "holds a different config (model.decoder_units: 32 -> 64)" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_train(run, *TINY)
    assert proc.returncode == 2 and "pass --resume to continue it or --overwrite" in proc.stderr
    proc = run_train(tmp_path / "empty", *TINY, resume=True)
    assert proc.returncode == 2 and "holds no training run to resume" in proc.stderr


def test_config_run_dir_and_corpus_are_checked_before_loading_tensorflow(tmp_path):
    """train.py reports a mistake in the config, the run directory, the corpus or the tokenizer
    (a vocabulary the text cannot fill, every training pair filtered) without importing TensorFlow
    (seconds to load), and changes nothing on disk until all pass: a bad corpus or vocabulary size
    given with --overwrite leaves the earlier run whole."""
    from nmt import config, rundir

    toy = str(ROOT / "configs" / "toy.yaml")
    good_en, good_de = tmp_path / "good.en", tmp_path / "good.de"
    good_en.write_text("".join(f"{i} one\n" for i in range(30)))
    good_de.write_text("".join(f"{i} eins\n" for i in range(30)))
    (tmp_path / "short.de").write_text("".join(f"{i} eins\n" for i in range(29)))
    (tmp_path / "bad.en").write_bytes(b"".join(f"{i} one\n".encode() for i in range(12)) + b"zw\xc3\x28ei\n" * 18)
    corpus = [f"corpus.train_src={good_en}", f"corpus.train_tgt={good_de}", "corpus.dev_size=0.1"]
    # An earlier run (its config, a checkpoint pointer, a model) that a mistaken --overwrite must not touch.
    earlier = tmp_path / "earlier"
    (earlier / rundir.CHECKPOINTS_DIR).mkdir(parents=True)
    (earlier / rundir.CONFIG_FILE).write_text(config.load(toy, corpus).to_yaml())
    (earlier / rundir.CHECKPOINTS_DIR / "last.json").write_text("{}")
    (earlier / rundir.MODEL_FILE).write_bytes(b"weights")
    before = sorted((p.relative_to(earlier), p.read_bytes() if p.is_file() else None) for p in earlier.rglob("*"))
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")

    def train(run_dir, *overrides, extra=()):
        return ["--config", toy, "--run-dir", str(run_dir), *extra, *[a for o in overrides for a in ("--set", o)]]

    cases = [
        (train(tmp_path / "a", "train.epohcs=3"), "train.epohcs"),
        (train(tmp_path / "b", *corpus, f"corpus.train_tgt={tmp_path / 'short.de'}"), "30 lines but"),
        (train(tmp_path / "c", *corpus, f"corpus.train_src={tmp_path / 'missing.en'}"), "missing.en"),
        (train(tmp_path / "d", *corpus, f"corpus.train_src={tmp_path / 'bad.en'}"), "bad.en line 13"),
        (train(earlier, *corpus, "model.decoder_units=64", extra=["--resume"]), "holds a different config"),
        (train(earlier, *corpus), "pass --resume to continue it or --overwrite"),
        (train(tmp_path / "none", *corpus, extra=["--resume"]), "holds no training run to resume"),
        (train(home, *corpus, extra=["--overwrite"]), "is not a run directory"),
        (train(good_en, *corpus), "not a directory"),
        (train(earlier, *corpus, f"corpus.train_src={tmp_path / 'bad.en'}", extra=["--overwrite"]), "bad.en"),
        (train(tmp_path / "e", *corpus), "tokenizer.vocab_size=900 is larger than"),
        (train(earlier, *corpus, extra=["--overwrite"]), "tokenizer.vocab_size=900 is larger than"),
        (train(tmp_path / "f", *corpus, "tokenizer.vocab_size=279", "corpus.max_len=1"), "raise corpus.max_len"),
    ]
    code = (
        "import json, sys; from nmt.cli.train import main\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    print(main(argv), flush=True)\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps([argv for argv, _ in cases])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=train_env(),
        timeout=120,
    )
    assert proc.stdout.split("\n")[:-1] == ["2"] * len(cases) + ["[]"], proc.stdout + proc.stderr
    errors = proc.stderr.splitlines()
    assert len(errors) == len(cases) and all(e.startswith("error: ") for e in errors), proc.stderr
    for error, (_, pattern) in zip(errors, cases, strict=True):
        assert pattern in error, (pattern, error)
    after = sorted((p.relative_to(earlier), p.read_bytes() if p.is_file() else None) for p in earlier.rglob("*"))
    assert after == before
    assert sorted(p.name for p in home.iterdir()) == ["thesis.tex"]
    assert not [name for name in "abcd" if (tmp_path / name).exists()] and not (tmp_path / "none").exists()
