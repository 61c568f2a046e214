"""What a model call says, gathered from the dialects, and how it becomes a LangSmith LLM run.

Each dialect (:mod:`otel_langsmith._convert.dialects`) fills what the ones before it left empty;
:func:`apply` then writes the call the way the LangSmith SDK's own LLM runs look: OpenAI chat
messages, OpenAI-shaped tools, ``choices``, ``usage_metadata``, and the ``ls_*`` metadata LangSmith
prices a call by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _ids as ids
from . import keys
from .values import as_text, json_or_text, real


@dataclass(slots=True)
class LLMCall:
    input_messages: list[dict[str, Any]] | None = None
    #: The system instructions, when the instrumentation keeps them apart from the messages.
    system: dict[str, Any] | None = None
    output_messages: list[dict[str, Any]] | None = None
    #: An agent's final result, when the instrumentation names it apart from the messages.
    result: Any = None
    finish_reasons: list[str] = field(default_factory=list)
    tools: list[Any] | None = None
    usage: dict[str, Any] | None = None
    #: What the call cost, as the instrumentation reported it (USD).
    cost: float | None = None
    response_model: str | None = None
    request_model: str | None = None
    provider: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    first_token_ns: int | None = None


# -- reading values ------------------------------------------------------------------------------


def number(value: Any) -> int | None:
    """A count as an integer; None for what is not one (text, NaN, infinities: ``"1e400"`` too)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    found = real(value)
    return int(found) if found is not None else None


def first_value(attributes: Mapping[str, Any], spellings: tuple[str, ...]) -> Any:
    """The first meaningful value among the spellings a span has of one thing."""
    # get, not []: a key set also holds prefixes ("gen_ai.system" of "gen_ai.system.x").
    for key in spellings:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


# Usage by dialect: (field, the keys that carry it, first found wins). A dotted field goes into
# input_token_details / output_token_details. A span is asked only for the keys it has.
Fields = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, a cheap question for keys.answer
class UsageTable:
    fields: Fields


def usage(attributes: Mapping[str, Any], present: frozenset[str], table: UsageTable) -> dict[str, Any] | None:
    """``usage_metadata`` from one dialect's keys; None when it names neither token count."""
    counts: dict[str, int] = {}
    details: dict[str, dict[str, int]] = {}
    for name, spelled in keys.answer(present, table, _fields_present):
        for key in spelled:
            value = number(attributes.get(key))
            if value is not None:
                side, dot, detail = name.partition(".")
                if dot:
                    details.setdefault(f"{side}_token_details", {})[detail] = value
                else:
                    counts[name] = value
                break
    if "input_tokens" not in counts and "output_tokens" not in counts:
        return None
    input_tokens, output_tokens = counts.get("input_tokens", 0), counts.get("output_tokens", 0)
    found: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": counts.get("total_tokens", input_tokens + output_tokens),
    }
    if details:
        found.update(sorted(details.items()))
    return found


def _fields_present(present: frozenset[str], table: UsageTable) -> Fields:
    return tuple((name, spelled) for name, spellings in table.fields if (spelled := keys.among(present, spellings)))


# -- tools ------------------------------------------------------------------------------------------


def tools(value: Any) -> list[Any] | None:
    """Tool definitions in any shape an instrumentation writes, as OpenAI's, which LangSmith shows:
    ``{"type": "function", "function": {"name", "description", "parameters"}}``."""
    parsed = json_or_text(value, "tools") if isinstance(value, (str, bytes)) else value
    if not isinstance(parsed, (list, tuple)):
        return None
    found = []
    for tool in parsed:
        tool = json_or_text(tool, "tool") if isinstance(tool, (str, bytes)) else tool
        found.append(_openai_tool(tool) if isinstance(tool, Mapping) else tool)
    return found


def _openai_tool(tool: Mapping[str, Any]) -> Any:
    if "function" in tool or "name" not in tool:
        return dict(tool)
    # Unset fields are left out (the openai SDK writes its models' every field, null or not).
    function = {key: value for key, value in tool.items() if key not in _TOOL_EXTRAS and value is not None}
    schema = tool.get("parameters")
    if schema is None and "input_schema" in tool:  # Anthropic's shape
        schema = tool["input_schema"]
    elif schema is None and isinstance(tool.get("inputSchema"), Mapping):  # Bedrock's (Strands)
        schema = tool["inputSchema"].get("json", tool["inputSchema"])
    if schema is not None:
        function["parameters"] = json_or_text(schema, "tool parameters") if isinstance(schema, str) else schema
    return {"type": tool.get("type") or "function", "function": function}


_TOOL_EXTRAS = frozenset(("type", "input_schema", "inputSchema", "outputSchema"))


# -- writing the run ----------------------------------------------------------------------------------

# Finish reasons as OpenAI writes them, which LangSmith shows.
_FINISH = {
    "tool_call": "tool_calls",
    "tool_use": "tool_calls",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
}
# Spellings of the maximum number of tokens in invocation parameters.
_MAX_TOKENS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "num_output", "max_new_tokens", "maxTokens")


def apply(call: LLMCall, run: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Write the call into a run the way the LangSmith SDK's own LLM runs look."""
    embedding = run.get("run_type") == "embedding"
    input_messages = _with_system(call)
    if "inputs" not in run and input_messages is not None:
        if embedding:
            run["inputs"] = {"input": [m.get("content") for m in input_messages]}
        else:
            inputs: dict[str, Any] = {"messages": input_messages}
            if call.tools:
                inputs["tools"] = call.tools
            run["inputs"] = inputs
    if "outputs" not in run and call.output_messages is not None:
        run["outputs"] = {"choices": choices(call.output_messages, call.finish_reasons)}
    if call.usage is not None:
        found = dict(call.usage, total_cost=call.cost) if call.cost is not None else call.usage
        if isinstance(run.get("outputs"), dict):
            run["outputs"].setdefault("usage_metadata", found)
        metadata["usage_metadata"] = found
    elif call.cost is not None:
        metadata["ls_reported_cost"] = call.cost
    _model(call, run, metadata, embedding)
    if call.finish_reasons:
        metadata.setdefault("finish_reasons", call.finish_reasons)
    if call.first_token_ns is not None:
        event = {"name": "new_token", "time": ids.iso_time(ids.ns_to_us(call.first_token_ns))}
        run["events"] = [event, *run.get("events", [])]


def conversation(call: LLMCall, run: dict[str, Any]) -> None:
    """Write what an agent's (or a workflow's) span says of its conversation: the messages it
    began with and those it added, and its result. No usage: its model calls have their own runs."""
    input_messages = _with_system(call)
    if "inputs" not in run and input_messages:
        inputs: dict[str, Any] = {"messages": input_messages}
        if call.tools:
            inputs["tools"] = call.tools
        run["inputs"] = inputs
    if "outputs" not in run and (call.output_messages or call.result is not None):
        outputs: dict[str, Any] = {}
        if call.output_messages:
            outputs["messages"] = [_added(message) for message in call.output_messages]
        if call.result is not None:
            outputs["output"] = call.result
        run["outputs"] = outputs


def _added(message: dict[str, Any]) -> dict[str, Any]:
    """A message an agent added, as a conversation holds it: no finish reason, a known role."""
    if "finish_reason" not in message and message.get("role") != "unknown":
        return message
    message = {key: value for key, value in message.items() if key != "finish_reason"}
    if message.get("role") == "unknown":
        message["role"] = "assistant"
    return message


def _with_system(call: LLMCall) -> list[dict[str, Any]] | None:
    """The input messages, led by the system instructions when the instrumentation kept them apart."""
    messages = call.input_messages
    if call.system is None or (messages and any(message.get("role") == "system" for message in messages)):
        return messages
    return [call.system, *(messages or ())]


def _model(call: LLMCall, run: dict[str, Any], metadata: dict[str, Any], embedding: bool) -> None:
    model = call.response_model or call.request_model
    provider = call.provider
    if model and provider not in KNOWN_PROVIDERS:
        # A framework that names itself (``strands-agents``): the model's name may tell the real one.
        provider = guess_provider(model) or provider
    if provider:
        metadata.setdefault("ls_provider", provider)
    if model:
        metadata.setdefault("ls_model_name", model)
    if not embedding:
        metadata.setdefault("ls_model_type", "chat")
    params = call.params
    if "temperature" in params:
        metadata.setdefault("ls_temperature", params["temperature"])
    for spelling in _MAX_TOKENS:
        if spelling in params:
            metadata.setdefault("ls_max_tokens", params[spelling])
            break
    if "stop" in params:
        metadata.setdefault("ls_stop", params["stop"])
    if params or model:
        invocation = dict(params)
        if model:
            invocation.setdefault("model", call.request_model or model)
        metadata.setdefault("ls_invocation_params", invocation)


# Frameworks name themselves as the provider (Strands, LangChain); the model's name tells the real
# one, which is what LangSmith prices a call by.
_MODEL_PREFIXES = (
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-embedding-", "openai"),
    ("claude", "anthropic"),
    ("gemini", "google_genai"),
    ("mistral", "mistralai"),
)
KNOWN_PROVIDERS = frozenset(
    ("openai", "anthropic", "azure", "google_genai", "google_vertexai", "mistralai", "cohere", "groq", "bedrock")
)


def guess_provider(model: str) -> str | None:
    """The provider a model name belongs to, when it says (``gpt-4o`` is OpenAI's)."""
    lowered = as_text(model).lower()
    return next((provider for prefix, provider in _MODEL_PREFIXES if lowered.startswith(prefix)), None)


def choices(messages: list[dict[str, Any]], finish_reasons: list[str]) -> list[dict[str, Any]]:
    """The model's answer as OpenAI ``choices``: what LangSmith shows as the output."""
    result = []
    for index, message in enumerate(messages):
        message = _answered(message)
        finish = message.pop("finish_reason", None) or (finish_reasons[index] if index < len(finish_reasons) else None)
        choice: dict[str, Any] = {"index": index, "message": message}
        if finish is not None:
            finish = _FINISH.get(finish, finish) if isinstance(finish, str) else as_text(finish)
            # Some record a completed response as "stop" whatever it holds (pydantic-ai's Responses model).
            choice["finish_reason"] = "tool_calls" if finish == "stop" and message.get("tool_calls") else finish
        result.append(choice)
    return result


def _answered(message: dict[str, Any]) -> dict[str, Any]:
    """A message the model answered with (a copy), as the assistant's, whatever an instrumentation
    calls it (``unknown`` when streaming, ``user`` in some)."""
    return dict(message, role="assistant")


def nested_usage(run: dict[str, Any], metadata: dict[str, Any]) -> None:
    """An LLM run inside another LLM run is the same call traced twice (a provider's client under a
    framework's model span): its tokens are the outer run's, so it keeps them in its metadata only,
    and LangSmith does not count them twice."""
    found = metadata.pop("usage_metadata", None)
    outputs = run.get("outputs")
    if isinstance(outputs, dict):
        found = outputs.pop("usage_metadata", found)
    if found is not None:
        metadata["otel_langsmith_nested_usage"] = found


__all__ = ["LLMCall", "apply", "choices", "conversation", "nested_usage", "tools", "usage"]
