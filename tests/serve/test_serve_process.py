"""`python -m nmt serve` as a process, as a user runs it (127.0.0.1, a free port): the ready line, answers, and
SIGTERM or Ctrl-C (SIGINT) while requests are in flight: those requests are answered, new connections are
refused, and the process exits 0 with a line saying what it served."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.serve.serving import HOST, ServingProcess, clients

ROOT = Path(__file__).resolve().parents[2]


def serve_process(*args) -> ServingProcess:
    """python -m nmt serve on 127.0.0.1 and a free port, with these arguments."""
    return ServingProcess([sys.executable, "-m", "nmt", "serve", "--host", HOST, "--port", "0", *args])


async def health(session, url):
    async with session.get(f"{url}/health") as response:
        return await response.json()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_answers_the_requests_in_flight_then_exits_0(translator_run, signum):
    """Six requests of 40 sentences wait in the server's queue (--max-wait-ms 20000: the batch would wait
    20 s for more); the signal comes; the six are answered at once (a stopping server waits for no
    company), the port closes, and the process exits 0."""
    import aiohttp

    sentences = [s for s, _ in translator_run["test"]]
    plans = [[{"sentences": (sentences * 3)[17 * r : 17 * r + 40]}] for r in range(6)]  # 6 x 40, overlapping
    server = serve_process("--model", translator_run["dir"], "--max-wait-ms", "20000", "--max-batch", "4096")
    try:
        url = server.url()
        port = int(url.rsplit(":", 1)[1])

        async def scenario():
            requests = asyncio.ensure_future(clients(url, plans, timeout=300))
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
                deadline = time.monotonic() + 60
                total = sum(len(plan[0]["sentences"]) for plan in plans)
                while (await health(session, url))["queued"] != total:
                    assert time.monotonic() < deadline and not requests.done(), "the requests never queued"
                    await asyncio.sleep(0.02)
            assert not requests.done()  # in flight: queued, not translated
            started = time.monotonic()
            server.signal(signum)
            answers = await requests
            return answers, time.monotonic() - started

        answers, elapsed = asyncio.run(scenario())
        status = server.wait()
    finally:
        server.kill()
    stderr = "".join(server.stderr)
    assert status == 0, stderr[-3000:]
    for plan, ((code, answer),) in zip(plans, answers):
        assert code == 200, answer
        assert len(answer["translations"]) == len(plan[0]["sentences"])
        assert all(isinstance(t, str) for t in answer["translations"])
    assert elapsed < 18, elapsed  # answered without waiting out the 20 s for company
    name = signal.Signals(signum).name
    assert f"{name}: stopping; answering the 6 request(s) in flight first" in stderr, stderr
    assert "stopped: 6 request(s) answered, 0 refused; 240 sentence(s) translated in 1 batch(es)" in stderr, stderr
    assert "Traceback" not in stderr and "error:" not in stderr, stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=5).close()


@pytest.mark.slow
def test_a_request_over_the_process_and_a_second_server_on_its_port(translator_run, tmp_path):
    """A running server answers as its in-process twin does (test_serve_model.py); a second server on its
    port is refused in one line naming the port."""
    import json
    import urllib.request

    server = serve_process("--model", translator_run["dir"])
    try:
        url = server.url()
        port = url.rsplit(":", 1)[1]
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        body = json.dumps({"sentences": [s for s, _ in translator_run["test"][:5]]}).encode()
        with opener.open(urllib.request.Request(f"{url}/translate", data=body), timeout=120) as response:
            answer = json.loads(response.read())
        assert response.status == 200 and len(answer["translations"]) == 5
        second = subprocess.run(
            [sys.executable, "-m", "nmt", "serve", "--model", str(translator_run["dir"]), "--port", port],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2 and second.stderr == (
            f"error: --port {port}: 127.0.0.1:{port} is already in use (another server?); choose another port, "
            "or 0 for any free one\n"
        )
        server.signal(signal.SIGTERM)
        assert server.wait() == 0
    finally:
        server.kill()
    from nmt.cli import translate as translate_cli

    translator = translate_cli.get_translator(translator_run["dir"], False)
    want = [t.text for t in translator.translate([s for s, _ in translator_run["test"][:5]])]
    assert answer["translations"] == want


@pytest.mark.slow
def test_a_run_that_cannot_be_loaded_is_one_line_and_exit_2(tmp_path):
    """A run directory that passes the checks made before TensorFlow loads (config.yaml, tokenizer/,
    model.keras are there) but whose files are not what train.py writes: one line naming the run."""
    from nmt import config

    run = tmp_path / "broken_run"
    (run / "tokenizer").mkdir(parents=True)
    (run / "config.yaml").write_text(config.load(None).to_yaml(), encoding="utf-8")
    (run / "model.keras").write_bytes(b"not a model")
    proc = subprocess.run(
        [sys.executable, "-m", "nmt", "serve", "--model", str(run), "--port", "0"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(run) in lines[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
