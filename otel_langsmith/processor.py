"""The span processor of DESIGN.md D4: live runs, sent as their spans end, whatever their ancestors do.

It places each span in its LangSmith trace at ``on_start``, where the parent and its start time are
at hand, so a run never waits for its parent: it is sent within one flush interval of its span
ending. A span open longer than ``live_after`` is posted early, without ``end_time``, so LangSmith
shows it as in progress; a patch completes it when it ends. The application's thread only places
the span and queues it; converting, encoding and sending happen on the processor's own thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import requests
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from . import ids
from .assembly import DEFAULT_MAX_PLACED, Placed, fill, inherit, place
from .config import Settings
from .convert import SpanConverter, components, keys, langsmith, run_key
from .convert.redact import Hook, Redaction
from .delivery import Delivery, RetryPolicy
from .logs import STORE
from .propagation import register, remote_parent
from .transport import suppressed_instrumentation

logger = logging.getLogger(__name__)

# Ended spans waiting for the next flush, before the application's thread helps with a flush.
_MAX_OUTBOX = 4096


@dataclass(slots=True, eq=False)
class _Open:
    span: Span
    #: Its ``lineage`` holds what children inherit: a remote caller's metadata and tags, and the
    #: span's own ``langsmith.metadata.*`` and tags.
    placed: Placed
    parent: Placed | None
    opened: float
    posted: bool = False


class LangSmithSpanProcessor(SpanProcessor):
    """Sends spans to LangSmith as live runs. Add it to a ``TracerProvider`` (or call
    :func:`otel_langsmith.configure`)::

        provider.add_span_processor(LangSmithSpanProcessor(project="my-app"))

    It takes every option of :class:`~otel_langsmith.LangSmithSpanExporter` (and its environment
    variables), plus:

    Args:
        flush_interval: Seconds between sends (``OTEL_EXPORTER_LANGSMITH_FLUSH_INTERVAL``, 1).
        live_after: A span open this long (seconds) is posted as in progress
            (``OTEL_EXPORTER_LANGSMITH_LIVE_AFTER``, 5).
        open_span_ttl: A span open this long (seconds) is forgotten, with a log line
            (``OTEL_EXPORTER_LANGSMITH_OPEN_SPAN_TTL``, 3600).
    """

    def __init__(
        self,
        *,
        flush_interval: float | None = None,
        live_after: float | None = None,
        open_span_ttl: float | None = None,
        retry_policy: RetryPolicy | None = None,
        process_inputs: Hook | None = None,
        process_outputs: Hook | None = None,
        session: requests.Session | None = None,
        **options: Any,
    ) -> None:
        self.settings = Settings.resolve(
            flush_interval=flush_interval, live_after=live_after, open_span_ttl=open_span_ttl, **options
        )
        self._convert = SpanConverter(
            project=self.settings.project,
            redaction=Redaction(self.settings.hide_inputs, self.settings.hide_outputs, process_inputs, process_outputs),
            logs=STORE.take,
        )
        self._stop = threading.Event()
        self._delivery = Delivery.from_settings(
            self.settings, stop=self._stop, retry_policy=retry_policy, session=session
        )
        # A plain lock under the condition: the default re-entrant one costs more on every span.
        self._lock = threading.Condition(threading.Lock())
        self._open: dict[int, _Open] = {}
        # Ended spans, for children that start after their parent ended (and for propagation). One
        # object an entry: the garbage collector walks them all, on the application's time.
        self._closed: OrderedDict[int, Placed] = OrderedDict()
        self._outbox: list[tuple[ReadableSpan, _Open | None]] = []
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.evicted = 0
        register(self)

    # -- the application's thread ---------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            self._start(span, parent_context)
        except Exception:
            logger.exception("LangSmithSpanProcessor could not place span %r", span.name)

    def _start(self, span: Span, parent_context: Context | None) -> None:
        context = span.get_span_context()
        if not context.trace_flags.sampled or self._stop.is_set():
            return
        attributes = span.attributes or {}
        # LangSmith's own attributes are rare at start: one look at the keys spares the lookups.
        present = keys.present(tuple(attributes))
        explicit = "langsmith" in present
        identity = langsmith.explicit_identity(attributes) if explicit else langsmith.NO_IDENTITY
        parent_span = span.parent
        parent: Placed | None = None
        if identity.parent_run_id is not None and identity.dotted_order is None:
            parent = self._closed.get(run_key(identity.parent_run_id))
        elif parent_span is None or parent_span.is_remote:
            # A caller in another process may have sent its LangSmith run along (propagation.py).
            parent = remote_parent(parent_context)
        else:
            with self._lock:
                above = self._open.get(parent_span.span_id)
                parent = above.placed if above is not None else self._closed.get(parent_span.span_id)
        if identity.run_id is not None:
            run_id = identity.run_id
        else:
            # A span under a propagated LangSmith run is no root, even without an OTel parent.
            run_id, _ = ids.derived_run_id(
                context.trace_id, context.span_id, root=parent_span is None and parent is None
            )
        session_name, session_id = langsmith.project(attributes) if explicit else (None, None)
        placed = place(
            run_id,
            ids.ns_to_us(span.start_time or time.time_ns()),
            parent,
            session_name=session_name or (None if session_id else self.settings.project),
            session_id=session_id,
            project_explicit=session_name is not None or session_id is not None,
            resource=span.resource,
            dotted_order=identity.dotted_order,
        )
        if attributes:
            own_metadata = components.thread(attributes, present, {})
            own_tags: list[str] = []
            if explicit:
                own_metadata.update(langsmith.metadata(attributes))
                own_tags = langsmith.tags(attributes) or []
            if own_metadata or own_tags:
                placed.lineage = inherit(placed.lineage, own_metadata, tuple(own_tags))
        entry = _Open(span, placed, parent, time.monotonic())
        with self._lock:
            self._open[context.span_id] = entry
        self._ensure_thread()

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        if context is None or not context.trace_flags.sampled or self._stop.is_set():
            return
        with self._lock:
            entry = self._open.pop(context.span_id, None)
            if entry is not None:
                self._remember(context.span_id, entry.placed)
            self._outbox.append((span, entry))
            if len(self._outbox) >= _MAX_OUTBOX:
                self._lock.notify_all()

    def placement(self, span_id: int) -> Placed | None:
        """Where a span sits, with what its children inherit (``lineage``); for the propagator."""
        with self._lock:
            entry = self._open.get(span_id)
            return entry.placed if entry is not None else self._closed.get(span_id)

    def _remember(self, span_id: int, placed: Placed) -> None:
        self._closed[span_id] = placed
        if len(self._closed) > DEFAULT_MAX_PLACED:
            # popitem, not del of next(iter()): a dict drained from the front scans its holes.
            self._closed.popitem(last=False)

    # -- the processor's thread ------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return  # it runs until shutdown (or a fork, which resets it)
        with self._lock:
            if (self._thread is None or not self._thread.is_alive()) and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="otel-langsmith-processor", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        with suppressed_instrumentation():
            while not self._stop.is_set():
                with self._lock:
                    if len(self._outbox) < _MAX_OUTBOX:
                        self._lock.wait(self.settings.flush_interval)
                if self._stop.is_set():
                    return
                try:
                    self._flush(deadline=time.monotonic() + self.settings.export_timeout)
                except Exception:
                    logger.exception("LangSmithSpanProcessor failed to send a batch")

    def _flush(self, *, deadline: float, open_spans_too: bool = False) -> bool:
        """Send the ended spans, and post the spans open for too long; True when all was accepted."""
        with self._flush_lock:
            now = time.monotonic()
            with self._lock:
                ended, self._outbox = self._outbox, []
                live = [
                    entry
                    for entry in self._open.values()
                    if not entry.posted and (open_spans_too or now - entry.opened >= self.settings.live_after)
                ]
                for entry in live:
                    entry.posted = True
                self._evict(now)
            posts: dict[str, dict[str, Any]] = {}
            patches: dict[str, dict[str, Any]] = {}
            for entry in live:
                run = self._run_of(entry.span, entry)
                if run is not None:
                    posts[run["id"]] = run
            for span, ended_entry in ended:
                run = self._run_of(span, ended_entry)
                if run is None:
                    continue
                if ended_entry is not None and ended_entry.posted and run["id"] not in posts:
                    patches[run["id"]] = run
                else:
                    # A post and a patch of one run in one batch are one post: LangSmith bills events.
                    posts[run["id"]] = {**posts.get(run["id"], {}), **run}
            sent = self._delivery.send(list(posts.values()), deadline=deadline)
            return self._delivery.send(list(patches.values()), deadline=deadline, operation="patch") and sent

    def _run_of(self, span: ReadableSpan, entry: _Open | None) -> dict[str, Any] | None:
        pending = self._convert(span)
        if pending is None:
            return None
        if entry is None:
            # Started before this processor was installed: its place is unknown, so it is a root.
            placed, parent = (
                place(
                    pending.run_id,
                    pending.start_us,
                    None,
                    session_name=pending.run.get("session_name"),
                    session_id=pending.run.get("session_id"),
                    project_explicit=pending.project_explicit,
                    resource=pending.resource,
                ),
                None,
            )
        else:
            placed, parent = entry.placed, entry.parent
        pending.run_id = placed.run_id
        fill(pending, placed, parent)
        return pending.run

    def _evict(self, now: float) -> None:
        # The lock is held.
        ttl = self.settings.open_span_ttl
        stale = [span_id for span_id, entry in self._open.items() if now - entry.opened > ttl]
        for span_id in stale:
            entry = self._open.pop(span_id)
            self.evicted += 1
            logger.warning(
                "Span %r (%016x) has been open for more than %.0f s: no longer tracked (its run stays in progress)",
                entry.span.name,
                span_id,
                ttl,
            )

    # -- lifecycle ----------------------------------------------------------------------------------

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        try:
            return self._flush(deadline=deadline) and self._delivery.flush(deadline)
        except Exception:
            logger.exception("LangSmithSpanProcessor failed to flush")
            return False

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Send what ended, post what is still open (as in progress), within the timeout."""
        if self._stop.is_set():
            return
        deadline = time.monotonic() + timeout_millis / 1000
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self._flush(deadline=deadline, open_spans_too=True)
            self._delivery.close(deadline)
        except Exception:
            logger.exception("LangSmithSpanProcessor failed to send what it held at shutdown")
        self._delivery.transport.close()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            open_spans, outbox = len(self._open), len(self._outbox)
        return {
            **self._delivery.stats(),
            "conversion_errors": self._convert.errors,
            "open_spans": open_spans,
            "ended_unsent": outbox,
            "evicted": self.evicted,
        }
