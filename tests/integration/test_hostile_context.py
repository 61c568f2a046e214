"""Hostile trace context, attacked as a remote caller or a buggy application would: inbound
``langsmith-trace`` and ``baggage`` headers (garbage, odd times and digits, duplicate headers,
values that are not text, carriers that are not mappings), ``inject`` from spans in odd states and
with what they carry, explicit LangSmith identity attributes (a span its own parent, cycles, a
parent that never comes, dotted orders that contradict the tree, shared and invalid ids, metadata
named like the bridge's own) through both the processor and the exporter, and GenAI log records
with hostile bodies.

Everything runs on the real OpenTelemetry SDK and reaches the package's own receiver over
loopback. The promises checked: nothing raises into the application, the receiver refuses no
request and finds no problem in the tree (but for a remote caller's run, which lives elsewhere),
and a child sits under its parent."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import quote

import pytest
from helpers import FakeClock, ended_spans, front_with_clock
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otel_langsmith import LangSmithLogProcessor, LangSmithPropagator, LangSmithSpanExporter, LangSmithSpanProcessor
from otel_langsmith import _ids as ids
from otel_langsmith import _propagation as propagation
from otel_langsmith._convert import values

SEC = 1_000_000  # microseconds
TRACEPARENT = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"


# -- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_throttles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The propagator's and the converter's warnings are said once per process: fresh for each test."""
    monkeypatch.setattr(propagation, "_throttles", {})
    monkeypatch.setattr(values, "_reported", set())


def now_us() -> int:
    return time.time_ns() // 1_000


def header_of(*runs: tuple[int, str]) -> str:
    """A ``langsmith-trace`` header of (start in microseconds, run id) segments, root first."""
    return ".".join(ids.segment(us, run_id) for us, run_id in runs)


def new_id() -> str:
    return str(uuid.uuid4())


def run_id_of(span) -> str:
    context = span.get_span_context()
    return ids.root_run_id(context.trace_id) if span.parent is None else ids.span_run_id(context.span_id)


def assert_under(child: dict, parent: dict) -> None:
    assert child.get("parent_run_id") == parent["id"], (child["name"], child.get("parent_run_id"), parent["id"])
    assert child["trace_id"] == parent["trace_id"]
    assert child["dotted_order"].startswith(parent["dotted_order"] + ".")
    assert child["dotted_order"].count(".") == parent["dotted_order"].count(".") + 1


def assert_accepted(receiver, *, remote: set[str] = frozenset()) -> None:
    """No request refused, no problem in the tree but runs whose parent is a remote caller's run."""
    assert receiver.rejected == [], [r.message for r in receiver.rejected]
    problems = [p for p in receiver.problems() if not any(f"parent {run_id} was never" in p for run_id in remote)]
    assert problems == []


def processor_for(receiver, clock: FakeClock | None = None, **options) -> tuple[TracerProvider, LangSmithSpanProcessor]:
    """The worker never wakes by itself: whoever needs a place settles, a flush sends."""
    processor = front_with_clock(
        LangSmithSpanProcessor,
        clock or FakeClock(),
        endpoint=receiver.url,
        api_key=receiver.api_key,
        flush_interval=3600,
        **options,
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider, processor


def through_processor(receiver, body: Callable) -> dict[str, dict]:
    provider, processor = processor_for(receiver)
    body(provider.get_tracer("hostile"))
    assert processor.force_flush(10_000)
    provider.shutdown()
    return {run["name"]: run for run in receiver.runs.values()}


def through_exporter(receiver, body: Callable) -> dict[str, dict]:
    """The spans ``body`` ended, handed over in one export (as a BatchSpanProcessor does); spans
    whose parent never comes are released once ``parent_wait`` has passed."""
    clock = FakeClock()
    exporter = front_with_clock(
        LangSmithSpanExporter, clock, endpoint=receiver.url, api_key=receiver.api_key, parent_wait=5.0
    )
    exporter.export(ended_spans(body))
    clock.advance(60)
    exporter.force_flush(10_000)
    exporter.shutdown()
    return {run["name"]: run for run in receiver.runs.values()}


FRONTS = {"processor": through_processor, "exporter": through_exporter}


# -- 1. extract: whatever the carrier holds, it never raises ---------------------------------------------


def _valid_header() -> str:
    return header_of((now_us() - SEC, new_id()))


ODD_CARRIERS: dict[str, Callable[[], object]] = {
    # Values that are not text: bytes (Kafka and gRPC metadata hand them over), numbers, None.
    "a bytes trace header": lambda: {"langsmith-trace": _valid_header().encode()},
    "a number as trace header": lambda: {"langsmith-trace": 20231114},
    "a list holding None": lambda: {"langsmith-trace": [None]},
    "a bytes baggage": lambda: {"langsmith-trace": _valid_header(), "baggage": b"langsmith-project=p"},
    "a baggage list holding None": lambda: {"langsmith-trace": _valid_header(), "baggage": [None, "a=b"]},
    # Carriers that are not mappings at all.
    "None": lambda: None,
    "a list of pairs": lambda: [("langsmith-trace", _valid_header())],
    "a string": lambda: "langsmith-trace: x",
}


@pytest.mark.parametrize("case", list(ODD_CARRIERS))
def test_extract_never_raises_whatever_the_carrier_holds(case):
    carrier = ODD_CARRIERS[case]()
    context = LangSmithPropagator().extract(carrier)  # type: ignore[arg-type]
    assert isinstance(context, otel_context.Context)


# -- 2. hostile trace headers, end to end through the processor --------------------------------------------


def _hostile_headers() -> dict[str, Callable[[], dict]]:
    def digits(text: str, zero: str) -> str:
        return text.translate(str.maketrans("0123456789", "".join(chr(ord(zero) + i) for i in range(10))))

    def base() -> tuple[int, str]:
        return now_us() - SEC, new_id()

    def project(header: str, **baggage: str) -> dict:
        items = {"langsmith-project": "caller", **baggage}
        return {"langsmith-trace": header, "baggage": ",".join(f"{k}={v}" for k, v in items.items())}

    rid = new_id()
    return {
        "year 0000": lambda: project("00000101T000000000000Z" + rid),
        "year 9999": lambda: project("99991231T235959999999Z" + rid),
        "month 13": lambda: project("20231301T000000000000Z" + rid),
        "second 61": lambda: project("20231231T235961000000Z" + rid),
        "before 1970": lambda: project("19000101T000000000000Z" + rid),
        "root before 1970, caller now": lambda: project(header_of((-70 * 365 * 86400 * SEC, rid), base())),
        "fullwidth digits": lambda: project(digits(header_of(base()), "\uff10")),
        "arabic-indic digits": lambda: project(digits(header_of(base()), "\u0660")),
        "a run id that is not a UUID": lambda: project(ids.segment_time(now_us() - SEC) + "z" * 36),
        "a run id of hyphens": lambda: project(ids.segment_time(now_us() - SEC) + "-" * 36),
        "a run id of 33 hex digits": lambda: project(
            ids.segment_time(now_us() - SEC) + "0123-4567-89ab-cdef" + "0" * 17
        ),
        "lower-case t and z": lambda: project(header_of(base()).lower()),
        "five fractional digits": lambda: project("20231114T22132012345Z" + rid),
        "padded with spaces and tabs": lambda: project(" \t" + header_of(base()) + " \t"),
        "a trailing dot": lambda: project(header_of(base()) + "."),
        "an empty segment": lambda: project(header_of(base()) + ".." + header_of(base())),
        "140 segments": lambda: project(header_of(*[(now_us() - 200 * SEC + i, new_id()) for i in range(140)])),
        "a run id repeated": lambda: project(header_of((now_us() - 2 * SEC, rid), (now_us() - SEC, rid))),
        "one instant for every segment": lambda: project(header_of(*[(now_us() - SEC, new_id()) for _ in range(5)])),
        "a duplicate header, the first bad": lambda: {"langsmith-trace": ["garbage", header_of(base())]},
        "a duplicate header, the second bad": lambda: {"langsmith-trace": [header_of(base()), "garbage"]},
        "a duplicate baggage": lambda: {
            "langsmith-trace": header_of(base()),
            "baggage": ["langsmith-project=first", "langsmith-project=second,langsmith-tags=a%2Cb"],
        },
        "two thousand baggage entries": lambda: project(header_of(base()), **{f"k{i}": "v" for i in range(2000)}),
        "two thousand tags": lambda: project(
            header_of(base()), **{"langsmith-tags": ",".join("t" * 3 for _ in range(2000))}
        ),
        "malformed percent-encoding": lambda: project(
            header_of(base()),
            **{"langsmith-metadata": "%7B%22a%22%3A%ZZ%7D", "langsmith-tags": "%", "langsmith-project": "%E2%82"},
        ),
        "metadata a list": lambda: project(header_of(base()), **{"langsmith-metadata": "%5B1%2C2%5D"}),
        "metadata a number": lambda: project(header_of(base()), **{"langsmith-metadata": "42"}),
        "metadata a string": lambda: project(header_of(base()), **{"langsmith-metadata": "%22x%22"}),
        "metadata null": lambda: project(header_of(base()), **{"langsmith-metadata": "null"}),
        "metadata a huge number": lambda: project(
            header_of(base()), **{"langsmith-metadata": quote('{"n":1e400,"m":' + "9" * 400 + "}")}
        ),
        "metadata naming the bridge's keys": lambda: project(
            header_of(base()),
            **{
                "langsmith-metadata": quote(
                    '{"OTEL_SPAN_ID":"forged","OTEL_TRACE_ID":"forged","OTEL_PARENT_MISSING":1}'
                )
            },
        ),
        "tags with commas, quotes and control characters": lambda: project(
            header_of(base()), **{"langsmith-tags": "a%2Cb%2C%00%2C%0D%0A%2C%22q%22%2C%20%20"}
        ),
        "a project of spaces": lambda: project(header_of(base()), **{"langsmith-project": "%20%20"}),
        "a project of invalid UTF-8": lambda: project(header_of(base()), **{"langsmith-project": "%ED%A0%80%FF"}),
    }


HEADERS = _hostile_headers()


@pytest.mark.parametrize("case", list(HEADERS))
def test_hostile_trace_headers_never_cost_a_run_under_the_processor(langsmith_receiver, case):
    carrier = HEADERS[case]()
    context = LangSmithPropagator().extract(carrier)
    parent = propagation.remote_parent(context)
    spans = {}

    def body(tracer) -> None:
        with tracer.start_as_current_span("handler", context=context) as handler:
            spans["handler"] = handler
            with tracer.start_as_current_span("step") as step:
                spans["step"] = step

    runs = through_processor(langsmith_receiver, body)
    assert sorted(runs) == ["handler", "step"]
    handler, step = runs["handler"], runs["step"]
    assert_under(step, handler)
    if parent is None:
        assert handler.get("parent_run_id") is None and handler["trace_id"] == handler["id"]
    else:
        assert handler["parent_run_id"] == parent.run_id and handler["trace_id"] == parent.trace_id
        assert handler["dotted_order"].rpartition(".")[0] == parent.dotted_order
        assert handler["dotted_order"].isascii()
    # The bridge's own metadata names the real span, whatever the caller's metadata says.
    metadata = handler["extra"]["metadata"]
    context = spans["handler"].get_span_context()
    assert metadata["OTEL_SPAN_ID"] == ids.span_hex(context.span_id)
    assert metadata["OTEL_TRACE_ID"] == ids.trace_hex(context.trace_id)
    assert_accepted(langsmith_receiver, remote={parent.run_id} if parent else set())


@pytest.mark.parametrize("traceparent", [True, False], ids=["with traceparent", "langsmith-trace alone"])
@pytest.mark.parametrize("case", ["a trace header alone", "year 9999", "140 segments", "metadata a list"])
def test_hostile_trace_headers_never_cost_a_run_under_the_exporter(langsmith_receiver, case, traceparent):
    carrier = HEADERS[case]() if case in HEADERS else {"langsmith-trace": _valid_header()}
    if traceparent:
        carrier = {**carrier, "traceparent": TRACEPARENT}
    propagator = CompositePropagator([TraceContextTextMapPropagator(), LangSmithPropagator()])
    context = propagator.extract(carrier)

    def body(tracer) -> None:
        with tracer.start_as_current_span("handler", context=context), tracer.start_as_current_span("step"):
            pass

    runs = through_exporter(langsmith_receiver, body)
    assert sorted(runs) == ["handler", "step"]
    assert_under(runs["step"], runs["handler"])
    assert runs["handler"].get("parent_run_id") is None
    assert_accepted(langsmith_receiver)


# -- 3. inject: from spans in odd states, with what they and their caller carry -------------------------------


def _deep_remote(tracer) -> object:
    """A request from a caller whose baggage metadata is nested 300 deep (1.8 kB: within limits)."""
    carrier = {
        "langsmith-trace": _valid_header(),
        "baggage": "langsmith-metadata=" + '{"a":' * 300 + "1" + "}" * 300,
    }
    return tracer.start_as_current_span("handler", context=LangSmithPropagator().extract(carrier))


INJECT_CASES: dict[str, Callable] = {
    "caller metadata nested 300 deep": _deep_remote,
    "metadata with a lone surrogate": lambda tracer: tracer.start_as_current_span(
        "handler", attributes={"langsmith.metadata.user": "caf\ud800"}
    ),
    "metadata with a 70-bit integer": lambda tracer: tracer.start_as_current_span(
        "handler", attributes={"langsmith.metadata.n": 2**70}
    ),
    "metadata JSON nested 300 deep": lambda tracer: tracer.start_as_current_span(
        "handler", attributes={"langsmith.metadata.doc": "[" * 300 + "]" * 300}
    ),
    "a project with a lone surrogate": lambda tracer: tracer.start_as_current_span(
        "handler", attributes={"langsmith.trace.session_name": "proj\ud800"}
    ),
    "a tag with a lone surrogate": lambda tracer: tracer.start_as_current_span(
        "handler", attributes={"langsmith.span.tags": ["ok", "t\udfff"]}
    ),
}


@pytest.mark.parametrize("case", list(INJECT_CASES))
def test_inject_never_raises_whatever_the_span_or_its_caller_carries(langsmith_receiver, case):
    provider, processor = processor_for(langsmith_receiver)
    tracer = provider.get_tracer("inject")
    carrier: dict[str, str] = {}
    failure: BaseException | None = None
    with INJECT_CASES[case](tracer):
        try:
            LangSmithPropagator().inject(carrier)  # an outgoing call from the request's handler
        except Exception as exc:
            failure = exc
    assert processor.force_flush(10_000)
    provider.shutdown()
    assert failure is None, f"inject raised {type(failure).__name__}: {failure}"
    (handler,) = langsmith_receiver.runs.values()
    assert carrier.get("langsmith-trace") == handler["dotted_order"]
    assert langsmith_receiver.rejected == []


def test_inject_after_end_from_another_thread_and_after_shutdown(langsmith_receiver):
    provider, processor = processor_for(langsmith_receiver)
    tracer = provider.get_tracer("inject")
    propagator = LangSmithPropagator()
    with tracer.start_as_current_span("root") as root, tracer.start_as_current_span("step") as step:
        step_context = trace.set_span_in_context(step)
    ended: dict[str, str] = {}
    propagator.inject(ended, context=step_context)  # after the span ended
    threaded: dict[str, str] = {}
    failures: list[BaseException] = []

    def other() -> None:
        try:
            propagator.inject(threaded, context=step_context)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    open_before = tracer.start_span("open-before-shutdown", context=trace.set_span_in_context(root))
    assert processor.force_flush(10_000)
    processor.shutdown()
    after: dict[str, str] = {}
    late: dict[str, str] = {}
    propagator.inject(after, context=trace.set_span_in_context(open_before))
    with tracer.start_as_current_span("after-shutdown"):
        propagator.inject(late)
    open_before.end()
    assert failures == []
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert ended["langsmith-trace"] == threaded["langsmith-trace"] == runs["step"]["dotted_order"]
    assert_under(runs["step"], runs["root"])
    # Shut down: no header, or the right one (the open span was posted in progress at shutdown).
    assert after.get("langsmith-trace") in (None, runs["open-before-shutdown"]["dotted_order"])
    assert "langsmith-trace" not in late
    assert_accepted(langsmith_receiver)


def test_a_service_that_forwards_a_request_without_a_span_of_its_own_forwards_its_langsmith_parent(
    langsmith_receiver,
):
    # A proxy or a queue producer: it extracts the caller's headers, attaches the context and
    # injects into the outgoing call without starting a span. traceparent and baggage pass through;
    # the caller's LangSmith run must too, or the next service starts a LangSmith trace of its own.
    provider, _ = processor_for(langsmith_receiver)  # the propagator's registry of places
    propagator = CompositePropagator([TraceContextTextMapPropagator(), LangSmithPropagator()])
    header = _valid_header()
    incoming = {"traceparent": TRACEPARENT, "langsmith-trace": header, "baggage": "langsmith-project=caller"}
    token = otel_context.attach(propagator.extract(incoming))
    try:
        outgoing: dict[str, str] = {}
        propagator.inject(outgoing)
    finally:
        otel_context.detach(token)
    provider.shutdown()
    assert outgoing["traceparent"] == TRACEPARENT
    assert outgoing.get("langsmith-trace") == header


# -- 4. explicit identity attributes, through both fronts -------------------------------------------------------


@pytest.mark.parametrize("front", list(FRONTS))
def test_a_span_naming_itself_as_its_parent_is_a_run_of_its_own(langsmith_receiver, front):
    me = new_id()

    def body(tracer) -> None:
        with tracer.start_as_current_span("root"):
            with tracer.start_as_current_span(
                "self", attributes={"langsmith.span.id": me, "langsmith.span.parent_id": me}
            ):
                with tracer.start_as_current_span("leaf"):
                    pass

    runs = FRONTS[front](langsmith_receiver, body)
    assert sorted(runs) == ["leaf", "root", "self"]
    assert runs["self"]["id"] == me and runs["self"].get("parent_run_id") != me
    assert_under(runs["leaf"], runs["self"])
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("front", list(FRONTS))
def test_two_spans_naming_each_other_as_parent_make_no_cycle(langsmith_receiver, front):
    a, b = new_id(), new_id()

    def body(tracer) -> None:
        with tracer.start_as_current_span("root"):
            with tracer.start_as_current_span("a", attributes={"langsmith.span.id": a, "langsmith.span.parent_id": b}):
                pass
            with tracer.start_as_current_span("b", attributes={"langsmith.span.id": b, "langsmith.span.parent_id": a}):
                pass

    runs = FRONTS[front](langsmith_receiver, body)
    assert sorted(runs) == ["a", "b", "root"]
    assert {runs["a"].get("parent_run_id"), runs["b"].get("parent_run_id")} & {a, b} != {a, b}
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("front", list(FRONTS))
def test_a_parent_id_that_never_arrives_sends_the_run_and_says_so(langsmith_receiver, front, caplog):
    ghost = new_id()

    def body(tracer) -> None:
        with tracer.start_as_current_span("root"):
            for index in range(20):
                with tracer.start_as_current_span(f"orphan-{index}", attributes={"langsmith.span.parent_id": ghost}):
                    with tracer.start_as_current_span(f"leaf-{index}"):
                        pass

    with caplog.at_level(logging.DEBUG, logger="otel_langsmith"):
        runs = FRONTS[front](langsmith_receiver, body)
    assert len(runs) == 41
    for index in range(20):
        assert_under(runs[f"leaf-{index}"], runs[f"orphan-{index}"])
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(ghost in message for message in warnings), warnings
    assert len(warnings) <= 3, warnings  # one line for twenty spans, not twenty
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("front", list(FRONTS))
def test_a_dotted_order_contradicting_the_parent_id_wins_and_the_run_is_accepted(langsmith_receiver, front):
    said_parent, real_parent, me = new_id(), new_id(), new_id()
    start = now_us() - SEC
    dotted = header_of((start, real_parent), (start + 1, me))

    def body(tracer) -> None:
        with tracer.start_as_current_span("root"):
            with tracer.start_as_current_span(
                "explicit",
                attributes={
                    "langsmith.span.dotted_order": dotted,
                    "langsmith.span.parent_id": said_parent,
                    "langsmith.span.id": me,
                    "langsmith.trace.id": said_parent,
                },
            ):
                with tracer.start_as_current_span("leaf"):
                    pass

    runs = FRONTS[front](langsmith_receiver, body)
    assert runs["explicit"]["dotted_order"] == dotted and runs["explicit"]["parent_run_id"] == real_parent
    assert runs["explicit"]["trace_id"] == real_parent
    assert_under(runs["leaf"], runs["explicit"])
    assert_accepted(langsmith_receiver, remote={real_parent})


@pytest.mark.parametrize("front", list(FRONTS))
def test_a_dotted_order_naming_its_own_run_as_parent_is_not_sent_as_its_own_child(langsmith_receiver, front):
    me = new_id()
    start = now_us() - SEC
    dotted = header_of((start, me), (start + 1, me))

    def body(tracer) -> None:
        with tracer.start_as_current_span("root"):
            with tracer.start_as_current_span("loop", attributes={"langsmith.span.dotted_order": dotted}):
                pass

    runs = FRONTS[front](langsmith_receiver, body)
    assert runs["loop"].get("parent_run_id") != runs["loop"]["id"]
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("front", list(FRONTS))
def test_a_dotted_order_naming_the_real_parent_at_another_time_keeps_the_tree(langsmith_receiver, front):
    # The parent is right, its start time is not (an SDK's clock, a rounding): the child must still
    # extend its parent's dotted order, or LangSmith cannot place it in the trace.
    spans = {}

    def body(tracer) -> None:
        with tracer.start_as_current_span("root") as root:
            spans["root"] = root
            wrong = header_of((root.start_time // 1000 - 7 * SEC, run_id_of(root)), (now_us(), new_id()))
            with tracer.start_as_current_span("child", attributes={"langsmith.span.dotted_order": wrong}):
                pass

    runs = FRONTS[front](langsmith_receiver, body)
    assert runs["child"]["parent_run_id"] == runs["root"]["id"]
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("front", list(FRONTS))
def test_a_span_claiming_its_parents_run_id_costs_no_neighbour(langsmith_receiver, front):
    def body(tracer) -> None:
        with tracer.start_as_current_span("root") as root:
            with tracer.start_as_current_span("impostor", attributes={"langsmith.span.id": run_id_of(root)}):
                pass
            with tracer.start_as_current_span("innocent"):
                pass

    runs = FRONTS[front](langsmith_receiver, body)
    assert "innocent" in runs and "root" in runs
    assert_under(runs["innocent"], runs["root"])
    assert all(run.get("parent_run_id") != run["id"] for run in langsmith_receiver.runs.values())
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("front", list(FRONTS))
def test_spans_sharing_an_explicit_id_are_runs_of_their_own_said_once(langsmith_receiver, front, caplog):
    shared = new_id()

    def body(tracer) -> None:
        with tracer.start_as_current_span("root"):
            for index in range(10):
                with tracer.start_as_current_span(f"twin-{index}", attributes={"langsmith.span.id": shared}):
                    with tracer.start_as_current_span(f"leaf-{index}"):
                        pass
            # Two more open at once, as on two threads.
            overlapping = [
                tracer.start_span(f"twin-{index}", attributes={"langsmith.span.id": shared}) for index in (10, 11)
            ]
            for index, twin in zip((10, 11), overlapping, strict=True):
                with trace.use_span(twin):
                    with tracer.start_as_current_span(f"leaf-{index}"):
                        pass
            for twin in reversed(overlapping):
                twin.end()
            with tracer.start_as_current_span("innocent"):
                pass

    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        runs = FRONTS[front](langsmith_receiver, body)
    assert len(runs) == 26  # one id for twelve runs would have sent one over the others
    twins = [runs[f"twin-{index}"] for index in range(12)]
    assert len({twin["id"] for twin in twins}) == 12 and [twin["id"] for twin in twins].count(shared) == 1
    for index, twin in enumerate(twins):
        assert_under(twin, runs["root"])
        assert_under(runs[f"leaf-{index}"], twin)
        if twin["id"] != shared:
            assert twin["extra"]["metadata"]["otel_langsmith_duplicate_run_id"] == shared
    assert_under(runs["innocent"], runs["root"])
    said = [record for record in caplog.records if "another span's run has already" in record.getMessage()]
    assert 1 <= len(said) <= 2, [record.getMessage() for record in said]  # a line now and then, not one a span
    assert_accepted(langsmith_receiver)


class _OneTraceId(RandomIdGenerator):
    """Every trace the same id, as an application that derives trace ids from its job ids may do."""

    def generate_trace_id(self) -> int:
        return 0x0123456789ABCDEF0123456789ABCDEF


@pytest.mark.parametrize("front", list(FRONTS))
def test_two_roots_of_one_trace_id_are_two_runs(langsmith_receiver, front):
    def body(tracer) -> None:
        tracer.id_generator = _OneTraceId()
        for name in ("first", "second"):
            with tracer.start_as_current_span(name):
                with tracer.start_as_current_span(f"{name}-child"):
                    pass

    runs = FRONTS[front](langsmith_receiver, body)
    assert sorted(runs) == ["first", "first-child", "second", "second-child"]
    assert runs["first"]["id"] != runs["second"]["id"]
    for name in ("first", "second"):
        assert_under(runs[f"{name}-child"], runs[name])
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("front", list(FRONTS))
def test_ids_that_are_not_uuids_are_ignored_with_one_line(langsmith_receiver, front, caplog):
    def body(tracer) -> None:
        with tracer.start_as_current_span("root"):
            for index in range(30):
                attributes = {
                    "langsmith.span.id": f"run-{index}",
                    "langsmith.span.parent_id": "\x00" * 36,
                    "langsmith.trace.id": "{" + "g" * 32 + "}",
                    "langsmith.trace.session_id": f"project-{index}",
                    "langsmith.span.dotted_order": f"2023{index}",
                }
                with tracer.start_as_current_span(f"span-{index}", attributes=attributes):
                    pass

    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        runs = FRONTS[front](langsmith_receiver, body)
    assert len(runs) == 31
    for index in range(30):
        assert_under(runs[f"span-{index}"], runs["root"])
        assert runs[f"span-{index}"]["session_name"] == runs["root"]["session_name"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(warnings) <= 6, warnings
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("front", list(FRONTS))
def test_metadata_named_like_the_bridges_own_keys_does_not_forge_them(langsmith_receiver, front):
    spans = {}

    def body(tracer) -> None:
        with tracer.start_as_current_span("root"):
            attributes = {
                "langsmith.metadata.OTEL_SPAN_ID": "forged",
                "langsmith.metadata.OTEL_TRACE_ID": "forged",
                "langsmith.metadata.OTEL_PARENT_MISSING": "forged",
            }
            with tracer.start_as_current_span("child", attributes=attributes) as child:
                spans["child"] = child

    runs = FRONTS[front](langsmith_receiver, body)
    metadata = runs["child"]["extra"]["metadata"]
    context = spans["child"].get_span_context()
    assert metadata["OTEL_SPAN_ID"] == ids.span_hex(context.span_id)
    assert metadata["OTEL_TRACE_ID"] == ids.trace_hex(context.trace_id)
    assert_under(runs["child"], runs["root"])
    assert_accepted(langsmith_receiver)


def test_identity_named_after_start_never_breaks_the_tree(langsmith_receiver):
    other = new_id()

    def body(tracer) -> None:
        with tracer.start_as_current_span("root") as root:
            with tracer.start_as_current_span("step") as step:
                step.set_attribute("langsmith.span.parent_id", other)
                step.set_attribute("langsmith.span.id", run_id_of(root))
                step.set_attribute("langsmith.span.dotted_order", header_of((now_us(), other)))
                step.set_attribute("langsmith.trace.session_id", "not-a-uuid")
                with tracer.start_as_current_span("leaf"):
                    pass

    runs = through_processor(langsmith_receiver, body)
    assert sorted(runs) == ["leaf", "root", "step"]
    assert_under(runs["step"], runs["root"])
    assert_under(runs["leaf"], runs["step"])
    assert_accepted(langsmith_receiver)


# -- 5. GenAI log records with hostile bodies --------------------------------------------------------------------


def _hostile_bodies() -> dict[str, Callable[[], object]]:
    def recursive() -> dict:
        value: dict = {}
        value["self"] = value
        return {"content": value}

    def deep() -> dict:
        value: object = "bottom"
        for _ in range(1_000):
            value = {"k": value}
        return {"content": value}

    return {
        "None": lambda: None,
        "a number": lambda: 42,
        "bytes, invalid UTF-8": lambda: b"\xff\xfe",
        "a list": lambda: [1, {"content": "x"}],
        "keys that are not text": lambda: {1: "a", None: "b", "content": "hi", "role": 5},
        "values no JSON holds": lambda: {"content": "caf\ud800", "index": float("nan"), "message": {"content": 2**100}},
        "content nested 1000 deep": deep,
        "content that contains itself": recursive,
        "a megabyte of text": lambda: {"content": "x" * (1 << 20)},
        "messages that are not messages": lambda: {
            "gen_ai.input.messages": "[" * 300 + "]" * 300,
            "gen_ai.output.messages": {"not": "a list"},
            "gen_ai.system_instructions": 5,
            "gen_ai.tool.definitions": "{",
        },
    }


BODIES = _hostile_bodies()
EVENTS = ("gen_ai.user.message", "gen_ai.choice", "gen_ai.client.inference.operation.details", "gen_ai.tool.message")


@pytest.mark.parametrize("case", list(BODIES))
def test_hostile_log_bodies_cost_only_themselves(langsmith_receiver, case):
    provider, processor = processor_for(langsmith_receiver)
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(LangSmithLogProcessor())
    log = logger_provider.get_logger("hostile")
    tracer = provider.get_tracer("hostile")
    chat = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "m"}
    with tracer.start_as_current_span("agent"):
        with tracer.start_as_current_span("chat hostile", attributes=chat):
            for name in EVENTS:
                log.emit(body=BODIES[case](), event_name=name)
        with tracer.start_as_current_span("chat fine", attributes=chat):
            log.emit(body={"content": "hello"}, event_name="gen_ai.user.message")
            log.emit(body={"index": 0, "message": {"content": "hi"}}, event_name="gen_ai.choice")
    assert processor.force_flush(10_000)
    provider.shutdown()
    logger_provider.shutdown()
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert sorted(runs) == ["agent", "chat fine", "chat hostile"]
    assert runs["chat fine"]["inputs"]["messages"][0]["content"] == "hello"
    assert "hi" in str(runs["chat fine"]["outputs"])
    assert_under(runs["chat hostile"], runs["agent"])
    assert_accepted(langsmith_receiver)


def test_a_log_body_sharing_its_parts_down_300_levels_is_kept_at_once():
    # 300 small lists, each holding the one below twice: nested deeper than orjson takes, so the
    # store's size measure falls back to sanitizing, which must not walk all 2**300 paths on the
    # application's thread.
    script = textwrap.dedent(
        """
        import time
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk.trace import TracerProvider
        from otel_langsmith import LangSmithLogProcessor

        logs = LoggerProvider()
        logs.add_log_record_processor(LangSmithLogProcessor())
        value = "leaf"
        for _ in range(300):
            value = [value, value]
        with TracerProvider().get_tracer("t").start_as_current_span("chat"):
            started = time.monotonic()
            logs.get_logger("t").emit(body={"content": value}, event_name="gen_ai.user.message")
        print(f"emitted in {time.monotonic() - started:.2f}s")
        """
    )
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("LangSmithLogProcessor.on_emit did not return within 30 s")
    assert done.returncode == 0, done.stderr
    assert "emitted in" in done.stdout
