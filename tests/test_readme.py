"""Every command in README.md and docs/USAGE.md is run here (at a reduced size), so they cannot drift from
the code.

- ```bash blocks (the README's two, its first screen): each `&&`-joined command runs: the virtual
  environment and pip steps are the ones that made the environment these tests run in (checked against
  .ci/run), training is cut to a few steps and the test files to 40 lines; `python -m pytest` is this
  very run.
- ```python blocks run against that reduced run (its directory and its export).
- ```text blocks are synopses: every option they name must be in the command's --help.
- ```sh blocks need what a test machine does not have (Docker, two hosts); each is listed below with the
  test that runs the same thing another way, and a new one fails until it is listed.
- the README is a front page: at most 200 lines, no dated figures or CPU names (those live in
  docs/RESULTS.md and docs/BENCHMARKS.md), and every file it links to exists.
The configuration reference (docs/CONFIG.md) is checked in tests/test_config.py.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
USAGE = (ROOT / "docs" / "USAGE.md").read_text(encoding="utf-8")
FENCE = r"^```(\w*)\n(.*?)^```"
README_BLOCKS = re.findall(FENCE, README, flags=re.S | re.M)
BLOCKS = README_BLOCKS + re.findall(FENCE, USAGE, flags=re.S | re.M)
FIRST_SCREEN_LINES = 40  # what a reader sees before scrolling
REDUCED_TRAINING = ["train.max_steps=40", "train.eval_max_sentences=20", "train.tensorboard=false", "train.verbose=0"]
ELSEWHERE = {
    "docker run": "TensorFlow Serving needs Docker; the ```python block runs the same SavedModel signatures",
    "TF_CONFIG=": "needs two hosts; test_two_multi_worker_processes_match_a_single_worker (tests/train/) runs "
    "the same two-worker training on 127.0.0.1",
    "python -m nmt serve": "a server and clients: tests/serve/ start the same server (in process and as "
    "`python -m nmt serve`) and send the same requests with real HTTP clients on 127.0.0.1",
    "train.init_from=": "needs a corpus of one's own domain and a trained parent; "
    "test_a_fine_tuned_run_starts_from_its_parent_and_resumes_exactly (tests/train/) fine-tunes a run the same way",
}


def blocks(kind: str) -> list[str]:
    return [text for k, text in BLOCKS if k == kind]


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")


def test_the_readme_has_the_expected_blocks():
    kinds = [k for k, _ in README_BLOCKS]
    # the two commands come first, the main job's with how it ends
    assert kinds[:3] == ["bash", "text", "bash"] and kinds.count("bash") == 2, kinds
    assert set(kinds) <= {"bash", "python", "text"}, kinds
    usage = [k for k, _ in BLOCKS[len(README_BLOCKS) :]]
    assert "bash" not in usage and set(usage) <= {"python", "text", "sh"}, usage


def test_the_readme_is_a_front_page():
    lines = README.splitlines()
    assert len(lines) <= 200, len(lines)
    dated = [line for line in lines if re.search(r"\b20\d\d-\d\d-\d\d\b|EPYC|Xeon|\bAMX\b|avx512|AVX2", line)]
    assert not dated, f"dated figures and CPU names belong in docs/RESULTS.md or docs/BENCHMARKS.md: {dated}"
    for doc in ("CONFIG", "RESULTS", "BENCHMARKS", "DESIGN", "ARCHITECTURE", "USAGE"):
        assert f"(docs/{doc}.md)" in README, doc
    for text, base in ((README, ROOT), (USAGE, ROOT / "docs")):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (base / target).exists(), target


def test_the_test_command_is_ci_s():
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("python3.11 -m venv")]
    assert ci and ci[0].strip() in [b.strip() for b in blocks("bash")]


def run_shell_commands(block: str, tmp_path: Path, substitutions: dict) -> list:
    """Runs the block's commands as the README gives them, reduced; returns the completed processes."""
    done = []
    for command in [c.strip() for c in block.strip().split("&&")]:
        argv = shlex.split(command)
        if argv[:3] == ["python3.11", "-m", "venv"] or argv[0].endswith("pip"):
            ci = (ROOT / ".ci" / "run").read_text()
            assert command in ci, f"{command!r}: not a step of .ci/run, which made this test environment"
            continue
        if argv[0] == ".venv/bin/python" and argv[1:3] == ["-m", "pytest"]:
            continue  # this run
        if argv[0] == ".venv/bin/ruff":
            argv[0] = str(Path(sys.executable).with_name("ruff"))
        elif argv[0] == ".venv/bin/python":
            argv[0] = sys.executable
        else:
            pytest.fail(f"README command {command!r}: no rule to run it here")
        argv = [substitutions.get(a, a) for a in argv]
        argv = [a.replace("runs/toy", str(tmp_path / "runs" / "toy")) for a in argv]
        if argv[1:2] == ["train.py"]:
            argv += [x for o in REDUCED_TRAINING for x in ("--set", o)]
        proc = subprocess.run(argv, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (command, proc.stdout[-2000:], proc.stderr[-3000:])
        done.append((argv, proc))
    return done


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    """The first screen's main job (train on the built-in corpus, translate its test set, score it)."""
    from nmt.text import toy_corpus

    tmp = tmp_path_factory.mktemp("readme")
    toy_corpus.ensure_written(ROOT / "data" / "numbers")  # what train.py does on first use, on a fresh checkout
    substitutions = {}
    for name in ("test.en", "test.de"):
        lines = (ROOT / "data" / "numbers" / name).read_text(encoding="utf-8").splitlines()[:40]
        (tmp / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        substitutions[f"data/numbers/{name}"] = str(tmp / name)
    (first,) = [b for b in blocks("bash") if "train.py" in b]
    return tmp, run_shell_commands(first, tmp, substitutions)


@pytest.mark.slow
def test_main_job_trains_translates_and_scores(main_job):
    tmp, done = main_job
    assert [argv[1] for argv, _ in done] == ["train.py", "translate.py"]
    run = tmp / "runs" / "toy"
    assert (run / "model.keras").is_file() and (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert len((run / "test.hyp.de").read_text(encoding="utf-8").splitlines()) == 40
    assert "BLEU = " in done[-1][1].stderr and "chrF2 = " in done[-1][1].stderr
    # the README's excerpt of what the main job prints has the lines the commands print (a reduced run:
    # Keras' own epoch lines are off, and the figures differ)
    excerpt = re.search(r"## What the main job prints\n.*?```text\n(.*?)```", README, flags=re.S).group(1)
    printed = {line.split()[0] for _, proc in done for line in (proc.stdout + proc.stderr).splitlines() if line.strip()}
    for line in excerpt.splitlines():
        first = line.split()[0]
        if first not in ("...", "Epoch") and not first[0].isdigit():
            assert first in printed, f"README: the main job prints no line like {line!r}"
    # the first screen shows how the main job ends: the excerpt's last lines (checked above)
    first_screen = "\n".join(README.splitlines()[:FIRST_SCREEN_LINES])
    (ending,) = re.findall(r"```bash\n[^`]*?train\.py[^`]*?```\n[^`]*?```text\n(.*?)```", first_screen, flags=re.S)
    ending = ending.splitlines()
    assert len(ending) >= 3 and excerpt.splitlines()[-len(ending) :] == ending, ending
    assert ending[-2].startswith("BLEU = ") and ending[-1].startswith("chrF2 = ")  # translate.py --reference


def test_lint_and_format_commands(tmp_path):
    (test_block,) = [b for b in blocks("bash") if "pytest" in b]
    done = run_shell_commands(test_block, tmp_path, {})
    assert [Path(argv[0]).name for argv, _ in done] == ["ruff", "ruff"]


@pytest.mark.slow
def test_python_blocks_run_against_the_run(main_job):
    """The README's Python API examples (translate, score and load the model of a run; train from a config)
    and USAGE's SavedModel example, each in a fresh interpreter as a user runs it."""
    tmp, _ = main_job
    python = blocks("python")
    assert any("load_run(" in b for b in python) and any("saved_model.load(" in b for b in python)
    assert any("nmt.load_model(" in b for b in python) and any("nmt.train(" in b for b in python)
    for block in python:
        code = block.replace("runs/toy", str(tmp / "runs" / "toy"))
        if "nmt.train(" in block:  # reduced as the main job is
            (overrides,) = re.findall(r"load_config\([^,]+, (\[.*?\])\)", code)
            code = code.replace(overrides, repr(REDUCED_TRAINING))
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=900
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        lines = proc.stdout.splitlines()
        if "saved_model" in block:
            assert proc.stdout.startswith("[b'"), proc.stdout
        elif "nmt.train(" in block:  # why it stopped, the steps and where; then the test scores
            assert lines[0] == f"max_steps 40 {tmp / 'runs' / 'toy-python'}", proc.stdout
            assert lines[1].startswith("BLEU = ") and lines[2].startswith("chrF2 = "), proc.stdout
            assert (tmp / "runs" / "toy-python" / "model.keras").is_file()
        else:
            # two translations, the 3-best list of one sentence ("score  text", best first), the scores of
            # 50 test lines, and the Keras model's class and size
            assert len(lines) == 8, proc.stdout
            scores = [float(line.split("  ", 1)[0]) for line in lines[2:5]]
            assert scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores), proc.stdout
            assert lines[5].startswith("BLEU = ") and lines[6].startswith("chrF2 = "), proc.stdout
            assert re.fullmatch(r"\w+ [\d,]+ parameters", lines[7]), proc.stdout


SYNOPSIS_COMMANDS = {
    "train.py": "train.py",
    "translate.py": "translate.py",
    "scripts/evaluate.py": "scripts/evaluate.py",
    "scripts/prepare_data.py": "scripts/prepare_data.py",
}


def test_synopses_name_only_existing_options():
    checked, commands = 0, set()
    for block in blocks("text"):
        for line in block.replace("\\\n", " ").splitlines():
            words = line.split()
            if len(words) < 2 or words[0] != "python" or words[1] not in SYNOPSIS_COMMANDS:
                continue
            commands.add(words[1])
            subcommand = words[2:3] if len(words) > 2 and re.fullmatch(r"[a-z0-9]+", words[2]) else []
            usage = subprocess.run(
                [sys.executable, str(ROOT / words[1]), *subcommand, "--help"],
                cwd=ROOT,
                env=env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert usage.returncode == 0, usage.stderr
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line.split("#")[0]):
                assert option in usage.stdout, (words[1], *subcommand, option)
                checked += 1
    assert checked >= 15 and commands == set(SYNOPSIS_COMMANDS), (checked, commands)


def test_blocks_that_need_other_machines_are_run_elsewhere():
    for block in blocks("sh"):
        reasons = [why for marker, why in ELSEWHERE.items() if marker in block]
        assert reasons, f"a new ```sh block needs a test (or an entry in ELSEWHERE with its reason):\n{block}"
