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
from collections import OrderedDict
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor

from .convert.llm import GenAIEvent

logger = logging.getLogger(__name__)

_MAX_SPANS = 10_000
_MAX_PER_SPAN = 256


class _Store:
    """Records by span id, oldest spans forgotten first. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: OrderedDict[int, list[GenAIEvent]] = OrderedDict()
        self.dropped = 0

    def add(self, span_id: int, record: GenAIEvent) -> None:
        with self._lock:
            records = self._records.get(span_id)
            if records is None:
                records = self._records[span_id] = []
                if len(self._records) > _MAX_SPANS:
                    _, lost = self._records.popitem(last=False)
                    self.dropped += len(lost)
            if len(records) < _MAX_PER_SPAN:
                records.append(record)
            else:
                self.dropped += 1

    def take(self, span_id: int, keep: bool = False) -> list[GenAIEvent]:
        if not self._records:  # no GenAI logging in most processes: no lock for every span
            return []
        with self._lock:
            if keep:
                return list(self._records.get(span_id, ()))
            return self._records.pop(span_id, [])


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
