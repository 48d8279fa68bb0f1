"""The one `nmt` command: its verbs, its listing, and one error format for every verb and every script.

A command-line mistake must read the same whichever verb or script it was made in: one line
``error: <argparse's message> (see <what the user ran> --help)``, exit status 2, no usage block and no
traceback. The verbs run in-process (a mistake is found before TensorFlow loads); the four scripts that
keep their own entry point run as the user runs them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nmt.__main__ import main
from nmt.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {  # the entry points kept beside the verbs, with the same flags
    "train": "train.py",
    "translate": "translate.py",
    "evaluate": "scripts/evaluate.py",
    "prepare": "scripts/prepare_data.py",
}


@pytest.fixture(autouse=True)
def _argv0(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["nmt"])  # main() names each verb's prog through sys.argv[0]


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_help_lists_every_verb_with_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nmt {" + ",".join(COMMANDS) + "}")
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert listed == list(COMMANDS)
    assert {"train", "translate", "evaluate", "prepare", "serve", "score", "report"} <= set(COMMANDS)


def test_no_verb_prints_the_listing_and_fails(capsys):
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: nmt {")


def test_unknown_verb_is_one_line(capsys):
    assert main(["trian", "--config", "x.yaml"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert one_line(captured.err) == (
        "error: unknown command 'trian'; expected one of " + ", ".join(COMMANDS) + " (see nmt --help)"
    )


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_every_verb_reports_a_bad_option_in_one_format(verb, capsys):
    assert main([verb, "--frobnicate"]) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert line.startswith("error: ") and line.endswith(f" (see nmt {verb} --help)"), line
    assert "usage:" not in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_every_verb_answers_help_under_its_name(verb, capsys):
    with pytest.raises(SystemExit) as stop:
        main([verb, "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: nmt {verb} ")


def test_a_bad_value_names_the_option(capsys):
    assert main(["translate", "--model", "runs/x", "--beam-size", "five"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line == "error: argument --beam-size: invalid int value: 'five' (see nmt translate --help)"


@pytest.mark.parametrize("verb", list(SCRIPTS))
def test_the_scripts_report_in_the_same_format_under_their_own_name(verb):
    script = SCRIPTS[verb]
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), "--frobnicate"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and proc.stdout == ""
    line = one_line(proc.stderr)
    assert line.startswith("error: ") and line.endswith(f" (see {Path(script).name} --help)"), line
