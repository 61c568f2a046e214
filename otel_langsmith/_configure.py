"""One-call setup, and the ``opentelemetry-instrument`` configurator that uses it.

``configure()`` installs :class:`~otel_langsmith.LangSmithSpanProcessor` on the SDK tracer provider
(creating and registering one when there is none) and adds the ``langsmith`` propagator to the
global one.

Zero-code: ``OTEL_PYTHON_CONFIGURATOR=langsmith OTEL_TRACES_EXPORTER=langsmith opentelemetry-instrument
python app.py`` configures the SDK as usual, except that the ``langsmith`` exporter is replaced by the
live processor. ``OTEL_TRACES_EXPORTER=langsmith`` alone (any configurator) keeps the plain exporter
behind a ``BatchSpanProcessor``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.trace import TracerProvider
from typing_extensions import Unpack

from ._processor import LangSmithSpanProcessor
from ._propagation import LangSmithPropagator
from ._settings import Options

logger = logging.getLogger(__name__)

EXPORTER_NAME = "langsmith"


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
    processor = LangSmithSpanProcessor(**options)
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


class LangSmithConfigurator(_OTelSDKConfigurator):
    """``opentelemetry_configurator`` entry point ``langsmith``: the SDK's own configuration, with the
    ``langsmith`` trace exporter served by the live processor instead of a ``BatchSpanProcessor``.

    Only when chosen by name (``OTEL_PYTHON_CONFIGURATOR=langsmith``): picked up as the first
    configurator found, it configures exactly as the SDK's, so ``OTEL_TRACES_EXPORTER=langsmith``
    alone means the same with or without this package's configurator around."""

    def _configure(self, **kwargs: Any) -> None:
        names = [name.strip() for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
        chosen = os.environ.get("OTEL_PYTHON_CONFIGURATOR", "").strip() == EXPORTER_NAME
        live = chosen and EXPORTER_NAME in names
        if live:
            others = [name for name in names if name != EXPORTER_NAME]
            os.environ["OTEL_TRACES_EXPORTER"] = ",".join(others) or "none"
        super()._configure(**kwargs)  # type: ignore[no-untyped-call]
        if live:
            configure()
            logger.debug("otel-langsmith: live span processor installed by the configurator")
