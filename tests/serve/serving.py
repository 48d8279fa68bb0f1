"""Helpers of the serving tests (imported as ``tests.serve.serving``; not a test file itself).

- ``FakeTranslator``: a TensorFlow-free stand-in for `nmt.decode.translator.Translator` whose settings are
  the real `SearchSettings` (the one validation of the search options) and whose translation of a sentence
  is a function of the sentence and the settings alone (``fake_translation``), so an answer given to the
  wrong request, or in the wrong order, shows. It records its calls and can be held (a gate) or fail.
- ``ServerThread``: `nmt.serve.server.serve` on 127.0.0.1 and a free port, in a thread of this process.
- ``ServingProcess``: a serving child process (``python -m nmt serve`` or a stand-in script), its standard
  error read into lines by a thread, its URL taken from its ready line.
- Real HTTP clients on 127.0.0.1: ``call`` (urllib, one request) and ``run_clients`` (aiohttp, concurrent
  clients, each with its own connection, bounded in count and time).
Everything here talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pytest

from nmt.config import DecodeConfig
from nmt.decode.settings import Batching, SearchSettings

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------------------ the stand-in


class FakeHypothesis(NamedTuple):
    text: str
    score: float


class FakeTranslation(NamedTuple):
    source: str
    hypotheses: list
    source_ids: list = []
    truncated_from: int | None = None  # as Translation: the source's token count when it was cut

    @property
    def text(self) -> str:
        return self.hypotheses[0].text


def fake_translation(sentence: str, settings: SearchSettings) -> FakeTranslation:
    """The oracle: what FakeTranslator answers for sentence with settings, whatever else is in the call. A
    sentence of more than MAX_WORDS words is "cut" to its first MAX_WORDS, as a source longer than
    max_input_len tokens is."""
    words = sentence.split()
    return FakeTranslation(
        sentence,
        [
            FakeHypothesis(f"{sentence[::-1]}|b{settings.beam_size}|lp{settings.length_penalty:g}|{k}", -1.0 - k)
            for k in range(settings.nbest)
        ],
        list(range(min(len(words), MAX_WORDS))),
        len(words) if len(words) > MAX_WORDS else None,
    )


MAX_WORDS = 20


def expected_answer(sentence: str, settings: SearchSettings):
    """What the server must answer for one sentence: its text, or with nbest > 1 its {"text", "score"} list."""
    translation = fake_translation(sentence, settings)
    if settings.nbest == 1:
        return translation.text
    return [{"text": h.text, "score": h.score} for h in translation.hypotheses]


class FakeTranslator:
    """settings(...) as `Translator.settings` (the decode section's defaults with the options given, checked);
    translate(sentences, settings, batching) -> [fake_translation]. calls: (sentences, settings) per call.
    gate: when given, each call waits for it (up to 60 s). fail_on: a sentence whose call raises."""

    def __init__(self, decode: DecodeConfig | None = None, gate: threading.Event | None = None, fail_on=None):
        self.decode = DecodeConfig() if decode is None else decode
        self.gate, self.fail_on = gate, fail_on
        self.calls: list[tuple[list, SearchSettings]] = []
        self._lock = threading.Lock()

    def settings(self, beam_size=None, nbest=None, length_penalty=None, attention=False) -> SearchSettings:
        return SearchSettings.from_decode(
            self.decode, beam_size=beam_size, nbest=nbest, length_penalty=length_penalty, attention=attention
        )

    def batching(self) -> Batching:
        return Batching.from_decode(self.decode)

    def translate(self, sentences, settings, batching) -> list[FakeTranslation]:
        assert isinstance(settings, SearchSettings) and isinstance(batching, Batching)
        with self._lock:
            self.calls.append((list(sentences), settings))
        if self.gate is not None:
            assert self.gate.wait(60), "the test never opened the gate"
        if self.fail_on is not None and self.fail_on in sentences:
            raise RuntimeError(f"cannot translate {self.fail_on!r}")
        return [fake_translation(s, settings) for s in sentences]


# --------------------------------------------------------------------------------------------- the server


class ServerThread:
    """``with ServerThread(translator, batching, limits) as server:`` serves on server.url (127.0.0.1, a free
    port) from a thread with its own event loop; leaving the block stops it gracefully (the requests in
    flight answered) and joins the thread. server.app is the aiohttp application."""

    def __init__(self, translator, batching=None, limits=None, name: str = "test"):
        from nmt.serve.app import make_app
        from nmt.serve.server import listen

        self.sock = listen(HOST, 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        batching = translator.batching() if batching is None else batching
        self.app = make_app(translator, batching, limits, name=name)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.ready_url = None
        self.thread = threading.Thread(target=self._main, name=f"serve-{self.port}", daemon=True)

    def _main(self) -> None:
        from nmt.serve.server import serve

        async def main():
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def ready(url):
                self.ready_url = url
                self._ready.set()

            await serve(self.app, self.sock, stop=self._stop, on_ready=ready)

        try:
            asyncio.run(main())
        except BaseException as error:  # reported by start() or stop()
            self._error = error
        finally:
            self._ready.set()

    def start(self) -> ServerThread:
        self.thread.start()
        assert self._ready.wait(60), "the server did not start in 60 s"
        if self._error is not None:
            raise self._error
        return self

    def stop_soon(self) -> None:
        """Asks the server to stop (from any thread); it answers the requests in flight first."""
        self._loop.call_soon_threadsafe(self._stop.set)

    def join(self, timeout: float = 120) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the server did not stop in {timeout} s"
        self.sock.close()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self.thread.is_alive():
            self.stop_soon()
        self.join()

    @property
    def service(self):
        from nmt.serve.app import SERVICE

        return self.app[SERVICE]

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ServingProcess:
    """A child process that serves on 127.0.0.1 (argv: its command line, run in the repository root with it
    on PYTHONPATH), its standard error read by a thread into ``lines`` (a queue) and ``stderr`` (a list)."""

    def __init__(self, argv: list[str]):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("NMT_VERBOSE", None)
        self.proc = subprocess.Popen(
            [str(a) for a in argv],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def url(self, name: str = ".*", timeout: float = 300) -> str:
        """The server's URL, from its ready line "serving NAME on URL (POST /translate, GET /health)"; the test
        fails if the process exits or prints no such line within timeout seconds."""
        ready = re.compile(rf"serving {name} on (http://127\.0\.0\.1:\d+) \(POST /translate, GET /health\)")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, "".join(self.stderr)[-3000:]
                continue
            match = ready.match(line)
            if match:
                return match.group(1)
        pytest.fail(f"no ready line in {timeout} s: {''.join(self.stderr)[-3000:]}")

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def wait(self, timeout: float = 120) -> int:
        """Its exit status; the test fails (and the process is killed) if it runs on past timeout seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the process did not exit in {timeout} s: {''.join(self.stderr)[-3000:]}")
        finally:
            self.reader.join(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


# -------------------------------------------------------------------------------------------- the clients

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 directly, never a proxy


def call(url: str, body=None, method: str | None = None, timeout: float = 60):
    """One request with urllib: (status, headers, JSON answer). body: a dict or list is sent as JSON, bytes
    as they are, an iterator of bytes chunked (no Content-Length); a body makes it a POST unless method
    says otherwise."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


def health(server_url: str) -> dict:
    status, _, answer = call(f"{server_url}/health")
    assert status == 200, answer
    return answer


async def _client(url: str, payloads: list, timeout: float) -> list:
    import aiohttp

    answers = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        for payload in payloads:
            async with session.post(f"{url}/translate", json=payload) as response:
                answers.append((response.status, await response.json(content_type=None)))
    return answers


async def clients(url: str, plans: list[list], timeout: float = 300) -> list[list]:
    """Each plan is one client's requests (JSON payloads), sent one after another over its own connection;
    the clients run concurrently. -> [[(status, answer) per request] per client]; at most timeout seconds."""
    return await asyncio.wait_for(asyncio.gather(*(_client(url, plan, timeout) for plan in plans)), timeout)


def run_clients(url: str, plans: list[list], timeout: float = 300) -> list[list]:
    return asyncio.run(clients(url, plans, timeout))


def wait_until(condition, timeout: float = 60, what: str = "the condition") -> None:
    """Polls condition() every 10 ms until it is true, for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout} s"
        time.sleep(0.01)
