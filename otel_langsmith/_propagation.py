"""LangSmith's distributed-tracing headers as an OpenTelemetry propagator.

``langsmith-trace`` carries the current run's ``dotted_order``; ``baggage`` carries
``langsmith-metadata`` (URL-quoted compact JSON), ``langsmith-tags`` (URL-quoted, comma-joined) and
``langsmith-project``, in the layout of the LangSmith SDK's ``RunTree.to_headers()``. With
``OTEL_PROPAGATORS=tracecontext,baggage,langsmith``, a service traced with OpenTelemetry nests under
a caller traced with ``@traceable``, and the reverse.

Injecting needs the current span's place in its LangSmith trace, which only
:class:`~otel_langsmith.LangSmithSpanProcessor` knows (it records it when the span starts).
"""

from __future__ import annotations

import itertools
import logging
import time
import weakref
from collections.abc import Iterable, MutableMapping
from typing import Any, Protocol
from urllib.parse import quote, unquote

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from . import _ids as ids
from . import _wire as wire
from ._placement import Lineage, Placed
from ._throttle import Throttled

logger = logging.getLogger(__name__)

TRACE_HEADER = "langsmith-trace"
BAGGAGE_HEADER = "baggage"
# What extract accepts, as HTTP servers bound their headers: a dotted order of a hundred levels and
# more, and the baggage size every W3C implementation must take. Beyond, the header is ignored.
MAX_TRACE_HEADER = 8192
MAX_BAGGAGE = 8192
# A caller's run may start a little after this process's clock (skew), not in another year.
MAX_FUTURE_SECONDS = 300
_PARENT_KEY = otel_context.create_key("langsmith-parent")


class _Registry(Protocol):
    def placement(self, span_id: int) -> Placed | None: ...


# The live span processors, asked where a span sits when its headers are injected.
_registries: weakref.WeakSet[Any] = weakref.WeakSet()


def register(registry: _Registry) -> None:
    _registries.add(registry)


def remote_parent(context: otel_context.Context | None) -> Placed | None:
    """The caller's run that :meth:`LangSmithPropagator.extract` put into the context, if any."""
    value = otel_context.get_value(_PARENT_KEY, context)
    return value if isinstance(value, Placed) else None


def _parse_baggage(values: Iterable[str]) -> dict[str, str]:
    found = {}
    for value in values:
        for item in value.split(","):
            key, sep, raw = item.strip().partition("=")
            if sep and key.startswith("langsmith-"):
                found[key] = unquote(raw.split(";", 1)[0].strip())
    return found


def _parent(trace_header: str, baggage_headers: Iterable[str]) -> Placed | None:
    """The caller's run, from its headers; None (and one log line) for headers not to trust."""
    if len(trace_header) > MAX_TRACE_HEADER:
        _ignored("size").report(
            1, "Ignoring a %s header of %d characters (at most %d)", TRACE_HEADER, len(trace_header), MAX_TRACE_HEADER
        )
        return None
    try:
        segments = ids.parse_dotted_order(trace_header.strip())
    except ValueError as exc:
        _ignored("malformed").report(1, "Ignoring a malformed %s header: %s", TRACE_HEADER, exc)
        return None
    start_us = segments[-1][0]
    latest = (time.time() + MAX_FUTURE_SECONDS) * 1_000_000
    if any(us > latest for us, _ in segments):
        _ignored("future").report(1, "Ignoring a %s header with a run that starts in the future", TRACE_HEADER)
        return None
    if any(later[0] < earlier[0] for earlier, later in itertools.pairwise(segments)):
        _ignored("order").report(1, "Ignoring a %s header whose runs start before their parents", TRACE_HEADER)
        return None
    baggage_headers = list(baggage_headers)
    size = sum(len(value) for value in baggage_headers)
    if size > MAX_BAGGAGE:
        _ignored("baggage").report(
            1, "Ignoring LangSmith's baggage entries: %d characters of baggage (at most %d)", size, MAX_BAGGAGE
        )
        baggage_headers = []
    baggage = _parse_baggage(baggage_headers)
    metadata: dict[str, Any] = {}
    if "langsmith-metadata" in baggage:
        try:
            parsed = orjson.loads(baggage["langsmith-metadata"])
            metadata = parsed if isinstance(parsed, dict) else {}
        except orjson.JSONDecodeError:
            _ignored("metadata").report(1, "Ignoring unreadable langsmith-metadata baggage")
    tags = tuple(t.strip() for t in baggage.get("langsmith-tags", "").split(",") if t.strip())
    return Placed.from_dotted_order(
        ".".join(ids.segment(us, run_id) for us, run_id in segments),
        start_us,
        session_name=baggage.get("langsmith-project") or None,
        session_id=None,
        resource=None,
        lineage=Lineage(metadata, tags) if metadata or tags else None,
    )


# One throttled line per kind of header to ignore: a flood of one kind does not hide another.
_throttles: dict[str, Throttled] = {}


def _ignored(kind: str) -> Throttled:
    found = _throttles.get(kind)
    if found is None:
        found = _throttles.setdefault(kind, Throttled(logger, logging.WARNING))
    return found


def reset_after_fork() -> None:
    """Fresh warnings for the child: a parent's thread may have held one's lock at the fork."""
    _throttles.clear()


class LangSmithPropagator(TextMapPropagator):
    """Reads and writes ``langsmith-trace`` and LangSmith's ``baggage`` entries."""

    def extract(
        self,
        carrier: CarrierT,
        context: otel_context.Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> otel_context.Context:
        context = context if context is not None else otel_context.get_current()
        try:
            header = _texts(getter.get(carrier, TRACE_HEADER))
            if not header:
                return context
            parent = _parent(header[0], _texts(getter.get(carrier, BAGGAGE_HEADER)))
        except Exception as exc:  # a carrier or a getter of another shape: never the application's problem
            _ignored("carrier").report(1, "Ignoring LangSmith headers that could not be read (%s)", type(exc).__name__)
            return context
        return otel_context.set_value(_PARENT_KEY, parent, context) if parent is not None else context

    def inject(
        self,
        carrier: CarrierT,
        context: otel_context.Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        try:
            self._inject(carrier, context, setter)
        except Exception as exc:  # a value a caller or the span carries: never the application's problem
            _ignored("inject").report(
                1, "Could not write LangSmith headers (%s); the request goes without", type(exc).__name__
            )

    def _inject(self, carrier: CarrierT, context: otel_context.Context | None, setter: Setter[CarrierT]) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid and not span_context.is_remote:
            placed = _placement(span_context.span_id)
        else:
            # No span of this process: a request forwarded as it came passes its caller's run on.
            placed = remote_parent(context)
        if placed is None:
            return
        metadata, tags = (placed.lineage.metadata, placed.lineage.tags) if placed.lineage else ({}, ())
        setter.set(carrier, TRACE_HEADER, placed.dotted_order)
        items = []
        if metadata:
            # wire.dumps: what orjson refuses (lone surrogates, ints beyond 64 bits, deep nesting,
            # as a caller's own baggage may hold) is sanitized, not raised.
            items.append("langsmith-metadata=" + _quoted(wire.dumps(metadata).decode()))
        if tags:
            items.append("langsmith-tags=" + _quoted(",".join(tags)))
        if placed.session_name:
            items.append("langsmith-project=" + _quoted(placed.session_name))
        if not items:
            return
        ours = ",".join(items)
        # The W3C baggage propagator may have written the header already: add to it, not over it.
        existing = _existing(carrier, BAGGAGE_HEADER)
        setter.set(carrier, BAGGAGE_HEADER, f"{existing},{ours}" if existing else ours)

    @property
    def fields(self) -> set[str]:
        return {TRACE_HEADER, BAGGAGE_HEADER}


def _placement(span_id: int) -> Placed | None:
    for registry in list(_registries):
        placed: Placed | None = registry.placement(span_id)
        if placed is not None:
            return placed
    logger.debug("No LangSmith place for span %016x: is LangSmithSpanProcessor installed?", span_id)
    return None


def _quoted(text: str) -> str:
    return quote(text, errors="replace")  # a lone surrogate has no UTF-8: replaced, not raised


def _texts(values: Any) -> list[str]:
    """A header's values as text: bytes decoded (Kafka and gRPC metadata are bytes), others left out."""
    if values is None:
        return []
    if isinstance(values, (str, bytes)):
        values = [values]
    found = []
    for value in values:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, bytes):
            found.append(value.decode("utf-8", errors="replace"))
    return found


def _existing(carrier: Any, name: str) -> str | None:
    if isinstance(carrier, MutableMapping):
        for key, value in carrier.items():
            if isinstance(key, str) and key.lower() == name and isinstance(value, str):
                return value
    return None
