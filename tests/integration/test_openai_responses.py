"""The OpenAI Responses API (``POST /v1/responses``) driven for real, its spans exported through the bridge to
the local receiver, and how its runs must look in LangSmith: the contract of ``test_frameworks.py`` (its
module docstring), whatever API the model was called through.

The worker (``frameworks/openai_responses_worker.py``) runs against the Responses API of the fake OpenAI API
(``frameworks/fake_openai_agents.py``): 24 input tokens (4 cached) + 7 output tokens (1 reasoning) = 31. The
Responses API has no finish reason: a response is ``completed``, its output a function call or a message. A
run's choice carries OpenAI's finish reason all the same: ``tool_calls`` for a function call, ``stop`` for
an answer.

The OpenTelemetry OpenAI (v2) instrumentation 2.4b0 does not trace the Responses API (it wraps only
``chat.completions.create`` and ``embeddings.create``): it has no test here.
"""

from __future__ import annotations

from test_frameworks import (
    ANSWER,
    ASK,
    OPENAI_MODEL,
    OPENAI_USAGE,
    PYDANTIC_AI_SYSTEM,
    PYDANTIC_AI_TOOLS,
    WEATHER_BOT,
    assistant,
    call,
    chain_problems,
    choice,
    explain,
    function,
    llm_problems,
    outline,
    raw_content_problems,
    system,
    tool_problems,
    tool_result,
    traces,
    user,
)

WORKER = "openai_responses"
CALLS_WEATHER = assistant(None, call("call_w1", city="Paris"))
STREAMED = "say: hello streaming world"

# -- pydantic-ai's OpenAIResponsesModel -------------------------------------------------------------

# Its instructions go out as the request's ``instructions``, its max_tokens as ``max_output_tokens``.
PYDANTIC_AI_LLM = {
    "tokens": OPENAI_USAGE,
    "provider": "openai",
    "model": OPENAI_MODEL,
    "tools": PYDANTIC_AI_TOOLS,
    "max_tokens": 100,
    "temperature": 0.2,
}


def test_pydantic_ai_responses_tool_calling_run():
    tools_trace, _ = traces(WORKER, "pydantic-ai")
    assert outline(tools_trace) == [(0, "chain"), (1, "llm"), (1, "tool"), (1, "llm")]
    agent, first, tool, second = tools_trace
    problems = llm_problems(
        "response 1",
        first,
        messages=[PYDANTIC_AI_SYSTEM, ASK],
        answer=choice(CALLS_WEATHER, "tool_calls"),
        **PYDANTIC_AI_LLM,
    )
    problems += llm_problems(
        "response 2",
        second,
        messages=[PYDANTIC_AI_SYSTEM, ASK, CALLS_WEATHER, tool_result("call_w1", "sunny in Paris")],
        answer=choice(assistant(ANSWER), "stop"),
        **PYDANTIC_AI_LLM,
    )
    problems += tool_problems("tool", tool, arguments={"city": "Paris"}, output="sunny in Paris")
    problems += chain_problems(
        "agent", agent, says=("What is the weather in Paris?", "You are a terse weather assistant."), answers=(ANSWER,)
    )
    assert not problems, explain(problems)


def test_pydantic_ai_responses_streamed_run():
    _, stream_trace = traces(WORKER, "pydantic-ai")
    assert outline(stream_trace) == [(0, "chain"), (1, "llm")]
    agent, response = stream_trace
    problems = llm_problems(
        "streamed response",
        response,
        messages=[PYDANTIC_AI_SYSTEM, user(STREAMED)],
        answer=choice(assistant("hello streaming world"), "stop"),
        first_token=True,  # gen_ai.client.operation.time_to_first_chunk, in seconds
        **PYDANTIC_AI_LLM,
    )
    problems += chain_problems("agent", agent, says=(STREAMED,), answers=("hello streaming world",))
    assert not problems, explain(problems)


def test_pydantic_ai_responses_keep_content_out_of_metadata():
    sent = traces(WORKER, "pydantic-ai")
    assert [outline(trace) for trace in sent] == [
        [(0, "chain"), (1, "llm"), (1, "tool"), (1, "llm")],
        [(0, "chain"), (1, "llm")],
    ]
    problems = raw_content_problems(sent)
    assert not problems, explain(problems)


# -- the openai client's responses.create under OpenInference -----------------------------------------

# The tool as the worker offers it (Responses' flat shape, ``strict`` given), in OpenAI's chat shape.
WEATHER_TOOL = function(
    "Weather of a city", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
)
OPENAI_CLIENT_TOOLS = [{**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "strict": False}}]
OPENAI_CLIENT_LLM = {"tokens": OPENAI_USAGE, "provider": "openai", "model": OPENAI_MODEL}


def test_openinference_responses_function_call_round_trip():
    first, second, _ = traces(WORKER, "openinference")
    assert outline(first) == outline(second) == [(0, "llm")]
    problems = llm_problems(
        "function_call response",
        first[0],
        messages=[WEATHER_BOT, ASK],
        tools=OPENAI_CLIENT_TOOLS,
        answer=choice(CALLS_WEATHER, "tool_calls"),
        max_tokens=200,  # given as max_output_tokens
        temperature=0.2,
        **OPENAI_CLIENT_LLM,
    )
    problems += llm_problems(
        "function_call_output response",
        second[0],
        messages=[WEATHER_BOT, ASK, CALLS_WEATHER, tool_result("call_w1", "sunny in Paris")],
        tools=OPENAI_CLIENT_TOOLS,
        answer=choice(assistant(ANSWER), "stop"),
        max_tokens=200,
        temperature=0.2,
        **OPENAI_CLIENT_LLM,
    )
    assert not problems, explain(problems)


def test_openinference_responses_streamed_call():
    *_, stream = traces(WORKER, "openinference")
    assert outline(stream) == [(0, "llm")]
    problems = llm_problems(
        "streamed response",
        stream[0],
        messages=[system("You are terse."), user(STREAMED)],
        answer=choice(assistant("hello streaming world"), "stop"),
        max_tokens=50,
        first_token=True,  # its "First Token Stream Event"
        **OPENAI_CLIENT_LLM,
    )
    assert not problems, explain(problems)


def test_openinference_responses_keep_content_out_of_metadata():
    sent = traces(WORKER, "openinference")
    assert [outline(trace) for trace in sent] == [[(0, "llm")]] * 3
    problems = raw_content_problems(sent)
    assert not problems, explain(problems)
