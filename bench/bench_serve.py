#!/usr/bin/env python
"""Serving speed: sentences/s through `python -m nmt serve` for one client and for many concurrent clients,
beside translate.py on the same file, in one run.

    python bench/bench_serve.py --model RUN_DIR [--input FILE] [--sentences N] [--clients N] [--request-size N]

The server is started as a user starts it (`python -m nmt serve --model RUN_DIR --port 0`, on 127.0.0.1)
and the clients are aiohttp sessions in this process, each with its own connection, each sending its
requests of --request-size sentences one after another:
  1 client     the N sentences in requests one at a time: every request waits for its own translation
               (and up to the server's --max-wait-ms for company that never comes);
  C clients    the same requests shared round-robin by --clients concurrent clients: the server gathers
               the sentences of concurrent requests into one graph call (`nmt.serve.batcher`);
  translate.py translate.py's main() on a file of the same N sentences, in this process, with the model
               loaded and traced by a first pass (its sort by length sees the whole file at once).
Each figure is the best of --repeats timed passes after a warm-up request. The table gives sentences/s,
the milliseconds per request (median and 95th percentile), and the server's graph calls in the pass with
their mean size (GET /health counters); then the ratios. The clients share the machine's cores with the
server, as local clients would. Every answer is checked to hold one translation per sentence.
Input: --input FILE (default: data/numbers/test.en, the built-in corpus, written if missing), its first N
lines, repeated when the file is shorter.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nmt.errors import ArgumentParser, UserError  # noqa: E402

DEFAULT_INPUT = ROOT / "data" / "numbers" / "test.en"
REQUEST_TIMEOUT = 300  # seconds for any one request; every loop below is bounded by its count


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="a run directory written by train.py")
    p.add_argument("--input", metavar="FILE", help=f"sentences, one per line (default {DEFAULT_INPUT})")
    p.add_argument("--sentences", type=int, default=2000, metavar="N", help="sentences per pass (default 2000)")
    p.add_argument("--clients", type=int, default=32, metavar="C", help="concurrent clients (default 32)")
    p.add_argument("--request-size", type=int, default=8, metavar="R", help="sentences per request (default 8)")
    p.add_argument("--repeats", type=int, default=2, metavar="N", help="timed passes; the best is shown (default 2)")
    p.add_argument("--max-wait-ms", type=float, metavar="MS", help="the server's --max-wait-ms (default: its own)")
    p.add_argument("--max-batch", type=int, metavar="N", help="the server's --max-batch (default: its own)")
    return p.parse_args(argv)


def check(args) -> list[str]:
    """The options, checked before anything starts -> the N sentences of a pass."""
    from nmt.rundir import check_run_dir
    from nmt.text import textfile

    for name in ("sentences", "clients", "request_size", "repeats", "max_batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')}: received {value}, expected a positive integer")
    if args.max_wait_ms is not None and args.max_wait_ms < 0:
        raise UserError(f"--max-wait-ms: received {args.max_wait_ms}, expected a number >= 0")
    check_run_dir(args.model, what="--model")
    if args.input is None:
        from nmt.text import toy_corpus

        toy_corpus.ensure_written(DEFAULT_INPUT.parent)
    path = args.input or DEFAULT_INPUT
    lines = list(textfile.read_lines(path, textfile.CRLF, what="--input"))
    if not lines:
        raise UserError(f"--input {path}: no lines; expected sentences, one per line")
    return [lines[i % len(lines)] for i in range(args.sentences)]


# ------------------------------------------------------------------------------------------------- server


class Server:
    """python -m nmt serve --port 0 on 127.0.0.1; its standard error read into lines by a thread."""

    def __init__(self, args):
        command = [sys.executable, "-m", "nmt", "serve", "--model", args.model, "--host", "127.0.0.1", "--port", "0"]
        command += ["--max-sentences", str(max(64, args.request_size))]
        command += ["--max-queue", str(max(4096, 2 * args.clients * args.request_size))]
        if args.max_wait_ms is not None:
            command += ["--max-wait-ms", str(args.max_wait_ms)]
        if args.max_batch is not None:
            command += ["--max-batch", str(args.max_batch)]
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def wait_ready(self, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            match = re.search(r" on (http://\S+) \(POST /translate", line)
            if match:
                return match.group(1)
        last = self.stderr[-1].strip() if self.stderr else f"no output in {timeout:.0f} s"
        raise UserError(f"the server did not start: {last.removeprefix('error: ')}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(30)


# ------------------------------------------------------------------------------------------------ clients


async def _health(session, url) -> dict:
    async with session.get(f"{url}/health") as response:
        return await response.json()


async def _client(url: str, requests: list[list[str]], latencies: list[float]) -> int:
    import aiohttp

    sent = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as session:
        for sentences in requests:
            started = time.perf_counter()
            async with session.post(f"{url}/translate", json={"sentences": sentences}) as response:
                answer = await response.json(content_type=None)
            latencies.append(time.perf_counter() - started)
            if response.status != 200 or len(answer.get("translations", ())) != len(sentences):
                raise RuntimeError(f"the server answered {response.status}: {json.dumps(answer)[:300]}")
            sent += len(sentences)
    return sent


async def _pass(url: str, requests: list[list[str]], clients: int) -> dict:
    """The requests shared round-robin by `clients` concurrent clients; -> seconds, latencies, calls, sentences."""
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        before = await _health(session, url)
    latencies: list[float] = []
    started = time.perf_counter()
    sent = await asyncio.wait_for(
        asyncio.gather(*(_client(url, requests[c::clients], latencies) for c in range(clients))),
        REQUEST_TIMEOUT * 2,
    )
    seconds = time.perf_counter() - started
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        after = await _health(session, url)
    return {
        "seconds": seconds,
        "sentences": sum(sent),
        "requests": len(requests),
        "latencies": sorted(latencies),
        "calls": after["batches"] - before["batches"],
        "translated": after["sentences"] - before["sentences"],
    }


def best_pass(url: str, requests: list[list[str]], clients: int, repeats: int) -> dict:
    return min((asyncio.run(_pass(url, requests, clients)) for _ in range(repeats)), key=lambda r: r["seconds"])


# -------------------------------------------------------------------------------------------- translate.py


def translate_py(args, sentences: list[str], work: Path) -> dict:
    """translate.py's main() on a file of the sentences, in this process, after a first pass that loads the
    model and traces the search; the best of --repeats timed passes."""
    from nmt.cli import translate as translate_cli

    source = work / "source.txt"
    source.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")

    def once() -> float:
        out, err = io.StringIO(), io.StringIO()
        started = time.perf_counter()
        status = translate_cli.main(["--model", args.model, "--input", str(source)], io.StringIO(), out, err)
        seconds = time.perf_counter() - started
        if status != 0 or out.getvalue().count("\n") != len(sentences):
            raise UserError(f"translate.py failed: {err.getvalue().strip()[-300:]}")
        return seconds

    once()  # loads the model (cached in the process) and traces the search
    return {"seconds": min(once() for _ in range(args.repeats)), "sentences": len(sentences)}


# ----------------------------------------------------------------------------------------------------- main


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def row(name: str, result: dict) -> str:
    speed = result["sentences"] / result["seconds"]
    cells = [name, f"{speed:,.1f}", f"{result['seconds']:.2f}"]
    if "latencies" in result:
        lat = result["latencies"]
        p50, p95 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        mean_call = result["translated"] / result["calls"] if result["calls"] else 0
        cells += [f"{result['requests']:,}", f"{1000 * p50:.1f} / {1000 * p95:.1f}", f"{result['calls']:,}"]
        cells += [f"{mean_call:.1f}"]
    else:
        cells += ["—"] * 4
    return "| " + " | ".join(cells) + " |"


def report(args, state: dict, script: dict, one: dict, many: dict) -> None:
    defaults, limits = state["defaults"], state["limits"]
    print(
        f"nmt serve: {args.model} (beam {defaults['beam_size']}, length penalty {defaults['length_penalty']}), "
        f"{args.sentences:,} sentences per pass in requests of {args.request_size}; server --max-batch "
        f"{limits['max_batch']}, --max-wait-ms {limits['max_wait_ms']:g}; best of {args.repeats} pass(es); "
        f"{cpu_name()}, {os.cpu_count()} cores\n"
    )
    print(
        "| contender | sentences/s | seconds | requests | ms per request (p50 / p95) | graph calls "
        "| sentences per call |"
    )
    print("|---|---|---|---|---|---|---|")
    print(row("translate.py --input FILE (in process, model loaded)", script))
    print(row("nmt serve, 1 client", one))
    print(row(f"nmt serve, {args.clients} concurrent clients", many))
    speed = {name: r["sentences"] / r["seconds"] for name, r in (("script", script), ("one", one), ("many", many))}
    print(
        f"\n{args.clients} clients / 1 client: {speed['many'] / speed['one']:.2f}x; "
        f"{args.clients} clients / translate.py: {speed['many'] / speed['script']:.2f}x; "
        f"1 client / translate.py: {speed['one'] / speed['script']:.2f}x"
    )


def main(argv=None) -> int:
    server = None
    try:
        args = parse_args(argv)
        sentences = check(args)
        server = Server(args)
        url = server.wait_ready()
        from nmt.cli.quiet import import_tensorflow

        import_tensorflow()
        with tempfile.TemporaryDirectory() as work:
            script = translate_py(args, sentences, Path(work))
        requests = [sentences[i : i + args.request_size] for i in range(0, len(sentences), args.request_size)]
        asyncio.run(_pass(url, requests[:1], 1))  # warm-up: the first request through the server
        one = best_pass(url, requests, 1, args.repeats)
        many = best_pass(url, requests, args.clients, args.repeats)
        state = asyncio.run(_state(url))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    finally:
        status = server.stop() if server is not None else 0
    for result in (one, many):
        if result["translated"] != result["sentences"]:
            print(f"error: the server translated {result['translated']} sentences for {result['sentences']}")
            return 1
    report(args, state, script, one, many)
    if status != 0:
        print(f"error: the server exited with status {status} on SIGTERM: {''.join(server.stderr)[-500:]}")
        return 1
    return 0


async def _state(url: str) -> dict:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        return await _health(session, url)


if __name__ == "__main__":
    sys.exit(main())
