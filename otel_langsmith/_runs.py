"""Spans to encoded runs: convert, place, encode. A failure at any stage costs one span's content at
most, never its neighbours: the run goes with its name, place and times, the failure named in it.

Two ways to be placed: a span handed over when it ended waits in the assembler for its parent
(the exporter); a span seen when it started has its place already (the processor, ``live``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from . import _wire as wire
from ._assembly import Assembler
from ._convert import PendingRun, SpanConverter, llm_related, minimal_pending, transparent_pending
from ._convert.redact import Redaction
from ._convert.values import UNNAMED
from ._live import LiveSpans, OpenSpan
from ._logs import STORE
from ._placement import DUPLICATE_ID_KEY, fill, place
from ._settings import Settings, SpanFilter
from ._stats import Counters
from ._throttle import Throttled

logger = logging.getLogger(__name__)

Encoded = list[wire.EncodedRun]
# Runs encoded and handed on at a time: what encoding holds before the queue has it is a chunk's
# worth, not a whole export's.
_ENCODE_CHUNK = 64


class Runs:
    """Thread-safe, but for :meth:`of_ended`, which one caller at a time may run (posts and patches
    of a run must meet once)."""

    def __init__(self, settings: Settings, *, counters: Counters, clock: Callable[[], float], name: str) -> None:
        self._settings = settings
        self._counts = counters
        self._clock = clock
        self._name = name
        self.convert = SpanConverter(
            project=settings.project,
            redaction=Redaction(
                settings.hide_inputs, settings.hide_outputs, settings.process_inputs, settings.process_outputs
            ),
            logs=STORE.take,
        )
        self.keep = _span_filter(settings.span_filter)
        self.fresh_state()

    def fresh_state(self) -> None:
        settings = self._settings
        self.assembler = Assembler(
            max_wait=settings.parent_wait, max_spans=settings.max_pending_spans, max_bytes=settings.max_pending_bytes
        )
        self.live = LiveSpans(project=settings.project, ttl=settings.open_span_ttl)
        self._problems = Throttled(logger, logging.ERROR, clock=self._clock)

    # -- the exporter's spans: placed when their parent has arrived ---------------------------------

    def kept(self, span: ReadableSpan) -> bool:
        """Whether the span filter sends this span (a filter that raises keeps it)."""
        keep = self.keep
        if keep is None:
            return True
        try:
            return bool(keep(span))
        except Exception as exc:
            self._problems.report(1, "The span filter raised on span %r (%r); the span is kept", span.name, exc)
            return True

    def of_exported(self, spans: Sequence[ReadableSpan]) -> Iterator[Encoded]:
        now = self._clock()
        if self.keep is None:
            pendings = [pending for pending in map(self.convert, spans) if pending is not None]
        else:
            pendings = [pending for pending in map(self._filtered, spans) if pending is not None]
        ready = self.assembler.add(pendings, now=now)
        ready += self.assembler.expire(now=now)
        return self._encode(ready, "post")

    def _filtered(self, span: ReadableSpan) -> PendingRun | None:
        if self.kept(span):
            return self.convert(span)
        self._counts.add("spans_filtered")
        return transparent_pending(span)

    def of_expired(self) -> Iterator[Encoded]:
        """Spans whose parent did not arrive within ``parent_wait``, as roots."""
        return self._encode(self.assembler.expire(now=self._clock()), "post")

    def of_waiting(self, reason: str) -> Iterator[Encoded]:
        """Every span still waiting for its parent, as roots."""
        return self._encode(self.assembler.drain(reason), "post")

    # -- the processor's spans: placed when they started --------------------------------------------

    def of_ended(
        self, ended: Sequence[tuple[ReadableSpan, OpenSpan | None]], live: Sequence[OpenSpan]
    ) -> Iterator[Encoded]:
        """Ended spans, and open ones to post as in progress. A run that ended after it was posted
        is a patch; a post and a patch of one run that meet here are one post (LangSmith bills
        each operation)."""
        posts: dict[str, dict[str, Any]] = {}
        patches: dict[str, dict[str, Any]] = {}
        for open_span in live:
            assert open_span.span is not None  # open, not forgotten
            run = self._run_of(open_span.span, open_span)
            if run is not None:
                posts[run["id"]] = run
        for span, entry in ended:
            run = self._run_of(span, entry)
            if run is None:
                continue
            if entry is not None and entry.posted and run["id"] not in posts:
                patches[run["id"]] = run
            else:
                posts[run["id"]] = {**posts.get(run["id"], {}), **run}
        yield from self._encode(list(posts.values()), "post")
        yield from self._encode(list(patches.values()), "patch")

    def _run_of(self, span: ReadableSpan, entry: OpenSpan | None) -> dict[str, Any] | None:
        pending = self.convert(span)
        if pending is None:
            return None
        if entry is None or entry.placed is None:
            # Started before this processor was installed: its place is unknown, so it is a root.
            placed = place(
                pending.run_id,
                pending.start_us,
                None,
                session_name=pending.run.get("session_name"),
                session_id=pending.run.get("session_id"),
                project_explicit=pending.project_explicit,
                resource=pending.resource,
            )
            parent = None
        else:
            placed, parent = entry.placed, entry.parent
            if entry.taken_id is not None:
                pending.metadata[DUPLICATE_ID_KEY] = entry.taken_id
        pending.run_id = placed.run_id
        try:
            fill(pending, placed, parent)
        except Exception as exc:
            self._problem("place", span.name, exc)
            pending = minimal_pending(span, project=self._settings.project, problem=f"{type(exc).__name__}: {exc}")
            pending.run_id = placed.run_id
            fill(pending, placed, parent)
        return pending.run

    # -- encoding -------------------------------------------------------------------------------------

    def _encode(self, runs: list[dict[str, Any]], operation: str) -> Iterator[Encoded]:
        for start in range(0, len(runs), _ENCODE_CHUNK):
            encoded = []
            for run in runs[start : start + _ENCODE_CHUNK]:
                try:
                    encoded.append(wire.encode_run(run, operation=operation))
                except Exception:
                    encoded += self._encode_refused(run, operation)
            yield encoded

    def _encode_refused(self, run: dict[str, Any], operation: str) -> Encoded:
        """A run orjson refused: sanitized, or reduced to its identity, or lost (counted)."""
        try:
            return [wire.encode_sanitized(run, operation=operation)]
        except Exception as exc:
            self._problem("encode", run.get("name"), exc)
            stripped = _stripped(run, exc)
        try:
            return [wire.encode_run(stripped, operation=operation)]
        except Exception:
            self._counts.drop("encoding", 1)
            return []

    def _problem(self, stage: str, name: object, exc: Exception) -> None:
        self._counts.add("conversion_errors")
        self._problems.report(
            1,
            "%s could not %s run %r (%s: %s); sent with its name, place and times only",
            self._name,
            stage,
            name,
            type(exc).__name__,
            exc,
        )


def _span_filter(setting: str | SpanFilter) -> SpanFilter | None:
    """The function that says which spans are sent; None: all of them."""
    if callable(setting):
        return setting
    return llm_related if setting == "llm" else None


_IDENTITY = frozenset(
    {"id", "trace_id", "parent_run_id", "dotted_order", "name", "run_type", "start_time", "end_time"}
    | {"session_name", "session_id"}
)


def _stripped(run: dict[str, Any], problem: Exception) -> dict[str, Any]:
    """A run reduced to its identity, place and times, the problem named in its metadata."""
    kept: dict[str, Any] = {
        key: value for key, value in run.items() if key in _IDENTITY and (value is None or isinstance(value, str))
    }
    kept.setdefault("name", UNNAMED)
    kept.setdefault("run_type", "chain")
    kept["extra"] = {"metadata": {"otel_langsmith_error": f"could not be encoded: {type(problem).__name__}"}}
    return kept
