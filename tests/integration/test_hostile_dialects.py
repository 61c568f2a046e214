"""One hostile value per span, dialect by dialect, as an attacker would choose it.

Each case is a span that renders (messages, usage, tool arguments and results, documents, names) in
one instrumentation family's keys, plus ONE hostile value: the wrong type where a dialect expects
another (a list where a string is, a dict where a list is, a JSON text of a number), NaN and
infinities, integers beyond 64 bits or beyond the 4,300 digits ``int``/``str`` convert, lone
surrogates, indexes that are negative or thousands of digits long, JSON nested up to orjson's
1,024 levels (which it parses, and Python's recursion and orjson's encoder, at 255 levels, refuse)
and beyond. Whatever the value, the exporter does not raise, the receiver accepts every run, and the
run keeps the content of the rest of the span: no conversion, placement or encoding fallback (the
``otel_langsmith_conversion_error`` / ``otel_langsmith_error`` metadata and a counted conversion
error mark those, which send a run with its name, place and times only).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, NamedTuple

import pytest
from helpers import ended_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from otel_langsmith import _ids as ids
from otel_langsmith._convert import dialects
from otel_langsmith._convert.dialect import Dialect

# What marks a run sent with its name, place and times only.
LOSSY = frozenset(("otel_langsmith_conversion_error", "otel_langsmith_error"))


def nested(levels: int) -> str:
    """An empty JSON array ``levels`` deep."""
    return "[" * levels + "]" * levels


# orjson parses up to 1,024 levels: a value 1,000 deep is parsed, and then too deep for str().
DEEP = nested(1000)
# Deeper than orjson encodes (255), well within what it parses.
DEEP_FOR_ORJSON = nested(300)
# Deeper than orjson parses: kept as text.
DEEPER_THAN_JSON = nested(10_000)
# Tool results nested in tool results (Bedrock's shape), 340 times: 1,020 levels of JSON.
NESTED_RESULTS = "[" + '{"toolResult": {"content": [' * 340 + '{"text": "x"}' + "]}}" * 340 + "]"
HUGE_INDEX = "1" * 5000
# More digits than str() writes (4,300): every str() of an attribute value can raise.
HUGE_INT = 10**5000


class Span(NamedTuple):
    attributes: dict[str, Any]
    #: What must survive: a name for each, the path in the run and its value.
    expected: dict[str, tuple[tuple[str | int, ...], Any]]
    events: tuple[tuple[str, dict[str, Any]], ...] = ()
    scope: str = "tests"
    #: Its status is ERROR (its last ``exception`` event becomes the run's error).
    failed: bool = False


USER = '[{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]'
ANSWER = '[{"role": "assistant", "parts": [{"type": "text", "content": "hi there"}], "finish_reason": "stop"}]'
ASKED = ("inputs", "messages", 0, "content"), "hello"
ANSWERED = ("outputs", "choices", 0, "message", "content"), "hi there"
USAGE = ("extra", "metadata", "usage_metadata", "total_tokens"), 8

GENAI_CHAT = Span(
    {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.input.messages": USER,
        "gen_ai.output.messages": ANSWER,
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 5,
    },
    {"asked": ASKED, "answered": ANSWERED, "usage": USAGE},
)
GENAI_TOOL = Span(
    {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_1",
        "gen_ai.tool.call.arguments": '{"city": "Paris"}',
        "gen_ai.tool.call.result": "sunny",
    },
    {
        "name": (("name",), "get_weather"),
        "arguments": (("inputs", "city"), "Paris"),
        "result": (("outputs", "output"), "sunny"),
    },
)
# The legacy GenAI events (opentelemetry-instrumentation-openai-v2 as span events).
EVENTS_CHAT = Span(
    {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 5,
    },
    {"asked": ASKED, "answered": ANSWERED, "usage": USAGE},
    events=(
        ("gen_ai.user.message", {"content": "hello"}),
        ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": '{"content": "hi there"}'}),
    ),
)
# A Strands tool span: its result is an event.
STRANDS_TOOL = Span(
    {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.tool.call.id": "call_1"},
    {"name": (("name",), "get_weather"), "result": (("outputs", "output"), "sunny")},
    events=(("gen_ai.choice", {"id": "call_1", "message": '[{"text": "sunny"}]'}),),
    scope="strands.telemetry.tracer",
)
STRANDS_CHAT = GENAI_CHAT._replace(scope="strands.telemetry.tracer")
PYDANTIC_CHAT = GENAI_CHAT._replace(scope="pydantic-ai")
OPENINFERENCE_LLM = Span(
    {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "hello",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "hi there",
        "llm.token_count.prompt": 3,
        "llm.token_count.completion": 5,
    },
    {"asked": ASKED, "answered": ANSWERED, "usage": USAGE},
)
OPENINFERENCE_RETRIEVER = Span(
    {
        "openinference.span.kind": "RETRIEVER",
        "input.value": "where?",
        "retrieval.documents.0.document.content": "kept",
        "retrieval.documents.0.document.score": 0.5,
    },
    {
        "question": (("inputs", "input"), "where?"),
        "document": (("outputs", "documents", 0), {"page_content": "kept", "metadata": {"score": 0.5}}),
    },
)
# OpenLLMetry's flattened messages.
TRACELOOP_LLM = Span(
    {
        "llm.request.type": "chat",
        "llm.request.model": "gpt-4o",
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "hello",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "hi there",
        "gen_ai.usage.prompt_tokens": 3,
        "gen_ai.usage.completion_tokens": 5,
    },
    {"asked": ASKED, "answered": ANSWERED, "usage": USAGE},
)
# Its LangChain instrumentation's envelopes.
TRACELOOP_TASK = Span(
    {
        "traceloop.span.kind": "task",
        "traceloop.entity.name": "lookup",
        "traceloop.entity.input": '{"inputs": {"city": "Paris"}, "tags": ["geo"]}',
        "traceloop.entity.output": '{"outputs": {"answer": "sunny"}}',
    },
    {
        "name": (("name",), "lookup"),
        "inputs": (("inputs", "city"), "Paris"),
        "outputs": (("outputs", "answer"), "sunny"),
    },
)
LANGSMITH = Span(
    {
        "langsmith.span.kind": "chain",
        "langsmith.trace.name": "pipeline",
        "gen_ai.prompt": '{"question": "where?"}',
        "gen_ai.completion": '{"answer": "Paris"}',
    },
    {
        "name": (("name",), "pipeline"),
        "inputs": (("inputs", "question"), "where?"),
        "outputs": (("outputs", "answer"), "Paris"),
    },
)
VERCEL = Span(
    {
        "ai.operationId": "ai.generateText.doGenerate",
        "ai.model.id": "gpt-4o",
        "ai.prompt.messages": '[{"role": "user", "content": "hello"}]',
        "ai.response.text": "hi there",
        "ai.usage.promptTokens": 3,
        "ai.usage.completionTokens": 5,
    },
    {"asked": ASKED, "answered": ANSWERED, "usage": USAGE},
)


def case(
    name: str,
    span: Span,
    keep: str,
    hostile: dict[str, Any] | None = None,
    events: tuple[tuple[str, dict[str, Any]], ...] = (),
    failed: bool = False,
) -> Any:
    """``span`` with one hostile attribute (or event) added; ``keep``: what must survive it."""
    attributes = {**span.attributes, **(hostile or {})}
    hostile_span = span._replace(attributes=attributes, events=span.events + events, failed=failed)
    return pytest.param(hostile_span, {kept: span.expected[kept] for kept in keep.split()}, id=name)


def tool_part(arguments: str) -> str:
    part = f'{{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {arguments}}}'
    return f'[{{"role": "assistant", "parts": [{part}]}}]'


def text_part(content: str, role: str = '"assistant"', kind: str = "text") -> str:
    return f'[{{"role": {role}, "parts": [{{"type": "{kind}", "content": {content}}}]}}]'


CASES = [
    # -- GenAI attributes ---------------------------------------------------------------------
    case(
        "genai-first-chunk-infinite",
        GENAI_CHAT,
        "asked answered usage",
        {"gen_ai.response.time_to_first_chunk": math.inf},
    ),
    case(
        "genai-first-chunk-huge-int",
        GENAI_CHAT,
        "asked answered usage",
        {"gen_ai.response.time_to_first_chunk": 10**400},
    ),
    case(
        "genai-finish-reason-list",
        GENAI_CHAT,
        "asked usage",
        {"gen_ai.output.messages": ANSWER.replace('"stop"', '["stop"]')},
    ),
    case(
        "genai-openai-shaped-finish-reason-dict",
        GENAI_CHAT,
        "asked usage",
        {"gen_ai.output.messages": '[{"role": "assistant", "content": "hi there", "finish_reason": {"a": 1}}]'},
    ),
    case(
        "genai-tool-arguments-300-deep",
        GENAI_CHAT,
        "asked usage",
        {"gen_ai.output.messages": tool_part(DEEP_FOR_ORJSON)},
    ),
    case(
        "genai-tool-response-300-deep",
        GENAI_CHAT,
        "answered usage",
        {
            "gen_ai.input.messages": (
                '[{"role": "tool", "parts": [{"type": "tool_call_response", "id": "1", "response": '
                + DEEP_FOR_ORJSON
                + "}]}]"
            )
        },
    ),
    case("genai-text-1000-deep", GENAI_CHAT, "asked usage", {"gen_ai.output.messages": text_part(DEEP)}),
    case(
        "genai-reasoning-1000-deep",
        GENAI_CHAT,
        "asked usage",
        {"gen_ai.output.messages": text_part(DEEP, kind="reasoning")},
    ),
    case("genai-blob-1000-deep", GENAI_CHAT, "asked usage", {"gen_ai.output.messages": text_part(DEEP, kind="blob")}),
    case("genai-role-1000-deep", GENAI_CHAT, "asked usage", {"gen_ai.output.messages": text_part('"x"', role=DEEP)}),
    case(
        "genai-system-instructions-1000-deep",
        GENAI_CHAT,
        "answered usage",
        {"gen_ai.system_instructions": f'[{{"type": "text", "content": {DEEP}}}]'},
    ),
    case("genai-tool-result-nested-results", GENAI_TOOL, "name arguments", {"gen_ai.tool.call.result": NESTED_RESULTS}),
    case("genai-int-of-5000-digits-passed-through", GENAI_CHAT, "asked answered usage", {"request.id": HUGE_INT}),
    case("genai-provider-int-of-5000-digits", GENAI_CHAT, "asked answered usage", {"gen_ai.system": HUGE_INT}),
    case(
        "genai-response-model-int-of-5000-digits",
        GENAI_CHAT,
        "asked answered usage",
        {"gen_ai.response.model": HUGE_INT},
    ),
    case(
        "genai-finish-reasons-int-of-5000-digits",
        GENAI_CHAT,
        "asked answered usage",
        {"gen_ai.response.finish_reasons": HUGE_INT},
    ),
    case(
        "genai-conversation-id-int-of-5000-digits",
        GENAI_CHAT,
        "asked answered usage",
        {"gen_ai.conversation.id": HUGE_INT},
    ),
    case(
        "genai-exception-message-int-of-5000-digits",
        GENAI_CHAT,
        "asked answered usage",
        events=(("exception", {"exception.type": "ValueError", "exception.message": HUGE_INT}),),
        failed=True,
    ),
    case(
        "genai-parts-are-numbers",
        GENAI_CHAT,
        "asked usage",
        {"gen_ai.output.messages": '[{"role": "x", "parts": [1, 2]}]'},
    ),
    case("genai-messages-a-number", GENAI_CHAT, "asked usage", {"gen_ai.output.messages": "42"}),
    case("genai-messages-null", GENAI_CHAT, "asked usage", {"gen_ai.output.messages": "null"}),
    case("genai-messages-an-object", GENAI_CHAT, "asked usage", {"gen_ai.output.messages": '{"role": "assistant"}'}),
    case("genai-messages-a-list-attribute", GENAI_CHAT, "asked usage", {"gen_ai.output.messages": ("a", "b")}),
    case("genai-messages-10000-deep", GENAI_CHAT, "asked usage", {"gen_ai.output.messages": DEEPER_THAN_JSON}),
    case(
        "genai-tool-calls-a-string",
        GENAI_CHAT,
        "asked usage",
        {"gen_ai.output.messages": '[{"role": "assistant", "content": null, "tool_calls": "x"}]'},
    ),
    case(
        "genai-tool-definitions-an-object", GENAI_CHAT, "asked answered usage", {"gen_ai.tool.definitions": '{"a": 1}'}
    ),
    case("genai-system-instructions-a-number", GENAI_CHAT, "asked answered usage", {"gen_ai.system_instructions": "7"}),
    case("genai-temperature-nan", GENAI_CHAT, "asked answered usage", {"gen_ai.request.temperature": math.nan}),
    case(
        "genai-finish-reasons-mixed", GENAI_CHAT, "asked answered usage", {"gen_ai.response.finish_reasons": (1, "a")}
    ),
    case("genai-provider-a-dict", GENAI_CHAT, "asked answered usage", {"gen_ai.system": {"name": ["openai"]}}),
    case("genai-tool-arguments-a-list", GENAI_TOOL, "name result", {"gen_ai.tool.call.arguments": "[1, 2]"}),
    case("genai-tool-result-1000-deep", GENAI_TOOL, "name arguments", {"gen_ai.tool.call.result": DEEP}),
    # -- GenAI events ------------------------------------------------------------------------
    case(
        "events-choice-function-a-string",
        EVENTS_CHAT,
        "asked answered usage",
        events=(("gen_ai.choice", {"index": 1, "message": '{"tool_calls": [{"id": "1", "function": "f"}]}'}),),
    ),
    case(
        "events-tool-use-input-300-deep",
        EVENTS_CHAT,
        "asked answered usage",
        events=(
            (
                "gen_ai.assistant.message",
                {"content": f'[{{"type": "tool_use", "id": "1", "name": "f", "input": {DEEP_FOR_ORJSON}}}]'},
            ),
        ),
    ),
    case(
        "events-details-tool-calls-a-string",
        STRANDS_TOOL,
        "name result",
        events=(
            (
                "gen_ai.client.inference.operation.details",
                {"gen_ai.input.messages": '[{"role": "assistant", "tool_calls": "x"}]'},
            ),
        ),
    ),
    case(
        "events-details-tool-call-without-function",
        STRANDS_TOOL,
        "name result",
        events=(
            (
                "gen_ai.client.inference.operation.details",
                {"gen_ai.input.messages": '[{"role": "assistant", "tool_calls": [{"id": "1"}]}]'},
            ),
        ),
    ),
    case(
        "events-choice-index-overflows",
        EVENTS_CHAT,
        "asked answered usage",
        events=(("gen_ai.choice", {"index": "1e400", "message": "[]"}),),
    ),
    case(
        "events-message-a-dict-attribute",
        EVENTS_CHAT,
        "asked answered usage",
        events=(("gen_ai.choice", {"index": 1, "message": {"content": ("a", 1)}}),),
    ),
    # -- Strands, pydantic-ai, OpenLIT ---------------------------------------------------------
    case(
        "strands-first-token-infinite",
        STRANDS_CHAT,
        "asked answered usage",
        {"gen_ai.server.time_to_first_token": math.inf},
    ),
    case(
        "strands-first-token-huge-int",
        STRANDS_CHAT,
        "asked answered usage",
        {"gen_ai.server.time_to_first_token": 10**400},
    ),
    case("pydantic-ai-cost-huge-int", PYDANTIC_CHAT, "asked answered usage", {"operation.cost": 10**400}),
    # The events' choice is the answer (it comes before gen_ai.output.messages): a tool call, unnamed.
    case(
        "pydantic-ai-event-function-a-list",
        PYDANTIC_CHAT,
        "asked usage",
        {"events": '[{"event.name": "gen_ai.choice", "message": {"tool_calls": [{"function": ["f"]}]}}]'},
    ),
    case(
        "pydantic-ai-event-name-1000-deep",
        PYDANTIC_CHAT,
        "asked answered usage",
        {"events": f'[{{"event.name": {nested(995)}}}]'},
    ),
    case("pydantic-ai-events-an-object", PYDANTIC_CHAT, "asked answered usage", {"events": '{"event.name": "x"}'}),
    case("openlit-cost-huge-int", GENAI_CHAT, "asked answered usage", {"gen_ai.usage.cost": 10**400}),
    case("openlit-cost-infinite", GENAI_CHAT, "asked answered usage", {"gen_ai.usage.cost": math.inf}),
    # -- OpenInference ---------------------------------------------------------------------------
    case(
        "openinference-tool-arguments-int-beyond-64-bits",
        OPENINFERENCE_LLM,
        "asked usage",
        {"llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": 2**70},
    ),
    case(
        "openinference-tool-arguments-lone-surrogate-in-list",
        OPENINFERENCE_LLM,
        "asked usage",
        {"llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": ("\ud800",)},
    ),
    case(
        "openinference-finish-reason-a-dict",
        OPENINFERENCE_LLM,
        "asked usage",
        {"llm.output_messages.0.message.finish_reason": {"reason": "stop"}},
    ),
    case(
        "openinference-responses-reason-1000-deep",
        OPENINFERENCE_LLM,
        "asked answered usage",
        {
            "output.value": (
                f'{{"object": "response", "status": "incomplete", "incomplete_details": {{"reason": {nested(997)}}}}}'
            )
        },
    ),
    case(
        "openinference-provider-int-of-5000-digits",
        OPENINFERENCE_LLM,
        "asked answered usage",
        {"llm.provider": HUGE_INT},
    ),
    case(
        "openinference-role-int-of-5000-digits",
        OPENINFERENCE_LLM,
        "asked usage",
        {"llm.output_messages.0.message.role": HUGE_INT},
    ),
    case(
        "openinference-tags-int-of-5000-digits", OPENINFERENCE_RETRIEVER, "question document", {"tag.tags": (HUGE_INT,)}
    ),
    case(
        "openinference-negative-index",
        OPENINFERENCE_RETRIEVER,
        "question document",
        {"retrieval.documents.-1.document.content": "x"},
    ),
    case(
        "openinference-index-of-5000-digits",
        OPENINFERENCE_RETRIEVER,
        "question document",
        {f"retrieval.documents.{HUGE_INDEX}.document.content": "x"},
    ),
    case(
        "openinference-document-metadata-a-list",
        OPENINFERENCE_RETRIEVER,
        "question",
        {"retrieval.documents.0.document.metadata": "[1, 2]"},
    ),
    case("openinference-input-lone-surrogate", OPENINFERENCE_RETRIEVER, "document", {"input.value": '{"q": "\ud800"}'}),
    case(
        "openinference-parameters-a-list",
        OPENINFERENCE_LLM,
        "asked answered usage",
        {"llm.invocation_parameters": "[1]"},
    ),
    case(
        "openinference-tool-schema-a-number",
        OPENINFERENCE_LLM,
        "asked answered usage",
        {"llm.tools.0.tool.json_schema": "5"},
    ),
    case(
        "openinference-content-a-list",
        OPENINFERENCE_LLM,
        "asked usage",
        {"llm.output_messages.0.message.content": "[1, [2]]"},
    ),
    # -- Traceloop / OpenLLMetry -----------------------------------------------------------------
    case(
        "traceloop-tool-arguments-int-beyond-64-bits",
        TRACELOOP_LLM,
        "asked usage",
        {"gen_ai.completion.0.tool_calls.0.arguments": 2**70},
    ),
    case(
        "traceloop-finish-reason-a-dict",
        TRACELOOP_LLM,
        "asked usage",
        {"gen_ai.completion.0.finish_reason": {"a": "b"}},
    ),
    case(
        "traceloop-envelope-tags-1000-deep",
        TRACELOOP_TASK,
        "name outputs",
        {"traceloop.entity.input": f'{{"inputs": {{"city": "Paris"}}, "tags": {nested(998)}}}'},
    ),
    case(
        "traceloop-session-int-of-5000-digits",
        TRACELOOP_TASK,
        "name inputs outputs",
        {"traceloop.association.properties.session_id": HUGE_INT},
    ),
    case(
        "traceloop-envelope-wrong-types",
        TRACELOOP_TASK,
        "name outputs",
        {"traceloop.entity.input": '{"inputs": 5, "tags": {"a": 1}, "kwargs": [1]}'},
    ),
    case(
        "traceloop-functions-parameters-a-list",
        TRACELOOP_LLM,
        "asked answered usage",
        {"llm.request.functions.0.parameters": "[1]"},
    ),
    # -- LangSmith ---------------------------------------------------------------------------------
    case("langsmith-tags-1000-deep", LANGSMITH, "name inputs outputs", {"langsmith.span.tags": DEEP}),
    case("langsmith-tags-int-of-5000-digits", LANGSMITH, "name inputs outputs", {"langsmith.span.tags": HUGE_INT}),
    case("langsmith-name-int-of-5000-digits", LANGSMITH, "inputs outputs", {"langsmith.trace.name": HUGE_INT}),
    case(
        "langsmith-project-int-of-5000-digits",
        LANGSMITH,
        "name inputs outputs",
        {"langsmith.trace.session_name": HUGE_INT},
    ),
    case("langsmith-run-id-int-of-5000-digits", LANGSMITH, "name inputs outputs", {"langsmith.span.id": HUGE_INT}),
    case("langsmith-tags-an-object", LANGSMITH, "name inputs outputs", {"langsmith.span.tags": '{"a": [1]}'}),
    case("langsmith-dotted-order-garbage", LANGSMITH, "name inputs outputs", {"langsmith.span.dotted_order": "x.y"}),
    case(
        "langsmith-metadata-10000-deep", LANGSMITH, "name inputs outputs", {"langsmith.metadata.deep": DEEPER_THAN_JSON}
    ),
    # -- Vercel AI SDK -------------------------------------------------------------------------------
    case("vercel-first-chunk-infinite", VERCEL, "asked answered usage", {"ai.response.msToFirstChunk": math.inf}),
    case(
        "vercel-text-part-a-number",
        VERCEL,
        "answered usage",
        {"ai.prompt.messages": '[{"role": "user", "content": [{"type": "text", "text": 5}]}]'},
    ),
    case("vercel-provider-int-of-5000-digits", VERCEL, "asked answered usage", {"ai.model.provider": HUGE_INT}),
    case("vercel-prompt-an-object", VERCEL, "answered usage", {"ai.prompt.messages": '{"role": "user"}'}),
    case("vercel-tokens-overflow", VERCEL, "asked answered", {"ai.usage.promptTokens": "1e400"}),
]


def ended(span: Span) -> list[ReadableSpan]:
    """The span, recorded by the real SDK under its instrumentation scope."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer(span.scope).start_as_current_span("span", attributes=span.attributes) as current:
        for name, attributes in span.events:
            current.add_event(name, attributes)
        if span.failed:
            current.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    return list(memory.get_finished_spans())


def exported(receiver, exporter, spans: list[ReadableSpan]) -> dict[str, Any]:
    """Export ``spans``, with no fallback on the way; the run of the first one's root."""
    errors = exporter.stats().conversion_errors
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    assert receiver.rejected == []
    run = receiver.runs[ids.root_run_id(spans[0].context.trace_id)]
    assert LOSSY.isdisjoint(run["extra"]["metadata"]), run["extra"]["metadata"]
    assert exporter.stats().conversion_errors == errors
    return run


def at(run: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    found: Any = run
    for step in path:
        found = found[step]
    return found


@pytest.mark.parametrize(("span", "expected"), CASES)
def test_one_hostile_value_costs_only_itself(receiver, exporter, span, expected):
    run = exported(receiver, exporter, ended(span))
    for path, value in expected.values():
        assert at(run, path) == value, (path, run)


@pytest.mark.parametrize(
    ("span", "key"),
    [
        pytest.param(GENAI_CHAT, "gen_ai.input.messages", id="genai"),
        pytest.param(
            PYDANTIC_CHAT._replace(attributes={"pydantic_ai.all_messages": USER}),
            "pydantic_ai.all_messages",
            id="pydantic-ai",
        ),
        pytest.param(VERCEL, "ai.prompt.messages", id="vercel"),
    ],
)
@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda text: text[: text.index("hello") + 5], id="truncated"),
        pytest.param(lambda text: text.replace("hello", "hello \ud83d"), id="lone-surrogate"),
    ],
)
def test_messages_that_are_not_json_are_kept_as_text(receiver, exporter, span, key, spoil):
    # "Attribute ... is not valid JSON; kept as text", the log says: a value cut by an attribute
    # length limit, or one lone surrogate in it, must not take the conversation with it unseen.
    attributes = {**span.attributes, key: spoil(span.attributes[key])}
    run = exported(receiver, exporter, ended(span._replace(attributes=attributes)))
    kept = json.dumps([run.get("inputs"), run.get("outputs"), run["extra"]["metadata"]])
    assert "hello" in kept, run


def test_an_int_of_5000_digits_on_a_child_waiting_for_its_parent(receiver, exporter):
    # A child exported before its parent waits for it, and its size is measured meanwhile.
    def body(tracer):
        # The parent is no model call: a model call's tokens under another's are kept apart.
        with tracer.start_as_current_span("parent"):
            with tracer.start_as_current_span("child", attributes={**GENAI_CHAT.attributes, "request.id": HUGE_INT}):
                pass

    child, parent = ended_spans(body)
    errors = exporter.stats().conversion_errors
    assert exporter.export([child]) is SpanExportResult.SUCCESS
    exported(receiver, exporter, [parent])
    assert exporter.stats().conversion_errors == errors
    run = receiver.runs[ids.span_run_id(child.context.span_id)]
    assert LOSSY.isdisjoint(run["extra"]["metadata"]), run["extra"]["metadata"]
    assert at(run, ASKED[0]) == "hello" and at(run, USAGE[0]) == 8


def test_a_step_that_raises_on_what_no_dialect_foresaw_costs_only_its_part(receiver, monkeypatch, caplog):
    # The cases above are the values found so far; the next one will be another. A conversion step
    # that raises (here a dialect made to) costs what that step would have written: the other
    # dialects' content stays, the run names the step, and the log says it once for many spans.
    def broken(view, run):
        raise RuntimeError("a value no dialect foresaw")

    asked = Dialect(name="broken", reads=frozenset(("gen_ai.operation.name",)), content=broken)
    monkeypatch.setattr(dialects, "DIALECTS", (*dialects.DIALECTS, asked))
    exporter = receiver.exporter()
    spans = [span for _ in range(3) for span in ended(GENAI_CHAT)]
    with caplog.at_level(logging.WARNING, logger="otel_langsmith"):
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert exporter.force_flush()
    exporter.shutdown()
    assert receiver.rejected == []
    for span in spans:
        run = receiver.runs[ids.root_run_id(span.context.trace_id)]
        for path, value in GENAI_CHAT.expected.values():
            assert at(run, path) == value, (path, run)
        assert run["extra"]["metadata"]["otel_langsmith_conversion_error"] == (
            "test_hostile_dialects.broken raised RuntimeError"
        )
    said = [record for record in caplog.records if "could not be converted" in record.getMessage()]
    assert len(said) == 1, [record.getMessage() for record in said]
    assert "a value no dialect foresaw" not in caplog.text  # attribute values stay out of the log
    assert exporter.stats().conversion_errors == 0
