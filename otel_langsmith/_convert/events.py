"""Span events as run ``events``, and the run ``error`` from the status and ``exception`` events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import Event
from opentelemetry.trace import Status, StatusCode

from .. import _ids as ids
from .values import as_text


def events(span_events: Sequence[Event]) -> list[dict[str, Any]]:
    converted = []
    for event in span_events:
        entry: dict[str, Any] = {"name": event.name, "time": ids.iso_time(ids.ns_to_us(event.timestamp))}
        if event.attributes:
            entry["kwargs"] = dict(event.attributes)
        converted.append(entry)
    return converted


def _describe_exception(event: Event) -> str:
    attributes = event.attributes or {}
    kind = as_text(attributes.get("exception.type") or "Exception")
    message = attributes.get("exception.message")
    stacktrace = attributes.get("exception.stacktrace")
    text = f"{kind}: {as_text(message)}" if message else kind
    if stacktrace:
        text += f"\n\n{as_text(stacktrace)}"
    return text


def error(status: Status, span_events: Sequence[Event]) -> str | None:
    """The error text of a failed span: its last exception when it recorded one, else the status.

    An exception recorded on a span whose status is not ERROR was handled: it stays an event.
    """
    if status.status_code is not StatusCode.ERROR:
        return None
    for event in reversed(span_events):
        if event.name == "exception":
            return _describe_exception(event)
    return status.description or "ERROR"
