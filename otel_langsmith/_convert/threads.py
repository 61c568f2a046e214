"""LangSmith threads: the conversation and the user a run belongs to.

LangSmith groups runs into threads by ``session_id`` / ``thread_id`` in their metadata, and filters
by ``user_id``. The dialects declare which of their keys name them; the values are passed down to
every run below (see ``_placement.Lineage``), as the LangSmith SDK does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .dialects import SESSION_KEYS, USER_KEYS
from .values import as_text, report_once

KEYS = frozenset((*SESSION_KEYS, *USER_KEYS))
# Every run below a span gets its thread and user: an id of megabytes would weigh that much on
# each of them. Longer ids are cut, alike for every run, so that they still group together.
MAX_ID_CHARS = 1024


def thread(attributes: Mapping[str, Any], present: frozenset[str], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The thread and user keys the span names (in its attributes, or in the metadata the dialects
    wrote), for its run and the runs below."""
    inherited: dict[str, Any] = {}
    if KEYS.isdisjoint(present) and "session_id" not in metadata and "thread_id" not in metadata:
        return inherited
    session = next((attributes[k] for k in SESSION_KEYS if attributes.get(k) not in (None, "")), None)
    if session is None:
        session = metadata.get("session_id") or metadata.get("thread_id")
    if session is not None:
        inherited["session_id"] = inherited["thread_id"] = _id(session, "thread")
    user = next((attributes[k] for k in USER_KEYS if attributes.get(k) not in (None, "")), None)
    if user is not None:
        inherited["user_id"] = _id(user, "user")
    return inherited


def _id(value: Any, what: str) -> str:
    text = as_text(value)
    if len(text) <= MAX_ID_CHARS:
        return text
    report_once(
        f"long_id:{what}", "A %s id is %d characters long; the runs get its first %d", what, len(text), MAX_ID_CHARS
    )
    return text[:MAX_ID_CHARS]
