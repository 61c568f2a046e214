"""The Vercel AI SDK's telemetry (``ai.*``): spans named by ``ai.operationId``, prompts as JSON,
usage, tool calls, and the user's ``ai.telemetry.metadata.*``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import messages as msg
from ..call import LLMCall, UsageTable, first_value, usage
from ..dialect import Dialect, View, kind_rule
from ..values import as_object, as_text, json_or_text, real

_OPERATIONS = {
    "ai.generatetext.dogenerate": "llm",
    "ai.streamtext.dostream": "llm",
    "ai.generateobject.dogenerate": "llm",
    "ai.streamobject.dostream": "llm",
    "ai.embed.doembed": "embedding",
    "ai.embedmany.doembed": "embedding",
    "ai.toolcall": "tool",
    "ai.rerank.dorerank": "retriever",
}

_USAGE = UsageTable(
    (
        ("input_tokens", ("ai.usage.inputTokens", "ai.usage.promptTokens")),
        ("output_tokens", ("ai.usage.outputTokens", "ai.usage.completionTokens")),
        ("total_tokens", ("ai.usage.totalTokens",)),
        ("input.cache_read", ("ai.usage.cachedInputTokens",)),
        ("output.reasoning", ("ai.usage.reasoningTokens",)),
    )
)
_MS_TO_FIRST_CHUNK = ("ai.response.msToFirstChunk", "ai.stream.msToFirstChunk")


def _call(view: View, call: LLMCall) -> None:
    a, present = view.attributes, view.present
    if "ai" not in present:
        return
    if call.input_messages is None and a.get("ai.prompt.messages") is not None:
        call.input_messages = _messages(view.take("ai.prompt.messages")) or None
    if call.output_messages is None and a.get("ai.response.text") is not None:
        call.output_messages = [{"role": "assistant", "content": view.take("ai.response.text")}]
    if call.usage is None and "ai.usage" in present:
        call.usage = usage(a, present, _USAGE)
    call.response_model = call.response_model or first_value(a, ("ai.response.model",))
    call.request_model = call.request_model or first_value(a, ("ai.model.id",))
    if call.provider is None:
        provider = first_value(a, ("ai.model.provider",))
        call.provider = as_text(provider).lower().split(".")[0] if provider is not None else None
    ms = real(first_value(a, _MS_TO_FIRST_CHUNK))
    if call.first_token_ns is None and ms is not None and ms >= 0:
        call.first_token_ns = view.after(ms / 1000)


def _messages(value: Any) -> list[dict[str, Any]]:
    parsed = json_or_text(value, "ai.prompt.messages")
    if isinstance(parsed, str) and parsed.strip():
        return [{"role": "user", "content": parsed}]  # not JSON: shown as the text it is, not lost
    if not isinstance(parsed, list):
        return []
    found = []
    for message in parsed:
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        if isinstance(content, list):
            texts = [as_text(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
            content = "".join(texts)
        found.append({"role": msg.normalize_role(message.get("role")), "content": content})
    return found


def _content(view: View, run: dict[str, Any]) -> None:
    if run["run_type"] != "tool":
        return
    a = view.attributes
    if "inputs" not in run and a.get("ai.toolCall.args") is not None:
        run["inputs"] = as_object(view.take("ai.toolCall.args"), "ai.toolCall.args", "input")
    if "outputs" not in run and a.get("ai.toolCall.result") is not None:
        run["outputs"] = {"output": msg.result_text(view.take("ai.toolCall.result"))}
    if a.get("ai.toolCall.id") is not None:
        view.metadata.setdefault("tool_call_id", a["ai.toolCall.id"])


def _name(view: View, run_type: str) -> str | None:
    return view.take_text("ai.toolCall.name") if run_type == "tool" else None


DIALECT = Dialect(
    name="vercel",
    reads=frozenset(("ai",)),
    families=frozenset(("ai",)),
    kinds=(kind_rule(("ai.operationId",), _OPERATIONS, "chain"),),
    model_keys=("ai.model.id",),
    session_keys=("ai.telemetry.metadata.sessionId",),
    user_keys=("ai.telemetry.metadata.userId",),
    call=_call,
    content=_content,
    name_of=_name,
)
