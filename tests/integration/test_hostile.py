"""Hostile spans: every attribute type, invalid JSON where JSON is expected, lone surrogates, NaN and
infinities, huge and deep values, thousands of events. The exporter never raises, and everything it
sends is accepted by the receiver."""

from __future__ import annotations

import math

from helpers import ended_spans
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export import SpanExportResult

from otel_langsmith import _ids as ids

# Every code point, lone surrogates made common (``st.text`` never produces them: build from code points).
any_text = st.lists(
    st.one_of(st.integers(0xD800, 0xDFFF), st.integers(0, 0x10FFFF), st.integers(0x20, 0x7E)), max_size=40
).map(lambda code_points: "".join(map(chr, code_points)))
looks_like_json = st.one_of(
    any_text.map(lambda t: "{" + t),
    any_text.map(lambda t: "[" + t),
    st.just('{"a": NaN, "b": Infinity}'),
    st.just('{"deep": ' * 300 + "1" + "}" * 300),
    st.just("123456789012345678901234567890"),
    st.just('{"ok": true}'),
)
scalars = st.one_of(
    any_text,
    st.binary(max_size=40),
    st.integers(),  # beyond 64 bits too
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
json_keys = st.sampled_from(
    [
        "input.value",
        "output.value",
        "gen_ai.prompt",
        "gen_ai.completion",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "langsmith.metadata.blob",
        "langsmith.span.tags",
        "langsmith.span.kind",
        "langsmith.trace.name",
        "langsmith.trace.session_name",
    ]
)
attributes = st.dictionaries(
    st.one_of(json_keys, st.text(min_size=1, max_size=12)),
    st.one_of(values, looks_like_json),
    max_size=8,
)
events = st.lists(st.tuples(any_text, st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=3)), max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(root_attributes=attributes, child_attributes=attributes, child_events=events, name=any_text)
def test_hostile_attributes_never_raise_and_are_accepted(
    receiver, exporter, root_attributes, child_attributes, child_events, name
):
    def body(tracer):
        with tracer.start_as_current_span(name or "x", attributes=root_attributes):
            with tracer.start_as_current_span("child", attributes=child_attributes) as child:
                for event_name, event_attributes in child_events:
                    child.add_event(event_name, event_attributes)

    spans = ended_spans(body)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    assert receiver.rejected == []
    runs = receiver.runs
    root_id = ids.root_run_id(spans[0].context.trace_id)
    child_id = ids.span_run_id(spans[0].context.span_id)
    assert root_id in runs and child_id in runs
    assert runs[child_id]["parent_run_id"] == root_id


def test_values_of_tens_of_megabytes_thousands_of_events_and_deep_nesting(receiver, exporter):
    deep: dict = {}
    cursor = deep
    for _ in range(400):
        cursor["next"] = {}
        cursor = cursor["next"]

    def body(tracer):
        with tracer.start_as_current_span("big", attributes={"input.value": "x" * (40 * 1024 * 1024)}) as span:
            span.set_attribute("deep", deep)
            span.set_attribute("nan", math.nan)
            span.set_attribute("inf", -math.inf)
            span.set_attribute("huge.int", 2**100)
            for index in range(5_000):
                span.add_event(f"event-{index}", {"index": index})

    spans = ended_spans(body)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    assert receiver.rejected == []
    run = receiver.runs[ids.root_run_id(spans[0].context.trace_id)]
    # The SDK keeps the last 128 events by default; every one it kept arrived.
    assert len(run["events"]) == len(spans[0].events)
    assert run["extra"]["metadata"]["nan"] is None and run["extra"]["metadata"]["huge.int"] == str(2**100)
    assert run["extra"]["metadata"]["otel_langsmith_truncated"]["inputs"] > 40 * 1024 * 1024


def test_one_hostile_number_costs_only_itself(receiver, exporter):
    # Found here: a token count of infinity or "1e400" raised OverflowError, and an index of 5,000
    # digits ValueError (int() refuses such texts): the whole span went with its name and times only.
    huge = "1" * 5000
    user = '[{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]'

    def body(tracer):
        chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.input.messages": user}
        with tracer.start_as_current_span("chat gpt-4o", attributes=chat) as span:
            span.set_attribute("gen_ai.usage.input_tokens", math.inf)
            span.set_attribute("gen_ai.usage.output_tokens", "1e400")
        documents = {
            "openinference.span.kind": "RETRIEVER",
            "retrieval.documents.0.document.content": "kept",
            f"retrieval.documents.{huge}.document.content": "hostile",
        }
        tracer.start_span("retrieve", attributes=documents).end()
        messages = {
            "openinference.span.kind": "LLM",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "kept too",
            f"llm.input_messages.{huge}.message.role": "user",
        }
        tracer.start_span("llm", attributes=messages).end()

    spans = ended_spans(body)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    assert receiver.rejected == []
    chat, retrieve, llm = (receiver.runs[ids.root_run_id(span.context.trace_id)] for span in spans)
    assert chat["inputs"]["messages"] == [{"role": "user", "content": "hello"}]
    assert "usage_metadata" not in chat["extra"]["metadata"]
    assert retrieve["outputs"]["documents"] == [{"page_content": "kept", "metadata": {}}]
    assert llm["inputs"]["messages"] == [{"role": "user", "content": "kept too"}]
    for run in (chat, retrieve, llm):  # neither the conversion's fallback nor the encoder's
        metadata = run["extra"]["metadata"]
        assert "otel_langsmith_conversion_error" not in metadata and "otel_langsmith_error" not in metadata, metadata
