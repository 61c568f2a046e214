"""The delivery promise under attack: nothing lost, nothing duplicated, everything bounded in memory
and time. Each test is one way the promise broke before, with the fault that breaks it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from helpers import FakeClock, Silent, child_environment, closed_port_url, run_child
from helpers import ended_spans as ended
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags

from otel_langsmith import LangSmithSpanExporter, LangSmithSpanProcessor, RetryPolicy, _assembly, _runs
from otel_langsmith import _ids as ids
from otel_langsmith._convert import run_type
from otel_langsmith._logs import _Store
from otel_langsmith._transport import Transport
from otel_langsmith.testing import Fault, LangSmithReceiver

QUICK = RetryPolicy(initial_backoff=0.1, max_backoff=0.4, jitter=0.0)
HERE = Path(__file__).parent
WORKER = HERE / "spool_worker.py"


def good_traces(tracer, count: int) -> None:
    for index in range(count):
        with tracer.start_as_current_span(f"good-{index}", attributes={"input.value": f"question {index}"}):
            with tracer.start_as_current_span("step"):
                pass


def posts(receiver) -> list:
    return [r for r in receiver.requests if r.method == "POST"]


# -- 1. one hostile value costs its own run at most ----------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "expected_input"),
    [
        # Declared as text: kept as text, whatever it looks like.
        ({"input.value": "[" * 1000 + "]" * 1000, "input.mime_type": "text/plain"}, "[" * 1000 + "]" * 1000),
        # Undeclared: parsed, nested a thousand levels deep, cut where JSON encoders stop.
        ({"input.value": "[" * 1000 + "]" * 1000}, None),
    ],
)
def test_one_hostile_value_costs_none_of_its_neighbours(langsmith_receiver, attributes, expected_input):
    def body(tracer):
        good_traces(tracer, 125)
        with tracer.start_as_current_span("hostile", attributes=attributes):
            pass
        good_traces(tracer, 125)

    exporter = langsmith_receiver.exporter()
    assert exporter.export(ended(body)) is SpanExportResult.SUCCESS
    assert exporter.force_flush() is True
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert len(langsmith_receiver.runs) == 501 and langsmith_receiver.rejected == []
    hostile = runs["hostile"]["inputs"]["input"]
    if expected_input is not None:
        assert hostile == expected_input
    else:
        depth = 0
        while isinstance(hostile, list):
            hostile, depth = hostile[0], depth + 1
        assert hostile == "...[nested too deep, cut by otel-langsmith]" and depth < 255
    assert exporter.stats().runs_dropped == 0
    exporter.shutdown()


def test_a_time_no_run_can_carry_is_replaced_and_said(langsmith_receiver):
    before = time.time()

    def body(tracer):
        good_traces(tracer, 10)
        tracer.start_span("from-the-far-future", start_time=10**30).end(end_time=10**30)
        tracer.start_span("year-10000", start_time=253_402_300_800 * 10**9).end(end_time=253_402_300_801 * 10**9)

    exporter = langsmith_receiver.exporter()
    exporter.export(ended(body))
    assert exporter.force_flush() is True
    assert langsmith_receiver.rejected == [] and len(langsmith_receiver.runs) == 22
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    for name in ("from-the-far-future", "year-10000"):
        run = runs[name]
        assert run["start_time"][:4] == time.strftime("%Y", time.gmtime(before))
        assert "start_time_ns" in run["extra"]["metadata"]["otel_langsmith_invalid_time"]
    exporter.shutdown()


@pytest.mark.parametrize("stage", ["convert", "place", "encode"])
def test_a_failure_at_any_stage_is_contained_to_its_span(langsmith_receiver, monkeypatch, stage):
    if stage == "convert":

        def poisoned_rule(attributes, name):
            if name == "poisoned":
                raise RuntimeError("a convention bug")

        monkeypatch.setattr(run_type, "RULES", [(poisoned_rule, None), *run_type.RULES])
    elif stage == "place":
        real_fill = _assembly.fill

        def fill(pending, placed, parent):
            if pending.run.get("name") == "poisoned" and "otel_langsmith_error" not in pending.metadata:
                raise RuntimeError("a placement bug")
            real_fill(pending, placed, parent)

        monkeypatch.setattr(_assembly, "fill", fill)
    else:
        real_encode = _runs.wire.encode_run

        def encode_run(run, operation="post"):
            if run.get("name") == "poisoned" and "extra" in run and "otel_langsmith_error" not in str(run["extra"]):
                raise RuntimeError("an encoding bug")
            return real_encode(run, operation=operation)

        monkeypatch.setattr(_runs.wire, "encode_run", encode_run)

    def body(tracer):
        good_traces(tracer, 20)
        with tracer.start_as_current_span("root"), tracer.start_as_current_span("poisoned"):
            with tracer.start_as_current_span("under-the-poisoned"):
                pass
        good_traces(tracer, 20)

    exporter = langsmith_receiver.exporter()
    exporter.export(ended(body))
    assert exporter.force_flush() is True
    assert langsmith_receiver.rejected == [] and langsmith_receiver.problems() == []
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert len(langsmith_receiver.runs) == 83  # every run, the poisoned one in its place
    assert runs["under-the-poisoned"]["parent_run_id"] == runs["poisoned"]["id"]
    assert runs["poisoned"]["parent_run_id"] == runs["root"]["id"]
    assert exporter.stats().conversion_errors == 1
    exporter.shutdown()


# -- 2. shutdown right after an outage tries the endpoint ------------------------------------------


def test_shutdown_right_after_an_outage_sends_everything(langsmith_receiver):
    exporter = langsmith_receiver.exporter(retry_policy=RetryPolicy(initial_backoff=30, jitter=0))
    langsmith_receiver.stop()
    spans = ended(lambda tracer: good_traces(tracer, 300))
    exporter.export(spans)
    assert exporter.force_flush(timeout_millis=500) is False  # down: the next try is 30 s away
    langsmith_receiver.start()
    time.sleep(0.2)
    started = time.monotonic()
    exporter.shutdown(timeout_millis=10_000)
    assert time.monotonic() - started < 5
    assert len(langsmith_receiver.runs) == 600 and langsmith_receiver.duplicate_posts == 0
    assert exporter.stats().runs_dropped == 0


# -- 3. an outage's first seconds: export returns at once, and with a spool what failed is on disk -


KILLED_APP = """
import json, os, signal, sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from otel_langsmith import LangSmithSpanExporter

exporter = LangSmithSpanExporter(endpoint=sys.argv[1], api_key=sys.argv[2], spool_dir=sys.argv[3])
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(exporter))  # the SDK's defaults, as the README shows
tracer = provider.get_tracer("outage")
rate, seconds, count = float(sys.argv[4]), float(sys.argv[5]), 0
start = time.monotonic()
while time.monotonic() - start < seconds:
    with tracer.start_as_current_span(f"span-{count}", attributes={"input.value": "x" * 200}):
        pass
    count += 1
    time.sleep(max(0.0, start + count / rate - time.monotonic()))
provider.force_flush()  # every span handed to the exporter, as the SDK's thread would within 5 s
print(json.dumps({"ended": count, "received": exporter.stats().spans_received}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_process_killed_during_an_outage_loses_nothing_it_exported(langsmith_receiver, tmp_path):
    langsmith_receiver.plan(*[Fault(503)] * 10_000)
    spool = tmp_path / "spool"
    completed = run_child(
        [sys.executable, "-c", KILLED_APP, langsmith_receiver.url, langsmith_receiver.api_key, str(spool), "400", "3"]
    )
    assert completed.returncode == -signal.SIGKILL, completed.stderr
    counts = json.loads(completed.stdout.strip().splitlines()[-1])
    assert counts["received"] == counts["ended"] >= 1_000  # the SDK's queue never overflowed
    assert stat_mode(spool) == 0o700
    langsmith_receiver.faults.clear()
    completed = run_child([sys.executable, str(WORKER), "replay", str(spool), langsmith_receiver.url, "lsv2-test-key"])
    assert completed.returncode == 0, completed.stderr
    assert len(langsmith_receiver.runs) == counts["ended"] and langsmith_receiver.duplicate_posts == 0


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_export_returns_at_once_while_the_endpoint_never_answers():
    with Silent() as url:
        exporter = LangSmithSpanExporter(endpoint=url, api_key="k", timeout=5)
        durations = []
        for _ in range(20):
            spans = ended(lambda tracer: good_traces(tracer, 50))
            started = time.monotonic()
            assert exporter.export(spans) is SpanExportResult.SUCCESS
            durations.append(time.monotonic() - started)
        assert max(durations) < 0.5, durations  # conversion only; the sender is stuck, not export
        assert exporter.stats().spans_received == 2_000
        started = time.monotonic()
        exporter.shutdown(timeout_millis=30_000)
        assert time.monotonic() - started < exporter.settings.shutdown_grace + 1.5
        assert exporter.stats().dropped == {"shutdown": 2_000}


# -- 4. a batch is in one place at a time; a timeout backs off ------------------------------------


def test_a_timeout_while_the_server_stores_anyway_backs_off(langsmith_receiver):
    # The server takes 1.5 s and stores; the client gives up after 1 s and must wait before trying again.
    langsmith_receiver.plan(Fault(status=None, delay=1.5))
    exporter = langsmith_receiver.exporter(timeout=1.0, retry_policy=RetryPolicy(initial_backoff=1.0, jitter=0))
    exporter.export(ended(lambda tracer: good_traces(tracer, 5)))
    time.sleep(3.2)
    sent = posts(langsmith_receiver)
    assert len(sent) == 2, [r.at for r in sent]  # the timed-out attempt and one retry after the backoff
    assert sent[1].at - sent[0].at >= 1.0 + 1.0 - 0.05
    assert langsmith_receiver.duplicate_posts <= 10  # each run at most twice: a timeout is ambiguous
    exporter.shutdown()


def test_shutdown_during_a_retry_in_flight_sends_each_run_once(langsmith_receiver, tmp_path):
    spool = tmp_path / "spool"
    # The first attempt fails (the batch goes to the spool); the retry is slow, and shutdown comes
    # while it is in flight.
    langsmith_receiver.plan(Fault(503), Fault(status=None, delay=1.0))
    exporter = langsmith_receiver.exporter(spool_dir=str(spool), retry_policy=QUICK)
    exporter.export(ended(lambda tracer: good_traces(tracer, 49)))
    deadline = time.monotonic() + 5
    while len(posts(langsmith_receiver)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the retry is in flight
    exporter.shutdown(timeout_millis=10_000)
    assert len(langsmith_receiver.runs) == 98 and langsmith_receiver.duplicate_posts == 0
    assert list(spool.glob("*.batch*")) == []  # nothing left to send again
    completed = run_child([sys.executable, str(WORKER), "replay", str(spool), langsmith_receiver.url, "lsv2-test-key"])
    assert completed.returncode == 0 and langsmith_receiver.duplicate_posts == 0


# -- 5. bounded in memory and time -------------------------------------------------------------------


def test_the_processor_is_bounded_while_the_endpoint_is_down():
    processor = LangSmithSpanProcessor(
        endpoint=closed_port_url(), api_key="k", max_queue_bytes=2 << 20, flush_interval=0.05, retry_policy=QUICK
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bounded")
    payload = "y" * 10_000
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for index in range(12_000):
            with tracer.start_as_current_span(f"span-{index}", attributes={"input.value": payload}):
                pass
        assert processor.force_flush(timeout_millis=5_000) is False
        peak = (tracemalloc.get_traced_memory()[1] - base) / (1 << 20)
    finally:
        tracemalloc.stop()
    stats = processor.stats()
    # 120 MB of content went through; the queue keeps 2 MiB of it, the rest is dropped and counted.
    # What else is held, whatever the traffic: the ended spans not converted yet, the chunk being
    # converted, and the placements kept for late children.
    assert stats.dropped["queue_full"] > 10_000
    assert stats.queued_runs + stats.dropped["queue_full"] == 12_000
    assert peak < 48, f"peak {peak:.1f} MiB"
    provider.shutdown()


def test_a_trickling_server_cannot_hold_flush_shutdown_or_exit(langsmith_receiver):
    langsmith_receiver.plan(*[Fault(503, trickle=1.0)] * 100)
    exporter = langsmith_receiver.exporter(timeout=1.0, shutdown_grace=1.0, retry_policy=QUICK)
    exporter.export(ended(lambda tracer: good_traces(tracer, 3)))
    started = time.monotonic()
    assert exporter.force_flush(timeout_millis=2_000) is False
    assert time.monotonic() - started < 2.5  # the trickle is cut at the request's 1 s
    started = time.monotonic()
    exporter.shutdown(timeout_millis=3_000)
    assert time.monotonic() - started < 3.5
    assert exporter.stats().dropped == {"shutdown": 6}


@pytest.mark.parametrize("status", [None, 400, 503])
def test_an_answer_cut_by_the_deadline_is_no_answer(langsmith_receiver, status):
    # Its status line arrives, the rest trickles past the deadline: a half answer is no answer
    # (a 202 would count runs delivered unseen, a 400 refuse them without the server's reason).
    langsmith_receiver.plan(Fault(status=status, trickle=0.05))
    transport = Transport(
        endpoint=langsmith_receiver.url, api_key=langsmith_receiver.api_key, workspace_id=None, timeout=2.0
    )
    started = time.monotonic()
    response = transport.post(
        "/runs/multipart", b"-", {"Content-Type": "multipart/form-data; boundary=b"}, deadline=started + 2
    )
    assert response.status is None and "no complete answer" in response.message
    assert time.monotonic() - started < 2.5
    transport.close()


def test_a_stopped_receiver_serves_no_kept_alive_connection(langsmith_receiver):
    exporter = langsmith_receiver.exporter(retry_policy=QUICK)
    exporter.export(ended(lambda tracer: good_traces(tracer, 1)))
    assert exporter.force_flush() is True  # a connection is open, kept alive
    langsmith_receiver.stop()
    exporter.export(ended(lambda tracer: good_traces(tracer, 1)))
    assert exporter.force_flush(timeout_millis=1_000) is False
    assert len(langsmith_receiver.runs) == 2  # the second trace did not go through the old connection
    langsmith_receiver.start()
    assert exporter.force_flush() is True and len(langsmith_receiver.runs) == 4
    exporter.shutdown()


TRICKLED_APP = """
import sys, time
from opentelemetry.sdk.trace import TracerProvider
import otel_langsmith

otel_langsmith.configure(endpoint=sys.argv[1], api_key=sys.argv[2], flush_interval=0.1)
from opentelemetry import trace
with trace.get_tracer("app").start_as_current_span("work"):
    pass
time.sleep(0.5)  # the request is in flight, trickling
print("last line", time.monotonic(), flush=True)
"""


def test_a_process_whose_endpoint_trickles_exits_on_time(langsmith_receiver):
    langsmith_receiver.plan(*[Fault(503, trickle=1.0)] * 100)
    started = time.monotonic()
    completed = run_child(
        [sys.executable, "-c", TRICKLED_APP, langsmith_receiver.url, langsmith_receiver.api_key],
        env=child_environment(),
        timeout=60,
    )
    finished = time.monotonic()
    assert completed.returncode == 0, completed.stderr
    last_line = float(completed.stdout.split()[-1])
    # Exit after the last line: the shutdown grace (3 s by default), then the interpreter's own exit.
    assert finished - last_line < 5, (finished - last_line, finished - started)
    assert "lost 1 run(s) (shutdown: 1)" in completed.stderr


# -- 6. GenAI log records are bounded in bytes and age --------------------------------------------


def test_log_records_of_spans_never_exported_are_bounded_in_bytes_and_age():
    clock = FakeClock()
    store = _Store(max_bytes=1 << 20, max_age=600, clock=clock)
    body = {"content": "z" * 20_000}
    for span_id in range(5_000):
        store.add(span_id, ("gen_ai.user.message", body, 0))
    assert store.bytes <= (1 << 20) and store.dropped >= 4_900
    assert store.take(4_999) and not store.take(0)  # the newest kept, the oldest forgotten
    store.add(10_000, ("gen_ai.user.message", body, 0))
    clock.advance(601)
    store.add(10_001, ("gen_ai.user.message", body, 0))
    assert not store.take(10_000) and store.take(10_001)  # too old: forgotten


# -- 7. Retry-After: 0 backs off; a server refusing everything costs a few requests ---------------


@pytest.mark.parametrize("retry_after", ["0", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_retry_after_in_the_past_still_backs_off(langsmith_receiver, retry_after):
    langsmith_receiver.plan(*[Fault(503, retry_after=retry_after)] * 1_000)
    exporter = langsmith_receiver.exporter(retry_policy=QUICK)
    exporter.export(ended(lambda tracer: good_traces(tracer, 2)))
    time.sleep(2.0)
    # 0, 0.1, 0.3, 0.7, 1.1, 1.5, 1.9: the backoff schedule, not hundreds of requests.
    assert 4 <= len(posts(langsmith_receiver)) <= 8
    exporter.shutdown(timeout_millis=100)


def test_a_server_refusing_everything_costs_a_few_requests_and_lines(langsmith_receiver, caplog):
    spans = ended(lambda tracer: good_traces(tracer, 150))
    langsmith_receiver.refuse_runs.update(
        ids.root_run_id(span.context.trace_id) if span.parent is None else ids.span_run_id(span.context.span_id)
        for span in spans
    )
    exporter = langsmith_receiver.exporter()
    with caplog.at_level(logging.ERROR, logger="otel_langsmith"):
        exporter.export(spans)
        assert exporter.force_flush() is False
    assert exporter.stats().runs_refused == 300 and langsmith_receiver.runs == {}
    assert len(posts(langsmith_receiver)) <= 20  # not two requests per run
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) <= 2  # not a line per run
    exporter.shutdown()


# -- 11. the smaller ones ----------------------------------------------------------------------------


def test_an_oversized_name_is_shrunk_and_its_children_kept():
    with LangSmithReceiver(size_limit_bytes=1 << 20) as receiver:

        def body(tracer):
            with tracer.start_as_current_span("n" * (3 << 20)):
                with tracer.start_as_current_span("child"):
                    pass

        exporter = receiver.exporter(compression="none")
        exporter.export(ended(body))
        assert exporter.force_flush() is True
        runs = {run["name"][:8]: run for run in receiver.runs.values()}
        assert runs["nnnnnnnn"]["name"].endswith("...[truncated by otel-langsmith]")
        assert runs["child"]["parent_run_id"] == runs["nnnnnnnn"]["id"] and receiver.rejected == []
        assert len([r for r in receiver.requests if r.status == 413]) <= 1
        exporter.shutdown()


def test_a_key_no_header_can_carry_is_one_error_and_nothing_is_sent(langsmith_receiver, caplog, tmp_path):
    with caplog.at_level(logging.ERROR, logger="otel_langsmith"):
        exporter = langsmith_receiver.exporter(api_key="lsv2-κλειδί")
        spooled = langsmith_receiver.exporter(api_key="lsv2-κλειδί", spool_dir=str(tmp_path))
    assert caplog.text.count("cannot send to LangSmith") == 2 and "κλειδί" not in caplog.text
    for made in (exporter, spooled):
        made.export(ended(lambda tracer: good_traces(tracer, 2)))
        assert made.force_flush(timeout_millis=2_000) is False
    assert langsmith_receiver.requests == []
    assert exporter.stats().dropped == {"configuration": 4}
    assert spooled.stats().runs_dropped == 0 and spooled.stats().runs_spooled >= 4  # kept for a corrected key
    exporter.shutdown()
    spooled.shutdown()


def test_roots_with_trace_id_zero_are_runs_of_their_own(langsmith_receiver):
    spans = [
        ReadableSpan(
            name=f"hand-made-{index}",
            context=SpanContext(0, 0x100 + index, False, TraceFlags(TraceFlags.SAMPLED)),
            start_time=time.time_ns(),
            end_time=time.time_ns(),
        )
        for index in range(3)
    ]
    exporter = langsmith_receiver.exporter()
    exporter.export(spans)
    assert exporter.force_flush() is True
    assert sorted(run["name"] for run in langsmith_receiver.runs.values()) == [f"hand-made-{i}" for i in range(3)]
    assert langsmith_receiver.rejected == []
    exporter.shutdown()


def test_a_corrupt_spool_header_with_a_valid_checksum_is_set_aside(langsmith_receiver, tmp_path):
    payloads = b"{}"
    header = {"v": 1, "runs": [["post", 12, None, "not a list"]], "sha256": hashlib.sha256(payloads).hexdigest()}
    (tmp_path / "00000000000000000001-1-deadbeef.batch").write_bytes(json.dumps(header).encode() + b"\n" + payloads)
    os.chmod(tmp_path, 0o700)
    exporter = langsmith_receiver.exporter(spool_dir=str(tmp_path))
    assert exporter.force_flush() is True  # nothing left: not claimed forever
    (corrupt,) = (tmp_path / "corrupt").iterdir()
    assert corrupt.name.startswith("00000000000000000001")
    exporter.shutdown()


def test_processor_shutdown_never_misses_its_wake_up(langsmith_receiver):
    durations = []
    for _ in range(20):
        provider = TracerProvider()
        processor = LangSmithSpanProcessor(
            endpoint=langsmith_receiver.url, api_key=langsmith_receiver.api_key, flush_interval=60
        )
        provider.add_span_processor(processor)
        with provider.get_tracer("wake").start_as_current_span("one"):
            pass
        started = time.monotonic()
        threading.Thread(target=lambda: None).start()  # some scheduling noise
        provider.shutdown()
        durations.append(time.monotonic() - started)
    assert max(durations) < 1.0, durations
    assert len(langsmith_receiver.runs) == 20
