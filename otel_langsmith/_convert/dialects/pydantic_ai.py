"""pydantic-ai's own instrumentation (scope ``pydantic-ai``), beyond the GenAI keys it writes.

The agent span holds the whole conversation (``pydantic_ai.all_messages``, or
``all_messages_events`` in instrumentation version 1) and the ``final_result``; model calls hold
their cost (``operation.cost``) and, in version 1, their messages as a JSON list of events
(``events``); tools in versions 1 and 2 hold ``tool_arguments`` / ``tool_response``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import messages as msg
from ..call import LLMCall
from ..dialect import Dialect, GenAIEvent, View
from ..values import as_object, as_text, json_or_text, real
from . import genai_events


def _call(view: View, call: LLMCall) -> None:
    a = view.attributes
    cost = real(a.get("operation.cost"))
    if cost is not None and call.cost is None:
        view.consumed.add("operation.cost")
        call.cost = cost
    if a.get("events") is not None:
        found = _events(view.take("events"))
        genai_events.read(call, found)
    if a.get("pydantic_ai.all_messages") is not None and call.input_messages is None:
        _split(call, msg.from_genai(view.take("pydantic_ai.all_messages")))
    elif a.get("all_messages_events") is not None and call.input_messages is None:
        whole = LLMCall()
        genai_events.read(whole, _events(view.take("all_messages_events")))
        _split(call, whole.input_messages or [])
        call.system = call.system or whole.system
    if a.get("final_result") is not None and call.result is None:
        result = view.take("final_result")
        call.result = json_or_text(result, "final_result") if isinstance(result, str) else result


def _events(value: Any) -> list[GenAIEvent]:
    """Version 1's events, kept as a JSON list of ``{"event.name": ..., ...}`` objects."""
    parsed = json_or_text(value, "events")
    if not isinstance(parsed, list):
        return []
    return [
        (as_text(event["event.name"]), event, 0)
        for event in parsed
        if isinstance(event, Mapping) and event.get("event.name")
    ]


def _split(call: LLMCall, messages: list[dict[str, Any]]) -> None:
    """A whole conversation as what the agent was given (up to the first answer) and what it added."""
    first_answer = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages))
    call.input_messages = messages[:first_answer] or None
    call.output_messages = messages[first_answer:] or None


def _content(view: View, run: dict[str, Any]) -> None:
    if run["run_type"] != "tool":
        return
    a = view.attributes
    if "inputs" not in run and a.get("tool_arguments") is not None:
        run["inputs"] = as_object(view.take("tool_arguments"), "tool_arguments", "input")
    if "outputs" not in run and a.get("tool_response") is not None:
        run["outputs"] = {"output": msg.result_text(view.take("tool_response"))}


DIALECT = Dialect(
    name="pydantic_ai",
    scope="pydantic-ai",
    reads=frozenset(
        (
            "pydantic_ai",
            "final_result",
            "all_messages_events",
            "events",
            "operation.cost",
            "tool_arguments",
            "tool_response",
        )
    ),
    call=_call,
    content=_content,
)
