"""Progress of long work on standard error (reading, copying, translating big files), drawn by tqdm.

tqdm rather than a hand-written line: it is the ecosystem's progress bar (rate, remaining time, a
bar when the size is known, terminal width), kept up by its maintainers, and small; Keras' Progbar is
tied to Keras' own training loop and logging switches, while this progress is about files and runs
outside fit. Training's progress stays Keras' own bar.

`Progress(label, total_bytes)` shows nothing for work that ends within `delay` seconds, and nothing at
all when standard error is not a terminal (logs, CI), unless NMT_PROGRESS=1 (or ``force=True``) asks
for it. ``update(lines, bytes_done)`` takes the totals so far.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from tqdm import tqdm


def wanted(stream: TextIO) -> bool:
    """Progress is drawn on a terminal, or anywhere when NMT_PROGRESS=1."""
    if os.environ.get("NMT_PROGRESS") == "1":
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """`with Progress("reading train.en", total_bytes=size) as p: ... p.update(lines, bytes_done)`."""

    def __init__(
        self,
        label: str,
        total_bytes: int | None = None,
        stream: TextIO | None = None,
        delay: float = 1.0,
        force: bool | None = None,
    ):
        self.stream = stream if stream is not None else sys.stderr
        show = wanted(self.stream) if force is None else force
        self.bar = tqdm(
            total=total_bytes or None,
            desc=label,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=self.stream,
            delay=delay,
            disable=not show,
            dynamic_ncols=True,
            leave=True,
        )
        self.lines = 0

    def update(self, lines: int, bytes_done: int | None = None) -> None:
        if self.bar.disable:
            return
        if lines != self.lines:
            self.lines = lines
            self.bar.set_postfix_str(f"{lines:,} lines", refresh=False)
        if bytes_done is not None and bytes_done > self.bar.n:
            self.bar.update(bytes_done - self.bar.n)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
