"""Zero-code setup (``opentelemetry-instrument``), without a configurator of this package's own.

- ``OTEL_TRACES_EXPORTER=langsmith``: the exporter, behind the SDK's ``BatchSpanProcessor``;
- ``OTEL_TRACES_EXPORTER=langsmith_live``: the live span processor (and the propagator).

Only one configurator runs in a process, so this package registers none: one of its own would
displace ``opentelemetry-distro``'s (or another vendor's) in every ``opentelemetry-instrument``
run, asked for or not. The configurator that does run reads ``OTEL_TRACES_EXPORTER`` and builds
what it names; :func:`after_instrumentation` (the ``opentelemetry_post_instrument`` hook) then adds
the live processor, and, where no configurator ran at all, sets up the SDK for the LangSmith names
itself. In a process that names neither, it reads one variable and returns: this module imports
nothing heavy.
"""

from __future__ import annotations

import os

EXPORTER = "langsmith"
LIVE = "langsmith_live"


def requested() -> list[str]:
    """The LangSmith names in ``OTEL_TRACES_EXPORTER``."""
    names = (name.strip() for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(","))
    return [name for name in names if name in (EXPORTER, LIVE)]


def after_instrumentation() -> None:
    """``opentelemetry-instrument``'s last step: the live processor, when asked for."""
    names = requested()
    if not names:
        return
    from opentelemetry import trace  # noqa: PLC0415 - only in a process that asked for LangSmith
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

    from ._configure import configure  # noqa: PLC0415

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        # No configurator ran (opentelemetry-distro is not installed): nobody read the variable.
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

        from ._exporter import LangSmithSpanExporter  # noqa: PLC0415

        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        if EXPORTER in names:
            provider.add_span_processor(BatchSpanProcessor(LangSmithSpanExporter()))
    if LIVE in names:
        configure(tracer_provider=provider)
