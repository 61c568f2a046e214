"""The pipeline's lifecycle: fork, and the timeouts of the processor and the assembler, seen on a
clock the test moves (no test here waits for a timeout to pass)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from helpers import FakeClock, closed_port_url, front_with_clock, in_threads
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_langsmith import LangSmithPropagator, LangSmithSpanExporter, LangSmithSpanProcessor, _live, _pipeline
from otel_langsmith import _ids as ids
from otel_langsmith import _propagation as propagation
from otel_langsmith._convert import redact, values
from otel_langsmith._wire import encode_run

# Forking a threaded process is exactly the case under test (gunicorn --preload and the like).
fork_warning = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")

FLUSH = 0.5


@fork_warning
def test_a_processor_made_before_fork_serves_the_child_and_the_parent(langsmith_receiver):
    provider = TracerProvider()
    processor = LangSmithSpanProcessor(
        endpoint=langsmith_receiver.url, api_key=langsmith_receiver.api_key, flush_interval=FLUSH
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("fork")
    with tracer.start_as_current_span("before-fork"):
        pass
    assert processor.force_flush()
    pid = os.fork()
    if pid == 0:  # the child: trace, give it two flush intervals, leave without flushing or shutting down
        try:
            with tracer.start_as_current_span("in-child"):
                with tracer.start_as_current_span("child-step"):
                    pass
            time.sleep(2 * FLUSH + 0.2)
        finally:
            os._exit(0)
    with tracer.start_as_current_span("parent-after-fork"):
        pass
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    names = {run["name"] for run in langsmith_receiver.runs.values()}
    assert {"before-fork", "in-child", "child-step"} <= names  # the child's, sent by its own threads
    assert langsmith_receiver.wait_for_runs(4, timeout=2 * FLUSH + 1)  # and the parent's keep flowing
    assert "parent-after-fork" in {run["name"] for run in langsmith_receiver.runs.values()}
    assert langsmith_receiver.duplicate_posts == 0 and langsmith_receiver.problems() == []
    provider.shutdown()


@fork_warning
def test_an_exporter_made_before_fork_serves_the_child(langsmith_receiver):
    exporter = langsmith_receiver.exporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("fork")
    with tracer.start_as_current_span("parent-process"):
        pass
    provider.force_flush()
    assert exporter.force_flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            with tracer.start_as_current_span("child-process"):
                pass
            provider.force_flush()
            code = 0 if exporter.force_flush() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(r["name"] for r in langsmith_receiver.runs.values()) == ["child-process", "parent-process"]
    provider.shutdown()


def clocked_processor(receiver, clock, **options):
    """A processor on ``clock``, whose worker never wakes by itself: the test ticks instead."""
    processor = front_with_clock(
        LangSmithSpanProcessor, clock, endpoint=receiver.url, api_key=receiver.api_key, flush_interval=3600, **options
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider, processor


def test_a_long_span_is_posted_live_then_patched(langsmith_receiver):
    clock = FakeClock()
    provider, processor = clocked_processor(langsmith_receiver, clock, live_after=5)
    tracer = provider.get_tracer("live")
    with tracer.start_as_current_span("long-task", attributes={"input.value": "start"}) as span:
        run_id = ids.root_run_id(span.get_span_context().trace_id)
        clock.advance(4.9)
        processor._pipeline.tick()
        assert processor.force_flush() and run_id not in langsmith_receiver.runs  # not yet live
        clock.advance(0.2)
        processor._pipeline.tick()
        assert processor.force_flush()
        run = langsmith_receiver.runs[run_id]
        assert "end_time" not in run and run["inputs"] == {"input": "start"}  # in progress
        span.set_attribute("output.value", "finished")
    assert processor.force_flush()
    run = langsmith_receiver.runs[run_id]
    assert run["outputs"] == {"output": "finished"} and "end_time" in run
    assert langsmith_receiver.operations(run_id) == ["post", "patch"]
    assert langsmith_receiver.rejected == []
    provider.shutdown()


def test_a_span_open_past_its_ttl_is_forgotten_and_one_open_at_shutdown_is_posted(langsmith_receiver, caplog):
    clock = FakeClock()
    provider, processor = clocked_processor(langsmith_receiver, clock, live_after=60, open_span_ttl=120)
    tracer = provider.get_tracer("ttl")
    forgotten = tracer.start_span("never-ends")
    clock.advance(121)
    processor._pipeline.tick()
    assert processor.stats().evicted == 1 and "has been open for more than 120 s" in caplog.text
    still_open = tracer.start_span("open-at-shutdown")
    provider.shutdown()
    runs = {r["name"]: r for r in langsmith_receiver.runs.values()}
    assert "end_time" not in runs["open-at-shutdown"]  # in progress, not lost
    assert "never-ends" not in runs
    forgotten.end()
    still_open.end()


def test_a_span_whose_parent_never_ends_is_sent_at_the_wait_limit(langsmith_receiver, caplog):
    clock = FakeClock()
    exporter = front_with_clock(
        LangSmithSpanExporter,
        clock,
        endpoint=langsmith_receiver.url,
        api_key=langsmith_receiver.api_key,
        parent_wait=300,
    )
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("never-ends")
    parent = tracer.start_span("parent-that-never-ends")
    with tracer.start_as_current_span("child", context=trace.set_span_in_context(parent)):
        with tracer.start_as_current_span("grandchild"):
            pass
    provider.force_flush()
    clock.advance(299)
    exporter._pipeline.tick()
    assert exporter.force_flush() and exporter.stats().waiting == 2  # still within its wait
    clock.advance(2)
    exporter._pipeline.tick()
    assert exporter.force_flush() and exporter.stats().waiting == 0
    (root,) = langsmith_receiver.roots()
    assert root["name"] == "child"
    assert root["extra"]["metadata"]["OTEL_PARENT_SPAN_ID"] == ids.span_hex(parent.get_span_context().span_id)
    assert root["extra"]["metadata"]["OTEL_PARENT_MISSING"] == "timeout"
    assert [c["name"] for c in langsmith_receiver.children(root["id"])] == ["grandchild"]
    assert exporter.stats().released_as_root == {"timeout": 1}
    assert "not seen (timeout)" in caplog.text
    assert langsmith_receiver.rejected == []
    provider.shutdown()
    parent.end()


def test_spans_started_faster_than_the_worker_places_them_keep_their_tree(langsmith_receiver):
    # The worker never wakes by itself here: past the bound on starts waiting to be placed, the
    # application's thread places them, parents before children.
    provider, processor = clocked_processor(langsmith_receiver, FakeClock())
    tracer = provider.get_tracer("crowd")
    count = _live._MAX_STARTING + 500
    with tracer.start_as_current_span("root") as root:
        children = [tracer.start_span(f"child-{index}") for index in range(count)]
        assert len(processor._pipeline._runs.live._starting) < _live._MAX_STARTING
        with trace.use_span(children[-1]):
            with tracer.start_as_current_span("grandchild"):
                pass
        for child in children:
            child.end()
    assert processor.force_flush()
    runs = langsmith_receiver.runs
    assert len(runs) == count + 2 and langsmith_receiver.rejected == []
    root_id = ids.root_run_id(root.get_span_context().trace_id)
    by_name = {run["name"]: run for run in runs.values()}
    assert {run["parent_run_id"] for name, run in by_name.items() if name.startswith("child-")} == {root_id}
    grandchild, parent = by_name["grandchild"], by_name[f"child-{count - 1}"]
    assert grandchild["parent_run_id"] == parent["id"]
    assert grandchild["dotted_order"].startswith(parent["dotted_order"] + ".")
    provider.shutdown()


def test_spans_dropped_from_a_full_outbox_are_counted_and_leave_nothing_open(langsmith_receiver, monkeypatch, caplog):
    monkeypatch.setattr(_pipeline, "_OUTBOX_MAX", 50)
    monkeypatch.setattr(_pipeline, "_OUTBOX_WAKE", 10_000)  # the worker is never woken: the outbox fills
    clock = FakeClock()
    provider, processor = clocked_processor(langsmith_receiver, clock, open_span_ttl=60)
    tracer = provider.get_tracer("overflow")
    for index in range(120):
        with tracer.start_as_current_span(f"span-{index}"):
            pass
    stats = processor.stats()
    assert stats.dropped == {"outbox_full": 70} and stats.ended_unsent == 50
    assert processor.force_flush() is False  # runs were lost since the last flush
    assert sorted(run["name"] for run in langsmith_receiver.runs.values()) == sorted(
        f"span-{index}" for index in range(70, 120)
    )
    clock.advance(61)
    processor._pipeline.tick()
    # The dropped spans' starts were forgotten with them, not left open to be evicted later.
    assert processor.stats().open_spans == 0 and processor.stats().evicted == 0
    assert "has been open" not in caplog.text
    provider.shutdown()


def test_threads_starting_spans_while_the_worker_places_them_keep_every_tree(langsmith_receiver, monkeypatch):
    # The worst moment for placing off the application's thread: eight threads start, end and
    # propagate spans while the worker places and converts, with a wake-up mark low enough that
    # the threads also place for a lagging worker.
    monkeypatch.setattr(_pipeline, "_OUTBOX_WAKE", 64)
    provider = TracerProvider()
    processor = LangSmithSpanProcessor(
        endpoint=langsmith_receiver.url, api_key=langsmith_receiver.api_key, flush_interval=0.01
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("race")
    propagator = LangSmithPropagator()
    headers: list[dict[str, str]] = []

    def work(worker: int) -> None:
        for index in range(60):
            with tracer.start_as_current_span(f"root-{worker}-{index}"):
                with tracer.start_as_current_span("step"):
                    carrier: dict[str, str] = {}
                    propagator.inject(carrier)
                    headers.append(carrier)
                    with tracer.start_as_current_span("leaf"):
                        pass

    assert in_threads(work, 8) == []
    assert processor.force_flush()
    runs = langsmith_receiver.runs
    assert len(runs) == 8 * 60 * 3 and langsmith_receiver.rejected == []
    for run in runs.values():
        if run["name"].startswith("root-"):
            assert "parent_run_id" not in run
        else:
            parent = runs[run["parent_run_id"]]
            assert run["dotted_order"].startswith(parent["dotted_order"] + ".")
            assert run["trace_id"] == parent["trace_id"]
    # Every header named its span's run, placed in time for the propagator.
    steps = {run["id"]: run for run in runs.values() if run["name"] == "step"}
    assert len(headers) == 480 and all(
        header["langsmith-trace"].rsplit(".", 1)[-1][-36:] in steps for header in headers
    )
    provider.shutdown()


def _junk_set_aside(spool) -> None:
    junk = spool.directory / "00000000000000000001-1-junk.batch"
    junk.write_bytes(b"junk")
    spool.set_aside(junk, ValueError("junk"))


def _ignored_header(spool) -> None:
    LangSmithPropagator().extract(object())  # a carrier that cannot be read: one line said


# What a parent's thread may hold at the fork, and what the child then does that needs it.
BUSY_AT_FORK = {
    "spool write": (lambda spool: spool._writing, lambda spool: None),
    "spool log line": (lambda spool: spool._unreadable._lock, _junk_set_aside),
    "propagator log line": (lambda spool: propagation._ignored("carrier")._lock, _ignored_header),
    "data problem log line": (lambda spool: values._unlisted._lock, lambda spool: values._unlisted.report(0, "a")),
    "hook log line": (lambda spool: redact._failed._lock, lambda spool: redact._failed.report(1, "a")),
}


@fork_warning
@pytest.mark.parametrize("held", list(BUSY_AT_FORK))
def test_a_lock_held_in_a_parents_thread_at_the_fork_never_blocks_the_child(tmp_path, held):
    # A thread of the parent is inside a spool write, or saying a line about a bad file or header,
    # when the process forks: the child's copy of the lock it holds would never be released, and
    # the child would hang on its next write or line, unless the fork renews it.
    exporter = LangSmithSpanExporter(endpoint=closed_port_url(), api_key="lsv2_pt_fork", spool_dir=str(tmp_path))
    spool = exporter._pipeline._backlog._spool
    lock_of, needs_it = BUSY_AT_FORK[held]
    lock = lock_of(spool)
    holding, release = threading.Event(), threading.Event()

    def busy() -> None:
        with lock:
            holding.set()
            release.wait(30)

    worker = threading.Thread(target=busy)
    worker.start()
    assert holding.wait(5)
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.alarm(10)  # hung on the parent's lock: killed, and the test fails
                needs_it(spool)
                spool.write([encode_run({"id": "00000000-0000-0000-0000-00000000c41d", "trace_id": "t"})])
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        worker.join()
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(list(tmp_path.glob("*.batch"))) == 1
    exporter.shutdown()
