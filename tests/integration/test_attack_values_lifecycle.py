"""Attacks with values the SDK lets through and with the lifecycle's own arguments: a thread id of
megabytes inherited by every run below it, spans named ``""``, None or 42, start times and event
times of NaN and infinity, span and trace ids out of OpenTelemetry's range, ``shutdown`` with an
infinite timeout, ``process_inputs`` hooks that raise or return what is not a dict, ``ls_``
metadata larger than the server takes, and problems that repeat on thousands of spans.

Everything runs on the real OpenTelemetry SDK and reaches the package's own receiver over loopback,
through both fronts where the point holds for both: a ``LangSmithSpanExporter`` behind a
``BatchSpanProcessor``, and a ``LangSmithSpanProcessor``. The promises checked: no run is lost
(nor its neighbours), the receiver refuses nothing and finds no problem in the tree, nothing raises
into the application, and a problem that repeats is said in a few lines, not one a span."""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable, Iterator

import pytest
from helpers import FakeClock, Traced
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import set_span_in_context
from test_hostile_context import assert_under, fresh_throttles, processor_for  # noqa: F401 - fresh_throttles: autouse

from otel_langsmith import LangSmithSpanProcessor
from otel_langsmith._throttle import Throttled
from otel_langsmith.testing import LangSmithReceiver

FRONTS = ("exporter", "processor")
MiB = 1 << 20


# -- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_log_throttles() -> None:
    """Lines throttled for the whole process (a module's ``Throttled``) are fresh for each test:
    what one test said must not silence the next."""
    for name, module in list(sys.modules.items()):
        if name == "otel_langsmith" or name.startswith("otel_langsmith."):
            for value in list(vars(module).values()):
                if isinstance(value, Throttled):
                    value.reset()


def Front(receiver: LangSmithReceiver, front: str, **options) -> Traced:
    """A :class:`Traced` front sending to ``receiver``, with its key unless ``options`` say otherwise."""
    return Traced(front, **{"endpoint": receiver.url, "api_key": receiver.api_key, **options})


@pytest.fixture
def open_front() -> Iterator[Callable[..., Traced]]:
    """``open_front(receiver, front, **options)``: a :class:`Front`, shut down after the test at the latest."""
    made: list[Traced] = []

    def make(receiver: LangSmithReceiver, front: str, **options) -> Traced:
        made.append(Front(receiver, front, **options))
        return made[-1]

    yield make
    for front in made:
        front.shutdown()


@pytest.fixture
def small_receiver() -> Iterator[LangSmithReceiver]:
    """A receiver that advertises 2 MiB a request and refuses (413) any larger body."""
    with LangSmithReceiver(size_limit_bytes=2 * MiB) as receiver:
        receiver.byte_limit = 2 * MiB
        yield receiver


def by_name(receiver: LangSmithReceiver) -> dict[str, dict]:
    runs: dict[str, dict] = {}
    for run in receiver.runs.values():
        assert run["name"] not in runs, f"two runs named {run['name']!r}"
        runs[run["name"]] = run
    return runs


def assert_accepted(receiver: LangSmithReceiver) -> None:
    assert receiver.rejected == [], [(r.status, r.message[:200]) for r in receiver.rejected]
    assert receiver.problems() == []


def said(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING, since: int = 0) -> list[str]:
    """The package's lines at ``level`` or above, from the ``since``-th record captured on."""
    return [
        record.getMessage()[:300]
        for record in caplog.records[since:]
        if record.name.startswith("otel_langsmith") and record.levelno >= level
    ]


# -- 1. a thread or user id of megabytes, inherited by every run below it --------------------------------------

# (attribute, the metadata keys the runs below inherit from it)
THREAD_KEYS = {
    "session.id": ("session_id", "thread_id"),  # OpenInference
    "gen_ai.conversation.id": ("session_id", "thread_id"),  # GenAI semantic conventions
    "user.id": ("user_id",),  # OpenInference
}


@pytest.mark.parametrize("attribute", list(THREAD_KEYS))
@pytest.mark.parametrize("front", FRONTS)
def test_a_thread_id_of_megabytes_costs_no_run_and_is_cut_alike_for_every_child(
    langsmith_receiver, open_front, caplog, front, attribute
):
    huge = os.urandom(2_500_000).hex()  # 5 MB of text, on one span; 30 runs inherit it
    traced = open_front(langsmith_receiver, front)
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        for index in range(20):  # neighbours: ordinary traces, beside it
            with traced.tracer.start_as_current_span(f"neighbour-{index}"):
                pass
        with traced.tracer.start_as_current_span("conversation", attributes={attribute: huge}):
            for index in range(30):
                with traced.tracer.start_as_current_span(f"step-{index}"):
                    pass
        traced.shutdown()
    runs = by_name(langsmith_receiver)
    assert len(runs) == 51, sorted(runs)
    assert traced.sink.stats().dropped == {}
    for key in THREAD_KEYS[attribute]:
        inherited = {runs[f"step-{index}"]["extra"]["metadata"].get(key) for index in range(30)}
        assert len(inherited) == 1, f"the children's {key} differ: they no longer group together"
        (value,) = inherited
        assert isinstance(value, str) and 0 < len(value) <= 1024, (key, None if value is None else len(value))
        assert huge.startswith(value), key
    for index in range(30):
        assert_under(runs[f"step-{index}"], runs["conversation"])
    warnings = said(caplog)
    assert 1 <= len(warnings) <= 3, warnings  # a line about it, not one a span
    assert_accepted(langsmith_receiver)


# -- 2. spans named "", None or 42 -------------------------------------------------------------------------------


@pytest.mark.parametrize("front", FRONTS)
def test_a_span_named_empty_keeps_its_inputs_and_its_child(langsmith_receiver, open_front, front):
    traced = open_front(langsmith_receiver, front)
    with traced.tracer.start_as_current_span("request"):
        with traced.tracer.start_as_current_span("", attributes={"input.value": "what the user asked"}):
            with traced.tracer.start_as_current_span("db query"):
                pass
    traced.shutdown()
    runs = by_name(langsmith_receiver)
    assert sorted(runs) == ["db query", "request", "unnamed span"]
    unnamed = runs["unnamed span"]
    assert unnamed["inputs"] == {"input": "what the user asked"}
    assert_under(unnamed, runs["request"])
    assert runs["db query"]["parent_run_id"] == unnamed["id"]
    assert_under(runs["db query"], unnamed)
    assert_accepted(langsmith_receiver)


@pytest.mark.parametrize("front", FRONTS)
def test_spans_named_none_or_a_number_keep_their_inputs(langsmith_receiver, open_front, front):
    traced = open_front(langsmith_receiver, front)
    for name in ("ok", None, 42):
        attributes = {"input.value": f"question {name}", "output.value": f"answer {name}"}
        traced.tracer.start_span(name, attributes=attributes).end()  # type: ignore[arg-type]
    traced.shutdown()
    runs = by_name(langsmith_receiver)
    assert sorted(runs) == ["42", "ok", "unnamed span"]
    for run_name, name in (("ok", "ok"), ("unnamed span", None), ("42", 42)):
        assert runs[run_name]["inputs"] == {"input": f"question {name}"}, run_name
        assert runs[run_name]["outputs"] == {"output": f"answer {name}"}, run_name
    assert_accepted(langsmith_receiver)


# -- 3. shutdown with a timeout no clock can add -------------------------------------------------------------------

ENDLESS = {"inf": math.inf, "1e300": 1e300, "10**30": 10**30}


@pytest.mark.parametrize("timeout", list(ENDLESS))
def test_a_processor_shut_down_with_an_endless_timeout_delivers_what_it_holds(langsmith_receiver, timeout):
    processor = LangSmithSpanProcessor(
        endpoint=langsmith_receiver.url, api_key=langsmith_receiver.api_key, flush_interval=3600
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    try:
        for index in range(5):
            provider.get_tracer("attack").start_span(f"held-{index}").end()
        assert langsmith_receiver.runs == {}  # held: the flush interval is an hour away
        processor.shutdown(timeout_millis=ENDLESS[timeout])  # "as long as it takes": it must not raise
        assert sorted(by_name(langsmith_receiver)) == [f"held-{index}" for index in range(5)]
        assert processor.stats().dropped == {}
        assert_accepted(langsmith_receiver)
    finally:
        provider.shutdown()


@pytest.mark.parametrize("timeout", list(ENDLESS))
def test_an_exporter_shut_down_with_an_endless_timeout_sends_children_still_waiting(langsmith_receiver, timeout):
    exporter = langsmith_receiver.exporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("attack")
    parent = tracer.start_span("parent")  # never ends: its children wait for it in the exporter
    try:
        for index in range(5):
            tracer.start_span(f"child-{index}", context=set_span_in_context(parent)).end()
        assert provider.force_flush(10_000)
        assert exporter.stats().waiting == 5
        exporter.shutdown(timeout_millis=ENDLESS[timeout])  # must not raise; the waiting go as roots
        assert sorted(by_name(langsmith_receiver)) == [f"child-{index}" for index in range(5)]
        assert exporter.stats().dropped == {}
        assert langsmith_receiver.rejected == []
    finally:
        provider.shutdown()


# -- 4. problems that repeat on thousands of spans ------------------------------------------------------------------


@pytest.mark.parametrize("front", FRONTS)
def test_invalid_utf8_under_one_key_after_a_thousand_keys_is_said_a_few_times(
    langsmith_receiver, open_front, caplog, front
):
    traced = open_front(langsmith_receiver, front)
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        # An application whose attribute names vary (one per upload), each holding bytes that are not UTF-8.
        for index in range(1100):
            attributes = {f"upload.{index}.digest": b"\xff" + index.to_bytes(4, "big")}
            traced.tracer.start_span("upload", attributes=attributes).end()
        traced.flush()
        before = len(caplog.records)
        # Then one key, always the same.
        for _ in range(2000):
            traced.tracer.start_span("req", attributes={"payload.raw": b"\xff\xfe"}).end()
        traced.shutdown()
    assert sum(run["name"] == "req" for run in langsmith_receiver.runs.values()) == 2000
    warnings = said(caplog, since=before)
    assert len(warnings) <= 3, (len(warnings), warnings[:5])


def test_two_thousand_spans_open_past_their_ttl_are_said_a_few_times(langsmith_receiver, caplog):
    clock = FakeClock()
    provider, processor = processor_for(langsmith_receiver, clock, live_after=600, open_span_ttl=60)
    tracer = provider.get_tracer("attack")
    leaked = [tracer.start_span(f"stream-{index}") for index in range(2000)]  # never ended
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        processor._pipeline.tick()
        assert said(caplog) == []
        clock.advance(61)
        processor._pipeline.tick()
    assert processor.stats().evicted == len(leaked)
    warnings = said(caplog)
    assert 1 <= len(warnings) <= 3, (len(warnings), warnings[:5])
    provider.shutdown()


def _scrub(inputs: dict) -> dict:
    """An ordinary redaction hook, written for text values: it raises on the number every input holds."""
    return {key: value.replace("secret", "***") for key, value in inputs.items()}


@pytest.mark.parametrize("front", FRONTS)
def test_a_hook_that_raises_on_every_run_hides_inputs_and_is_said_a_few_times(
    langsmith_receiver, open_front, caplog, front
):
    traced = open_front(langsmith_receiver, front, process_inputs=_scrub)
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        for index in range(500):
            attributes = {"input.value": f'{{"query": "secret {index}", "k": {index}}}', "output.value": "fine"}
            traced.tracer.start_span(f"s{index}", attributes=attributes).end()
        traced.shutdown()
    runs = by_name(langsmith_receiver)
    assert len(runs) == 500
    for run in runs.values():
        assert run.get("inputs") == {}, (run["name"], run.get("inputs"))  # privacy fails closed
        assert run.get("outputs") == {"output": "fine"}
    errors = said(caplog, logging.ERROR)
    assert len(errors) <= 3, (len(errors), errors[:5])
    assert said(caplog), "a hook that fails on every run must be said at least once"
    assert_accepted(langsmith_receiver)


# -- 5. ls_ metadata larger than the server takes -------------------------------------------------------------------


@pytest.mark.parametrize("front", FRONTS)
def test_metadata_of_megabytes_is_shrunk_to_fit_whatever_its_key(small_receiver, open_front, front):
    big = os.urandom(3 * MiB).hex()  # 6 MiB of text: three times what one request may carry
    traced = open_front(small_receiver, front)
    for name, attributes in {
        "ordinary": {"note": big},
        "ls-attribute": {"ls_note": big},  # an ``ls_`` metadata key, as LangSmith names its own
        "ls-metadata": {"langsmith.metadata.ls_note": big},
        "neighbour": {"input.value": "small"},
    }.items():
        traced.tracer.start_span(name, attributes=attributes).end()
    traced.shutdown()
    runs = by_name(small_receiver)
    assert sorted(runs) == ["ls-attribute", "ls-metadata", "neighbour", "ordinary"]
    stats = traced.sink.stats()
    assert stats.dropped == {} and stats.runs_refused == 0, stats
    assert runs["neighbour"]["inputs"] == {"input": "small"}
    assert small_receiver.problems() == []


# -- 6. a process_inputs hook that returns what is not a dict -------------------------------------------------------

NOT_A_DICT: dict[str, Callable[[dict], object]] = {
    "text": str,
    "a list": lambda inputs: list(inputs.values()),
}


@pytest.mark.parametrize("returned", list(NOT_A_DICT))
@pytest.mark.parametrize("front", FRONTS)
def test_a_hook_returning_a_non_dict_sends_it_under_input(langsmith_receiver, open_front, front, returned):
    hook = NOT_A_DICT[returned]
    traced = open_front(langsmith_receiver, front, process_inputs=hook)
    for index in range(50):
        attributes = {"input.value": f'{{"query": "q-{index}", "k": {index}}}'}
        traced.tracer.start_span(f"s{index}", attributes=attributes).end()
    traced.shutdown()
    runs = by_name(langsmith_receiver)
    assert len(runs) == 50
    for index in range(50):
        assert runs[f"s{index}"]["inputs"] == {"input": hook({"query": f"q-{index}", "k": index})}
    assert traced.sink.stats().dropped == {}
    assert_accepted(langsmith_receiver)


# -- 7. a start time of infinity or NaN ------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [math.inf, math.nan], ids=["inf", "nan"])
@pytest.mark.parametrize("front", FRONTS)
def test_a_step_starting_at_infinity_or_nan_keeps_its_place_in_the_tree(langsmith_receiver, open_front, front, start):
    traced = open_front(langsmith_receiver, front)
    with traced.tracer.start_as_current_span("root"):
        step = traced.tracer.start_span("step", start_time=start)  # type: ignore[arg-type]
        with traced.tracer.start_as_current_span("child", context=set_span_in_context(step)):
            pass
        step.end()
    traced.shutdown()
    runs = by_name(langsmith_receiver)
    assert sorted(runs) == ["child", "root", "step"]
    assert runs["step"].get("parent_run_id") == runs["root"]["id"]
    assert runs["child"].get("parent_run_id") == runs["step"]["id"]
    assert traced.sink.stats().dropped == {}
    assert_accepted(langsmith_receiver)


# -- 8. an event at NaN -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("front", FRONTS)
def test_an_event_at_nan_costs_no_other_event(langsmith_receiver, open_front, front):
    traced = open_front(langsmith_receiver, front)
    span = traced.tracer.start_span("chat", attributes={"input.value": "question"})
    span.add_event("first")
    span.add_event("second", timestamp=math.nan)  # type: ignore[arg-type]
    span.add_event("third")
    span.end()
    traced.shutdown()
    run = by_name(langsmith_receiver)["chat"]
    names = [event.get("name") for event in run.get("events") or []]
    assert len(names) >= 2 and {"first", "third"} <= set(names), run.get("events")
    assert run["inputs"] == {"input": "question"}
    assert_accepted(langsmith_receiver)


# -- 9. ids out of OpenTelemetry's range --------------------------------------------------------------------------


class HostileIds(IdGenerator):
    """Random ids, but for the ones queued: handed out first, one a call (as a buggy generator would)."""

    def __init__(self) -> None:
        self.random = RandomIdGenerator()
        self.span_ids: list[int] = []
        self.trace_ids: list[int] = []

    def generate_span_id(self) -> int:
        return self.span_ids.pop(0) if self.span_ids else self.random.generate_span_id()

    def generate_trace_id(self) -> int:
        return self.trace_ids.pop(0) if self.trace_ids else self.random.generate_trace_id()


HOSTILE_IDS = {"-1": -1, "2**64": 2**64, "2**128": 2**128}
# Which id is out of range: the trace's (root and child), the root span's, or the child span's.
WHERE = ("trace", "root span", "child span")


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("value", list(HOSTILE_IDS))
@pytest.mark.parametrize("front", FRONTS)
def test_ids_out_of_range_cost_no_run_and_no_neighbour(langsmith_receiver, open_front, front, value, where):
    ids = HostileIds()
    traced = open_front(langsmith_receiver, front, id_generator=ids)
    tracer = traced.tracer

    def neighbours(indices: range) -> None:
        for index in indices:
            with tracer.start_as_current_span(f"good-{index}"):
                with tracer.start_as_current_span(f"goodchild-{index}"):
                    pass

    neighbours(range(3))
    hostile = HOSTILE_IDS[value]
    if where == "trace":
        ids.trace_ids.append(hostile)
    elif where == "root span":
        ids.span_ids.append(hostile)
    else:
        ids.span_ids.extend([ids.random.generate_span_id(), hostile])
    with tracer.start_as_current_span("hostile-root"):
        with tracer.start_as_current_span("hostile-child"):
            pass
    assert ids.span_ids == [] and ids.trace_ids == []  # the SDK took them
    neighbours(range(3, 6))
    traced.shutdown()
    runs = by_name(langsmith_receiver)
    expected = {f"{kind}-{index}" for kind in ("good", "goodchild") for index in range(6)}
    assert sorted(runs) == sorted(expected | {"hostile-root", "hostile-child"})
    for index in range(6):
        assert_under(runs[f"goodchild-{index}"], runs[f"good-{index}"])
    if where == "child span":  # the root's context is valid: the child is its child
        assert_under(runs["hostile-child"], runs["hostile-root"])
    assert traced.sink.stats().dropped == {}
    assert_accepted(langsmith_receiver)
