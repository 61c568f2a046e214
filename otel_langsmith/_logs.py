"""GenAI content that instrumentations emit as log records instead of span attributes.

The official ``opentelemetry-instrumentation-openai-v2`` records messages as log records
(``gen_ai.system.message``, ``gen_ai.user.message``, ``gen_ai.choice``...;
``gen_ai.client.inference.operation.details`` in the newer mode), tied to the span only by its
context. Add :class:`LangSmithLogProcessor` to the ``LoggerProvider`` the instrumentation uses and
those records reach the span's run::

    from opentelemetry.sdk._logs import LoggerProvider
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(LangSmithLogProcessor())

Records are kept per span, bounded, until the span's run is built.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor

from ._convert.dialect import GenAIEvent
from ._wire import dumps

logger = logging.getLogger(__name__)

# Records wait for their span's run; a span that is never exported must not keep them for good.
_MAX_SPANS = 10_000
_MAX_PER_SPAN = 256
_MAX_BYTES = 32 << 20
_MAX_AGE = 600.0


@dataclass(slots=True)
class _Kept:
    records: list[GenAIEvent]
    size: int
    since: float


class _Store:
    """Records by span id, bounded in spans, bytes and age; the oldest forgotten first. Thread-safe."""

    def __init__(
        self,
        *,
        max_spans: int = _MAX_SPANS,
        max_bytes: int = _MAX_BYTES,
        max_age: float = _MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_spans, self._max_bytes, self._max_age = max_spans, max_bytes, max_age
        self._clock = clock
        self.reset_after_fork()
        #: Records forgotten by a bound.
        self.dropped = 0

    def reset_after_fork(self) -> None:
        """The child starts empty: its parent sends the runs these belong to."""
        self._lock = threading.Lock()
        self._records: OrderedDict[int, _Kept] = OrderedDict()
        self._bytes = 0

    def add(self, span_id: int, record: GenAIEvent) -> None:
        size = len(dumps(record[1]))
        now = self._clock()
        with self._lock:
            kept = self._records.get(span_id)
            if kept is None:
                kept = self._records[span_id] = _Kept([], 0, now)
            if len(kept.records) >= _MAX_PER_SPAN:
                self.dropped += 1
                return
            kept.records.append(record)
            kept.size += size
            self._bytes += size
            while self._records and (
                len(self._records) > self._max_spans
                or self._bytes > self._max_bytes
                or now - next(iter(self._records.values())).since > self._max_age
            ):
                _, lost = self._records.popitem(last=False)
                self._bytes -= lost.size
                self.dropped += len(lost.records)

    def take(self, span_id: int, keep: bool = False) -> list[GenAIEvent]:
        if not self._records:  # no GenAI logging in most processes: no lock for every span
            return []
        with self._lock:
            if keep:
                found = self._records.get(span_id)
                return list(found.records) if found is not None else []
            taken = self._records.pop(span_id, None)
            if taken is None:
                return []
            self._bytes -= taken.size
            return taken.records

    @property
    def bytes(self) -> int:
        return self._bytes


#: Shared by every exporter and processor of the process: a record's span may be exported by any.
STORE = _Store()


class LangSmithLogProcessor(LogRecordProcessor):
    """Keeps GenAI log records for the run of the span they were emitted in."""

    def on_emit(self, log_data: Any) -> None:
        try:
            record = getattr(log_data, "log_record", log_data)
            name = getattr(record, "event_name", None) or (record.attributes or {}).get("event.name")
            span_id = record.span_id
            if not name or not str(name).startswith("gen_ai.") or not span_id:
                return
            body = record.body if isinstance(record.body, dict) else {"content": record.body}
            attributes = dict(record.attributes or {})
            STORE.add(span_id, (str(name), {**attributes, **body}, record.timestamp or record.observed_timestamp or 0))
        except Exception:
            logger.exception("LangSmithLogProcessor could not keep a log record")

    # The SDK calls this name on older versions.
    emit = on_emit

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
