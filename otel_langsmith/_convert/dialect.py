"""What a dialect is: the attribute keys an instrumentation family writes, and how they fill a run.

A dialect declares the keys (and key prefixes) it reads; a span with none of them is never asked.
That declaration is all the rest of conversion knows of it: the plain-span shortcut (a span no
dialect reads), the ``llm`` span filter (a span of an LLM family), the run-type rules and the
per-key-set answers all follow from it, so a new dialect is one new module in
:mod:`otel_langsmith._convert.dialects`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan

from .._throttle import Throttled
from .call import LLMCall
from .conversations import Conversations

# A log record or span event about a model call: (name, body or attributes, timestamp in ns).
GenAIEvent = tuple[str, Mapping[str, Any], int]
# A run-type rule: the run type a span's attributes and name say, or None.
Rule = Callable[[Mapping[str, Any], str], "str | None"]
# A rule with the keys (or key prefixes) it reads: it is asked only of spans that have one.
RuleEntry = tuple[Rule, tuple[str, ...]]


class View:
    """A span as the dialects read it, and what they have taken from it so far."""

    __slots__ = (
        "attributes",
        "consumed",
        "conversations",
        "end_ns",
        "events",
        "logs",
        "metadata",
        "present",
        "problems",
        "span",
        "start_ns",
    )

    def __init__(
        self,
        *,
        span: ReadableSpan,
        attributes: dict[str, Any],
        present: frozenset[str],
        events: Sequence[Event],
        logs: Sequence[GenAIEvent],
        start_ns: int,
        end_ns: int | None,
        conversations: Conversations | None,
        problems: Throttled,
    ) -> None:
        self.span = span
        self.attributes = attributes
        self.present = present
        self.events = events
        self.logs = logs
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.conversations = conversations
        #: Where a conversion step that fails is said (aggregated: bad data repeats on every span).
        self.problems = problems
        #: Keys a dialect turned into run fields: they do not go to the metadata too.
        self.consumed: set[str] = set()
        #: What the dialects say of the run beyond its fields (``extra.metadata``); wins over the
        #: attributes left over.
        self.metadata: dict[str, Any] = {}

    def take(self, key: str) -> Any:
        """The value of ``key`` (None when absent), marked consumed when present."""
        value = self.attributes.get(key)
        if value is not None:
            self.consumed.add(key)
        return value

    def take_text(self, key: str) -> str | None:
        """The value of ``key`` when it is non-empty text, marked consumed."""
        value = self.attributes.get(key)
        if isinstance(value, str) and value:
            self.consumed.add(key)
            return value
        return None

    @property
    def scope(self) -> str:
        """The instrumentation scope's name (the library that made the span), or ""."""
        scope = getattr(self.span, "instrumentation_scope", None)
        return str(getattr(scope, "name", "") or "")

    @property
    def genai_events(self) -> list[GenAIEvent]:
        """The span's events and its log records, in one shape."""
        events: list[GenAIEvent] = [(e.name, e.attributes or {}, e.timestamp) for e in self.events]
        return [*events, *self.logs]

    def after(self, seconds: float) -> int:
        """The time ``seconds`` after the span started, kept within the span: a first token is
        never placed before the request or after the answer."""
        offset = seconds * 1e9
        if not offset > 0:  # before the start, or NaN
            return self.start_ns
        end = self.end_ns
        if offset >= 1e19:  # past any span's end; int() refuses an infinite float
            return end if end is not None else self.start_ns
        at = self.start_ns + int(offset)
        return end if end is not None and at > end else at

    def duration(self) -> float | None:
        """The span's length in seconds (None while it is open)."""
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e9


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, a question keys.answer can keep
class Dialect:
    """One instrumentation family. Its hooks fill only what a dialect before it left empty."""

    name: str
    #: Keys and key prefixes its hooks read: a span with none of them (nor of the keys below) is
    #: not asked.
    reads: frozenset[str] = frozenset()
    #: Top-level key families that make a span part of an LLM application (``span_filter="llm"``).
    families: frozenset[str] = frozenset()
    #: Asked only of spans of this instrumentation scope (a name prefix); "" for any.
    scope: str = ""
    #: Asked of every span with events or log records, whatever its keys.
    events: bool = False
    #: Rules that name the run type outright; asked before every dialect's ``hints``.
    kinds: tuple[RuleEntry, ...] = ()
    #: Weaker clues to the run type, asked when no dialect named it.
    hints: tuple[RuleEntry, ...] = ()
    #: Keys naming a model: a meaningful value makes a model call, when nothing else said.
    model_keys: tuple[str, ...] = ()
    #: Keys naming the conversation (LangSmith's thread) and the user, passed to every run below.
    session_keys: tuple[str, ...] = ()
    user_keys: tuple[str, ...] = ()
    #: A model call's messages, tools, usage, model, parameters and first-token time. Asked for
    #: model calls, and for agents and workflows, whose conversation it is too.
    call: Callable[[View, LLMCall], None] | None = None
    #: The inputs, outputs and metadata of a run (``run["run_type"]`` says which kind): tools,
    #: retrievers, embeddings, and what any run says in the dialect's generic keys.
    content: Callable[[View, dict[str, Any]], None] | None = None
    #: The run's name, when the dialect names it better than the span does (given the run type).
    name_of: Callable[[View, str], str | None] | None = None

    @cached_property
    def keys(self) -> frozenset[str]:
        """Every key and prefix the dialect looks at."""
        rules = (key for _, reads in (*self.kinds, *self.hints) for key in reads)
        return self.reads.union(rules, self.model_keys, self.session_keys, self.user_keys)


# -- run-type rules ---------------------------------------------------------------------------------

RUN_TYPES = frozenset({"llm", "chain", "tool", "retriever", "embedding", "prompt", "parser"})


def lowered(value: Any) -> str | None:
    """A value as trimmed lower-case text; None when it is not text or is blank."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def kind_rule(keys: tuple[str, ...], table: Mapping[str, str], default: str | None) -> RuleEntry:
    """The first of ``keys`` the span has: its value (trimmed, lower-case) through ``table``;
    ``default`` for a value the table does not name. The rule reads exactly ``keys``."""

    def rule(attributes: Mapping[str, Any], name: str) -> str | None:
        for key in keys:
            if key in attributes:
                kind = lowered(attributes[key])
                return None if kind is None else table.get(kind, default)
        return None

    rule.__qualname__ = f"kind of {keys[0]}"
    return rule, keys


def has_rule(keys: tuple[str, ...], run_type: str) -> RuleEntry:
    """``run_type`` when the span has any of ``keys``, whatever their values."""

    def rule(attributes: Mapping[str, Any], name: str) -> str | None:
        return run_type if any(key in attributes for key in keys) else None

    rule.__qualname__ = f"has {keys[0]}"
    return rule, keys


def prefix_rule(prefix: str, run_type: str) -> RuleEntry:
    """``run_type`` when the span has a key under ``prefix`` (``retrieval.documents.0.*``)."""
    start = prefix + "."

    def rule(attributes: Mapping[str, Any], name: str) -> str | None:
        return run_type if any(key.startswith(start) for key in attributes) else None

    rule.__qualname__ = f"has {start}*"
    return rule, (prefix,)
