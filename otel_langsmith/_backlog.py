"""Encoded runs on their way to LangSmith: a memory queue, the spool, and the one thread that sends.

``put`` never waits for the network: the exporter's ``export`` and the processor's flush return at
once whatever the endpoint does, so the OpenTelemetry SDK's own queue never backs up behind a
retry. The drainer thread takes a batch (from memory, then from the spool), hands it to the
:class:`~otel_langsmith._sender.Sender`, and settles it: delivered, refused, or kept to be sent
again after the wait :class:`~otel_langsmith.RetryPolicy` gives.

A batch is in exactly one place at a time: in the queue, in flight (taken by whoever holds the
send lock: the drainer, a flush or shutdown), or in the spool. With a spool, a batch that failed
once is written there before anything else happens to it, and while LangSmith is known to be down
new batches go straight to disk, so a process killed during an outage loses only what it had not
tried yet. The memory queue is bounded in bytes: beyond it the oldest runs are dropped, counted and
logged in aggregate.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from ._retry import RetryPolicy
from ._sender import Outcome, Sender
from ._spool import Spool, SpoolRefused
from ._stats import Counters
from ._throttle import Throttled
from ._transport import suppressed_instrumentation
from ._wire import EncodedRun

logger = logging.getLogger(__name__)

# Per-object overhead of a queued run (the EncodedRun, its tuples, one bytes object per part), so that
# the byte bound is a bound on memory and not only on payload.
_RUN_OVERHEAD = 200
_PART_OVERHEAD = 100
# Runs a spool file holds when the memory queue moves to disk: a batch's worth, by the server's default.
_SPILL_RUNS = 100


def queued_size(run: EncodedRun) -> int:
    return run.size + _RUN_OVERHEAD + _PART_OVERHEAD * len(run.parts)


def compact(runs: Sequence[EncodedRun]) -> list[EncodedRun]:
    """Copies whose payloads occupy only their length, for runs that will wait.

    orjson returns bytes whose allocation keeps its growth buffer (a small document can hold ten
    times its length): harmless for a request sent at once, not for runs kept for minutes.
    """
    return [run._replace(parts=tuple((name, bytes(memoryview(p))) for name, p in run.parts)) for run in runs]


class Backlog:
    """Thread-safe. ``clock`` is ``time.monotonic`` but in tests."""

    def __init__(
        self,
        sender: Sender,
        *,
        max_bytes: int,
        spool: Spool | None,
        policy: RetryPolicy,
        counters: Counters,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sender = sender
        self._max_bytes = max_bytes
        self._spool = spool
        self._policy = policy
        self._counts = counters
        self._clock = clock
        self._fresh_state()

    def _fresh_state(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._queue: deque[EncodedRun] = deque()
        self._bytes = 0
        # Held while a batch is in flight: one sender at a time, so a flush that finds nothing
        # left knows that nothing is in flight either.
        self._send_lock = threading.Lock()
        self._drainer: threading.Thread | None = None
        self._closing = False
        #: The last attempt failed: new batches go to the spool, and the drainer waits until ``_retry_at``.
        self._down = False
        self._failures = 0
        self._retry_at = 0.0
        self._drops = Throttled(logger, logging.ERROR, clock=self._clock)
        self._spool_errors = Throttled(logger, logging.ERROR, clock=self._clock)
        self._kept_aside = Throttled(logger, logging.WARNING, clock=self._clock)

    def reset_after_fork(self) -> None:
        """The parent keeps what it queued; the child starts empty, without threads."""
        self._fresh_state()

    @property
    def queued_runs(self) -> int:
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    # -- putting runs in ----------------------------------------------------------------------------

    def put(self, runs: Sequence[EncodedRun]) -> None:
        """Queue runs for sending; returns at once."""
        if not runs:
            return
        if self._down:
            # They will wait: on disk when there is a spool, else compacted in memory.
            if self._spool is not None and self._write_spool(runs):
                return
            runs = compact(runs)
        self._enqueue(runs, front=False)

    def _enqueue(self, runs: Sequence[EncodedRun], *, front: bool) -> None:
        dropped = 0
        with self._lock:
            if front:
                self._queue.extendleft(reversed(runs))
            else:
                self._queue.extend(runs)
            self._bytes += sum(map(queued_size, runs))
            while self._bytes > self._max_bytes and len(self._queue) > 1:
                self._bytes -= queued_size(self._queue.popleft())
                dropped += 1
            self._start_drainer()
            self._lock.notify_all()
        if dropped:
            self._counts.drop("queue_full", dropped)
            self._drops.report(
                dropped,
                "LangSmith queue is full (max_queue_bytes=%d): dropped the oldest %d run(s)",
                self._max_bytes,
                dropped,
            )

    def _write_spool(self, runs: Sequence[EncodedRun]) -> bool:
        spool = self._spool
        if spool is None:
            return False
        try:
            dropped = spool.write(runs)
        except SpoolRefused as exc:
            logger.error("%s; keeping undelivered runs in memory only", exc)
            self._spool = None
            return False
        except OSError as exc:
            self._spool_errors.report(
                len(runs), "Could not write to the spool %s (%s); keeping the runs in memory", spool.directory, exc
            )
            return False
        self._counts.add("runs_spooled", len(runs))
        if dropped:
            self._counts.drop("spool_full", dropped)
            self._drops.report(
                dropped, "LangSmith spool %s is full: dropped its oldest %d run(s)", spool.directory, dropped
            )
        with self._lock:
            self._start_drainer()
        return True

    # -- the drainer --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the drainer now (it sends what the spool holds from earlier processes)."""
        with self._lock:
            self._start_drainer()

    def _start_drainer(self) -> None:
        # The lock is held.
        if self._closing or (self._drainer is not None and self._drainer.is_alive()):
            return
        self._drainer = threading.Thread(target=self._drain, name="otel-langsmith-sender", daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        # A new thread has no OpenTelemetry context: without this, instrumented HTTP clients would
        # trace the exporter's own requests (and feed their spans back in).
        with suppressed_instrumentation():
            while self._wait_for_work():
                try:
                    self._attempt(math.inf)
                except Exception:
                    logger.exception("LangSmith sender failed unexpectedly; trying again later")
                    self._failed(self._policy.max_backoff)

    def _wait_for_work(self) -> bool:
        """Block until a batch is due (False: closing)."""
        with self._lock:
            while not self._closing:
                wait = self._retry_at - self._clock()
                if wait <= 0:
                    if self._queue:
                        return True
                    if self._spool is not None and self._spool.pending():
                        return True
                    # The spool is shared with other processes: look at it again now and then.
                    wait = self._policy.max_backoff if self._spool is not None else math.inf
                self._lock.wait(None if wait == math.inf else wait)
            return False

    def _attempt(self, deadline: float) -> bool | None:
        """Send the oldest batch. True: settled; False: not delivered (yet); None: nothing to send."""
        if not self._send_lock.acquire(timeout=max(0.0, min(deadline - self._clock(), threading.TIMEOUT_MAX))):
            return False
        try:
            if not self._queue and (self._spool is None or not self._spool.pending()):
                return None
            info = self._sender.server_info(deadline=deadline)
            if info is None:
                self._failed(self._policy.delay(self._failures))
                return False
            taken = self._take(info.size_limit, info.size_limit_bytes)
            if taken is None:
                return None
            batch, claim = taken
            try:
                outcome = self._sender.send(batch, info, deadline=deadline, attempt=self._failures)
            except Exception:
                logger.exception("LangSmith sender failed on a batch of %d run(s); keeping it", len(batch))
                outcome = Outcome(retry=list(batch), wait=self._policy.max_backoff)
            self._settle(batch, claim, outcome)
            return not outcome.failed
        finally:
            self._send_lock.release()

    def _take(self, max_runs: int, max_bytes: int) -> tuple[list[EncodedRun], Path | None] | None:
        with self._lock:
            if self._queue:
                batch: list[EncodedRun] = []
                # LangSmith refuses a request that names one operation of a run twice (a span
                # exported twice): the second waits for the next batch.
                named: set[tuple[str, str]] = set()
                size = 0
                while self._queue and len(batch) < max_runs:
                    run = self._queue[0]
                    name = (run.operation, run.run_id)
                    if batch and (size + run.multipart_size > max_bytes or name in named):
                        break
                    batch.append(self._queue.popleft())
                    named.add(name)
                    size += run.multipart_size
                    self._bytes -= queued_size(run)
                return batch, None
        if self._spool is not None:
            taken = self._spool.take()
            if taken is not None:
                claim, runs = taken
                return runs, claim
        return None

    def _settle(self, batch: list[EncodedRun], claim: Path | None, outcome: Outcome) -> None:
        if outcome.retry:
            if claim is not None and len(outcome.retry) == len(batch):
                assert self._spool is not None
                self._spool.give_back(claim)  # the file as it was: nothing of it went through
                claim = None
            elif not self._write_spool(outcome.retry):
                self._enqueue(compact(outcome.retry), front=True)  # the oldest, sent first again
            self._failed(outcome.wait)
        elif not outcome.kept:
            self._recovered()
        if outcome.kept:
            self._keep_aside(outcome.kept, outcome.reason)
            self._failed(self._policy.delay(self._failures))  # a wrong key is no reason to spin
        if claim is not None:
            assert self._spool is not None
            self._spool.done(claim)

    def _keep_aside(self, runs: list[EncodedRun], reason: str) -> None:
        """Runs these settings cannot deliver: in the spool, for a corrected configuration, or lost."""
        if self._write_spool(runs):
            self._kept_aside.report(
                len(runs), "Kept %d run(s) in the spool until the configuration is corrected (%s)", len(runs), reason
            )
            return
        self._counts.drop(reason, len(runs))

    def _failed(self, wait: float) -> None:
        with self._lock:
            if not self._down:
                logger.warning(
                    "LangSmith did not take the last batch; keeping undelivered runs (%s), trying again with backoff",
                    "in the spool" if self._spool is not None else "in memory",
                )
            self._down = True
            self._failures += 1
            self._retry_at = self._clock() + wait
            waiting: list[EncodedRun] = []
            if self._spool is not None and self._queue:
                # They will wait too: on disk, where a killed process does not lose them.
                waiting = list(self._queue)
                self._queue.clear()
                self._bytes = 0
        for start in range(0, len(waiting), _SPILL_RUNS):
            chunk = waiting[start : start + _SPILL_RUNS]
            if not self._write_spool(chunk):
                self._enqueue(compact(waiting[start:]), front=True)
                break

    def _recovered(self) -> None:
        with self._lock:
            if self._down:
                logger.info("LangSmith is reachable again; sending the runs kept meanwhile")
            self._down, self._failures, self._retry_at = False, 0, 0.0

    # -- flush and close ----------------------------------------------------------------------------

    def flush(self, deadline: float) -> bool:
        """Send what is kept now, without waiting out a backoff; True when nothing is left."""
        while self._clock() < deadline:
            result = self._attempt(deadline)
            if result is None:
                break
            if result is False:
                return False
        return not self._queue and (self._spool is None or self._spool.pending() == 0)

    def close(self, deadline: float, *, grace: float) -> None:
        """Stop the drainer, try the endpoint once more, then spool the rest or count it lost.

        An endpoint that does not answer costs at most ``grace`` seconds: a request in flight is cut
        short then, and no further one is tried."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        drainer = self._drainer
        if drainer is not None:
            drainer.join(max(0.0, min(deadline, self._clock() + grace) - self._clock()))
            if drainer.is_alive():
                self._sender.cut_short()
                drainer.join(max(0.0, min(deadline - self._clock(), 1.0)))
        while self._queue and self._clock() < deadline:
            if self._attempt(min(deadline, self._clock() + grace)) is not True:
                break
        self._park_rest()

    def _park_rest(self) -> None:
        with self._lock:
            rest = list(self._queue)
            self._queue.clear()
            self._bytes = 0
        if rest and not self._write_spool(rest):
            self._counts.drop("shutdown", len(rest))
