"""A progress line on stderr for long work (reading or writing big files).

Nothing is shown for work that finishes within `delay` seconds, so small files stay quiet. On a
terminal the line is rewritten in place (carriage return); elsewhere (logs, CI) a full line is
written at most every `log_interval` seconds.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


class Progress:
    """`with Progress("reading train.en", total_bytes=size) as p: ... p.update(lines, bytes_done)`."""

    def __init__(
        self,
        label: str,
        total_bytes: int | None = None,
        stream: TextIO | None = None,
        delay: float = 1.0,
        interval: float = 0.5,
        log_interval: float = 10.0,
    ):
        self.label = label
        self.total_bytes = total_bytes
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else log_interval
        self.start = time.monotonic()
        self._last = self.start
        self._shown = False
        self.lines = 0
        self.bytes_done = 0

    def _text(self) -> str:
        elapsed = time.monotonic() - self.start
        text = f"{self.label}: {self.lines:,} lines"
        if self.total_bytes:
            pct = 100.0 * self.bytes_done / self.total_bytes
            text += f" ({_fmt_bytes(self.bytes_done)} of {_fmt_bytes(self.total_bytes)}, {pct:.0f}%)"
        return text + f", {elapsed:.0f} s"

    def update(self, lines: int, bytes_done: int | None = None) -> None:
        self.lines = lines
        if bytes_done is not None:
            self.bytes_done = bytes_done
        now = time.monotonic()
        if now - self.start < self.delay or now - self._last < self.interval:
            return
        self._last = now
        self._shown = True
        if self.tty:
            self.stream.write("\r" + self._text() + "\x1b[K")
        else:
            self.stream.write(self._text() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._shown:
            end = "\n"
            self.stream.write(("\r" if self.tty else "") + self._text() + ", done" + end)
            self.stream.flush()
            self._shown = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
