"""Spans placed in their LangSmith trace from their start: the span processor's bookkeeping.

At ``on_start`` the parent span and its start time are at hand, so a span's ``dotted_order`` can be
known before it ends and its run never waits for its parent. The application's thread only notes
the start; the placing is done by whoever next needs a placement (the pipeline's worker before it
converts ended spans, the propagator, a flush), in the order the spans started, so that a parent is
placed before its children. Open spans are kept here (a span open longer than ``live_after`` is
posted as in progress); ended ones leave their placement behind for children that start after
their parent ended and for the propagator.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span

from . import _ids as ids
from ._assembly import DEFAULT_MAX_PLACED_BYTES
from ._convert import keys, run_key, threads
from ._convert.dialects import langsmith
from ._convert.run_type import infer_run_type
from ._convert.values import run_name
from ._placement import DUPLICATE_ID_LINE, Placed, PlacedRegistry, inherit, own_identity, place
from ._propagation import remote_parent
from ._throttle import Throttled

logger = logging.getLogger(__name__)

# Starts noted and not placed yet, past which the starting thread places them itself: the bound
# on what waits for the worker.
_MAX_STARTING = 4096
# Spans forgotten after the TTL whose place is kept for their end: a span open that long is rare,
# one that never ends (a leak) should not hold memory for ever.
_MAX_FORGOTTEN = 10_000


@dataclass(slots=True, eq=False)
class OpenSpan:
    #: None once forgotten after ``open_span_ttl``: its place, and whether it was posted, are kept
    #: a while longer, so that its end is still a patch where its post went.
    span: Span | None
    #: Its ``lineage`` holds what children inherit: a remote caller's metadata and tags, and the
    #: span's own ``langsmith.metadata.*`` and tags. For a span the filter leaves out, the place its
    #: children take instead (None: they are roots).
    placed: Placed | None
    parent: Placed | None
    opened: float
    #: Posted as in progress already: its end is a patch.
    posted: bool = False
    #: Sent at all (the span filter kept it).
    kept: bool = True
    #: The key of its run when it is not its span id (a root, an explicit ``langsmith.span.id``).
    alias: int | None = None
    #: The run id it had, which another span's run had already (it is sent under its own).
    taken_id: str | None = None


class LiveSpans:
    """Thread-safe: spans start and end on the application's threads."""

    def __init__(self, *, project: str, ttl: float, max_placed_bytes: int = DEFAULT_MAX_PLACED_BYTES) -> None:
        self._project = project
        self._ttl = ttl
        self._lock = threading.Lock()
        self._open: dict[int, OpenSpan] = {}
        # Run key -> span id, for open runs whose key is not their span id: found by a
        # ``langsmith.span.parent_id`` naming them.
        self._aliases: dict[int, int] = {}
        # Ended spans' placements, for children that start after their parent ended.
        self._closed = PlacedRegistry(max_placed_bytes)
        # Spans open past the TTL, without the span itself, oldest first.
        self._forgotten: OrderedDict[int, OpenSpan] = OrderedDict()
        # A deque: appending and popping need no lock, so a starting span never waits for the placer.
        self._starting: deque[tuple[Span, Mapping[str, Any], Context | None, float, bool]] = deque()
        # One placer at a time, so that starts are placed in the order they came.
        self._settle_lock = threading.Lock()
        # Set on a thread while it places: a line logged while placing may reach a handler that
        # traces and propagates; what it starts is placed by the next call, after its parent.
        self._placing = threading.local()
        self._problems = Throttled(logger, logging.ERROR)
        self._missing = Throttled(logger, logging.WARNING)
        self._duplicates = Throttled(logger, logging.WARNING)
        self._stale = Throttled(logger, logging.WARNING)
        #: Spans forgotten after ``open_span_ttl``.
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._open) + len(self._starting)

    def start(
        self, span: Span, parent_context: Context | None, now: float, *, kept: bool = True, lagging: bool = False
    ) -> None:
        """Note a span that starts now; it is placed later, by :meth:`settle`, unless whoever places
        is ``lagging`` behind (then the starting thread places what was noted: the application pays
        for placing, rather than holding more spans than the worker can take)."""
        self._starting.append((span, _attributes_now(span), parent_context, now, kept))
        if lagging or len(self._starting) >= _MAX_STARTING:
            self.settle()

    def settle(self) -> None:
        """Place the spans noted before this call, in the order they started; nothing on a thread
        that is placing already (code reached by a line logged while placing)."""
        if getattr(self._placing, "now", False):
            return
        starting = self._starting
        self._placing.now = True
        try:
            with self._settle_lock:
                for _ in range(len(starting)):
                    self._place_next(starting.popleft())
        finally:
            self._placing.now = False

    def _place_next(self, start: tuple[Span, Mapping[str, Any], Context | None, float, bool]) -> None:
        span, attributes, parent_context, opened, kept = start
        try:
            self._place(span, attributes, parent_context, opened, kept)
        except Exception as exc:
            self._problems.report(
                1, "Could not place span %r (%s: %s); it will be sent as a root", span.name, type(exc).__name__, exc
            )

    def _place(
        self, span: Span, attributes: Mapping[str, Any], parent_context: Context | None, now: float, kept: bool
    ) -> None:
        """Place a span from what it said when it started (its start time, its parent, its
        attributes then); one the filter leaves out only passes its parent's place on."""
        context = span.get_span_context()
        # LangSmith's own attributes are rare at start: one look at the keys spares the lookups.
        present = keys.present(tuple(attributes))
        explicit = "langsmith" in present
        identity = langsmith.explicit_identity(attributes) if explicit else langsmith.NO_IDENTITY
        parent_span = span.parent
        parent: Placed | None = None
        if identity.parent_run_id is not None and identity.dotted_order is None:
            parent = self._run_placement(run_key(identity.parent_run_id))
            if parent is None:
                self._missing.report(
                    1,
                    "Run %s, named by langsmith.span.parent_id of span %r, was not seen here: the span is a root",
                    identity.parent_run_id,
                    span.name,
                )
        elif parent_span is None or parent_span.is_remote:
            # A caller in another process may have sent its LangSmith run along.
            parent = remote_parent(parent_context)
        else:
            parent = self._placement(parent_span.span_id)
        if not kept:
            with self._lock:
                self._open[context.span_id] = OpenSpan(span, parent, parent, now, kept=False)
            return
        if identity.run_id is not None and (parent is None or identity.run_id not in parent.dotted_order):
            run_id, key = identity.run_id, run_key(identity.run_id)
        else:  # none given, or an ancestor's (a run under itself); the conversion says so
            # A span under a propagated LangSmith run is no root, even without an OTel parent.
            run_id, key = ids.derived_run_id(
                context.trace_id, context.span_id, root=parent_span is None and parent is None
            )
        taken, dotted_order = None, identity.dotted_order
        if key != context.span_id and self._taken(key):
            self._duplicates.report(1, DUPLICATE_ID_LINE, span.name, ids.span_hex(context.span_id), run_id)
            taken = run_id
            run_id, key, dotted_order = own_identity(context.span_id, run_id, dotted_order)
        session_name, session_id = langsmith.project(attributes) if explicit else (None, None)
        placed = place(
            run_id,
            ids.start_us(span.start_time),
            parent,
            session_name=session_name or (None if session_id else self._project),
            session_id=session_id,
            project_explicit=session_name is not None or session_id is not None,
            resource=span.resource,
            dotted_order=dotted_order,
            # What the span says at its start: instrumentations name a model call's kind then.
            llm=infer_run_type(attributes, run_name(span.name), present) == "llm",
        )
        if attributes:
            own_metadata = threads.thread(attributes, present, {})
            own_tags: list[str] = []
            if explicit:
                own_metadata.update(langsmith.metadata(attributes))
                own_tags = langsmith.tags(attributes) or []
            if own_metadata or own_tags:
                placed.lineage = inherit(placed.lineage, own_metadata, tuple(own_tags))
        alias = key if key != context.span_id else None
        with self._lock:
            self._open[context.span_id] = OpenSpan(span, placed, parent, now, alias=alias, taken_id=taken)
            if alias is not None:
                self._aliases[alias] = context.span_id

    def _taken(self, key: int) -> bool:
        with self._lock:
            return key in self._aliases or key in self._closed

    def end(self, span_ids: list[int]) -> list[OpenSpan | None]:
        """The open spans that ended (None: never seen), their placements kept for later children.
        Their starts must have been settled."""
        entries = []
        with self._lock:
            for span_id in span_ids:
                entry = self._open.pop(span_id, None) or self._forgotten.pop(span_id, None)
                if entry is not None:
                    self._closed.remember(span_id, entry.placed)
                    if entry.alias is not None:
                        self._aliases.pop(entry.alias, None)
                        self._closed.remember(entry.alias, entry.placed)
                entries.append(entry)
        return entries

    def placement(self, span_id: int) -> Placed | None:
        """Where a span sits, with what its children inherit (``lineage``)."""
        self.settle()
        return self._placement(span_id)

    def _placement(self, span_id: int) -> Placed | None:
        with self._lock:
            entry = self._open.get(span_id)
            return entry.placed if entry is not None else self._closed.get(span_id)

    def _run_placement(self, key: int) -> Placed | None:
        """Where the run of key ``key`` sits: open (by its span, when the key is not the span's id)
        or ended."""
        with self._lock:
            entry = self._open.get(self._aliases.get(key, key))
            return entry.placed if entry is not None else self._closed.get(key)

    def due(self, now: float, live_after: float) -> list[OpenSpan]:
        """Open spans to post as in progress now (each once): open for ``live_after`` seconds."""
        self.settle()
        with self._lock:
            self._evict(now)
            found = [
                entry
                for entry in self._open.values()
                if entry.kept and not entry.posted and now - entry.opened >= live_after
            ]
            for entry in found:
                entry.posted = True
            return found

    def _evict(self, now: float) -> None:
        # The lock is held.
        stale = [span_id for span_id, entry in self._open.items() if now - entry.opened > self._ttl]
        for span_id in stale:
            entry = self._open.pop(span_id)
            if entry.alias is not None:
                self._aliases.pop(entry.alias, None)
            self.evicted += 1
            self._stale.report(
                1,
                "Span %r (%s) has been open for more than %.0f s: no longer held (its run stays in progress, "
                "and is patched if the span ends)",
                entry.span.name if entry.span is not None else None,
                ids.span_hex(span_id),
                self._ttl,
            )
            # Its children find it among the ended; its own end, should it come, is its patch.
            self._closed.remember(span_id, entry.placed)
            if entry.alias is not None:
                self._closed.remember(entry.alias, entry.placed)
            entry.span = None
            self._forgotten[span_id] = entry
            if len(self._forgotten) > _MAX_FORGOTTEN:
                self._forgotten.popitem(last=False)


def _attributes_now(span: Span) -> Mapping[str, Any]:
    """The span's attributes as they are now: placing, done later, reads what the span said at its
    start whenever the placer comes. (The SDK's attributes copy as a plain dict, in C.)"""
    attributes = span.attributes
    if not attributes:
        return {}
    copy = getattr(attributes, "copy", None)
    return copy() if copy is not None else dict(attributes)
