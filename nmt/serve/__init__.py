"""Serving translations over HTTP (`python -m nmt serve`): a JSON API on aiohttp whose requests share the
translation graph through a cross-request micro-batcher.

    limits      the server's bounds (request size, batch size and wait, queue, beam sizes), checked once
    request     a POST /translate body: JSON checked field by field into sentences and `SearchSettings`
    batcher     sentences of concurrent requests with equal settings gathered into one translation call
    app         the aiohttp application: routes, JSON errors naming the field, health, shutdown order
    server      the listening socket (one-line errors for a port in use) and the run until SIGTERM or Ctrl-C

`limits`, `request` and `batcher` import neither TensorFlow nor aiohttp; `app` and `server` import aiohttp
but not TensorFlow: the translator is given to them (`nmt.decode.translator.load_run`).
"""
