"""A ``POST /translate`` body, checked field by field, without TensorFlow or aiohttp.

    {"sentences": ["A man is sleeping.", ...], "beam_size": 5, "nbest": 3, "length_penalty": 1.0}

``sentences`` is required (a list of strings, at most `ServeLimits.max_sentences`); the search options are
optional (null or absent: the run's default) and are checked by `nmt.decode.settings.SearchSettings`, the
one validation of every decoding option, through the translator's ``settings(...)``. Anything else is an
error that names its field: an unknown or repeated field, a wrong type, a value out of bounds, a body that
is not UTF-8 JSON. Nothing a client sent is ignored. Each error is a `RequestError`: an HTTP status (400,
or 413 for too much) and ``{"error": "<one line>", "field": "<the field>" or null}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nmt.config.fields import FieldError
from nmt.errors import UserError
from nmt.serve.limits import ServeLimits

SEARCH_FIELDS = ("beam_size", "nbest", "length_penalty")
FIELDS = ("sentences", *SEARCH_FIELDS)
EXAMPLE = '{"sentences": ["A man is sleeping."]}'


class RequestError(Exception):
    """A request the server refuses: status (4xx), a one-line message, and the field at fault (None: the
    request as a whole)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        self.status, self.message, self.field = status, " ".join(str(message).split("\n")), field
        super().__init__(self.message)

    def payload(self) -> dict:
        return {"error": self.message, "field": self.field}


@dataclass(frozen=True)
class TranslateRequest:
    """A checked request: its sentences, the search settings for them, and the search fields it named."""

    sentences: list[str]
    settings: Any  # a SearchSettings (what the translator's settings(...) returned)
    given: tuple[str, ...]


def shown(value: Any, limit: int = 60) -> str:
    """A received value as JSON text (cut to about limit characters), for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def field_name(key: str) -> str:
    """A key as an error names it: as it is when short and printable, else as (cut) JSON text."""
    return key if len(key) <= 60 and key.isprintable() else shown(key)


def json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string"}.get(type(value), "number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    values: dict = {}
    for key, value in pairs:
        if key in values:
            name = field_name(key)
            raise RequestError(400, f"{name}: given twice; expected each field once", name)
        values[key] = value
    return values


def _no_constant(name: str):
    raise RequestError(400, f"request body: {name} is not JSON; expected finite numbers")


def decode_json(body: bytes) -> Any:
    """The JSON value of a request body (UTF-8, a byte order mark allowed), or a RequestError."""
    if not body.strip():
        raise RequestError(400, f"request body: empty; expected a JSON object such as {EXAMPLE}")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RequestError(
            400,
            f"request body: not UTF-8 (byte 0x{body[error.start]:02x} at offset {error.start}); expected UTF-8 JSON",
        ) from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except RequestError:
        raise
    except RecursionError:
        raise RequestError(400, f"request body: nested too deeply; expected a JSON object such as {EXAMPLE}") from None
    except ValueError as error:  # json.JSONDecodeError, or an integer of too many digits
        raise RequestError(400, f"request body: not valid JSON ({error})") from None


def parse_translate(body: bytes, limits: ServeLimits, settings_of: Callable[..., Any]) -> TranslateRequest:
    """The request in body, checked: the sentences and settings_of(**the search fields given) (a translator's
    ``settings``: the run's defaults with the request's options, a `SearchSettings`). -> TranslateRequest;
    a RequestError naming the field at fault otherwise."""
    payload = decode_json(body)
    if not isinstance(payload, dict):
        raise RequestError(
            400, f"request body: received a JSON {json_kind(payload)}, expected an object such as {EXAMPLE}"
        )
    for key in payload:
        if key not in FIELDS:
            name = field_name(key)
            raise RequestError(400, f"{name}: unknown field; expected {', '.join(FIELDS)}", name)
    if "sentences" not in payload:
        raise RequestError(400, f"sentences: missing; expected a list of strings, e.g. {EXAMPLE}", "sentences")
    sentences = payload["sentences"]
    if not isinstance(sentences, list):
        raise RequestError(400, f"sentences: received {shown(sentences)}, expected a list of strings", "sentences")
    if len(sentences) > limits.max_sentences:
        raise RequestError(
            413,
            f"sentences: {len(sentences)} sentences, more than the {limits.max_sentences} one request may hold "
            "(the server's max_sentences); send them in several requests",
            "sentences",
        )
    for i, sentence in enumerate(sentences):
        field = f"sentences[{i}]"
        if not isinstance(sentence, str):
            raise RequestError(400, f"{field}: received {shown(sentence)}, expected a string", field)
        try:
            sentence.encode("utf-8")
        except UnicodeEncodeError as error:
            raise RequestError(
                400, f"{field}: not valid Unicode (a lone surrogate at character {error.start}); expected text", field
            ) from None
    given = {name: payload[name] for name in SEARCH_FIELDS if payload.get(name) is not None}
    try:
        settings = settings_of(**given)
    except FieldError as error:
        name = error.key.rpartition(".")[2]
        received = given.get(name, error.received)  # as the client wrote it (the check may have made -1 into -1.0)
        raise RequestError(400, f"{name}: received {shown(received)}, expected {error.expected}", name) from None
    except UserError as error:
        raise RequestError(400, str(error)) from None
    if settings.beam_size > limits.max_beam_size:
        raise RequestError(
            400,
            f"beam_size: received {settings.beam_size}, expected at most {limits.max_beam_size} "
            "(the server's max_beam_size)",
            "beam_size",
        )
    return TranslateRequest(sentences, settings, tuple(given))


class SettingsBudget:
    """The distinct search settings the server has taken requests for, at most `limit`: each one is a traced
    graph that stays in memory (`nmt.decode.graph.TranslationGraph.function`), so a client cannot make the
    server trace one per length penalty it can think of."""

    def __init__(self, limit: int):
        self.limit = limit
        self.admitted: list = []  # in the order first seen: the run's defaults first

    def admit(self, settings, given: tuple[str, ...] = ()) -> None:
        """Takes settings (once seen, always), or a RequestError naming a search field the request gave."""
        if settings in self.admitted:
            return
        if len(self.admitted) >= self.limit:
            field = next((name for name in ("length_penalty", "beam_size", "nbest") if name in given), None)
            raise RequestError(
                400,
                f"{field or 'search settings'}: this server already translates with {len(self.admitted)} different "
                "search settings, its limit (max_settings); use the settings of earlier requests or the defaults "
                "(GET /health lists them)",
                field,
            )
        self.admitted.append(settings)


def settings_dict(settings) -> dict:
    """The search fields of settings as JSON: {"beam_size", "nbest", "length_penalty"}."""
    return {name: getattr(settings, name) for name in SEARCH_FIELDS}
