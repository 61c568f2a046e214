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

# A text is filed under its length and its last characters (less the closing bracket): its last
# message, which tells conversations apart even when they all begin with the same long prompt.
# Texts that also end alike share a key: it keeps this many, newest first.
_TAIL = 64
_PER_KEY = 8
# Where a later text continued this one is found by walking back over its commas: this many at most.
_MAX_COMMAS = 64
_WHITESPACE = " \t\r\n"
# System instructions kept: at most this many texts of at most this many characters.
_MAX_SYSTEMS = 64
_MAX_SYSTEM_CHARS = 64 << 10

Messages = list[dict[str, Any]]
Key = tuple[int, str]
Entry = tuple[str, tuple[dict[str, Any], ...]]


class Conversations:
    """Thread-safe, bounded in entries and in the characters of the texts kept.

    >>> conversations = Conversations()
    >>> first = '[{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]'
    >>> conversations.messages(first)
    [{'role': 'user', 'content': 'Hi'}]
    >>> later = first[:-1] + ', {"role": "assistant", "parts": [{"type": "text", "content": "Hello"}]}]'
    >>> conversations.messages(later)  # parses and converts only the assistant's message
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello'}]
    """

    def __init__(self, *, max_texts: int = 1024, max_chars: int = 32 << 20) -> None:
        self._max_texts = max_texts
        self._max_chars = max_chars
        self._lock = threading.Lock()
        # (length, tail) of a text less its closing bracket -> ((that text, its messages converted), ...)
        self._texts: OrderedDict[Key, tuple[Entry, ...]] = OrderedDict()
        self._count = 0
        self._chars = 0
        self._system: dict[str, dict[str, Any] | None] = {}

    def messages(self, value: Any) -> Messages:
        """``messages.from_genai(value)``, from what was converted before where it can be."""
        if not isinstance(value, str):
            return msg.from_genai(value)
        end = len(value) - 1
        if value[end:] == "]":
            same = self._find(value, end)
            if same is not None:
                return list(same)
        # A text seen before, then a comma and more: the comma follows the "}" of its last message.
        comma = end
        for _ in range(_MAX_COMMAS):
            comma = value.rfind(",", 0, comma)
            if comma < 0:
                break
            stem_end = comma
            while stem_end and value[stem_end - 1] in _WHITESPACE:
                stem_end -= 1
            if value[stem_end - 1 : stem_end] != "}":
                continue
            known = self._find(value, stem_end)
            if known is None:
                continue
            added = _added(value[comma + 1 :])
            if added is None:
                break  # what follows is not array elements: the whole text says why
            converted = [*known, *msg.from_genai(added)]
            self._keep(value, converted)
            return converted
        parsed = json_or_text(value, "gen_ai messages")
        converted = msg.from_genai(parsed)
        # Only a non-empty array can be extended: "[]" less its bracket, then ",{...}]", is not JSON.
        if isinstance(parsed, list) and parsed and value[end:] == "]":
            self._keep(value, converted)
        return converted

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
        for stem, converted in self._texts.get(_key(value, end), ()):
            if len(stem) == end and value.startswith(stem):
                return converted
        return None

    def _keep(self, text: str, converted: Messages) -> None:
        stem = text[:-1]
        key = _key(stem, len(stem))
        with self._lock:
            before = self._texts.pop(key, ())
            kept = ((stem, tuple(converted)), *(entry for entry in before if entry[0] != stem))[:_PER_KEY]
            self._texts[key] = kept
            self._count += len(kept) - len(before)
            self._chars += _chars(kept) - _chars(before)
            while self._count > self._max_texts or self._chars > self._max_chars:
                _, dropped = self._texts.popitem(last=False)
                self._count -= len(dropped)
                self._chars -= _chars(dropped)


def _chars(entries: tuple[Entry, ...]) -> int:
    return sum(len(stem) for stem, _ in entries)


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
