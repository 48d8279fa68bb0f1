"""The server with the real translator of a trained run (tests/helpers.py: the session's translator run), over
real HTTP on 127.0.0.1, against independent oracles:

- translate.py's own output for the same lines (its main() run in this process): a request translated in a
  call of its own answers exactly what translate.py writes, strings and n-best lists with their scores;
- the per-sentence search of tests/helpers.py (search_one: one sentence, no batching, Python SentencePiece)
  for a load test of 32 concurrent clients and a few thousand sentences, every request's answers checked
  against its own sentences, so nothing lost, duplicated or given to another request passes.
"""

from __future__ import annotations

import io
import math
import os
import random

import pytest

from nmt.cli import translate as translate_cli
from nmt.serve.limits import ServeLimits
from tests.helpers import assert_same_search, mixed_sentences, search_one
from tests.serve.serving import ServerThread, call, health, run_clients

CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def run(translator_run):
    return translator_run


@pytest.fixture(scope="module")
def translator(run):
    """The translator translate.py's main() uses in this process (loaded once: get_translator's cache)."""
    return translate_cli.get_translator(run["dir"], False)


@pytest.fixture(scope="module")
def server(run, translator):
    # a whole test file in one request and one call, as translate.py translates it (one chunk)
    limits = ServeLimits(max_sentences=256, max_batch=256, max_queue=8192)
    with ServerThread(translator, translator.batching(), limits, name=str(run["dir"])) as server:
        yield server


def translate_py(*argv) -> list[str]:
    out, err = io.StringIO(), io.StringIO()
    status = translate_cli.main([str(a) for a in argv], stdin=io.StringIO(""), stdout=out, stderr=err)
    assert status == 0, err.getvalue()
    return out.getvalue().splitlines()


@pytest.mark.parametrize(
    "options, flags",
    [
        ({}, []),
        ({"beam_size": 1}, ["--beam-size", "1"]),
        ({"beam_size": 2, "length_penalty": 1.0}, ["--beam-size", "2", "--length-penalty", "1.0"]),
    ],
    ids=["defaults", "greedy", "beam 2, length penalty 1"],
)
def test_answers_equal_translate_py_for_the_same_lines(run, server, tmp_path, options, flags):
    sentences = mixed_sentences(run, 100)  # mixed lengths, empty and blank lines among them
    source = tmp_path / "source.en"
    source.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    want = translate_py("--model", run["dir"], "--input", source, *flags)
    status, _, answer = call(f"{server.url}/translate", {"sentences": sentences, **options})
    assert status == 200, answer
    assert answer["translations"] == want
    assert len(want) == len(sentences) and sum(1 for line in want if line) >= 90


def test_nbest_answers_equal_translate_py_nbest_lines(run, server, tmp_path):
    sentences = mixed_sentences(run, 60)
    source = tmp_path / "source.en"
    source.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    want = translate_py("--model", run["dir"], "--input", source, "--beam-size", "3", "--nbest", "3")
    status, _, answer = call(f"{server.url}/translate", {"sentences": sentences, "beam_size": 3, "nbest": 3})
    assert status == 200, answer
    lines = []
    for index, hypotheses in enumerate(answer["translations"]):
        assert len(hypotheses) == 3 and all(set(h) == {"text", "score"} for h in hypotheses)
        scores = [-math.inf if h["score"] is None else h["score"] for h in hypotheses]
        assert scores == sorted(scores, reverse=True)
        lines += [f"{index} ||| {h['text']} ||| {score:.6f}" for h, score in zip(hypotheses, scores)]
    assert lines == want


def test_health_names_the_run_and_its_defaults(run, server, translator):
    state = health(server.url)
    defaults = translator.settings()
    assert state["status"] == "ok" and state["model"] == str(run["dir"])
    assert state["defaults"] == {
        "beam_size": defaults.beam_size,
        "nbest": defaults.nbest,
        "length_penalty": defaults.length_penalty,
    }


@pytest.mark.slow
def test_load_32_concurrent_clients_each_answered_with_its_own_sentences(run, server, translator):
    """32 clients at once, each sending requests of 1 to 12 sentences one after another (a few thousand
    sentences in all; fewer under CI=true), a third of them asking for 2-best lists: every request answered
    200 with one translation per sentence, each equal to that sentence's own search (a tie between the two
    best hypotheses may go either way), and the sentences of concurrent requests shared graph calls."""
    from nmt.text import toy_corpus

    pool = list(
        dict.fromkeys(
            [s for s, _ in run["test"]]
            + [s for s, _ in toy_corpus.generate(seed=23, sizes={"test": 150}, max_digits=3)["test"]]
        )
    )
    beam = translator.settings().beam_size
    oracle = {s: search_one(translator, s, beam, 2) for s in pool}  # (texts, scores) of the 2 best
    rng = random.Random(7)
    per_client = 30 if CI else 80
    plans = []
    for client in range(32):
        plan, count = [], 0
        while count < per_client:
            sentences = rng.choices(pool, k=rng.randint(1, 12))
            plan.append({"sentences": sentences, **({"nbest": 2} if client % 3 == 0 else {})})
            count += len(sentences)
        plans.append(plan)
    before = health(server.url)
    answers = run_clients(server.url, plans, timeout=600)
    after = health(server.url)

    requests = sentences = 0
    for plan, got in zip(plans, answers):
        assert len(got) == len(plan)
        for payload, (status, answer) in zip(plan, got):
            assert status == 200, answer
            translations = answer["translations"]
            assert len(translations) == len(payload["sentences"])
            for sentence, translation in zip(payload["sentences"], translations):
                texts, scores = oracle[sentence]
                if "nbest" in payload:
                    assert_same_search(
                        [h["text"] for h in translation], [h["score"] for h in translation], texts, scores
                    )
                else:
                    tie = abs(scores[0] - scores[1]) <= 1e-4
                    assert translation == texts[0] or (tie and translation == texts[1]), (sentence, translation, texts)
            requests += 1
            sentences += len(payload["sentences"])
    assert sentences >= (900 if CI else 2500)
    assert after["answered"] - before["answered"] == requests
    assert after["sentences"] - before["sentences"] == sentences  # each sentence translated once
    calls = after["batches"] - before["batches"]
    assert calls < requests, (calls, requests)  # concurrent requests shared calls
    assert after["queued"] == 0 and after["in_flight"] == 0 and after["failed_batches"] == 0
