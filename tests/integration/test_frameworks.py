"""Agent frameworks driven for real, their spans exported through the bridge to the local receiver, and
how their runs must look in LangSmith.

Each framework runs in a worker process of its own (``frameworks/*_worker.py``: instrumentations patch
globally), against a local fake of its provider's API (``frameworks/fake_openai_agents.py``,
``fake_anthropic.py``), so every value below is known. A worker runs once per mode; the tests read what it
sent.

The contract, for every framework:
- LLM runs: OpenAI chat messages in ``inputs["messages"]`` (the system prompt first, tool calls with
  ``arguments`` a JSON string, tool results as ``role: "tool"``, no ``finish_reason`` on an input message),
  OpenAI-shaped ``inputs["tools"]``, ``outputs["choices"]`` with one assistant message and an OpenAI finish
  reason, ``usage_metadata`` in outputs and in metadata, ``ls_*`` metadata, and one ``new_token`` event
  when the instrumentation records the time to the first token.
- Tool runs: named after the tool, the call's arguments as inputs, ``{"output": text}`` as outputs.
- Agent, workflow and task runs: the conversation or the input and the final result, no token counts.
- No run repeats the raw content attributes in its metadata.

Usage as the fakes report it: OpenAI 24 prompt + 7 completion = 31 tokens. Anthropic 24 input tokens
plus 4 read from and 2 written to the cache (both instrumentations count them in the input, as LangSmith
does: 30) + 7 output = 37.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from helpers import run_child

from otel_langsmith.testing import LangSmithReceiver

HERE = Path(__file__).parent

# -- running a framework ------------------------------------------------------------------------


class Received(NamedTuple):
    returncode: int
    stderr: str
    rejected: list
    problems: list[str]
    runs: dict[str, dict]


@functools.cache
def _received(worker: str, mode: str) -> Received:
    """Run the worker once (the tests of one framework share what it sent)."""
    with LangSmithReceiver() as receiver:
        command = [sys.executable, "-m", f"frameworks.{worker}_worker", mode, receiver.url, receiver.api_key]
        try:
            completed = run_child(command, cwd=str(HERE), timeout=60)
        except subprocess.TimeoutExpired:
            return Received(-1, f"{worker} {mode}: still running after 60 s", [], [], {})
        return Received(completed.returncode, completed.stderr, receiver.rejected, receiver.problems(), receiver.runs)


def traces(worker: str, mode: str) -> list[list[dict]]:
    """The traces one run of the worker sent, in the order they started, each run by run in LangSmith's
    order (a parent, then its children by start time)."""
    received = _received(worker, mode)
    assert received.returncode == 0, received.stderr
    assert received.rejected == []
    assert received.problems == []
    by_trace: dict[str, list[dict]] = {}
    for run in sorted(received.runs.values(), key=lambda r: r["dotted_order"]):
        by_trace.setdefault(run["trace_id"], []).append(run)
    return sorted(by_trace.values(), key=lambda trace: trace[0]["dotted_order"])


def outline(trace: list[dict]) -> list[tuple[int, str]]:
    """(depth, run type) of each run: how the runs nest. Any other run type counts as a chain."""
    depth: dict[str, int] = {}
    shape = []
    for run in trace:
        depth[run["id"]] = depth[run["parent_run_id"]] + 1 if run.get("parent_run_id") else 0
        shape.append((depth[run["id"]], run["run_type"] if run["run_type"] in ("llm", "tool") else "chain"))
    return shape


# -- the expected values ------------------------------------------------------------------------


def system(text: str) -> dict:
    return {"role": "system", "content": text}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str | None, *calls: dict) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = list(calls)
    return message


def tool_result(call_id: str, text: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def call(call_id: str, **arguments: Any) -> dict:
    """A tool call; its ``arguments`` are compared as the JSON string they must be, parsed."""
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


def choice(message: dict, finish_reason: str) -> dict:
    return {"index": 0, "message": message, "finish_reason": finish_reason}


def function(description: str, parameters: dict) -> dict:
    return {
        "type": "function",
        "function": {"name": "get_weather", "description": description, "parameters": parameters},
    }


def usage(input_tokens: int, output_tokens: int) -> dict:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}


ASK = user("What is the weather in Paris?")
ANSWER = "It is sunny in Paris."
OPENAI_USAGE = usage(24, 7)
OPENAI_MODEL = "gpt-4o-mini-2024-07-18"  # what the fake answers; "gpt-4o-mini" is what the clients ask for
ANTHROPIC_USAGE = usage(30, 7)
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"

# Metadata keys that hold the content the run already shows in its inputs and outputs.
RAW_CONTENT = {
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "input.value",
    "output.value",
    "pydantic_ai.all_messages",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "gen_ai.task.input",
    "gen_ai.task.output",
}
RAW_CONTENT_PREFIXES = ("llm.input_messages.", "llm.output_messages.")


def is_envelope(value: dict) -> bool:
    """Traceloop's envelope around a LangChain run's input or output, which a run must not show:
    ``{"inputs" | "input_str", "tags", "metadata", "kwargs"}`` or ``{"outputs" | "output", "kwargs"}``. A
    LangChain object as Traceloop serializes it, ``{"lc", "type", "id", "kwargs"}``, is content."""
    return bool({"inputs", "input_str", "outputs"} & set(value)) or ("kwargs" in value and "lc" not in value)


# -- reading the runs ---------------------------------------------------------------------------


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def text_of(content: Any) -> Any:
    """OpenAI content as one string: a string, or a list of text parts; None when empty. Anything else is
    returned as it is, so that a comparison shows it."""
    if content in (None, "", []):
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str) for part in content
    ):
        return "".join(part["text"] for part in content) or None
    return content


def readable(message: Any) -> Any:
    """A message with its content as text and its tool calls' arguments parsed (a non-string is marked)."""
    if not isinstance(message, dict):
        return message
    message = {**message, "content": text_of(message.get("content"))}
    if isinstance(message.get("tool_calls"), list):
        message["tool_calls"] = [_readable_call(c) for c in message["tool_calls"]]
    return message


def _readable_call(tool_call: Any) -> Any:
    called = tool_call.get("function") if isinstance(tool_call, dict) else None
    if not isinstance(called, dict) or "arguments" not in called:
        return tool_call
    arguments = called["arguments"]
    if not isinstance(arguments, str):
        parsed: Any = {"<not a JSON string>": arguments}
    else:
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = {"<not JSON>": arguments}
    return {**tool_call, "function": {**called, "arguments": parsed}}


def explain(problems: list[str]) -> str:
    return (
        "the runs break the contract (messages shown with their content as text and their tool calls'"
        " arguments parsed):\n" + "\n".join(problems)
    )


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# -- what the runs must be: each helper lists what a run gets wrong ---------------------------------


def llm_problems(
    label: str,
    run: dict,
    *,
    messages: list[dict],
    answer: dict,
    tokens: dict | None,
    provider: str,
    model: str,
    tools: list[dict] | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    first_token: bool = False,
) -> list[str]:
    """What an LLM run gets wrong. ``answer`` is its one choice; ``tokens`` None: it must carry no usage at
    all. Messages are compared with their content as text and their tool calls' arguments parsed."""
    problems = []

    def expect(what: str, actual: Any, expected: Any) -> None:
        if actual != expected:
            problems.append(f"{label}: {what} is {dump(actual)}, expected {dump(expected)}")

    inputs, outputs = run.get("inputs") or {}, run.get("outputs") or {}
    metadata = (run.get("extra") or {}).get("metadata") or {}
    expect("run_type", run.get("run_type"), "llm")
    expect("inputs.messages", [readable(m) for m in inputs.get("messages") or []], messages)
    if tools is not None:
        expect("inputs.tools", inputs.get("tools"), tools)
    choices = outputs.get("choices")
    if isinstance(choices, list):
        choices = [{**c, "message": readable(c.get("message"))} if isinstance(c, dict) else c for c in choices]
    expect("outputs.choices", choices, [answer])
    if tokens is None:
        expect("outputs.usage_metadata", outputs.get("usage_metadata"), None)
        expect("metadata.usage_metadata", metadata.get("usage_metadata"), None)
    else:
        counted = outputs.get("usage_metadata") or {}
        expect("outputs.usage_metadata", {key: counted.get(key) for key in tokens}, tokens)
        expect("metadata.usage_metadata", metadata.get("usage_metadata"), outputs.get("usage_metadata"))
    expect("metadata.ls_provider", metadata.get("ls_provider"), provider)
    expect("metadata.ls_model_name", metadata.get("ls_model_name"), model)
    expect("metadata.ls_model_type", metadata.get("ls_model_type"), "chat")
    if max_tokens is not None:
        expect("metadata.ls_max_tokens", metadata.get("ls_max_tokens"), max_tokens)
    if temperature is not None:
        expect("metadata.ls_temperature", metadata.get("ls_temperature"), temperature)
    if first_token:
        problems += first_token_problems(label, run)
    return problems


def first_token_problems(label: str, run: dict) -> list[str]:
    """The time to the first token as one ``new_token`` event within the run."""
    tokens = [event for event in run.get("events") or [] if event.get("name") == "new_token"]
    if len(tokens) != 1:
        return [f"{label}: {len(tokens)} new_token events, expected 1 (events: {dump(run.get('events'))})"]
    if not when(run["start_time"]) < when(tokens[0]["time"]) < when(run["end_time"]):
        return [f"{label}: new_token at {tokens[0]['time']}, not within {run['start_time']} .. {run['end_time']}"]
    return []


def tool_problems(label: str, run: dict, *, arguments: dict, output: str) -> list[str]:
    problems = []
    for what, actual, expected in [
        ("run_type", run.get("run_type"), "tool"),
        ("name", run.get("name"), "get_weather"),
        ("inputs", run.get("inputs"), arguments),
        ("outputs", run.get("outputs"), {"output": output}),
    ]:
        if actual != expected:
            problems.append(f"{label}: {what} is {dump(actual)}, expected {dump(expected)}")
    return problems


def chain_problems(label: str, run: dict, *, says: tuple[str, ...] = (), answers: tuple[str, ...] = ()) -> list[str]:
    """An agent, workflow or task run: inputs and outputs that hold ``says`` and ``answers`` (texts), no
    envelope around them, no token counts."""
    problems = []
    metadata = (run.get("extra") or {}).get("metadata") or {}
    for field, texts in (("inputs", says), ("outputs", answers)):
        value = run.get(field)
        if not value:
            problems.append(f"{label}: {field} is {dump(value)}, expected the run's {field}")
            continue
        if is_envelope(value):
            problems.append(f"{label}: {field} is Traceloop's envelope (keys {sorted(value)}), not its content")
        problems += [
            f"{label}: {field} lack {text!r}: {dump(value)[:600]}" for text in texts if text not in dump(value)
        ]
    if "usage_metadata" in (run.get("outputs") or {}) or "usage_metadata" in metadata:
        problems.append(f"{label}: usage_metadata on a run that is not an LLM call (its tokens would count twice)")
    return problems


def raw_content_problems(trace_list: list[list[dict]]) -> list[str]:
    problems = []
    for trace in trace_list:
        for run in trace:
            metadata = (run.get("extra") or {}).get("metadata") or {}
            repeated = sorted(k for k in metadata if k in RAW_CONTENT or k.startswith(RAW_CONTENT_PREFIXES))
            if repeated:
                problems.append(f"{run['name']} ({run['run_type']}): metadata repeats {repeated}")
    return problems


# -- pydantic-ai ----------------------------------------------------------------------------------

PYDANTIC_AI_SYSTEM = system("You are a terse weather assistant.")
PYDANTIC_AI_TOOLS = [
    function(
        "Weather of a city.",
        {
            "additionalProperties": False,
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "type": "object",
        },
    )
]
PYDANTIC_AI_LLM = {
    "provider": "openai",
    "model": OPENAI_MODEL,
    "tools": PYDANTIC_AI_TOOLS,
    "max_tokens": 100,
    "temperature": 0.2,
}
PYDANTIC_AI_CONVERSATION = [
    # (input messages, choice) of each model call in the tool-calling run
    ([PYDANTIC_AI_SYSTEM, ASK], choice(assistant(None, call("call_w1", city="Paris")), "tool_calls")),
    (
        [
            PYDANTIC_AI_SYSTEM,
            ASK,
            assistant(None, call("call_w1", city="Paris")),
            tool_result("call_w1", "sunny in Paris"),
        ],
        choice(assistant(ANSWER), "stop"),
    ),
]


@pytest.mark.parametrize("version", ["v2", "v5", "v6"])
def test_pydantic_ai_tool_calling_run(version):
    tools_trace, _ = traces("pydantic_ai", version)
    assert outline(tools_trace) == [(0, "chain"), (1, "llm"), (1, "tool"), (1, "llm")]
    agent, first, tool, second = tools_trace
    problems = []
    for label, run, (messages, answer) in zip(
        ("chat 1", "chat 2"), (first, second), PYDANTIC_AI_CONVERSATION, strict=True
    ):
        problems += llm_problems(label, run, messages=messages, answer=answer, tokens=OPENAI_USAGE, **PYDANTIC_AI_LLM)
    problems += tool_problems("tool", tool, arguments={"city": "Paris"}, output="sunny in Paris")
    problems += chain_problems(
        "agent", agent, says=("What is the weather in Paris?", "You are a terse weather assistant."), answers=(ANSWER,)
    )
    assert not problems, explain(problems)


@pytest.mark.parametrize("version", ["v2", "v5", "v6"])
def test_pydantic_ai_streamed_run(version):
    _, stream_trace = traces("pydantic_ai", version)
    assert outline(stream_trace) == [(0, "chain"), (1, "llm")]
    agent, chat = stream_trace
    problems = llm_problems(
        "chat",
        chat,
        messages=[PYDANTIC_AI_SYSTEM, user("say: hello streaming world")],
        answer=choice(assistant("hello streaming world"), "stop"),
        tokens=OPENAI_USAGE,
        first_token=True,  # gen_ai.client.operation.time_to_first_chunk, in seconds
        **PYDANTIC_AI_LLM,
    )
    problems += chain_problems("agent", agent, says=("say: hello streaming world",), answers=("hello streaming world",))
    assert not problems, explain(problems)


@pytest.mark.parametrize("version", ["v2", "v5", "v6"])
def test_pydantic_ai_keeps_content_out_of_metadata(version):
    problems = raw_content_problems(traces("pydantic_ai", version))
    assert not problems, explain(problems)


# -- the anthropic client -----------------------------------------------------------------------

WEATHER_BOT = system("You are a weather bot.")
ANTHROPIC_TOOLS = [
    function(
        "Weather of a city",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
]
LET_ME_CHECK = assistant("Let me check.", call("toolu_01", city="Paris"))


@pytest.mark.parametrize("instrumentation", ["openinference", "traceloop"])
def test_anthropic_plain_call(instrumentation):
    plain, *_ = traces("anthropic", instrumentation)
    assert outline(plain) == [(0, "llm")]
    problems = llm_problems(
        "call",
        plain[0],
        messages=[system("You are terse."), user("Capital of France?")],
        answer=choice(assistant("Paris."), "stop"),
        tokens=ANTHROPIC_USAGE,
        provider="anthropic",
        model=ANTHROPIC_MODEL,
        max_tokens=50,
    )
    assert not problems, explain(problems)


@pytest.mark.parametrize("instrumentation", ["openinference", "traceloop"])
def test_anthropic_tool_use_round_trip(instrumentation):
    _, first, second, _ = traces("anthropic", instrumentation)
    assert outline(first) == outline(second) == [(0, "llm")]
    common = {"tokens": ANTHROPIC_USAGE, "provider": "anthropic", "model": ANTHROPIC_MODEL, "max_tokens": 200}
    problems = llm_problems(
        "tool_use call",
        first[0],
        messages=[WEATHER_BOT, ASK],
        tools=ANTHROPIC_TOOLS,
        answer=choice(LET_ME_CHECK, "tool_calls"),
        **common,
    )
    problems += llm_problems(
        "tool_result call",
        second[0],
        messages=[WEATHER_BOT, ASK, LET_ME_CHECK, tool_result("toolu_01", "sunny in Paris")],
        tools=ANTHROPIC_TOOLS,
        answer=choice(assistant(ANSWER), "stop"),
        **common,
    )
    assert not problems, explain(problems)


@pytest.mark.parametrize("instrumentation", ["openinference", "traceloop"])
def test_anthropic_streamed_call(instrumentation):
    *_, stream = traces("anthropic", instrumentation)
    assert outline(stream) == [(0, "llm")]
    # Traceloop adds message_start's output count (1) to message_delta's final one (7): its span says 8.
    tokens = usage(30, 8) if instrumentation == "traceloop" else ANTHROPIC_USAGE
    problems = llm_problems(
        "streamed call",
        stream[0],
        messages=[system("You are terse."), user("say: hello streaming world")],
        answer=choice(assistant("hello streaming world"), "stop"),
        tokens=tokens,
        provider="anthropic",
        model=ANTHROPIC_MODEL,
        max_tokens=50,
    )
    assert not problems, explain(problems)


@pytest.mark.parametrize("instrumentation", ["openinference", "traceloop"])
def test_anthropic_keeps_content_out_of_metadata(instrumentation):
    problems = raw_content_problems(traces("anthropic", instrumentation))
    assert not problems, explain(problems)


# -- Traceloop's LangChain instrumentation --------------------------------------------------------

LANGCHAIN_TOOLS = [
    function(
        "Weather of a city.",
        {"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"},
    )
]


def langchain_traces() -> dict[str, list[dict]]:
    chain, create_agent, agent, stream = traces("langchain", "traceloop")
    return {"chain": chain, "create_agent": create_agent, "agent": agent, "stream": stream}


def test_traceloop_langchain_lcel_chain():
    chain = langchain_traces()["chain"]
    assert outline(chain) == [(0, "chain"), (1, "chain"), (1, "llm"), (1, "chain")]
    workflow, prompt, chat, parser = chain
    problems = llm_problems(
        "chat",
        chat,
        messages=[system("You are terse."), user("Capital of France?")],
        answer=choice(assistant("Paris."), "stop"),
        tokens=OPENAI_USAGE,
        provider="openai",
        model=OPENAI_MODEL,
        max_tokens=40,  # given as max_completion_tokens
        temperature=0.2,
    )
    problems += chain_problems("capital_chain", workflow, says=("France",), answers=("Paris.",))
    problems += chain_problems("prompt task", prompt, says=("France",), answers=("Capital of France?",))
    problems += chain_problems("parser task", parser, says=("Paris.",), answers=("Paris.",))
    assert not problems, explain(problems)
    # The chain's own input and output, as LangChain's tracer records them.
    assert (workflow["inputs"], workflow["outputs"]) == ({"country": "France"}, {"output": "Paris."})
    assert (prompt["inputs"], parser["outputs"]) == ({"country": "France"}, {"output": "Paris."})


def test_traceloop_langchain_agent_loop():
    agent = langchain_traces()["agent"]
    assert outline(agent) == [
        (0, "chain"),  # invoke_agent weather_agent
        (1, "chain"),  # weather_agent.workflow
        (2, "chain"),  # execute_task model
        (3, "llm"),
        (2, "chain"),  # execute_task tools
        (3, "tool"),
        (2, "chain"),  # execute_task model
        (3, "llm"),
    ]
    _, workflow, model_task, first, tools_task, tool, answer_task, second = agent
    common = {"tools": LANGCHAIN_TOOLS, "tokens": OPENAI_USAGE, "provider": "openai", "model": OPENAI_MODEL}
    problems = llm_problems(
        "chat 1",
        first,
        messages=[WEATHER_BOT, ASK],
        answer=choice(assistant(None, call("call_w1", city="Paris")), "tool_calls"),
        max_tokens=100,
        **common,
    )
    problems += llm_problems(
        "chat 2",
        second,
        messages=[
            WEATHER_BOT,
            ASK,
            assistant(None, call("call_w1", city="Paris")),
            tool_result("call_w1", "sunny in Paris"),
        ],
        answer=choice(assistant(ANSWER), "stop"),
        max_tokens=100,
        **common,
    )
    problems += tool_problems("tool", tool, arguments={"city": "Paris"}, output="sunny in Paris")
    problems += chain_problems("workflow", workflow, says=("What is the weather in Paris?",), answers=(ANSWER,))
    problems += chain_problems(
        "model task 1", model_task, says=("What is the weather in Paris?",), answers=("call_w1",)
    )
    problems += chain_problems("tools task", tools_task, says=("call_w1",), answers=("sunny in Paris",))
    problems += chain_problems("model task 2", answer_task, says=("sunny in Paris",), answers=(ANSWER,))
    assert not problems, explain(problems)
    assert workflow["inputs"] == {"messages": [{"role": "user", "content": "What is the weather in Paris?"}]}


def test_traceloop_langchain_streamed_model_call():
    stream = langchain_traces()["stream"]
    assert outline(stream) == [(0, "llm")]
    problems = llm_problems(
        "streamed chat",
        stream[0],
        messages=[system("You are terse."), user("say: hello streaming world")],
        # Traceloop records role "unknown" for a streamed answer.
        answer=choice(assistant("hello streaming world"), "stop"),
        tokens=OPENAI_USAGE,
        provider="openai",
        model="gpt-4o-mini",  # Traceloop records the requested model as the response's when streaming
    )
    assert not problems, explain(problems)


def test_traceloop_langchain_keeps_content_out_of_metadata():
    problems = raw_content_problems(list(langchain_traces().values()))
    assert not problems, explain(problems)


# -- Strands Agents -------------------------------------------------------------------------------

# Strands records neither the request's parameters (max_tokens, temperature) nor the tools offered on its
# model spans, and names itself ("strands-agents") as the provider: the model id tells it is OpenAI.
STRANDS_LLM = {"tokens": OPENAI_USAGE, "provider": "openai", "model": "gpt-4o-mini", "first_token": True}


@pytest.mark.parametrize("mode", ["default", "latest"])
def test_strands_agent(mode):
    (trace,) = traces("strands", mode)
    assert outline(trace) == [
        (0, "chain"),  # invoke_agent weather_agent
        (1, "chain"),  # execute_event_loop_cycle
        (2, "llm"),
        (2, "tool"),
        (1, "chain"),  # execute_event_loop_cycle
        (2, "llm"),
    ]
    agent, _, first, tool, _, second = trace
    problems = llm_problems(
        "chat 1",
        first,
        messages=[WEATHER_BOT, ASK],
        answer=choice(assistant(None, call("call_w1", city="Paris")), "tool_calls"),
        **STRANDS_LLM,
    )
    problems += llm_problems(
        "chat 2",
        second,
        messages=[
            WEATHER_BOT,
            ASK,
            assistant(None, call("call_w1", city="Paris")),
            tool_result("call_w1", "sunny in Paris"),
        ],
        answer=choice(assistant(ANSWER), "stop"),
        **STRANDS_LLM,
    )
    problems += tool_problems("tool", tool, arguments={"city": "Paris"}, output="sunny in Paris")
    problems += chain_problems(
        "agent", agent, says=("What is the weather in Paris?", "You are a weather bot."), answers=(ANSWER,)
    )
    assert not problems, explain(problems)


@pytest.mark.parametrize("mode", ["default", "latest"])
def test_strands_keeps_content_out_of_metadata(mode):
    problems = raw_content_problems(traces("strands", mode))
    assert not problems, explain(problems)


# -- one model call traced twice ------------------------------------------------------------------


@pytest.mark.parametrize("inner", ["openinference", "openai-v2"])
def test_a_model_call_traced_twice_counts_its_tokens_once(inner):
    """pydantic-ai's chat span and, under it, the OpenAI client's span from a second instrumentation."""
    tools_trace, stream_trace = traces("pydantic_ai", f"double-{inner}")
    assert outline(tools_trace) == [(0, "chain"), (1, "llm"), (2, "llm"), (1, "tool"), (1, "llm"), (2, "llm")]
    assert outline(stream_trace) == [(0, "chain"), (1, "llm"), (2, "llm")]
    calls = [
        (tools_trace[1], tools_trace[2], *PYDANTIC_AI_CONVERSATION[0]),
        (tools_trace[4], tools_trace[5], *PYDANTIC_AI_CONVERSATION[1]),
        (
            stream_trace[1],
            stream_trace[2],
            [PYDANTIC_AI_SYSTEM, user("say: hello streaming world")],
            choice(assistant("hello streaming world"), "stop"),
        ),
    ]
    problems = []
    for number, (outer, inner_run, messages, answer) in enumerate(calls, 1):
        counted = [run["name"] for run in (outer, inner_run) if "usage_metadata" in (run.get("outputs") or {})]
        if len(counted) != 1:
            problems.append(f"call {number}: {len(counted)} of its two LLM runs carry usage_metadata ({counted})")
        for label, run in ((f"call {number} outer", outer), (f"call {number} inner", inner_run)):
            carries = "usage_metadata" in (run.get("outputs") or {})
            problems += llm_problems(
                label,
                run,
                messages=messages,
                answer=answer,
                tokens=OPENAI_USAGE if carries else None,
                provider="openai",
                model=OPENAI_MODEL,
                temperature=0.2,
                # The OpenAI v2 instrumentation does not record max_completion_tokens, pydantic-ai's spelling.
                max_tokens=100 if run is outer or inner == "openinference" else None,
            )
    assert not problems, explain(problems)
