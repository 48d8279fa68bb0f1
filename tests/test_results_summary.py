"""The summary table at the top of docs/RESULTS.md is what scripts/results.py --summary makes of the kept
run files in docs/results/, so a new run, a changed shipped config or a hand edit of the table fails here.
No TensorFlow and no training: the generator reads YAML, CSV and JSON only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"


def run_script(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_summary_in_results_md_is_the_generated_one_and_needs_no_tensorflow():
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('results', 'scripts/results.py')\n"
        "results = importlib.util.module_from_spec(spec); spec.loader.exec_module(results)\n"
        "status = results.main(['--summary', '--check'])\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
        "sys.exit(status)\n"
    )
    proc = run_script(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout


def test_every_kept_run_says_where_and_when_it_ran():
    manifest = yaml.safe_load((RESULTS / "runs.yaml").read_text(encoding="utf-8"))
    directories = {p.parent.name for p in RESULTS.glob("*/config.yaml")}
    scored = {Path(r["run"]).name for p in RESULTS.glob("*.json") for r in json.loads(p.read_text(encoding="utf-8"))}
    assert scored <= directories, sorted(scored - directories)
    assert set(manifest["runs"]) == directories, sorted(set(manifest["runs"]) ^ directories)
    for name, entry in manifest["runs"].items():
        assert entry["cpu"] in manifest["cpus"] and str(entry["date"]).startswith("20"), name
        assert entry.get("note") in (None, *manifest["notes"]), name


def test_summary_rows_are_runs_of_the_shipped_configs_as_they_are_now():
    code = (
        "import importlib.util, json\n"
        "spec = importlib.util.spec_from_file_location('results', 'scripts/results.py')\n"
        "results = importlib.util.module_from_spec(spec); spec.loader.exec_module(results)\n"
        "print(json.dumps(results.summary_rows()))\n"
    )
    proc = run_script(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    assert {r["config"] for r in rows} >= {"multi30k.yaml", "multi30k_attention.yaml", "multi30k_cho2014.yaml"}
    for row in rows:
        run = yaml.safe_load((RESULTS / row["run"] / "config.yaml").read_text(encoding="utf-8"))
        shipped = yaml.safe_load((ROOT / "configs" / row["config"]).read_text(encoding="utf-8"))
        for section in ("model", "tokenizer", "data"):
            assert run[section] == shipped[section], (row["run"], section)
