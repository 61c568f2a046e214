"""Delivery against a receiver that fails on purpose: retries, splitting, refusals, compression,
the retry queue and its limits."""

from __future__ import annotations

import email.utils
import itertools
import logging
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_langsmith import RetryPolicy
from otel_langsmith import _ids as ids
from otel_langsmith.testing import Fault, LangSmithReceiver

# Deterministic waits: no jitter, short base, so the test can check them.
POLICY = RetryPolicy(initial_backoff=0.1, max_backoff=0.4, multiplier=2.0, jitter=0.0)


def make_spans(count: int, *, attributes=None) -> list:
    """``count`` ended root spans from the real SDK (one trace each, so no waiting)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("delivery")
    for index in range(count):
        with tracer.start_as_current_span(f"span-{index}", attributes=attributes or {}):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def run_id(span) -> str:
    return ids.root_run_id(span.context.trace_id)


def posts(receiver):
    return [r for r in receiver.requests if r.method == "POST"]


def gaps(requests):
    return [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]


RETRY_AFTER_DATE = object()  # replaced by an HTTP date two seconds ahead, at run time

SEQUENCES = {
    "503 twice": ([Fault(503), Fault(503)], [0.1, 0.2]),
    "every retryable status": ([Fault(408), Fault(425), Fault(500), Fault(502), Fault(504)], [0.1, 0.2, 0.4, 0.4, 0.4]),
    "429 with Retry-After seconds": ([Fault(429, retry_after="0.7")], [0.7]),
    "503 with Retry-After date": ([Fault(503, retry_after=RETRY_AFTER_DATE)], [1.0]),
    "dropped connection": ([Fault(drop_connection=True), Fault(502)], [0.1, 0.2]),
    "slow response past the request timeout": ([Fault(503, delay=1.5)], [1.0 + 0.1]),
}


@pytest.mark.parametrize("case", list(SEQUENCES))
def test_faults_that_end_within_the_deadline_lose_and_duplicate_nothing(langsmith_receiver, case):
    faults, expected_gaps = SEQUENCES[case]
    for fault in faults:
        if fault.retry_after is RETRY_AFTER_DATE:
            fault.retry_after = email.utils.formatdate(time.time() + 2, usegmt=True)
    langsmith_receiver.plan(*faults)
    exporter = langsmith_receiver.exporter(retry_policy=POLICY, timeout=1.0)
    spans = make_spans(5)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    # The sender thread retries on its own, each wait as the policy says.
    assert langsmith_receiver.wait_for_runs(5, timeout=10)
    sent = posts(langsmith_receiver)
    assert len(sent) == len(faults) + 1
    assert sorted(langsmith_receiver.runs) == sorted(run_id(s) for s in spans)
    assert langsmith_receiver.duplicate_posts == 0
    for gap, expected in zip(gaps(sent), expected_gaps, strict=True):
        if case == "503 with Retry-After date":
            assert 0.9 <= gap <= 2.2  # an HTTP date has whole seconds
        else:
            # Never sooner than the policy says; later only by scheduling noise.
            assert expected - 0.02 <= gap <= expected + 0.5, (gaps(sent), expected_gaps)
    assert exporter.force_flush()  # waits for the request in flight to be settled
    stats = exporter.stats()
    assert stats.runs_exported == 5 and stats.runs_retried == 5 * len(faults)
    exporter.shutdown()


def test_the_body_is_compressed_once_and_the_same_bytes_are_resent(langsmith_receiver):
    langsmith_receiver.plan(Fault(503), Fault(503))
    exporter = langsmith_receiver.exporter(retry_policy=POLICY)
    assert exporter.export(make_spans(3)) is SpanExportResult.SUCCESS
    assert langsmith_receiver.wait_for_runs(3, timeout=10)
    sent = posts(langsmith_receiver)
    assert {r.headers["content-encoding"] for r in sent} == {"zstd"}
    assert len({(r.body_bytes, r.headers["x-post-compressed-size"]) for r in sent}) == 1
    exporter.shutdown()


@pytest.mark.parametrize(
    ("setting", "advertised", "expected"),
    [
        ("auto", True, "zstd"),
        ("auto", False, None),
        ("gzip", True, "gzip"),
        ("none", True, None),
        ("zstd", False, "zstd"),
    ],
)
def test_compression_setting(setting, advertised, expected):
    with LangSmithReceiver(zstd=advertised) as receiver:
        exporter = receiver.exporter(compression=setting)
        assert exporter.export(make_spans(2)) is SpanExportResult.SUCCESS
        assert exporter.force_flush()
        (post,) = posts(receiver)
        assert post.headers.get("content-encoding") == expected
        if expected:
            assert int(post.headers["x-post-compressed-size"]) == post.body_bytes
            assert int(post.headers["x-pre-compressed-size"]) > 0
        assert len(receiver.runs) == 2
        exporter.shutdown()


def test_one_invalid_run_in_a_batch_of_a_hundred(langsmith_receiver, caplog):
    spans = make_spans(100)
    bad = run_id(spans[37])
    langsmith_receiver.refuse_runs.add(bad)
    exporter = langsmith_receiver.exporter()
    with caplog.at_level(logging.ERROR, logger="otel_langsmith"):
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert exporter.force_flush() is False  # a run was lost: a flush does not say all is well
    runs = langsmith_receiver.runs
    assert len(runs) == 99 and bad not in runs
    assert langsmith_receiver.duplicate_posts == 0
    refusals = [r for r in caplog.records if "refused 1 run(s)" in r.getMessage()]
    assert len(refusals) == 1
    assert bad in refusals[0].getMessage() and "refused by the fault plan" in refusals[0].getMessage()
    assert exporter.stats().runs_refused == 1 and exporter.stats().runs_exported == 99
    assert len(posts(langsmith_receiver)) <= 2 * 7 + 1  # bisection, not one request per run
    exporter.shutdown()


def test_413_splits_the_batch_until_it_fits(langsmith_receiver):
    spans = make_spans(40, attributes={"payload": "p" * 4_000})
    langsmith_receiver.byte_limit = 50_000
    exporter = langsmith_receiver.exporter(compression="none")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    assert len(langsmith_receiver.runs) == 40 and langsmith_receiver.duplicate_posts == 0
    accepted = [r for r in posts(langsmith_receiver) if r.status == 202]
    assert all(r.body_bytes <= 50_000 for r in accepted)
    assert any(r.status == 413 for r in posts(langsmith_receiver))
    exporter.shutdown()


def test_a_run_too_large_for_any_request_is_shrunk_not_dropped(caplog):
    huge = "x" * (30 * 1024 * 1024)
    with LangSmithReceiver(size_limit_bytes=1024 * 1024) as receiver:
        exporter = receiver.exporter(compression="none")
        spans = make_spans(1, attributes={"input.value": huge, "note": "kept"})
        with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
            assert exporter.export(spans) is SpanExportResult.SUCCESS
            assert exporter.force_flush()
        (run,) = receiver.runs.values()
        assert run["inputs"]["input"].endswith("...[truncated by otel-langsmith]")
        assert len(run["inputs"]["input"]) < 1024 * 1024
        metadata = run["extra"]["metadata"]
        assert metadata["otel_langsmith_truncated"]["inputs"] > 30 * 1024 * 1024
        assert metadata["note"] == "kept" and metadata["OTEL_SPAN_ID"]
        assert exporter.stats().runs_truncated == 1
        assert "too large for one request" in caplog.text
        exporter.shutdown()


def test_a_server_whose_real_limit_is_lower_than_advertised(langsmith_receiver):
    langsmith_receiver.byte_limit = 200_000
    spans = make_spans(1, attributes={"input.value": "y" * 1_000_000})
    exporter = langsmith_receiver.exporter(compression="none")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    (run,) = langsmith_receiver.runs.values()
    assert "otel_langsmith_truncated" in run["extra"]["metadata"]
    exporter.shutdown()


def test_auth_failures_are_not_retried_and_say_why(caplog):
    with LangSmithReceiver(api_key="right") as receiver:
        exporter = receiver.exporter(api_key="lsv2_pt_0123456789abcdef", retry_policy=POLICY)
        with caplog.at_level(logging.ERROR, logger="otel_langsmith"):
            exporter.export(make_spans(2))
            assert exporter.force_flush() is False
            exporter.export(make_spans(2))
            time.sleep(POLICY.max_backoff)  # the backoff a refusal also earns
            assert exporter.force_flush() is False
        assert len(posts(receiver)) == 2  # one per batch, no retry
        messages = [r.getMessage() for r in caplog.records if "credentials" in r.getMessage()]
        assert len(messages) == 1  # said once, not per batch
        assert "LANGSMITH_API_KEY (lsv2_...cdef)" in messages[0] and "LANGSMITH_WORKSPACE_ID" in messages[0]
        assert "0123456789abcdef" not in caplog.text
        assert exporter.stats().dropped == {"auth": 4}
        exporter.shutdown()


def test_a_server_without_multipart_gets_runs_batch(langsmith_receiver):
    langsmith_receiver.multipart_enabled = False
    exporter = langsmith_receiver.exporter()
    assert exporter.export(make_spans(3)) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    assert exporter.export(make_spans(2)) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    paths = [r.path for r in posts(langsmith_receiver)]
    assert paths == ["/runs/multipart", "/runs/batch", "/runs/batch"]
    assert len(langsmith_receiver.runs) == 5
    exporter.shutdown()


def test_the_endpoint_down_then_back(langsmith_receiver):
    exporter = langsmith_receiver.exporter(retry_policy=POLICY)
    langsmith_receiver.stop()
    first, second = make_spans(10), make_spans(10)
    started = time.monotonic()
    assert exporter.export(first) is SpanExportResult.SUCCESS
    assert exporter.export(second) is SpanExportResult.SUCCESS
    assert time.monotonic() - started < 0.2  # queued at once, whatever the endpoint does
    assert exporter.force_flush(timeout_millis=1_000) is False
    assert exporter.stats().queued_runs == 20
    langsmith_receiver.start()
    assert langsmith_receiver.wait_for_runs(20, timeout=10)
    assert sorted(langsmith_receiver.runs) == sorted(run_id(s) for s in first + second)
    assert langsmith_receiver.duplicate_posts == 0
    assert exporter.force_flush()
    assert exporter.stats().queued_runs == 0 and exporter.stats().runs_dropped == 0
    exporter.shutdown()


def test_the_retry_queue_is_bounded_and_drops_the_oldest(langsmith_receiver, caplog):
    langsmith_receiver.stop()
    exporter = langsmith_receiver.exporter(retry_policy=POLICY, max_queue_bytes=20_000)
    batches = [make_spans(5, attributes={"payload": "z" * 1_000}) for _ in range(10)]
    with caplog.at_level(logging.ERROR, logger="otel_langsmith"):
        for spans in batches:
            exporter.export(spans)
    stats = exporter.stats()
    assert stats.dropped["queue_full"] >= 2 * 5  # more than one batch went
    assert stats.queued_runs + stats.runs_dropped == 50
    # Said once, with the count, rather than once per dropped batch.
    assert caplog.text.count("queue is full") == 1
    langsmith_receiver.start()
    assert exporter.force_flush() is False  # it sent what was kept, but runs were lost since the last flush
    assert exporter.force_flush() is True
    # The newest runs are the ones kept.
    kept = {run_id(span) for spans in batches for span in spans} - set(langsmith_receiver.runs)
    assert {run_id(span) for span in batches[-1]} <= set(langsmith_receiver.runs)
    assert len(kept) == stats.runs_dropped
    exporter.shutdown(timeout_millis=200)


def test_shutdown_during_a_long_backoff_returns_within_its_timeout(langsmith_receiver):
    langsmith_receiver.plan(Fault(503, retry_after="30"))
    exporter = langsmith_receiver.exporter()
    assert exporter.export(make_spans(2)) is SpanExportResult.SUCCESS
    while not posts(langsmith_receiver):
        time.sleep(0.01)
    time.sleep(0.1)
    started = time.monotonic()
    exporter.shutdown(timeout_millis=1_000)
    assert time.monotonic() - started < 1.5
    # Shutdown did not trust the backoff: it tried once more, and the endpoint took the runs.
    assert len(langsmith_receiver.runs) == 2


def test_force_flush_sends_the_queue_and_tells_the_truth(langsmith_receiver):
    exporter = langsmith_receiver.exporter(retry_policy=RetryPolicy(initial_backoff=30))
    langsmith_receiver.stop()
    exporter.export(make_spans(4))
    assert exporter.force_flush(timeout_millis=300) is False  # still down
    langsmith_receiver.start()
    assert exporter.force_flush(timeout_millis=5_000) is True  # at once, not after the 30 s backoff
    assert len(langsmith_receiver.runs) == 4
    exporter.shutdown()
