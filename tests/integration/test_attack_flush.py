"""``force_flush`` with a timeout shorter than the server takes to answer, alone, beside
``shutdown`` and under load: a flush's deadline must cost no run and send none twice.

A request cut short when the caller's time is up may have been taken by the server all the same:
sent again, its runs would be billed twice (LangSmith bills each operation). And a flush that ran
out of time during shutdown is no sign the endpoint failed: shutdown must still send what it holds.
"""

from __future__ import annotations

import threading
import time

from helpers import Traced
from test_hostile_context import assert_accepted

from otel_langsmith.testing import Fault, LangSmithReceiver


def processor(receiver: LangSmithReceiver, **options) -> Traced:
    return Traced("processor", endpoint=receiver.url, api_key=receiver.api_key, **options)


def operations(receiver: LangSmithReceiver) -> dict[str, list[str]]:
    return {run["name"]: receiver.operations(run_id) for run_id, run in receiver.runs.items()}


def test_a_flush_shorter_than_the_server_sends_no_run_twice(langsmith_receiver):
    traced = processor(langsmith_receiver, flush_interval=3600)
    for index in range(3):
        with traced.tracer.start_as_current_span(f"s{index}"):
            pass
    langsmith_receiver.plan(Fault(status=None, delay=0.5))  # slow, but it takes the runs
    started = time.monotonic()
    assert traced.sink.force_flush(100) is False
    assert time.monotonic() - started < 0.4  # the caller's time is kept
    time.sleep(0.7)  # the server has taken the request by now
    assert traced.sink.force_flush(5_000)
    traced.shutdown()
    assert operations(langsmith_receiver) == {"s0": ["post"], "s1": ["post"], "s2": ["post"]}
    assert langsmith_receiver.duplicate_posts == 0
    assert_accepted(langsmith_receiver)


def test_a_flush_that_runs_out_of_time_during_shutdown_costs_no_run():
    with LangSmithReceiver(size_limit=2) as receiver:  # five runs: three requests
        traced = processor(receiver, flush_interval=3600)
        for index in range(5):
            with traced.tracer.start_as_current_span(f"s{index}"):
                pass
        receiver.plan(Fault(status=None, delay=0.4))
        flushed: list[bool] = []
        flushing = threading.Thread(target=lambda: flushed.append(traced.sink.force_flush(200)))
        flushing.start()
        time.sleep(0.05)
        traced.shutdown()  # its timeout (30 s) is not what cut the flush short
        flushing.join()
        assert flushed == [False]
        assert operations(receiver) == {f"s{index}": ["post"] for index in range(5)}
        assert traced.sink.stats().dropped == {}
        assert traced.sink.stats().queued_runs == 0


def test_short_flushes_under_load_send_each_operation_once(langsmith_receiver):
    # Serverless style: a flush with a short timeout after each request, while others trace.
    traced = processor(langsmith_receiver, flush_interval=0.01, live_after=0.001)
    langsmith_receiver.plan(*[Fault(status=None, delay=0.05)] * 20)
    stop = threading.Event()

    def trace(worker: int) -> None:
        count = 0
        while not stop.is_set():
            with traced.tracer.start_as_current_span(f"w{worker}-{count}"):
                time.sleep(0.002)
            count += 1

    def flush() -> None:
        while not stop.is_set():
            traced.sink.force_flush(20)

    threads = [threading.Thread(target=trace, args=(worker,)) for worker in range(3)]
    threads += [threading.Thread(target=flush) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    traced.shutdown()
    seen = operations(langsmith_receiver)
    assert len(seen) > 50
    # A run is posted once, and patched at most once after it (when it was posted in progress).
    assert all(ops in (["post"], ["post", "patch"]) for ops in seen.values()), {
        name: ops for name, ops in seen.items() if ops not in (["post"], ["post", "patch"])
    }
    assert langsmith_receiver.duplicate_posts == 0
    assert_accepted(langsmith_receiver)


def slow_hook(outputs: dict) -> dict:
    time.sleep(0.05)  # a redaction hook that calls out, say
    return outputs


def test_flush_and_shutdown_keep_their_timeout_while_a_slow_hook_converts(langsmith_receiver):
    traced = processor(langsmith_receiver, flush_interval=0.01, process_outputs=slow_hook, shutdown_grace=0.1)
    for index in range(60):  # three seconds of hooks for the worker
        with traced.tracer.start_as_current_span(f"s{index}") as span:
            span.set_attribute("output.value", "x")
    time.sleep(0.05)  # the worker has taken them
    started = time.monotonic()
    assert traced.sink.force_flush(200) is False
    assert time.monotonic() - started < 0.6
    started = time.monotonic()
    traced.sink.shutdown(100)
    assert time.monotonic() - started < 0.6
    stats = traced.sink.stats()
    # What was not sent is said, not silently left behind.
    assert stats.runs_exported + stats.dropped.get("shutdown", 0) >= 60, stats
    traced.provider.shutdown()
