"""Which LangSmith ``run_type`` a span becomes.

The rules are the dialects' (:mod:`otel_langsmith._convert.dialects`), asked in three tiers, each in
the dialects' priority order: the keys that name a kind outright, then weaker clues, then a model's
name; then the span's name, the one rule every span is asked. The first answer wins; the default
is ``chain``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import keys
from .dialect import RUN_TYPES, Rule, lowered
from .dialects import DIALECTS, MODEL_KEYS

__all__ = ["DEFAULT_RUN_TYPE", "RULES", "RUN_TYPES", "applicable", "infer_run_type", "span_name"]

DEFAULT_RUN_TYPE = "chain"


def model_present(attributes: Mapping[str, Any], name: str) -> str | None:
    # Only a meaningful value counts: instrumentations leave empty model keys on tool spans.
    return "llm" if any(lowered(attributes.get(key)) for key in MODEL_KEYS) else None


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
    lowered_name = name.lower()
    for prefix, run_type in _NAME_PREFIXES:
        if lowered_name.startswith(prefix):
            return run_type
    return _NAMES.get(lowered_name)


#: (rule, the keys or key prefixes it reads): a rule is tried only on spans that have one of them;
#: None: on every span.
RULES: list[tuple[Rule, tuple[str, ...] | None]] = [
    *(entry for dialect in DIALECTS for entry in dialect.kinds),
    *(entry for dialect in DIALECTS for entry in dialect.hints),
    (model_present, MODEL_KEYS),
    (span_name, None),
]


def applicable(present: frozenset[str], question: object) -> tuple[Rule, ...]:
    """The rules of :data:`RULES` that read any key a span with these keys has."""
    return tuple(rule for rule, reads in RULES if reads is None or not present.isdisjoint(reads))


def infer_run_type(attributes: Mapping[str, Any], name: str, present: frozenset[str] | None = None) -> str:
    """The first answer of :data:`RULES`; ``present`` is ``keys.present(tuple(attributes))``."""
    present = keys.present(tuple(attributes)) if present is None else present
    # Asked per RULES list (tests replace it): most spans have keys for one or two rules.
    rules: tuple[Rule, ...] = keys.answer(present, ("rules", id(RULES)), applicable)
    for rule in rules:
        run_type = rule(attributes, name)
        if run_type is not None:
            return run_type
    return DEFAULT_RUN_TYPE
