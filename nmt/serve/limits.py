"""The bounds of a translation server, declared once and checked once, without TensorFlow.

`ServeLimits` is a `nmt.config.fields.Section`: each bound has its default, its allowed values and its
comment in one declaration, and a bad value is one line (``serve.max_batch: received 0, expected a
positive integer``) that the command line renames to its option (``--max-batch: ...``).
"""

from __future__ import annotations

from dataclasses import dataclass

from nmt.config.fields import Section, setting


@dataclass(frozen=True)
class ServeLimits(Section):
    """How much a server takes in and how it gathers work (`nmt.serve.app`, `nmt.serve.batcher`)."""

    NAME = "serve"
    max_sentences: int = setting(64, "sentences one request may hold (more: 413, naming sentences)", min=1)
    max_request_bytes: int = setting(1 << 20, "bytes of one request body (more: 413)", min=1)
    max_batch: int = setting(
        128, "sentences per call of the translation graph, gathered from the requests with equal settings", min=1
    )
    max_wait_ms: float = setting(
        5.0,
        "milliseconds the oldest waiting request waits for others to fill its batch (0: never waits)",
        min=0,
        max=60_000,
    )
    max_queue: int = setting(
        4096, "sentences accepted and not yet translated; a request that would pass it gets 503 (busy)", min=1
    )
    max_beam_size: int = setting(16, "the largest beam size a request may ask for", min=1)
    max_settings: int = setting(
        8,
        "distinct search settings (beam size, n-best, length penalty) requests may use; each is a traced "
        "graph held in memory, the run's defaults included",
        min=1,
    )
    shutdown_timeout: float = setting(
        60.0, "seconds SIGTERM or Ctrl-C waits for the requests in flight before it cancels them", above=0
    )

    def check(self) -> None:
        if self.max_queue < self.max_sentences:
            self.fail("max_queue", f"at least max_sentences ({self.max_sentences}), so that any request fits")
