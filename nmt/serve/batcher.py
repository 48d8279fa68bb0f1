"""Sentences of concurrent requests gathered into one call of the translation graph (asyncio; no TensorFlow).

    batcher = Batcher(translate, max_batch=128, max_wait=0.005, max_queue=4096)
    batcher.start()                                   # in the running event loop
    translations = await batcher.submit(sentences, settings)   # exactly sentences' translations, in order
    await batcher.close()                             # what was submitted is translated, then it stops

Each request is a job on a queue. One worker task takes the oldest job and gathers, in arrival order, the
other waiting jobs whose settings are EQUAL to its own (a graph call has one `SearchSettings`) until they
hold max_batch sentences or the oldest job has waited max_wait seconds (counted from its arrival: a
request that queued behind a running call does not wait again). A job is never split, and one larger
than max_batch goes alone. The call, ``translate(sentences, settings) -> [translation per sentence]``,
runs in one worker thread (TensorFlow releases the GIL, so the event loop keeps taking requests), and
each job's future gets exactly its slice of the result, in its order. The oldest job is always in the
next call, so no settings starve.

A failed call fails exactly the jobs in it (their futures get the exception); a job whose future was
cancelled (its request went away at shutdown) is dropped before it is translated. Beyond max_queue
sentences waiting, `submit` raises `Busy` at once, and after `close` it raises `Closed`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


class Busy(Exception):
    """More sentences are waiting than the queue takes (max_queue): retry later."""


class Closed(Exception):
    """The batcher is closed (the server is stopping)."""


@dataclass(eq=False)
class _Job:
    sentences: list
    settings: Hashable
    future: asyncio.Future
    arrival: float


@dataclass
class Stats:
    """What the batcher has done: graph calls, sentences translated, the largest call, failed calls."""

    batches: int = 0
    sentences: int = 0
    largest: int = 0
    failed: int = 0
    sizes: list = field(default_factory=list)  # sentences of each call, the last 1000

    def record(self, size: int) -> None:
        self.batches += 1
        self.sentences += size
        self.largest = max(self.largest, size)
        self.sizes = self.sizes[-999:] + [size]


class Batcher:
    """The cross-request micro-batcher of the module docstring.

    translate(sentences, settings) -> a sequence of one result per sentence, in order (called in a worker
    thread); max_batch: sentences per call (>= 1); max_wait: seconds the oldest job waits for company
    (>= 0); max_queue: sentences waiting before `submit` raises Busy (>= 1).
    """

    def __init__(
        self,
        translate: Callable[[list, Hashable], Sequence],
        *,
        max_batch: int,
        max_wait: float,
        max_queue: int,
    ):
        if max_batch < 1 or max_queue < 1 or max_wait < 0:
            raise ValueError(f"max_batch {max_batch}, max_queue {max_queue} >= 1 and max_wait {max_wait} >= 0")
        self._translate = translate
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait, max_queue
        self.stats = Stats()
        self.queued = 0  # sentences submitted and not yet in a call
        self.running = 0  # sentences in the call now running
        self._jobs: deque[_Job] = deque()
        self._waiting: dict = {}  # settings -> sentences queued with them
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._flushing = False  # stop waiting for company (shutting down)
        self._closed = False  # no new jobs
        self._failure: BaseException | None = None  # why the worker ended, if it ended by an error

    # ------------------------------------------------------------------------------------------ public

    def start(self) -> None:
        """Starts the worker task (in the running event loop) and its thread."""
        if self._worker is not None:
            raise RuntimeError("the batcher is already started")
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nmt-serve-translate")
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="nmt-serve-batcher")
        self._worker.add_done_callback(self._worker_ended)

    async def submit(self, sentences: Sequence[str], settings: Hashable) -> list:
        """The translations of sentences with settings, in order (one per sentence); raises Busy, Closed, or
        the exception of the call that translated them."""
        if self._worker is None:
            raise RuntimeError("the batcher is not started")
        if self._closed:
            raise Closed("the server is stopping") from self._failure
        sentences = list(sentences)
        if not sentences:
            return []
        if self.queued + len(sentences) > self.max_queue:
            raise Busy(
                f"{self.queued} sentences are waiting for translation and this request has {len(sentences)}; "
                f"the server queues at most {self.max_queue} (max_queue): retry later"
            )
        loop = asyncio.get_running_loop()
        job = _Job(sentences, settings, loop.create_future(), loop.time())
        self._jobs.append(job)
        self.queued += len(sentences)
        self._waiting[settings] = self._waiting.get(settings, 0) + len(sentences)
        self._arrived.set()
        return await job.future

    def flush(self) -> None:
        """From now on a batch waits for no company: the server is stopping and wants its queue done."""
        self._flushing = True
        if self._arrived is not None:
            self._arrived.set()

    async def close(self) -> None:
        """Takes no new jobs, translates those submitted (except cancelled ones), stops the worker and its
        thread."""
        self._closed = True
        self.flush()
        if self._worker is not None:
            await asyncio.wait([self._worker])
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # ----------------------------------------------------------------------------------------- worker

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                if self._closed:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            head = self._jobs[0]
            deadline = head.arrival + self.max_wait
            while self._waiting.get(head.settings, 0) < self.max_batch and not self._flushing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            batch = self._take(head.settings)
            if batch:
                await self._run(batch, head.settings)

    def _uncount(self, job: _Job) -> None:
        self.queued -= len(job.sentences)
        left = self._waiting[job.settings] - len(job.sentences)
        if left:
            self._waiting[job.settings] = left
        else:
            del self._waiting[job.settings]

    def _take(self, settings) -> list[_Job]:
        """The jobs of the next call, out of the queue: the oldest, then later ones with equal settings that
        fit in max_batch, in arrival order. Jobs whose future is done (cancelled) are dropped."""
        batch, kept, total = [], deque(), 0
        for job in self._jobs:
            if job.future.done():
                self._uncount(job)
            elif job.settings == settings and (not batch or total + len(job.sentences) <= self.max_batch):
                batch.append(job)
                total += len(job.sentences)
                self._uncount(job)
            else:
                kept.append(job)
        self._jobs = kept
        return batch

    async def _run(self, batch: list[_Job], settings) -> None:
        sentences = [s for job in batch for s in job.sentences]
        self.running = len(sentences)
        loop = asyncio.get_running_loop()
        try:
            results = list(await loop.run_in_executor(self._executor, self._translate, sentences, settings))
            if len(results) != len(sentences):
                raise RuntimeError(f"the translator returned {len(results)} results for {len(sentences)} sentences")
        except asyncio.CancelledError:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(Closed("the server stopped before this request was translated"))
            raise
        except Exception as error:  # the jobs of this call get it; the next call is another
            self.stats.failed += 1
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        finally:
            self.running = 0
        self.stats.record(len(sentences))
        offset = 0
        for job in batch:
            part = results[offset : offset + len(job.sentences)]
            offset += len(job.sentences)
            if not job.future.done():
                job.future.set_result(part)

    def _worker_ended(self, task: asyncio.Task) -> None:
        """The worker ended: by close, or by an error or a cancellation; then no job may wait for ever."""
        self._closed = True
        error = None if task.cancelled() else task.exception()
        self._failure = error
        reason = Closed("the translation worker stopped" + (f" ({type(error).__name__}: {error})" if error else ""))
        while self._jobs:
            job = self._jobs.popleft()
            self._uncount(job)
            if not job.future.done():
                job.future.set_exception(reason)
