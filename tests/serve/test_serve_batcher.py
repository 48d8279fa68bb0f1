"""nmt.serve.batcher: concurrent jobs gathered into calls with equal settings, each job answered with exactly
its own results in its order; max_batch, max_wait and max_queue; failures, cancellation and close.

The translate function here is plain Python (no TensorFlow): it returns (sentence, settings) per sentence,
so the oracle of every answer is the job's own sentences paired with its own settings."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest

from nmt.serve.batcher import Batcher, Busy, Closed


class Recorder:
    """translate(sentences, settings) -> [(sentence, settings)]; records each call; optionally held by a gate
    or failing on a sentence."""

    def __init__(self, gate: threading.Event | None = None, fail_on=None, wrong_count=False):
        self.calls: list[tuple[list, object]] = []
        self.gate, self.fail_on, self.wrong_count = gate, fail_on, wrong_count
        self.threads = set()

    def __call__(self, sentences, settings):
        self.threads.add(threading.current_thread().name)
        self.calls.append((list(sentences), settings))
        if self.gate is not None:
            assert self.gate.wait(30)
        if self.fail_on in sentences:
            raise RuntimeError(f"cannot translate {self.fail_on}")
        out = [(s, settings) for s in sentences]
        return out[:-1] if self.wrong_count else out


def run(coroutine, timeout=60):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def test_concurrent_jobs_get_exactly_their_own_results_in_order():
    rng = random.Random(0)
    jobs = []
    for j in range(200):
        settings = rng.choice(["a", "b", "c"])
        jobs.append(([f"job{j}-s{i}" for i in range(rng.randint(1, 9))], settings))
    recorder = Recorder()

    async def main():
        batcher = Batcher(recorder, max_batch=16, max_wait=0.002, max_queue=10_000)
        batcher.start()

        async def one(sentences, settings):
            await asyncio.sleep(rng.random() * 0.05)  # arrivals spread over 50 ms
            return await batcher.submit(sentences, settings)

        answers = await asyncio.gather(*(one(s, k) for s, k in jobs))
        await batcher.close()
        return answers, batcher

    answers, batcher = run(main())
    for (sentences, settings), answer in zip(jobs, answers):
        assert answer == [(s, settings) for s in sentences]
    # every sentence translated exactly once, each call with one settings value and at most max_batch
    # sentences (a job is never split), several jobs per call
    translated = [s for sentences, _ in recorder.calls for s in sentences]
    assert sorted(translated) == sorted(s for sentences, _ in jobs for s in sentences)
    settings_of = {s: settings for sentences, settings in jobs for s in sentences}
    for sentences, settings in recorder.calls:
        assert len(sentences) <= 16
        assert all(settings_of[s] == settings for s in sentences)
    assert len(recorder.calls) < len(jobs)
    assert batcher.stats.batches == len(recorder.calls) and batcher.stats.sentences == len(translated)
    assert batcher.queued == 0 and batcher.running == 0
    assert recorder.threads and all(name.startswith("nmt-serve-translate") for name in recorder.threads)


def test_a_call_holds_only_equal_settings_and_keeps_arrival_order():
    recorder = Recorder()

    async def main():
        batcher = Batcher(recorder, max_batch=100, max_wait=5.0, max_queue=1000)
        batcher.start()
        tasks = [
            asyncio.ensure_future(batcher.submit(sentences, settings))
            for sentences, settings in (
                (["a1", "a2"], "A"),
                (["b1"], "B"),
                (["a3"], "A"),
                (["b2", "b3"], "B"),
                (["a4"], "A"),
            )
        ]
        await asyncio.sleep(0.05)  # all queued while the first job waits for company
        batcher.flush()  # stop waiting: the calls happen now
        answers = await asyncio.gather(*tasks)
        await batcher.close()
        return answers

    answers = run(main())
    assert recorder.calls == [(["a1", "a2", "a3", "a4"], "A"), (["b1", "b2", "b3"], "B")]
    assert answers[2] == [("a3", "A")] and answers[3] == [("b2", "B"), ("b3", "B")]


def test_a_full_batch_goes_at_once_and_a_lone_job_waits_at_most_max_wait():
    recorder = Recorder()

    async def main():
        loop = asyncio.get_running_loop()
        batcher = Batcher(recorder, max_batch=8, max_wait=30.0, max_queue=1000)
        batcher.start()
        start = loop.time()
        await asyncio.gather(*(batcher.submit([f"s{j}a", f"s{j}b"], "A") for j in range(4)))  # 4 x 2 = 8
        full = loop.time() - start
        await batcher.close()

        waiting = Batcher(recorder, max_batch=8, max_wait=0.2, max_queue=1000)
        waiting.start()
        start = loop.time()
        first = asyncio.ensure_future(waiting.submit(["x"], "A"))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(waiting.submit(["y"], "A"))  # joins the first job's call
        await asyncio.gather(first, second)
        lone = loop.time() - start
        await waiting.close()
        return full, lone

    full, lone = run(main())
    assert full < 10  # max_wait is 30 s: the full batch did not wait for it
    assert recorder.calls[0] == ([f"s{j}{c}" for j in range(4) for c in "ab"], "A")
    assert recorder.calls[1] == (["x", "y"], "A")  # the second job came 50 ms into the first one's 200 ms
    assert 0.19 <= lone < 10


def test_a_job_larger_than_max_batch_goes_alone_and_whole():
    recorder = Recorder()

    async def main():
        batcher = Batcher(recorder, max_batch=3, max_wait=0.0, max_queue=100)
        batcher.start()
        big, small = await asyncio.gather(batcher.submit(list("abcdefg"), "A"), batcher.submit(["z"], "A"))
        await batcher.close()
        return big, small

    big, small = run(main())
    assert big == [(c, "A") for c in "abcdefg"] and small == [("z", "A")]
    assert [len(sentences) for sentences, _ in recorder.calls] == [7, 1]


def test_max_queue_refuses_at_once_and_the_running_call_does_not_count():
    gate = threading.Event()
    recorder = Recorder(gate=gate)

    async def main():
        batcher = Batcher(recorder, max_batch=4, max_wait=0.0, max_queue=4)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(["a", "b", "c", "d"], "A"))
        while batcher.running == 0:  # the first call is running (held by the gate): the queue is empty
            await asyncio.sleep(0.005)
        second = asyncio.ensure_future(batcher.submit(["e", "f", "g"], "A"))
        await asyncio.sleep(0.01)
        assert batcher.queued == 3
        with pytest.raises(Busy, match="at most 4"):
            await batcher.submit(["h", "i"], "A")
        third = asyncio.ensure_future(batcher.submit(["h"], "A"))  # 3 + 1 fits
        gate.set()
        answers = await asyncio.gather(first, second, third)
        await batcher.close()
        return answers

    first, second, third = run(main())
    assert first == [(c, "A") for c in "abcd"] and second == [(c, "A") for c in "efg"] and third == [("h", "A")]


def test_a_failed_call_fails_its_jobs_only():
    recorder = Recorder(fail_on="bad")

    async def main():
        batcher = Batcher(recorder, max_batch=10, max_wait=0.5, max_queue=100)
        batcher.start()
        results = await asyncio.gather(
            batcher.submit(["ok1", "bad"], "A"),
            batcher.submit(["ok2"], "A"),  # in the failing call
            batcher.submit(["ok3"], "B"),  # another call
            return_exceptions=True,
        )
        after = await batcher.submit(["ok4"], "A")  # the worker goes on
        await batcher.close()
        return results, after, batcher.stats.failed

    (first, second, third), after, failed = run(main())
    assert isinstance(first, RuntimeError) and isinstance(second, RuntimeError)
    assert third == [("ok3", "B")] and after == [("ok4", "A")] and failed == 1


def test_a_wrong_number_of_results_is_an_error_not_a_shifted_answer():
    async def main():
        batcher = Batcher(Recorder(wrong_count=True), max_batch=10, max_wait=0.0, max_queue=100)
        batcher.start()
        with pytest.raises(RuntimeError, match="returned 1 results for 2 sentences"):
            await batcher.submit(["a", "b"], "A")
        await batcher.close()

    run(main())


def test_a_cancelled_job_is_not_translated():
    gate = threading.Event()
    recorder = Recorder(gate=gate)

    async def main():
        batcher = Batcher(recorder, max_batch=1, max_wait=0.0, max_queue=100)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(["first"], "A"))
        while batcher.running == 0:
            await asyncio.sleep(0.005)
        gone = asyncio.ensure_future(batcher.submit(["gone"], "A"))
        kept = asyncio.ensure_future(batcher.submit(["kept"], "A"))
        await asyncio.sleep(0.01)
        gone.cancel()
        gate.set()
        answers = await asyncio.gather(first, kept)
        await batcher.close()
        return answers

    first, kept = run(main())
    assert first == [("first", "A")] and kept == [("kept", "A")]
    assert [sentences for sentences, _ in recorder.calls] == [["first"], ["kept"]]


def test_close_translates_what_was_submitted_then_refuses():
    recorder = Recorder()

    async def main():
        batcher = Batcher(recorder, max_batch=100, max_wait=30.0, max_queue=100)  # would wait 30 s for company
        batcher.start()
        pending = asyncio.ensure_future(batcher.submit(["a", "b"], "A"))
        await asyncio.sleep(0.01)
        started = time.monotonic()
        await batcher.close()  # stops the waiting, translates, stops
        elapsed = time.monotonic() - started
        with pytest.raises(Closed):
            await batcher.submit(["c"], "A")
        return await pending, elapsed

    answer, elapsed = run(main())
    assert answer == [("a", "A"), ("b", "A")] and elapsed < 10


def test_empty_jobs_and_bad_arguments():
    async def main():
        batcher = Batcher(Recorder(), max_batch=2, max_wait=0.0, max_queue=2)
        with pytest.raises(RuntimeError, match="not started"):
            await batcher.submit(["a"], "A")
        batcher.start()
        assert await batcher.submit([], "A") == []
        await batcher.close()

    run(main())
    for kwargs in (dict(max_batch=0), dict(max_queue=0), dict(max_wait=-1)):
        arguments = dict(max_batch=1, max_wait=0.0, max_queue=1) | kwargs
        with pytest.raises(ValueError):
            Batcher(Recorder(), **arguments)
