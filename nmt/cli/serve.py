#!/usr/bin/env python
"""Serve a trained run over HTTP: a JSON API that translates sentences, on 127.0.0.1 by default.

    python -m nmt serve --model runs/multi30k                        # http://127.0.0.1:8080
    python -m nmt serve --model runs/multi30k --port 0               # any free port (the ready line says which)
    curl -s -d '{"sentences": ["A man is sleeping."]}' http://127.0.0.1:8080/translate
    #   {"translations": ["Ein Mann schläft."]}
    curl -s -d '{"sentences": ["Two dogs play."], "beam_size": 5, "nbest": 2}' http://127.0.0.1:8080/translate
    #   {"translations": [[{"text": "...", "score": -0.41}, {"text": "...", "score": -1.9}]]}
    curl -s http://127.0.0.1:8080/health

POST /translate takes {"sentences": [...]} and optional "beam_size", "nbest" and "length_penalty" (default:
the run's decode: section, as translate.py) and answers {"translations": [...]} in request order: strings,
or with n-best > 1 lists of {"text", "score"}. The sentences of concurrent requests with equal settings are
translated together (one graph call of at most --max-batch sentences, formed within --max-wait-ms). A bad
request gets a 4xx JSON error {"error", "field"} naming the field; GET /health says the server's state.
SIGTERM or Ctrl-C stops taking connections, answers the requests in flight, then exits 0.
The options and the run directory are checked, and the port opened, before TensorFlow loads: a mistake
(a missing run, a bad option, a port in use) is one line ``error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from nmt.errors import ArgumentParser, UserError
from nmt.serve.limits import ServeLimits

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

#: The options that set a limit or a batching setting, by the setting's name (`nmt.config.fields.FieldError`).
OPTION_NAMES = {
    "max_sentences": "--max-sentences",
    "max_request_bytes": "--max-request-bytes",
    "max_batch": "--max-batch",
    "max_wait_ms": "--max-wait-ms",
    "max_queue": "--max-queue",
    "max_beam_size": "--max-beam-size",
    "max_settings": "--max-settings",
    "shutdown_timeout": "--shutdown-timeout",
    "batch_size": "--batch-size",
    "batch_tokens": "--batch-tokens",
}


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model",
        required=True,
        action="append",
        metavar="RUN_DIR",
        help="a run directory written by train.py; repeat it to serve an ensemble of runs with one vocabulary",
    )
    p.add_argument(
        "--checkpoint",
        metavar="WHICH",
        help="serve a checkpoint's weights: best, last, average or a step number (default: model.keras)",
    )
    p.add_argument(
        "--host", default=DEFAULT_HOST, help=f"the address to listen on (default {DEFAULT_HOST}: this machine only)"
    )
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the port (default {DEFAULT_PORT}; 0: any free port)"
    )
    limits = ServeLimits()

    def limit(option: str, name: str, kind, metavar: str, text: str) -> None:
        default = getattr(limits, name)
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        p.add_argument(option, type=kind, metavar=metavar, help=f"{text} (default {shown})")

    limit("--max-sentences", "max_sentences", int, "N", "sentences one request may hold")
    limit("--max-request-bytes", "max_request_bytes", int, "N", "bytes of one request body")
    limit("--max-batch", "max_batch", int, "N", "sentences per translation call, gathered across requests")
    limit("--max-wait-ms", "max_wait_ms", float, "MS", "how long a batch waits for more requests")
    limit("--max-queue", "max_queue", int, "N", "sentences waiting before new requests get 503 (busy)")
    limit("--max-beam-size", "max_beam_size", int, "K", "the largest beam size a request may ask for")
    limit("--max-settings", "max_settings", int, "N", "distinct search settings requests may use")
    limit("--shutdown-timeout", "shutdown_timeout", float, "S", "seconds a stop waits for the requests in flight")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="sentences per search batch inside a call (default: config decode.batch_size)",
    )
    group.add_argument("--batch-tokens", type=int, metavar="N", help="or: padded source tokens per search batch")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up and runtime messages")
    return p


@dataclass
class Plan:
    """What `check` accepted: the runs, their batching and the server's limits."""

    run_dirs: list[Path]
    batching: object  # nmt.decode.settings.Batching
    limits: ServeLimits


def check(args) -> Plan:
    """The options and the run directories, checked without TensorFlow."""
    from nmt import config as config_module
    from nmt.checkpoint import check_models
    from nmt.config.fields import FieldError
    from nmt.decode import tuning
    from nmt.decode.settings import Batching
    from nmt.rundir import CONFIG_FILE

    run_dirs, _ = check_models(args.model, args.checkpoint)
    decode = tuning.apply(run_dirs[0], config_module.load(run_dirs[0] / CONFIG_FILE).decode)
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(ServeLimits)}
    try:
        batching = Batching.from_decode(decode, batch_size=args.batch_size, batch_tokens=args.batch_tokens)
        limits = ServeLimits(**{name: value for name, value in given.items() if value is not None})
    except FieldError as error:
        raise error.renamed(OPTION_NAMES) from None
    if limits.max_beam_size < decode.beam_size:
        raise UserError(
            f"--max-beam-size: received {limits.max_beam_size}, expected at least the run's beam size "
            f"({decode.beam_size}, decode.beam_size in {run_dirs[0] / CONFIG_FILE})"
        )
    return Plan(run_dirs, batching, limits)


def main(argv=None, stderr: TextIO | None = None) -> int:
    stderr = sys.stderr if stderr is None else stderr

    def say(line: str) -> None:
        print(line, file=stderr, flush=True)

    sock = None
    try:
        args = build_parser().parse_args(argv)
        plan = check(args)
        from nmt.serve.server import listen

        sock = listen(args.host, args.port, host_name="--host", port_name="--port")
        from nmt.cli.quiet import import_tensorflow

        import_tensorflow(verbose=args.verbose)
        from nmt.cli.translate import get_translator

        translator = get_translator(plan.run_dirs[0], False, plan.run_dirs[1:], args.checkpoint)
        translator.translate(["warm-up"], translator.settings(), plan.batching)  # traced before the first request
        from nmt.serve.app import make_app
        from nmt.serve.server import run

        what = " + ".join(str(d) for d in plan.run_dirs) + (f" ({args.checkpoint})" if args.checkpoint else "")
        run(make_app(translator, plan.batching, plan.limits, name=what), sock, say=say, what=what)
        return 0
    except UserError as error:
        say(f"error: {error}")
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the server ran (while the model loaded)
        say("")
        return 130
    finally:
        if sock is not None:
            sock.close()


if __name__ == "__main__":
    sys.exit(main())
