"""Which LangSmith ``run_type`` a span becomes.

Rules are tried in the priority order of ``reference/attribute-mapping.md`` section 2 and the first
answer wins; the default is ``chain``. Each rule looks at one convention's keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import keys

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
    if "db.vector.query.top_k" in attributes or any(key.startswith("retrieval.documents.") for key in attributes):
        return "retriever"
    return None


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


# Span names repeat ("POST", "chat gpt-4o-mini"): each is matched once.
_by_name: dict[str, str | None] = {}


def span_name(attributes: Mapping[str, Any], name: str) -> str | None:
    if name in _by_name:
        return _by_name[name]
    run_type = _match_name(name)
    if len(name) <= 256:
        if len(_by_name) >= 4096:  # names with ids in them do not repeat: start over
            _by_name.clear()
        _by_name[name] = run_type
    return run_type


def _match_name(name: str) -> str | None:
    lowered = name.lower()
    for prefix, run_type in _NAME_PREFIXES:
        if lowered.startswith(prefix):
            return run_type
    return _NAMES.get(lowered)


#: (rule, the keys or key prefixes it reads): a rule is tried only on spans that have one of them;
#: None: on every span.
RULES: list[tuple[Rule, tuple[str, ...] | None]] = [
    (langsmith_span_kind, ("langsmith.span.kind",)),
    (openinference_span_kind, ("openinference.span.kind",)),
    (genai_operation, ("gen_ai.operation.name",)),
    (traceloop_span_kind, ("traceloop.span.kind",)),
    (llm_request_type, ("llm.request.type", "traceloop.llm.request.type")),
    (vercel_operation, ("ai.operationId",)),
    (tool_attributes, ("gen_ai.tool.name", "gen_ai.tool.call.id")),
    (prompt_template, ("llm.prompt_template.variables",)),
    (retrieval_documents, ("retrieval.documents", "db.vector.query.top_k")),
    (model_present, _MODEL_KEYS),
    (span_name, None),
]


def _rules_for(present: frozenset[str]) -> tuple[Rule, ...]:
    # Most spans have keys for one or two rules: checking all eleven on every span cost more than
    # running those. Keyed by the RULES list in use (tests replace it).
    rules = RULES
    return keys.answer(  # type: ignore[no-any-return]
        present,
        ("rules", id(rules)),
        lambda: tuple(rule for rule, reads in rules if reads is None or not present.isdisjoint(reads)),
    )


def infer_run_type(attributes: Mapping[str, Any], name: str, present: frozenset[str] | None = None) -> str:
    """The first answer of :data:`RULES`; ``present`` is ``keys.present(tuple(attributes))``."""
    for rule in _rules_for(keys.present(tuple(attributes)) if present is None else present):
        run_type = rule(attributes, name)
        if run_type is not None:
            return run_type
    return DEFAULT_RUN_TYPE
