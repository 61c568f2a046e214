"""Conversations already converted, so that an agent's next model call converts only what it added.

In an agent loop every model call sends the whole conversation so far, and GenAI instrumentations
record it whole on each ``chat`` span: the JSON of call k+1 is the JSON of call k without its closing
bracket, then a comma and the messages added since. Converted from scratch, a run of n calls costs
O(n^2) messages; here a text that extends one seen before is parsed and converted only past that
point, and a text seen before (system instructions, a retried call) not at all.

The converted messages are shared by the runs that contain them: nothing downstream of conversion
may change them in place. A converter whose ``process_inputs`` hook could do so does not use this
(see :class:`otel_langsmith.convert.SpanConverter`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import orjson

from . import messages as msg
from .values import json_or_text

# Shorter texts are converted whole: finding where a text continues a kept one, and keeping it,
# costs about what converting three or four messages does (benchmarks/README.md has the figures).
MIN_CHARS = 1024
# A text is filed under its length and its last characters (less the closing bracket): its last
# message, which tells conversations apart even when they all begin with the same long prompt.
# Texts that also end alike share a key: it keeps this many, newest first.
_TAIL = 64
_PER_KEY = 8
# What a text begins with: its first message's role and type take half of it.
_HEAD = 128
# Where a later text continues a kept one: after a message's closing brace, as json.dumps and
# compact encoders separate objects. At most this many such places, from the end, are tried: a
# model call adds a few messages to the conversation, each of a part or two.
_SEPARATORS = ("}, {", "},{")
_MAX_TRIES = 6
# System instructions kept: at most this many texts of at most this many characters.
_MAX_SYSTEMS = 64
_MAX_SYSTEM_CHARS = 64 << 10

Messages = list[dict[str, Any]]
Key = tuple[int, str]
Entry = tuple[str, tuple[dict[str, Any], ...]]


class Conversations:
    """Thread-safe, bounded in entries and in the characters of the texts kept.

    >>> import json
    >>> conversations = Conversations()
    >>> question = {"role": "user", "parts": [{"type": "text", "content": "Plan a trip. " * 200}]}
    >>> first = json.dumps([question])
    >>> len(conversations.messages(first))
    1
    >>> answer = {"role": "assistant", "parts": [{"type": "text", "content": "Where to?"}]}
    >>> later = json.dumps([question, answer])  # first[:-1] + ", " + the answer + "]"
    >>> conversations.messages(later)[1]  # parses and converts only the answer
    {'role': 'assistant', 'content': 'Where to?'}
    """

    def __init__(self, *, max_texts: int = 1024, max_chars: int = 32 << 20) -> None:
        self._max_texts = max_texts
        self._max_chars = max_chars
        self._lock = threading.Lock()
        # (length, tail) of a text less its closing bracket -> ((the text, its messages converted), ...).
        # The texts are the spans' own strings: keeping them costs no copy.
        self._texts: OrderedDict[Key, tuple[Entry, ...]] = OrderedDict()
        # How many texts kept begin with each head: a text whose head none has continues none, and
        # the first long call of every conversation is spared the search.
        self._heads: dict[str, int] = {}
        self._count = 0
        self._chars = 0
        self._system: dict[str, dict[str, Any] | None] = {}

    def messages(self, value: Any) -> Messages:
        """``messages.from_genai(value)``, from what was converted before where it can be."""
        if not isinstance(value, str) or len(value) < MIN_CHARS:
            return msg.from_genai(value)
        end = len(value) - 1
        if value[:_HEAD] in self._heads:
            found = self._continued(value, end)
            if found is not None:
                return found
        parsed = json_or_text(value, "gen_ai messages")
        converted = msg.from_genai(parsed)
        # Only a non-empty array can be extended: "[]" less its bracket, then ",{...}]", is not JSON.
        if isinstance(parsed, list) and parsed and value[end] == "]":
            self._keep(value, converted)
        return converted

    def _continued(self, value: str, end: int) -> Messages | None:
        """``value`` converted from a text kept that it repeats or continues; None if there is none."""
        if value[end] == "]":
            same = self._find(value, end)
            if same is not None:
                return list(same)
        # The text's own separator (its last one), so that each try scans back only to the one before.
        spaced, compact = (value.rfind(separator, 0, end) for separator in _SEPARATORS)
        separator, position = (_SEPARATORS[0], spaced) if spaced > compact else (_SEPARATORS[1], compact)
        for _ in range(_MAX_TRIES):
            if position < 0:
                break
            known = self._find(value, position + 1)
            if known is None:
                position = value.rfind(separator, 0, position)
                continue
            added = _added(value[position + 2 :])  # both separators have their comma second
            if added is None:
                break  # what follows is not array elements: the whole text says why
            converted = [*known, *msg.from_genai(added)]
            self._keep(value, converted)
            return converted
        return None

    def system(self, value: Any) -> dict[str, Any] | None:
        """``messages.system_instructions(value)``: the same text on every call of an agent."""
        if not isinstance(value, str) or len(value) > _MAX_SYSTEM_CHARS:
            return msg.system_instructions(value)
        found = self._system.get(value, self._system)
        if found is self._system:
            found = msg.system_instructions(value)
            with self._lock:
                if len(self._system) >= _MAX_SYSTEMS:  # an application has a few: a full cache is churn
                    self._system.clear()
                self._system[value] = found
        return dict(found) if found is not None else None

    def _find(self, value: str, end: int) -> tuple[dict[str, Any], ...] | None:
        """The messages of a text kept that is ``value[:end]``."""
        for text, converted in self._texts.get(_key(value, end), ()):
            if len(text) == end + 1 and value.startswith(text[:-1]):
                return converted
        return None

    def _keep(self, text: str, converted: Messages) -> None:
        key = _key(text, len(text) - 1)
        entry = (text, tuple(converted))
        with self._lock:
            before = self._texts.pop(key, None)
            if before is None:  # nearly always: a conversation's next text is a new length
                self._texts[key] = (entry,)
                self._account(text, 1)
            else:
                kept = (entry, *(other for other in before if other[0] != text))[:_PER_KEY]
                self._texts[key] = kept
                for other, _ in kept:
                    self._account(other, 1)
                for other, _ in before:
                    self._account(other, -1)
            while self._count > self._max_texts or self._chars > self._max_chars:
                for other, _ in self._texts.popitem(last=False)[1]:
                    self._account(other, -1)

    def _account(self, text: str, sign: int) -> None:
        self._count += sign
        self._chars += sign * len(text)
        heads = self._heads
        head = text[:_HEAD]
        count = heads.get(head, 0) + sign
        if count:
            heads[head] = count
        else:
            del heads[head]


def _key(text: str, end: int) -> Key:
    """The key of ``text[:end]`` (its last characters only are copied)."""
    return end, text[max(end - _TAIL, 0) : end]


def _added(rest: str) -> list[Any] | None:
    """The messages after a known prefix and its comma: ``rest`` must be elements, then ``]``."""
    try:
        added = orjson.loads("[" + rest)
    except orjson.JSONDecodeError:
        return None
    return added if isinstance(added, list) and added else None
