"""The ``SpanProcessor`` front: spans into the pipeline as they start and as they end."""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from typing_extensions import Unpack

from ._pipeline import Pipeline
from ._settings import Options, Settings
from ._stats import Stats


class LangSmithSpanProcessor(SpanProcessor):
    """Sends spans to LangSmith as live runs. Add it to a ``TracerProvider`` (or call
    :func:`otel_langsmith.configure`)::

        provider.add_span_processor(LangSmithSpanProcessor(project="my-app"))

    Each span is placed in its LangSmith trace from its parent and start time, so its run is sent
    within ``flush_interval`` of its end, whatever its ancestors are doing; a span open longer than
    ``live_after`` is posted as in progress and completed by a patch when it ends. The application's
    thread only notes and queues spans; placing, converting and sending happen on background threads.
    It takes the same options as :class:`~otel_langsmith.LangSmithSpanExporter`.
    """

    def __init__(self, **options: Unpack[Options]) -> None:
        self._pipeline = Pipeline(Settings.resolve(**options), name="LangSmithSpanProcessor")

    @property
    def settings(self) -> Settings:
        return self._pipeline.settings

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if span.get_span_context().trace_flags.sampled:
            self._pipeline.started(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        if context is not None and context.trace_flags.sampled:
            self._pipeline.ended(span)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Send what ended, within the timeout; True when LangSmith has all of it."""
        return self._pipeline.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Send what ended and post what is still open (as in progress), within the timeout."""
        self._pipeline.shutdown(timeout_millis)

    def stats(self) -> Stats:
        """Counts since construction: spans in, runs out, and where the others went."""
        return self._pipeline.stats()
