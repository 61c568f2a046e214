"""Traceloop's OpenLLMetry: ``traceloop.*``, ``llm.request.type``, and the flattened
``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` messages of its older releases.

Its LangChain instrumentation writes what a workflow, task or tool took and gave as LangChain's
callback arguments, in an envelope: ``{"inputs" | "input_str", "tags", "metadata", "kwargs"}`` and
``{"outputs" | "output", "kwargs"}``, the same document under ``traceloop.entity.*``,
``gen_ai.task.*`` and, on tools, ``gen_ai.tool.call.*``. The run gets what is inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import messages as msg
from ..call import LLMCall, first_value, tools
from ..dialect import Dialect, View, kind_rule
from ..values import as_text, json_or_text, text_list

# Where it writes a run's inputs and outputs; on a tool, the same document is in the last key too.
_INPUTS = ("traceloop.entity.input", "gen_ai.task.input", "gen_ai.tool.call.arguments")
_OUTPUTS = ("traceloop.entity.output", "gen_ai.task.output", "gen_ai.tool.call.result")
_PROPERTIES = "traceloop.association.properties."


def _call(view: View, call: LLMCall) -> None:
    a, present = view.attributes, view.present
    if call.input_messages is None and "gen_ai.prompt" in present:
        call.input_messages = msg.from_prefix(a, "gen_ai.prompt", present, view.consumed) or None
    if call.output_messages is None and "gen_ai.completion" in present:
        call.output_messages = msg.from_prefix(a, "gen_ai.completion", present, view.consumed, answers=True) or None
    if call.tools is None and "llm.request.functions" in present:
        functions = msg.unflatten(a, "llm.request.functions", present, view.consumed)
        call.tools = tools([{**f, "parameters": json_or_text(f.get("parameters"), "parameters")} for f in functions])
    call.response_model = call.response_model or first_value(a, ("llm.response.model",))
    call.request_model = call.request_model or first_value(a, ("llm.request.model",))


def _content(view: View, run: dict[str, Any]) -> None:
    a = view.attributes
    if "inputs" not in run:
        envelope = _envelope(view, _INPUTS)
        if isinstance(envelope, Mapping) and ("inputs" in envelope or "input_str" in envelope):
            found = envelope.get("inputs", envelope.get("input_str"))
            run["inputs"] = dict(found) if isinstance(found, Mapping) else {"input": found}
            _annotate(view, run, envelope)
        elif envelope is not None:
            run["inputs"] = dict(envelope) if isinstance(envelope, Mapping) else {"input": envelope}
    if "outputs" not in run:
        envelope = _envelope(view, _OUTPUTS)
        if isinstance(envelope, Mapping) and ("outputs" in envelope or "output" in envelope):
            found = envelope.get("outputs", envelope.get("output"))
            if isinstance(found, Mapping) and not _is_message(found):
                run["outputs"] = dict(found)
            else:
                run["outputs"] = {"output": _message_content(found) if run["run_type"] == "tool" else found}
        elif envelope is not None:
            run["outputs"] = dict(envelope) if isinstance(envelope, Mapping) else {"output": envelope}
    if "traceloop.association.properties" in view.present:
        for key, value in a.items():
            if key.startswith(_PROPERTIES):
                view.consumed.add(key)
                view.metadata.setdefault(key[len(_PROPERTIES) :], value)


def _envelope(view: View, keys: tuple[str, ...]) -> Any:
    """The first of ``keys`` the span has, parsed; those holding the same document are consumed
    with it (Traceloop writes it up to three times)."""
    a = view.attributes
    found = next((a[key] for key in keys[:2] if a.get(key) is not None), None)
    if found is None:
        return None
    view.consumed.update(key for key in keys if a.get(key) == found)
    return json_or_text(found, keys[0])


def _annotate(view: View, run: dict[str, Any], envelope: Mapping[str, Any]) -> None:
    """What LangChain's callback said besides the inputs: its tags, and the tool call's id."""
    if envelope.get("tags"):
        run["tags"] = sorted({*run.get("tags", ()), *text_list(envelope["tags"], "tags")})
    kwargs = envelope.get("kwargs")
    if isinstance(kwargs, Mapping) and kwargs.get("tool_call_id") is not None:
        view.metadata.setdefault("tool_call_id", kwargs["tool_call_id"])


def _is_message(value: Mapping[str, Any]) -> bool:
    """A LangChain object in its serialized form (``{"lc": 1, "type": "constructor", ...}``)."""
    return value.get("lc") == 1 and isinstance(value.get("kwargs"), Mapping)


def _message_content(value: Any) -> Any:
    """A tool's ``ToolMessage`` as the text it holds."""
    if isinstance(value, Mapping) and _is_message(value) and "content" in value["kwargs"]:
        return msg.result_text(value["kwargs"]["content"])
    return value


def _name(view: View, run_type: str) -> str | None:
    return view.take_text("traceloop.entity.name")


def _metadata_blob(view: View, run: dict[str, Any]) -> None:
    """A JSON ``metadata`` attribute (Traceloop's, and others'), as metadata entries."""
    blob = view.attributes.get("metadata")
    if isinstance(blob, str):
        parsed = json_or_text(blob, "metadata")
        if isinstance(parsed, dict):
            view.consumed.add("metadata")
            for key, value in parsed.items():
                view.metadata.setdefault(as_text(key), value)


def _all_content(view: View, run: dict[str, Any]) -> None:
    _content(view, run)
    _metadata_blob(view, run)


DIALECT = Dialect(
    name="traceloop",
    reads=frozenset(
        (
            "traceloop",
            "gen_ai.prompt",
            "gen_ai.completion",
            "gen_ai.task",
            "llm.request.functions",
            "llm.request.model",
            "llm.response.model",
            "metadata",
        )
    ),
    families=frozenset(("traceloop",)),
    kinds=(
        kind_rule(("traceloop.span.kind",), {"tool": "tool"}, "chain"),
        kind_rule(("llm.request.type", "traceloop.llm.request.type"), {"embedding": "embedding"}, "llm"),
    ),
    session_keys=(f"{_PROPERTIES}session_id", f"{_PROPERTIES}thread_id"),
    user_keys=(f"{_PROPERTIES}user_id",),
    call=_call,
    content=_all_content,
    name_of=_name,
)
