"""Which LangSmith ``run_type`` a span becomes.

Rules are tried in the priority order of ``reference/attribute-mapping.md`` section 2 and the first
answer wins; the default is ``chain``. Each rule looks at one convention's keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

RUN_TYPES = frozenset({"llm", "chain", "tool", "retriever", "embedding", "prompt", "parser"})
DEFAULT_RUN_TYPE = "chain"

Rule = Callable[[Mapping[str, Any], str], "str | None"]


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def langsmith_span_kind(attributes: Mapping[str, Any], name: str) -> str | None:
    """``langsmith.span.kind``: LangSmith's own names, case-insensitive."""
    kind = _text(attributes.get("langsmith.span.kind"))
    return kind if kind in RUN_TYPES else None


_OPENINFERENCE = {
    "llm": "llm",
    "embedding": "embedding",
    "retriever": "retriever",
    "reranker": "retriever",
    "tool": "tool",
    "prompt": "prompt",
}


def openinference_span_kind(attributes: Mapping[str, Any], name: str) -> str | None:
    kind = _text(attributes.get("openinference.span.kind"))
    if kind is None:
        return None
    return _OPENINFERENCE.get(kind, "chain")


_GENAI_OPERATIONS = {
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


def genai_operation(attributes: Mapping[str, Any], name: str) -> str | None:
    operation = _text(attributes.get("gen_ai.operation.name"))
    if operation is None:
        return None
    return _GENAI_OPERATIONS.get(operation, "chain")


def traceloop_span_kind(attributes: Mapping[str, Any], name: str) -> str | None:
    kind = _text(attributes.get("traceloop.span.kind"))
    if kind is None:
        return None
    return "tool" if kind == "tool" else "chain"


def llm_request_type(attributes: Mapping[str, Any], name: str) -> str | None:
    kind = _text(attributes.get("llm.request.type", attributes.get("traceloop.llm.request.type")))
    if kind is None:
        return None
    return "embedding" if kind == "embedding" else "llm"


_VERCEL = {
    "ai.generatetext.dogenerate": "llm",
    "ai.streamtext.dostream": "llm",
    "ai.generateobject.dogenerate": "llm",
    "ai.streamobject.dostream": "llm",
    "ai.embed.doembed": "embedding",
    "ai.embedmany.doembed": "embedding",
    "ai.toolcall": "tool",
    "ai.rerank.dorerank": "retriever",
}


def vercel_operation(attributes: Mapping[str, Any], name: str) -> str | None:
    operation = _text(attributes.get("ai.operationId"))
    if operation is None:
        return None
    return _VERCEL.get(operation, "chain")


def tool_attributes(attributes: Mapping[str, Any], name: str) -> str | None:
    return "tool" if "gen_ai.tool.name" in attributes or "gen_ai.tool.call.id" in attributes else None


def prompt_template(attributes: Mapping[str, Any], name: str) -> str | None:
    return "prompt" if "llm.prompt_template.variables" in attributes else None


def retrieval_documents(attributes: Mapping[str, Any], name: str) -> str | None:
    if any(key.startswith("retrieval.documents.") for key in attributes):
        return "retriever"
    return "retriever" if "db.vector.query.top_k" in attributes else None


_MODEL_KEYS = ("gen_ai.request.model", "gen_ai.response.model", "llm.model_name", "ai.model.id")


def model_present(attributes: Mapping[str, Any], name: str) -> str | None:
    # Only a meaningful value counts: instrumentations leave empty model keys on tool spans.
    return "llm" if any(_text(attributes.get(key)) for key in _MODEL_KEYS) else None


_NAME_PREFIXES = (
    ("chat ", "llm"),
    ("text_completion ", "llm"),
    ("generate_content ", "llm"),
    ("embeddings ", "embedding"),
    ("execute_tool ", "tool"),
)
_NAMES = {
    "openai.chat": "llm",
    "openai.completion": "llm",
    "chatcompletion": "llm",
    "completion": "llm",
    "openai.embeddings": "embedding",
    "createembeddings": "embedding",
}


def span_name(attributes: Mapping[str, Any], name: str) -> str | None:
    lowered = name.lower()
    for prefix, run_type in _NAME_PREFIXES:
        if lowered.startswith(prefix):
            return run_type
    return _NAMES.get(lowered)


RULES: list[Rule] = [
    langsmith_span_kind,
    openinference_span_kind,
    genai_operation,
    traceloop_span_kind,
    llm_request_type,
    vercel_operation,
    tool_attributes,
    prompt_template,
    retrieval_documents,
    model_present,
    span_name,
]


def infer_run_type(attributes: Mapping[str, Any], name: str) -> str:
    for rule in RULES:
        run_type = rule(attributes, name)
        if run_type is not None:
            return run_type
    return DEFAULT_RUN_TYPE
