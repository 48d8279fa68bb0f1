"""nmt.serve.server.run, the process's loop, under real signals, without TensorFlow: a child process serves
the stand-in translator of tests/serve/serving.py on 127.0.0.1 exactly as `python -m nmt serve` serves a
model (the same `run`). SIGTERM or SIGINT (Ctrl-C) with requests in flight: they are answered, the port
closes, the process returns normally; a second signal exits at once and says what it leaves unanswered.
The same with a real model, through `python -m nmt serve`: test_serve_process.py."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time

import pytest

from tests.serve.serving import HOST, ServingProcess, clients, expected_answer

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


def child(mode: str) -> ServingProcess:
    """The stand-in server of CHILD, "free" (answers at once) or "held" (its translation never finishes)."""
    return ServingProcess([sys.executable, "-c", CHILD, mode])


async def queued(url: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.get(f"{url}/health") as response:
            state = await response.json()
    return state["queued"] + state["running"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_answers_the_requests_in_flight_then_run_returns(signum):
    server = child("free")
    try:
        url = server.url("stand-in", timeout=60)
        port = int(url.rsplit(":", 1)[1])
        plans = [[{"sentences": [f"request {r} sentence {i}" for i in range(5)]}] for r in range(4)]

        async def scenario():
            requests = asyncio.ensure_future(clients(url, plans, timeout=60))
            deadline = time.monotonic() + 30
            while await queued(url) != 20:  # the batch waits up to 20 s for company: in flight
                assert time.monotonic() < deadline and not requests.done()
                await asyncio.sleep(0.02)
            started = time.monotonic()
            server.signal(signum)
            answers = await requests
            return answers, time.monotonic() - started

        answers, elapsed = asyncio.run(scenario())
        status = server.wait(60)
    finally:
        server.kill()
    stderr = "".join(server.stderr)
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
    server = child("held")  # the translation never finishes: the stop cannot complete by itself
    try:
        url = server.url("stand-in", timeout=60)
        plans = [[{"sentences": [f"r{r}"]}] for r in range(3)]

        async def scenario():
            requests = asyncio.ensure_future(clients(url, plans, timeout=60))
            deadline = time.monotonic() + 30
            while await queued(url) != 3:
                assert time.monotonic() < deadline and not requests.done()
                await asyncio.sleep(0.02)
            server.signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while not any("stopping" in line for line in server.stderr):
                assert time.monotonic() < deadline, server.stderr
                await asyncio.sleep(0.02)
            server.signal(signal.SIGTERM)
            try:
                await requests
            except Exception as error:  # the connections are dropped by the exit
                return error
            return None

        error = asyncio.run(scenario())
        status = server.wait(60)
    finally:
        server.kill()
    stderr = "".join(server.stderr)
    assert error is not None
    assert status == 128 + signal.SIGTERM, stderr
    assert stderr.splitlines()[-1] == "error: SIGTERM again: exiting now; 3 request(s) in flight not answered", stderr
