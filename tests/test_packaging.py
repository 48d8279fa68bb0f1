"""The package installs the way a user installs it and its commands work from outside the checkout.

A fresh virtual environment sees the already installed dependencies through a .pth file (so CI does not
download TensorFlow twice), and `pip install --no-deps .` installs nmt into it; then, from a directory
that is not the checkout, `nmt VERB --help` answers for every verb, `nmt --help` and `python -m nmt --help` list them, a
sentence is translated, and the installed metadata requires exactly the pins of requirements.txt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from nmt.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def pins() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return sorted(line.split("#")[0].strip() for line in lines if line.split("#")[0].strip())


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    base = tmp_path_factory.mktemp("packaging")
    env_dir = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies already installed for the tests (TensorFlow and the rest), not downloaded again
    Path(site, "outer-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # from a copy of the sources: pip builds in the source tree (build/, *.egg-info), not in the checkout
    source = base / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "runs", "data", "*.egg-info", "__pycache__", ".pytest_cache"
        ),
    )
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(source)],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outside = base / "elsewhere"
    outside.mkdir()
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # quiet by default: nothing set to make it so
    env.pop("NMT_VERBOSE", None)
    return env_dir, outside, env


@pytest.mark.slow
def test_console_commands_answer_help_from_outside_the_checkout(venv):
    env_dir, outside, env = venv
    where = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", "import nmt, nmt.cli.translate; print(nmt.__file__)"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert where.returncode == 0 and where.stdout.startswith(str(env_dir)), (where.stdout, where.stderr[-2000:])
    assert sorted(p.name for p in (env_dir / "bin").glob("nmt*")) == ["nmt"]  # one command, no nmt-* aliases
    for verb in COMMANDS:
        proc = subprocess.run(
            [str(env_dir / "bin" / "nmt"), verb, "--help"],
            cwd=outside,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0 and proc.stdout.startswith(f"usage: nmt {verb} "), (verb, proc.stderr[-2000:])
    proc = subprocess.run(
        [str(env_dir / "bin" / "nmt"), "--help"], cwd=outside, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and all(f"  {verb} " in proc.stdout for verb in COMMANDS), proc.stdout
    listing = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "nmt", "--help"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listing.returncode == 0
    for name in ("train", "translate", "evaluate", "prepare"):
        assert f"  {name} " in listing.stdout


@pytest.mark.slow
def test_installed_translate_command_translates(venv, translator_run):
    env_dir, outside, env = venv
    run = translator_run
    from nmt.decode.translator import load_run

    sentence = run["test"][0][0]
    want = [t.text for t in load_run(run["dir"]).translate([sentence])][0]
    proc = subprocess.run(
        [str(env_dir / "bin" / "nmt"), "translate", "--model", str(run["dir"]), sentence],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == want + "\n"
    assert proc.stderr == ""  # quiet: no TensorFlow start-up noise


def test_installed_metadata_requires_the_pins_of_requirements_txt(venv):
    env_dir, outside, env = venv
    proc = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", "import importlib.metadata as m; print('\\n'.join(m.requires('nmt')))"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == pins()
