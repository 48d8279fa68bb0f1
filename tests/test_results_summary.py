"""The summary table at the top of docs/RESULTS.md is what `python -m nmt report --summary` makes of the
records kept in docs/results/ (one directory per run: results.json, config.yaml, train.csv; runs.yaml for
the CPU, the date and a note), so a new run, a changed shipped config or a hand edit of the table fails
here. The records of the runs older than results.json keep every figure of the scripts/results.py --json
files they were converted from. No TensorFlow and no training: the generator reads YAML, CSV and JSON only."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nmt.cli import summary
from nmt.cli.records import read_results
from nmt.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
LEGACY = sorted(RESULTS.glob("*.json"))  # scripts/results.py --json lists, cited by RESULTS.md's sections


def run_python(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_summary_in_results_md_is_the_generated_one_and_needs_no_tensorflow():
    code = (
        "import sys\nfrom nmt.cli import report\n"
        "status = report.main(['--summary', '--check'])\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))\n"
        "sys.exit(status)\n"
    )
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout
    alias = run_python("scripts/results.py", "--summary", "--check")  # the old command runs the same check
    assert alias.returncode == 0, alias.stderr[-2000:]


def test_every_kept_run_says_where_and_when_it_ran():
    manifest = yaml.safe_load((RESULTS / "runs.yaml").read_text(encoding="utf-8"))
    directories = {p.name for p in RESULTS.iterdir() if p.is_dir()}
    records = {p.parent.name for p in RESULTS.glob("*/results.json")}
    assert records == directories, sorted(records ^ directories)
    assert set(manifest["runs"]) == directories, sorted(set(manifest["runs"]) ^ directories)
    for name, entry in manifest["runs"].items():
        assert (RESULTS / name / "config.yaml").is_file() and (RESULTS / name / "train.csv").is_file(), name
        assert entry["cpu"] in manifest["cpus"] and str(entry["date"]).startswith("20"), name
        assert entry.get("note") in (None, *manifest["notes"]), name


def test_the_records_keep_the_figures_of_the_files_they_were_converted_from():
    """Every run of the --json files has a record holding its figures: steps, minutes, every beam's scores,
    speed and signatures (read back from its sacreBLEU lines), and test = the beam of its config's
    decode.beam_size; the record's config_sha256 is its config.yaml's."""
    checked = 0
    for path in LEGACY:
        for figures in json.loads(path.read_text(encoding="utf-8")):
            run = RESULTS / Path(figures["run"]).name
            record = read_results(run / "results.json")  # the schema's checks pass
            config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
            assert record["converted_from"] == f"docs/results/{path.name}"
            assert record["config_sha256"] == hashlib.sha256((run / "config.yaml").read_bytes()).hexdigest()
            assert (record["steps"], record["minutes"]) == (figures["steps"], figures["minutes"])
            for key in ("parameters", "peak_rss_mb", "target_tokens_per_s", "best_dev_bleu"):
                assert record[key] == figures[key], (run.name, key)
            beams = {key[len("beam") :]: value for key, value in figures.items() if key.startswith("beam")}
            assert set(record["decoded"]) == set(beams) == {"1", "5"}, run.name
            for beam, measured in beams.items():
                kept = record["decoded"][beam]
                for key in ("bleu", "chrf", "bleu_lowercase", "bleu_lowercase_signature", "sentences_per_s"):
                    assert kept[key] == measured[key], (run.name, beam, key)
                assert kept["lines"] == measured["bleu_line"]
                bleu_line, chrf_line = measured["bleu_line"].splitlines()
                assert bleu_line.endswith("  " + kept["bleu_signature"]) and "case:mixed" in kept["bleu_signature"]
                assert chrf_line.startswith("chrF2 = ") and chrf_line.endswith("  " + kept["chrf_signature"])
            test = record["decoded"][str(config["decode"]["beam_size"])]
            assert record["test"] == {k: test[k] for k in ("bleu", "chrf", "bleu_signature", "chrf_signature")}
            assert record["beam_size"] == config["decode"]["beam_size"] == 5
            if "length_penalty" in figures:
                assert record["length_penalty"] == figures["length_penalty"]
            for key in ("dev", "stopped", "device", "precision", "versions"):  # not measured then
                assert record[key] is None, (run.name, key)
            checked += 1
    # the 22 converted records; records kept since (scripts/results.py --keep) were not converted
    records = [json.loads(p.read_text(encoding="utf-8")) for p in RESULTS.glob("*/results.json")]
    converted = [record for record in records if record.get("converted_from")]
    assert checked == len(converted) == 22


MULTI30K_TRAIN_PAIRS = 29_000


def test_summary_rows_are_runs_of_the_shipped_configs_as_they_are_now():
    rows = summary.summary_rows()
    assert {r["config"] for r in rows} >= {"multi30k.yaml", "multi30k_attention.yaml", "multi30k_cho2014.yaml"}
    for row in rows:
        run = yaml.safe_load((RESULTS / row["run"] / "config.yaml").read_text(encoding="utf-8"))
        shipped = yaml.safe_load((ROOT / "configs" / row["config"]).read_text(encoding="utf-8"))
        defaults = summary.declared_defaults()
        for section in ("model", "tokenizer", "data"):
            for key in set(run[section]) | set(shipped[section]):
                name, want = f"{section}.{key}", shipped[section].get(key)
                if key not in run[section]:  # added after the run: the shipped file keeps the earlier behaviour
                    assert want is None or want == defaults[name], (row["run"], name)
                elif name == "tokenizer.input_sentence_size":  # every value from Multi30k's 29,000 up samples it whole
                    assert min(run[section][key], want) >= MULTI30K_TRAIN_PAIRS, (row["run"], name)
                else:
                    assert run[section][key] == want, (row["run"], name)


@pytest.fixture
def results_dir(tmp_path) -> Path:
    """A records directory with one kept run as training writes it now: a shipped config, results.json
    from training (test at beam 5, not re-decoded) and runs.yaml without a CPU entry."""
    directory = tmp_path / "results"
    run = directory / "new_run"
    run.mkdir(parents=True)
    shipped = yaml.safe_load((ROOT / "configs" / "multi30k.yaml").read_text(encoding="utf-8"))
    shipped["train"]["max_time"] = 900
    (run / "config.yaml").write_text(yaml.safe_dump(shipped), encoding="utf-8")
    shutil.copy(RESULTS / "fast_15_amx" / "train.csv", run / "train.csv")
    record = {
        "dev": {"bleu": 39.0, "chrf": 60.0, "bleu_signature": "b", "chrf_signature": "c"},
        "test": {"bleu": 41.5, "chrf": 61.25, "bleu_signature": "b", "chrf_signature": "c"},
        "length_penalty": 1.2,
        "beam_size": 5,
        "steps": 3000,
        "epochs": 6,
        "minutes": 15.04,
        "stopped": "max_time",
        "weights": "best checkpoint ckpt-3000",
        "device": {"cpu": "Some CPU 1234", "gpus": []},
        "precision": "float32",
        "versions": {},
        "config_sha256": hashlib.sha256((run / "config.yaml").read_bytes()).hexdigest(),
    }
    (run / "results.json").write_text(json.dumps(record), encoding="utf-8")
    (directory / "runs.yaml").write_text("cpus: {}\nnotes: {}\nruns:\n  new_run: {date: 2027-01-02}\n", "utf-8")
    return directory


def test_a_record_written_by_training_makes_a_row(results_dir):
    [row] = summary.summary_rows(results_dir, ROOT / "configs")
    assert row["config"] == "multi30k.yaml" and row["budget"] == "15 min" and row["direction"] == "de→en"
    assert (row["cpu"], row["precision"], row["date"]) == ("Some CPU 1234", "float32", "2027-01-02")
    assert (row["steps"], row["bleu_beam5"], row["chrf_beam5"], row["bleu_greedy"]) == (3000, 41.5, 61.25, None)
    line = summary.summary_table([row]).splitlines()[2]
    assert "| 3,000 | 15.0 | 41.50 | — | 61.25 |" in line, line


def test_records_that_the_summary_cannot_use_are_one_line_errors(results_dir):
    record = results_dir / "new_run" / "results.json"
    (results_dir / "new_run" / "config.yaml").write_text("corpus: {}\n", encoding="utf-8")
    with pytest.raises(UserError, match="config_sha256 is not the sha256"):
        summary.summary_rows(results_dir, ROOT / "configs")
    record.write_text("{", encoding="utf-8")
    with pytest.raises(UserError, match=f"{record}: damaged"):
        summary.summary_rows(results_dir, ROOT / "configs")
    record.unlink()  # an old-style --json file whose run has no record is not skipped silently
    (results_dir / "figures.json").write_text(json.dumps([{"run": "runs/new_run"}]), encoding="utf-8")
    with pytest.raises(UserError, match="run 'new_run' has no record .* --keep"):
        summary.summary_rows(results_dir, ROOT / "configs")


def test_check_fails_on_a_hand_edit_and_the_summary_writes_it_back(tmp_path):
    import io

    original = (ROOT / "docs" / "RESULTS.md").read_text(encoding="utf-8")
    edited = tmp_path / "RESULTS.md"
    start = original.index("<!-- results-summary:start -->")
    row_start = original.index("\n| `configs/", start) + 1  # the summary's first row
    row = original[row_start : original.index("\n", row_start)]
    cells = row.split(" | ")
    cells[9] = "99.99"  # its test BLEU, by hand
    edited.write_text(original.replace(row, " | ".join(cells), 1), encoding="utf-8")
    assert edited.read_text(encoding="utf-8") != original
    out, err = io.StringIO(), io.StringIO()
    assert summary.write_summary(True, out, err, results_md=edited) == 1
    assert err.getvalue() == f"error: {edited}: the summary table is out of date; run python -m nmt report --summary\n"
    assert summary.write_summary(False, out, err, results_md=edited) == 0
    assert edited.read_text(encoding="utf-8") == original


def load_results_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("results_script", ROOT / "scripts" / "results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def figures_of(beams: dict[int, tuple[float, float]]) -> dict:
    """scripts/results.py's figures of one run (its --json object), made up."""
    signature = {"bleu": "nrefs:1|case:mixed|eff:no", "chrf": "nrefs:1|case:mixed|nc:6"}
    figures = {"run": "runs/r", "steps": 900, "minutes": 9.5, "parameters": 10, "peak_rss_mb": 100.0}
    figures.update(target_tokens_per_s=1000.0, best_dev_bleu=20.0, length_penalty=0.8)
    for beam, (bleu, chrf) in beams.items():
        lines = f"BLEU = {bleu:.2f} 1/2/3/4 (BP = 1.0)  {signature['bleu']}\nchrF2 = {chrf:.2f}  {signature['chrf']}"
        figures[f"beam{beam}"] = {
            "bleu": bleu,
            "chrf": chrf,
            "bleu_line": lines,
            "bleu_lowercase": bleu + 0.5,
            "bleu_lowercase_signature": "nrefs:1|case:lc",
            "sentences_per_s": 50.0 / beam,
        }
    return figures


def test_keep_writes_the_record_the_summary_reads(tmp_path, results_dir):
    """scripts/results.py --keep (without decoding here: made-up figures): a run with results.json keeps it
    and adds the decoded figures; a run older than results.json gets its fields from the figures."""
    script = load_results_script()
    run = tmp_path / "runs" / "r"
    (run / "logs").mkdir(parents=True)
    shutil.copy(results_dir / "new_run" / "config.yaml", run / "config.yaml")
    shutil.copy(results_dir / "new_run" / "train.csv", run / "logs" / "train.csv")
    figures = figures_of({1: (38.25, 58.0), 5: (40.5, 59.75)})
    kept_dir = tmp_path / "kept"
    older = script.keep(figures, run, script.keep_dir(kept_dir, run))
    assert sorted(p.name for p in older.iterdir()) == ["config.yaml", "results.json", "train.csv"]
    record = read_results(older / "results.json")
    signatures = {"bleu_signature": "nrefs:1|case:mixed|eff:no", "chrf_signature": "nrefs:1|case:mixed|nc:6"}
    assert record["test"] == {"bleu": 40.5, "chrf": 59.75, **signatures}  # the config's beam_size, 5
    assert (record["beam_size"], record["length_penalty"], record["steps"], record["minutes"]) == (5, 0.8, 900, 9.5)
    assert record["epochs"] == 900 // 457  # the first epoch of the copied train.csv ends at step 457
    assert record["decoded"]["1"]["bleu"] == 38.25 and record["decoded"]["1"]["sentences_per_s"] == 50.0
    assert record["config_sha256"] == hashlib.sha256((run / "config.yaml").read_bytes()).hexdigest()
    assert record["dev"] is record["precision"] is record["device"] is None
    with pytest.raises(UserError, match="exists; remove it first"):
        script.keep_dir(kept_dir, run)
    trained = json.loads((results_dir / "new_run" / "results.json").read_text(encoding="utf-8"))
    (run / "results.json").write_text(json.dumps(trained), encoding="utf-8")
    newer = script.keep(figures, run, script.keep_dir(tmp_path / "kept2", run))
    record = read_results(newer / "results.json")
    assert {k: v for k, v in record.items() if k in trained} == trained  # training's own figures stay
    assert record["decoded"]["5"]["chrf"] == 59.75 and record["best_dev_bleu"] == 20.0


@pytest.mark.parametrize("stopped", ["max_time", "completed", "early_stopping", None])
def test_early_stopping_that_did_not_stop_the_run_does_not_set_it_apart(results_dir, stopped):
    """A run with early stopping set is the shipped config's run (early stopping off) when its record says it
    ended otherwise; one that early stopping ended, or whose record does not say, is not."""
    run = results_dir / "new_run"
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert config["train"]["early_stopping_patience"] is None  # as shipped
    config["train"]["early_stopping_patience"] = 5
    (run / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    record = json.loads((run / "results.json").read_text(encoding="utf-8"))
    record["stopped"] = stopped
    record["config_sha256"] = hashlib.sha256((run / "config.yaml").read_bytes()).hexdigest()
    (run / "results.json").write_text(json.dumps(record), encoding="utf-8")
    rows = summary.summary_rows(results_dir, ROOT / "configs")
    if stopped in ("max_time", "completed"):
        [row] = rows
        assert row["config"] == "multi30k.yaml" and row["set"] == "" and row["run"] == "new_run"
    else:
        assert rows == []
