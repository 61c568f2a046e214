"""A program traced with the plain OpenTelemetry API and configured by nothing but the environment.

Run it under ``opentelemetry-instrument`` with the bridge selected as the trace exporter::

    pip install otel-langsmith opentelemetry-distro
    LANGSMITH_API_KEY=... OTEL_SERVICE_NAME=hello \\
    OTEL_TRACES_EXPORTER=langsmith OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \\
        opentelemetry-instrument python examples/instrumented_app.py
"""

from opentelemetry import trace

tracer = trace.get_tracer("examples.instrumented_app")


def answer(question: str) -> str:
    with tracer.start_as_current_span("lookup", attributes={"input.value": question}) as span:
        result = question.upper()
        span.set_attribute("output.value", result)
        return result


def main() -> None:
    with tracer.start_as_current_span("handle-request", attributes={"langsmith.span.tags": "example,instrument"}):
        answer("what is otel?")
        answer("what is langsmith?")


if __name__ == "__main__":
    main()
