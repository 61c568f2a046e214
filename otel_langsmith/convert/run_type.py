"""Which LangSmith ``run_type`` a span becomes.

Rules are tried in order and the first answer wins; the default is ``chain``. The instrumentation
conventions (OpenInference, GenAI semantic conventions, Traceloop, Vercel AI...) each add their rule
to :data:`RULES`, in the priority order of the attribute-mapping reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

RUN_TYPES = frozenset({"llm", "chain", "tool", "retriever", "embedding", "prompt", "parser"})
DEFAULT_RUN_TYPE = "chain"

Rule = Callable[[Mapping[str, Any], str], "str | None"]


def langsmith_span_kind(attributes: Mapping[str, Any], name: str) -> str | None:
    """``langsmith.span.kind``: LangSmith's own names, case-insensitive."""
    kind = attributes.get("langsmith.span.kind")
    if isinstance(kind, bytes):
        kind = kind.decode("utf-8", errors="replace")
    if isinstance(kind, str) and kind.strip().lower() in RUN_TYPES:
        return kind.strip().lower()
    return None


RULES: list[Rule] = [langsmith_span_kind]


def infer_run_type(attributes: Mapping[str, Any], name: str) -> str:
    for rule in RULES:
        run_type = rule(attributes, name)
        if run_type is not None:
            return run_type
    return DEFAULT_RUN_TYPE
