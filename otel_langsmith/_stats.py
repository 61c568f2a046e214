"""What happened to the spans a pipeline was given: counted as it happens, read as one :class:`Stats`."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Why runs were lost, each a key of :attr:`Stats.dropped`.
DROP_REASONS = (
    "queue_full",  # the memory queue's byte bound, oldest first
    "spool_full",  # the spool's byte bound, oldest first
    "shutdown",  # still undelivered when shutdown's time ran out, and no spool
    "auth",  # LangSmith refused the credentials (401/403), and no spool
    "not_langsmith",  # the endpoint does not answer as a LangSmith API, and no spool
    "configuration",  # the settings make sending impossible (unparsable endpoint, bad key), and no spool
    "encoding",  # a run that could not be encoded even with its content replaced
    "placement",  # a run that could not be placed even with its content replaced
    "outbox_full",  # the processor's ended spans, when conversion could not keep up
)


@dataclass(frozen=True)
class Stats:
    """Counts since the exporter or processor was made, and what it holds now.

    Every run a span became ends up exported, refused (LangSmith said no: 400/422, a run too large
    for any request), dropped (lost to a bound or a fault, by reason), or is still held (queued,
    spooled, waiting for its parent, open).

    Example::

        stats = exporter.stats()
        if stats.runs_dropped:
            print("lost:", dict(stats.dropped))
    """

    #: Ended spans handed over (to the exporter's ``export`` or the processor's ``on_end``).
    spans_received: int = 0
    #: Spans the span filter left out (their children placed under their nearest kept ancestor).
    spans_filtered: int = 0
    #: Runs LangSmith accepted (a patch that completes a live run counts too).
    runs_exported: int = 0
    #: Runs in requests that were sent again.
    runs_retried: int = 0
    #: Runs written to the spool (they may be sent later by this or another process).
    runs_spooled: int = 0
    #: Runs cut down to fit the server's size limit (marked in their metadata).
    runs_truncated: int = 0
    #: Runs LangSmith refused; each named in a log line.
    runs_refused: int = 0
    #: Runs lost, in all; :attr:`dropped` says why.
    runs_dropped: int = 0
    dropped: Mapping[str, int] = field(default_factory=dict)
    #: HTTP requests made to the ingestion endpoint.
    requests: int = 0
    #: Spans whose content could not be converted: sent with their name, place and times, the
    #: failure named in their metadata.
    conversion_errors: int = 0
    #: Runs in the memory queue now, and the bytes they hold.
    queued_runs: int = 0
    queued_bytes: int = 0
    #: Exporter: spans waiting for their parent now, and the bytes they hold.
    waiting: int = 0
    waiting_bytes: int = 0
    #: Exporter: runs sent as roots because their parent did not arrive, by reason.
    released_as_root: Mapping[str, int] = field(default_factory=dict)
    #: Processor: spans open now, ended spans not converted yet, spans forgotten after ``open_span_ttl``.
    open_spans: int = 0
    ended_unsent: int = 0
    evicted: int = 0


class Counters:
    """Thread-safe counts, by name and, for drops, by reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def drop(self, reason: str, runs: int) -> None:
        assert reason in DROP_REASONS, reason
        with self._lock:
            self._dropped[reason] += runs

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def dropped(self) -> dict[str, int]:
        """A snapshot: lost runs by reason."""
        with self._lock:
            return {reason: count for reason, count in self._dropped.items() if count}
