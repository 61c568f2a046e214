"""Which attribute keys a span has, worked out once per key set.

Conversion asks the same questions of every span: is there a ``langsmith.*`` key, any
``llm.input_messages.N.*``, which spelling of the input token count, which index and field each
flattened key holds? Asked by scanning the keys, they cost more than the conversion itself. But an
instrumentation writes the same keys on every span of a kind, so the answers are kept with the key
set, and the key sets are cached by the tuple of keys: after the first span of a kind, each
question is one lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

# Prefixes are taken up to this many segments and characters: every family a convention is
# recognised by is shorter ("traceloop.association.properties"), and a hostile key with thousands
# of dots must not turn into thousands of strings.
MAX_PREFIX_SEGMENTS = 4
MAX_PREFIX_CHARS = 128
# The cache holds the keys it was asked about: bounded in entries, and key sets with very long keys
# (which no instrumentation writes) are answered without being kept.
_MAX_ENTRIES = 2048
_MAX_CACHED_CHARS = 8192


class KeySet(frozenset[str]):
    """A span's keys and their dotted prefixes, with the answers already worked out for them."""

    __slots__ = ("answers", "keys")

    answers: dict[Any, Any]
    #: The keys alone, in the order the attributes hold them (questions about their layout).
    keys: tuple[str, ...]


_cache: dict[tuple[str, ...], KeySet] = {}


def _key_set(keys: tuple[str, ...]) -> KeySet:
    found: set[str] = set(keys)
    for key in keys:
        end = key.find(".", 1)  # a leading dot starts no prefix of its own
        depth = 1
        while 0 < end <= MAX_PREFIX_CHARS and depth < MAX_PREFIX_SEGMENTS:
            found.add(key[:end])
            end = key.find(".", end + 1)
            depth += 1
    key_set = KeySet(found)
    key_set.answers = {}
    key_set.keys = keys
    return key_set


def present(keys: tuple[str, ...]) -> KeySet:
    """The keys, and their dotted prefixes of up to :data:`MAX_PREFIX_SEGMENTS` - 1 segments.

    >>> sorted(present(("gen_ai.usage.input_tokens", "server.port")))
    ['gen_ai', 'gen_ai.usage', 'gen_ai.usage.input_tokens', 'server', 'server.port']
    """
    found = _cache.get(keys)
    if found is None:
        found = _key_set(keys)
        if sum(map(len, keys)) <= _MAX_CACHED_CHARS:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()  # key sets are few in practice: a full cache means churn, start over
            _cache[keys] = found
    return found


def among(key_set: frozenset[str], candidates: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``candidates`` that ``key_set`` holds, in the candidates' order. A key set holds
    prefixes too: a candidate found may be only the prefix of a key, so look its value up with
    ``get``.

    A convention spells one thing several ways (``gen_ai.usage.input_tokens``,
    ``gen_ai.usage.prompt_tokens``, ...); a span has one spelling or none, and which one is the
    same for every span with its key set: asked once, then looked up.

    >>> among(present(("gen_ai.usage.prompt_tokens",)), ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"))
    ('gen_ai.usage.prompt_tokens',)
    """
    return answer(key_set, candidates, held)  # type: ignore[no-any-return]


def held(key_set: frozenset[str], candidates: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``candidates`` that ``key_set`` holds, worked out now (:func:`among` keeps it)."""
    return tuple(key for key in candidates if key in key_set)


Q = TypeVar("Q", bound=Hashable)


def answer(key_set: frozenset[str], question: Q, work_out: Callable[[frozenset[str], Q], Any]) -> Any:
    """``work_out(key_set, question)``, worked out the first time and then kept with the key set.

    ``work_out`` is a plain function, not a closure: it is passed on every call, found or not.
    """
    answers = key_set.answers if isinstance(key_set, KeySet) else None
    if answers is None:
        return work_out(key_set, question)
    found = answers.get(question, answers)  # the dict itself: no answer is ever that
    if found is answers:
        found = answers[question] = work_out(key_set, question)
    return found
