"""The ``SpanExporter`` front: ended spans into the pipeline, which places them once their parents arrive."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from typing_extensions import Unpack

from ._pipeline import Pipeline
from ._settings import Options, Settings
from ._stats import Stats


class LangSmithSpanExporter(SpanExporter):
    """Exports OpenTelemetry spans to LangSmith as runs, through its multipart ingestion API.

    Every option is keyword-only and optional, read from the environment when not given (see
    the README's configuration table: ``LANGSMITH_API_KEY``, ``LANGSMITH_ENDPOINT``,
    ``LANGSMITH_PROJECT``, ``OTEL_EXPORTER_LANGSMITH_*``...). Constructing it does no I/O.

    Example::

        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from otel_langsmith import LangSmithSpanExporter

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(LangSmithSpanExporter(project="my-app")))
        trace.set_tracer_provider(provider)

    ``export()`` converts and queues the spans and returns without waiting for the network; a
    background thread sends them, and keeps what LangSmith does not take yet (in memory, or in
    ``spool_dir``). Children end before their parents: a child waits for its parent (at most
    ``parent_wait`` seconds, ``max_pending_spans`` spans, ``max_pending_bytes`` bytes), then goes
    with it. ``force_flush()`` waits until LangSmith has what was exported; the provider's own
    ``force_flush`` only hands spans to this exporter.
    """

    def __init__(self, **options: Unpack[Options]) -> None:
        self._pipeline = Pipeline(Settings.resolve(**options), name="LangSmithSpanExporter")

    @property
    def settings(self) -> Settings:
        return self._pipeline.settings

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Queue the spans for LangSmith; never raises, never waits for the network."""
        return SpanExportResult.SUCCESS if self._pipeline.export(spans) else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Send what was exported, within the timeout; True when LangSmith has all of it.

        Spans still waiting for a parent that may yet end stay waiting: sending them now would
        split their trace."""
        return self._pipeline.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Send what is held, within the timeout; spans still waiting for a parent go as roots.
        What cannot be sent is spooled (with ``spool_dir``) or counted lost, in one log line."""
        self._pipeline.shutdown(timeout_millis)

    def stats(self) -> Stats:
        """Counts since construction: spans in, runs out, and where the others went."""
        return self._pipeline.stats()
