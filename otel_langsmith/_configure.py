"""One-call setup: ``configure()``.

It installs :class:`~otel_langsmith.LangSmithSpanProcessor` on the SDK tracer provider (creating
and registering one when there is none) and adds the ``langsmith`` propagator to the global one.
Calling it again (a notebook cell run twice) changes nothing: the first processor stays.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence

from opentelemetry import propagate, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from typing_extensions import Unpack

from ._processor import LangSmithSpanProcessor
from ._propagation import LangSmithPropagator
from ._settings import Options

logger = logging.getLogger(__name__)

# The processor configure() installed on each provider: a second call returns it.
_installed: weakref.WeakKeyDictionary[TracerProvider, LangSmithSpanProcessor] = weakref.WeakKeyDictionary()
_installing = threading.Lock()


def configure(
    *, tracer_provider: TracerProvider | None = None, propagate_headers: bool = True, **options: Unpack[Options]
) -> LangSmithSpanProcessor:
    """Send this process's spans to LangSmith as live runs; returns the processor it installed.

    Example::

        import otel_langsmith
        otel_langsmith.configure(project="my-app")   # LANGSMITH_API_KEY etc. from the environment

    Args:
        tracer_provider: The provider to install on; by default the global one, or a new SDK
            ``TracerProvider`` registered as global when the global one is not an SDK provider.
        propagate_headers: Add the ``langsmith`` propagator (``langsmith-trace`` and baggage) to
            the global propagator, so outgoing requests carry the run and incoming ones nest under it.
        options: Any option of :class:`~otel_langsmith.LangSmithSpanProcessor`.
    """
    provider = tracer_provider
    if provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
    with _installing:
        installed = _installed.get(provider)
        if installed is not None:
            logger.warning(
                "otel_langsmith.configure() was called before for this tracer provider: keeping the first "
                "processor (a second one would send every run twice)"
            )
            return installed
        processor = _installed[provider] = LangSmithSpanProcessor(**options)
        provider.add_span_processor(processor)
    if propagate_headers:
        _add_propagator()
    return processor


def _add_propagator() -> None:
    current = propagate.get_global_textmap()
    members = getattr(current, "_propagators", [current])
    if any(isinstance(member, LangSmithPropagator) for member in members):
        return
    propagate.set_global_textmap(CompositePropagator([*members, LangSmithPropagator()]))


class LiveProcessorEntry(SpanExporter):
    """What ``OTEL_TRACES_EXPORTER=langsmith_live`` names for the SDK's configurator, which wants an
    exporter class for every name. It exports nothing: the live processor itself is installed by
    the package's post-instrumentation hook (``otel_langsmith._zero_code``)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS
