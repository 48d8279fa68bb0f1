"""`python -m nmt report`: the table of runs read back from the files written here by hand (config.yaml by
nmt.config, results.json, logs/train.csv; no training), the curves PNG, a run without results.json, and
one-line errors for a damaged file or a path that is not a run directory."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.cli import report

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: What the finished run's results.json says (the schema of nmt.train.trainer.write_results, one field
#: added by a later version, and the fields another engineer is adding: weights, init_from).
RESULTS_A = {
    "dev": {"bleu": 30.5, "chrf": 51.25, "bleu_signature": "nrefs:1|case:mixed", "chrf_signature": "nrefs:1|nc:6"},
    "test": {"bleu": 29.13, "chrf": 55.07, "bleu_signature": "nrefs:1|case:mixed", "chrf_signature": "nrefs:1|nc:6"},
    "length_penalty": 1.2,
    "beam_size": 5,
    "steps": 1234,
    "epochs": 3,
    "minutes": 12.34,
    "stopped": "early_stopping",
    "weights": "best checkpoint ckpt-1200",
    "init_from": None,
    "device": {"cpu": "Test CPU 9000 @ 2.0GHz", "gpus": []},
    "precision": "mixed_bfloat16",
    "versions": {"python": "3.11.0", "tensorflow": "2.0.0"},
    "config_sha256": "0" * 64,
    "a_field_from_the_future": {"anything": [1, 2]},
}


def write_run(directory: Path, overrides: list[str], epochs: list[dict], results: dict | None = None) -> Path:
    """A run directory by hand: config.yaml from nmt.config, logs/train.csv, logs/steps.tsv, results.json."""
    from nmt import config

    (directory / "logs").mkdir(parents=True)
    (directory / "config.yaml").write_text(config.load(None, overrides).to_yaml(), encoding="utf-8")
    columns = ["epoch", "loss", "val_loss", "val_bleu", "step", "minutes", "peak_rss_mb", "learning_rate"]
    with open(directory / "logs" / "train.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for i, values in enumerate(epochs):
            writer.writerow({"epoch": i, "loss": 4.0 - i, "val_loss": 4.5 - i, "learning_rate": 0.001, **values})
    last = epochs[-1]["step"]
    lines = ["step\tloss\tlearning_rate"] + [f"{s}\t{5.0 - s / last}\t0.001" for s in range(1, last + 1, 10)]
    (directory / "logs" / "steps.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if results is not None:
        (directory / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return directory


@pytest.fixture
def runs(tmp_path) -> tuple[Path, Path]:
    """A finished run (de→en, attention with luong's position; results.json) and one still training
    (en→fr, cho2014; no results.json)."""
    finished = write_run(
        tmp_path / "runs" / "finished",
        ["corpus.src_lang=de", "corpus.tgt_lang=en", "model.attention_position=luong"],
        [
            {"val_bleu": 20.0, "step": 400, "minutes": 4.0},
            {"val_bleu": 31.25, "step": 800, "minutes": 8.0},
            {"val_bleu": 30.0, "step": 1200, "minutes": 12.0},
        ],
        RESULTS_A,
    )
    training = write_run(
        tmp_path / "runs" / "training",
        ["corpus.src_lang=en", "corpus.tgt_lang=fr", "model.architecture=cho2014"],
        [{"val_bleu": 12.0, "step": 250, "minutes": 1.75}, {"val_bleu": 14.5, "step": 500, "minutes": 3.5}],
    )
    return finished, training


def cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = report.main([str(a) for a in argv], stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def python(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def parse_table(text: str) -> list[dict[str, str]]:
    """The Markdown table at the start of text as one {column: cell} per row."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    head = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "")) == {"-"}, lines[1]
    return [dict(zip(head, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[2:]]


def test_the_table_shows_each_run_from_its_files(runs):
    finished, training = runs
    status, out, err = cli([finished, training])
    assert status == 0 and err == "", err  # no --plot: nothing said about plots
    rows = parse_table(out)
    assert [r["run"] for r in rows] == ["finished", "training"]
    assert rows[0] == {
        "run": "finished",
        "direction": "de→en",
        "model": "attention (luong)",
        "steps": "1,234",  # results.json's, not train.csv's last epoch (1,200)
        "minutes": "12.3",
        "stopped": "early_stopping",
        "best epoch dev BLEU": "31.25",  # train.csv's best epoch
        "dev BLEU": "30.50",
        "test BLEU": "29.13",
        "test chrF": "55.07",
        "beam": "5",
        "length penalty": "1.2",
        "precision": "mixed_bfloat16",
        "CPU": "Test CPU 9000 @ 2.0GHz",
        "weights": "best checkpoint ckpt-1200",  # no GPU or init from column: no run has one
    }
    assert rows[1] == {
        "run": "training",
        "direction": "en→fr",
        "model": "cho2014",
        "steps": "500",  # train.csv's last epoch
        "minutes": "3.5",
        "stopped": "no results.json",
        "best epoch dev BLEU": "14.50",
        "dev BLEU": "—",
        "test BLEU": "—",
        "test chrF": "—",
        "beam": "—",
        "length penalty": "—",
        "precision": "—",
        "CPU": "—",
        "weights": "—",
    }
    note = [line for line in out.splitlines() if line and not line.startswith("|")]
    assert len(note) == 1 and note[0].startswith("training: no results.json") and "logs/train.csv" in note[0]


def test_labels_gpus_json_and_a_run_kept_without_logs(runs, tmp_path):
    """--labels names the rows; a GPU and init_from get their columns; --json keeps every field of
    results.json (unknown ones included); a run kept as in docs/results/ (train.csv beside config.yaml)."""
    finished, training = runs
    kept = tmp_path / "kept"
    kept.mkdir()
    for name in ("config.yaml", "results.json"):
        (kept / name).write_bytes((finished / name).read_bytes())
    (kept / "train.csv").write_bytes((finished / "logs" / "train.csv").read_bytes())
    tuned = dict(RESULTS_A, device={"cpu": "Test CPU", "gpus": ["NVIDIA H100 80GB HBM3"]}, init_from="runs/parent")
    (kept / "results.json").write_text(json.dumps(tuned), encoding="utf-8")
    out_json = tmp_path / "out" / "runs.json"
    status, out, err = cli([finished, kept, "--labels", "A | first", "B", "--json", out_json])
    assert status == 0, err
    rows = parse_table(out.replace("\\|", "¦"))
    assert [r["run"] for r in rows] == ["A ¦ first", "B"]
    assert [r["GPU"] for r in rows] == ["—", "NVIDIA H100 80GB HBM3"]
    assert [r["init from"] for r in rows] == ["—", "runs/parent"]
    assert rows[1]["best epoch dev BLEU"] == "31.25" and rows[1]["test BLEU"] == "29.13"
    written = json.loads(out_json.read_text(encoding="utf-8"))
    assert [r["run"] for r in written] == ["A | first", "B"]
    assert written[0]["results"] == RESULTS_A and written[1]["results"] == tuned
    assert written[0]["direction"] == "de→en" and written[0]["dir"] == str(finished)
    assert written[0]["train_csv"] == {"steps": 1200, "minutes": 12.0, "best_dev_bleu": 31.25}
    status, out, err = cli([finished, training, "--labels", "only-one"])  # the argument parser's one line
    assert status == 2 and out == "" and err.count("\n") == 1 and "--labels: 1 labels for 2 runs" in err


def test_plot_draws_all_runs_into_one_png_and_plot_run_py_is_its_alias(runs, tmp_path):
    finished, training = runs
    png = tmp_path / "curves" / "runs.png"
    status, out, err = cli([finished, training, "--plot", png])
    assert status == 0, err
    assert png.read_bytes()[:8] == PNG_MAGIC and str(png) in err
    assert [r["run"] for r in parse_table(out)] == ["finished", "training"]
    # scripts/plot_run.py's flags, a directory holding logs alone among the runs (as tests/train do)
    logs_only = tmp_path / "logs_only"
    (logs_only / "logs").mkdir(parents=True)
    (logs_only / "logs" / "train.csv").write_bytes((training / "logs" / "train.csv").read_bytes())
    alias = tmp_path / "alias.png"
    proc = python(ROOT / "scripts" / "plot_run.py", finished, logs_only, "-o", alias, "--labels", "a", "b")
    assert proc.returncode == 0, proc.stderr
    assert alias.read_bytes()[:8] == PNG_MAGIC
    assert [r["run"] for r in parse_table(proc.stdout)] == ["a", "b"]
    proc = python(ROOT / "scripts" / "plot_run.py", tmp_path / "nothing")
    assert proc.returncode == 2 and proc.stderr == f"error: {tmp_path / 'nothing'}: no such run directory\n"


def test_a_damaged_results_json_is_one_line_naming_the_file(runs):
    finished, training = runs
    path = finished / "results.json"
    path.write_bytes(b'{"dev": null, "test": ')  # cut short by a full disk
    proc = python("-m", "nmt", "report", training, finished)  # as a user runs it
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr.startswith(f"error: {path}: damaged") and proc.stderr.count("\n") == 1, proc.stderr
    for damage in (
        b"",
        b"[1, 2]",
        json.dumps(dict(RESULTS_A, steps="1234")).encode(),
        json.dumps(dict(RESULTS_A, test={"bleu": "high"})).encode(),
        json.dumps(dict(RESULTS_A, device="a CPU")).encode(),
        b"\xff\xfe{}",
    ):
        path.write_bytes(damage)
        status, out, err = cli([training, finished])
        assert status == 2 and out == "", (damage, out)
        assert err.startswith(f"error: {path}: damaged") and err.count("\n") == 1, (damage, err)


def test_paths_that_are_not_run_directories_are_one_line(runs, tmp_path):
    finished, _ = runs
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x\n", encoding="utf-8")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text("corpus: [unclosed\n", encoding="utf-8")
    for path, expected in (
        (tmp_path / "missing", "no such run directory"),
        (empty, "not a run directory"),
        (a_file, "not a directory"),
        (broken, "damaged"),
    ):
        status, out, err = cli([finished, path])
        assert status == 2 and out == "" and err.count("\n") == 1, err
        assert err.startswith(f"error: {path}") and expected in err, err


def test_no_tensorflow_and_no_matplotlib_without_plot(runs):
    finished, training = runs
    code = (
        "import sys\nfrom nmt.cli import report\n"
        f"status = report.main([{str(finished)!r}, {str(training)!r}])\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))\n"
        "sys.exit(status)\n"
    )
    proc = python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


def test_help_lists_report():
    listing = python("-m", "nmt", "--help")
    assert listing.returncode == 0 and any(line.split()[:1] == ["report"] for line in listing.stdout.splitlines())
    usage = python("-m", "nmt", "report", "--help")
    assert usage.returncode == 0
    for option in ("RUN_DIR", "--plot", "--labels", "--json", "--summary", "--check"):
        assert option in usage.stdout, option
    for argv, message in (
        ([], "expected one or more RUN_DIR (or --summary)"),
        (["--check", "runs/x"], "--check goes with --summary"),
        (["--summary", "runs/x"], "--summary takes no RUN_DIR"),
    ):
        proc = python("-m", "nmt", "report", *argv)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_scripts_results_py_points_to_report_for_what_moved():
    proc = python(ROOT / "scripts" / "results.py", "runs/x", "--data", "data", "--plot", "x.png")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "python -m nmt report runs/x --plot x.png" in proc.stderr
