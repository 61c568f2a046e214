"""Attribute values to JSON-ready Python values.

OpenTelemetry attributes can be str, bool, int, float, bytes, and (since SDK 1.4x) sequences and
mappings of those. Instrumentations put JSON documents in string attributes, often enough invalid
ones; LangSmith's own exporter even writes them as bytes.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson

from .._throttle import Throttled

logger = logging.getLogger(__name__)

# Bad data tends to repeat on every span of a code path; one line per key is enough to find it.
# Keys follow attribute names, which an application may make up by the thousand: past so many,
# the problems not yet seen share one throttled line.
_reported: set[str] = set()
_MAX_REPORTED = 1024
_unlisted = Throttled(logger, logging.WARNING)


def report_once(key: str, message: str, *args: object) -> None:
    """Log a data problem at WARNING the first time it is seen for ``key``, at DEBUG after."""
    if key in _reported:
        logger.debug(message, *args)
    elif len(_reported) < _MAX_REPORTED:
        _reported.add(key)
        logger.warning(message, *args)
    else:
        _unlisted.report(0, message, *args)


def reset_after_fork() -> None:
    """A fresh lock for the child's throttled line (a thread may have held it at the fork)."""
    _unlisted.reset()


def decode_text(value: bytes, key: str) -> str:
    """Bytes to text: UTF-8, invalid sequences replaced (and reported) rather than dropped."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        report_once(f"utf8:{key}", "Attribute %r holds invalid UTF-8 (%s); invalid bytes replaced by U+FFFD", key, exc)
        return value.decode("utf-8", errors="replace")


def as_text(value: Any) -> str:
    """``str(value)``, never raising: an int of thousands of digits (which ``str()`` refuses) or a
    value nested past the recursion limit says what it is instead."""
    if type(value) is str:
        return value
    try:
        return str(value)
    except (ValueError, RecursionError):
        return f"<{type(value).__name__} too large to show>"


#: What a run is called when its span has no name: LangSmith refuses a run without one.
UNNAMED = "unnamed span"


def run_name(name: Any) -> str:
    """A span's name as a run's: text, never empty (the SDK lets a span have ``""``, or any value).

    >>> run_name(""), run_name(None), run_name(42)
    ('unnamed span', 'unnamed span', '42')
    """
    if type(name) is str and name:  # nearly always
        return name
    return as_text(name) if name is not None and name != "" else UNNAMED


def real(value: Any) -> float | None:
    """A finite number as a float; None for text, booleans, NaN, infinities and integers past a
    float's range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


# A JSON document starts with one of these once leading whitespace is skipped.
_JSON_STARTS = frozenset('{["-0123456789tfn')


def json_or_text(value: Any, key: str) -> Any:
    """The parsed value when ``value`` is a JSON document, else the value itself (text stays text)."""
    if isinstance(value, bytes):
        value = decode_text(value, key)
    if not isinstance(value, str):
        return value
    stripped = value.lstrip()
    if not stripped or stripped[0] not in _JSON_STARTS:
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        if stripped[0] in "{[":
            # It looked like a document but is not one: keep it as text, but say so once.
            report_once(f"json:{key}", "Attribute %r is not valid JSON; kept as text", key)
        return value


def as_object(value: Any, key: str, wrap_key: str) -> dict[str, Any]:
    """``inputs``/``outputs`` must be objects: a JSON object is used as it is, anything else is wrapped.

    >>> as_object('{"q": 1}', "input.value", "input")
    {'q': 1}
    >>> as_object("hello", "input.value", "input")
    {'input': 'hello'}
    """
    parsed = json_or_text(value, key)
    if isinstance(parsed, dict):
        return parsed
    return {wrap_key: parsed}


def text_list(value: Any, key: str) -> list[str]:
    """A comma-separated string, or a sequence of strings, as a list of non-empty stripped strings."""
    if isinstance(value, bytes):
        value = decode_text(value, key)
    if isinstance(value, str):
        parsed = json_or_text(value, key) if value.lstrip().startswith("[") else value
        items = parsed if isinstance(parsed, list) else value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    return [text for text in (as_text(item).strip() for item in items) if text]
