"""The HTTP JSON API of a translator (aiohttp): routes, errors as JSON naming the field, health, shutdown.

    POST /translate   {"sentences": [...], "beam_size"?, "nbest"?, "length_penalty"?}
                      -> 200 {"translations": [...]}: one per sentence, in request order; a string, or with
                         n-best > 1 a list of {"text", "score"} (best first; score log P / lp, null where no
                         hypothesis filled the slot); and, only when a sentence was longer than the run's
                         max_input_len tokens and translated from its first ones, "truncated":
                         [{"index", "tokens", "kept"}]
    GET  /health      -> 200 {"status": "ok", "model", "defaults", "settings", "limits", counters};
                         503 {"status": "stopping"} once shutdown began

Every other answer is an error ``{"error": "<one line>", "field": "<field>" or null}``: 400 for a request
that breaks a rule (`nmt.serve.request`), 413 for too much (body bytes, sentences), 404 / 405 for another
route or method, 503 when the queue is full (busy, with Retry-After) or the server is stopping, 500 when
the translation itself failed (also written to the server's standard error). The sentences of concurrent
requests are translated together by `nmt.serve.batcher.Batcher`.

Shutdown (`nmt.serve.server`): the listening socket closes, idle connections close, ``on_shutdown`` marks
the service as stopping and tells the batcher to stop waiting for company, aiohttp waits for the requests
in flight (up to the shutdown timeout), then ``cleanup`` closes the batcher once its queue is done.
"""

from __future__ import annotations

import json
import logging
import math
import time
from functools import partial

from aiohttp import web

from nmt.serve.batcher import Batcher, Busy, Closed
from nmt.serve.limits import ServeLimits
from nmt.serve.request import RequestError, SettingsBudget, parse_translate, settings_dict

log = logging.getLogger(__name__)

ROUTES = "POST /translate or GET /health"


class Service:
    """What the handlers share: the translator and its batching, the limits, the batcher and counters.

    translator: an object with ``settings(beam_size=, nbest=, length_penalty=)`` (the run's defaults with
    the options given, checked: `nmt.decode.translator.Translator.settings`) and ``translate(sentences,
    settings, batching)`` -> one result per sentence with ``.text`` and ``.hypotheses`` ([.text, .score]).
    """

    def __init__(self, translator, batching, limits: ServeLimits, name: str = ""):
        self.translator, self.batching, self.limits, self.name = translator, batching, limits, name
        self.defaults = translator.settings()
        self.budget = SettingsBudget(limits.max_settings)
        self.budget.admit(self.defaults)
        self.batcher: Batcher | None = None
        self.stopping = False
        self.in_flight = 0  # POST /translate requests being handled
        self.answered = 0  # translate requests answered 200
        self.refused = 0  # translate requests answered with an error
        self.started = time.monotonic()

    def translate(self, sentences: list, settings) -> list:
        """One call of the translation graph (in the batcher's thread)."""
        return self.translator.translate(sentences, settings, self.batching)


SERVICE = web.AppKey("nmt_serve_service", Service)


def error_response(status: int, message: str, field: str | None = None, headers: dict | None = None) -> web.Response:
    # ASCII escapes: a message may quote what a client sent, lone surrogates included
    return web.json_response({"error": message, "field": field}, status=status, headers=headers)


def present(translation, nbest: int):
    """One sentence's answer: its best text, or with nbest > 1 its hypotheses as {"text", "score"}."""
    if nbest == 1:
        return translation.text
    return [
        {"text": hyp.text, "score": float(hyp.score) if math.isfinite(hyp.score) else None}
        for hyp in translation.hypotheses
    ]


def truncated(translations) -> list[dict]:
    """The sentences translated from their first tokens only (longer than the run's max_input_len), as
    {"index", "tokens", "kept"}: said in the answer, as translate.py warns on standard error."""
    cut = []
    for index, translation in enumerate(translations):
        full = getattr(translation, "truncated_from", None)
        if full is not None:
            cut.append({"index": index, "tokens": int(full), "kept": len(translation.source_ids)})
    return cut


_dumps = partial(json.dumps, ensure_ascii=False, allow_nan=False)


async def translate(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    service.in_flight += 1
    try:
        response = await _translate(request, service)
    finally:
        service.in_flight -= 1
    if response.status == 200:
        service.answered += 1
    else:
        service.refused += 1
    return response


async def _translate(request: web.Request, service: Service) -> web.Response:
    if service.stopping:
        return error_response(503, "the server is stopping; send the request again to a running server")
    limit = service.limits.max_request_bytes
    too_large = f"request body: more than {limit} bytes, the most this server takes (max_request_bytes)"
    if request.content_length is not None and request.content_length > limit:
        return error_response(413, too_large)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, too_large)
    try:
        parsed = parse_translate(body, service.limits, service.translator.settings)
        service.budget.admit(parsed.settings, parsed.given)
    except RequestError as error:
        return error_response(error.status, error.message, error.field)
    try:
        translations = await service.batcher.submit(parsed.sentences, parsed.settings)
    except Busy as error:
        return error_response(503, f"busy: {error}", headers={"Retry-After": "1"})
    except Closed:
        return error_response(503, "the server is stopping; send the request again to a running server")
    except Exception as error:
        message = f"translation failed ({type(error).__name__}: {' '.join(str(error).split())[:300]})"
        log.warning(f"error: POST /translate: {message}")
        return error_response(500, message)
    nbest = parsed.settings.nbest
    payload = {"translations": [present(t, nbest) for t in translations]}
    cut = truncated(translations)
    if cut:
        payload["truncated"] = cut
    return web.json_response(payload, dumps=_dumps)


async def health(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if service.stopping:
        return web.json_response({"status": "stopping", "in_flight": service.in_flight}, status=503)
    batcher = service.batcher
    stats = batcher.stats
    return web.json_response(
        {
            "status": "ok",
            "model": service.name,
            "defaults": settings_dict(service.defaults),
            "settings": [settings_dict(s) for s in service.budget.admitted],
            "limits": service.limits.to_dict(),
            "in_flight": service.in_flight,
            "answered": service.answered,
            "refused": service.refused,
            "queued": batcher.queued,
            "running": batcher.running,
            "batches": stats.batches,
            "sentences": stats.sentences,
            "largest_batch": stats.largest,
            "failed_batches": stats.failed,
            "uptime_s": round(time.monotonic() - service.started, 3),
        },
        dumps=_dumps,
    )


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """aiohttp's own errors (no such route, wrong method, body too large) as JSON; an unexpected exception
    as a 500 JSON error and one line on standard error (not a traceback)."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        if isinstance(error, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(error.allowed_methods))
            return error_response(
                405,
                f"{request.method} {request.path}: method not allowed; expected {allowed}",
                None,
                {"Allow": allowed},
            )
        if error.status == 404:
            return error_response(404, f"{request.path}: no such route; expected {ROUTES}")
        return error_response(error.status, f"{request.method} {request.path}: {error.reason}")
    except Exception as error:
        message = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        log.warning(f"error: {request.method} {request.path}: internal error ({message})")
        return error_response(500, f"internal error ({message})")


async def _batcher(app: web.Application):
    """The batcher lives from the application's start to its cleanup (after the requests in flight)."""
    service = app[SERVICE]
    limits = service.limits
    service.batcher = Batcher(
        service.translate,
        max_batch=limits.max_batch,
        max_wait=limits.max_wait_ms / 1000,
        max_queue=limits.max_queue,
    )
    service.batcher.start()
    yield
    await service.batcher.close()


async def _stopping(app: web.Application) -> None:
    service = app[SERVICE]
    service.stopping = True
    if service.batcher is not None:
        service.batcher.flush()


def make_app(translator, batching, limits: ServeLimits | None = None, name: str = "") -> web.Application:
    """The application serving translator (see `Service`) with batching (`nmt.decode.settings.Batching`) and
    limits (default `ServeLimits()`); name: what /health calls the model (its run directory)."""
    limits = ServeLimits() if limits is None else limits
    app = web.Application(client_max_size=limits.max_request_bytes, middlewares=[json_errors])
    app[SERVICE] = Service(translator, batching, limits, name)
    app.router.add_post("/translate", translate)
    app.router.add_get("/health", health)
    app.cleanup_ctx.append(_batcher)
    app.on_shutdown.append(_stopping)
    return app
