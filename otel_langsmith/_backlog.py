"""Encoded runs on their way to LangSmith: the memory queue, the spool, and the one thread that sends.

``put`` never waits for the network: the exporter's ``export`` and the processor's flush return at
once whatever the endpoint does, so the OpenTelemetry SDK's own queue never backs up behind a
retry. The drainer thread takes a batch (from memory, then from the spool), hands it to the
:class:`~otel_langsmith._sender.Sender`, and settles it: delivered, refused, or kept to be sent
again after the wait :class:`~otel_langsmith.RetryPolicy` gives.

A batch is in exactly one place at a time: in the queue, in flight (taken by whoever holds the
send lock: the drainer, a flush or shutdown), or in the spool. With a spool, once a batch has
failed the whole memory queue moves to disk, and new batches go straight there while LangSmith
is known to be down, so a process killed during an outage loses only what it had not tried yet.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ._queue import RunQueue
from ._retry import RetryPolicy
from ._sender import Outcome, Sender
from ._spool import Spool, SpoolRefused
from ._stats import Counters
from ._throttle import Throttled
from ._transport import suppressed_instrumentation
from ._wire import EncodedRun

logger = logging.getLogger(__name__)

# Runs a spool file holds when the memory queue moves to disk: a batch's worth, by the server's
# default.
_SPILL_RUNS = 100


class Store:
    """Where undelivered runs wait: the memory queue (bounded in bytes), or the spool. Thread-safe.

    What a bound drops is counted by reason and logged in aggregate."""

    def __init__(self, *, max_bytes: int, spool: Spool | None, counters: Counters, clock: Callable[[], float]) -> None:
        self._max_bytes = max_bytes
        self.spool = spool
        self._counts = counters
        self.queue = RunQueue(max_bytes)
        self._drops = Throttled(logger, logging.ERROR, clock=clock)
        self._spool_errors = Throttled(logger, logging.ERROR, clock=clock)
        self._kept_aside = Throttled(logger, logging.WARNING, clock=clock)
        # Once LangSmith refused these settings (a wrong key), the spool is only written: what it
        # holds waits for a process whose settings are corrected, not sent again with the same.
        self._reading_spool = True

    def waiting(self) -> bool:
        """Anything to send, in memory or in the spool (another process's files too)."""
        return bool(len(self.queue)) or (self.spool is not None and self._reading_spool and self._spool_pending())

    def _spool_pending(self) -> bool:
        assert self.spool is not None
        try:
            self.spool.check_trusted()
        except SpoolRefused as exc:
            self._refuse_spool(exc)
            return False
        return self.spool.pending() > 0

    def _refuse_spool(self, problem: SpoolRefused) -> None:
        logger.error("%s; keeping undelivered runs in memory only", problem)
        self.spool = None

    def add(self, runs: Sequence[EncodedRun], *, on_disk: bool = False, front: bool = False) -> None:
        """Keep runs: on disk when asked and there is a spool, else in memory (at the front when
        they are the oldest)."""
        if on_disk and self.write_spool(runs):
            return
        dropped = self.queue.add(runs, front=front)
        if dropped:
            self._counts.drop("queue_full", dropped)
            self._drops.report(
                dropped,
                "LangSmith queue is full (max_queue_bytes=%d): dropped the oldest %d run(s)",
                self._max_bytes,
                dropped,
            )

    def write_spool(self, runs: Sequence[EncodedRun]) -> bool:
        spool = self.spool
        if spool is None:
            return False
        try:
            dropped = spool.write(runs)
        except SpoolRefused as exc:
            self._refuse_spool(exc)
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
        return True

    def take(self, max_runs: int, max_bytes: int) -> tuple[list[EncodedRun], Path | None] | None:
        """The oldest batch, from memory, then from the spool (with the file it was claimed from)."""
        batch = self.queue.take(max_runs, max_bytes)
        if batch:
            return batch, None
        if self.spool is not None and self._reading_spool:
            try:
                taken = self.spool.take()
            except SpoolRefused as exc:
                self._refuse_spool(exc)
                return None
            if taken is not None:
                claim, runs = taken
                return runs, claim
        return None

    def spill(self) -> None:
        """The memory queue to the spool: those runs will wait, and on disk a killed process does
        not lose them."""
        if self.spool is None or not len(self.queue):
            return
        waiting = self.queue.take_all()
        for start in range(0, len(waiting), _SPILL_RUNS):
            if not self.write_spool(waiting[start : start + _SPILL_RUNS]):
                self.add(waiting[start:], front=True)
                return

    def keep_aside(self, runs: list[EncodedRun], reason: str) -> None:
        """Runs these settings cannot deliver: in the spool, for a corrected configuration, or lost."""
        if self.write_spool(runs):
            self._reading_spool = False
            self._kept_aside.report(
                len(runs), "Kept %d run(s) in the spool until the configuration is corrected (%s)", len(runs), reason
            )
            return
        self._counts.drop(reason, len(runs))

    def park(self) -> None:
        """At shutdown: what memory holds to the spool, or counted lost."""
        rest = self.queue.take_all()
        if rest and not self.write_spool(rest):
            self._counts.drop("shutdown", len(rest))


class Backlog:
    """Thread-safe. ``clock`` (``time.monotonic`` but in tests) schedules the attempts; requests
    and flushes run on real time."""

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
        self._store = Store(max_bytes=self._max_bytes, spool=self._spool, counters=self._counts, clock=self._clock)
        # Guards the schedule below and wakes the drainer.
        self._wake = threading.Condition(threading.Lock())
        # Held while a batch is in flight: one sender at a time, so a flush that finds nothing
        # left knows that nothing is in flight either.
        self._send_lock = threading.Lock()
        self._drainer: threading.Thread | None = None
        self._closing = False
        # An attempt failed after shutdown began: the endpoint had its chance, no more are made.
        self._gave_up = False
        #: The last attempt failed: new runs go to the spool, and the drainer waits until ``_retry_at``.
        self._down = False
        self._failures = 0
        self._retry_at = 0.0
        # Attempts that failed, ever: a flush waits for the queue to empty or for one more.
        self._failed_attempts = 0

    def reset_after_fork(self) -> None:
        """The parent keeps what it queued; the child starts empty, without threads."""
        if self._spool is not None:
            self._spool.reset_after_fork()
        self._fresh_state()

    @property
    def queued_runs(self) -> int:
        return len(self._store.queue)

    @property
    def queued_bytes(self) -> int:
        return self._store.queue.bytes

    # -- putting runs in ----------------------------------------------------------------------------

    def put(self, runs: Sequence[EncodedRun]) -> None:
        """Queue runs for sending; returns at once. While LangSmith is known to be down they
        will wait, so they go to the spool when there is one."""
        if runs:
            self._store.add(runs, on_disk=self._down)
            self.start()

    # -- the drainer --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the drainer if it is not running, and wake it."""
        with self._wake:
            self._start_drainer()
            self._wake.notify_all()

    def _start_drainer(self) -> None:
        # The condition's lock is held.
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
        with self._wake:
            while not self._closing:
                wait = self._retry_at - self._clock()
                if wait <= 0:
                    if self._store.waiting():
                        return True
                    # The spool is shared with other processes: look at it again now and then.
                    wait = self._policy.max_backoff if self._store.spool is not None else math.inf
                self._wake.wait(None if wait == math.inf else min(wait, threading.TIMEOUT_MAX))
            return False

    def _attempt(self, deadline: float) -> bool | None:
        """Send the oldest batch by ``deadline`` (``time.monotonic()``). True: settled; False: not
        delivered (yet); None: nothing to send."""
        if not self._send_lock.acquire(timeout=max(0.0, min(deadline - time.monotonic(), threading.TIMEOUT_MAX))):
            return False
        # A caller's own deadline (a flush) cut short is no sign the endpoint failed: shutdown
        # still tries it, where the drainer's failure while closing ends the trying.
        bounded = deadline != math.inf
        try:
            if not self._store.waiting():
                return None
            info = self._sender.server_info(deadline=deadline)
            if info is None:
                self._failed(self._policy.delay(self._failures), bounded=bounded)
                return False
            taken = self._store.take(info.size_limit, info.size_limit_bytes)
            if taken is None:
                return None
            batch, claim = taken
            try:
                outcome = self._sender.send(batch, info, deadline=deadline, attempt=self._failures)
            except Exception as exc:
                spool = self._store.spool
                if claim is not None and spool is not None:
                    # Given back, a file the sender cannot handle would come first again, for ever,
                    # and hold back every file behind it.
                    spool.set_aside(claim, exc)
                    return False
                logger.exception("LangSmith sender failed on a batch of %d run(s); keeping it", len(batch))
                outcome = Outcome(retry=list(batch), wait=self._policy.max_backoff)
            self._settle(batch, claim, outcome, bounded=bounded)
            return not outcome.failed
        finally:
            self._send_lock.release()
            with self._wake:
                self._wake.notify_all()  # a flush waits on what this attempt did

    def _settle(self, batch: list[EncodedRun], claim: Path | None, outcome: Outcome, *, bounded: bool) -> None:
        spool = self._store.spool
        if outcome.retry:
            if claim is not None and spool is not None and len(outcome.retry) == len(batch):
                spool.give_back(claim)  # the file as it was: nothing of it went through
                claim = None
            else:
                self._store.add(outcome.retry, on_disk=True, front=True)  # the oldest, sent first again
            self._failed(outcome.wait, bounded=bounded)
        elif not outcome.kept:
            self._recovered()
        if outcome.kept:
            self._store.keep_aside(outcome.kept, outcome.reason)
            # A wrong key is no reason to spin; the sender has said what was refused, and why.
            self._failed(self._policy.delay(self._failures), say=False, bounded=bounded)
        if claim is not None and spool is not None:
            spool.done(claim)

    def _failed(self, wait: float, *, say: bool = True, bounded: bool = False) -> None:
        with self._wake:
            # At shutdown the pipeline says in one line what was sent, spooled and lost.
            if not self._down and say and not self._closing:
                logger.warning(
                    "LangSmith did not take the last batch; keeping undelivered runs (%s), trying again with backoff",
                    "in the spool" if self._store.spool is not None else "in memory",
                )
            self._down = True
            self._gave_up = self._closing and not bounded
            self._failures += 1
            self._failed_attempts += 1
            self._retry_at = self._clock() + wait
        self._store.spill()

    def _recovered(self) -> None:
        with self._wake:
            if self._down:
                logger.info("LangSmith is reachable again; sending the runs kept meanwhile")
            self._down, self._failures, self._retry_at = False, 0, 0.0

    # -- flush and close ----------------------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Have the drainer send what is kept now, without waiting out a backoff; True when nothing
        is left, False when an attempt failed or the time is up.

        The requests are the drainer's, not bound by this deadline: one cut short when the caller's
        time is up could have been taken by the server all the same, and be sent again."""
        deadline = time.monotonic() + timeout
        with self._wake:
            failed = self._failed_attempts
            self._retry_at = 0.0
            self._start_drainer()
            self._wake.notify_all()
            while self._failed_attempts == failed:
                # The send lock is held while a batch is in flight, taken out of the store.
                if not self._send_lock.locked() and not self._store.waiting():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.wait(remaining)
            return False

    def close(self, timeout: float, *, grace: float) -> None:
        """Stop the drainer, try the endpoint once more, then spool the rest or count it lost.

        An endpoint that does not answer costs at most ``grace`` seconds: a request in flight is cut
        short then, and no further one is tried."""
        deadline = time.monotonic() + timeout
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        drainer = self._drainer
        if drainer is not None:
            drainer.join(max(0.0, min(deadline, time.monotonic() + grace) - time.monotonic()))
            if drainer.is_alive():
                self._sender.cut_short()
                drainer.join(max(0.0, min(deadline - time.monotonic(), 1.0)))
        # Whatever the last attempts before shutdown said, the endpoint is tried again: it may be back.
        while len(self._store.queue) and not self._gave_up and time.monotonic() < deadline:
            if self._attempt(min(deadline, time.monotonic() + grace)) is not True:
                break
        self._store.park()
