"""The exporter end to end: real SDK, BatchSpanProcessor, HTTP to the local receiver."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_langsmith import LangSmithSpanExporter
from otel_langsmith import _ids as ids
from otel_langsmith._convert import run_type
from otel_langsmith.testing import LangSmithReceiver


class ParentRecorder(SpanProcessor):
    """Remembers each ended span's OTel parent, to check the LangSmith tree against."""

    def __init__(self) -> None:
        self.parents: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def on_end(self, span) -> None:
        with self._lock:
            self.parents[f"{span.context.span_id:016x}"] = f"{span.parent.span_id:016x}" if span.parent else None


def make_provider(exporter, *, recorder=None, **bsp):
    provider = TracerProvider(resource=Resource.create({"service.name": "e2e"}))
    if recorder is not None:
        provider.add_span_processor(recorder)
    options = {"max_queue_size": 100_000, "schedule_delay_millis": 100, "max_export_batch_size": 512}
    options.update(bsp)
    provider.add_span_processor(BatchSpanProcessor(exporter, **options))
    return provider


def open_subtree(tracer, parent, depth, fanout, spans):
    """Start ``fanout`` children under ``parent``, recursively down to ``depth`` levels."""
    context = trace.set_span_in_context(parent)
    for index in range(fanout):
        child = tracer.start_span(f"level{depth}.{index}", context=context)
        spans.append(child)
        if depth < 3:
            open_subtree(tracer, child, depth + 1, fanout, spans)


def trace_on_threads(tracer, pool, rng):
    root = tracer.start_span("root")
    groups = [[] for _ in range(3)]
    context = trace.set_span_in_context(root)
    # Each first-level subtree is started on a worker thread of its own.
    futures = []
    for index, group in enumerate(groups):

        def start(group=group, index=index):
            child = tracer.start_span(f"level1.{index}", context=context)
            group.append(child)
            open_subtree(tracer, child, 2, 3, group)

        futures.append(pool.submit(start))
    for future in futures:
        future.result()
    spans = [root, *(s for g in groups for s in g)]
    rng.shuffle(spans)
    # ... and ended in random order, spread over the threads.
    chunks = [spans[i::4] for i in range(4)]
    for future in [pool.submit(lambda c=c: [s.end() for s in c]) for c in chunks]:
        future.result()
    return len(spans)


async def trace_on_tasks(tracer, rng):
    root = tracer.start_span("root")
    spans = [root]

    async def subtree(parent, depth):
        context = trace.set_span_in_context(parent)
        for index in range(3):
            await asyncio.sleep(0)
            child = tracer.start_span(f"level{depth}.{index}", context=context)
            spans.append(child)
            if depth < 3:
                await subtree(child, depth + 1)

    await asyncio.gather(*(subtree(root, 1) for _ in range(1)))
    order = spans[:]
    rng.shuffle(order)

    async def end_some(chunk):
        for span in chunk:
            await asyncio.sleep(0)
            span.end()

    await asyncio.gather(*(end_some(order[i::5]) for i in range(5)))
    return len(spans)


def test_a_thousand_traces_arrive_as_consistent_trees(langsmith_receiver):
    exporter = langsmith_receiver.exporter()
    recorder = ParentRecorder()
    provider = make_provider(exporter, recorder=recorder)
    tracer = provider.get_tracer("e2e")
    rng = random.Random(1234)
    total = 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(500):
            total += trace_on_threads(tracer, pool, rng)

    async def many():
        counts = await asyncio.gather(*(trace_on_tasks(tracer, rng) for _ in range(500)))
        return sum(counts)

    total += asyncio.run(many())
    provider.shutdown()

    assert total == 1000 * 40
    runs = langsmith_receiver.runs
    assert len(runs) == total
    assert langsmith_receiver.rejected == []
    assert langsmith_receiver.duplicate_posts == 0
    assert langsmith_receiver.problems() == []
    stats = exporter.stats()
    assert stats.released_as_root == {} and stats.runs_exported == total and stats.waiting == 0

    roots = [r for r in runs.values() if "parent_run_id" not in r]
    assert len(roots) == 1000
    for root in roots:
        assert root["id"] == root["trace_id"] == ids.root_run_id(int(root["extra"]["metadata"]["OTEL_TRACE_ID"], 16))
    # The LangSmith tree is the OTel tree: every run's parent is its span's parent.
    by_span = {r["extra"]["metadata"]["OTEL_SPAN_ID"]: r for r in runs.values()}
    for span_id, parent_span in recorder.parents.items():
        run = by_span[span_id]
        if parent_span is None:
            assert "parent_run_id" not in run
        else:
            assert run["parent_run_id"] == by_span[parent_span]["id"]
            assert run["dotted_order"].startswith(by_span[parent_span]["dotted_order"] + ".")
    # The resource is said once per trace.
    assert all("service.name" in r["extra"]["metadata"] for r in roots)
    assert not any("service.name" in r["extra"]["metadata"] for r in runs.values() if "parent_run_id" in r)


class FixedIds(IdGenerator):
    def __init__(self) -> None:
        self._next_span = 0x1000

    def generate_trace_id(self) -> int:
        return 0x5B8EFFF798038103D269B633813FC60C

    def generate_span_id(self) -> int:
        self._next_span += 1
        return self._next_span


def send_fixed_trace(receiver):
    provider = TracerProvider(id_generator=FixedIds())
    provider.add_span_processor(BatchSpanProcessor(receiver.exporter()))
    tracer = provider.get_tracer("determinism")
    root = tracer.start_span("root", start_time=1_700_000_000_000_000_000)
    child = tracer.start_span("child", context=trace.set_span_in_context(root), start_time=1_700_000_000_500_000_000)
    child.end(end_time=1_700_000_001_000_000_000)
    root.end(end_time=1_700_000_002_000_000_000)
    provider.shutdown()
    return {
        r["name"]: (r["id"], r["trace_id"], r.get("parent_run_id"), r["dotted_order"]) for r in receiver.runs.values()
    }


def test_the_same_trace_gets_the_same_ids_in_two_runs_of_the_exporter():
    with LangSmithReceiver() as first, LangSmithReceiver() as second:
        assert send_fixed_trace(first) == send_fixed_trace(second)
        runs = first.runs
    root_id = ids.root_run_id(0x5B8EFFF798038103D269B633813FC60C)
    assert runs[root_id]["dotted_order"] == "20231114T221320000000Z" + root_id
    child_id = ids.span_run_id(0x1002)
    assert runs[child_id]["dotted_order"] == f"20231114T221320000000Z{root_id}.20231114T221320500000Z{child_id}"


def test_a_child_that_started_before_its_parent_is_clamped_and_accepted(langsmith_receiver):
    provider = make_provider(langsmith_receiver.exporter())
    tracer = provider.get_tracer("skew")
    parent = tracer.start_span("parent", start_time=2_000_000_000_000_000_000)
    child = tracer.start_span("child", context=trace.set_span_in_context(parent), start_time=1_999_999_999_000_000_000)
    child.end(end_time=1_999_999_999_500_000_000)
    parent.end(end_time=2_000_000_001_000_000_000)
    provider.shutdown()
    assert langsmith_receiver.rejected == []
    child_run = langsmith_receiver.runs[ids.span_run_id(child.context.span_id)]
    assert child_run["start_time"] == child_run["end_time"] == "2033-05-18T03:33:20.000000+00:00"


def test_a_span_with_a_remote_parent_is_sent_as_a_root_at_once(langsmith_receiver):
    provider = make_provider(langsmith_receiver.exporter())
    remote = SpanContext(0xC0FFEE, 0xDECAF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    tracer = provider.get_tracer("remote")
    with tracer.start_as_current_span("handler", context=trace.set_span_in_context(NonRecordingSpan(remote))):
        with tracer.start_as_current_span("work"):
            pass
    provider.force_flush()
    assert langsmith_receiver.wait_for_runs(2, timeout=5)
    (root,) = langsmith_receiver.roots()
    assert root["name"] == "handler" and root["trace_id"] == root["id"]
    assert root["extra"]["metadata"]["OTEL_PARENT_SPAN_ID"] == f"{0xDECAF:016x}"
    assert [c["name"] for c in langsmith_receiver.children(root["id"])] == ["work"]
    assert langsmith_receiver.rejected == []
    provider.shutdown()


def test_the_exporters_own_thread_releases_a_span_whose_parent_never_ends(langsmith_receiver):
    # The boundary of the wait is tested on a fake clock (test_lifecycle.py); here, that the
    # exporter's worker wakes up for it by itself, with no further export.
    exporter = langsmith_receiver.exporter(parent_wait=0.5)
    provider = make_provider(exporter)
    tracer = provider.get_tracer("never-ends")
    parent = tracer.start_span("parent-that-never-ends")
    with tracer.start_as_current_span("child", context=trace.set_span_in_context(parent)):
        pass
    provider.force_flush()
    assert langsmith_receiver.wait_for_runs(1, timeout=5)
    assert exporter.stats().released_as_root == {"timeout": 1}
    provider.shutdown()


def test_a_span_whose_parent_was_dropped_is_sent_at_shutdown(langsmith_receiver):
    exporter = langsmith_receiver.exporter()  # the default wait (300 s) is never reached here
    provider = make_provider(exporter)
    # The parent is traced by a provider that exports nowhere: from the exporter's side it was dropped.
    elsewhere = TracerProvider()
    with elsewhere.get_tracer("x").start_as_current_span("dropped-parent") as dropped:
        with provider.get_tracer("y").start_as_current_span("orphan"):
            pass
    provider.shutdown()
    (root,) = langsmith_receiver.runs.values()
    assert root["name"] == "orphan" and "parent_run_id" not in root
    assert root["extra"]["metadata"]["OTEL_PARENT_SPAN_ID"] == f"{dropped.context.span_id:016x}"
    assert root["extra"]["metadata"]["OTEL_PARENT_MISSING"] == "shutdown"
    assert exporter.stats().released_as_root == {"shutdown": 1}
    assert langsmith_receiver.rejected == []


def test_a_full_buffer_sends_the_oldest_waiting_span(langsmith_receiver):
    exporter = langsmith_receiver.exporter(max_pending_spans=2)
    provider = make_provider(exporter)
    tracer = provider.get_tracer("full")
    parents = [tracer.start_span(f"open-{i}") for i in range(3)]
    for index, parent in enumerate(parents):
        with tracer.start_as_current_span(f"child-{index}", context=trace.set_span_in_context(parent)):
            pass
        provider.force_flush()
    assert langsmith_receiver.wait_for_runs(1, timeout=5)
    assert [r["name"] for r in langsmith_receiver.runs.values()] == ["child-0"]
    assert exporter.stats().released_as_root == {"buffer_full": 1}
    for parent in parents:
        parent.end()
    provider.shutdown()
    assert len(langsmith_receiver.runs) == 6
    assert {r["name"] for r in langsmith_receiver.children(None)} == {"open-0", "open-1", "open-2", "child-0"}
    assert langsmith_receiver.rejected == []


def test_batches_follow_the_limits_advertised_by_info():
    with LangSmithReceiver(size_limit=7, size_limit_bytes=6_000) as receiver:
        exporter = receiver.exporter()
        provider = make_provider(exporter, schedule_delay_millis=60_000)
        tracer = provider.get_tracer("limits")
        for index in range(20):
            with tracer.start_as_current_span(f"span-{index}", attributes={"payload": "x" * 1_000}):
                pass
        provider.shutdown()
        posts = [r for r in receiver.requests if r.method == "POST"]
        gets = [r for r in receiver.requests if r.method == "GET"]
        assert len(receiver.runs) == 20
        assert all(r.operations <= 7 for r in posts)
        assert all(r.body_bytes <= 6_000 + 100 for r in posts)
        assert len(posts) >= 4
        assert len(gets) == 1  # /info is read once


def test_a_self_hosted_api_v1_endpoint_works(langsmith_receiver):
    exporter = LangSmithSpanExporter(endpoint=langsmith_receiver.url + "/api/v1/", api_key=langsmith_receiver.api_key)
    provider = make_provider(exporter)
    with provider.get_tracer("x").start_as_current_span("self-hosted"):
        pass
    provider.shutdown()
    assert [r.path for r in langsmith_receiver.requests] == ["/api/v1/info", "/api/v1/runs/multipart"]
    assert len(langsmith_receiver.runs) == 1


def test_defaults_are_used_when_info_cannot_be_read(langsmith_receiver, caplog):
    langsmith_receiver.info_body = None
    exporter = langsmith_receiver.exporter()
    provider = make_provider(exporter)
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        with provider.get_tracer("x").start_as_current_span("still-sent"):
            pass
        provider.shutdown()
    assert len(langsmith_receiver.runs) == 1
    assert "/info answered HTTP 404" in caplog.text


def test_a_refused_request_is_logged_and_reported_without_the_key(caplog, record_spans):
    with LangSmithReceiver(api_key="the-right-key") as receiver:
        exporter = receiver.exporter(api_key="lsv2_sk_wrong_secret")

        def body(tracer):
            with tracer.start_as_current_span("refused"):
                pass

        with caplog.at_level(logging.ERROR, logger="otel_langsmith"):
            assert exporter.export(record_spans(body)) is SpanExportResult.SUCCESS  # queued
            assert exporter.force_flush() is False
        assert "HTTP 401" in caplog.text and "Unauthorized" in caplog.text
        assert "lsv2_sk_wrong_secret" not in caplog.text
        stats = exporter.stats()
        assert stats.runs_dropped == 1 and stats.dropped == {"auth": 1}  # no spool to keep it for a new key
        exporter.shutdown()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_endpoint_does_not_hold_export_back(caplog, record_spans):
    exporter = LangSmithSpanExporter(endpoint=f"http://127.0.0.1:{closed_port()}", api_key="k")

    def body(tracer):
        with tracer.start_as_current_span("lost"):
            pass

    spans = record_spans(body)
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        started = time.monotonic()
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert time.monotonic() - started < 0.5  # the network is the sender thread's business
        assert exporter.force_flush(timeout_millis=2_000) is False
    assert "keeping undelivered runs (in memory)" in caplog.text
    assert exporter.stats().queued_runs == 1
    exporter.shutdown(timeout_millis=500)
    stats = exporter.stats()
    assert stats.runs_dropped == 1 and stats.dropped == {"shutdown": 1}  # no spool: lost at shutdown, counted


def test_export_after_shutdown_fails(langsmith_receiver, record_spans):
    exporter = langsmith_receiver.exporter()
    exporter.shutdown()

    def body(tracer):
        with tracer.start_as_current_span("late"):
            pass

    assert exporter.export(record_spans(body)) is SpanExportResult.FAILURE
    assert exporter.force_flush() is False
    assert langsmith_receiver.runs == {}


@pytest.mark.parametrize("workspace", ["ws-123"])
def test_workspace_id_is_sent_as_tenant_header(langsmith_receiver, workspace, record_spans):
    exporter = langsmith_receiver.exporter(workspace_id=workspace)

    def body(tracer):
        with tracer.start_as_current_span("tenant"):
            pass

    assert exporter.export(record_spans(body)) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    post = next(r for r in langsmith_receiver.requests if r.method == "POST")
    assert post.headers["x-tenant-id"] == workspace
    assert post.headers["user-agent"].startswith("otel-langsmith/")
    exporter.shutdown()


def test_a_span_that_cannot_be_converted_still_arrives_in_its_place(langsmith_receiver, monkeypatch, caplog):
    def broken_rule(attributes, name):
        if name == "poisoned":
            raise RuntimeError("a convention bug")
        return None

    monkeypatch.setattr(run_type, "RULES", [(broken_rule, None), *run_type.RULES])
    exporter = langsmith_receiver.exporter()
    provider = make_provider(exporter)
    tracer = provider.get_tracer("x")
    with caplog.at_level(logging.ERROR, logger="otel_langsmith"):
        with tracer.start_as_current_span("root"), tracer.start_as_current_span("poisoned"):
            pass
        provider.shutdown()
    assert langsmith_receiver.rejected == []
    (root,) = langsmith_receiver.roots()
    (poisoned,) = langsmith_receiver.children(root["id"])
    assert poisoned["name"] == "poisoned"
    assert poisoned["extra"]["metadata"]["otel_langsmith_conversion_error"] == "RuntimeError: a convention bug"
    assert exporter.stats().conversion_errors == 1
    assert "Could not convert span 'poisoned'" in caplog.text


def test_concurrent_exports_from_many_threads(langsmith_receiver):
    exporter = langsmith_receiver.exporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # calls export() on each ending thread
    tracer = provider.get_tracer("threads")

    def work(index):
        with tracer.start_as_current_span(f"root-{index}"):
            for step in range(5):
                with tracer.start_as_current_span(f"step-{step}"):
                    pass

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(40)))
    provider.shutdown()
    assert len(langsmith_receiver.runs) == 40 * 6
    assert langsmith_receiver.problems() == [] and langsmith_receiver.rejected == []
    assert exporter.stats().spans_received == 240
