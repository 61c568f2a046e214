"""The GenAI semantic conventions as events: span events or log records, one per message
(``gen_ai.user.message``, ``gen_ai.choice``...; the legacy form) or one per call
(``gen_ai.client.inference.operation.details``; the current one).

Values arrive structured (log records) or as JSON strings (span events), and message content as
text, GenAI parts or a provider's content blocks (Bedrock's, from Strands): all are read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import messages as msg
from ..call import LLMCall, number, tools
from ..dialect import Dialect, GenAIEvent, View
from ..values import as_object, json_or_text

_MESSAGES = frozenset(
    ("gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message", "gen_ai.tool.message")
)
_DETAILS = "gen_ai.client.inference.operation.details"
# Events some instrumentations record when the first chunk of a streamed answer arrives.
_FIRST_CHUNK = frozenset(
    (
        "First Token Stream Event",
        "gen_ai.content.completion.chunk",
        "llm.content.completion.chunk",
        "ai.stream.firstChunk",
    )
)


def read(call: LLMCall, events: Iterable[GenAIEvent]) -> None:
    """Fill what the call still lacks from GenAI events."""
    inputs: list[dict[str, Any]] = []
    outputs: list[tuple[int, list[dict[str, Any]]]] = []
    details = LLMCall()
    for name, body, timestamp in events:
        if name in _MESSAGES:
            content = body.get("content")
            if name == "gen_ai.user.message" and isinstance(content, Mapping) and "tools" in content:
                # Traceloop logs the request's tools as a user message.
                details.tools = details.tools or tools(content["tools"])
                continue
            inputs.extend(msg.from_event(name, body))
        elif name == "gen_ai.choice":
            outputs.append((number(body.get("index")) or 0, msg.from_event(name, body)))
        elif name == _DETAILS:
            _details(details, body)
        elif name in _FIRST_CHUNK and call.first_token_ns is None:
            call.first_token_ns = timestamp
    if call.input_messages is None:
        call.input_messages = details.input_messages or inputs or None
    if call.system is None:
        call.system = details.system
    if call.output_messages is None:
        outputs.sort(key=lambda item: item[0])
        call.output_messages = details.output_messages or [m for _, found in outputs for m in found] or None
    if call.tools is None:
        call.tools = details.tools
    if not call.finish_reasons and call.output_messages:
        reasons = [m.get("finish_reason") for m in call.output_messages]
        if any(reasons):
            call.finish_reasons = [reason or "" for reason in reasons]


def _details(call: LLMCall, body: Mapping[str, Any]) -> None:
    """One ``operation.details`` record; a call may be spread over several (Strands writes one per
    attribute, and one per batch of input messages)."""
    if body.get("gen_ai.input.messages") is not None:
        call.input_messages = [*(call.input_messages or ()), *msg.from_genai(_parsed(body["gen_ai.input.messages"]))]
    if body.get("gen_ai.output.messages") is not None:
        call.output_messages = [
            *(call.output_messages or ()),
            *msg.from_genai(_parsed(body["gen_ai.output.messages"]), answers=True),
        ]
    if call.system is None and body.get("gen_ai.system_instructions") is not None:
        call.system = msg.system_instructions(body["gen_ai.system_instructions"])
    if call.tools is None and body.get("gen_ai.tool.definitions") is not None:
        call.tools = tools(body["gen_ai.tool.definitions"])


def _parsed(value: Any) -> Any:
    # Log records carry structured values; span events, JSON strings; tuples are the SDK's lists.
    if isinstance(value, tuple):
        return [json_or_text(item, "message") if isinstance(item, str) else item for item in value]
    return json_or_text(value, "gen_ai messages")


def _call(view: View, call: LLMCall) -> None:
    if view.events or view.logs:
        read(call, view.genai_events)


def _content(view: View, run: dict[str, Any]) -> None:
    """A tool's arguments and result, when they are events (Strands): its ``gen_ai.tool.message``
    and ``gen_ai.choice``, or its ``operation.details``."""
    if run["run_type"] != "tool" or not (view.events or view.logs) or ("inputs" in run and "outputs" in run):
        return
    for name, body, _ in view.genai_events:
        if name == "gen_ai.tool.message" and "inputs" not in run and body.get("content") is not None:
            run["inputs"] = as_object(body["content"], name, "input")
        elif name == "gen_ai.choice" and "outputs" not in run and body.get("message") is not None:
            run["outputs"] = {"output": msg.result_text(body["message"])}
        elif name == _DETAILS:
            _tool_details(body, run)


def _tool_details(body: Mapping[str, Any], run: dict[str, Any]) -> None:
    for key, field in (("gen_ai.input.messages", "inputs"), ("gen_ai.output.messages", "outputs")):
        if field in run or body.get(key) is None:
            continue
        for message in msg.from_genai(_parsed(body[key])):
            for tool_call in message.get("tool_calls") or ():
                function = tool_call.get("function") if isinstance(tool_call, Mapping) else None
                if field == "inputs" and isinstance(function, Mapping) and "arguments" in function:
                    run["inputs"] = as_object(function["arguments"], key, "input")
            if message.get("role") == "tool" and field == "outputs":
                run["outputs"] = {"output": message.get("content")}


DIALECT = Dialect(name="genai_events", events=True, call=_call, content=_content)
