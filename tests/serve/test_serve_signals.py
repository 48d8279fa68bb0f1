"""nmt.serve.server.run, the process's loop, under real signals, without TensorFlow: a child process serves
the stand-in translator of tests/serve/serving.py on 127.0.0.1 exactly as `python -m nmt serve` serves a
model (the same `run`). SIGTERM or SIGINT (Ctrl-C) with requests in flight: they are answered, the port
closes, the process returns normally; a second signal exits at once and says what it leaves unanswered.
The same with a real model, through `python -m nmt serve`: test_serve_process.py."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.serve.serving import HOST, clients, expected_answer

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, threading
from tests.serve.serving import FakeTranslator
from nmt.serve.app import make_app
from nmt.serve.limits import ServeLimits
from nmt.serve.server import listen, run

held = sys.argv[1] == "held"
fake = FakeTranslator(gate=threading.Event() if held else None)
sock = listen("127.0.0.1", 0)
limits = ServeLimits(max_wait_ms=20000, max_batch=4096, shutdown_timeout=30)
app = make_app(fake, fake.batching(), limits, name="stand-in")
run(app, sock, say=lambda line: print(line, file=sys.stderr, flush=True), what="stand-in")
print("returned", file=sys.stderr, flush=True)
"""


class Child:
    def __init__(self, mode: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, mode],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def url(self, timeout=60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, "".join(self.stderr)
                continue
            match = re.match(r"serving stand-in on (http://127\.0\.0\.1:\d+) \(POST /translate, GET /health\)", line)
            if match:
                return match.group(1)
        pytest.fail(f"no ready line: {''.join(self.stderr)}")

    def wait(self, timeout=60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(30)
            self.reader.join(30)


async def queued(url: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.get(f"{url}/health") as response:
            state = await response.json()
    return state["queued"] + state["running"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_answers_the_requests_in_flight_then_run_returns(signum):
    child = Child("free")
    try:
        url = child.url()
        port = int(url.rsplit(":", 1)[1])
        plans = [[{"sentences": [f"request {r} sentence {i}" for i in range(5)]}] for r in range(4)]

        async def scenario():
            requests = asyncio.ensure_future(clients(url, plans, timeout=60))
            deadline = time.monotonic() + 30
            while await queued(url) != 20:  # the batch waits up to 20 s for company: in flight
                assert time.monotonic() < deadline and not requests.done()
                await asyncio.sleep(0.02)
            started = time.monotonic()
            os.kill(child.proc.pid, signum)
            answers = await requests
            return answers, time.monotonic() - started

        answers, elapsed = asyncio.run(scenario())
        status = child.wait()
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
    stderr = "".join(child.stderr)
    assert status == 0, stderr
    from nmt.config import DecodeConfig
    from nmt.decode.settings import SearchSettings

    defaults = SearchSettings.from_decode(DecodeConfig())
    for plan, ((code, answer),) in zip(plans, answers):
        assert code == 200, answer
        assert answer == {"translations": [expected_answer(s, defaults) for s in plan[0]["sentences"]]}
    assert elapsed < 15, elapsed  # a stopping server waits for no company
    name = signal.Signals(signum).name
    assert stderr.splitlines()[1:] == [
        f"{name}: stopping; answering the 4 request(s) in flight first (a second Ctrl-C exits at once)",
        "stopped: 4 request(s) answered, 0 refused; 20 sentence(s) translated in 1 batch(es)",
        "returned",
    ], stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=5).close()


def test_a_second_signal_exits_at_once_saying_what_it_leaves():
    child = Child("held")  # the translation never finishes: the stop cannot complete by itself
    try:
        url = child.url()
        plans = [[{"sentences": [f"r{r}"]}] for r in range(3)]

        async def scenario():
            requests = asyncio.ensure_future(clients(url, plans, timeout=60))
            deadline = time.monotonic() + 30
            while await queued(url) != 3:
                assert time.monotonic() < deadline and not requests.done()
                await asyncio.sleep(0.02)
            os.kill(child.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while not any("stopping" in line for line in child.stderr):
                assert time.monotonic() < deadline, child.stderr
                await asyncio.sleep(0.02)
            os.kill(child.proc.pid, signal.SIGTERM)
            try:
                await requests
            except Exception as error:  # the connections are dropped by the exit
                return error
            return None

        error = asyncio.run(scenario())
        status = child.wait()
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
    stderr = "".join(child.stderr)
    assert error is not None
    assert status == 128 + signal.SIGTERM, stderr
    assert stderr.splitlines()[-1] == "error: SIGTERM again: exiting now; 3 request(s) in flight not answered", stderr
