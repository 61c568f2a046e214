"""What an LLM call says, from whichever convention the instrumentation speaks (docs/conversion.md).

Each source fills only what the ones before it left empty, in the priority order of
docs/conversion.md: GenAI semantic conventions (current), OpenInference, the
flattened GenAI/Traceloop keys, GenAI events (span events or log records), Vercel AI. One
convention per field, so that a span written in two dialects is not counted twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from opentelemetry.sdk.trace import Event

from .. import _ids as ids
from . import keys
from . import messages as msg
from .conversations import Conversations
from .values import json_or_text


@dataclass
class LLMCall:
    input_messages: list[dict[str, Any]] | None = None
    output_messages: list[dict[str, Any]] | None = None
    finish_reasons: list[str] = field(default_factory=list)
    tools: list[Any] | None = None
    usage: dict[str, Any] | None = None
    response_model: str | None = None
    request_model: str | None = None
    provider: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    first_token_ns: int | None = None


# A log record or span event about the call: (name, body or attributes, timestamp in ns).
GenAIEvent = tuple[str, Mapping[str, Any], int]


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value:
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


# Usage by convention: (field, the keys that carry it, first found wins). A dotted field goes into
# input_token_details / output_token_details. Table-driven so that a span is asked only for the keys
# it has (``present``), not for every spelling of every count.
Fields = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, a cheap question for keys.answer
class UsageTable:
    fields: Fields


_GENAI_USAGE = UsageTable(
    (
        ("input_tokens", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")),
        ("output_tokens", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")),
        ("total_tokens", ("gen_ai.usage.total_tokens", "llm.usage.total_tokens")),
        ("input.cache_read", ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")),
        (
            "input.cache_creation",
            (
                "gen_ai.usage.cache_creation.input_tokens",
                "gen_ai.usage.cache_creation_input_tokens",
                "gen_ai.usage.cache_write.input_tokens",
            ),
        ),
        ("input.audio", ("gen_ai.usage.audio.input_tokens",)),
        (
            "output.reasoning",
            (
                "gen_ai.usage.reasoning.output_tokens",
                "gen_ai.usage.reasoning_tokens",
                "gen_ai.usage.details.reasoning_tokens",
            ),
        ),
        ("output.audio", ("gen_ai.usage.audio.output_tokens",)),
    )
)
_OPENINFERENCE_USAGE = UsageTable(
    (
        ("input_tokens", ("llm.token_count.prompt",)),
        ("output_tokens", ("llm.token_count.completion",)),
        ("total_tokens", ("llm.token_count.total",)),
        ("input.cache_read", ("llm.token_count.prompt_details.cache_read",)),
        ("input.cache_creation", ("llm.token_count.prompt_details.cache_write",)),
        ("input.audio", ("llm.token_count.prompt_details.audio",)),
        ("output.reasoning", ("llm.token_count.completion_details.reasoning",)),
        ("output.audio", ("llm.token_count.completion_details.audio",)),
    )
)
_VERCEL_USAGE = UsageTable(
    (
        ("input_tokens", ("ai.usage.inputTokens", "ai.usage.promptTokens")),
        ("output_tokens", ("ai.usage.outputTokens", "ai.usage.completionTokens")),
        ("total_tokens", ("ai.usage.totalTokens",)),
        ("input.cache_read", ("ai.usage.cachedInputTokens",)),
        ("output.reasoning", ("ai.usage.reasoningTokens",)),
    )
)


def _usage(a: Mapping[str, Any], present: frozenset[str], table: UsageTable) -> dict[str, Any] | None:
    """``usage_metadata`` from one convention's keys; None when it names neither token count."""
    # Only the fields the span has a spelling of, worked out once per key set.
    fields = keys.answer(present, table, _fields_present)
    counts: dict[str, int] = {}
    details: dict[str, dict[str, int]] = {}
    for name, spelled in fields:
        for key in spelled:
            number = _number(a.get(key))
            if number is not None:
                side, dot, detail = name.partition(".")
                if dot:
                    details.setdefault(f"{side}_token_details", {})[detail] = number
                else:
                    counts[name] = number
                break
    if "input_tokens" not in counts and "output_tokens" not in counts:
        return None
    input_tokens, output_tokens = counts.get("input_tokens", 0), counts.get("output_tokens", 0)
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": counts.get("total_tokens", input_tokens + output_tokens),
    }
    if details:
        usage.update(sorted(details.items()))
    return usage


def _fields_present(present: frozenset[str], table: UsageTable) -> Fields:
    return tuple((name, spelled) for name, spellings in table.fields if (spelled := keys.among(present, spellings)))


_PARAMS = {
    "gen_ai.request.temperature": "temperature",
    "gen_ai.request.top_p": "top_p",
    "gen_ai.request.top_k": "top_k",
    "gen_ai.request.max_tokens": "max_tokens",
    "gen_ai.request.frequency_penalty": "frequency_penalty",
    "gen_ai.request.presence_penalty": "presence_penalty",
    "gen_ai.request.seed": "seed",
    "gen_ai.request.stop_sequences": "stop",
    "gen_ai.request.choice.count": "n",
}


_PARAM_KEYS = tuple(_PARAMS)
_RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model", "ai.response.model")
_REQUEST_MODEL = ("gen_ai.request.model", "llm.model_name", "llm.request.model", "ai.model.id", "embedding.model_name")
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "ai.model.provider")
_MS_TO_FIRST_CHUNK = ("ai.response.msToFirstChunk", "ai.stream.msToFirstChunk")


class _Spellings(NamedTuple):
    """Which spellings of the call's single-valued fields a key set holds, in priority order:
    asked once per key set instead of once per field and span."""

    response_model: tuple[str, ...]
    request_model: tuple[str, ...]
    provider: tuple[str, ...]
    params: tuple[str, ...]
    ms_to_first_chunk: tuple[str, ...]


def _spellings(present: frozenset[str], question: object) -> _Spellings:
    fields = (_RESPONSE_MODEL, _REQUEST_MODEL, _PROVIDER, _PARAM_KEYS, _MS_TO_FIRST_CHUNK)
    return _Spellings(*(keys.held(present, spellings) for spellings in fields))


def _first_value(attributes: Mapping[str, Any], spellings: tuple[str, ...]) -> Any:
    """The first meaningful value among the spellings a span has of one thing."""
    # get, not []: a key set also holds prefixes ("gen_ai.system" of "gen_ai.system.x").
    for key in spellings:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


def _tools(value: Any) -> list[Any] | None:
    parsed = json_or_text(value, "tools") if isinstance(value, (str, bytes)) else value
    if not isinstance(parsed, (list, tuple)):
        return None
    tools = []
    for tool in parsed:
        tool = json_or_text(tool, "tool") if isinstance(tool, (str, bytes)) else tool
        if isinstance(tool, Mapping) and "function" not in tool and "name" in tool:
            # The GenAI flat form: give it OpenAI's shape, which LangSmith shows as tools.
            tool = {"type": tool.get("type", "function"), "function": {k: v for k, v in tool.items() if k != "type"}}
        tools.append(tool)
    return tools


def _event_message(name: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
    role = name.removeprefix("gen_ai.").removesuffix(".message")
    message: dict[str, Any] = {"role": msg.normalize_role(body.get("role") or role)}
    if "content" in body:
        message["content"] = body["content"]
    if body.get("tool_calls"):
        message["tool_calls"] = [
            msg._tool_call(
                call.get("id"),
                (call.get("function") or {}).get("name"),
                (call.get("function") or {}).get("arguments", ""),
            )
            for call in body["tool_calls"]
            if isinstance(call, Mapping)
        ]
        message.setdefault("content", None)
    if body.get("id") and message["role"] == "tool":
        message["tool_call_id"] = body["id"]
    return message


def _from_events(call: LLMCall, events: Sequence[GenAIEvent]) -> None:
    inputs: list[dict[str, Any]] = []
    outputs: list[tuple[int, dict[str, Any], str | None]] = []
    for name, body, _ in events:
        if name in ("gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message", "gen_ai.tool.message"):
            message = _event_message(name, body)
            if message is not None:
                inputs.append(message)
        elif name == "gen_ai.choice":
            raw = body.get("message")
            said: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            calls = body.get("tool_calls") or said.get("tool_calls")
            entry = _event_message("gen_ai.assistant.message", {**said, "tool_calls": calls})
            if entry is not None:
                outputs.append((_number(body.get("index")) or 0, entry, body.get("finish_reason")))
        elif name == "gen_ai.client.inference.operation.details":
            details = LLMCall()
            _genai_current(details, body, set())
            call.input_messages = call.input_messages or details.input_messages
            call.output_messages = call.output_messages or details.output_messages
    if inputs and call.input_messages is None:
        call.input_messages = inputs
    if outputs and call.output_messages is None:
        outputs.sort(key=lambda item: item[0])
        call.output_messages = [message for _, message, _ in outputs]
        if not call.finish_reasons:
            call.finish_reasons = [finish or "" for _, _, finish in outputs]


def _genai_current(
    call: LLMCall, a: Mapping[str, Any], consumed: set[str], conversations: Conversations | None = None
) -> None:
    if a.get("gen_ai.input.messages") is not None:
        consumed.add("gen_ai.input.messages")
        if conversations is not None:
            found = conversations.messages(a["gen_ai.input.messages"])
            system = conversations.system(a.get("gen_ai.system_instructions"))
        else:
            found = msg.from_genai(a["gen_ai.input.messages"])
            system = msg.system_instructions(a.get("gen_ai.system_instructions"))
        if system is not None:
            consumed.add("gen_ai.system_instructions")
            if not any(m.get("role") == "system" for m in found):
                found.insert(0, system)
        call.input_messages = found or None
    if a.get("gen_ai.output.messages") is not None:
        consumed.add("gen_ai.output.messages")
        call.output_messages = msg.from_genai(a["gen_ai.output.messages"]) or None
    if call.tools is None and a.get("gen_ai.tool.definitions") is not None:
        consumed.add("gen_ai.tool.definitions")
        call.tools = _tools(a["gen_ai.tool.definitions"])


def _flattened(
    call: LLMCall, a: Mapping[str, Any], present: frozenset[str], consumed: set[str], inputs: str, outputs: str
) -> None:
    """Messages flattened under two prefixes, where the call has none yet."""
    if call.input_messages is None:
        call.input_messages = msg.from_prefix(a, inputs, present, consumed) or None
    if call.output_messages is None:
        call.output_messages = msg.from_prefix(a, outputs, present, consumed) or None


def _openinference(call: LLMCall, a: Mapping[str, Any], present: frozenset[str], consumed: set[str]) -> None:
    _flattened(call, a, present, consumed, "llm.input_messages", "llm.output_messages")
    if call.tools is None:
        schemas = msg.unflatten(a, "llm.tools", present, consumed)
        if schemas:
            call.tools = _tools([item.get("tool.json_schema") for item in schemas])
    if isinstance(a.get("llm.finish_reason"), str) and not call.finish_reasons:
        call.finish_reasons = [a["llm.finish_reason"]]
    parameters = a.get("llm.invocation_parameters")
    if parameters is not None:
        parsed = json_or_text(parameters, "llm.invocation_parameters")
        if isinstance(parsed, dict):
            for key, value in parsed.items():
                call.params.setdefault(key, value)


def _legacy_flat(call: LLMCall, a: Mapping[str, Any], present: frozenset[str], consumed: set[str]) -> None:
    _flattened(call, a, present, consumed, "gen_ai.prompt", "gen_ai.completion")
    if call.tools is None:
        functions = msg.unflatten(a, "llm.request.functions", present, consumed)
        if functions:
            call.tools = _tools(
                [
                    {
                        "type": "function",
                        "function": {**f, "parameters": json_or_text(f.get("parameters"), "parameters")},
                    }
                    for f in functions
                ]
            )


def _vercel(call: LLMCall, a: Mapping[str, Any], consumed: set[str]) -> None:
    if call.input_messages is None and a.get("ai.prompt.messages") is not None:
        consumed.add("ai.prompt.messages")
        parsed = json_or_text(a["ai.prompt.messages"], "ai.prompt.messages")
        if isinstance(parsed, list):
            found = []
            for message in parsed:
                if not isinstance(message, Mapping):
                    continue
                content = message.get("content")
                if isinstance(content, list):
                    texts = [p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
                    content = "".join(texts)
                found.append({"role": msg.normalize_role(message.get("role")), "content": content})
            call.input_messages = found or None
    if call.output_messages is None and a.get("ai.response.text") is not None:
        consumed.add("ai.response.text")
        call.output_messages = [{"role": "assistant", "content": a["ai.response.text"]}]


def extract(
    attributes: Mapping[str, Any],
    present: frozenset[str],
    events: Sequence[Event],
    logs: Sequence[GenAIEvent],
    start_ns: int,
    consumed: set[str],
    conversations: Conversations | None = None,
) -> LLMCall:
    """Everything the span (and its log records) says about the model call.

    ``present`` is :func:`keys.present` of the attributes: a convention none of whose keys the span
    has is not asked (most of the cost of a model span used to be asking them all).
    ``conversations`` converts GenAI input messages from what earlier calls converted.
    """
    a = attributes
    call = LLMCall()
    _genai_current(call, a, consumed, conversations)
    if "llm" in present:
        _openinference(call, a, present, consumed)
    if "gen_ai.prompt" in present or "gen_ai.completion" in present or "llm.request.functions" in present:
        _legacy_flat(call, a, present, consumed)
    if events or logs:
        span_events: list[GenAIEvent] = [(e.name, e.attributes or {}, e.timestamp) for e in events]
        _from_events(call, [*span_events, *logs])
    if "ai" in present:
        _vercel(call, a, consumed)

    call.usage = (
        (_usage(a, present, _GENAI_USAGE) if "gen_ai.usage" in present or "llm.usage" in present else None)
        or (_usage(a, present, _OPENINFERENCE_USAGE) if "llm.token_count" in present else None)
        or (_usage(a, present, _VERCEL_USAGE) if "ai.usage" in present else None)
    )
    spelled = keys.answer(present, _Spellings, _spellings)
    call.response_model = _first_value(a, spelled.response_model)
    call.request_model = _first_value(a, spelled.request_model)
    provider = _first_value(a, spelled.provider)
    call.provider = str(provider).lower().split(".")[0] if provider is not None else None
    for key in spelled.params:
        value = a.get(key)
        if value is not None:
            call.params.setdefault(_PARAMS[key], list(value) if isinstance(value, tuple) else value)
    finish = a.get("gen_ai.response.finish_reasons")
    if finish is not None and not call.finish_reasons:
        call.finish_reasons = [str(f) for f in (finish if isinstance(finish, (list, tuple)) else [finish])]

    call.first_token_ns = _first_token_ns(a, spelled, events, start_ns)
    return call


def _first_token_ns(a: Mapping[str, Any], spelled: _Spellings, events: Sequence[Event], start_ns: int) -> int | None:
    """Time to first token, from whichever clock the convention keeps."""
    ttfc = a.get("gen_ai.response.time_to_first_chunk")
    if isinstance(ttfc, (int, float)) and not isinstance(ttfc, bool):
        return start_ns + int(ttfc * 1e9)
    ms = _first_value(a, spelled.ms_to_first_chunk)
    if isinstance(ms, (int, float)) and not isinstance(ms, bool):
        return start_ns + int(ms * 1e6)
    for event in events:
        if event.name in _FIRST_CHUNK_EVENTS:
            return event.timestamp
    return None


_FIRST_CHUNK_EVENTS = frozenset(
    (
        "First Token Stream Event",
        "gen_ai.content.completion.chunk",
        "llm.content.completion.chunk",
        "ai.stream.firstChunk",
    )
)


def apply(call: LLMCall, run: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Write the call into an ``llm`` run the way the LangSmith SDK's own LLM runs look."""
    if "inputs" not in run and call.input_messages is not None:
        inputs: dict[str, Any] = {"messages": call.input_messages}
        if call.tools:
            inputs["tools"] = call.tools
        run["inputs"] = inputs
    if "outputs" not in run and call.output_messages is not None:
        run["outputs"] = {"choices": msg.choices(call.output_messages, call.finish_reasons)}
    if call.usage is not None:
        if isinstance(run.get("outputs"), dict):
            run["outputs"].setdefault("usage_metadata", call.usage)
        metadata["usage_metadata"] = call.usage
    model = call.response_model or call.request_model
    if call.provider:
        metadata.setdefault("ls_provider", call.provider)
    if model:
        metadata.setdefault("ls_model_name", model)
    metadata.setdefault(
        "ls_model_type", "chat" if call.input_messages is not None or run.get("run_type") == "llm" else "llm"
    )
    for key in ("temperature", "max_tokens", "stop"):
        if key in call.params:
            metadata.setdefault(f"ls_{key}", call.params[key])
    if call.params or model:
        params = dict(call.params)
        if model:
            params.setdefault("model", call.request_model or model)
        metadata.setdefault("ls_invocation_params", params)
    if call.finish_reasons:
        metadata.setdefault("finish_reasons", call.finish_reasons)
    if call.first_token_ns is not None:
        event = {"name": "new_token", "time": ids.iso_time(ids.ns_to_us(call.first_token_ns))}
        run["events"] = [event, *run.get("events", [])]
