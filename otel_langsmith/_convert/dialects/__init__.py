"""Every dialect the bridge reads, in priority order: for each field of a run, the first dialect
that says something wins.

Libraries that know their own quirks come first (a scope-bound dialect reads only its library's
spans), then the conventions by how precisely they say things: LangSmith's own keys, Traceloop's
envelopes (which also appear under GenAI keys), OpenInference, the GenAI conventions, GenAI events,
Vercel AI. Everything else conversion knows of dialects is derived here from their declarations.
"""

from __future__ import annotations

from ..dialect import Dialect
from . import genai, genai_events, langsmith, openinference, openlit, pydantic_ai, strands, traceloop, vercel

DIALECTS: tuple[Dialect, ...] = (
    langsmith.DIALECT,
    pydantic_ai.DIALECT,
    strands.DIALECT,
    openlit.DIALECT,
    traceloop.DIALECT,
    openinference.DIALECT,
    genai.DIALECT,
    genai_events.DIALECT,
    vercel.DIALECT,
)

#: Every key and prefix some dialect reads: a span with none of them is plain.
KEYS = frozenset().union(*(dialect.keys for dialect in DIALECTS))
#: Top-level key families of LLM applications (``span_filter="llm"``).
LLM_FAMILIES = frozenset().union(*(dialect.families for dialect in DIALECTS))
#: Keys naming the conversation and the user, in priority order.
SESSION_KEYS = tuple(key for dialect in DIALECTS for key in dialect.session_keys)
USER_KEYS = tuple(key for dialect in DIALECTS for key in dialect.user_keys)
#: Keys naming a model (their meaningful value makes a model call when nothing else said).
MODEL_KEYS = tuple(key for dialect in DIALECTS for key in dialect.model_keys)


def asked(present: frozenset[str], question: object) -> tuple[Dialect, ...]:
    """The dialects a span with these keys is asked (before its scope and events are looked at)."""
    return tuple(dialect for dialect in DIALECTS if dialect.events or not present.isdisjoint(dialect.keys))


__all__ = ["DIALECTS", "KEYS", "LLM_FAMILIES", "MODEL_KEYS", "SESSION_KEYS", "USER_KEYS", "asked"]
