"""Runs -> requests, and what to do when a request does not go through.

The policy (reference ``langsmith-ingest.md`` sections 3 and 8, where the LangSmith SDK drops data):

- 408, 425, 429, 500, 502, 503, 504, connection errors and timeouts are retried with exponential
  backoff and jitter, ``Retry-After`` honoured, inside one deadline per export; the body is built
  and compressed once. A sleep ends at once when the exporter shuts down.
- What is still undelivered at the deadline is kept: in a bounded in-memory queue, or in the spool
  directory, and a background thread sends it when LangSmith answers again. Meanwhile exports do
  not wait on a dead endpoint: they queue directly.
- 413 splits the batch (a single run is shrunk); 400 and 422 bisect it, so that the runs the
  server refuses are isolated, logged by id and trace id with the server's message, and the rest
  delivered. 409 means the run is already stored. 401 and 403 are not retried: one clear error.
  404 on ``/runs/multipart`` switches to ``/runs/batch`` (older self-hosted servers).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import requests

from . import wire
from .config import Settings
from .shrink import shrink_run
from .spool import Batch, RetryQueue, Spool
from .transport import Response, ServerInfo, Transport, suppressed_instrumentation

logger = logging.getLogger(__name__)

MULTIPART_PATH = "/runs/multipart"
DROP_LOG_INTERVAL = 30
BATCH_PATH = "/runs/batch"
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
_COUNTS = (
    "runs_exported",
    "runs_retried",
    "runs_spooled",
    "runs_truncated",
    "runs_refused",
    "runs_dropped",
    "requests",
)
_SHRINK_ROUNDS = 6


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``initial * multiplier**attempt``, capped, times 1 +/- jitter."""

    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def backoff(self, attempt: int) -> float:
        base = min(self.max_backoff, self.initial_backoff * self.multiplier**attempt)
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


def _describe(response: Response) -> str:
    status = f"HTTP {response.status}" if response.status is not None else "no response"
    return f"{status}: {response.message or '(empty body)'}"


def _retryable(response: Response) -> bool:
    return response.status is None or response.status in RETRYABLE


class Delivery:
    """Sends runs and keeps what cannot be sent yet. Thread-safe.

    ``counts`` holds: ``runs_exported``, ``runs_retried`` (runs in requests sent again),
    ``runs_spooled``, ``runs_truncated``, ``runs_refused``, ``runs_dropped``, ``requests``.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        compression: str,
        export_timeout: float,
        max_queue_bytes: int,
        spool: Spool | None,
        policy: RetryPolicy,
        stop: threading.Event,
    ) -> None:
        self._transport = transport
        self._compression = compression
        self._export_timeout = export_timeout
        self._spool = spool
        self._policy = policy
        self._stop = stop
        self._boundary = wire.new_boundary()
        self._multipart = True
        self._warned: set[str] = set()
        self._init_state(max_queue_bytes)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        stop: threading.Event,
        retry_policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> Delivery:
        """The transport, spool and delivery that the settings describe. No I/O."""
        transport = Transport(
            endpoint=settings.endpoint,
            api_key=settings.api_key,
            workspace_id=settings.workspace_id,
            timeout=settings.timeout,
            session=session,
        )
        spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes) if settings.spool_dir else None
        return cls(
            transport,
            compression=settings.compression,
            export_timeout=settings.export_timeout,
            max_queue_bytes=settings.max_queue_bytes,
            spool=spool,
            policy=retry_policy or RetryPolicy(),
            stop=stop,
        )

    @property
    def transport(self) -> Transport:
        return self._transport

    @property
    def spool(self) -> Spool | None:
        return self._spool

    def _init_state(self, max_queue_bytes: int) -> None:
        self._queue = RetryQueue(max_queue_bytes)
        self._lock = threading.Lock()
        self._wake = threading.Condition()
        self._retry_lock = threading.Lock()
        self._drainer: threading.Thread | None = None
        self._endpoint_down = False
        self.counts: Counter[str] = Counter()
        # Drops are logged once, then summed up at most every DROP_LOG_INTERVAL seconds: an outage
        # under load drops a batch every few milliseconds, and a line each would bury the log.
        self._drops_unlogged = 0
        self._drop_logged_at: float | None = None

    def reset_after_fork(self, max_queue_bytes: int) -> None:
        """The parent process keeps what it queued; the child starts empty, without threads."""
        self._init_state(max_queue_bytes)

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def stats(self) -> dict[str, int]:
        """Runs exported, retried, spooled, truncated, refused, dropped; requests; runs kept now."""
        with self._lock:
            counts = {name: self.counts[name] for name in _COUNTS}
        if self._spool is not None:
            counts["runs_dropped"] += self._spool.dropped_runs
        counts["queued_runs"] = self._queue.runs
        return counts

    # -- sending ----------------------------------------------------------------------------------

    def send(self, runs: Sequence[dict[str, Any]], *, deadline: float | None = None, operation: str = "post") -> bool:
        """Send runs (as ``post`` or ``patch`` operations); True when all were accepted now.

        Never raises for the server's answers."""
        self._start_drainer_for_spool()
        if not runs:
            return True
        deadline = time.monotonic() + self._export_timeout if deadline is None else deadline
        info = self._transport.info()
        encoded = [self._encode(run, info.size_limit_bytes, operation) for run in runs]
        delivered = True
        for batch in wire.batches(encoded, max_operations=info.size_limit, max_bytes=info.size_limit_bytes):
            if self._endpoint_down:
                # LangSmith did not answer a moment ago: the background thread probes it, with
                # backoff; exports queue directly instead of each waiting out a deadline.
                self._keep(batch)
                delivered = False
            else:
                delivered = self._deliver(batch, deadline, info) and delivered
        return delivered

    def _encode(self, run: dict[str, Any], max_bytes: int, operation: str) -> wire.EncodedRun:
        encoded = wire.encode_run(run, operation=operation)
        if encoded.multipart_size <= max_bytes:
            return encoded
        return self._shrink(run, max_bytes, operation)

    def _shrink(self, run: dict[str, Any], max_bytes: int, operation: str) -> wire.EncodedRun:
        shrunk, originals = shrink_run(run, max_bytes)
        self._count("runs_truncated")
        logger.warning(
            "Run %s (trace %s) is too large for one request (limit %d bytes): truncated %s",
            run.get("id"),
            run.get("trace_id"),
            max_bytes,
            ", ".join(f"{field} from {size} bytes" for field, size in originals.items()) or "nothing",
        )
        return wire.encode_run(shrunk, operation=operation)

    def _deliver(self, batch: Batch, deadline: float, info: ServerInfo) -> bool:
        return self._settle(batch, self._post(batch, deadline, info), deadline, info)

    def _settle(self, batch: Batch, response: Response, deadline: float, info: ServerInfo) -> bool:
        """Act on the server's final answer to a batch; True when all its runs are stored."""
        status = response.status
        if response.ok or status == 409:  # 409: already stored, as the SDK reads it
            self._count("runs_exported", len(batch))
            if self._endpoint_down or len(self._queue):
                self._endpoint_down = False
                self._notify()
            return True
        if _retryable(response):
            if not self._endpoint_down:
                logger.warning(
                    "LangSmith did not accept %d run(s) before the export deadline (%s); keeping them to send again",
                    len(batch),
                    _describe(response),
                )
            self._endpoint_down = True
            self._keep(batch)
            return False
        if status == 404 and self._multipart:
            logger.warning("%s%s answered 404: using %s instead", self._transport.endpoint, MULTIPART_PATH, BATCH_PATH)
            self._multipart = False
            return self._deliver(batch, deadline, info)
        if status == 413:
            if len(batch) > 1:
                return self._deliver_halves(batch, deadline, info)
            return self._deliver_too_large(batch[0], deadline, info, response)
        if status in (400, 422):
            if len(batch) > 1:
                return self._deliver_halves(batch, deadline, info)
            self._refuse(batch, response)
            return False
        if status in (401, 403):
            self._auth_failed(batch, response)
            return False
        self._refuse(batch, response)
        return False

    def _deliver_halves(self, batch: Batch, deadline: float, info: ServerInfo) -> bool:
        middle = len(batch) // 2
        first = self._deliver(batch[:middle], deadline, info)
        second = self._deliver(batch[middle:], deadline, info)
        return first and second

    def _deliver_too_large(self, run: wire.EncodedRun, deadline: float, info: ServerInfo, response: Response) -> bool:
        # The server's limit is lower than it advertised: halve the run until it passes.
        decoded = _decode(run)
        limit = run.multipart_size
        for _ in range(_SHRINK_ROUNDS):
            limit //= 2
            smaller = self._shrink(decoded, limit, run.operation)
            response = self._post([smaller], deadline, info)
            if response.status != 413:
                return self._settle([smaller], response, deadline, info)
        self._refuse([run], response)
        return False

    def _refuse(self, batch: Batch, response: Response) -> None:
        self._count("runs_refused", len(batch))
        for run in batch:
            logger.error("LangSmith refused run %s (trace %s): %s", run.run_id, run.trace_id, _describe(response))

    def _auth_failed(self, batch: Batch, response: Response) -> None:
        key = f"auth{response.status}"
        if key not in self._warned:
            self._warned.add(key)
            logger.error(
                "LangSmith refused the credentials (%s) at %s. Check LANGSMITH_API_KEY (%s), that "
                "LANGSMITH_ENDPOINT is the region of the key (api.smith.langchain.com, eu.api.smith.langchain.com, "
                "...), and LANGSMITH_WORKSPACE_ID for an organization-scoped key. Not retried.",
                _describe(response),
                self._transport.endpoint,
                self._transport.masked_key,
            )
        if self._spool is not None:
            # A corrected key in the next process can still deliver them.
            self._write_spool(batch)
        else:
            self._count("runs_dropped", len(batch))

    def _post(self, batch: Batch, deadline: float, info: ServerInfo) -> Response:
        """One batch, retried within the deadline. The body is built and compressed once."""
        path, body, headers = self._request(batch, info)
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Response(None, "the export deadline passed")
            response = self._transport.post(path, body, headers, timeout=remaining)
            self._count("requests")
            if response.ok or not _retryable(response):
                return response
            delay = response.retry_after if response.retry_after is not None else self._policy.backoff(attempt)
            if self._stop.is_set() or time.monotonic() + delay >= deadline:
                return response
            logger.info("LangSmith answered %s; retrying %d run(s) in %.2fs", _describe(response), len(batch), delay)
            self._count("runs_retried", len(batch))
            if self._stop.wait(delay):
                return response
            attempt += 1

    def _request(self, batch: Batch, info: ServerInfo) -> tuple[str, bytes, dict[str, str]]:
        if self._multipart:
            path, body = MULTIPART_PATH, wire.multipart_body(batch, self._boundary)
            headers = {"Content-Type": wire.content_type(self._boundary)}
        else:
            path, body = BATCH_PATH, wire.batch_body(batch)
            headers = {"Content-Type": "application/json"}
        encoding = self._encoding(info)
        if encoding == "none":
            return path, body, headers
        compressed = wire.compress(body, encoding)
        headers["Content-Encoding"] = encoding
        headers["X-Pre-Compressed-Size"] = str(sum(run.size for run in batch))
        headers["X-Post-Compressed-Size"] = str(len(compressed))
        return path, compressed, headers

    def _encoding(self, info: ServerInfo) -> str:
        choice = self._compression
        if choice == "auto":
            return "zstd" if info.zstd_compression_enabled and wire.ZSTD_AVAILABLE else "none"
        if choice == "zstd" and not wire.ZSTD_AVAILABLE:
            return "gzip"
        return choice

    # -- keeping what could not be sent ---------------------------------------------------------------

    def _keep(self, batch: Batch) -> None:
        if self._spool is not None and self._write_spool(batch):
            self._notify()
            return
        for dropped in self._queue.put(batch):
            self._count("runs_dropped", len(dropped))
            self._log_drop(len(dropped))
        self._notify()

    def _log_drop(self, runs: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._drops_unlogged += runs
            if self._drop_logged_at is not None and now - self._drop_logged_at < DROP_LOG_INTERVAL:
                return
            self._drop_logged_at, dropped, self._drops_unlogged = now, self._drops_unlogged, 0
            total = self.counts["runs_dropped"]
        logger.error(
            "LangSmith retry queue is full (%d bytes): dropped the oldest %d run(s) (%d since start; "
            "next report in %ds at the earliest)",
            self._queue.bytes,
            dropped,
            total,
            DROP_LOG_INTERVAL,
        )

    def _write_spool(self, batch: Batch) -> bool:
        assert self._spool is not None
        try:
            self._spool.write(batch)
        except OSError as exc:
            logger.error(
                "Could not write to the spool %s (%s); keeping the batch in memory", self._spool.directory, exc
            )
            return False
        self._count("runs_spooled", len(batch))
        return True

    def _notify(self) -> None:
        with self._wake:
            self._ensure_drainer()
            self._wake.notify_all()

    def _start_drainer_for_spool(self) -> None:
        if self._spool is not None and self._drainer is None and not self._stop.is_set():
            with self._wake:
                self._ensure_drainer()

    def _ensure_drainer(self) -> None:
        # The condition's lock is held.
        if self._stop.is_set() or (self._drainer is not None and self._drainer.is_alive()):
            return
        self._drainer = threading.Thread(target=self._drain, name="otel-langsmith-retry", daemon=True)
        self._drainer.start()

    def _next_kept(self) -> tuple[Batch, Callable[[], None], Callable[[], None]] | None:
        """The oldest kept batch, with what to do once it is settled and what to do to retry it."""
        batch = self._queue.peek()
        if batch is not None:
            queue = self._queue
            return batch, lambda: queue.remove(batch), lambda: None
        if self._spool is not None:
            taken = self._spool.take()
            if taken is not None:
                path, runs = taken
                spool = self._spool
                return runs, lambda: spool.done(path), lambda: spool.give_back(path)
        return None

    def _retry_kept(self, deadline: float) -> bool | None:
        """Try the oldest kept batch again. None: nothing is kept; False: not delivered (yet)."""
        # One retry at a time per process (the background thread or a flush): a flush that finds
        # nothing left then knows that nothing is in flight either.
        if not self._retry_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return False
        try:
            return self._retry_oldest(deadline)
        finally:
            self._retry_lock.release()

    def _retry_oldest(self, deadline: float) -> bool | None:
        kept = self._next_kept()
        if kept is None:
            return None
        batch, settled, retry = kept
        try:
            info = self._transport.info()
            response = self._post(batch, deadline, info)
            if not _retryable(response):
                self._settle(batch, response, deadline, info)
                settled()
                return True
        except Exception:
            logger.exception("LangSmith retry of %d run(s) failed unexpectedly", len(batch))
        retry()
        self._endpoint_down = True
        return False

    def _drain(self) -> None:
        attempt = 0
        # A fresh thread has no OTel context: without this, instrumented HTTP clients would trace
        # the retries (and feed their spans back in).
        with suppressed_instrumentation():
            while not self._stop.is_set():
                outcome = self._retry_kept(time.monotonic() + self._export_timeout)
                if outcome is None:
                    with self._wake:
                        if not len(self._queue) and not self._stop.is_set():
                            # The spool is shared with other processes: look at it again now and then.
                            self._wake.wait(self._policy.max_backoff if self._spool is not None else None)
                elif not outcome:
                    attempt += 1
                    # Not on the condition: new batches kept meanwhile must not cut the backoff short.
                    self._stop.wait(self._policy.backoff(attempt))
                elif attempt:
                    logger.info("LangSmith is reachable again; sending the kept runs")
                    self._endpoint_down = False
                    attempt = 0

    # -- lifecycle ----------------------------------------------------------------------------------

    def flush(self, deadline: float) -> bool:
        """Send what is kept, in memory and in the spool, until the deadline.

        True when nothing is left to send."""
        self._endpoint_down = False
        while time.monotonic() < deadline and self._retry_kept(deadline):
            pass
        return not len(self._queue) and (self._spool is None or self._spool.pending() == 0)

    def close(self, deadline: float) -> None:
        """At shutdown: one more try for the memory queue, then the spool or, without one, the loss."""
        with self._wake:
            self._wake.notify_all()
        drainer = self._drainer
        if drainer is not None:
            drainer.join(max(0.0, deadline - time.monotonic()))
        info = self._transport.info()
        for batch in self._queue.take_all():
            if time.monotonic() < deadline and not self._endpoint_down:
                self._deliver(batch, deadline, info)
            else:
                self._keep_at_exit(batch)
        for batch in self._queue.take_all():  # put back by a failed try just above
            self._keep_at_exit(batch)

    def _keep_at_exit(self, batch: Batch) -> None:
        if self._spool is not None and self._write_spool(batch):
            return
        self._count("runs_dropped", len(batch))


def _decode(run: wire.EncodedRun) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(run.parts[0][1])
    for field, payload in run.parts[1:]:
        decoded[field] = orjson.loads(payload)
    return decoded
