"""The same functions traced by the official ``langsmith`` SDK, in one of its two modes:
``python langsmith_worker.py MODE RECEIVER_URL API_KEY``.

``direct``: the SDK sends its runs to the receiver itself. ``otel``: the SDK writes OpenTelemetry
spans (``LANGSMITH_TRACING_MODE=otel``) into a provider whose exporter is the bridge.
"""

from __future__ import annotations

import os
import sys

MODE, ENDPOINT, KEY = sys.argv[1:4]
os.environ.update(LANGSMITH_ENDPOINT=ENDPOINT, LANGSMITH_API_KEY=KEY, LANGSMITH_TRACING="true")
os.environ["LANGSMITH_PROJECT"] = "parity"
if MODE == "otel":
    os.environ["LANGSMITH_TRACING_MODE"] = "otel"
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_langsmith import LangSmithSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(LangSmithSpanExporter(project="parity")))
    trace.set_tracer_provider(provider)

import langsmith as ls  # noqa: E402
from langsmith.run_trees import get_cached_client  # noqa: E402


@ls.traceable(run_type="tool", name="lookup", tags=["kb"], metadata={"source": "atlas"})
def lookup(city: str) -> dict:
    return {"city": city, "population": 2_100_000}


@ls.traceable(run_type="chain", name="answer", tags=["demo", "parity"], metadata={"user": "u1", "tier": 2})
def answer(question: str, city: str) -> str:
    facts = lookup(city)
    return f"{facts['city']} has {facts['population']} people"


answer("How many people live in Paris?", city="Paris")
# In both modes the SDK hands runs to its own background thread: flush it first (in OTel mode
# that thread is what starts and ends the spans), then the OpenTelemetry pipeline.
get_cached_client().flush()
if MODE == "otel":
    provider.shutdown()
