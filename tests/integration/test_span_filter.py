"""span_filter: a GenAI trace kept whole through the HTTP server that carries it, a health check
dropped entirely, the same in the exporter and the processor."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from otel_langsmith import LangSmithPropagator, LangSmithSpanProcessor


def serve_an_agent_request(tracer) -> None:
    """An HTTP server span, an agent under it, a model call and a tool, each model call and tool
    with the HTTP client span of its own request underneath."""
    server = {"http.request.method": "POST", "url.path": "/chat", "http.route": "/chat"}
    with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER, attributes=server):
        with tracer.start_as_current_span("load-session", attributes={"db.system": "redis"}):
            pass
        agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper"}
        with tracer.start_as_current_span("invoke_agent helper", attributes=agent):
            chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.system": "openai"}
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes=chat):
                with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes={"url.full": "https://x"}):
                    pass
            tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}
            with tracer.start_as_current_span("execute_tool search", attributes=tool):
                with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={"url.full": "https://y"}):
                    pass
                with tracer.start_as_current_span("marked", attributes={"langsmith.span.kind": "retriever"}):
                    pass


def health_check(tracer) -> None:
    with tracer.start_as_current_span("GET /healthz", kind=SpanKind.SERVER, attributes={"url.path": "/healthz"}):
        with tracer.start_as_current_span("ping-db", attributes={"db.system": "postgresql"}):
            pass


@pytest.fixture(params=["exporter", "processor"])
def traced(request, langsmith_receiver):
    def trace_with(span_filter):
        provider = TracerProvider()
        options = {"span_filter": span_filter}
        if request.param == "exporter":
            front = langsmith_receiver.exporter(**options)
            provider.add_span_processor(BatchSpanProcessor(front, schedule_delay_millis=50))
        else:
            front = LangSmithSpanProcessor(
                endpoint=langsmith_receiver.url, api_key=langsmith_receiver.api_key, **options
            )
            provider.add_span_processor(front)
        tracer = provider.get_tracer("filter")
        for _ in range(3):
            health_check(tracer)
        serve_an_agent_request(tracer)
        provider.shutdown()
        return front

    return trace_with


def tree(receiver) -> list[tuple[int, str]]:
    lines = receiver.format_tree().splitlines()
    return [(len(line) - len(line.lstrip()), line.split(" [")[0].strip()) for line in lines]


def test_llm_keeps_the_agent_whole_and_drops_the_health_checks(traced, langsmith_receiver):
    front = traced("llm")
    assert langsmith_receiver.rejected == [] and langsmith_receiver.problems() == []
    # The server span and the HTTP, database and cache spans are gone; the agent is the root,
    # each kept span under its nearest kept ancestor; the health checks sent nothing.
    assert tree(langsmith_receiver) == [
        (0, "invoke_agent helper"),
        (2, "chat gpt-4o-mini"),
        (2, "search"),
        (4, "marked"),
    ]
    runs = {run["name"]: run for run in langsmith_receiver.runs.values()}
    assert runs["invoke_agent helper"]["extra"]["metadata"].get("OTEL_PARENT_MISSING") is None  # not an orphan
    stats = front.stats()
    assert stats.spans_filtered == 3 * 2 + 4 and stats.runs_exported == 4 and stats.runs_dropped == 0


def test_all_keeps_everything(traced, langsmith_receiver):
    traced("all")
    names = [name for _, name in tree(langsmith_receiver)]
    assert names.count("GET /healthz") == 3 and names[names.index("POST /chat") + 1] == "load-session"
    assert len(langsmith_receiver.runs) == 3 * 2 + 8


def test_a_function_decides_and_one_that_raises_keeps_the_span(traced, langsmith_receiver, caplog):
    def only_tools(span):
        if span.name == "marked":
            raise RuntimeError("a bug in the user's filter")
        return span.name.startswith("execute_tool")

    traced(only_tools)
    assert tree(langsmith_receiver) == [(0, "search"), (2, "marked")]
    assert "span filter raised" in caplog.text


def test_a_kept_span_under_a_dropped_one_propagates_its_kept_ancestor(langsmith_receiver):
    provider = TracerProvider()
    processor = LangSmithSpanProcessor(
        endpoint=langsmith_receiver.url, api_key=langsmith_receiver.api_key, span_filter="llm"
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("propagate")
    with tracer.start_as_current_span("invoke_agent helper", attributes={"gen_ai.operation.name": "invoke_agent"}):
        with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT):
            headers: dict[str, str] = {}
            LangSmithPropagator().inject(headers)  # from the dropped HTTP client span
    provider.shutdown()
    (agent,) = langsmith_receiver.runs.values()
    assert headers["langsmith-trace"] == agent["dotted_order"]  # the remote call nests under the agent
