"""Each dialect's quirks, on spans made by the real SDK under the scope of the library that writes them.

``tests/integration/test_frameworks.py`` drives the libraries themselves; these pin down one rule each,
including the edge cases a library run does not reach (a value in the wrong unit, a span shorter than
its first token, a Traceloop envelope around a plain string).
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_langsmith import _ids as ids
from otel_langsmith._convert import PendingRun, dialects, span_to_pending
from otel_langsmith._convert.dialect import Dialect
from otel_langsmith._placement import fill, place

START = 1_700_000_000_000_000_000  # ns
SECOND = 1_000_000_000


def convert(
    attributes: dict,
    *,
    name: str = "span",
    scope: str = "tests",
    seconds: float = 2.0,
    events: tuple = (),
    logs: tuple = (),
) -> dict:
    """The run of one span of ``scope`` that lasted ``seconds``."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    span = provider.get_tracer(scope).start_span(name, attributes=attributes, start_time=START)
    for event_name, event_attributes in events:
        span.add_event(event_name, event_attributes, timestamp=START + SECOND // 2)
    span.end(end_time=START + int(seconds * SECOND))
    provider.shutdown()
    (ended,) = memory.get_finished_spans()
    return span_to_pending(ended, project="p", logs=logs).run


def new_token(run: dict) -> str | None:
    found = [event["time"] for event in run.get("events", ()) if event["name"] == "new_token"]
    assert len(found) <= 1
    return found[0] if found else None


def at(seconds: float) -> str:
    return ids.iso_time((START + int(seconds * SECOND)) // 1000)


# -- declarations --------------------------------------------------------------------------------


def test_every_dialect_is_declared_once_and_reads_something():
    names = [dialect.name for dialect in dialects.DIALECTS]
    assert len(names) == len(set(names))
    for dialect in dialects.DIALECTS:
        assert isinstance(dialect, Dialect)
        assert dialect.keys or dialect.events, dialect.name
        assert dialect.call or dialect.content or dialect.kinds, dialect.name


def test_a_span_with_only_another_librarys_key_is_not_read_by_a_scoped_dialect():
    # ``final_result`` means pydantic-ai's agent result only under pydantic-ai's scope.
    run = convert({"gen_ai.operation.name": "invoke_agent", "final_result": "42"}, scope="someone.else")
    assert "outputs" not in run and run["extra"]["metadata"]["final_result"] == "42"
    run = convert({"gen_ai.operation.name": "invoke_agent", "final_result": "42"}, scope="pydantic-ai")
    assert run["outputs"] == {"output": 42} and "final_result" not in run["extra"]["metadata"]


# -- 1. OpenInference tools --------------------------------------------------------------------------


def test_an_openinference_tool_takes_its_arguments_from_input_value_not_the_schema():
    run = convert(
        {
            "openinference.span.kind": "TOOL",
            "tool.name": "get_weather",
            "tool.parameters": json.dumps({"type": "object", "properties": {"city": {"type": "string"}}}),
            "input.value": json.dumps({"city": "Paris"}),
            "input.mime_type": "application/json",
            "output.value": "sunny",
        }
    )
    assert (run["name"], run["run_type"]) == ("get_weather", "tool")
    assert run["inputs"] == {"city": "Paris"}
    assert run["outputs"] == {"output": "sunny"}


# -- 2. time to first token ----------------------------------------------------------------------------


def test_time_to_first_chunk_in_seconds():
    run = convert({"gen_ai.operation.name": "chat", "gen_ai.client.operation.time_to_first_chunk": 0.25})
    assert new_token(run) == at(0.25)


def test_strands_writes_milliseconds_under_a_key_others_write_seconds():
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.server.time_to_first_token": 250}
    assert new_token(convert(attributes, scope="strands.telemetry.tracer", seconds=60)) == at(0.25)
    # Under another scope the key is in seconds (OpenLIT's): 250 s does not fit in a 2 s span, 250 ms does.
    assert new_token(convert(attributes, seconds=2)) == at(0.25)
    assert new_token(convert({**attributes, "gen_ai.server.time_to_first_token": 1.5})) == at(1.5)


def test_a_first_token_is_never_placed_outside_its_span():
    run = convert({"gen_ai.operation.name": "chat", "gen_ai.response.time_to_first_chunk": 5000.0}, seconds=1.0)
    assert new_token(run) == at(1.0)  # neither 5000 s nor 5 s fit in the span: at its end
    run = convert({"gen_ai.operation.name": "chat", "gen_ai.response.time_to_first_chunk": -3.0})
    assert new_token(run) is None


def test_a_call_that_did_not_stream_has_no_first_token():
    # OpenLIT writes the whole answer's time under the first token's key when the call did not stream.
    run = convert(
        {"gen_ai.operation.name": "chat", "gen_ai.request.stream": False, "gen_ai.server.time_to_first_token": 0.8}
    )
    assert new_token(run) is None


# -- 3. events whose values are JSON text ------------------------------------------------------------


def test_events_with_json_string_content_and_bedrock_blocks():
    events = (
        ("gen_ai.system.message", {"content": json.dumps([{"text": "Be brief."}])}),
        ("gen_ai.user.message", {"content": json.dumps([{"text": "Weather in Paris?"}])}),
        (
            "gen_ai.assistant.message",
            {
                "content": json.dumps(
                    [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}}]
                )
            },
        ),
        (
            "gen_ai.tool.message",
            {"content": json.dumps([{"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}}])},
        ),
        ("gen_ai.choice", {"message": json.dumps([{"text": "It is sunny."}]), "finish_reason": "end_turn"}),
    )
    run = convert({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}, events=events)
    assert run["inputs"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}, "id": "t1"}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
    ]
    assert run["outputs"]["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "It is sunny."}, "finish_reason": "stop"}
    ]


def test_a_choice_whose_message_is_a_json_string():
    events = (("gen_ai.choice", {"index": 0, "message": json.dumps({"role": "assistant", "content": "Hi"})}),)
    run = convert({"gen_ai.operation.name": "chat"}, events=events)
    assert run["outputs"]["choices"][0]["message"] == {"role": "assistant", "content": "Hi"}


def test_a_tool_whose_arguments_and_result_are_events():
    events = (
        ("gen_ai.tool.message", {"role": "tool", "content": json.dumps({"city": "Paris"}), "id": "t1"}),
        ("gen_ai.choice", {"message": json.dumps([{"text": "sunny in Paris"}]), "id": "t1"}),
    )
    run = convert({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"}, events=events)
    assert run["inputs"] == {"city": "Paris"}
    assert run["outputs"] == {"output": "sunny in Paris"}


# -- 4. system instructions alone ----------------------------------------------------------------------


def test_operation_details_with_only_system_instructions_still_give_the_system_message():
    instructions = json.dumps([{"type": "text", "content": "You are a weather bot."}])
    question = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Paris?"}]}])
    events = (
        ("gen_ai.client.inference.operation.details", {"gen_ai.system_instructions": instructions}),
        ("gen_ai.client.inference.operation.details", {"gen_ai.input.messages": question}),
    )
    run = convert({"gen_ai.operation.name": "chat"}, events=events)
    assert run["inputs"]["messages"] == [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Paris?"},
    ]
    alone = convert({"gen_ai.operation.name": "chat"}, events=events[:1])
    assert alone["inputs"]["messages"] == [{"role": "system", "content": "You are a weather bot."}]


# -- 5. agents ------------------------------------------------------------------------------------------


def test_an_agent_span_with_the_whole_conversation():
    conversation = [
        {"role": "user", "parts": [{"type": "text", "content": "Paris?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "c1", "name": "w", "arguments": "{}"}],
            "finish_reason": "tool_call",
        },
        {"role": "user", "parts": [{"type": "tool_call_response", "id": "c1", "result": "sunny"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "Sunny."}], "finish_reason": "stop"},
    ]
    run = convert(
        {
            "gen_ai.operation.name": "invoke_agent",
            "pydantic_ai.all_messages": json.dumps(conversation),
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be terse."}]),
            "final_result": "Sunny.",
            "gen_ai.usage.input_tokens": 48,
        },
        scope="pydantic-ai",
    )
    assert run["run_type"] == "chain"
    assert run["inputs"] == {
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Paris?"}]
    }
    assert [m["role"] for m in run["outputs"]["messages"]] == ["assistant", "tool", "assistant"]
    assert all("finish_reason" not in m for m in run["outputs"]["messages"])
    assert run["outputs"]["output"] == "Sunny."
    metadata = run["extra"]["metadata"]
    # An agent's tokens are its model calls': counted there, kept here only as the attributes they were.
    assert "usage_metadata" not in metadata and metadata["gen_ai.usage.input_tokens"] == 48
    assert not {"pydantic_ai.all_messages", "gen_ai.system_instructions", "final_result"} & set(metadata)


def test_an_agent_span_with_genai_messages():
    run = convert(
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Yo"}]}]),
        }
    )
    assert run["inputs"] == {"messages": [{"role": "user", "content": "Hi"}]}
    assert run["outputs"] == {"messages": [{"role": "assistant", "content": "Yo"}]}


# -- 6. Traceloop's envelopes ---------------------------------------------------------------------------


def test_traceloop_envelopes_are_unwrapped():
    envelope_in = {"inputs": {"question": "Paris?"}, "tags": ["seq:step:1"], "metadata": {"m": 1}, "kwargs": {}}
    envelope_out = {"outputs": "Sunny.", "kwargs": {"tags": []}}
    attributes = {
        "traceloop.span.kind": "task",
        "traceloop.entity.name": "answer",
        "traceloop.entity.input": json.dumps(envelope_in),
        "gen_ai.task.input": json.dumps(envelope_in),
        "traceloop.entity.output": json.dumps(envelope_out),
        "gen_ai.task.output": json.dumps(envelope_out),
    }
    run = convert(attributes)
    assert run["name"] == "answer"
    assert run["inputs"] == {"question": "Paris?"} and run["outputs"] == {"output": "Sunny."}
    assert run["tags"] == ["seq:step:1"]
    assert not (set(attributes) - {"traceloop.span.kind"}) & set(run["extra"]["metadata"])


def test_a_traceloop_tool_gets_its_arguments_and_the_text_of_its_tool_message():
    envelope_in = {
        "input_str": "{'city': 'Paris'}",
        "inputs": {"city": "Paris"},
        "tags": [],
        "metadata": {},
        "kwargs": {"tool_call_id": "call_1"},
    }
    message = {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "ToolMessage"]}
    envelope_out = {"output": {**message, "kwargs": {"content": "sunny", "tool_call_id": "call_1"}}, "kwargs": {}}
    run = convert(
        {
            "traceloop.span.kind": "tool",
            "gen_ai.tool.name": "get_weather",
            "traceloop.entity.input": json.dumps(envelope_in),
            "gen_ai.tool.call.arguments": json.dumps(envelope_in),
            "traceloop.entity.output": json.dumps(envelope_out),
            "gen_ai.tool.call.result": json.dumps(envelope_out),
        }
    )
    assert run["inputs"] == {"city": "Paris"} and run["outputs"] == {"output": "sunny"}
    assert run["extra"]["metadata"]["tool_call_id"] == "call_1"
    assert "gen_ai.tool.call.arguments" not in run["extra"]["metadata"]


def test_an_input_str_alone_is_the_input():
    run = convert(
        {"traceloop.span.kind": "tool", "traceloop.entity.input": json.dumps({"input_str": "x", "kwargs": {}})}
    )
    assert run["inputs"] == {"input": "x"}


# -- 7. tool definitions ------------------------------------------------------------------------------


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
OPENAI_TOOL = {"type": "function", "function": {"name": "w", "description": "d", "parameters": SCHEMA}}


def test_tool_definitions_in_every_shape_become_openai_tools():
    for definition in (
        {"name": "w", "description": "d", "input_schema": SCHEMA},  # Anthropic
        {"name": "w", "description": "d", "inputSchema": {"json": SCHEMA}, "outputSchema": None},  # Bedrock
        {"name": "w", "description": "d", "parameters": SCHEMA},  # GenAI flat, without a type
        {"type": "function", "name": "w", "description": "d", "parameters": SCHEMA},
        OPENAI_TOOL,
    ):
        run = convert(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "?"}]}]),
                "gen_ai.tool.definitions": json.dumps([definition]),
            }
        )
        assert run["inputs"]["tools"] == [OPENAI_TOOL], definition


def test_openinference_anthropic_tool_schemas():
    schema = json.dumps({"name": "w", "description": "d", "input_schema": SCHEMA})
    run = convert(
        {
            "openinference.span.kind": "LLM",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "Paris?",
            "llm.tools.0.tool.json_schema": schema,
        }
    )
    assert run["inputs"]["tools"] == [OPENAI_TOOL]


def test_unset_fields_of_a_tool_are_left_out():
    definition = {"type": "function", "name": "w", "description": "d", "parameters": SCHEMA, "strict": False}
    run = convert(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "?"}]}]),
            "gen_ai.tool.definitions": json.dumps([{**definition, "defer_loading": None, "output_schema": None}]),
        }
    )
    assert run["inputs"]["tools"] == [
        {"type": "function", "function": {"name": "w", "description": "d", "parameters": SCHEMA, "strict": False}}
    ]


# -- 8. embeddings ----------------------------------------------------------------------------------


def test_embeddings_take_their_texts_as_input_and_are_no_chat():
    texts = [{"role": "user", "parts": [{"type": "text", "content": t}]} for t in ("hello", "world")]
    run = convert(
        {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.input.messages": json.dumps(texts),
            "gen_ai.usage.input_tokens": 3,
        }
    )
    assert run["run_type"] == "embedding"
    assert run["inputs"] == {"input": ["hello", "world"]}
    assert "ls_model_type" not in run["extra"]["metadata"]
    assert run["extra"]["metadata"]["ls_provider"] == "openai"


# -- 9. max tokens ----------------------------------------------------------------------------------


def test_max_tokens_under_every_spelling():
    for spelling in ("max_tokens", "max_completion_tokens", "max_output_tokens", "num_output", "maxTokens"):
        run = convert(
            {"openinference.span.kind": "LLM", "llm.invocation_parameters": json.dumps({spelling: 100, "stream": True})}
        )
        assert run["extra"]["metadata"]["ls_max_tokens"] == 100, spelling


# -- 10. answers, history, cost -------------------------------------------------------------------------


def test_history_has_no_finish_reason_and_an_unknown_role_answers():
    history = [
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "Yes?"}], "finish_reason": "stop"},
        {"role": "user", "parts": [{"type": "text", "content": "Bye"}]},
    ]
    answer = [{"role": "unknown", "parts": [{"type": "text", "content": "Bye!"}], "finish_reason": "stop"}]
    run = convert(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": json.dumps(history),
            "gen_ai.output.messages": json.dumps(answer),
        }
    )
    assert all("finish_reason" not in message for message in run["inputs"]["messages"])
    assert run["outputs"]["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Bye!"}, "finish_reason": "stop"}
    ]


def test_an_answer_with_tool_calls_finished_for_them():
    # pydantic-ai records every completed Responses call as "stop".
    called = [{"role": "assistant", "parts": [{"type": "tool_call", "id": "c", "name": "w", "arguments": "{}"}]}]
    run = convert(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.output.messages": json.dumps([{**called[0], "finish_reason": "stop"}]),
        }
    )
    assert run["outputs"]["choices"][0]["finish_reason"] == "tool_calls"


def _responses_call(response: dict, **output: str) -> dict:
    return convert(
        {
            "openinference.span.kind": "LLM",
            "llm.output_messages.0.message.role": "assistant",
            **{f"llm.output_messages.0.message.{key}": value for key, value in output.items()},
            "output.value": json.dumps({"object": "response", **response}),
            "output.mime_type": "application/json",
        }
    )


def test_how_an_openai_responses_call_ended_when_openinference_does_not_say():
    done = _responses_call({"status": "completed"}, content="Hi")
    assert done["outputs"]["choices"][0]["finish_reason"] == "stop"
    called = _responses_call({"status": "completed"}, **{"tool_calls.0.tool_call.function.name": "w"})
    assert called["outputs"]["choices"][0]["finish_reason"] == "tool_calls"
    cut = _responses_call({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}, content="H")
    assert cut["outputs"]["choices"][0]["finish_reason"] == "length"
    unknown = _responses_call({"status": "in_progress"}, content="H")
    assert "finish_reason" not in unknown["outputs"]["choices"][0]


def test_reported_cost_goes_with_the_usage():
    usage = {"gen_ai.usage.input_tokens": 24, "gen_ai.usage.output_tokens": 7}
    openlit = convert({"gen_ai.operation.name": "chat", **usage, "gen_ai.usage.cost": 7.8e-06})
    assert openlit["extra"]["metadata"]["usage_metadata"]["total_cost"] == 7.8e-06
    assert "gen_ai.usage.cost" not in openlit["extra"]["metadata"]
    pydantic = convert({"gen_ai.operation.name": "chat", **usage, "operation.cost": 7.5e-06}, scope="pydantic-ai")
    assert pydantic["extra"]["metadata"]["usage_metadata"]["total_cost"] == 7.5e-06
    alone = convert({"gen_ai.operation.name": "chat", "gen_ai.usage.cost": 0.5})
    assert alone["extra"]["metadata"]["ls_reported_cost"] == 0.5


def test_a_framework_named_as_provider_gives_way_to_the_models_provider():
    run = convert(
        {"gen_ai.operation.name": "chat", "gen_ai.system": "strands-agents", "gen_ai.request.model": "gpt-4o"}
    )
    assert run["extra"]["metadata"]["ls_provider"] == "openai"
    run = convert({"gen_ai.operation.name": "chat", "gen_ai.system": "strands-agents", "gen_ai.request.model": "x1"})
    assert run["extra"]["metadata"]["ls_provider"] == "strands-agents"


# -- 11. the same call traced twice ------------------------------------------------------------------------


def _pending(run_type: str, run_id: str) -> PendingRun:
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    metadata = {"usage_metadata": usage}
    run = {
        "name": run_type,
        "run_type": run_type,
        "outputs": {"usage_metadata": usage},
        "extra": {"metadata": metadata},
    }
    return PendingRun(
        span_id=1,
        otel_trace_id=1,
        run_id=run_id,
        key=1,
        parent=None,
        start_us=START // 1000,
        end_us=None,
        run=run,
        metadata=metadata,
        resource=None,
        project_explicit=False,
    )


def test_an_llm_run_right_below_an_llm_run_keeps_its_tokens_out_of_the_count():
    outer_id, inner_id = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"
    options = {"session_name": "p", "session_id": None, "project_explicit": False, "resource": None}
    outer = place(outer_id, START // 1000, None, llm=True, **options)
    inner = _pending("llm", inner_id)
    fill(inner, place(inner_id, START // 1000, outer, llm=True, **options), outer)
    assert "usage_metadata" not in inner.run["outputs"] and "usage_metadata" not in inner.metadata
    assert inner.metadata["otel_langsmith_nested_usage"] == {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    # Below a chain, or a tool below a model call, keeps its own.
    chain = place(outer_id, START // 1000, None, **options)
    alone = _pending("llm", inner_id)
    fill(alone, place(inner_id, START // 1000, chain, llm=True, **options), chain)
    assert alone.run["outputs"]["usage_metadata"]["total_tokens"] == 3


# -- hostile values ---------------------------------------------------------------------------------

_CONTENT_KEYS = sorted(
    {
        *dialects.KEYS,
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.response.finish_reasons",
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.request.max_tokens",
        "llm.invocation_parameters",
        "llm.tools.0.tool.json_schema",
        "llm.input_messages.0.message.contents.0.message_content.type",
        "llm.input_messages.0.message.tool_calls.0.tool_call.function.arguments",
        "llm.output_messages.0.message.role",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "ai.prompt.messages",
        "ai.toolCall.args",
        "pydantic_ai.all_messages",
    }
)
_JUNK_TEXT = [
    "",
    "null",
    "[]",
    "{}",
    "[1, 2]",
    '[{"role": 5, "parts": "x"}]',
    '[{"role": "user", "parts": [{"type": "tool_call", "arguments": {"a": [1]}}, 7, null]}]',
    '[{"text": 1}, {"toolUse": 3}, {"toolResult": {"content": {"x": 1}}}]',
    '[{"name": 1, "input_schema": "x"}, {"inputSchema": 4}]',
    '{"inputs": [1], "kwargs": 3}',
    '{"output": {"lc": 1, "kwargs": {"content": [{"text": 2}]}}, "kwargs": null}',
    '{"event.name": "gen_ai.choice"}',
    '[{"event.name": "gen_ai.choice", "message": 3}, {"event.name": 7}]',
    "[" * 50,
    '{"max_tokens": "lots"}',
]


@settings(deadline=None, max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(_CONTENT_KEYS),
        st.one_of(
            st.sampled_from(_JUNK_TEXT),
            st.integers(-(2**63), 2**63 - 1),
            st.floats(allow_nan=True),
            st.booleans(),
            st.binary(max_size=8),
            st.lists(st.sampled_from(["a", "[", "{}"]), max_size=3).map(tuple),
        ),
        max_size=8,
    ),
    st.sampled_from(["tests", "pydantic-ai", "strands.telemetry.tracer"]),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "gen_ai.choice",
                    "gen_ai.user.message",
                    "gen_ai.tool.message",
                    "gen_ai.client.inference.operation.details",
                ]
            ),
            st.dictionaries(
                st.sampled_from(["message", "content", "index", "role", "tool_calls", "gen_ai.input.messages", "id"]),
                st.sampled_from(_JUNK_TEXT),
                max_size=3,
            ),
        ),
        max_size=3,
    ),
    st.sampled_from(["chat x", "execute_tool t", "invoke_agent a", "embeddings e", "span"]),
)
def test_no_value_makes_a_dialect_fail(attributes, scope, events, name):
    """Hostile values give a run (the dialects skip what they cannot read), never an exception."""
    run = convert(attributes, name=name, scope=scope, events=tuple(events))
    assert run["name"] and run["run_type"]
