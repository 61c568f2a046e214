"""The lifecycle the exporter and the span processor share: threads, fork, flush, shutdown, stats.

The two public fronts differ only in when spans enter: the exporter hands over ended spans
(``export``); the processor hands over each span as it starts (noted, then placed from its parent
and start time) and as it ends. From there, :class:`~otel_langsmith._runs.Runs` makes encoded
runs and the :class:`~otel_langsmith._backlog.Backlog` sends them.

Threads: the application's (noting starts, queueing ends), the caller of ``export`` (the SDK's
batch thread), this pipeline's worker (placing started spans and converting ended ones every
``flush_interval``, posting long-open spans, releasing spans whose parent never came) and the
backlog's sender (the only one that talks to LangSmith). ``os.fork()`` is handled here, for all
of them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span

from . import _propagation as propagation
from ._backlog import Backlog
from ._logs import STORE
from ._placement import Placed
from ._propagation import register
from ._runs import Runs
from ._sender import Sender
from ._settings import Settings
from ._spool import Spool
from ._stats import Counters, Stats
from ._transport import Transport, suppressed_instrumentation
from ._wire import EncodedRun

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Ended spans waiting for the worker, beyond which the application's thread wakes it; beyond
# twice that, the worker is lagging and the application's threads place the spans that start; and
# the most kept at all (the oldest are dropped, counted) if conversion cannot keep up.
_OUTBOX_WAKE = 1024
_OUTBOX_MAX = 65_536
# Ended spans converted and queued at a time: bounds what a flush holds at once.
_CHUNK = 128


class Pipeline:
    """Thread-safe. ``clock`` (``time.monotonic``) times parent waits, live posts and backoff:
    tests give their own and call :meth:`tick` instead of waiting. Requests, flushes and shutdown
    run on real time."""

    def __init__(self, settings: Settings, *, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._name = name
        self._clock = clock
        self._counts = Counters()
        self._lost_at_flush = 0
        #: False when tracing is turned off (LANGSMITH_TRACING=false): spans are ignored.
        self._on = settings.tracing
        if not self._on:
            logger.info("LangSmith tracing is off (LANGSMITH_TRACING=false): %s sends nothing", name)
        problems = settings.problems() if self._on else []
        for problem in problems:
            logger.error("%s cannot send to LangSmith: %s", name, problem)
        if not settings.api_key and not problems and self._on:
            logger.info("No LangSmith API key is set (LANGSMITH_API_KEY); requests are sent without one")
        self._runs = Runs(settings, counters=self._counts, clock=clock, name=name)
        self._transport = Transport(
            endpoint=settings.endpoint,
            api_key=settings.api_key,
            workspace_id=settings.workspace_id,
            timeout=settings.timeout,
            session=settings.session,
        )
        self._sender = Sender(
            self._transport,
            compression=settings.compression,
            policy=settings.retry_policy,
            counters=self._counts,
            problems=problems,
        )
        self._backlog = Backlog(
            self._sender,
            max_bytes=settings.max_queue_bytes,
            spool=Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes) if settings.spool_dir else None,
            policy=settings.retry_policy,
            counters=self._counts,
            clock=clock,
        )
        self._fresh_state()
        register(self)
        method = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (after := method()) is not None and after())

    def _fresh_state(self) -> None:
        # Deques: the application's threads append to them without taking a lock.
        self._outbox: deque[ReadableSpan] = deque()
        # Spans dropped from a full outbox: their starts are forgotten by the worker.
        self._dropped: deque[int] = deque()
        # A plain lock under the condition: the default re-entrant one costs more on every span.
        self._wake = threading.Condition(threading.Lock())
        # One conversion of ended spans at a time (the worker, a flush, shutdown).
        self._convert_lock = threading.Lock()
        # Ended spans taken from the outbox by the conversion under way, not yet queued.
        self._unconverted = 0
        self._worker: threading.Thread | None = None
        self._live_mode = False
        self._stopped = False

    def _after_fork(self) -> None:
        # The parent keeps what it holds and sends it; the child starts empty, without threads.
        self._fresh_state()
        self._runs.fresh_state()
        self._runs.convert.reset_after_fork()
        self._backlog.reset_after_fork()
        self._sender.reset_after_fork()
        STORE.reset_after_fork()
        propagation.reset_after_fork()

    # -- spans in -----------------------------------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> bool:
        """Ended spans, placed once their parents have arrived; False after shutdown."""
        if self._stopped:
            logger.warning("%s is shut down; dropping %d span(s)", self._name, len(spans))
            return False
        if not self._on:
            return True
        self._counts.add("spans_received", len(spans))
        self._put(self._runs.of_exported(spans))
        if self._runs.assembler.waiting:
            self._start_worker()
        return True

    def started(self, span: Span, parent_context: Context | None) -> None:
        """A span that starts now (the processor): noted, placed by the worker."""
        if self._stopped or not self._on:
            return
        try:
            runs = self._runs
            kept = runs.keep is None or runs.kept(span)
            lagging = len(self._outbox) >= 2 * _OUTBOX_WAKE
            runs.live.start(span, parent_context, self._clock(), kept=kept, lagging=lagging)
        except Exception:
            logger.exception("%s could not note span %r; it will be sent as a root", self._name, span.name)
        self._live_mode = True
        if self._worker is None:
            self._start_worker()

    def ended(self, span: ReadableSpan) -> None:
        """A span that ended (the processor): converted and sent by the worker."""
        if self._stopped or not self._on:
            return
        outbox = self._outbox
        outbox.append(span)
        waiting = len(outbox)
        if waiting >= _OUTBOX_WAKE:
            with self._wake:
                self._wake.notify_all()
        if waiting > _OUTBOX_MAX:
            try:
                oldest = outbox.popleft()
            except IndexError:  # the worker took them all meanwhile
                return
            self._dropped.append(_span_id(oldest))
            self._counts.drop("outbox_full", 1)

    def placement(self, span_id: int) -> Placed | None:
        """Where a live span sits, for the propagator."""
        return self._runs.live.placement(span_id)

    # -- the worker ---------------------------------------------------------------------------------

    def _start_worker(self) -> None:
        with self._wake:
            if self._stopped or (self._worker is not None and self._worker.is_alive()):
                return
            self._worker = threading.Thread(target=self._work, name="otel-langsmith-pipeline", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        with suppressed_instrumentation():
            while True:
                with self._wake:
                    if self._stopped:
                        return
                    if len(self._outbox) < _OUTBOX_WAKE:
                        self._wake.wait(self._next_wait())
                    if self._stopped:
                        return
                try:
                    self.tick()
                except Exception:
                    logger.exception("%s failed to process spans; carrying on", self._name)

    def _next_wait(self) -> float | None:
        waits = []
        if self._live_mode:
            waits.append(self.settings.flush_interval)
        deadline = self._runs.assembler.next_deadline()
        if deadline is not None:
            waits.append(max(0.0, deadline - self._clock()))
        return min(waits) if waits else None

    def tick(self) -> None:
        """What the worker does each time it wakes: place started spans, convert ended ones, post
        long-open ones, release spans whose parent did not come in time."""
        self._flush_ended(live_after=self.settings.live_after)
        self._put(self._runs.of_expired())

    def _flush_ended(self, *, live_after: float | None = None, timeout: float = -1.0) -> bool:
        """Convert the spans that ended; with ``live_after``, post those open that long as in
        progress too. Both under one lock: a span marked posted has its post queued before any
        flush can convert its end (a patch) and queue that. False: another thread held the lock
        past ``timeout`` seconds (the worker converting through slow hooks, say)."""
        if not self._convert_lock.acquire(timeout=timeout):
            return False
        try:
            self._convert_ended(live_after)
        finally:
            self._convert_lock.release()
        return True

    def _convert_ended(self, live_after: float | None) -> None:
        # The convert lock is held.
        ended = _take(self._outbox)
        dropped = _take(self._dropped)
        runs = self._runs
        # Every span that ended was noted at its start before: placed now, it can be matched.
        runs.live.settle()
        runs.live.end(dropped)
        entries = runs.live.end([_span_id(span) for span in ended])
        kept = [
            (span, entry)
            for span, entry in zip(ended, entries, strict=True)
            if (entry.kept if entry is not None else runs.kept(span))
        ]
        self._counts.add("spans_received", len(ended))
        self._counts.add("spans_filtered", len(ended) - len(kept))
        del ended, entries
        live = runs.live.due(self._clock(), live_after) if live_after is not None else []
        # Chunk by chunk, each let go once queued: a large outbox is not held whole till the end.
        kept.reverse()
        while kept or live:
            self._unconverted = len(kept)
            chunk = [kept.pop() for _ in range(min(_CHUNK, len(kept)))]
            self._put(runs.of_ended(chunk, live))
            live = []
        self._unconverted = 0

    def _put(self, chunks: Iterator[list[EncodedRun]]) -> None:
        for encoded in chunks:
            self._backlog.put(encoded)

    # -- lifecycle ----------------------------------------------------------------------------------

    def force_flush(self, timeout_millis: float) -> bool:
        """Convert what ended, release what waited long enough, and send. True when nothing is left
        to send and nothing was lost (dropped or refused) since the previous flush."""
        if self._stopped:
            return False
        deadline = time.monotonic() + _seconds(timeout_millis)
        try:
            converted = self._flush_ended(timeout=max(0.0, deadline - time.monotonic()))
            self._put(self._runs.of_expired())
            sent = self._backlog.flush(max(0.0, deadline - time.monotonic())) and converted
        except Exception:
            logger.exception("%s failed to flush", self._name)
            return False
        lost = sum(self._counts.dropped().values()) + self._counts["runs_refused"] + self._runs.assembler.lost
        nothing_lost, self._lost_at_flush = lost == self._lost_at_flush, lost
        return sent and nothing_lost

    def shutdown(self, timeout_millis: float) -> None:
        """Send what is held, spans still open (as in progress) and still waiting (as roots); what
        cannot be sent within the time goes to the spool, or is counted lost in one log line."""
        if self._stopped:
            return
        deadline = time.monotonic() + _seconds(timeout_millis)
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        worker = self._worker
        if worker is not None:
            worker.join(max(0.0, deadline - time.monotonic()))
        try:
            if not self._flush_ended(live_after=0.0, timeout=max(0.0, deadline - time.monotonic())):
                # The worker is still converting (a hook that takes its time): what it has not
                # queued yet is not sent.
                self._counts.drop("shutdown", len(self._outbox) + self._unconverted)
            self._put(self._runs.of_waiting("shutdown"))
        except Exception:
            logger.exception("%s failed to convert what it held at shutdown", self._name)
        self._backlog.close(max(0.0, deadline - time.monotonic()), grace=self.settings.shutdown_grace)
        self._transport.close()
        self._say_losses()

    def held_bytes(self) -> int:
        """Bytes of runs in memory now: queued for LangSmith, and waiting for their parents."""
        return self._backlog.queued_bytes + self._runs.assembler.waiting_bytes

    def send_spooled(self) -> None:
        """Start sending what the spool holds now (left by an earlier process), without waiting for
        the first span."""
        if self._on and not self._stopped:
            self._backlog.start()

    def _say_losses(self) -> None:
        stats = self.stats()
        if stats.runs_dropped or stats.runs_refused:
            logger.warning(
                "%s shut down having lost %d run(s) (%s) and had %d refused by LangSmith; %d sent, %d spooled",
                self._name,
                stats.runs_dropped,
                ", ".join(f"{reason}: {count}" for reason, count in stats.dropped.items()) or "none",
                stats.runs_refused,
                stats.runs_exported,
                stats.runs_spooled,
            )

    def stats(self) -> Stats:
        counts = self._counts
        assembler, live = self._runs.assembler, self._runs.live
        dropped = counts.dropped()
        if assembler.lost:
            dropped["placement"] = assembler.lost
        return Stats(
            spans_received=counts["spans_received"],
            spans_filtered=counts["spans_filtered"],
            runs_exported=counts["runs_exported"],
            runs_retried=counts["runs_retried"],
            runs_spooled=counts["runs_spooled"],
            runs_truncated=counts["runs_truncated"],
            runs_refused=counts["runs_refused"],
            runs_dropped=sum(dropped.values()),
            dropped=dropped,
            requests=counts["requests"],
            conversion_errors=counts["conversion_errors"] + self._runs.convert.errors + assembler.errors,
            queued_runs=self._backlog.queued_runs,
            queued_bytes=self._backlog.queued_bytes,
            waiting=assembler.waiting,
            waiting_bytes=assembler.waiting_bytes,
            released_as_root=dict(assembler.released_as_root),
            open_spans=len(live),
            ended_unsent=len(self._outbox),
            evicted=live.evicted,
        )


# The longest wait a timeout asks for: an infinite one (``math.inf``) is as good as forever, and
# waits on locks and threads refuse what the platform's clock cannot add.
_MAX_WAIT_S = 1e9


def _seconds(timeout_millis: float) -> float:
    """A timeout in seconds that every wait takes: none below zero (nor NaN), none past
    :data:`_MAX_WAIT_S`."""
    try:
        seconds = timeout_millis / 1000
    except OverflowError:  # an integer past a float's range
        return _MAX_WAIT_S if timeout_millis > 0 else 0.0
    return min(seconds, _MAX_WAIT_S) if seconds > 0 else 0.0


def _take(items: deque[T]) -> list[T]:
    """What a deque holds now, taken out of it (others may append, or drop the oldest, meanwhile)."""
    taken = []
    for _ in range(len(items)):
        try:
            taken.append(items.popleft())
        except IndexError:
            break
    return taken


def _span_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    return context.span_id if context is not None else 0
