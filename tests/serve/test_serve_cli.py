"""`python -m nmt serve` as a user starts it: every mistake (a missing run, a bad option, a port in use, an
unknown verb) is one line ``error: ...`` naming the culprit, exit status 2, no traceback, and is found
before TensorFlow loads. These checks need no trained model: the run directory here is a stand-in that
passes the checks made before loading (config.yaml, tokenizer/, model.keras present). The server with a
real model: test_serve_process.py.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> Path:
    """A directory that passes check_run_dir: the default config, an empty tokenizer/, a model.keras that
    is not a model (never loaded here)."""
    from nmt import config

    run = tmp_path_factory.mktemp("stand_in_run")
    (run / "config.yaml").write_text(config.load(None).to_yaml(), encoding="utf-8")
    (run / "tokenizer").mkdir()
    (run / "model.keras").write_bytes(b"not a model")
    return run


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")


def python(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *map(str, args)], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=timeout
    )


def serve_in_process(*argv) -> subprocess.CompletedProcess:
    """nmt.cli.serve.main(argv) in a fresh interpreter; its last line of standard output lists the TensorFlow
    modules loaded by then."""
    code = (
        "import sys\nfrom nmt.cli import serve\n"
        f"status = serve.main({[str(a) for a in argv]!r})\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'tensorflow_text') if m in sys.modules))\n"
        "sys.exit(status)\n"
    )
    return python("-c", code)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        ([], "the following arguments are required: --model"),
        (["--model", "{missing}"], "--model {missing}: no such run directory"),
        (["--model", "{run}", "--port", "70000"], "--port: received 70000, expected a port number in [0, 65535]"),
        (["--model", "{run}", "--port", "http"], "argument --port: invalid int value: 'http'"),
        (["--model", "{run}", "--host", ""], "--host: received '', expected an address of this machine"),
        (["--model", "{run}", "--max-sentences", "0"], "--max-sentences: received 0, expected a positive integer"),
        (["--model", "{run}", "--max-request-bytes", "0"], "--max-request-bytes: received 0"),
        (["--model", "{run}", "--max-batch", "-3"], "--max-batch: received -3, expected a positive integer"),
        (["--model", "{run}", "--max-wait-ms", "-1"], "--max-wait-ms: received -1.0, expected a number in [0, 60000]"),
        (["--model", "{run}", "--max-queue", "10"], "--max-queue: received 10, expected at least max_sentences (64)"),
        (["--model", "{run}", "--max-settings", "0"], "--max-settings: received 0"),
        (["--model", "{run}", "--shutdown-timeout", "0"], "--shutdown-timeout: received 0.0, expected a positive"),
        (["--model", "{run}", "--max-beam-size", "2"], "--max-beam-size: received 2, expected at least the run's beam"),
        (["--model", "{run}", "--batch-size", "0"], "--batch-size: received 0, expected a positive integer"),
        (["--model", "{run}", "--batch-size", "2", "--batch-tokens", "9"], "not allowed with argument --batch-size"),
        (["--model", "{run}", "--checkpoint", "7"], "--checkpoint 7: no checkpoint of step 7"),
        (["--model", "{run}", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_a_mistake_is_one_line_naming_the_option(stand_in, tmp_path, args, words):
    missing = tmp_path / "no_such_run"
    argv = [a.format(run=stand_in, missing=missing) for a in args]
    line = one_error_line(python("-m", "nmt", "serve", *argv))
    assert words.format(missing=missing) in line, line


def test_an_unknown_verb_is_one_line_listing_the_commands():
    line = one_error_line(python("-m", "nmt", "serv", "--model", "x"))
    assert "unknown command 'serv'" in line and "serve" in line


def test_a_port_in_use_is_one_line_naming_it_before_tensorflow_loads(stand_in):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = serve_in_process("--model", stand_in, "--port", port)
        as_user = python("-m", "nmt", "serve", "--model", stand_in, "--host", "127.0.0.1", "--port", port)
    assert proc.returncode == 2 and proc.stdout.splitlines()[-1] == "[]", proc.stdout  # no TensorFlow loaded
    line = one_error_line(as_user)
    assert line == (
        f"error: --port {port}: 127.0.0.1:{port} is already in use (another server?); choose another port, "
        "or 0 for any free one"
    )
    assert proc.stderr == as_user.stderr


def test_the_options_are_checked_before_tensorflow_loads(stand_in):
    proc = serve_in_process("--model", stand_in, "--max-batch", "0")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --max-batch: received 0")
    assert proc.stdout.splitlines()[-1] == "[]", proc.stdout


def test_the_serving_modules_import_no_tensorflow():
    code = (
        "import sys\nimport nmt.cli.serve, nmt.serve.app, nmt.serve.batcher, nmt.serve.limits, nmt.serve.request, "
        "nmt.serve.server\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'tensorflow_text') if m in sys.modules))\n"
    )
    proc = python("-c", code)
    assert proc.returncode == 0 and proc.stdout == "[]\n", proc.stderr[-2000:]


def test_help_lists_the_command_and_every_option_the_docs_name():
    listing = python("-m", "nmt", "--help")
    assert listing.returncode == 0 and any(line.split()[:1] == ["serve"] for line in listing.stdout.splitlines())
    usage = python("-m", "nmt", "serve", "--help")
    assert usage.returncode == 0 and usage.stdout.startswith("usage: nmt serve")
    assert "127.0.0.1" in usage.stdout and "(default 64)" in usage.stdout
    named = set()
    for doc in (ROOT / "README.md", ROOT / "docs" / "USAGE.md"):
        text = doc.read_text(encoding="utf-8").replace("\\\n", " ")
        for line in text.splitlines():
            if line.strip().startswith("python -m nmt serve"):
                for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line.split("#")[0]):
                    assert option in usage.stdout, (doc.name, option)
                    named.add(option)
    assert {"--model", "--host", "--port", "--max-sentences"} <= named, named
