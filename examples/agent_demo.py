"""A small agent traced with the plain OpenTelemetry API and exported through otel-langsmith.

Without ``LANGSMITH_API_KEY`` it exports to a local LangSmith-compatible receiver and prints the
run tree LangSmith would show; with the key set it exports to LangSmith (``LANGSMITH_ENDPOINT``,
``LANGSMITH_PROJECT`` as usual).

    make demo                                  # local receiver
    LANGSMITH_API_KEY=lsv2_... make demo       # your LangSmith project
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from otel_langsmith import LangSmithSpanExporter
from otel_langsmith.testing import LangSmithReceiver

tracer = trace.get_tracer("examples.agent_demo")


class WeatherAPI(BaseHTTPRequestHandler):
    """The tool's upstream service: a tiny JSON API on loopback."""

    def do_GET(self) -> None:
        body = json.dumps({"city": self.path.rsplit("/", 1)[-1], "forecast": "sunny", "celsius": 21}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def fake_llm(messages: list[dict[str, str]], model: str) -> str:
    """Stands in for a model call; the span is what a GenAI instrumentation would record."""
    with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
        span.set_attributes(
            {
                "langsmith.span.kind": "llm",
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": model,
                "gen_ai.request.temperature": 0.2,
                "gen_ai.prompt": json.dumps({"messages": messages}),
            }
        )
        time.sleep(0.03)
        question = messages[-1]["content"]
        reply = "Call get_weather and add 2+2." if "weather" in question else f"Here is what I found: {question}"
        span.set_attributes(
            {
                "gen_ai.completion": json.dumps({"messages": [{"role": "assistant", "content": reply}]}),
                "gen_ai.response.model": f"{model}-2024-07-18",
                "gen_ai.usage.input_tokens": 12 * len(messages),
                "gen_ai.usage.output_tokens": len(reply.split()),
            }
        )
        return reply


def get_weather(city: str, api: str) -> dict[str, object]:
    with tracer.start_as_current_span("get_weather", attributes={"langsmith.span.kind": "tool"}) as span:
        span.set_attribute("input.value", json.dumps({"city": city}))
        url = f"{api}/forecast/{city}"
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as http:
            http.set_attributes({"http.request.method": "GET", "url.full": url})
            with urllib.request.urlopen(url, timeout=5) as response:
                http.set_attribute("http.response.status_code", response.status)
                forecast: dict[str, object] = json.loads(response.read())
        span.set_attribute("output.value", json.dumps(forecast))
        return forecast


def calculator(expression: str) -> float:
    with tracer.start_as_current_span("calculator", attributes={"langsmith.span.kind": "tool"}) as span:
        span.set_attribute("input.value", json.dumps({"expression": expression}))
        left, right = expression.split("/")
        return float(left) / float(right)  # the agent asks for 2/0: this branch fails


def run_agent(question: str, api: str) -> str:
    with tracer.start_as_current_span("weather-agent", attributes={"langsmith.span.tags": "demo"}) as agent:
        agent.set_attribute("input.value", json.dumps({"question": question}))
        plan = fake_llm(
            [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": question}], "gpt-4o-mini"
        )
        # The two tools run on two worker threads; each carries the agent's context along.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="tool") as pool:
            weather = pool.submit(contextvars.copy_context().run, get_weather, "Paris", api)
            math = pool.submit(contextvars.copy_context().run, calculator, "2/0")
            forecast = weather.result()
            try:
                math.result()
            except ZeroDivisionError:
                pass  # recorded on the calculator run; the agent carries on without it
        answer = fake_llm(
            [
                {"role": "user", "content": question},
                {"role": "assistant", "content": plan},
                {"role": "tool", "content": json.dumps(forecast)},
            ],
            "gpt-4o-mini",
        )
        agent.set_attribute("output.value", json.dumps({"answer": answer}))
        return answer


def main() -> None:
    api_server = ThreadingHTTPServer(("127.0.0.1", 0), WeatherAPI)
    threading.Thread(target=api_server.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{api_server.server_address[1]}"

    receiver = None
    if os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY"):
        exporter = LangSmithSpanExporter()
    else:
        receiver = LangSmithReceiver().start()
        exporter = receiver.exporter(project="otel-langsmith-demo")

    provider = TracerProvider(resource=Resource.create({"service.name": "agent-demo"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    try:
        run_agent("What's the weather in Paris?", api)
    finally:
        provider.shutdown()  # flushes the batch processor and the exporter
        api_server.shutdown()

    stats = exporter.stats()
    if receiver is None:
        print(
            f"Sent {stats.runs_exported} runs to LangSmith project {exporter.settings.project!r}"
            f" ({stats.runs_refused} refused, {stats.runs_dropped} lost: {dict(stats.dropped) or 'none'})."
        )
        return
    print(f"No LANGSMITH_API_KEY set: exported to a local LangSmith-compatible receiver at {receiver.url}")
    print(f"{len(receiver.runs)} runs received, {len(receiver.rejected)} requests rejected.\n")
    print(receiver.format_tree())
    receiver.stop()


if __name__ == "__main__":
    main()
