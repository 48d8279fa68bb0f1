"""nmt.serve.request: a POST /translate body checked field by field (no TensorFlow, no HTTP here; the same
rules over HTTP are in test_serve_app.py). The search options go through the real `SearchSettings`, so a
bad value is reported with the bounds of its declaration in nmt.config.DecodeConfig."""

from __future__ import annotations

import json

import pytest

from nmt.config import DecodeConfig
from nmt.decode.settings import SearchSettings
from nmt.serve.limits import ServeLimits
from nmt.serve.request import RequestError, SettingsBudget, parse_translate, settings_dict

LIMITS = ServeLimits(max_sentences=4, max_beam_size=8)


def settings_of(beam_size=None, nbest=None, length_penalty=None):
    return SearchSettings.from_decode(DecodeConfig(), beam_size=beam_size, nbest=nbest, length_penalty=length_penalty)


def parse(body):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode("utf-8")
    return parse_translate(body, LIMITS, settings_of)


def test_a_plain_request_takes_the_defaults():
    request = parse({"sentences": ["a b", "", "  ", "ä ü 漢字"]})
    assert request.sentences == ["a b", "", "  ", "ä ü 漢字"]
    assert request.settings == settings_of() and request.given == ()
    assert settings_dict(request.settings) == {"beam_size": 5, "nbest": 1, "length_penalty": 0.6}


def test_search_options_given_and_null_ones_left_to_the_defaults():
    request = parse({"sentences": ["a"], "beam_size": 3, "nbest": 2, "length_penalty": 1})
    assert request.settings == settings_of(beam_size=3, nbest=2, length_penalty=1.0)
    assert request.given == ("beam_size", "nbest", "length_penalty")
    request = parse({"sentences": ["a"], "beam_size": None, "nbest": None, "length_penalty": 0})
    assert request.settings == settings_of(length_penalty=0.0) and request.given == ("length_penalty",)
    assert parse({"sentences": []}).sentences == []
    assert parse(b'\xef\xbb\xbf{"sentences": ["a"]}').sentences == ["a"]  # a UTF-8 byte order mark


BAD = [
    # (body, status, field, words of the message)
    (b"", 400, None, "request body: empty"),
    (b"   \n", 400, None, "request body: empty"),
    (b"{", 400, None, "request body: not valid JSON"),
    (b'{"sentences": ["a"]} x', 400, None, "not valid JSON"),
    (b'\xff{"sentences": []}', 400, None, "not UTF-8 (byte 0xff at offset 0)"),
    (b'{"sentences": ["\xc3("]}', 400, None, "not UTF-8"),
    (b'["a"]', 400, None, "received a JSON array, expected an object"),
    (b'"a"', 400, None, "received a JSON string"),
    (b"null", 400, None, "received a JSON null"),
    (b"[" * 100_000 + b"]" * 100_000, 400, None, "request body:"),
    (b'{"sentences": ["a"], "beam": 2}', 400, "beam", "beam: unknown field; expected sentences, beam_size, nbest"),
    (b'{"sentences": ["a"], "Sentences": ["b"]}', 400, "Sentences", "unknown field"),
    (b'{"sentences": ["a"], "sentences": ["b"]}', 400, "sentences", "sentences: given twice"),
    (b"{}", 400, "sentences", "sentences: missing; expected a list of strings"),
    (b'{"sentences": "a b"}', 400, "sentences", 'sentences: received "a b", expected a list of strings'),
    (b'{"sentences": null}', 400, "sentences", "sentences: received null"),
    (b'{"sentences": {"0": "a"}}', 400, "sentences", "expected a list of strings"),
    (b'{"sentences": ["a", 3]}', 400, "sentences[1]", "sentences[1]: received 3, expected a string"),
    (b'{"sentences": ["a", ["b"]]}', 400, "sentences[1]", "expected a string"),
    (b'{"sentences": ["a", null]}', 400, "sentences[1]", "received null"),
    (b'{"sentences": ["\\ud800 x"]}', 400, "sentences[0]", "sentences[0]: not valid Unicode (a lone surrogate"),
    (b'{"sentences": ["a", "b", "c", "d", "e"]}', 413, "sentences", "sentences: 5 sentences, more than the 4"),
    (b'{"sentences": ["a"], "beam_size": 0}', 400, "beam_size", "beam_size: received 0, expected a positive integer"),
    (b'{"sentences": ["a"], "beam_size": "5"}', 400, "beam_size", 'beam_size: received "5"'),
    (b'{"sentences": ["a"], "beam_size": 2.5}', 400, "beam_size", "received 2.5, expected a positive integer"),
    (b'{"sentences": ["a"], "beam_size": true}', 400, "beam_size", "received true"),
    (b'{"sentences": ["a"], "beam_size": 9}', 400, "beam_size", "beam_size: received 9, expected at most 8"),
    (b'{"sentences": ["a"], "nbest": 6}', 400, "nbest", "nbest: received 6, expected at most the beam size (5)"),
    (b'{"sentences": ["a"], "beam_size": 2, "nbest": 3}', 400, "nbest", "at most the beam size (2)"),
    (b'{"sentences": ["a"], "nbest": 0}', 400, "nbest", "nbest: received 0"),
    (b'{"sentences": ["a"], "length_penalty": -1}', 400, "length_penalty", "length_penalty: received -1, expected"),
    (b'{"sentences": ["a"], "length_penalty": "x"}', 400, "length_penalty", 'received "x"'),
    (b'{"sentences": ["a"], "length_penalty": 1e400}', 400, "length_penalty", "length_penalty: received Infinity"),
    (b'{"sentences": ["a"], "length_penalty": NaN}', 400, None, "NaN is not JSON"),
    (b'{"sentences": ["a"], "beam_size": -Infinity}', 400, None, "-Infinity is not JSON"),
    (b'{"sentences": ["a"], "beam_size": 1' + b"0" * 5000 + b"}", 400, None, "not valid JSON"),
]


@pytest.mark.parametrize("body, status, field, words", BAD, ids=[str(i) for i in range(len(BAD))])
def test_each_mistake_is_one_line_naming_its_field(body, status, field, words):
    with pytest.raises(RequestError) as caught:
        parse(body)
    error = caught.value
    assert (error.status, error.field) == (status, field), error.message
    assert words in error.message and "\n" not in error.message, error.message
    assert error.payload() == {"error": error.message, "field": field}
    json.dumps(error.payload())  # an answer can always be written


def test_the_first_mistake_is_reported_and_long_values_are_cut():
    error = pytest.raises(RequestError, parse, {"sentences": ["a", 1, 2]}).value
    assert error.field == "sentences[1]"
    error = pytest.raises(RequestError, parse, {"sentences": "x" * 10_000}).value
    assert len(error.message) < 200 and error.message.count("x") < 80
    error = pytest.raises(RequestError, parse, {"sentences": [], "k" * 1000: 1}).value
    assert len(error.message) < 200 and error.field.startswith('"kkk') and error.field.endswith("...")


def test_the_settings_budget_holds_the_defaults_and_at_most_limit_settings():
    budget = SettingsBudget(2)
    defaults = settings_of()
    budget.admit(defaults)
    budget.admit(settings_of(beam_size=3), ("beam_size",))
    budget.admit(settings_of(beam_size=3), ("beam_size",))  # seen: always taken
    budget.admit(defaults)
    assert budget.admitted == [defaults, settings_of(beam_size=3)]
    error = pytest.raises(RequestError, budget.admit, settings_of(length_penalty=1.5), ("length_penalty",)).value
    assert error.status == 400 and error.field == "length_penalty"
    assert "already translates with 2 different search settings" in error.message and "GET /health" in error.message
    error = pytest.raises(RequestError, budget.admit, settings_of(beam_size=2, nbest=2), ("nbest", "beam_size")).value
    assert error.field == "beam_size"


def test_limits_are_checked_once_with_their_bounds():
    from nmt.config.fields import FieldError

    assert ServeLimits().max_sentences >= 64  # the issue: at least 64 sentences per request by default
    for values, key in (
        ({"max_sentences": 0}, "serve.max_sentences"),
        ({"max_batch": 0}, "serve.max_batch"),
        ({"max_wait_ms": -1}, "serve.max_wait_ms"),
        ({"max_wait_ms": 60_001}, "serve.max_wait_ms"),
        ({"max_queue": 10}, "serve.max_queue"),  # fewer than max_sentences (64)
        ({"shutdown_timeout": 0}, "serve.shutdown_timeout"),
        ({"max_settings": 1.5}, "serve.max_settings"),
    ):
        with pytest.raises(FieldError) as caught:
            ServeLimits(**values)
        assert caught.value.key == key, caught.value
    assert "at least max_sentences (64)" in str(pytest.raises(FieldError, ServeLimits, max_queue=10).value)
