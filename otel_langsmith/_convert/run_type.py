"""Which LangSmith ``run_type`` a span becomes.

Rules are tried in the priority order given in docs/conversion.md and the first
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


# Most conventions name the kind in one attribute; a rule for them is made from what it reads, so
# that the keys a rule is tried for (RULES) are the keys it reads.
def _kind(keys: tuple[str, ...], table: Mapping[str, str], default: str | None) -> tuple[Rule, tuple[str, ...]]:
    """The first of ``keys`` the span has: its value (trimmed, lower-case) through ``table``;
    ``default`` for a value the table does not name."""

    def rule(attributes: Mapping[str, Any], name: str) -> str | None:
        for key in keys:
            if key in attributes:
                kind = _text(attributes[key])
                return None if kind is None else table.get(kind, default)
        return None

    rule.__qualname__ = f"kind of {keys[0]}"
    return rule, keys


def _has(keys: tuple[str, ...], run_type: str) -> tuple[Rule, tuple[str, ...]]:
    """``run_type`` when the span has any of ``keys``, whatever their values."""

    def rule(attributes: Mapping[str, Any], name: str) -> str | None:
        return run_type if any(key in attributes for key in keys) else None

    rule.__qualname__ = f"has {keys[0]}"
    return rule, keys


_OPENINFERENCE = {
    "llm": "llm",
    "embedding": "embedding",
    "retriever": "retriever",
    "reranker": "retriever",
    "tool": "tool",
    "prompt": "prompt",
}


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
    # LangSmith's own names, case-insensitive; anything else is no answer.
    _kind(("langsmith.span.kind",), {kind: kind for kind in RUN_TYPES}, None),
    _kind(("openinference.span.kind",), _OPENINFERENCE, "chain"),
    _kind(("gen_ai.operation.name",), _GENAI_OPERATIONS, "chain"),
    _kind(("traceloop.span.kind",), {"tool": "tool"}, "chain"),
    _kind(("llm.request.type", "traceloop.llm.request.type"), {"embedding": "embedding"}, "llm"),
    _kind(("ai.operationId",), _VERCEL, "chain"),
    _has(("gen_ai.tool.name", "gen_ai.tool.call.id"), "tool"),
    _has(("llm.prompt_template.variables",), "prompt"),
    (retrieval_documents, ("retrieval.documents", "db.vector.query.top_k")),
    (model_present, _MODEL_KEYS),
    (span_name, None),
]


def applicable(present: frozenset[str], question: object) -> tuple[Rule, ...]:
    """The rules of :data:`RULES` that read any key a span with these keys has."""
    return tuple(rule for rule, reads in RULES if reads is None or not present.isdisjoint(reads))


def infer_run_type(attributes: Mapping[str, Any], name: str, present: frozenset[str] | None = None) -> str:
    """The first answer of :data:`RULES`; ``present`` is ``keys.present(tuple(attributes))``."""
    present = keys.present(tuple(attributes)) if present is None else present
    # Most spans have keys for one or two rules: checking all eleven on every span cost more than
    # running those. Asked per RULES list (tests replace it).
    rules: tuple[Rule, ...] = keys.answer(present, ("rules", id(RULES)), applicable)
    for rule in rules:
        run_type = rule(attributes, name)
        if run_type is not None:
            return run_type
    return DEFAULT_RUN_TYPE
