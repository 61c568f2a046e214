"""Tool, retriever and embedding runs, shaped as LangSmith shows them; and the thread and user keys.

- tool: name, arguments as ``inputs``, result as ``outputs``, the call id in metadata;
- retriever: ``outputs.documents`` of ``{page_content, metadata}``;
- embedding: ``inputs.input`` with the embedded texts;
- threads: ``session_id`` / ``thread_id`` / ``user_id`` in metadata, which LangSmith's thread view
  groups by (they are passed down to every run below, see ``assembly.Lineage``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import messages as msg
from .values import as_object, json_or_text


def tool_name(attributes: Mapping[str, Any]) -> str | None:
    for key in ("gen_ai.tool.name", "tool.name", "ai.toolCall.name"):
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def tool(attributes: Mapping[str, Any], run: dict[str, Any], metadata: dict[str, Any], consumed: set[str]) -> None:
    for key in ("gen_ai.tool.call.arguments", "tool.parameters", "ai.toolCall.args"):
        if "inputs" not in run and attributes.get(key) is not None:
            consumed.add(key)
            run["inputs"] = as_object(attributes[key], key, "input")
    for key in ("gen_ai.tool.call.result", "ai.toolCall.result"):
        if "outputs" not in run and attributes.get(key) is not None:
            consumed.add(key)
            run["outputs"] = as_object(attributes[key], key, "output")
    for key in ("gen_ai.tool.call.id", "tool_call.id", "tool.id", "ai.toolCall.id"):
        if attributes.get(key) is not None:
            metadata.setdefault("tool_call_id", attributes[key])
            break


def retriever(attributes: Mapping[str, Any], present: frozenset[str], run: dict[str, Any], consumed: set[str]) -> None:
    documents = msg.unflatten(attributes, "retrieval.documents", present, consumed)
    if not documents:
        return
    converted = []
    for document in documents:
        fields = {key.removeprefix("document."): value for key, value in document.items()}
        meta = json_or_text(fields.get("metadata"), "document metadata") if fields.get("metadata") is not None else {}
        meta = dict(meta) if isinstance(meta, Mapping) else {"metadata": meta}
        for extra in ("id", "score"):
            if fields.get(extra) is not None:
                meta.setdefault(extra, fields[extra])
        converted.append({"page_content": fields.get("content", ""), "metadata": meta})
    run.setdefault("outputs", {})
    if isinstance(run["outputs"], dict):
        run["outputs"]["documents"] = converted


def embedding(attributes: Mapping[str, Any], present: frozenset[str], run: dict[str, Any], consumed: set[str]) -> None:
    items = msg.unflatten(attributes, "embedding.embeddings", present, consumed)
    texts = [item["embedding.text"] for item in items if "embedding.text" in item]
    if texts and "inputs" not in run:
        run["inputs"] = {"input": texts}


_SESSION_KEYS = (
    "session.id",
    "gen_ai.conversation.id",
    "traceloop.association.properties.session_id",
    "traceloop.association.properties.thread_id",
    "ai.telemetry.metadata.sessionId",
)
_USER_KEYS = ("user.id", "traceloop.association.properties.user_id", "ai.telemetry.metadata.userId")
THREAD_KEYS = frozenset((*_SESSION_KEYS, *_USER_KEYS))


def thread(attributes: Mapping[str, Any], present: frozenset[str], metadata: dict[str, Any]) -> dict[str, Any]:
    """Thread and user keys; returns what the runs below should carry too."""
    inherited: dict[str, Any] = {}
    if THREAD_KEYS.isdisjoint(present) and "session_id" not in metadata and "thread_id" not in metadata:
        return inherited
    session = next((attributes[k] for k in _SESSION_KEYS if attributes.get(k) not in (None, "")), None)
    if session is None:
        session = metadata.get("session_id") or metadata.get("thread_id")
    if session is not None:
        inherited["session_id"] = str(session)
        inherited["thread_id"] = str(session)
    user = next((attributes[k] for k in _USER_KEYS if attributes.get(k) not in (None, "")), None)
    if user is not None:
        inherited["user_id"] = str(user)
    for key, value in inherited.items():
        metadata.setdefault(key, value)
    return inherited


def traceloop_metadata(attributes: Mapping[str, Any], metadata: dict[str, Any], consumed: set[str]) -> None:
    prefix = "traceloop.association.properties."
    for key, value in attributes.items():
        if key.startswith(prefix):
            consumed.add(key)
            metadata.setdefault(key[len(prefix) :], value)
    blob = attributes.get("metadata")
    if isinstance(blob, str):
        parsed = json_or_text(blob, "metadata")
        if isinstance(parsed, dict):
            consumed.add("metadata")
            for key, value in parsed.items():
                metadata.setdefault(str(key), value)
