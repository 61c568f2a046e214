"""OpenInference (Arize Phoenix's instrumentations): ``openinference.span.kind``, ``llm.*``,
``input.value`` / ``output.value``, ``tool.*``, ``retrieval.documents.*``, ``embedding.*``.

Messages, tools and documents are flattened into indexed keys (``llm.input_messages.0.message.role``);
``input.value`` / ``output.value`` hold what any kind of span took and gave, JSON unless
``input.mime_type`` says text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import messages as msg
from ..call import LLMCall, UsageTable, first_value, tools, usage
from ..dialect import Dialect, View, has_rule, kind_rule, prefix_rule
from ..values import as_object, as_text, json_or_text

_KINDS = {
    "llm": "llm",
    "embedding": "embedding",
    "retriever": "retriever",
    "reranker": "retriever",
    "tool": "tool",
    "prompt": "prompt",
}

_USAGE = UsageTable(
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
_RESPONSE_MODEL = ("llm.response.model_name",)
_REQUEST_MODEL = ("llm.request.model_name", "llm.model_name", "embedding.model_name")
_PROVIDER = ("llm.provider", "llm.system")
_INPUT, _OUTPUT = "input.value", "output.value"
# How to read input.value / output.value; once they are parsed it adds nothing.
_MIME = {_INPUT: "input.mime_type", _OUTPUT: "output.mime_type"}


def _call(view: View, call: LLMCall) -> None:
    a, present = view.attributes, view.present
    if "llm" not in present and "embedding" not in present:
        return
    if call.input_messages is None:
        call.input_messages = msg.from_prefix(a, "llm.input_messages", present, view.consumed) or None
    if call.output_messages is None:
        call.output_messages = msg.from_prefix(a, "llm.output_messages", present, view.consumed, answers=True) or None
    if call.tools is None:
        schemas = msg.unflatten(a, "llm.tools", present, view.consumed)
        if schemas:
            call.tools = tools([item.get("tool.json_schema") for item in schemas])
    if not call.finish_reasons:
        finish = a.get("llm.finish_reason")
        if isinstance(finish, str):
            call.finish_reasons = [finish]
        elif call.output_messages is not None and a.get(_OUTPUT) is not None:
            call.finish_reasons = _responses_finish(a[_OUTPUT], call.output_messages)
    parameters = a.get("llm.invocation_parameters")
    if parameters is not None:
        parsed = json_or_text(parameters, "llm.invocation_parameters")
        if isinstance(parsed, dict):
            for key, value in parsed.items():
                call.params.setdefault(key, value)
    if call.usage is None and "llm.token_count" in present:
        call.usage = usage(a, present, _USAGE)
    call.response_model = call.response_model or first_value(a, _RESPONSE_MODEL)
    call.request_model = call.request_model or first_value(a, _REQUEST_MODEL)
    if call.provider is None:
        provider = first_value(a, _PROVIDER)
        call.provider = as_text(provider).lower() if provider is not None else None
    if call.input_messages is not None or call.output_messages is not None:
        # The raw request and response they were rebuilt from would only repeat them.
        view.consumed.update((_INPUT, *_MIME.values(), _OUTPUT))


def _responses_finish(output: Any, messages: list[dict[str, Any]]) -> list[str]:
    """How an OpenAI Responses call ended, from the response it recorded whole (OpenInference
    writes no finish reason for it): its status, and what it holds."""
    response = json_or_text(output, _OUTPUT) if isinstance(output, (str, bytes)) else output
    if not isinstance(response, Mapping) or response.get("object") != "response":
        return []
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        return ["length" if reason == "max_output_tokens" else as_text(reason or "incomplete")]
    if response.get("status") != "completed":
        return []
    return ["tool_calls" if any(m.get("tool_calls") for m in messages) else "stop"]


def _content(view: View, run: dict[str, Any]) -> None:
    present = view.present
    run_type = run["run_type"]
    if run_type == "retriever" and "retrieval.documents" in present:
        _documents(view, run)
    elif run_type == "embedding" and "inputs" not in run and "embedding.embeddings" in present:
        items = msg.unflatten(view.attributes, "embedding.embeddings", present, view.consumed)
        texts = [item["embedding.text"] for item in items if "embedding.text" in item]
        if texts:
            run["inputs"] = {"input": texts}
    elif run_type == "tool":
        # ``tool.parameters`` is the tool's JSON schema, not this call's arguments (input.value).
        call_id = first_value(view.attributes, ("tool_call.id", "tool.id"))
        if call_id is not None:
            view.metadata.setdefault("tool_call_id", call_id)
    for field, key, wrap in (("inputs", _INPUT, "input"), ("outputs", _OUTPUT, "output")):
        if field not in run and view.attributes.get(key) is not None:
            run[field] = _value(view, key, wrap)
    found = view.attributes.get("tag.tags")
    if isinstance(found, (list, tuple)):
        view.consumed.add("tag.tags")
        run["tags"] = sorted({*run.get("tags", ()), *(as_text(tag) for tag in found)})


def _value(view: View, key: str, wrap: str) -> dict[str, Any]:
    value = view.take(key)
    mime = view.take(_MIME[key])
    if mime is not None and not (isinstance(mime, str) and "json" in mime.lower()):
        return {wrap: value}  # declared as text: kept as text, whatever it looks like
    return as_object(value, key, wrap)


def _documents(view: View, run: dict[str, Any]) -> None:
    documents = msg.unflatten(view.attributes, "retrieval.documents", view.present, view.consumed)
    converted = []
    for document in documents:
        fields = {key.removeprefix("document."): value for key, value in document.items()}
        found = fields.get("metadata")
        meta = json_or_text(found, "document metadata") if found is not None else {}
        meta = dict(meta) if isinstance(meta, Mapping) else {"metadata": meta}
        for extra in ("id", "score"):
            value = fields.get(extra)
            if value is not None:
                meta.setdefault(extra, value)
        converted.append({"page_content": fields.get("content", ""), "metadata": meta})
    if converted:
        run.setdefault("outputs", {})
        if isinstance(run["outputs"], dict):
            run["outputs"]["documents"] = converted


def _name(view: View, run_type: str) -> str | None:
    return view.take_text("tool.name") if run_type == "tool" else None


DIALECT = Dialect(
    name="openinference",
    reads=frozenset(
        (
            "llm",
            "embedding",
            "retrieval.documents",
            _INPUT,
            _OUTPUT,
            "input.mime_type",
            "output.mime_type",
            "tool.name",
            "tool_call.id",
            "tool.id",
            "tag.tags",
        )
    ),
    families=frozenset(("llm", "openinference")),
    kinds=(kind_rule(("openinference.span.kind",), _KINDS, "chain"),),
    hints=(
        has_rule(("llm.prompt_template.variables",), "prompt"),
        prefix_rule("retrieval.documents", "retriever"),
    ),
    model_keys=("llm.model_name",),
    session_keys=("session.id",),
    user_keys=("user.id",),
    call=_call,
    content=_content,
    name_of=_name,
)
