"""nmt.serve.app and nmt.serve.server over real HTTP on 127.0.0.1, with a TensorFlow-free stand-in for the
translator (tests/serve/serving.py: its answer for a sentence depends on the sentence and the settings
alone, so an answer given to another request or in another order shows).

The contract of POST /translate and GET /health, every refusal as a JSON error naming its field, concurrent
clients each answered with exactly their own sentences, the cross-request batching, a full queue (503),
a failed translation (500), the budget of distinct settings, and a graceful stop that answers the
requests in flight. The same server with the real translator: test_serve_model.py and
test_serve_process.py.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time

import pytest

from nmt.serve.limits import ServeLimits
from tests.serve.serving import (
    HOST,
    FakeTranslator,
    ServerThread,
    call,
    expected_answer,
    health,
    run_clients,
    wait_until,
)

LIMITS = ServeLimits(max_sentences=4, max_request_bytes=2000, max_beam_size=8, max_queue=64)


@pytest.fixture(scope="module")
def fake():
    return FakeTranslator()


@pytest.fixture(scope="module")
def server(fake):
    with ServerThread(fake, limits=LIMITS, name="fake-run") as server:
        yield server


def test_translations_come_in_request_order_as_strings_or_nbest_lists(server, fake):
    sentences = ["one two", "", "   ", "drei vier fünf", "漢字 ok"][:4]
    status, headers, answer = call(f"{server.url}/translate", {"sentences": sentences})
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert answer == {"translations": [expected_answer(s, fake.settings()) for s in sentences]}
    options = {"sentences": sentences, "beam_size": 3, "nbest": 2, "length_penalty": 1}
    status, _, answer = call(f"{server.url}/translate", options)
    settings = fake.settings(beam_size=3, nbest=2, length_penalty=1.0)
    assert status == 200 and answer == {"translations": [expected_answer(s, settings) for s in sentences]}
    assert [set(h) for h in answer["translations"][0]] == [{"text", "score"}] * 2
    status, _, answer = call(f"{server.url}/translate", {"sentences": ["x"], "beam_size": None, "nbest": 1})
    assert status == 200 and answer == {"translations": [expected_answer("x", fake.settings())]}
    status, _, answer = call(f"{server.url}/translate", {"sentences": []})
    assert status == 200 and answer == {"translations": []}


def test_a_sentence_cut_to_max_input_len_is_said_in_the_answer(server, fake):
    sentences = ["short", " ".join(["w"] * 25), "", " ".join(["v"] * 21)]
    status, _, answer = call(f"{server.url}/translate", {"sentences": sentences})
    assert status == 200
    assert answer["translations"] == [expected_answer(s, fake.settings()) for s in sentences]
    assert answer["truncated"] == [{"index": 1, "tokens": 25, "kept": 20}, {"index": 3, "tokens": 21, "kept": 20}]
    status, _, answer = call(f"{server.url}/translate", {"sentences": ["short"]})
    assert "truncated" not in answer


def test_health_says_the_model_defaults_limits_and_counts(server):
    state = health(server.url)
    assert state["status"] == "ok" and state["model"] == "fake-run"
    assert state["defaults"] == {"beam_size": 5, "nbest": 1, "length_penalty": 0.6}
    assert state["settings"][0] == state["defaults"]
    assert state["limits"] == LIMITS.to_dict()
    for key in ("in_flight", "answered", "refused", "queued", "running", "batches", "sentences", "largest_batch"):
        assert isinstance(state[key], int) and state[key] >= 0, key


TOO_BIG = json.dumps({"sentences": ["x" * 1000, "y" * 1000]}).encode()


@pytest.mark.parametrize(
    "method, path, body, status, field, words",
    [
        ("POST", "/translate", b"{", 400, None, "request body: not valid JSON"),
        ("POST", "/translate", b"", 400, None, "request body: empty"),
        ("POST", "/translate", {"sentences": ["a"], "beam": 2}, 400, "beam", "beam: unknown field"),
        ("POST", "/translate", {"sentences": "a"}, 400, "sentences", "expected a list of strings"),
        ("POST", "/translate", {"sentences": ["a", 7]}, 400, "sentences[1]", "expected a string"),
        ("POST", "/translate", {"sentences": ["a"], "beam_size": 0}, 400, "beam_size", "positive integer"),
        ("POST", "/translate", {"sentences": ["a"], "beam_size": 9}, 400, "beam_size", "at most 8"),
        ("POST", "/translate", {"sentences": ["a"], "nbest": 6}, 400, "nbest", "at most the beam size (5)"),
        ("POST", "/translate", {"sentences": ["a"], "length_penalty": -2}, 400, "length_penalty", "received -2"),
        ("POST", "/translate", {"sentences": list("abcde")}, 413, "sentences", "5 sentences, more than the 4"),
        ("POST", "/translate", TOO_BIG, 413, None, "more than 2000 bytes"),
        ("POST", "/translate", iter([TOO_BIG[:1500], TOO_BIG[1500:]]), 413, None, "more than 2000 bytes"),  # chunked
        ("GET", "/translate", None, 405, None, "GET /translate: method not allowed; expected POST"),
        ("POST", "/health", b"{}", 405, None, "POST /health: method not allowed; expected GET"),
        ("GET", "/translations", None, 404, None, "/translations: no such route; expected POST /translate"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_requests_get_a_json_error_naming_the_field(server, method, path, body, status, field, words):
    before = health(server.url)["refused"]
    got, headers, answer = call(f"{server.url}{path}", body, method=method)
    assert got == status, answer
    assert headers["Content-Type"].startswith("application/json")
    assert answer == {"error": answer["error"], "field": field}
    assert words in answer["error"] and "\n" not in answer["error"], answer
    if status == 405:
        assert headers["Allow"] == ("POST" if path == "/translate" else "GET, HEAD")
    if path == "/translate" and method == "POST":
        assert health(server.url)["refused"] == before + 1  # counted: nothing is refused silently
    status, _, answer = call(f"{server.url}/translate", {"sentences": ["still fine"]})
    assert status == 200 and len(answer["translations"]) == 1


def test_concurrent_clients_each_get_exactly_their_own_answers():
    fake = FakeTranslator()
    rng = random.Random(1)
    pool = [f"{w} {i}" for i, w in enumerate(["eins", "zwei", "drei", "ünf", "漢字", "", "  ", "a b c"] * 8)]
    options = [{}, {"beam_size": 3}, {"nbest": 2}, {"beam_size": 2, "nbest": 2, "length_penalty": 1.0}]
    plans = [
        [{"sentences": rng.sample(pool, rng.randint(0, 6)), **rng.choice(options)} for _ in range(12)]
        for _ in range(16)
    ]
    with ServerThread(fake, limits=ServeLimits(max_sentences=8, max_batch=32)) as server:
        answers = run_clients(server.url, plans, timeout=120)
        state = health(server.url)
    requests = [payload for plan in plans for payload in plan]
    for plan, got in zip(plans, answers):
        assert len(got) == len(plan)
        for payload, (status, answer) in zip(plan, got):
            settings = fake.settings(**{k: v for k, v in payload.items() if k != "sentences"})
            assert status == 200, answer
            assert answer == {"translations": [expected_answer(s, settings) for s in payload["sentences"]]}
    # every sentence translated exactly once, one settings value per call, several requests per call
    sent = sorted(s for payload in requests for s in payload["sentences"])
    assert sorted(s for sentences, _ in fake.calls for s in sentences) == sent
    assert all(len(sentences) <= 32 for sentences, _ in fake.calls)
    assert len(fake.calls) < sum(1 for payload in requests if payload["sentences"])
    assert state["answered"] == len(requests) and state["sentences"] == len(sent)
    assert state["batches"] == len(fake.calls) and state["queued"] == 0 and state["in_flight"] == 0


def test_sentences_of_concurrent_requests_share_one_call():
    """8 clients at once, 2 sentences each, max_batch 16: the batch fills, and goes without waiting its 5 s."""
    fake = FakeTranslator()
    limits = ServeLimits(max_batch=16, max_wait_ms=5000)
    plans = [[{"sentences": [f"c{c} first", f"c{c} second"]}] for c in range(8)]
    with ServerThread(fake, limits=limits) as server:
        started = time.monotonic()
        answers = run_clients(server.url, plans, timeout=60)
        elapsed = time.monotonic() - started
    assert [got[0][0] for got in answers] == [200] * 8
    assert len(fake.calls) == 1 and len(fake.calls[0][0]) == 16 and elapsed < 4.5
    for plan, ((_, answer),) in zip(plans, answers):
        assert answer["translations"] == [expected_answer(s, fake.settings()) for s in plan[0]["sentences"]]


def test_a_full_queue_answers_503_busy_and_loses_nothing_it_took():
    gate = threading.Event()
    fake = FakeTranslator(gate=gate)
    limits = ServeLimits(max_sentences=4, max_queue=4, max_batch=4, max_wait_ms=0)
    with ServerThread(fake, limits=limits) as server:
        taken: dict = {}
        first = threading.Thread(
            target=lambda: taken.update(a=call(f"{server.url}/translate", {"sentences": list("abcd")}))
        )
        first.start()
        wait_until(lambda: server.service.batcher.running == 4, what="the first call")
        second = threading.Thread(target=lambda: taken.update(b=call(f"{server.url}/translate", {"sentences": ["e"]})))
        second.start()
        wait_until(lambda: server.service.batcher.queued == 1, what="the second request queued")
        status, headers, answer = call(f"{server.url}/translate", {"sentences": list("fghi")})  # 1 + 4 > 4
        gate.set()
        first.join(60)
        second.join(60)
    assert status == 503 and headers["Retry-After"] == "1" and answer["field"] is None
    assert answer["error"].startswith("busy: 1 sentences are waiting") and "at most 4 (max_queue)" in answer["error"]
    assert taken["a"][0] == 200 and taken["a"][2]["translations"] == [
        expected_answer(s, fake.settings()) for s in "abcd"
    ]
    assert taken["b"][0] == 200 and taken["b"][2]["translations"] == [expected_answer("e", fake.settings())]


def test_a_failed_translation_is_a_500_json_error_and_the_server_goes_on():
    fake = FakeTranslator(fail_on="boom")
    with ServerThread(fake) as server:
        status, _, answer = call(f"{server.url}/translate", {"sentences": ["ok", "boom"]})
        assert status == 500 and answer["field"] is None
        assert answer["error"] == "translation failed (RuntimeError: cannot translate 'boom')"
        status, _, answer = call(f"{server.url}/translate", {"sentences": ["ok"]})
        assert status == 200 and answer["translations"] == [expected_answer("ok", fake.settings())]
        state = health(server.url)
    assert state["failed_batches"] == 1 and state["refused"] == 1 and state["answered"] == 1


def test_distinct_settings_are_bounded_and_listed():
    fake = FakeTranslator()
    with ServerThread(fake, limits=ServeLimits(max_settings=2)) as server:
        url = f"{server.url}/translate"
        assert call(url, {"sentences": ["a"], "length_penalty": 1.0})[0] == 200
        assert call(url, {"sentences": ["a"], "length_penalty": 1.0, "beam_size": 5})[0] == 200  # the same
        status, _, answer = call(url, {"sentences": ["a"], "length_penalty": 2.0})
        assert status == 400 and answer["field"] == "length_penalty"
        assert "already translates with 2 different search settings" in answer["error"]
        assert call(url, {"sentences": ["a"]})[0] == 200  # the defaults are always there
        listed = health(server.url)["settings"]
    assert listed == [
        {"beam_size": 5, "nbest": 1, "length_penalty": 0.6},
        {"beam_size": 5, "nbest": 1, "length_penalty": 1.0},
    ]


def test_a_stop_answers_the_requests_in_flight_and_takes_no_new_connection():
    gate = threading.Event()
    fake = FakeTranslator(gate=gate)
    limits = ServeLimits(max_batch=2, max_wait_ms=0)
    server = ServerThread(fake, limits=limits).start()
    plans = [[{"sentences": [f"r{r} a", f"r{r} b"]}] for r in range(5)]
    done: dict = {}
    clients = threading.Thread(target=lambda: done.update(answers=run_clients(server.url, plans, timeout=120)))
    clients.start()
    try:
        batcher = server.service.batcher
        wait_until(lambda: batcher.running == 2 and batcher.queued == 8, what="five requests in flight")
        server.stop_soon()
        wait_until(lambda: server.service.stopping, what="the stop")
        with pytest.raises(ConnectionRefusedError):  # the listening socket is closed first
            socket.create_connection((HOST, server.port), timeout=5).close()
        assert not done  # the five requests are still waiting for their translations
        gate.set()
        clients.join(120)
        server.join(120)
    finally:
        gate.set()
    answers = done["answers"]
    for plan, ((status, answer),) in zip(plans, answers):
        assert status == 200 and answer["translations"] == [
            expected_answer(s, fake.settings()) for s in plan[0]["sentences"]
        ]
    assert len(fake.calls) == 5


def test_while_stopping_new_requests_get_503(server):
    server.service.stopping = True
    try:
        status, _, answer = call(f"{server.url}/translate", {"sentences": ["a"]})
        assert status == 503 and "stopping" in answer["error"] and answer["field"] is None
        status, _, answer = call(f"{server.url}/health")
        assert status == 503 and answer["status"] == "stopping"
    finally:
        server.service.stopping = False
