"""LLM-aware conversion on spans made by the real SDK: every dialect to the same LangSmith run."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_langsmith import _ids as ids
from otel_langsmith._convert import span_to_pending
from otel_langsmith._convert.run_type import infer_run_type


def convert(record_spans, attributes, *, name="span", events=(), logs=()):
    def body(tracer):
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            for event_name, event_attributes in events:
                span.add_event(event_name, event_attributes)

    (span,) = record_spans(body)
    return span_to_pending(span, project="p", logs=logs)


@pytest.mark.parametrize(
    ("attributes", "name", "expected"),
    [
        ({"langsmith.span.kind": "Retriever", "openinference.span.kind": "LLM"}, "x", "retriever"),
        ({"openinference.span.kind": "RERANKER"}, "x", "retriever"),
        ({"openinference.span.kind": "AGENT", "gen_ai.operation.name": "chat"}, "x", "chain"),
        ({"gen_ai.operation.name": "embeddings"}, "x", "embedding"),
        ({"gen_ai.operation.name": "execute_tool"}, "x", "tool"),
        ({"gen_ai.operation.name": "invoke_agent"}, "x", "chain"),
        ({"traceloop.span.kind": "tool"}, "x", "tool"),
        ({"traceloop.span.kind": "workflow"}, "x", "chain"),
        ({"llm.request.type": "embedding"}, "x", "embedding"),
        ({"llm.request.type": "chat"}, "x", "llm"),
        ({"ai.operationId": "ai.streamText.doStream"}, "x", "llm"),
        ({"ai.operationId": "ai.toolCall"}, "x", "tool"),
        ({"gen_ai.tool.name": "search"}, "x", "tool"),
        ({"llm.prompt_template.variables": "{}"}, "x", "prompt"),
        ({"retrieval.documents.0.document.content": "d"}, "x", "retriever"),
        ({"gen_ai.request.model": "gpt-4o"}, "x", "llm"),
        ({"gen_ai.request.model": ""}, "x", "chain"),
        ({}, "chat gpt-4o", "llm"),
        ({}, "execute_tool search", "tool"),
        ({}, "GET /users", "chain"),
    ],
)
def test_run_type_follows_the_priority_of_conventions(attributes, name, expected):
    assert infer_run_type(attributes, name) == expected


def test_flattened_messages_rebuild_in_numeric_order_with_tool_calls(record_spans):
    attributes = {"gen_ai.operation.name": "chat"}
    for index in range(12):
        attributes[f"gen_ai.prompt.{index}.role"] = "user" if index % 2 else "system"
        attributes[f"gen_ai.prompt.{index}.content"] = f"m{index}"
    attributes["gen_ai.prompt.99999999.content"] = "absurd index"
    attributes["gen_ai.prompt.prompt_filter_results"] = "[]"
    attributes["gen_ai.completion.0.message.role"] = "assistant"
    attributes["gen_ai.completion.0.tool_calls.0.id"] = "call_1"
    attributes["gen_ai.completion.0.tool_calls.0.name"] = "get_weather"
    attributes["gen_ai.completion.0.tool_calls.0.arguments"] = '{"city": "Paris"}'
    attributes["gen_ai.completion.0.finish_reason"] = "tool_calls"
    run = convert(record_spans, attributes).run
    assert [m["content"] for m in run["inputs"]["messages"]] == [f"m{i}" for i in range(12)]
    (choice,) = run["outputs"]["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"type": "function", "id": "call_1", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]
    metadata = run["extra"]["metadata"]
    assert "gen_ai.prompt.0.content" not in metadata and "gen_ai.prompt.prompt_filter_results" in metadata


def test_genai_parts_become_openai_content(record_spans):
    inputs = [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "What is this?"},
                {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBO"},
                {"type": "uri", "modality": "image", "uri": "https://example.invalid/a.png"},
            ],
        },
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "zoom", "arguments": {"x": 2}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": {"ok": True}}]},
    ]
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
        "gen_ai.input.messages": json.dumps(inputs),
    }
    messages = convert(record_spans, attributes).run["inputs"]["messages"]
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[1]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}},
    ]
    assert messages[2]["tool_calls"] == [
        {"type": "function", "id": "c1", "function": {"name": "zoom", "arguments": '{"x":2}'}}
    ]
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": '{"ok":true}'}


def test_span_events_and_log_records_carry_messages(record_spans):
    events = [
        ("gen_ai.system.message", {"content": "Be brief."}),
        ("gen_ai.user.message", {"content": "Hi"}),
    ]
    logs = [
        (
            "gen_ai.choice",
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hello"}},
            1,
        )
    ]
    run = convert(record_spans, {"gen_ai.operation.name": "chat"}, events=events, logs=logs).run
    assert run["inputs"]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert run["outputs"]["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}
    ]


def test_vercel_ai_sdk_spans(record_spans):
    attributes = {
        "ai.operationId": "ai.streamText.doStream",
        "ai.model.id": "gpt-4o",
        "ai.model.provider": "openai.chat",
        "ai.prompt.messages": json.dumps([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]),
        "ai.response.text": "Hello!",
        "ai.usage.promptTokens": 5,
        "ai.usage.completionTokens": 2,
        "ai.response.msToFirstChunk": 120.0,
        "ai.telemetry.metadata.sessionId": "conv-7",
    }
    pending = convert(record_spans, attributes)
    run = pending.run
    assert run["run_type"] == "llm"
    assert run["inputs"]["messages"] == [{"role": "user", "content": "Hi"}]
    assert run["outputs"]["choices"][0]["message"]["content"] == "Hello!"
    assert run["outputs"]["usage_metadata"] == {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    assert run["extra"]["metadata"]["ls_provider"] == "openai"
    assert run["extra"]["metadata"]["ls_model_name"] == "gpt-4o"
    (new_token,) = [e for e in run["events"] if e["name"] == "new_token"]
    # Never after the answer: the span here ends sooner than 120 ms after it began.
    assert new_token["time"] == ids.iso_time(min(pending.start_us + 120_000, pending.end_us))
    assert run["extra"]["metadata"]["session_id"] == "conv-7" and pending.inherit == {
        "session_id": "conv-7",
        "thread_id": "conv-7",
    }


def test_time_to_first_chunk_becomes_a_new_token_event(record_spans):
    def body(tracer):
        with tracer.start_as_current_span("chat m", start_time=1_700_000_000_000_000_000) as span:
            span.set_attribute("gen_ai.response.time_to_first_chunk", 0.25)

    (span,) = record_spans(body)
    run = span_to_pending(span, project="p").run
    assert run["events"][0] == {"name": "new_token", "time": "2023-11-14T22:13:20.250000+00:00"}


def test_tool_runs(record_spans):
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_9",
        "gen_ai.tool.call.arguments": '{"city": "Paris"}',
        "gen_ai.tool.call.result": "sunny",
    }
    run = convert(record_spans, attributes, name="execute_tool get_weather").run
    assert (run["name"], run["run_type"]) == ("get_weather", "tool")
    assert run["inputs"] == {"city": "Paris"} and run["outputs"] == {"output": "sunny"}
    assert run["extra"]["metadata"]["tool_call_id"] == "call_9"


def test_embedding_runs(record_spans):
    attributes = {
        "openinference.span.kind": "EMBEDDING",
        "embedding.model_name": "text-embedding-3-small",
        "embedding.embeddings.0.embedding.text": "hello",
        "embedding.embeddings.1.embedding.text": "world",
        "embedding.embeddings.0.embedding.vector": (0.1, 0.2),
    }
    run = convert(record_spans, attributes).run
    assert run["run_type"] == "embedding" and run["inputs"] == {"input": ["hello", "world"]}
    assert run["extra"]["metadata"]["ls_model_name"] == "text-embedding-3-small"


def test_thread_keys_reach_every_run_of_the_trace(langsmith_receiver):
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(langsmith_receiver.exporter()))
    tracer = provider.get_tracer("threads")
    with tracer.start_as_current_span("agent", attributes={"gen_ai.conversation.id": "conv-1", "user.id": "u-9"}):
        with tracer.start_as_current_span("step"), tracer.start_as_current_span("chat m"):
            pass
    provider.shutdown()
    runs = langsmith_receiver.runs.values()
    assert len(runs) == 3
    for run in runs:
        metadata = run["extra"]["metadata"]
        assert (metadata["session_id"], metadata["thread_id"], metadata["user_id"]) == ("conv-1", "conv-1", "u-9")


def test_hidden_and_transformed_inputs_and_outputs(langsmith_receiver, monkeypatch):
    monkeypatch.setenv("LANGSMITH_HIDE_INPUTS", "true")

    def mask_outputs(outputs):
        return {key: "***" for key in outputs}

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(langsmith_receiver.exporter(process_outputs=mask_outputs)))
    tracer = provider.get_tracer("redact")
    with tracer.start_as_current_span(
        "secret", attributes={"input.value": "password", "output.value": '{"token": "t"}'}
    ):
        pass
    provider.shutdown()
    (run,) = langsmith_receiver.runs.values()
    assert run["inputs"] == {} and run["outputs"] == {"token": "***"}
    assert "password" not in json.dumps(run)


def test_a_failing_hook_hides_rather_than_leaks(langsmith_receiver, caplog):
    def broken(outputs):
        raise RuntimeError("bug in the user's hook")

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(langsmith_receiver.exporter(process_outputs=broken)))
    with provider.get_tracer("x").start_as_current_span("s", attributes={"output.value": "secret"}):
        pass
    provider.shutdown()
    (run,) = langsmith_receiver.runs.values()
    assert run["outputs"] == {} and "outputs hook failed" in caplog.text


def test_openinference_redacted_values_stay_redacted(record_spans):
    attributes = {
        "openinference.span.kind": "LLM",
        "input.value": "__REDACTED__",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "__REDACTED__",
    }
    run = convert(record_spans, attributes).run
    assert run["inputs"]["messages"] == [{"role": "user", "content": "__REDACTED__"}]
