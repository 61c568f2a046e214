"""The OpenTelemetry GenAI semantic conventions, as span attributes (``gen_ai.*``).

Messages as ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (parts), system instructions and
tool definitions apart; usage, model, provider, request parameters; tool calls as ``execute_tool``
spans. Written by the OpenAI and Anthropic instrumentations of OpenTelemetry and Traceloop, by
pydantic-ai, Strands, OpenLIT and the LangSmith SDK, among others.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import keys
from .. import messages as msg
from ..call import LLMCall, UsageTable, first_value, tools, usage
from ..dialect import Dialect, View, has_rule, kind_rule
from ..values import as_object, as_text, real

_OPERATIONS = {
    "chat": "llm",
    "text_completion": "llm",
    "completion": "llm",
    "generate_content": "llm",
    "generate": "llm",
    "embeddings": "embedding",
    "embedding": "embedding",
    "execute_tool": "tool",
    "retrieval": "retriever",
    "search_memory": "retriever",
}

_USAGE = UsageTable(
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
_RESPONSE_MODEL = ("gen_ai.response.model",)
_REQUEST_MODEL = ("gen_ai.request.model",)
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
# Time to first token, in seconds (the key a library chose; a value in milliseconds is told apart
# by the span's length, see _first_token).
_FIRST_TOKEN = (
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.client.operation.time_to_first_chunk",
    "gen_ai.server.time_to_first_token",
)


class _Spellings(NamedTuple):
    """Which keys of each single-valued field a key set holds, in priority order: asked once per
    key set, not once per field and span."""

    response_model: tuple[str, ...]
    request_model: tuple[str, ...]
    provider: tuple[str, ...]
    params: tuple[str, ...]
    first_token: tuple[str, ...]


def _spellings(present: frozenset[str], question: object) -> _Spellings:
    fields = (_RESPONSE_MODEL, _REQUEST_MODEL, _PROVIDER, _PARAM_KEYS, _FIRST_TOKEN)
    return _Spellings(*(keys.held(present, spellings) for spellings in fields))


_TOOL_KEYS = ("gen_ai.tool.name", "gen_ai.tool.call.id")


def _call(view: View, call: LLMCall) -> None:
    a, present = view.attributes, view.present
    if call.input_messages is None and a.get("gen_ai.input.messages") is not None:
        value = view.take("gen_ai.input.messages")
        found = view.conversations.messages(value) if view.conversations is not None else msg.from_genai(value)
        call.input_messages = found or None
    if call.system is None and a.get("gen_ai.system_instructions") is not None:
        value = a["gen_ai.system_instructions"]
        system = view.conversations.system(value) if view.conversations is not None else msg.system_instructions(value)
        if system is not None:
            view.consumed.add("gen_ai.system_instructions")
            call.system = system
    if call.output_messages is None and a.get("gen_ai.output.messages") is not None:
        call.output_messages = msg.from_genai(view.take("gen_ai.output.messages"), answers=True) or None
    if call.tools is None and a.get("gen_ai.tool.definitions") is not None:
        call.tools = tools(view.take("gen_ai.tool.definitions"))
    if call.usage is None and ("gen_ai.usage" in present or "llm.usage" in present):
        call.usage = usage(a, present, _USAGE)
    spelled: _Spellings = keys.answer(present, _Spellings, _spellings)
    if call.response_model is None:
        call.response_model = first_value(a, spelled.response_model)
    if call.request_model is None:
        call.request_model = first_value(a, spelled.request_model)
    if call.provider is None:
        provider = first_value(a, spelled.provider)
        call.provider = as_text(provider).lower().split(".")[0] if provider is not None else None
    for key in spelled.params:
        value = a.get(key)
        if value is not None:
            call.params.setdefault(_PARAMS[key], list(value) if isinstance(value, tuple) else value)
    finish = a.get("gen_ai.response.finish_reasons")
    if finish is not None and not call.finish_reasons:
        call.finish_reasons = [as_text(f) for f in (finish if isinstance(finish, (list, tuple)) else [finish])]
    if call.first_token_ns is None and spelled.first_token:
        call.first_token_ns = _first_token(view, spelled.first_token)


def _first_token(view: View, spelled: tuple[str, ...]) -> int | None:
    if view.attributes.get("gen_ai.request.stream") is False:
        return None  # a call that did not stream: the time written is the whole answer's
    for key in spelled:
        value = real(view.attributes.get(key))
        if value is not None and value >= 0:
            duration = view.duration()
            if duration is not None and value > duration and value / 1000 <= duration:
                value = value / 1000  # milliseconds, whatever the key says: a token within the span
            return view.after(value)
    return None


def _content(view: View, run: dict[str, Any]) -> None:
    if run["run_type"] != "tool":
        return
    a = view.attributes
    if "inputs" not in run and a.get("gen_ai.tool.call.arguments") is not None:
        run["inputs"] = as_object(view.take("gen_ai.tool.call.arguments"), "gen_ai.tool.call.arguments", "input")
    if "outputs" not in run and a.get("gen_ai.tool.call.result") is not None:
        run["outputs"] = {"output": msg.result_text(view.take("gen_ai.tool.call.result"))}
    if a.get("gen_ai.tool.call.id") is not None:
        view.metadata.setdefault("tool_call_id", a["gen_ai.tool.call.id"])


def _name(view: View, run_type: str) -> str | None:
    return view.take_text("gen_ai.tool.name") if run_type == "tool" else None


DIALECT = Dialect(
    name="genai",
    reads=frozenset(
        (
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.system_instructions",
            "gen_ai.tool",
            "gen_ai.usage",
            "llm.usage",
            "gen_ai.response",
            "gen_ai.client",
            "gen_ai.server",
            "gen_ai.provider.name",
            "gen_ai.system",
            "gen_ai.request",
        )
    ),
    families=frozenset(("gen_ai",)),
    kinds=(kind_rule(("gen_ai.operation.name",), _OPERATIONS, "chain"),),
    hints=(has_rule(_TOOL_KEYS, "tool"), has_rule(("db.vector.query.top_k",), "retriever")),
    model_keys=(*_REQUEST_MODEL, *_RESPONSE_MODEL),
    session_keys=("gen_ai.conversation.id",),
    call=_call,
    content=_content,
    name_of=_name,
)
