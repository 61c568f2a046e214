"""span -> run -> placed run -> bytes -> backlog: what the exporter and the span processor share.

The two public fronts differ only in when spans enter: the exporter hands over ended spans
(``export``), which the assembler places once their parents have arrived; the processor hands
over each span as it starts (placed at once, :mod:`otel_langsmith._live`) and as it ends. Everything
after that, and the lifecycle (the worker thread, fork, flush, shutdown, stats), is here, once.

Threads: the application's (placing at start, queueing at end), the caller of ``export`` (the
SDK's batch thread), this pipeline's worker (converting ended spans every ``flush_interval``,
posting long-open spans, releasing spans whose parent never came) and the backlog's drainer
(the only one that talks to LangSmith).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span

from . import _wire as wire
from ._assembly import Assembler
from ._backlog import Backlog
from ._convert import SpanConverter, minimal_pending
from ._convert.redact import Redaction
from ._live import LiveSpans, OpenSpan
from ._logs import STORE
from ._placement import Placed, fill, place
from ._propagation import register
from ._sender import Sender
from ._settings import Settings
from ._spool import Spool
from ._stats import Counters, Stats
from ._throttle import Throttled
from ._transport import Transport, suppressed_instrumentation

logger = logging.getLogger(__name__)

# Ended spans waiting for the worker, beyond which the application's thread wakes it; and the most
# kept at all (the oldest are dropped, counted) if conversion cannot keep up.
_OUTBOX_WAKE = 2048
_OUTBOX_MAX = 65_536
# Ended spans converted, encoded and queued at a time: bounds what a flush holds at once.
_CHUNK = 512


class Pipeline:
    """Thread-safe. ``clock`` (``time.monotonic``) times parent waits, live posts and backoff:
    tests give their own and call :meth:`tick` instead of waiting."""

    def __init__(self, settings: Settings, *, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._name = name
        self._clock = clock
        self._counts = Counters()
        self._lost_at_flush = 0
        self._convert = SpanConverter(
            project=settings.project,
            redaction=Redaction(
                settings.hide_inputs, settings.hide_outputs, settings.process_inputs, settings.process_outputs
            ),
            logs=STORE.take,
        )
        problems = settings.problems()
        for problem in problems:
            logger.error("%s cannot send to LangSmith: %s", name, problem)
        if not settings.api_key and not problems:
            logger.info("No LangSmith API key is set (LANGSMITH_API_KEY); requests are sent without one")
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
        spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes) if settings.spool_dir else None
        self._backlog = Backlog(
            self._sender,
            max_bytes=settings.max_queue_bytes,
            spool=spool,
            policy=settings.retry_policy,
            counters=self._counts,
            clock=clock,
        )
        self._fresh_state()
        register(self)
        method = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (after := method()) is not None and after())

    def _fresh_state(self) -> None:
        settings = self.settings
        self._assembler = Assembler(
            max_wait=settings.parent_wait, max_spans=settings.max_pending_spans, max_bytes=settings.max_pending_bytes
        )
        self._live = LiveSpans(project=settings.project, ttl=settings.open_span_ttl)
        self._outbox: list[tuple[ReadableSpan, OpenSpan | None]] = []
        # A plain lock under the condition: the default re-entrant one costs more on every span.
        self._wake = threading.Condition(threading.Lock())
        # One conversion at a time (the worker, a flush, shutdown): posts and patches of a run meet once.
        self._convert_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._live_mode = False
        self._stopped = False
        self._problems = Throttled(logger, logging.ERROR, clock=self._clock)

    def _after_fork(self) -> None:
        # The parent keeps what it holds and sends it; the child starts empty, without threads.
        self._fresh_state()
        self._backlog.reset_after_fork()
        self._sender.reset_after_fork()
        self._convert.reset_after_fork()
        STORE.reset_after_fork()

    # -- spans in: the exporter -----------------------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> bool:
        """Ended spans, placed once their parents have arrived; False after shutdown."""
        if self._stopped:
            logger.warning("%s is shut down; dropping %d span(s)", self._name, len(spans))
            return False
        self._counts.add("spans_received", len(spans))
        now = self._clock()
        pendings = [pending for pending in map(self._convert, spans) if pending is not None]
        ready = self._assembler.add(pendings, now=now)
        ready += self._assembler.expire(now=now)
        self._backlog.put(self._encode(ready, "post"))
        if self._assembler.waiting:
            self._start_worker()
        return True

    # -- spans in: the processor -----------------------------------------------------------------------

    def started(self, span: Span, parent_context: Context | None) -> None:
        if self._stopped:
            return
        try:
            self._live.start(span, parent_context, self._clock())
        except Exception:
            logger.exception("%s could not place span %r; it will be sent as a root", self._name, span.name)
        self._live_mode = True
        if self._worker is None:
            self._start_worker()

    def ended(self, span: ReadableSpan) -> None:
        if self._stopped:
            return
        context = span.get_span_context()
        entry = self._live.end(context.span_id) if context is not None else None
        with self._wake:
            self._outbox.append((span, entry))
            waiting = len(self._outbox)
            if waiting >= _OUTBOX_WAKE:
                self._wake.notify_all()
            if waiting > _OUTBOX_MAX:
                del self._outbox[0]
                self._counts.drop("outbox_full", 1)

    def placement(self, span_id: int) -> Placed | None:
        """Where a live span sits, for the propagator."""
        return self._live.placement(span_id)

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
        deadline = self._assembler.next_deadline()
        if deadline is not None:
            waits.append(max(0.0, deadline - self._clock()))
        return min(waits) if waits else None

    def tick(self) -> None:
        """What the worker does each time it wakes: convert ended spans, post long-open ones,
        release spans whose parent did not come in time."""
        now = self._clock()
        self._flush_ended(self._live.due(now, self.settings.live_after))
        self._backlog.put(self._encode(self._assembler.expire(now=now), "post"))

    def _flush_ended(self, live: list[OpenSpan]) -> None:
        with self._convert_lock:
            with self._wake:
                ended, self._outbox = self._outbox, []
            for offset in range(0, max(len(ended), 1), _CHUNK):
                chunk = ended[offset : offset + _CHUNK]
                posts: dict[str, dict[str, Any]] = {}
                patches: dict[str, dict[str, Any]] = {}
                for entry in live if offset == 0 else ():
                    run = self._run_of(entry.span, entry)
                    if run is not None:
                        posts[run["id"]] = run
                for span, ended_entry in chunk:
                    run = self._run_of(span, ended_entry)
                    if run is None:
                        continue
                    if ended_entry is not None and ended_entry.posted and run["id"] not in posts:
                        patches[run["id"]] = run
                    else:
                        # A post and a patch of one run in one batch are one post: LangSmith bills events.
                        posts[run["id"]] = {**posts.get(run["id"], {}), **run}
                self._counts.add("spans_received", len(chunk))
                self._backlog.put(self._encode(list(posts.values()), "post"))
                self._backlog.put(self._encode(list(patches.values()), "patch"))

    def _run_of(self, span: ReadableSpan, entry: OpenSpan | None) -> dict[str, Any] | None:
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
        try:
            fill(pending, placed, parent)
        except Exception as exc:
            self._problem("place", span, exc)
            pending = minimal_pending(span, project=self.settings.project, problem=f"{type(exc).__name__}: {exc}")
            pending.run_id = placed.run_id
            fill(pending, placed, parent)
        return pending.run

    def _encode(self, runs: list[dict[str, Any]], operation: str) -> list[wire.EncodedRun]:
        encoded = []
        for run in runs:
            try:
                encoded.append(wire.encode_run(run, operation=operation))
            except Exception as exc:
                self._problem("encode", run, exc)
                try:
                    encoded.append(wire.encode_run(_stripped(run, exc), operation=operation))
                except Exception:
                    self._counts.drop("encoding", 1)
        return encoded

    def _problem(self, stage: str, what: object, exc: Exception) -> None:
        self._counts.add("conversion_errors")
        name = getattr(what, "name", None) or (what.get("name") if isinstance(what, dict) else None)
        self._problems.report(
            1,
            "%s could not %s run %r (%s: %s); sent with its name, place and times only",
            self._name,
            stage,
            name,
            type(exc).__name__,
            exc,
        )

    # -- lifecycle ----------------------------------------------------------------------------------

    def force_flush(self, timeout_millis: float) -> bool:
        """Convert what ended, release what waited long enough, and send. True when nothing is left
        to send and nothing was lost (dropped or refused) since the previous flush."""
        if self._stopped:
            return False
        deadline = self._clock() + timeout_millis / 1000
        try:
            self._flush_ended([])
            self._backlog.put(self._encode(self._assembler.expire(now=self._clock()), "post"))
            sent = self._backlog.flush(deadline)
        except Exception:
            logger.exception("%s failed to flush", self._name)
            return False
        lost = self._lost()
        nothing_lost, self._lost_at_flush = lost == self._lost_at_flush, lost
        return sent and nothing_lost

    def _lost(self) -> int:
        return sum(self._counts.dropped().values()) + self._counts["runs_refused"]

    def shutdown(self, timeout_millis: float) -> None:
        """Send what is held, spans still open (as in progress) and still waiting (as roots); what
        cannot be sent within the time goes to the spool, or is counted lost in one log line."""
        if self._stopped:
            return
        deadline = self._clock() + timeout_millis / 1000
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        worker = self._worker
        if worker is not None:
            worker.join(max(0.0, deadline - self._clock()))
        try:
            self._flush_ended(self._live.due(self._clock(), 0.0))
            self._backlog.put(self._encode(self._assembler.drain("shutdown"), "post"))
        except Exception:
            logger.exception("%s failed to convert what it held at shutdown", self._name)
        self._backlog.close(deadline, grace=self.settings.shutdown_grace)
        self._transport.close()
        self._say_losses()

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
        dropped = counts.dropped()
        return Stats(
            spans_received=counts["spans_received"],
            runs_exported=counts["runs_exported"],
            runs_retried=counts["runs_retried"],
            runs_spooled=counts["runs_spooled"],
            runs_truncated=counts["runs_truncated"],
            runs_refused=counts["runs_refused"],
            runs_dropped=sum(dropped.values()),
            dropped=dropped,
            requests=counts["requests"],
            conversion_errors=counts["conversion_errors"] + self._convert.errors,
            queued_runs=self._backlog.queued_runs,
            waiting=self._assembler.waiting,
            waiting_bytes=self._assembler.waiting_bytes,
            released_as_root=dict(self._assembler.released_as_root),
            open_spans=len(self._live),
            ended_unsent=len(self._outbox),
            evicted=self._live.evicted,
        )


def _stripped(run: dict[str, Any], problem: Exception) -> dict[str, Any]:
    """A run reduced to its identity, place and times, the problem named in its metadata."""
    kept: dict[str, Any] = {
        key: value for key, value in run.items() if key in _IDENTITY and (value is None or isinstance(value, str))
    }
    kept.setdefault("name", "unnamed span")
    kept.setdefault("run_type", "chain")
    kept["extra"] = {"metadata": {"otel_langsmith_error": f"could not be encoded: {type(problem).__name__}"}}
    return kept


_IDENTITY = frozenset(
    (
        "id",
        "trace_id",
        "parent_run_id",
        "dotted_order",
        "name",
        "run_type",
        "start_time",
        "end_time",
        "session_name",
        "session_id",
    )
)
