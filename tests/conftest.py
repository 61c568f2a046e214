from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

# Property tests run thoroughly in `make test`, and quickly in the edit-test loop (`make unit`).
settings.register_profile("full", max_examples=300)
settings.register_profile("quick", max_examples=40)
settings.load_profile("full")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real LangSmith through a developer's own environment."""
    for name in list(os.environ):
        if name.startswith(("LANGSMITH_", "LANGCHAIN_", "OTEL_EXPORTER_LANGSMITH_")):
            monkeypatch.delenv(name)


@pytest.fixture
def record_spans() -> Iterator[Callable[[Callable[[Tracer], None]], list[ReadableSpan]]]:
    """Run a function with a real SDK tracer and return the spans it ended, in end order."""
    providers: list[TracerProvider] = []

    def record(body: Callable[[Tracer], None], resource: Resource | None = None) -> list[ReadableSpan]:
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=resource or Resource.create({"service.name": "tests"}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        providers.append(provider)
        body(provider.get_tracer("tests"))
        return list(memory.get_finished_spans())

    yield record
    for provider in providers:
        provider.shutdown()
