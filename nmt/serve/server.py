"""Running the application of `nmt.serve.app`: the listening socket, and the run until SIGTERM or Ctrl-C.

`listen` binds and listens before anything slow happens (the command line calls it before TensorFlow
loads), so a port in use, a port the user may not open or a host that is not this machine's is a one-line
`UserError` at once; with port 0 the system picks a free port (the ready line says which). Connections
made while the model loads wait in the socket's backlog and are answered once it is served.

`serve` runs an application on that socket until an asyncio event is set, then shuts it down in
aiohttp's order (`nmt.serve.app`): no new connections, the requests in flight answered (up to the
shutdown timeout), then the cleanup. `run` is the process's loop: the first SIGTERM or SIGINT (Ctrl-C)
sets the event; a second one ends the process at once, saying how many requests it leaves unanswered.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import sys
from collections.abc import Callable

from aiohttp import web

from nmt.errors import UserError
from nmt.serve.app import SERVICE


def listen(host: str, port: int, *, host_name: str = "host", port_name: str = "port", backlog: int = 128):
    """A TCP socket bound to (host, port) and listening; errors name host_name / port_name (a command
    line's options) in one line."""
    if not isinstance(host, str) or not host.strip():
        raise UserError(f"{host_name}: received {host!r}, expected an address of this machine such as 127.0.0.1")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UserError(f"{port_name}: received {port!r}, expected a port number in [0, 65535] (0: any free port)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UserError(
            f"{host_name} {host}: cannot resolve it ({reason}); expected an address of this machine such as 127.0.0.1"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart right after a stop may bind
        sock.bind(address)
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        where = f"{host}:{port}" if family != socket.AF_INET6 else f"[{host}]:{port}"
        if error.errno == errno.EADDRINUSE:
            raise UserError(
                f"{port_name} {port}: {where} is already in use (another server?); choose another port, "
                "or 0 for any free one"
            ) from None
        if error.errno == errno.EACCES:
            raise UserError(
                f"{port_name} {port}: no permission to listen on {where} (ports below 1024 need privileges); "
                "choose a port from 1024 up"
            ) from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise UserError(
                f"{host_name} {host}: not an address of this machine ({error.strerror}); expected e.g. 127.0.0.1"
            ) from None
        raise UserError(f"{host_name} {host}, {port_name} {port}: cannot listen ({error.strerror or error})") from None
    return sock


async def serve(
    app: web.Application,
    sock: socket.socket,
    *,
    stop: asyncio.Event,
    shutdown_timeout: float | None = None,
    on_ready: Callable[[str], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serves app on the listening sock until stop is set, then shuts down gracefully (the requests in
    flight answered, for at most shutdown_timeout seconds: default the app's ServeLimits.shutdown_timeout).
    on_ready(url) once requests are taken; on_stop() when stop was set, before the shutdown."""
    if shutdown_timeout is None:
        shutdown_timeout = app[SERVICE].limits.shutdown_timeout
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        site = web.SockSite(runner, sock)
        await site.start()
        if on_ready is not None:
            on_ready(site.name)
        await stop.wait()
        if on_stop is not None:
            on_stop()
    finally:
        await runner.cleanup()


def run(app: web.Application, sock: socket.socket, *, say: Callable[[str], None], what: str = "") -> None:
    """Serves app on sock in this process until SIGTERM or SIGINT (Ctrl-C); the requests in flight are
    answered before it returns. say(line) reports (standard error for the command line): the ready line
    with the address, the stop, and what was served. A second signal exits the process at once."""
    service = app[SERVICE]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        received: list[str] = []

        def on_signal(signum: int) -> None:
            name = signal.Signals(signum).name
            if received:
                say(f"error: {name} again: exiting now; {service.in_flight} request(s) in flight not answered")
                sys.stderr.flush()
                os._exit(128 + signum)
            received.append(name)
            stop.set()

        handled = (signal.SIGINT, signal.SIGTERM)
        for signum in handled:
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            await serve(
                app,
                sock,
                stop=stop,
                on_ready=lambda url: say(
                    f"serving {what or 'the model'} on {url} (POST /translate, GET /health); Ctrl-C or SIGTERM stops it"
                ),
                on_stop=lambda: say(
                    f"{received[0] if received else 'stop'}: stopping; answering the {service.in_flight} "
                    "request(s) in flight first (a second Ctrl-C exits at once)"
                ),
            )
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)
        batcher = service.batcher
        say(
            f"stopped: {service.answered} request(s) answered, {service.refused} refused; "
            f"{batcher.stats.sentences} sentence(s) translated in {batcher.stats.batches} batch(es)"
        )

    asyncio.run(main())
