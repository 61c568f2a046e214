"""Which attribute keys a span has, worked out once per key set.

Conversion asks the same questions of every span: is there a ``langsmith.*`` key, any
``llm.input_messages.N.*``, any ``traceloop.association.properties.*``? Asked by scanning the keys,
they cost more than the conversion itself. But an instrumentation writes the same keys on every span
of a kind, so the answers are cached by the tuple of keys: after the first span of a kind, each
question is one set lookup.
"""

from __future__ import annotations

# Prefixes are taken up to this many segments and characters: every family a convention is
# recognised by is shorter ("traceloop.association.properties"), and a hostile key with thousands
# of dots must not turn into thousands of strings.
MAX_PREFIX_SEGMENTS = 4
MAX_PREFIX_CHARS = 128
# The cache holds the keys it was asked about: bounded in entries, and key sets with very long keys
# (which no instrumentation writes) are answered without being kept.
_MAX_ENTRIES = 2048
_MAX_CACHED_CHARS = 8192

_cache: dict[tuple[str, ...], frozenset[str]] = {}


def _prefixes(keys: tuple[str, ...]) -> frozenset[str]:
    found: set[str] = set(keys)
    for key in keys:
        end = key.find(".")
        depth = 1
        while 0 < end <= MAX_PREFIX_CHARS and depth < MAX_PREFIX_SEGMENTS:
            found.add(key[:end])
            end = key.find(".", end + 1)
            depth += 1
    return frozenset(found)


def present(keys: tuple[str, ...]) -> frozenset[str]:
    """The keys, and their dotted prefixes of up to :data:`MAX_PREFIX_SEGMENTS` - 1 segments.

    >>> sorted(present(("gen_ai.usage.input_tokens", "server.port")))
    ['gen_ai', 'gen_ai.usage', 'gen_ai.usage.input_tokens', 'server', 'server.port']
    """
    found = _cache.get(keys)
    if found is None:
        found = _prefixes(keys)
        if sum(map(len, keys)) <= _MAX_CACHED_CHARS:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()  # key sets are few in practice: a full cache means churn, start over
            _cache[keys] = found
    return found
